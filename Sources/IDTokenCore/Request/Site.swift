/// A configured site with its provider cache: what a request is judged against. A class: every request
/// takes one, and a reference costs one retain where a copy of the struct cost one per field.
public final class Site: Sendable {
    /// The store a request uses: the server's shared one, or this child's own without one.
    func store(for request: AuthRequest) -> any SharedStore { request.store ?? localStore }

    public let config: SiteConfig
    public let provider: ProviderCache
    /// Used when the request brings no shared store.
    public let localStore: MemoryStore
    /// Sessions this child has already decrypted.
    let openedSessions = OpenedSessions()
    /// Where this site keeps sessions (IDTokenSessionStore), chosen once.
    let placement: any SessionPlacement

    public init(config: SiteConfig, provider: ProviderCache, localStore: MemoryStore = MemoryStore()) {
        self.config = config
        self.provider = provider
        self.localStore = localStore
        placement = config.sessionStore.placement
    }
}
