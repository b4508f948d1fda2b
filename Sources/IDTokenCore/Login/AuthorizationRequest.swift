/// The authentication request of the Implicit Flow with Form Post (Core §3.2.2.1, OAuth 2.0 Form Post
/// Response Mode): the URL the browser is sent to.
struct AuthorizationRequest {
    let endpoint: String
    let clientID: String
    let redirectURI: String
    let scope: String
    let state: String
    let nonce: String
    var maxAge: Int64? = nil

    var parameters: [(String, String)] {
        var p = [
            ("response_type", "id_token"),
            ("response_mode", "form_post"),
            ("client_id", clientID),
            ("redirect_uri", redirectURI),
            ("scope", scope),
            ("state", state),
            ("nonce", nonce),
        ]
        if let maxAge { p.append(("max_age", String(maxAge))) }
        return p
    }

    /// The endpoint may already carry a query (some providers put a tenant or policy there).
    var url: String {
        let base = endpoint.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? endpoint
        let joiner = base.contains("?") ? (base.hasSuffix("?") || base.hasSuffix("&") ? "" : "&") : "?"
        return base + joiner + FormEncoding.encode(parameters)
    }
}
