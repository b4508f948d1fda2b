/// The facts of one HTTP request that the decision depends on, as the C module gathered them.
package struct AuthRequest {
    package var method: String
    package var scheme: String
    package var host: String
    /// Path and query as sent, still percent-encoded.
    package var target: String
    /// The Cookie header as sent; `cookies` is it parsed, once per request.
    package var cookie: String? { didSet { cookies = CookieHeader(cookie, meter: work) } }
    private(set) var cookies: CookieHeader
    package var contentType: String?
    package var accept: String?
    package var secFetchMode: String?
    package var secFetchDest: String?
    package var xRequestedWith: String?
    /// Sec-Fetch-Site, Origin and Referer: whether a navigation came from another site (logout CSRF).
    package var secFetchSite: String?
    package var origin: String?
    package var referer: String?
    /// The connection's peer address (the proxy in front, if any) and the headers a proxy describes the
    /// browser's request with: believed only from a trusted peer (TrustedProxies), which then replaces
    /// `scheme` and `host` before anything is decided.
    package var peerAddress: String?
    package var forwarded: String?
    package var xForwardedProto: String?
    package var xForwardedHost: String?
    package var xForwardedPort: String?
    /// A subrequest or internal redirect (ErrorDocument, RewriteRule, FallbackResource...): decided
    /// afresh like any request, but it never reaches the callback (its body belongs to another request)
    /// and never re-issues the session (the request it came from already did).
    package var isInternal = false
    /// A subrequest, or the internal redirect to an ErrorDocument: a redirect to the provider would not
    /// reach the browser, so no login starts there.
    package var cannotRedirect = false
    /// Nil until the core asked for the body.
    package var body: [UInt8]?
    package var bodyTooLarge = false
    /// The server's shared store, when Apache has one.
    package var store: (any SharedStore)?
    /// The settings of the <Location>/<Directory> blocks that apply, overlaid.
    package var dir = DirConfig()
    /// Which blocks those are (the module's handles, in order): with the session cookie, what a pass is
    /// remembered by (PassMemo).
    package var dirHandles: [Int32] = []
    /// What deciding this request cost, for the module's trace line and the amplification tests.
    package let work: WorkMeter

    package init(method: String, scheme: String, host: String, target: String, cookie: String? = nil,
                contentType: String? = nil, accept: String? = nil, secFetchMode: String? = nil,
                secFetchDest: String? = nil, xRequestedWith: String? = nil, secFetchSite: String? = nil,
                origin: String? = nil, referer: String? = nil, isInternal: Bool = false, cannotRedirect: Bool = false, body: [UInt8]? = nil,
                bodyTooLarge: Bool = false, store: (any SharedStore)? = nil, dir: DirConfig = DirConfig(),
                work: WorkMeter = WorkMeter()) {
        self.work = work
        self.method = method
        self.scheme = scheme
        self.host = host
        self.target = target
        self.cookie = cookie
        self.cookies = CookieHeader(cookie, meter: work)
        self.contentType = contentType
        self.accept = accept
        self.secFetchMode = secFetchMode
        self.secFetchDest = secFetchDest
        self.xRequestedWith = xRequestedWith
        self.secFetchSite = secFetchSite
        self.origin = origin
        self.referer = referer
        self.isInternal = isInternal
        self.cannotRedirect = cannotRedirect
        self.body = body
        self.bodyTooLarge = bodyTooLarge
        self.store = store
        self.dir = dir
    }

    // On the UTF-8 bytes: Character-wise scanning is needlessly slow for every request.
    var path: Substring {
        let utf8 = target.utf8
        return Substring(utf8[..<(utf8.firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex)])
    }

    var query: Substring? {
        let utf8 = target.utf8
        guard let q = utf8.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        return Substring(utf8[utf8.index(after: q)...])
    }

    var isSecure: Bool { scheme == "https" }

    /// Whether the browser is navigating (and can follow a redirect to a login page), as opposed to a
    /// script's fetch/XHR that would only receive the provider's HTML. Any one signal of a script makes
    /// it one: `Sec-Fetch-Mode` other than navigate, `Sec-Fetch-Dest` other than document,
    /// `X-Requested-With: XMLHttpRequest`, an `Accept` without HTML (`Sec-Fetch-Mode: navigate` alone,
    /// as an iframe's load sends with `Sec-Fetch-Dest: iframe`, does not make a page navigation).
    var isNavigation: Bool {
        if let mode = secFetchMode, !ASCII.equalsIgnoringCase(mode, "navigate") { return false }
        if let dest = secFetchDest, !ASCII.equalsIgnoringCase(dest, "document") { return false }
        if let with = xRequestedWith, ASCII.equalsIgnoringCase(with, "xmlhttprequest") { return false }
        if let accept {
            return ASCII.contains(accept, "text/html", ignoringCase: true)
                || ASCII.contains(accept, "application/xhtml+xml", ignoringCase: true) || ASCII.contains(accept, "*/*")
        }
        return true
    }
}

/// Counts the work one request causes that grows with what the client sends, so that tests can show an
/// attack costs no more than a normal request (in counts, which a busy machine does not change); and
/// what the request did for the metrics (`events`).
package final class WorkMeter {
    /// Searches of the parsed Cookie header for a name (each one linear in the header).
    package internal(set) var cookieLookups = 0
    /// AES-GCM open attempts of sealed cookie or store values (a hit in the opened-session cache: none).
    package internal(set) var sealedOpens = 0
    /// What the request did that the metrics count, for the module to add to the shared numbers. One
    /// request's, on its one thread: the runtime's exclusivity checks (a hundred instructions a request)
    /// would guard nothing.
    @exclusivity(unchecked) package internal(set) var events = MetricEvents()
    /// A session was found whose idle time or lifetime was over (SessionGate).
    @exclusivity(unchecked) var foundEndedSession = false
    /// Store calls that failed (the store down, not an entry missing): a session that may be there
    /// could not be read, so the request gets 503 rather than a new login.
    package internal(set) var storeFailures = 0

    package init() {}
}
