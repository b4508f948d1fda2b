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
        let dir = request.dir
        let shape = OpenedSessions.RenderShape(passAs: dir.passClaimsAs ?? .both, encoding: dir.claimEncoding ?? .none,
                                               passIDToken: dir.passIDToken ?? .off)
        if let rendered = loaded.renders[shape] { return Decision.Pass(rendered: rendered, setCookies: setCookies) }
        let rendered = render(loaded.session, shape)
        if let sealed = loaded.sealed { site.openedSessions.remember(rendered, as: shape, for: sealed) }
        return Decision.Pass(rendered: rendered, setCookies: setCookies)
    }

    private static func render(_ session: Session, _ shape: OpenedSessions.RenderShape) -> RenderedClaims {
        let passAs = shape.passAs, encoding = shape.encoding
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
        if let idToken = ClaimsForApp.idTokenForApp(session.idToken, shape.passIDToken) {
            if toHeaders { headers.append((idToken.header, idToken.value)) }
            if toEnv { env.append((idToken.env, idToken.value)) }
        }
        return RenderedClaims(remoteUser: session.remoteUser, headers: headers, env: env, claims: claims,
                              latin1: encoding == .latin1)
    }
}
