/// OpenID Connect Back-Channel Logout 1.0: the provider POSTs a Logout Token to the redirect URI, and
/// the sessions of that provider session (`sid`) or user (`sub`) end. Only server-side sessions can be
/// ended this way: a session sealed in a browser's cookie is out of reach.
enum BackChannelLogout {
    static let event = "http://schemas.openid.net/event/backchannel-logout"
    /// §2.4 recommends explicit typing; plain JWT stays accepted for providers that do not type.
    static let logoutTokenTypes: Set<String> = ["logout+jwt", "application/logout+jwt", "jwt"]

    static func handle(_ token: String, request: AuthRequest, site: Site, now: Int64) -> Decision {
        let config = site.config
        let jar = SessionJar(site: site, request: request)
        guard jar.placement.isRevocable else {
            return answer(501, "back-channel logout needs IDTokenSessionStore cache: sessions in cookies cannot be ended from the server",
                          level: .warning)
        }
        let store = jar.store
        let claims: [String: JSONValue]
        do {
            claims = try validate(token, site: site, now: now)
        } catch let e as TokenError {
            return answer(400, "back-channel logout token refused: " + e.logDescription, level: .warning)
        } catch let e as ProviderError {
            return answer(503, e.logDescription, level: .error)
        } catch {
            return answer(400, "back-channel logout token refused", level: .warning)
        }
        // §2.6 step 7: a jti seen before is a replay.
        let jti = claims["jti"]?.stringValue ?? ""
        let jtiKey = jar.storeKey(.jti, jti)
        switch store.add(jtiKey, [1], expiresAt: now + 600 + config.clockSkew, now: now) {
        case .ok: break
        case .exists: return answer(400, "back-channel logout token replayed (jti already used)", level: .warning)
        default: return answer(503, "the shared store failed while recording the logout token's jti", level: .error)
        }
        let sid = claims["sid"]?.stringValue, sub = claims["sub"]?.stringValue
        let ended = jar.endSessions(sid: sid, sub: sub, now: now) ?? 0
        request.work.count(.sessionEnded(.backchannel), by: Int64(ended))
        let who = sid.map { "sid '\(Masking.printable($0))'" } ?? "sub '\(Masking.printable(sub ?? ""))'"
        return answer(200, "back-channel logout for \(who): \(ended) session(s) ended", level: .info)
    }

    /// §2.6: signature and the ID token's iss/aud/iat/exp rules, an events member for this event, a sid
    /// or a sub, and no nonce (so an ID token can never pass as a logout token, nor the reverse).
    static func validate(_ token: String, site: Site, now: Int64) throws -> [String: JSONValue] {
        let config = site.config
        let (jws, alg) = try IDTokenValidator.parse(token, allowed: config.allowedAlgorithms, types: logoutTokenTypes)
        let metadata = try site.provider.metadata(now: now)
        try IDTokenValidator.withProviderKeys(jws, alg: alg, provider: site.provider, now: now) { keys throws(TokenError) in
            try IDTokenValidator.verifySignature(jws, alg: alg, keys: keys, secret: config.clientSecret)
        }
        let c = try IDTokenClaims(payload: jws.payload)
        let expect = TokenExpectations(issuer: IssuerRule(issuer: metadata.issuer), clientID: config.clientID,
                                       trustedAudiences: config.trustedAudiences, nonce: "",
                                       loginStartedAt: now - 600, allowedAlgorithms: config.allowedAlgorithms,
                                       clockSkew: config.clockSkew)
        try IDTokenValidator.checkIssuerAndAudience(c, expect: expect)
        _ = try IDTokenValidator.checkTimes(c, expect: expect, now: now)
        guard case .object(let events) = c.all["events"], case .object = events[event] else {
            throw TokenError.malformed("no events claim with the back-channel logout event")
        }
        guard c.all["nonce"] == nil else { throw TokenError.malformed("a logout token must not hold a nonce") }
        guard c.all["jti"]?.stringValue?.isEmpty == false else { throw TokenError.malformed("no jti") }
        guard c.all["sid"]?.stringValue != nil || c.subject != nil else { throw TokenError.malformed("neither sid nor sub") }
        return c.all
    }

    private static func answer(_ status: Int, _ log: String, level: Decision.LogLine.Level) -> Decision {
        let body = status == 200 ? "" : "{\"error\":\"invalid_request\"}\n"
        return .respond(.init(status: status, page: body, env: [], setCookies: [], log: .init(level: level, message: log),
                              contentType: status == 200 ? "text/plain" : "application/json"))
    }
}
