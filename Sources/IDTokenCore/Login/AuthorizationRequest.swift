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
        // Split on bytes: Character-wise splitting showed up in every login's profile.
        func words(_ s: String) -> [String] { s.utf8.split(separator: UInt8(ascii: " ")).map { String(Substring($0)) } }
        let extraScopes = extra.filter { $0.0 == "scope" }.flatMap { words($0.1) }
        var words = words(scope)
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
        let utf8 = endpoint.utf8
        let base = Substring(utf8[..<(utf8.firstIndex(of: UInt8(ascii: "#")) ?? utf8.endIndex)])
        let joiner = base.utf8.contains(UInt8(ascii: "?"))
            ? (base.utf8.last == UInt8(ascii: "?") || base.utf8.last == UInt8(ascii: "&") ? "" : "&") : "?"
        // One buffer for the whole URL: concatenating the endpoint, joiner and query copied each again.
        var out = Array(base.utf8)
        out += joiner.utf8
        FormEncoding.append(parameters, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
