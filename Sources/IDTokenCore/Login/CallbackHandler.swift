/// The provider's form_post to the redirect URI: checked in the order that costs least first, and
/// only a response that passes every check opens a session.
enum CallbackHandler {
    static func handle(_ request: AuthRequest, site: Site, now: Int64) -> Decision {
        do throws(LoginError) {
            guard request.method == "POST" else {
                if let query = request.query, let pairs = FormEncoding.parse(query.utf8),
                   pairs.contains(where: { ["id_token", "state", "error", "code", "access_token"].contains($0.0) }) {
                    throw .responseInQuery
                }
                throw .callbackNotPost(method: request.method)
            }
            guard CallbackForm.isFormContentType(request.contentType) else {
                throw .unsupportedContentType(request.contentType.map { Masking.printable($0, max: 80) })
            }
            if request.bodyTooLarge { throw .bodyTooLarge(limit: site.config.callbackBodyLimit) }
            guard let body = request.body else { return .readBody(limit: site.config.callbackBodyLimit) }
            return try complete(CallbackForm(body: body), request: request, site: site, now: now)
        } catch {
            return refusal(error, request: request, clearing: [])
        }
    }

    private static func complete(_ form: CallbackForm, request: AuthRequest, site: Site, now: Int64) throws(LoginError) -> Decision {
        let config = site.config
        if let logoutToken = form["logout_token"], form["state"] == nil {
            return BackChannelLogout.handle(logoutToken, request: request, site: site, now: now)
        }
        // The provider's words are shown only for a login this browser started: anyone can post an error
        // response, and its text would otherwise reach the log and an ErrorDocument as it is.
        if let error = form["error"] {
            guard let state = form["state"], !state.isEmpty,
                  let login = try? loginState(for: state, request: request, config: config, now: now) else {
                throw .unsolicitedProviderError
            }
            let clearing = [LoginStart.stateCookie(login.cookieName(secure: request.isSecure), value: "", maxAge: 0).headerValue]
            return refusal(.providerError(code: error, description: form["error_description"]), request: request, clearing: clearing)
        }
        guard let state = form["state"], !state.isEmpty else { throw .missingParameter("state") }
        let login = try loginState(for: state, request: request, config: config, now: now)
        let clearing = [LoginStart.stateCookie(login.cookieName(secure: request.isSecure), value: "", maxAge: 0).headerValue]
        do throws(LoginError) {
            guard let token = form["id_token"], !token.isEmpty else { throw .missingParameter("id_token") }
            let validated = try validate(token, login: login, site: site, now: now)
            try markUsed(login, request: request, site: site, now: now)
            var expiresAt = now + config.sessionLifetime
            if config.sessionCapToTokenExpiry { expiresAt = min(expiresAt, validated.expiresAt) }
            guard let remoteUser = RemoteUser.derive(validated, config: config) else {
                throw .remoteUserClaimMissing(config.remoteUserClaim ?? "sub")
            }
            let session = Session(subject: validated.subject, issuer: validated.issuer, createdAt: now, expiresAt: expiresAt,
                                  sid: validated.claims["sid"]?.stringValue,
                                  idToken: config.logoutIDTokenHint ? token : "", remoteUser: remoteUser,
                                  claims: ClaimsForApp.flatten(validated.claims, delimiter: config.claimDelimiter,
                                                               keep: config.claimsKeep, drop: config.claimsDrop),
                                  authTime: validated.authTime, acr: validated.claims["acr"]?.stringValue,
                                  promptLogin: login.promptLogin, tokenExpiresAt: validated.expiresAt)
            let jar = SessionJar(site: site, request: request)
            let cookies: [String]
            var log = "login of '\(Masking.printable(validated.subject))' (\(validated.algorithm.rawValue), kid \(validated.keyID.map { Masking.printable($0) } ?? "none"))"
            var level = Decision.LogLine.Level.info
            switch jar.save(session, now: now) {
            case .stored(let headers, let overflowed):
                cookies = headers
                if overflowed {
                    log += "; the session is too big for cookies (IDTokenSessionStore cookie): kept in the shared store (IDTokenCache) under an ID instead"
                    if site.firstOverflow() { level = .notice }
                }
            case .tooLarge(let bytes, let limit):
                throw .sessionTooLarge(bytes: bytes, limit: limit)
            case .failed:
                throw .sessionNotStored(bytes: session.encoded(jar.profile)?.count ?? 0)
            }
            return .redirect(.init(status: 303, location: login.returnTo, setCookies: clearing + cookies,
                                   log: .init(level: level, message: log)))
        } catch {
            return refusal(error, request: request, clearing: clearing)
        }
    }

