/// The request path's shortcut: a request whose session cookie this child has already let through to
/// the same kind of location, within the time nothing about that could change (PassMemo), passes with
/// the same rendering. It reads the request as the C module's bytes: no String is made, no Cookie
/// header is split into pairs, no session opened. Anything else (no memo entry, the callback path,
/// a subrequest, a proxy's forwarded headers) goes the whole way through RequestDecider, which fills
/// the memo when it lets a request through.
package enum FastPass {
    /// What of the request the shortcut looks at.
    package struct Request {
        /// The Cookie header's bytes.
        package var cookie: UnsafeRawBufferPointer
        /// Path and query as sent.
        package var target: UnsafeRawBufferPointer
        /// https, as the browser used it (after IDTokenTrustedProxies).
        package var secure: Bool
        /// The <Location>/<Directory> configuration handles of the request, as for DirConfig.
        package var dir: UnsafeBufferPointer<Int32>

        package init(cookie: UnsafeRawBufferPointer, target: UnsafeRawBufferPointer, secure: Bool, dir: UnsafeBufferPointer<Int32>) {
            self.cookie = cookie
            self.target = target
            self.secure = secure
            self.dir = dir
        }
    }

    /// The remembered rendering when the request may pass without more; nil to decide it in full.
    /// `store` gives the server's shared store, made only when the session is kept there.
    package static func pass(_ r: Request, site: Site, now: Int64, store: () -> (any SharedStore)?) -> RenderedClaims? {
        guard r.cookie.count <= CookieHeader.maximumLength, !isRedirectPath(r.target, site.redirectPath) else { return nil }
        let name = r.secure ? site.sessionCookieNames.secure : site.sessionCookieNames.plain
        guard let range = name.withUnsafeBytes({ CookieHeader.firstValue(named: $0, in: r.cookie) }) else { return nil }
        let value = UnsafeRawBufferPointer(rebasing: r.cookie[range])
        guard let entry = site.passMemo.entry(value: value, dir: r.dir, secure: r.secure, now: now) else { return nil }
        if let key = entry.storeKey {
            // Still there, unchanged: logout and back-channel logout remove it from the store. No write
            // since it was last found there: it is (the memo's `validUntil` is within its expiry).
            let shared = store() ?? site.localStore
            let writes = shared.writes()
            if entry.storeUnchanged(writes: writes) { return entry.rendered }
            guard case .success(let stored) = shared.get(key, now: now), let expected = entry.stored,
                  stored.withUnsafeBytes({ a in expected.withUnsafeBytes { PassMemo.same(a, $0) } }) else { return nil }
            entry.stillStored(writes: writes)
        }
        return entry.rendered
    }

    /// The callback path, whatever the query: its GETs are logout, session info, front-channel logout.
    static func isRedirectPath(_ target: UnsafeRawBufferPointer, _ path: [UInt8]) -> Bool {
        let end = target.firstIndex(of: UInt8(ascii: "?")) ?? target.count
        guard end == path.count else { return false }
        return path.withUnsafeBytes { p in
            for i in 0..<end where p[i] != target[i] { return false }
            return true
        }
    }
}
