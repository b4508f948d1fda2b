/// Which `iss` values stand for the provider's issuer. Exact equality (Core §3.1.3.7 step 2), plus two
/// documented provider conventions, each matched to its own issuer only:
/// - Microsoft Entra's multi-tenant metadata names `https://login.microsoftonline.com/{tenantid}/v2.0`;
///   a token's issuer is that template filled with the token's own `tid` claim.
/// - Google documents that its ID tokens carry `https://accounts.google.com` or `accounts.google.com`.
struct IssuerRule: Equatable, Sendable {
    let issuer: String

    static let tenantPlaceholder = "{tenantid}"
    static let google = "https://accounts.google.com"

    func accepts(_ iss: String?, claims: [String: JSONValue]) -> Bool {
        guard let iss else { return false }
        if iss == issuer { return true }
        if issuer == Self.google, iss == "accounts.google.com" { return true }
        if issuer.contains(Self.tenantPlaceholder), let tid = claims["tid"]?.stringValue, Self.isTenantID(tid) {
            return issuer.replacing(Self.tenantPlaceholder, with: tid) == iss
        }
        return false
    }

    /// Tenant IDs are GUIDs; anything with a '/' or other structure could reshape the issuer URL.
    static func isTenantID(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && s.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || $0 == "-" }
    }
}