    /// The login this response answers, from the state cookie named after its state (over https only
    /// the `__Host-` name counts: a sibling subdomain could have planted the other).
    private static func loginState(for state: String, request: AuthRequest, config: SiteConfig, now: Int64) throws(LoginError) -> LoginState {
        let values = request.cookies.values(named: LoginState.cookieName(forState: state, secure: request.isSecure))
        guard !values.isEmpty else { throw .stateCookieMissing }
        // Two at most: a browser holds one per name and path; more is someone else's doing.
        for value in values.prefix(2) {
            request.work.sealedOpens += 1
            guard let plain = SealedCookie.open(value, keys: config.keys, purpose: .state, context: config.stateContext),
                  let login = LoginState(decoding: plain) else { continue }
            guard constantTimeEquals(login.state, state) else { throw .stateMismatch }
            let age = now - login.createdAt
            guard age <= config.stateLifetime, age >= -config.clockSkew else { throw .stateExpired(age: age) }
            return login
        }
        throw .stateCookieUnreadable
    }

    private static func validate(_ token: String, login: LoginState, site: Site, now: Int64) throws(LoginError) -> ValidatedIDToken {
        let config = site.config
        do {
            let (jws, alg) = try IDTokenValidator.parse(token, allowed: config.allowedAlgorithms)
            let metadata = try site.provider.metadata(now: now)
            let keys = try site.provider.keys(now: now, kid: jws.header.kid)
            let expect = TokenExpectations(issuer: IssuerRule(issuer: metadata.issuer), clientID: config.clientID,
                                           trustedAudiences: config.trustedAudiences, nonce: login.nonce,
                                           loginStartedAt: login.createdAt, allowedAlgorithms: config.allowedAlgorithms,
                                           clientSecret: config.clientSecret, maxAge: login.maxAge,
                                           acrValues: login.acrValues, clockSkew: config.clockSkew)
            return try IDTokenValidator.validate(jws, alg: alg, keys: keys, expect: expect, now: now)
        } catch let e as TokenError {
            throw .invalidToken(e)
        } catch let e as ProviderError {
            throw .provider(e)
        } catch {
            throw .malformedForm
        }
    }

    /// A login response is good once: its nonce is marked in the shared store, so the same POST
    /// replayed (even with the state cookie captured beside it) is refused, in any process.
    /// The mark lives as long as the state could still be accepted; after that the state's expiry
    /// refuses the response anyway.
    private static func markUsed(_ login: LoginState, request: AuthRequest, site: Site, now: Int64) throws(LoginError) {
        let store = site.store(for: request)
        let key = StoreKey.make(.used, login.nonce, context: site.config.storeContext)
        let expiresAt = login.createdAt + site.config.stateLifetime + site.config.clockSkew
        switch store.add(key, [1], expiresAt: max(expiresAt, now + 2), now: now) {
        case .ok: return
        case .exists: throw .replayed
        case .error, .notFound: throw .storeFailed
        }
    }

    static func refusal(_ error: LoginError, request: AuthRequest, clearing: [String]) -> Decision {
        let level: Decision.LogLine.Level = if case .provider = error { .error } else { .warning }
        var env = [("IDTOKEN_ERROR", error.code), ("IDTOKEN_ERROR_DESCRIPTION", error.userMessage)]
        if case .providerError(_, let description) = error, let description {
            env.append(("IDTOKEN_PROVIDER_ERROR_DESCRIPTION", ClaimsForApp.cleanValue(Masking.printable(description))))
        }
        return .respond(ErrorPage.response(status: error.status, code: error.code, message: error.userMessage,
                                           env: env, setCookies: clearing,
                                           log: .init(level: level, message: error.logLine)))
    }
}
