/// A configured site with its provider cache: what a request is judged against. A class: every request
/// takes one, and a reference costs one retain where a copy of the struct cost one per field.
public final class Site: Sendable {
    public let config: SiteConfig
    public let provider: ProviderCache
    /// Used when the request brings no shared store.
    public let localStore: MemoryStore
    /// Cookie sessions this child has already decrypted.
    let openedSessions = OpenedSessions()

    public init(config: SiteConfig, provider: ProviderCache, localStore: MemoryStore = MemoryStore()) {
        self.config = config
        self.provider = provider
        self.localStore = localStore
    }
}
