/// What one browser and this httpd will carry back: a session the next request cannot bring is worse
/// than none (a login loop, or httpd's 400 for an over-long header). Browsers keep a cookie of up to
/// about 4096 bytes of name, value and attributes (RFC 6265 §6.1 asks at least that; Chromium and Firefox
/// stop there), and send every cookie of the site in one `Cookie` header line, which httpd refuses past
/// LimitRequestFieldSize (8190 bytes by default).
struct CookieBudget {
    /// Per Set-Cookie, with name and attributes; below 4096 with margin.
    static let maximumSetCookieLength = 4000
    /// Kept free in the Cookie header for cookies of the application (and other logins in flight),
    /// which the cross-site POST that opens the session does not show us.
    static let reserveForOthers = 1024

    /// httpd's LimitRequestFieldSize for this server.
    let fieldLimit: Int
    /// The request's Cookie header, without this module's session cookies (they are replaced).
    let othersLength: Int

    /// The most the session's cookies may take in the Cookie header.
    var sessionLimit: Int { max(0, fieldLimit - "Cookie: ".utf8.count - othersLength - Self.reserveForOthers) }

    /// The length `name=value` pairs add to a Cookie header.
    static func cookieHeaderLength(_ pairs: [(name: String, value: String)]) -> Int {
        pairs.reduce(0) { $0 + $1.name.utf8.count + 1 + $1.value.utf8.count } + 2 * max(0, pairs.count - 1)
    }

    func fits(_ pairs: [(name: String, value: String)]) -> Bool {
        Self.cookieHeaderLength(pairs) + (othersLength > 0 ? 2 : 0) <= sessionLimit
    }
}
