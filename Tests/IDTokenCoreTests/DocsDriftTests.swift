import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import IDTokenCore

/// Keeps the admin reference (docs/configuration.md) and the Apache module's command table
/// (apache/mod_auth_idtoken.c) in step with `Directive`: a directive added to the core without its
/// `### Name` section, or without its command table entry, fails here. Both files are read from the
/// repository by path and parsed with plain text rules, nothing that needs httpd or a C compiler.
@Suite struct DocsDriftTests {
    /// The one directive the C module handles itself (the socache store); the core never sees it.
    static let moduleOnly = "IDTokenCache"

    static let coreNames = Directive.allCases.map(\.rawValue)
    static let allNames = Set(coreNames + [moduleOnly])

    // MARK: docs/configuration.md

    @Test func everyDirectiveHasExactlyOneReferenceSection() throws {
        let doc = try #require(Fixture.repositoryText("docs/configuration.md"), "cannot read \(Fixture.repositoryRoot)docs/configuration.md")
        let headings = Markdown.level3Headings(doc)
        for name in Self.coreNames + [Self.moduleOnly] {
            let count = headings.filter { $0 == name }.count
            #expect(count == 1, "docs/configuration.md has \(count) '### \(name)' headings; every directive needs exactly one")
        }
    }

    @Test func everyReferenceSectionIsADirective() throws {
        let doc = try #require(Fixture.repositoryText("docs/configuration.md"), "cannot read \(Fixture.repositoryRoot)docs/configuration.md")
        let documented = Markdown.level3Headings(doc).filter { $0.hasPrefix("IDToken") }
        #expect(!documented.isEmpty, "no '### IDToken...' heading in docs/configuration.md")
        for heading in documented {
            #expect(Self.allNames.contains(heading), "docs/configuration.md has '### \(heading)', which is not a directive")
        }
    }

    // MARK: apache/mod_auth_idtoken.c

    @Test func commandTableHoldsEveryDirectiveOnceAndNothingElse() throws {
        let source = try #require(Fixture.repositoryText("apache/mod_auth_idtoken.c"), "cannot read \(Fixture.repositoryRoot)apache/mod_auth_idtoken.c")
        let names = try CommandTable.entries(source).map(\.name)
        #expect(!names.isEmpty, "no AP_INIT_*(\"name\", ...) entry found in apache/mod_auth_idtoken.c")
        for name in names {
            #expect(Self.allNames.contains(name), "the command table has \(name), which the core's Directive does not know (it would be refused when read)")
        }
        for name in Self.coreNames + [Self.moduleOnly] {
            let count = names.filter { $0 == name }.count
            #expect(count == 1, "the command table has \(count) entries for \(name); want exactly one")
        }
    }

    /// Per-directory directives belong in <Location>/<Directory> (ACCESS_CONF) and never in .htaccess
    /// (no OR_* override), server ones in the server config and virtual hosts (RSRC_CONF), as
    /// docs/configuration.md says.
    @Test func commandTableContextsMatchTheDirectiveKinds() throws {
        let source = try #require(Fixture.repositoryText("apache/mod_auth_idtoken.c"), "cannot read \(Fixture.repositoryRoot)apache/mod_auth_idtoken.c")
        for entry in try CommandTable.entries(source) {
            let flags = entry.identifiers
            if Directive(rawValue: entry.name)?.isPerDirectory == true {
                #expect(flags.contains("ACCESS_CONF") && !flags.contains("RSRC_CONF"),
                        "\(entry.name) is per-directory: its command table entry should use ACCESS_CONF, not RSRC_CONF")
                #expect(!flags.contains { $0.hasPrefix("OR_") }, "\(entry.name) is documented as not allowed in .htaccess (no OR_* flag)")
            } else {
                #expect(flags.contains("RSRC_CONF") && !flags.contains("ACCESS_CONF"),
                        "\(entry.name) is a server directive: its command table entry should use RSRC_CONF, not ACCESS_CONF")
            }
        }
    }
}

private enum Markdown {
    /// The text of every `### ` heading outside fenced code blocks (where `###` is a comment).
    static func level3Headings(_ text: String) -> [String] {
        var headings = [String](), fenced = false
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let trimmed = line.trimmingSpaces
            if trimmed.hasPrefix("```") || trimmed.hasPrefix("~~~") {
                fenced.toggle()
            } else if !fenced, trimmed.hasPrefix("### ") {
                headings.append(trimmed.dropFirst(4).trimmingSpaces)
            }
        }
        return headings
    }
}

/// The `AP_INIT_*` entries of a C module's command table.
private enum CommandTable {
    struct Entry {
        /// The directive: the string literal the macro starts with.
        let name: String
        /// The identifiers of the entry outside string literals: the setter, cmd_info and the
        /// req_override flags (RSRC_CONF, ACCESS_CONF, OR_*...).
        let identifiers: Set<String>
    }

    static func entries(_ source: String) throws -> [Entry] {
        let comment = try Regex(#"/\*[\s\S]*?\*/"#)
        let tableEnd = try Regex(#"\{\s*NULL\s*\}"#)
        let macro = try Regex(#"AP_INIT_[A-Z0-9_]+\s*\(\s*"([^"]*)""#)
        let stringLiteral = try Regex(#""(?:[^"\\]|\\.)*""#)
        let identifier = try Regex(#"[A-Za-z_][A-Za-z0-9_]*"#)

        // Comments first, so that neither a commented-out entry nor prose counts.
        var text = source.replacing(comment, with: " ")
        // Then the table itself when it can be told apart: from `command_rec` to its `{NULL}`.
        if let start = text.firstRange(of: "command_rec") {
            text = String(text[start.lowerBound...])
            if let end = text.firstMatch(of: tableEnd) {
                text = String(text[..<end.range.lowerBound])
            }
        }
        let macros = text.matches(of: macro)
        return macros.indices.map { i -> Entry in
            let end = i + 1 < macros.count ? macros[i + 1].range.lowerBound : text.endIndex
            let body = String(text[macros[i].range.lowerBound..<end]).replacing(stringLiteral, with: " ")
            let identifiers = body.matches(of: identifier).map { String(body[$0.range]) }
            return Entry(name: macros[i].output[1].substring.map(String.init) ?? "", identifiers: Set(identifiers))
        }
    }
}
