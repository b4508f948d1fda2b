import Crypto

/// Where a session lives between requests: sealed into the browser's cookies (split into chunks when it
/// outgrows one), or in the shared store under a random ID that is all the cookie then holds.
struct SessionJar {
    let config: SiteConfig
    let request: AuthRequest
    let store: any SharedStore
    /// This child's already-opened cookie sessions (nil: always open afresh).
    var opened: OpenedSessions? = nil

    static let baseName = "idtoken_session"
    static let chunkMarker = "chunks-"
    static let maximumChunks = 32
    /// Browsers keep about 4096 bytes of name, value and attributes per cookie; stay below with margin.
    static let maximumSetCookieLength = 4000

    /// `__Host-` makes the browser refuse the cookie unless it is Secure, host-only and for path "/",
    /// so a sibling subdomain cannot plant or shadow it (RFC 6265bis §4.1.3.2).
    var cookieName: String {
        request.isSecure && config.cookiePath == "/" && config.cookieDomain == nil ? "__Host-" + Self.baseName : Self.baseName
    }

    struct Loaded {
        var session: Session
        /// The server-side ID (cache mode).
        var id: String?
        /// The sealed value the session was opened from, its key in `opened`.
        var sealed: String? = nil
        /// What `opened` already holds rendered for it.
        var renders: [OpenedSessions.RenderShape: RenderedClaims] = [:]
    }

    // MARK: Reading

    /// The session the request carries, expired or not (logout still wants its id_token_hint).
    func load(now: Int64) -> Loaded? {
        let cookies = CookieHeader(request.cookie)
        for value in cookies.values(named: cookieName) {
            switch config.sessionStore {
            case .cookie:
                guard let sealed = reassemble(value, cookies), let opened = open(String(sealed)) else { continue }
                return Loaded(session: opened.session, id: nil, sealed: opened.sealed, renders: opened.renders)
            case .cache:
                guard value.utf8.count <= 64, case .success(let stored) = store.get(storeKey("s", String(value)), now: now),
                      let opened = open(String(decoding: stored, as: UTF8.self)) else { continue }
                return Loaded(session: opened.session, id: String(value), sealed: opened.sealed, renders: opened.renders)
            }
        }
        return nil
    }

    /// Opens a sealed session, or finds it already opened by this child.
    private func open(_ sealed: String) -> (session: Session, sealed: String, renders: [OpenedSessions.RenderShape: RenderedClaims])? {
        if let entry = opened?.entry(for: sealed) { return (entry.session, sealed, entry.renders) }
        guard let session = SealedCookie.open(sealed[...], keys: config.keys, purpose: .session, context: config.cookieContext,
                                              maximumLength: 160 * 1024).flatMap(Session.init(decoding:)) else { return nil }
        opened?.remember(session, for: sealed)
        return (session, sealed, [:])
    }

    private func reassemble(_ value: Substring, _ cookies: CookieHeader) -> Substring? {
        guard value.utf8.starts(with: Self.chunkMarker.utf8) else { return value }
        guard let n = Int(value.dropFirst(Self.chunkMarker.count)), (1...Self.maximumChunks).contains(n) else { return nil }
        var whole = ""
        for i in 0..<n {
            guard let part = cookies.values(named: cookieName + "_\(i)").first else { return nil }
            whole += part
        }
        return whole[...]
    }

    // MARK: Writing

    /// Stores the session and returns the Set-Cookie headers that go with it; nil when it could not be
    /// stored (sealing or the shared store failed).
    func save(_ session: Session, id existing: String?, now: Int64) -> [String]? {
        guard let sealed = SealedCookie.seal(session.encoded(), keys: config.keys, purpose: .session, context: config.cookieContext) else {
            return nil
        }
        switch config.sessionStore {
        case .cookie:
            return cookieHeaders(for: sealed)
        case .cache:
            var rng = SystemRandomNumberGenerator()
            let id = existing ?? LoginState.randomToken(using: &rng)
            let until = storeExpiry(session, now: now)
            guard store.put(storeKey("s", id), Array(sealed.utf8), expiresAt: until, now: now) == .ok else { return nil }
            if existing == nil { index(session, id: id, until: until, now: now) }
            return existing == nil ? [cookie(cookieName, id).headerValue] : []
        }
    }

    private func storeExpiry(_ session: Session, now: Int64) -> Int64 {
        config.sessionIdleTimeout > 0 ? min(session.expiresAt, now + config.sessionIdleTimeout) : session.expiresAt
    }

