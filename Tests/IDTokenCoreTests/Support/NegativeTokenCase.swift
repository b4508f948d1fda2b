import FoundationEssentials
import Testing
@testable import IDTokenCore

/// One refused token from Fixtures/negative-tokens.json: how to make it from the standard valid token
/// (header and claim patches, the signing key, changes after signing, or a literal compact form), the
/// rule it breaks, and the TokenError case that must refuse it.
struct NegativeTokenCase: Decodable, Sendable, CustomTestStringConvertible {
    let name: String
    let rule: String
    let expected: String
    var header: [String: JSONValue]?
    var claims: [String: JSONValue]?
    var key: String?
    var signature: String?
    var after_signing: AfterSigning?
    var compact: String?
    var header_json: String?
    var payload_json: String?

    struct AfterSigning: Decodable, Sendable {
        var header: [String: JSONValue]?
        var claims: [String: JSONValue]?
    }

    var testDescription: String { name }

    static let all: [NegativeTokenCase] =
        (try? JSONDecoder().decode([NegativeTokenCase].self, from: Data(Fixture.bytes("negative-tokens.json")))) ?? []

    /// "expired(at: 1)" → "expired".
    static func caseName(_ error: TokenError) -> String {
        String("\(error)".prefix { $0 != "(" })
    }

    func token(now: Int64) -> String {
        var f = TokenFactory.standard(now: now)
        apply(header, to: &f.header, now: now)
        apply(claims, to: &f.claims, now: now)
        if let compact { return literal(compact, f) }
        if header_json != nil || payload_json != nil {
            let h = header_json.map { Base64URL.encode(Array($0.utf8)) } ?? f.encodedParts().0
            let p = payload_json.map {
                Base64URL.encode(Array($0.replacing("{exp}", with: String(now + 300)).replacing("{iat}", with: String(now)).utf8))
            } ?? f.encodedParts().1
            let input = Array((h + "." + p).utf8)
            return h + "." + p + "." + Base64URL.encode(TokenFactory.sign(input, alg: .rs256, rsaKey: TestKeys.rsa))
        }
        var token = key == "unpublished-rsa" ? f.signed(rsaKey: TestKeys.rsaOther) : f.signed()
        if signature == "empty" { token = String(token.prefix { $0 != "." }) + "." + f.encodedParts().1 + "." }
        if let after = after_signing {
            var g = f
            apply(after.header, to: &g.header, now: now)
            apply(after.claims, to: &g.claims, now: now)
            let sig = token.split(separator: ".", omittingEmptySubsequences: false).last.map(String.init) ?? ""
            token = g.encodedParts().0 + "." + g.encodedParts().1 + "." + sig
        }
        return token
    }

    /// Patches: JSON null removes a member; {"now": n} is the time now + n; {"repeat": s, "count": n}.
    private func apply(_ patch: [String: JSONValue]?, to target: inout [String: JSONValue], now: Int64) {
        for (name, value) in patch ?? [:] {
            switch value {
            case .null:
                target[name] = nil
            case .object(let o) where o["now"] != nil:
                target[name] = .number(Double(now) + (o["now"]?.numberValue ?? 0))
            case .object(let o) where o["repeat"] != nil:
                target[name] = .string(String(repeating: o["repeat"]?.stringValue ?? "", count: Int(o["count"]?.numberValue ?? 0)))
            default:
                target[name] = value
            }
        }
    }

    /// "{header}", "{payload}" and "{N*c}" (c repeated N times) in a literal compact form.
    private func literal(_ pattern: String, _ f: TokenFactory) -> String {
        var s = pattern.replacing("{header}", with: f.encodedParts().0).replacing("{payload}", with: f.encodedParts().1)
        if let open = s.firstIndex(of: "{"), let star = s[open...].firstIndex(of: "*"), let close = s[star...].firstIndex(of: "}"),
           let n = Int(s[s.index(after: open)..<star]) {
            s.replaceSubrange(open...close, with: String(repeating: String(s[s.index(after: star)..<close]), count: n))
        }
        return s
    }
}
