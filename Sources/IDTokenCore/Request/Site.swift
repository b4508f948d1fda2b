/// A configured site with its provider cache: what a request is judged against.
public struct Site: Sendable {
    public let config: SiteConfig
    public let provider: ProviderCache

    public init(config: SiteConfig, provider: ProviderCache) {
        self.config = config
        self.provider = provider
    }
}
