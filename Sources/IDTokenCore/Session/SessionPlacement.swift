/// Where a site keeps its sessions between requests, chosen once per site (IDTokenSessionStore): sealed
/// in the browser's cookies, or in the shared store under a random ID. Everything else about a session
/// (its cookie's name and attributes, what a request may ask of it) is the same either way and lives in
/// SessionJar, which each method is given as the request's context.
protocol SessionPlacement: Sendable {
    /// Whether the server can end a session on its own (logout everywhere, back-channel logout).
    var isRevocable: Bool { get }
    /// The session the request carries, expired or not (logout still wants its id_token_hint).
    func load(_ jar: SessionJar, now: Int64) -> SessionJar.Loaded?
    /// Stores the session, with the Set-Cookie headers that go with it.
    func save(_ session: Session, id: String?, _ jar: SessionJar, now: Int64) -> SessionJar.Saved
    /// Re-issues a session the request carries (the idle clock reset).
    func refresh(_ loaded: SessionJar.Loaded, _ jar: SessionJar, now: Int64) -> SessionJar.Refresh
    /// Ends the loaded session where it is kept (the cookies are cleared by the jar).
    func end(_ loaded: SessionJar.Loaded, _ jar: SessionJar, now: Int64)
    /// Ends every session of a provider session (`sid`) or user (`sub`); nil when this placement cannot
    /// (a session sealed in a browser's cookie is out of the server's reach).
    func endSessions(sid: String?, sub: String?, _ jar: SessionJar, now: Int64) -> Int?
}

extension SessionStoreKind {
    var placement: any SessionPlacement {
        switch self {
        case .cookie: return CookiePlacement()
        case .cache: return CachePlacement()
        }
    }
}
