import FoundationEssentials

/// The payload of an ID token: the registered claims typed, everything kept for the application.
struct IDTokenClaims {
    let all: [String: JSONValue]

    init(payload: [UInt8]) throws(TokenError) {
        switch JSONShape.check(payload) {
        case .ok: break
        case .duplicate: throw .duplicateMember("payload")
        case .tooDeep: throw .malformed("payload nested too deeply")
        case .malformed: throw .malformed("payload is not a JSON object")
        }
        do {
            all = try JSONDecoder().decode([String: JSONValue].self, from: Data(payload))
        } catch {
            throw .malformed("payload is not a JSON object")
        }
    }

    var issuer: String? { all["iss"]?.stringValue }
    var subject: String? { all["sub"]?.stringValue }
    var nonce: String? { all["nonce"]?.stringValue }
    var authorizedParty: String? { all["azp"]?.stringValue }

    /// `aud` is a string or an array of strings (RFC 7519 §4.1.3). Nil when it is anything else.
    var audiences: [String]? {
        switch all["aud"] {
        case .string(let s): return [s]
        case .array(let a):
            let strings = a.compactMap(\.stringValue)
            return strings.count == a.count ? strings : nil
        default: return nil
        }
    }

    /// A NumericDate claim, truncated to whole seconds. Values outside any sane range read as absent
    /// rather than overflowing.
    func time(_ name: String) -> Int64? {
        guard let n = all[name]?.numberValue, n.isFinite, abs(n) < 1e15 else { return nil }
        return Int64(n.rounded(.down))
    }
}
