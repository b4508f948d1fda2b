/// The session in the shared store (IDTokenCache) under a random ID, which is all the cookie holds.
/// Logout and back-channel logout revoke it everywhere the store is shared; every removal leaves a
/// tombstone first, so a refresh racing it cannot bring the session back.
struct CachePlacement: SessionPlacement {
    /// Server-side sessions indexed per `sid` and per `sub` for back-channel logout; beyond it the oldest
    /// leave the index (they still end by idle timeout and lifetime).
    static let maximumIndexed = 64

    var isRevocable: Bool { true }

    func load(_ jar: SessionJar, now: Int64) -> SessionJar.Loaded? {
        for value in jar.sessionCookieValues() {
            if let opened = load(id: value, jar, now: now) { return opened }
        }
        return nil
    }

    /// The session stored under `value`; only what could be an ID this module issued reaches the store.
    func load(id value: Substring, _ jar: SessionJar, now: Int64) -> SessionJar.Loaded? {
        guard LoginState.isRandomToken(value) else { return nil }
        // Before the read: a write after it moves the count past what FastPass remembers.
        let writes = jar.store.writes()
        let stored: [UInt8]
        switch jar.store.get(jar.storeKey(.session, String(value)), now: now) {
        case .success(let found): stored = found
        case .failure(.notFound): return nil
        case .failure(.failed):
            jar.request.work.storeFailures += 1
            return nil
        }
        guard var opened = jar.open(String(decoding: stored, as: UTF8.self)) else { return nil }
        opened.id = String(value)
        opened.storeWrites = writes
        return opened
    }

    func save(_ session: Session, id existing: String?, _ jar: SessionJar, now: Int64) -> SessionJar.Saved {
        guard let sealed = jar.seal(session) else { return .failed }
        var rng = BufferedSystemRandom()
        let id = existing ?? LoginState.randomToken(using: &rng)
        let config = jar.config
        let until = config.sessionIdleTimeout > 0 ? min(session.expiresAt, now + config.sessionIdleTimeout) : session.expiresAt
        // The one kind of entry that may give way when the store is full: the session idle longest.
        guard jar.store.putEvictable(jar.storeKey(.session, id), Array(sealed.utf8), expiresAt: until, now: now) == .ok else { return .failed }
        if existing != nil { return .stored([]) }
        // A session back-channel logout could not find would outlive its provider session: without its
        // index entries it is not opened at all.
        guard index(session, id: id, until: until, jar, now: now) else {
            _ = jar.store.remove(jar.storeKey(.session, id))
            return .failed
        }
        return .stored([jar.cookie(jar.cookieName, id).headerValue])
    }

    /// A logout may have removed the session between this request's load and this write, which would
    /// bring it back. So the tombstone that every removal leaves first is looked at after writing, and a
    /// session found ended is removed again: whatever the interleaving, the removal wins.
    func refresh(_ loaded: SessionJar.Loaded, _ jar: SessionJar, now: Int64) -> SessionJar.Refresh {
        guard let id = loaded.id, case .stored(let cookies, _) = save(loaded.session, id: id, jar, now: now) else { return .failed }
        if case .success = jar.store.get(jar.storeKey(.ended, id), now: now) {
            _ = jar.store.remove(jar.storeKey(.session, id))
            return .ended
        }
        return .refreshed(cookies)
    }

    func end(_ loaded: SessionJar.Loaded, _ jar: SessionJar, now: Int64) {
        if let id = loaded.id { end(id: id, jar, now: now) }
    }

    /// The tombstone first, living as long as the session could have; then the session.
    private func end(id: String, _ jar: SessionJar, now: Int64) {
        _ = jar.store.put(jar.storeKey(.ended, id), [1], expiresAt: now + jar.config.sessionLifetime + jar.config.clockSkew, now: now)
        _ = jar.store.remove(jar.storeKey(.session, id))
    }

    func endSessions(sid: String?, sub: String?, _ jar: SessionJar, now: Int64) -> Int? {
        let key: [UInt8]
        if let sid { key = jar.storeKey(.sid, sid) } else if let sub { key = jar.storeKey(.sub, sub) } else { return 0 }
        var ended = 0
        for id in indexed(key, jar, now: now) {
            if case .success = jar.store.get(jar.storeKey(.session, id), now: now) { ended += 1 }
            end(id: id, jar, now: now)
        }
        _ = jar.store.remove(key)
        return ended
    }

    /// Indexes a new session by sid and by sub, for back-channel logout: every session of either, newest
    /// first (one provider session can have several here: a login repeated, a copy).
    /// Whether both entries were written (a full store may refuse them: they never give way themselves).
    private func index(_ session: Session, id: String, until: Int64, _ jar: SessionJar, now: Int64) -> Bool {
        let lifetime = max(until, session.expiresAt)
        var keys = [jar.storeKey(.sub, session.subject)]
        if let sid = session.sid { keys.append(jar.storeKey(.sid, sid)) }
        var written = true
        for key in keys {
            let ids = [id] + indexed(key, jar, now: now).filter { $0 != id }.prefix(Self.maximumIndexed - 1)
            written = jar.store.put(key, Array(ids.joined(separator: "\n").utf8), expiresAt: lifetime, now: now) == .ok && written
        }
        return written
    }

    private func indexed(_ key: [UInt8], _ jar: SessionJar, now: Int64) -> [String] {
        guard case .success(let v) = jar.store.get(key, now: now) else { return [] }
        // Split on bytes: String.split goes by Character, which cost a login 190,000 instructions on a
        // user's full index (IDs are base64url: no byte of one is a newline or part of a longer character).
        var ids = [String]()
        var from = 0
        for i in v.indices where v[i] == UInt8(ascii: "\n") {
            if i > from { ids.append(String(decoding: v[from..<i], as: UTF8.self)) }
            from = i + 1
        }
        if from < v.count { ids.append(String(decoding: v[from...], as: UTF8.self)) }
        return ids
    }
}
