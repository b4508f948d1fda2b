/// Lets a request through when it carries a valid session that meets the location's rules, re-issuing
/// the session at most once per refresh interval so the idle timeout slides without a Set-Cookie on every
/// response.
enum SessionGate {
    enum Outcome {
        case pass(Decision.Pass)
        /// A valid session that this location asks more of (max_age, acr_values, prompt=login): a new
        /// login with the location's parameters. The string says why, for the log.
        case stepUp(String)
        /// The request carries what may be a session in the shared store, which cannot be read now.
        case storeUnavailable
        case none
    }

    static func check(_ request: AuthRequest, site: Site, now: Int64) -> Outcome {
        let config = site.config
        let jar = SessionJar(site: site, request: request)
        // An expired or foreign session is simply not a session: a new login, never an error page.
        guard var loaded = jar.load(now: now) else { return request.work.storeFailures > 0 ? .storeUnavailable : .none }
        // This site's own lifetime rules, whichever server of the farm sealed the session.
        loaded.session.expiresAt = effectiveExpiry(loaded.session, config: config)
        guard loaded.session.isValid(now: now, idleTimeout: config.sessionIdleTimeout) else {
            request.work.foundEndedSession = true
            return .none
        }
        let rules = LocationRules(request.dir)
        if let unmet = rules.unmet(by: loaded.session, now: now, clockSkew: config.clockSkew) {
            return .stepUp("session of '\(Masking.printable(loaded.session.subject))' \(unmet)")
        }
        var setCookies = [String]()
        // A subrequest or internal redirect rides on a request that already re-issued the session.
        if !request.isInternal, config.sessionIdleTimeout > 0, now - loaded.session.refreshedAt >= config.sessionRefreshInterval {
            var refreshed = loaded
            refreshed.session.refreshedAt = now
            switch jar.refresh(refreshed, now: now) {
            case .refreshed(let cookies): setCookies = cookies
            case .failed: break // the session stays as it was; the request itself is still authenticated
            case .ended: return .none
            }
        }
        let dir = request.dir.effective
        let shape = OpenedSessions.RenderShape(passAs: dir.passClaimsAs, encoding: dir.claimEncoding, passIDToken: dir.passIDToken)
        let rendered: RenderedClaims
        if let known = loaded.renders[shape] {
            rendered = known
        } else {
            rendered = render(loaded.session, shape)
            if let sealed = loaded.sealed { site.openedSessions.remember(rendered, as: shape, for: sealed) }
        }
        if setCookies.isEmpty, !request.isInternal { remember(rendered, loaded, jar, rules: rules, site: site, now: now) }
        return .pass(Decision.Pass(rendered: rendered, setCookies: setCookies))
    }

    /// Lets FastPass answer the same request alike until the first second this check could answer
    /// otherwise: the session's end, its idle deadline (the slow path passes while `now - refreshedAt`
    /// is at most the idle timeout), its next refresh, the location's max_age.
    private static func remember(_ rendered: RenderedClaims, _ loaded: SessionJar.Loaded, _ jar: SessionJar, rules: LocationRules,
                                 site: Site, now: Int64) {
        guard let value = jar.sessionCookieValues().first, let sealed = loaded.sealed else { return }
        let config = site.config, session = loaded.session
        var until = session.expiresAt
        if config.sessionIdleTimeout > 0 {
            until = min(until, session.refreshedAt + config.sessionIdleTimeout + 1, session.refreshedAt + config.sessionRefreshInterval)
        }
        if let maxAge = rules.maxAge, let at = session.authTime {
            until = min(until, at + maxAge + config.clockSkew + 1)
        }
        guard until > now else { return }
        var storeKey: [UInt8]?, stored: [UInt8]?
        if let id = loaded.id {
            guard value == id else { return }
            storeKey = jar.storeKey(.session, id)
            stored = Array(sealed.utf8)
            // The store drops the entry at its idle deadline (CachePlacement.save) without a write.
            if config.sessionIdleTimeout > 0 { until = min(until, session.refreshedAt + config.sessionIdleTimeout) }
            guard until > now else { return }
        } else {
            // A chunked session's first cookie is the marker, not the sealed value: not remembered.
            guard value == sealed else { return }
        }
        site.passMemo.remember(PassMemo.Entry(value: Array(value.utf8), dir: jar.request.dirHandles, secure: jar.request.isSecure,
                                              rendered: rendered, validUntil: until, storeKey: storeKey, stored: stored,
                                              storeWrites: loaded.storeWrites))
    }

    /// The sooner of the end sealed in and what this site allows: its IDTokenSessionLifetime from the
    /// login, and the token's expiry when IDTokenSessionCapToTokenExpiry is on.
    static func effectiveExpiry(_ session: Session, config: SiteConfig) -> Int64 {
        var end = min(session.expiresAt, session.createdAt + config.sessionLifetime)
        if config.sessionCapToTokenExpiry, let exp = session.tokenExpiresAt { end = min(end, exp) }
        return end
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
