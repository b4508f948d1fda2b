/// Lets a request through when it carries a valid, unexpired session cookie.
enum SessionGate {
    static let cookieName = "idtoken_session"

    static func pass(_ request: AuthRequest, config: SiteConfig, now: Int64) -> Decision.Pass? {
        guard let session = session(in: request, config: config, now: now) else { return nil }
        var headers = [(String, String)](), env = [(String, String)]()
        headers.reserveCapacity(session.claims.count)
        env.reserveCapacity(session.claims.count)
        for claim in session.claims {
            headers.append((ClaimsForApp.headerName(claim.name), claim.value))
            env.append((ClaimsForApp.envName(claim.name), claim.value))
        }
        return Decision.Pass(remoteUser: session.subject, headers: headers, env: env)
    }

    /// The first session cookie that opens under our keys and has not expired. An expired or foreign
    /// cookie is simply not a session: the browser logs in again, it never sees an error.
    static func session(in request: AuthRequest, config: SiteConfig, now: Int64) -> Session? {
        for value in CookieHeader(request.cookie).values(named: cookieName) {
            guard let plain = SealedCookie.open(value, keys: config.keys, purpose: .session, context: config.cookieContext),
                  let session = Session(decoding: plain),
                  now < session.expiresAt else { continue }
            return session
        }
        return nil
    }

    static func cookie(for session: Session, request: AuthRequest, config: SiteConfig) -> SetCookie? {
        guard let sealed = SealedCookie.seal(session.encoded(), keys: config.keys, purpose: .session, context: config.cookieContext) else { return nil }
        return SetCookie(name: cookieName, value: sealed, secure: request.isSecure, sameSite: .lax)
    }
}
