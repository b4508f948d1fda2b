/// Turns claims into what the application receives: `IDToken-Claim-<name>` request headers and
/// `IDTOKEN_CLAIM_<name>` environment variables. Names are reduced to characters every server and
/// proxy keeps; values lose control characters so no claim can split or inject a header.
enum ClaimsForApp {
    static let headerPrefix = "IDToken-Claim-"
    static let envPrefix = "IDTOKEN_CLAIM_"

    /// Protocol claims that mean nothing to the application and only make the cookie bigger.
    static let protocolClaims: Set<String> = [
        "aud", "iss", "iat", "exp", "nbf", "nonce", "azp", "auth_time", "at_hash", "c_hash", "s_hash",
    ]

    static func flatten(_ claims: [String: JSONValue], delimiter: String, keep: Set<String>? = nil,
                        drop: Set<String> = []) -> [Session.Claim] {
        claims.keys.sorted().compactMap { name in
            guard !protocolClaims.contains(name), keep?.contains(name) ?? true, !drop.contains(name),
                  let value = claims[name] else { return nil }
            let flat = cleanValue(value.flattened(delimiter: delimiter))
            if case .string = value { return Session.Claim(name, flat) }
            return Session.Claim(name, flat, json: value.compactJSON)
        }
    }

    /// A value as the location asks it to be passed.
    static func encode(_ value: String, _ encoding: DirConfig.ClaimEncoding) -> String {
        switch encoding {
        case .none, .latin1: return value // latin1 is applied when the bytes are handed to Apache
        case .base64url: return Base64URL.encode(Array(value.utf8))
        }
    }

    static func cleanValue(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return s }
        return String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }

    static func headerName(_ claim: String) -> String { name(claim, prefix: headerPrefix, keep: UInt8(ascii: "-")) }

    static func envName(_ claim: String) -> String { name(claim, prefix: envPrefix, keep: UInt8(ascii: "_")) }

    /// The prefix, then the claim name with every character other than ASCII letters, digits and `keep`
    /// replaced by `keep` (one per character: UTF-8 continuation bytes are skipped). Byte by byte,
    /// since it runs for every claim of every request.
    private static func name(_ claim: String, prefix: String, keep: UInt8) -> String {
        var out = Array(prefix.utf8)
        out.reserveCapacity(out.count + claim.utf8.count)
        for b in claim.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                out.append(b)
            case 0x80...0xBF:
                continue
            default:
                out.append(keep)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The ID token itself, when a location asks for it: as it was sent (`serialized`) or its JSON
    /// payload. Needs the token kept in the session (IDTokenLogoutIDTokenHint On, the default).
    static func idTokenForApp(_ token: String, _ mode: DirConfig.PassIDToken) -> (header: String, env: String, value: String)? {
        guard !token.isEmpty else { return nil }
        switch mode {
        case .off:
            return nil
        case .serialized:
            return ("IDToken-Token", "IDTOKEN_TOKEN", token)
        case .payload:
            let parts = token.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, let payload = Base64URL.decode(parts[1]) else { return nil }
            return ("IDToken-Payload", "IDTOKEN_PAYLOAD", cleanValue(String(decoding: payload, as: UTF8.self)))
        }
    }
}
