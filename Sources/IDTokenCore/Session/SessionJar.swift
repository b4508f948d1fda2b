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
    /// Session cookie values tried per request. A browser sends one (two at most, when an old cookie of
    /// another path lingers); a header full of copies must not cost one decryption or store lookup each.
    static let maximumValuesTried = 2
    /// Server-side sessions indexed per `sid` and per `sub` for back-channel logout; beyond it the oldest
    /// leave the index (they still end by idle timeout and lifetime).
    static let maximumIndexed = 64

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
        var reassembled = false
        for value in request.cookies.values(named: cookieName).prefix(Self.maximumValuesTried) {
            switch config.sessionStore {
            case .cookie:
                var sealed = value
                if value.utf8.starts(with: Self.chunkMarker.utf8) {
                    // One reassembly per request, whatever the number of markers.
                    guard !reassembled, let whole = reassemble(value) else { continue }
                    reassembled = true
                    sealed = whole
                }
                guard let opened = open(String(sealed)) else { continue }
                return Loaded(session: opened.session, id: nil, sealed: opened.sealed, renders: opened.renders)
            case .cache:
                // Only what could be an ID this module issued reaches the store.
                guard LoginState.isRandomToken(value), case .success(let stored) = store.get(storeKey(.session, String(value)), now: now),
                      let opened = open(String(decoding: stored, as: UTF8.self)) else { continue }
                return Loaded(session: opened.session, id: String(value), sealed: opened.sealed, renders: opened.renders)
            }
        }
        return nil
    }

    /// Opens a sealed session, or finds it already opened by this child.
    private func open(_ sealed: String) -> (session: Session, sealed: String, renders: [OpenedSessions.RenderShape: RenderedClaims])? {
        if let entry = opened?.entry(for: sealed) { return (entry.session, sealed, entry.renders) }
        request.work.sealedOpens += 1
        guard let session = SealedCookie.open(sealed[...], keys: config.keys, purpose: .session, context: config.sessionContext,
                                              maximumLength: 160 * 1024).flatMap(Session.init(decoding:)) else { return nil }
        opened?.remember(session, for: sealed)
        return (session, sealed, [:])
    }

    private func reassemble(_ marker: Substring) -> Substring? {
        guard let n = Int(marker.dropFirst(Self.chunkMarker.count)), (1...Self.maximumChunks).contains(n),
              let parts = request.cookies.numbered(cookieName + "_", count: n) else { return nil }
        return parts.joined()[...]
    }

    // MARK: Writing

    /// Stores the session and returns the Set-Cookie headers that go with it; nil when it could not be
    /// stored (sealing or the shared store failed).
    func save(_ session: Session, id existing: String?, now: Int64) -> [String]? {
        guard let sealed = SealedCookie.seal(session.encoded(), keys: config.keys, purpose: .session, context: config.sessionContext) else {
            return nil
        }
        switch config.sessionStore {
        case .cookie:
            return cookieHeaders(for: sealed)
        case .cache:
            var rng = SystemRandomNumberGenerator()
            let id = existing ?? LoginState.randomToken(using: &rng)
            let until = storeExpiry(session, now: now)
            guard store.put(storeKey(.session, id), Array(sealed.utf8), expiresAt: until, now: now) == .ok else { return nil }
            if existing == nil { index(session, id: id, until: until, now: now) }
            return existing == nil ? [cookie(cookieName, id).headerValue] : []
        }
    }

    enum Refresh {
        case refreshed([String])
        /// Storing failed: the session stays as it was.
        case failed
        /// Logout or back-channel logout ended it while this request was under way.
        case ended
    }

    /// Re-issues a session the request already carries. In the store, a logout may have removed it
    /// between this request's load and this write: the write would bring it back. So the tombstone that
    /// every removal leaves first is looked at after writing, and a session found ended is removed again
    /// (whatever the interleaving, the removal wins).
    func refresh(_ loaded: Loaded, now: Int64) -> Refresh {
        guard let cookies = save(loaded.session, id: loaded.id, now: now) else { return .failed }
        if let id = loaded.id, case .success = store.get(storeKey(.ended, id), now: now) {
            _ = store.remove(storeKey(.session, id))
            return .ended
        }
        return .refreshed(cookies)
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

    /// Deletions for the chunk cookies from `first` on; only names this module could have set (the
    /// chunk numbers it uses), so a header stuffed with look-alikes gets no more deletions than that.
    private func clearingChunks(from first: Int) -> [String] {
        var seen = Set<Int>()
        return request.cookies.names(withPrefix: cookieName + "_").compactMap { name in
            guard let i = Int(name.dropFirst(cookieName.count + 1)), i >= first, i < Self.maximumChunks,
                  seen.insert(i).inserted else { return nil }
            return cookie(String(name), "", maxAge: 0).headerValue
        }
    }

    // MARK: Ending

    /// Ends the session (cache mode: tombstone, then removal) and returns the headers that clear its cookies.
    func clear(_ loaded: Loaded?, now: Int64) -> [String] {
        if let id = loaded?.id { end(id: id, now: now) }
        guard request.cookies.values(named: cookieName).first != nil else { return clearingChunks(from: 0) }
        return [cookie(cookieName, "", maxAge: 0).headerValue] + clearingChunks(from: 0)
    }

    /// The tombstone first: a refresh that wrote the session after this removal finds it and undoes its
    /// write. It lives as long as the session could have.
    private func end(id: String, now: Int64) {
        _ = store.put(storeKey(.ended, id), [1], expiresAt: now + config.sessionLifetime + config.clockSkew, now: now)
        _ = store.remove(storeKey(.session, id))
    }

    /// Ends every server-side session of a provider session (`sid`) or user (`sub`): back-channel logout.
    func endSessions(sid: String?, sub: String?, now: Int64) -> Int {
        let key: [UInt8]
        if let sid { key = storeKey(.sid, sid) } else if let sub { key = storeKey(.sub, sub) } else { return 0 }
        var ended = 0
        for id in indexed(key, now: now) {
            if case .success = store.get(storeKey(.session, id), now: now) { ended += 1 }
            end(id: id, now: now)
        }
        _ = store.remove(key)
        return ended
    }

    /// Indexes a new server-side session by sid and by sub, for back-channel logout: every session of
    /// either, newest first (one provider session can have several here: a login repeated, a copy).
    private func index(_ session: Session, id: String, until: Int64, now: Int64) {
        let lifetime = max(until, session.expiresAt)
        var keys = [storeKey(.sub, session.subject)]
        if let sid = session.sid { keys.append(storeKey(.sid, sid)) }
        for key in keys {
            let ids = [id] + indexed(key, now: now).filter { $0 != id }.prefix(Self.maximumIndexed - 1)
            _ = store.put(key, Array(ids.joined(separator: "\n").utf8), expiresAt: lifetime, now: now)
        }
    }

    private func indexed(_ key: [UInt8], now: Int64) -> [String] {
        guard case .success(let v) = store.get(key, now: now) else { return [] }
        return String(decoding: v, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The sections of the store's key space.
    enum Section: String {
        case session = "s", ended = "ended", sid = "sid", sub = "sub", used = "used", jti = "jti"
    }

    /// Store keys are hashed with the site's context: a dump of the store holds no cookie value, two
    /// sites sharing a store never see each other's entries, and every key is short (mod_socache_redis
    /// and memcache refuse keys much over 100 bytes).
    func storeKey(_ section: Section, _ name: String) -> [UInt8] {
        let kind = section.rawValue
        let digest = SHA256.hash(data: Array((config.storeContext + "\u{0}" + kind + "\u{0}" + name).utf8))
        return Array("idtoken:\(kind):".utf8) + Array(Base64URL.encode(digest).utf8)
    }
}
