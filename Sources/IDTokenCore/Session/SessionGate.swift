/// Lets a request through when it carries a valid session, re-issuing the session at most once per
/// refresh interval so the idle timeout slides without a Set-Cookie on every response.
enum SessionGate {
    static func pass(_ request: AuthRequest, site: Site, now: Int64) -> Decision.Pass? {
        let config = site.config
        let jar = SessionJar(config: config, request: request, store: request.store ?? site.localStore, opened: site.openedSessions)
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
        let dir = request.dir
        let passAs = dir.passClaimsAs ?? .both
        let encoding = dir.claimEncoding ?? .none
        let toHeaders = passAs == .both || passAs == .headers, toEnv = passAs == .both || passAs == .environment
        var headers = [(String, String)](), env = [(String, String)](), claims = [(String, String)]()
        headers.reserveCapacity(toHeaders ? session.claims.count + 1 : 0)
        env.reserveCapacity(toEnv ? session.claims.count + 1 : 0)
        claims.reserveCapacity(session.claims.count)
        for claim in session.claims {
            let value = ClaimsForApp.encode(claim.value, encoding)
            if toHeaders { headers.append((ClaimsForApp.headerName(claim.name), value)) }
            if toEnv { env.append((ClaimsForApp.envName(claim.name), value)) }
            claims.append((claim.name, claim.jsonValue))
        }
        if let idToken = ClaimsForApp.idTokenForApp(session.idToken, dir.passIDToken ?? .off) {
            if toHeaders { headers.append((idToken.header, idToken.value)) }
            if toEnv { env.append((idToken.env, idToken.value)) }
        }
        return Decision.Pass(remoteUser: session.remoteUser, headers: headers, env: env, setCookies: setCookies,
                             claims: claims, latin1: encoding == .latin1)
    }
}
