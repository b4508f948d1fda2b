import Synchronization

/// A configured site with its provider cache: what a request is judged against. A class: every request
/// takes one, and a reference costs one retain where a copy of the struct cost one per field.
package final class Site: Sendable {
    /// The store a request uses: the server's shared one, or this child's own without one.
    func store(for request: AuthRequest) -> any SharedStore { request.store ?? localStore }

    package let config: SiteConfig
    package let provider: ProviderCache
    /// Used when the request brings no shared store.
    package let localStore: MemoryStore
    /// Sessions this child has already decrypted.
    let openedSessions = OpenedSessions()
    /// Passes this child has already decided (FastPass).
    package let passMemo = PassMemo()
    /// The session cookie's name over http and over https (SessionJar.cookieName), and the redirect
    /// URI's path: what FastPass compares the request's bytes with.
    let sessionCookieNames: (plain: [UInt8], secure: [UInt8])
    let redirectPath: [UInt8]
    /// Where this site keeps sessions (IDTokenSessionStore), chosen once.
    let placement: any SessionPlacement
    /// How this site's sessions are encoded and their claims rebuilt, made once.
    let sessionProfile: SessionProfile

    /// Whether a session of this site has already overflowed to the store in this child: said once at
    /// notice level, then at info.
    private let overflowed = Mutex(false)

    func firstOverflow() -> Bool {
        overflowed.withLock { seen in
            defer { seen = true }
            return !seen
        }
    }
    /// Long return URLs this process may still keep in the store this minute (LongReturnURL).
    let longReturnURLBudget = StoreBudget()

    package init(config: SiteConfig, provider: ProviderCache, localStore: MemoryStore = MemoryStore()) {
        self.config = config
        self.provider = provider
        self.localStore = localStore
        placement = config.sessionStore.placement
        sessionProfile = SessionProfile(config: config)
        sessionCookieNames = (Array(SessionJar.cookieName(secure: false, config: config).utf8),
                              Array(SessionJar.cookieName(secure: true, config: config).utf8))
        redirectPath = Array(config.redirectURI.path.utf8)
    }
}
