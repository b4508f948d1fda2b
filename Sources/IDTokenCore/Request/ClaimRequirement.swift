/// `Require idtoken-claim <expr> ...`: granted when any expression matches.
///
///     groups:admins                      the claim equals "admins", or is an array holding it
///     realm_access.roles:editor          a member of a nested object (dots walk into objects)
///     email~@example\.org$               a regular expression matches (anywhere; anchor it yourself)
///     "https://example.com/role":admin   a claim name with ':' or '.' in it, quoted
///     "name:Alice Example"               quotes also keep a value's spaces
///
/// Numbers and booleans compare by their JSON spelling (`email_verified:true`, `level:3`).
///
/// A line is parsed once, when Apache reads it (`Require` lines keep a handle in httpd's parsed slot),
/// its regular expressions compiled then; each request only walks the claims.
package struct ClaimRequirement: Equatable, @unchecked Sendable {
    package enum Match: Equatable, Sendable {
        case equals(String)
        case pattern(String)
    }

    let path: [String]
    let match: Match
    /// `match`'s pattern, compiled. Immutable after parsing, so threads share it (hence @unchecked).
    private let regex: Regex<AnyRegexOutput>?

    init(path: [String], match: Match) {
        self.path = path
        self.match = match
        if case .pattern(let p) = match { regex = try? Regex(p) } else { regex = nil }
    }

    package static func == (a: ClaimRequirement, b: ClaimRequirement) -> Bool { a.path == b.path && a.match == b.match }

    /// Parses a require line; nil with a message when it is not valid.
    package static func parse(_ line: String) -> Result<[ClaimRequirement], ConfigError> {
        var result = [ClaimRequirement]()
        for word in words(line) {
            guard let r = parseOne(word) else {
                return .failure(.invalid("'\(Masking.printable(word))' is not claim:value or claim~regex"))
            }
            if case .pattern(let p) = r.match, r.regex == nil {
                return .failure(.invalid("'\(Masking.printable(p))' is not a valid regular expression"))
            }
            result.append(r)
        }
        return result.isEmpty ? .failure(.invalid("needs at least one claim:value or claim~regex")) : .success(result)
    }

    /// Splits on spaces outside double quotes, keeping the quotes (the name's quotes matter).
    private static func words(_ line: String) -> [String] {
        var words = [String](), current = "", quoted = false
        for ch in line {
            if ch == "\"" { quoted.toggle(); current.append(ch); continue }
            if ch == " " || ch == "\t", !quoted {
                if !current.isEmpty { words.append(current); current = "" }
                continue
            }
            current.append(ch)
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    private static func parseOne(_ word: String) -> ClaimRequirement? {
        var w = Substring(word)
        if w.hasPrefix("\""), w.hasSuffix("\""), w.count >= 2, !w.dropFirst().dropLast().contains("\"") {
            w = w.dropFirst().dropLast() // "name:value with spaces"
        }
        let path: [String]
        let rest: Substring
        if w.hasPrefix("\"") {
            guard let close = w.dropFirst().firstIndex(of: "\"") else { return nil }
            path = [String(w[w.index(after: w.startIndex)..<close])]
            rest = w[w.index(after: close)...]
        } else {
            guard let op = w.firstIndex(where: { $0 == ":" || $0 == "~" }) else { return nil }
            path = w[..<op].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            rest = w[op...]
        }
        guard let opChar = rest.first, opChar == ":" || opChar == "~", !path.isEmpty, !path.contains(where: \.isEmpty) else { return nil }
        let value = String(rest.dropFirst())
        return ClaimRequirement(path: path, match: opChar == ":" ? .equals(value) : .pattern(value))
    }

    /// Whether the claims (name → JSON) satisfy this requirement.
    package func isSatisfied(by claims: [String: String]) -> Bool {
        guard let first = path.first, let json = claims[first], let root = try? JSONParser.parse(Array(json.utf8)) else { return false }
        var node = root
        for member in path.dropFirst() {
            guard case .object(let o) = node, let next = o[member] else { return false }
            node = next
        }
        return matches(node)
    }

    private func matches(_ node: JSONValue) -> Bool {
        switch node {
        case .array(let items): return items.contains { matches($0) }
        case .object, .null: return false
        default:
            let text = node.stringValue ?? node.compactJSON
            switch match {
            case .equals(let v): return text == v
            case .pattern:
                guard let regex, (try? regex.firstMatch(in: text)) != nil else { return false }
                return true
            }
        }
    }
}
