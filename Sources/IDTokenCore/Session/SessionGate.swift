/// Lets a request through when it carries a valid session, re-issuing the session at most once per
/// refresh interval so the idle timeout slides without a Set-Cookie on every response.
enum SessionGate {
    static func pass(_ request: AuthRequest, site: Site, now: Int64) -> Decision.Pass? {
        let config = site.config
        let jar = SessionJar(config: config, request: request, store: request.store ?? site.localStore)
        // An expired or foreign session is simply not a session: a new login, never an error page.
        guard var loaded = jar.load(now: now), loaded.session.isValid(now: now, idleTimeout: config.sessionIdleTimeout) else {
            return nil
        }
        var setCookies = [String]()
        if config.sessionIdleTimeout > 0, now - loaded.session.refreshedAt >= config.sessionRefreshInterval {
            loaded.session.refreshedAt = now
            // A failed refresh leaves the session as it was; the request itself is still authenticated.
            setCookies = jar.save(loaded.session, id: loaded.id, now: now) ?? []
        }
        let session = loaded.session
        var headers = [(String, String)](), env = [(String, String)]()
        headers.reserveCapacity(session.claims.count)
        env.reserveCapacity(session.claims.count)
        for claim in session.claims {
            headers.append((ClaimsForApp.headerName(claim.name), claim.value))
            env.append((ClaimsForApp.envName(claim.name), claim.value))
        }
        return Decision.Pass(remoteUser: session.subject, headers: headers, env: env, setCookies: setCookies)
    }
}
