import Crypto

/// The completed-login marker: a small sealed cookie set beside the session by every login that
/// completes. It remembers when this browser last completed a login, which login that was (a digest of
/// its state) and where it returned, and how many logins the browser completed in a row each followed
/// at once by a request without a session. With it the module can
///
/// - stop a login loop (LoginStart): a browser that keeps coming back from the provider without its
///   session (the session cookie refused, not sent back, or not opening here) gets, after `loopLimit`
///   such round trips, a page and one log line saying what is wrong instead of another redirect;
/// - send a replayed login response on (CallbackHandler): the Back button makes the browser load the
///   provider's auto-submitting page again, which posts the spent response once more; the browser that
///   completed that very login goes to its page instead of an error.
///
/// `SameSite=None; Secure`, like the state cookie, since it must come with the provider's cross-site
/// POST (a Lax or Strict cookie would not); `Path=/`, so every protected location and the redirect URI
/// see it whatever `IDTokenCookiePath` says; host-only, `__Host-` over https. It grants nothing: it only
/// chooses between a redirect to a page of this site and an error page.
struct LoginMarker: Equatable {
    /// When the login completed.
    var completedAt: Int64
    /// Logins completed in a row (this one included), each started within `loopWindow` of the previous
    /// one's completion by a request without a session.
    var streak: Int
    /// The first `digestLength` bytes of SHA-256 of the login's state.
    var stateDigest: [UInt8]
    /// Where the login returned; a long one shortened (`shortened`), to keep this cookie small.
    var returnTo: String

    static let baseName = "idtoken_login"
    /// How long the browser keeps the marker: the time a replayed response (Back) is sent on.
    static let lifetime: Int64 = 600
    /// A request without a session this soon after a completed login counts as a round trip of a loop.
    /// A loop's next request follows the login's redirect at once; a user who logs in again later does
    /// not start a streak.
    static let loopWindow: Int64 = 20
    /// Round trips without a session after which the loop page is shown instead of another login.
    static let loopLimit = 3
    /// A return URL longer than this is kept as its path (or "/") in the marker.
    static let returnToLimit = 512
    static let digestLength = 16
    private static let format: UInt8 = 1
    /// The largest sealed value opened: a marker is a few hundred bytes.
    private static let maximumSealedLength = 2048

    static func cookieName(secure: Bool) -> String { secure ? LoginState.securePrefix + baseName : baseName }

    static func digest(ofState state: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(state.utf8)).prefix(digestLength))
    }

    /// The return URL as the marker keeps it: whole when short, else its path, else "/".
    static func shortened(_ returnTo: String) -> String {
        if returnTo.utf8.count <= returnToLimit { return returnTo }
        let path = Substring(returnTo.utf8.prefix { $0 != UInt8(ascii: "?") })
        return path.utf8.count <= returnToLimit ? String(path) : "/"
    }

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(Self.format)
        w.i64(completedAt)
        w.u8(UInt8(clamping: streak))
        w.string(Base64URL.encode(stateDigest))
        w.string(returnTo)
        return w.bytes
    }

    init(completedAt: Int64, streak: Int, stateDigest: [UInt8], returnTo: String) {
        self.completedAt = completedAt
        self.streak = streak
        self.stateDigest = stateDigest
        self.returnTo = returnTo
    }

    init?(decoding bytes: [UInt8]) {
        var r = ByteReader(bytes)
        guard r.u8() == Self.format, let completed = r.time(), let streak = r.u8(), let digest = r.string(),
              let raw = Base64URL.decode(digest[...]), raw.count == Self.digestLength, let returnTo = r.string(),
              r.isAtEnd, LoginState.isLocalTarget(returnTo) else { return nil }
        self.init(completedAt: completed, streak: Int(streak), stateDigest: raw, returnTo: returnTo)
    }

    /// The marker this request carries, when one opens and is not older than its lifetime. One value is
    /// tried (a browser holds one per name; more is someone else's doing).
    static func read(_ request: AuthRequest, config: SiteConfig, now: Int64) -> LoginMarker? {
        guard let value = request.cookies.values(named: cookieName(secure: request.isSecure)).first else { return nil }
        return open(value, request: request, config: config, now: now)
    }

    static func open(_ value: Substring, request: AuthRequest, config: SiteConfig, now: Int64) -> LoginMarker? {
        request.work.sealedOpens += 1
        guard let plain = SealedCookie.open(value, keys: config.keys, purpose: .marker, context: context(config),
                                            maximumLength: maximumSealedLength),
              let marker = LoginMarker(decoding: plain), now - marker.completedAt <= lifetime else { return nil }
        return marker
    }

    /// Bound to the provider and client only, not to the session profile: a server with the same key
    /// but another REMOTE_USER or claim mapping, whose sessions do not open here, still shows the loop
    /// for what it is (the marker grants nothing, so it needs no tighter binding).
    static func context(_ config: SiteConfig) -> SealContext { SealContext(current: config.storeContext) }

    /// Whether this request comes soon enough after the marker's login to count as a round trip.
    func isRecent(now: Int64, clockSkew: Int64) -> Bool {
        let since = now - completedAt
        return since >= -clockSkew && since <= Self.loopWindow
    }

    /// Whether this marker is that of the login with this state.
    func isOf(state: String) -> Bool {
        let other = Self.digest(ofState: state)
        guard other.count == stateDigest.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<other.count { diff |= other[i] ^ stateDigest[i] }
        return diff == 0
    }

    func setCookie(secure: Bool, config: SiteConfig) -> String? {
        guard let sealed = SealedCookie.seal(encoded(), keys: config.keys, purpose: .marker, context: Self.context(config)) else {
            return nil
        }
        return Self.cookie(secure: secure, value: sealed, maxAge: Self.lifetime).headerValue
    }

    static func clearing(secure: Bool) -> String { cookie(secure: secure, value: "", maxAge: 0).headerValue }

    private static func cookie(secure: Bool, value: String, maxAge: Int64) -> SetCookie {
        SetCookie(name: cookieName(secure: secure), value: value, maxAge: maxAge, secure: true, sameSite: SetCookie.SameSite.none)
    }
}

