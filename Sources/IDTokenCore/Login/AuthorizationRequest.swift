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
    /// The location's extra parameters (IDTokenAuthRequestParams); `scope` ones add to the scope.
    var extra: [(String, String)] = []

    var parameters: [(String, String)] {
        let extraScopes = extra.filter { $0.0 == "scope" }.flatMap { $0.1.split(separator: " ").map(String.init) }
        var words = scope.split(separator: " ").map(String.init)
        for w in extraScopes where !words.contains(w) { words.append(w) }
        var p = [
            ("response_type", "id_token"),
            ("response_mode", "form_post"),
            ("client_id", clientID),
            ("redirect_uri", redirectURI),
            ("scope", words.joined(separator: " ")),
            ("state", state),
            ("nonce", nonce),
        ]
        if let maxAge { p.append(("max_age", String(maxAge))) }
        p += extra.filter { $0.0 != "scope" && $0.0 != "max_age" }
        return p
    }

    /// The endpoint may already carry a query (some providers put a tenant or policy there).
    var url: String {
        let base = endpoint.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? endpoint
        let joiner = base.contains("?") ? (base.hasSuffix("?") || base.hasSuffix("&") ? "" : "&") : "?"
        return base + joiner + FormEncoding.encode(parameters)
    }
}
