/// The JWS algorithms an ID token may be signed with (RFC 7518 §3, RFC 8037). Symmetric (HS*) ones are
/// absent on purpose: without a client secret there is no key they could be checked against, and `none`
/// is never a signature.
public enum SignatureAlgorithm: String, CaseIterable, Sendable {
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
    case edDSA = "EdDSA"

    public static let asymmetric: Set<SignatureAlgorithm> = Set(allCases)

    var keyType: String {
        switch self {
        case .rs256, .rs384, .rs512, .ps256, .ps384, .ps512: return "RSA"
        case .es256, .es384, .es512: return "EC"
        case .edDSA: return "OKP"
        }
    }

    /// The curve an EC or OKP key must be on for this algorithm.
    var curve: String? {
        switch self {
        case .es256: return "P-256"
        case .es384: return "P-384"
        case .es512: return "P-521"
        case .edDSA: return "Ed25519"
        default: return nil
        }
    }
}