    /// SameSite=None is honoured by browsers only with Secure, so it always gets it.
    private func cookie(_ name: String, _ value: String, maxAge: Int64? = nil) -> SetCookie {
        SetCookie(name: name, value: value, path: config.cookiePath, domain: config.cookieDomain, maxAge: maxAge,
                  secure: request.isSecure || config.cookieSameSite == .none, sameSite: config.cookieSameSite)
    }

    /// One cookie when it fits; else a marker cookie and numbered chunks sized with their attributes
    /// counted. Chunks the browser still holds from a larger session are cleared.
    private func cookieHeaders(for sealed: String) -> [String] {
        let single = cookie(cookieName, sealed).headerValue
        var headers = [String]()
        var count = 0
        if single.utf8.count <= Self.maximumSetCookieLength {
            headers.append(single)
        } else {
            let overhead = cookie(cookieName + "_\(Self.maximumChunks)", "").headerValue.utf8.count
            // A very long cookie path or domain leaves little room per chunk, never none (no division
            // by zero on a request path).
            let size = max(512, Self.maximumSetCookieLength - overhead)
            let bytes = Array(sealed.utf8)
            count = (bytes.count + size - 1) / size
            headers.append(cookie(cookieName, Self.chunkMarker + String(count)).headerValue)
            for i in 0..<count {
                let part = bytes[(i * size)..<min(bytes.count, (i + 1) * size)]
                headers.append(cookie(cookieName + "_\(i)", String(decoding: part, as: UTF8.self)).headerValue)
            }
        }
        return headers + clearingChunks(from: count)
    }

    private func clearingChunks(from first: Int) -> [String] {
        CookieHeader(request.cookie).names(withPrefix: cookieName + "_").compactMap { name in
            guard let i = Int(name.dropFirst(cookieName.count + 1)), i >= first else { return nil }
            return cookie(String(name), "", maxAge: 0).headerValue
        }
    }

    // MARK: Ending

    /// Removes the session from the store (cache mode) and returns the headers that clear its cookies.
    func clear(_ loaded: Loaded?) -> [String] {
        if let id = loaded?.id { _ = store.remove(storeKey("s", id)) }
        guard CookieHeader(request.cookie).values(named: cookieName).first != nil else { return clearingChunks(from: 0) }
        return [cookie(cookieName, "", maxAge: 0).headerValue] + clearingChunks(from: 0)
    }

    /// Ends every server-side session of a provider session (`sid`) or user (`sub`): back-channel logout.
    func endSessions(sid: String?, sub: String?, now: Int64) -> Int {
        var ended = 0
        var ids = [String]()
        if let sid, case .success(let v) = store.get(storeKey("sid", sid), now: now) { ids.append(String(decoding: v, as: UTF8.self)) }
        if sid == nil, let sub, case .success(let v) = store.get(storeKey("sub", sub), now: now) {
            ids += String(decoding: v, as: UTF8.self).split(separator: "\n").map(String.init)
        }
        for id in ids where store.remove(storeKey("s", id)) == .ok { ended += 1 }
        if let sid { _ = store.remove(storeKey("sid", sid)) }
        if sid == nil, let sub { _ = store.remove(storeKey("sub", sub)) }
        return ended
    }

    /// Indexes a new server-side session by sid and by sub, for back-channel logout.
    private func index(_ session: Session, id: String, until: Int64, now: Int64) {
        let lifetime = max(until, session.expiresAt)
        if let sid = session.sid { _ = store.put(storeKey("sid", sid), Array(id.utf8), expiresAt: lifetime, now: now) }
        var ids = [id]
        if case .success(let v) = store.get(storeKey("sub", session.subject), now: now) {
            ids += String(decoding: v, as: UTF8.self).split(separator: "\n").map(String.init).filter { $0 != id }.prefix(19)
        }
        _ = store.put(storeKey("sub", session.subject), Array(ids.joined(separator: "\n").utf8), expiresAt: lifetime, now: now)
    }

    /// Store keys are hashed with the site's context: a dump of the store holds no cookie value, two
    /// sites sharing a store never see each other's entries, and every key is short (mod_socache_redis
    /// and memcache refuse keys much over 100 bytes).
    func storeKey(_ kind: String, _ name: String) -> [UInt8] {
        let digest = SHA256.hash(data: Array((config.cookieContext + "\u{0}" + kind + "\u{0}" + name).utf8))
        return Array("idtoken:\(kind):".utf8) + Array(Base64URL.encode(digest).utf8)
    }
}
