import Synchronization

/// Return URLs too long for the state cookie. The state cookie holds the return URL beside the nonce;
/// a long one would push it past what browsers keep (about 4 KB a cookie, and every pending login's
/// state cookie goes into one Cookie header), and the browser would drop it: the login would end on
/// "This login attempt expired". So a return URL longer than `inlineLimit` is kept in the shared store
/// (IDTokenCache) under the login's state, for the state's lifetime, and the state cookie holds only a
/// fallback: the URL's path (or "/" when that is long too). When the store cannot keep it (it fails,
/// or this process's budget is spent) or has lost it by the callback, the login returns to the fallback
/// and the log says so. Nothing is compressed: the URL comes from the request, and compressing it
/// beside the nonce would let its length tell about the nonce (CRIME).
enum LongReturnURL {
    /// Longer return URLs leave the state cookie: with it a state cookie stays under about 1 KB, and the
    /// most pending logins a browser may hold (IDTokenMaxStateCookies) fit in a Cookie header.
    static let inlineLimit = 512

    /// The state cookie's stand-in for a long return URL.
    static func fallback(_ returnTo: String) -> String {
        let path = Substring(returnTo.utf8.prefix { $0 != UInt8(ascii: "?") })
        return path.utf8.count <= inlineLimit ? String(path) : "/"
    }

    static func key(state: String, config: SiteConfig) -> [UInt8] {
        StoreKey.make(.returnURL, state, context: config.storeContext)
    }

    /// Keeps `returnTo` for `login` when it is too long for the state cookie: `login.returnTo` becomes the
    /// fallback, and `returnStored` says whether the whole URL is in the store. Returns a sentence for the
    /// log when the login will return to the fallback.
    static func keep(_ returnTo: String, for login: inout LoginState, request: AuthRequest, site: Site, now: Int64) -> String? {
        guard returnTo.utf8.count > inlineLimit else { return nil }
        let config = site.config
        login.returnTo = fallback(returnTo)
        let size = returnTo.utf8.count
        guard site.longReturnURLBudget.take(now: now) else {
            return "the return URL (\(size) bytes) is too long for the state cookie, and this process has kept \(StoreBudget.standardLimit) such URLs in the last minute already: after the login the browser returns to \(Masking.printable(login.returnTo, max: 120))"
        }
        let expiresAt = login.createdAt + config.stateLifetime + config.clockSkew
        guard site.store(for: request).put(key(state: login.state, config: config), Array(returnTo.utf8),
                                           expiresAt: expiresAt, now: now) == .ok else {
            return "the return URL (\(size) bytes) is too long for the state cookie and the shared store (IDTokenCache) could not keep it: after the login the browser returns to \(Masking.printable(login.returnTo, max: 120))"
        }
        login.returnStored = true
        return nil
    }

    /// The return URL of a completed login: the one kept in the store, taken out of it, or the fallback
    /// with a sentence for the log.
    static func take(for login: LoginState, request: AuthRequest, site: Site, now: Int64) -> (String, note: String?) {
        guard login.returnStored else { return (login.returnTo, nil) }
        let store = site.store(for: request)
        let key = key(state: login.state, config: site.config)
        guard case .success(let bytes) = store.get(key, now: now), let url = String(validating: bytes, as: UTF8.self),
              LoginState.isLocalTarget(url) else {
            return (login.returnTo, "the long return URL of this login is no longer in the shared store (IDTokenCache: restarted, full, or not shared with the server where the login started): the browser returns to \(Masking.printable(login.returnTo, max: 120))")
        }
        _ = store.remove(key)
        return (url, nil)
    }
}

/// At most `limit` uses per minute in this process: bounds what requests without a session can make the
/// module write into the shared store (an 8 KB return URL per login start, otherwise), so a flood of them
/// cannot push sessions and single-use marks out of a small shmcb.
final class StoreBudget: Sendable {
    static let standardLimit = 60
    let limit: Int
    private let window = Mutex<(start: Int64, used: Int)>((0, 0))

    init(limit: Int = StoreBudget.standardLimit) { self.limit = limit }

    func take(now: Int64) -> Bool {
        window.withLock { w in
            if now - w.start >= 60 || now < w.start { w = (now, 0) }
            guard w.used < limit else { return false }
            w.used += 1
            return true
        }
    }
}
