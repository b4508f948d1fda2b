/// The JWS algorithms an ID token may be signed with (RFC 7518 §3, RFC 8037). `none` is absent: an
/// unsigned token proves nothing. The HMAC ones are keyed with the client secret only (Core §10.1),
/// never with anything from the provider's key set, and only when a secret is configured.
package enum SignatureAlgorithm: String, CaseIterable, Sendable {
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
    case edDSA = "EdDSA"
    case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"

    /// The default allow-list: every algorithm verified with the provider's public keys.
    package static let asymmetric: Set<SignatureAlgorithm> = Set(allCases.filter { !$0.isHMAC })

    var isHMAC: Bool { self == .hs256 || self == .hs384 || self == .hs512 }
}
