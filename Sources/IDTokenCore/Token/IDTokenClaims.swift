/// The payload of an ID token: the registered claims typed, everything kept for the application.
struct IDTokenClaims {
    let all: [String: JSONValue]

    init(payload: [UInt8]) throws(TokenError) {
        let parsed: JSONValue
        do {
            parsed = try JSONParser.parse(payload)
        } catch .duplicate {
            throw .duplicateMember("payload")
        } catch .tooDeep {
            throw .malformed("payload nested too deeply")
        } catch {
            throw .malformed("payload is not a JSON object")
        }
        guard case .object(let members) = parsed else { throw .malformed("payload is not a JSON object") }
        all = members
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