/// What the loop guard says about a browser that keeps coming back without a session: the likely cause,
/// from the request and the site's settings, for the admin's log line.
enum LoopDiagnosis {
    static func explain(_ request: AuthRequest, site: Site, now: Int64) -> String {
        let config = site.config
        let jar = SessionJar(site: site, request: request)
        let path = String(request.path)
        guard !request.cookies.values(named: jar.cookieName).isEmpty else {
            var causes = [String]()
            if !SiteConfig.path(path, isInside: config.cookiePath) {
                causes.append("IDTokenCookiePath \(config.cookiePath) does not cover \(Masking.printable(path, max: 80)), so the browser does not send the session cookie here")
            }
            let host = hostName(request.host)
            if let domain = config.cookieDomain, !domainMatches(host: host, domain: domain) {
                causes.append("IDTokenCookieDomain \(domain) does not match the host \(Masking.printable(host, max: 80)), so the browser refuses the session cookie")
            }
            if !request.isSecure, config.cookieSameSite == .none, !isLoopback(host) {
                causes.append("IDTokenCookieSameSite None makes the session cookie Secure, which browsers drop over plain http: serve the site over https")
            }
            if causes.isEmpty {
                causes.append("the browser does not send back the session cookie \(jar.cookieName) set at the login: cookies blocked for this site in the browser, a proxy or another module dropping the Set-Cookie or Cookie header, or the site reached under another host name or scheme (http vs https) than the one the login returned to")
            }
            return "no session cookie came back: " + causes.joined(separator: "; ")
        }
        if jar.load(now: now) != nil {
            return "the session cookie comes back but its session has already ended (its lifetime, idle timeout or token expiry): a provider clock behind this server's with IDTokenSessionCapToTokenExpiry On, or a clock ahead here?"
        }
        if config.sessionStore == .cache {
            return "the session cookie comes back but its session is not in the shared store: with IDTokenCache none each child process keeps its own sessions (load mod_socache_shmcb, or use redis or memcache across servers), or the store is full or failing"
        }
        return "the session cookie comes back but does not open here: a chunk of a large session dropped by the browser (keep fewer claims with IDTokenClaimsKeep, or use IDTokenSessionStore cache), or servers behind this name with different REMOTE_USER or claim settings (IDTokenRemoteUserClaim, IDTokenClaimsKeep, IDTokenClaimsDrop, IDTokenClaimDelimiter)?"
    }

    static func hostName(_ host: String) -> String {
        let h = host.lowercased()
        if h.hasPrefix("[") { return String(h.prefix { $0 != "]" }) + "]" }
        return String(h.prefix { $0 != ":" })
    }

    /// RFC 6265 §5.1.3, for a host name (an IP address only matches itself).
    static func domainMatches(host: String, domain: String) -> Bool {
        let d = domain.lowercased().drop { $0 == "." }
        return host == d || host.hasSuffix("." + d)
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasSuffix(".localhost") || host.hasPrefix("127.") || host == "[::1]"
    }
}
