import Crypto

/// One request's view of its session: the cookie that carries it (name, attributes, chunks), the site's
/// placement that keeps it (SessionPlacement: cookie or cache), and the store and opened-session memory
/// the placements use.
struct SessionJar {
    let config: SiteConfig
    let request: AuthRequest
    let store: any SharedStore
    let placement: any SessionPlacement
    /// This child's already-opened sessions, by sealed value.
    let opened: OpenedSessions?
    let profile: SessionProfile

    init(site: Site, request: AuthRequest) {
        config = site.config
        self.request = request
        store = site.store(for: request)
        placement = site.placement
        opened = site.openedSessions
        profile = site.sessionProfile
    }

    static let baseName = "idtoken_session"
    /// Session cookie values tried per request. A browser sends one (two at most, when an old cookie of
    /// another path lingers); a header full of copies must not cost one decryption or store lookup each.
    static let maximumValuesTried = 2

    /// `__Host-` makes the browser refuse the cookie unless it is Secure, host-only and for path "/",
    /// so a sibling subdomain cannot plant or shadow it (RFC 6265bis §4.1.3.2).
    var cookieName: String { Self.cookieName(secure: request.isSecure, config: config) }

    static func cookieName(secure: Bool, config: SiteConfig) -> String {
        secure && config.cookiePath == "/" && config.cookieDomain == nil ? "__Host-" + baseName : baseName
    }

    struct Loaded {
        var session: Session
        /// The server-side ID (cache placement).
        var id: String?
        /// The sealed value the session was opened from, its key in `opened`.
        var sealed: String? = nil
        /// What `opened` already holds rendered for it.
        var renders: [OpenedSessions.RenderShape: RenderedClaims] = [:]
        /// The shared store's write count read before the session was (SharedStore.writes).
        var storeWrites: UInt64? = nil
    }

    enum Saved {
        /// Stored; the Set-Cookie headers that carry it. `overflowed`: too big for this browser's cookies
        /// and this server's request header limit, it went to the shared store instead.
        case stored([String], overflowed: Bool = false)
        /// Too big for the cookies, and no shared store to hold it.
        case tooLarge(bytes: Int, limit: Int)
        /// The store refused or failed.
        case failed
    }

    enum Refresh {
        case refreshed([String])
        /// Storing failed: the session stays as it was.
        case failed
        /// Logout or back-channel logout ended it while this request was under way.
        case ended
    }

    // MARK: What the placement does

    func load(now: Int64) -> Loaded? { placement.load(self, now: now) }

    func save(_ session: Session, now: Int64) -> Saved { placement.save(session, id: nil, self, now: now) }

    func refresh(_ loaded: Loaded, now: Int64) -> Refresh { placement.refresh(loaded, self, now: now) }

    /// Ends the session where it is kept and returns the headers that clear its cookies.
    func clear(_ loaded: Loaded?, now: Int64) -> [String] {
        if let loaded { placement.end(loaded, self, now: now) }
        guard request.cookies.values(named: cookieName).first != nil else { return clearingChunks(from: 0) }
        return [cookie(cookieName, "", maxAge: 0).headerValue] + clearingChunks(from: 0)
    }

    func endSessions(sid: String?, sub: String?, now: Int64) -> Int? { placement.endSessions(sid: sid, sub: sub, self, now: now) }

    // MARK: For the placements

    func sessionCookieValues() -> ArraySlice<Substring> {
        request.cookies.values(named: cookieName).prefix(Self.maximumValuesTried)
    }

    func seal(_ session: Session) -> String? {
        session.encoded(profile).flatMap {
            SealedCookie.seal($0, keys: config.keys, purpose: .session, context: profile.sessionContext)
        }
    }

    /// Opens a sealed session, or finds it already opened by this child.
    func open(_ sealed: String) -> Loaded? {
        if let entry = opened?.entry(for: sealed) { return Loaded(session: entry.session, sealed: sealed, renders: entry.renders) }
        request.work.sealedOpens += 1
        guard let session = SealedCookie.open(sealed[...], keys: config.keys, purpose: .session, context: config.sessionContext,
                                              maximumLength: 160 * 1024).flatMap({ Session(decoding: $0, profile: profile) }) else { return nil }
        opened?.remember(session, for: sealed)
        return Loaded(session: session, sealed: sealed)
    }

    /// SameSite=None is honoured by browsers only with Secure, so it always gets it.
    func cookie(_ name: String, _ value: String, maxAge: Int64? = nil) -> SetCookie {
        SetCookie(name: name, value: value, path: config.cookiePath, domain: config.cookieDomain, maxAge: maxAge,
                  secure: request.isSecure || config.cookieSameSite == .none, sameSite: config.cookieSameSite)
    }

    /// Deletions for the chunk cookies from `first` on; only names this module could have set (the
    /// chunk numbers it uses), so a header stuffed with look-alikes gets no more deletions than that.
    func clearingChunks(from first: Int) -> [String] {
        var seen = Set<Int>()
        return request.cookies.names(withPrefix: cookieName + "_").compactMap { name in
            guard let i = Int(name.dropFirst(cookieName.count + 1)), i >= first, i < CookiePlacement.maximumChunks,
                  seen.insert(i).inserted else { return nil }
            return cookie(String(name), "", maxAge: 0).headerValue
        }
    }

    /// The room this response's session cookies have (CookieBudget): the server's header limit, less
    /// what the browser sends besides them (the state cookie this response clears does not count).
    var budget: CookieBudget {
        let name = cookieName
        var others = 0, count = 0
        for pair in request.cookies.pairs {
            if pair.name == name || pair.name.hasPrefix(name + "_") || ASCII.contains(pair.name, LoginState.cookiePrefix) { continue }
            others += pair.name.utf8.count + 1 + pair.value.utf8.count
            count += 1
        }
        return CookieBudget(fieldLimit: config.limitRequestFieldSize, othersLength: others + 2 * max(0, count - 1))
    }

    func storeKey(_ section: StoreKey.Section, _ name: String) -> [UInt8] { StoreKey.make(section, name, context: config.storeContext) }
}
