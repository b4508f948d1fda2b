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
                        drop: Set<String> = []) -> [(name: String, value: String)] {
        claims.keys.sorted().compactMap { name in
            guard !protocolClaims.contains(name), keep?.contains(name) ?? true, !drop.contains(name),
                  let value = claims[name] else { return nil }
            return (name, cleanValue(value.flattened(delimiter: delimiter)))
        }
    }

    static func cleanValue(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return s }
        return String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }

    static func headerName(_ claim: String) -> String {
        headerPrefix + String(String.UnicodeScalarView(claim.unicodeScalars.map { isAlphanumeric($0) || $0 == "-" ? $0 : "-" }))
    }

    static func envName(_ claim: String) -> String {
        envPrefix + String(String.UnicodeScalarView(claim.unicodeScalars.map { isAlphanumeric($0) || $0 == "_" ? $0 : "_" }))
    }

    private static func isAlphanumeric(_ u: Unicode.Scalar) -> Bool {
        (u >= "a" && u <= "z") || (u >= "A" && u <= "Z") || (u >= "0" && u <= "9")
    }
}
