import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import IDTokenCore

/// Keeps the admin reference (docs/configuration.md), the Apache module's command table (generated into
/// apache/directives.inc, plus the store's directives in apache/idtoken_config.c) and the shipped example
/// configuration (apache/auth_idtoken.conf) in step with `Directive` and its spec: a section, a syntax,
/// a default or an example that says otherwise fails here. The files are read from the repository by
/// path and parsed with plain text rules, nothing that needs httpd or a C compiler.
@Suite struct DocsDriftTests {
    /// The directives the C module handles itself (the store, the shared counters); the core never sees them. Their
    /// reference sections are held to these as the core's are to their specs.
    static let moduleOnly: [(name: String, syntax: String, defaultText: String)] = [
        ("IDTokenCache", "file[:path][(size)]|redis:host[:port]|redis-sentinel:master@host[:port][,host[:port]]...|provider[:arguments]|none", "`file`"),
        ("IDTokenCacheFull", "evict-idle|refuse", "`evict-idle`"),
        ("IDTokenMetrics", "On|Off", "`On`"),
        ("IDTokenRedisUser", "name", "none"),
        ("IDTokenRedisPasswordFile", "path", "none"),
        ("IDTokenRedisTLS", "On|Off", "`Off`"),
        ("IDTokenRedisTLSCAFile", "path", "the system's CA certificates"),
        ("IDTokenRedisTLSCertificate", "certificate-file [key-file]", "none"),
        ("IDTokenRedisTLSServerName", "name|off", "the host of each address"),
        ("IDTokenRedisDatabase", "number", "`0`"),
        ("IDTokenRedisTimeout", "command-ms [connect-ms]", "`1000 1000`"),
        ("IDTokenRedisKeyPrefix", "prefix", "none"),
    ]
    static let moduleOnlyNames = moduleOnly.map(\.name)

    static let coreNames = Directive.allCases.map(\.rawValue)
    static let allNames = Set(coreNames + moduleOnlyNames)

    // MARK: docs/configuration.md

