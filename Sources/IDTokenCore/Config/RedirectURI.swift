/// Where the provider posts the login response: a path on whatever host the browser used, or a
/// fixed absolute URL.
package enum RedirectURI: Sendable, Equatable {
    case path(String)
    case absolute(URLParts)

    init(_ value: String) throws(ConfigError) {
        if value.hasPrefix("/") {
            guard !value.hasPrefix("//"), !value.contains("?"), !value.contains("#"),
                  value.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                throw .invalid("a path must start with a single '/' and hold no query, fragment, spaces or non-ASCII characters (got '\(value)')")
            }
            self = .path(value)
        } else if let url = URLParts(value) {
            guard !url.pathAndQuery.contains("?"), !url.pathAndQuery.contains("#") else {
                throw .invalid("the redirect URI must not hold a query or fragment (got '\(value)')")
            }
            self = .absolute(url)
        } else {
            throw .invalid("must be a path such as /protected/callback or an absolute http(s) URL (got '\(value)')")
        }
    }

    var path: String {
        switch self {
        case .path(let p): return p
        case .absolute(let u): return u.pathAndQuery
        }
    }

    /// The URL sent to the provider for a request that reached us as scheme://host.
    func url(scheme: String, host: String) -> String {
        switch self {
        case .path(let p): return scheme + "://" + host + p
        case .absolute(let u): return u.origin + u.pathAndQuery
        }
    }

    /// Whether a request to scheme://host/path is the provider's callback.
    func matches(host: String, path: String) -> Bool {
        switch self {
        case .path(let p): return path == p
        case .absolute(let u): return path == u.pathAndQuery && host.lowercased() == u.host
        }
    }
}