    @Test func everyDirectiveHasExactlyOneReferenceSection() throws {
        let doc = try #require(Fixture.repositoryText("docs/configuration.md"), "cannot read \(Fixture.repositoryRoot)docs/configuration.md")
        let headings = Markdown.level3Headings(doc)
        for name in Self.coreNames + Self.moduleOnlyNames {
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

    /// Each section's **Syntax:** line is the spec's, and its **Default:** line starts with the spec's
    /// default (with the value itself, where setting it is the same as not setting the directive).
    @Test func everySectionSaysTheSpecsSyntaxAndDefault() throws {
        let doc = try #require(Fixture.repositoryText("docs/configuration.md"))
        let sections = Markdown.sections(doc)
        for d in Directive.allCases {
            let spec = d.spec
            let body = try #require(sections[d.rawValue], "no section for \(d.rawValue)")
            #expect(body.contains("- **Syntax:** `\(d.rawValue) \(spec.syntax)`"), "\(d.rawValue): the reference's Syntax line is not `\(d.rawValue) \(spec.syntax)`")
            let defaultLine = body.split(separator: "\n").first { $0.hasPrefix("- **Default:** ") }.map { String($0.dropFirst(15)) } ?? ""
            #expect(defaultLine.hasPrefix(spec.defaultText), "\(d.rawValue): the reference's default '\(defaultLine)' does not start with '\(spec.defaultText)'")
            if let value = spec.defaultValue {
                #expect(defaultLine.contains("`\(value)`"), "\(d.rawValue): the reference's default does not show the value `\(value)`")
            }
        }
        for d in Self.moduleOnly {
            let body = try #require(sections[d.name], "no section for \(d.name)")
            #expect(body.contains("- **Syntax:** `\(d.name) \(d.syntax)`"), "\(d.name): the reference's Syntax line is not `\(d.name) \(d.syntax)`")
            let defaultLine = body.split(separator: "\n").first { $0.hasPrefix("- **Default:** ") }.map { String($0.dropFirst(15)) } ?? ""
            #expect(defaultLine.hasPrefix(d.defaultText), "\(d.name): the reference's default '\(defaultLine)' does not start with '\(d.defaultText)'")
        }
    }

    // MARK: apache/auth_idtoken.conf

    /// Every directive the shipped configuration shows (commented out) is a value the module accepts,
    /// and one shown without a "Default:" remark above it is its default.
    @Test func everyExampleInTheShippedConfigurationParses() throws {
        let conf = try #require(Fixture.repositoryText("apache/auth_idtoken.conf"))
        var shown = Set<String>()
        var remark = false
        for raw in conf.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingSpaces
            guard line.hasPrefix("#IDToken") else {
                if line.hasPrefix("# Default:") { remark = true } else if !line.hasPrefix("#") || line == "#" { remark = false }
                continue
            }
            let words = line.dropFirst().split(separator: " ", maxSplits: 1).map { String($0).trimmingSpaces }
            let name = words[0], value = words.count > 1 ? words[1].replacing("\"", with: "") : ""
            shown.insert(name)
            guard let d = Directive(rawValue: name) else {
                #expect(Self.moduleOnlyNames.contains(name), "auth_idtoken.conf shows \(name), which is not a directive")
                continue
            }
            let parsed = d.isList ? value.split(separator: " ").joined(separator: " ") : value
            #expect(d.check(parsed) == nil, "auth_idtoken.conf: \(name) \(value) is refused: \(d.check(parsed) ?? "")")
            if let def = d.spec.defaultValue, !remark {
                #expect(parsed == def, "auth_idtoken.conf shows \(name) \(value) as the default; the default is \(def)")
            }
        }
        for d in Directive.allCases where !d.isPerDirectory {
            #expect(shown.contains(d.rawValue), "apache/auth_idtoken.conf does not show \(d.rawValue)")
        }
    }

    // MARK: The command table

    @Test func commandTableHoldsEveryDirectiveOnceAndNothingElse() throws {
        let names = try Self.commandTable().map(\.name)
        #expect(!names.isEmpty, "no AP_INIT_*(\"name\", ...) entry found in apache/directives.inc and apache/idtoken_config.c")
        for name in names {
            #expect(Self.allNames.contains(name), "the command table has \(name), which the core's Directive does not know (it would be refused when read)")
        }
        for name in Self.coreNames + Self.moduleOnlyNames {
            let count = names.filter { $0 == name }.count
            #expect(count == 1, "the command table has \(count) entries for \(name); want exactly one")
        }
    }

    /// Per-directory directives belong in <Location>/<Directory> (ACCESS_CONF) and never in .htaccess
    /// (no OR_* override), server ones in the server config and virtual hosts (RSRC_CONF), as
    /// docs/configuration.md says.
    @Test func commandTableContextsMatchTheDirectiveKinds() throws {
        for entry in try Self.commandTable() {
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

extension DocsDriftTests {
    /// The generated entries and the module's own (IDTokenCache, IDTokenCacheFull, IDTokenRedis*, IDTokenMetrics).
    static func commandTable() throws -> [CommandTable.Entry] {
        let generated = try #require(Fixture.repositoryText("apache/directives.inc"), "cannot read apache/directives.inc")
        let config = try #require(Fixture.repositoryText("apache/idtoken_config.c"), "cannot read apache/idtoken_config.c")
        return try CommandTable.entries(generated, whole: true) + CommandTable.entries(config)
    }
}

private enum Markdown {
    /// Each `### ` heading's text up to the next heading.
    static func sections(_ text: String) -> [String: String] {
        var result = [String: String](), current: String?, body = "", fenced = false
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if line.trimmingSpaces.hasPrefix("```") { fenced.toggle() }
            if !fenced, line.hasPrefix("#") {
                if let current { result[current] = body }
                current = line.hasPrefix("### ") ? String(line.dropFirst(4)).trimmingSpaces : nil
                body = ""
            } else {
                body += line + "\n"
            }
        }
        if let current { result[current] = body }
        return result
    }

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
enum CommandTable {
    struct Entry {
        /// The directive: the string literal the macro starts with.
        let name: String
        /// The identifiers of the entry outside string literals: the setter, cmd_info and the
        /// req_override flags (RSRC_CONF, ACCESS_CONF, OR_*...).
        let identifiers: Set<String>
    }

    /// `whole`: the text is nothing but entries (the generated include), not a C file to find them in.
    static func entries(_ source: String, whole: Bool = false) throws -> [Entry] {
        let comment = try Regex(#"/\*[\s\S]*?\*/"#)
        let tableEnd = try Regex(#"\{\s*NULL\s*\}"#)
        let macro = try Regex(#"AP_INIT_[A-Z0-9_]+\s*\(\s*"([^"]*)""#)
        let stringLiteral = try Regex(#""(?:[^"\\]|\\.)*""#)
        let identifier = try Regex(#"[A-Za-z_][A-Za-z0-9_]*"#)

        // Comments first, so that neither a commented-out entry nor prose counts.
        var text = source.replacing(comment, with: " ")
        // Then the table itself when it can be told apart: from `command_rec` to its `{NULL}`.
        if !whole, let start = text.firstRange(of: "command_rec") {
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
