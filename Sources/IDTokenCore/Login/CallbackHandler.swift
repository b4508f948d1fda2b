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
            let answer = BackChannelLogout.handle(logoutToken, request: request, site: site, now: now)
            request.work.countBackchannel(answer)
            return answer
        }
        // The provider's words are shown only for a login this browser started: anyone can post an error
        // response, and its text would otherwise reach the log and an ErrorDocument as it is.
        if let error = form["error"] {
            guard let state = form["state"], !state.isEmpty,
                  let login = try? loginState(for: state, request: request, site: site, now: now) else {
                throw .unsolicitedProviderError
            }
            let clearing = [LoginStart.stateCookie(login.cookieName(secure: request.isSecure), value: "", maxAge: 0).headerValue]
            // A silent login the provider cannot complete without the user: back to the page, whose
            // next login is interactive (SilentLogin). Only for a login sent with prompt=none.
            if login.silent, SilentLogin.fallbackErrors.contains(error) {
                let (returnTo, lost) = LongReturnURL.take(for: login, request: request, site: site, now: now)
                var log = "silent login: the provider answered \(error); back to \(Masking.printable(returnTo)) for an interactive login"
                if let lost { log += "; " + lost }
                return .redirect(.init(status: 303, location: returnTo,
                                       setCookies: clearing + [SilentLogin.cookie(secure: request.isSecure, set: true)],
                                       log: .init(level: lost == nil ? .info : .warning, message: log)))
            }
            return refusal(.providerError(code: error, description: form["error_description"]), request: request, clearing: clearing)
        }
        guard let state = form["state"], !state.isEmpty else { throw .missingParameter("state") }
        let login: LoginState
        do throws(LoginError) {
            login = try loginState(for: state, request: request, site: site, now: now)
        } catch {
            // The Back button: the provider's page, loaded again, posts the spent response once more.
            if case .stateCookieMissing = error, let onward = completedAgain(state: state, request: request, site: site, now: now) {
                return onward
            }
            throw error
        }
        let clearing = [LoginStart.stateCookie(login.cookieName(secure: request.isSecure), value: "", maxAge: 0).headerValue]
        do throws(LoginError) {
            guard let token = form["id_token"], !token.isEmpty else { throw .missingParameter("id_token") }
            let validated = try validate(token, login: login, site: site, now: now)
            let unmarked: Bool
            do throws(LoginError) {
                unmarked = try markUsed(login, request: request, site: site, now: now)
            } catch {
                // The same response posted twice before the first answer cleared the state cookie.
                if case .replayed = error, let onward = completedAgain(state: state, request: request, site: site, now: now) {
                    return onward
                }
                throw error
            }
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
            if unmarked {
                level = .warning
                log += "; accepted without its single-use mark: the shared store (IDTokenCache) could not record it (IDTokenReplayCheckFailure accept), so a copy of this response would be accepted too until the login's state expires"
            }
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
            let (returnTo, lost) = LongReturnURL.take(for: login, request: request, site: site, now: now)
            if let lost {
                level = .warning
                log += "; " + lost
            }
            var setCookies = clearing + cookies
            let marker = LoginMarker(completedAt: now, streak: login.streak + 1, stateDigest: LoginMarker.digest(ofState: state),
                                     returnTo: LoginMarker.shortened(returnTo))
            if let cookie = marker.setCookie(secure: request.isSecure, config: config) { setCookies.append(cookie) }
            request.work.countLogin(startedAt: login.createdAt, now: now)
            return sendOn(to: returnTo, setCookies: setCookies, log: .init(level: level, message: log), config: config)
        } catch {
            return refusal(error, request: request, clearing: clearing)
        }
    }

    /// Back to the page the login started from. With `IDTokenCookieSameSite Strict` a redirect would not
    /// do: the browser does not send a Strict cookie on a request that a cross-site one (the provider's
    /// POST) redirected, so the new session would seem missing and the login would start over, for ever.
    /// A page of this site that moves on by itself makes the next request same-site: a meta refresh
    /// and a link, no script (a Content-Security-Policy without 'unsafe-inline' still lets it through).
    static func sendOn(to location: String, setCookies: [String], log: Decision.LogLine?, config: SiteConfig) -> Decision {
        if config.cookieSameSite == .strict {
            return .respond(ErrorPage.onward(to: location, setCookies: setCookies, log: log))
        }
        return .redirect(.init(status: 303, location: location, setCookies: setCookies, log: log))
    }

    /// A login response this browser already completed, posted again: the Back button reloads the
    /// provider's auto-submitting page, which posts the same state (and a token for the same nonce) once
    /// more, after the first answer cleared the state cookie. The browser holding the marker of that very
    /// login (its state's digest, sealed, within the marker's lifetime) is sent on to the login's page,
    /// where its session serves it (or a new login starts); nothing else changes. Anyone else, without
    /// that marker, still gets the refusal.
    static func completedAgain(state: String, request: AuthRequest, site: Site, now: Int64) -> Decision? {
        guard let marker = LoginMarker.read(request, config: site.config, now: now), marker.isOf(state: state) else { return nil }
        request.work.count(.loginResent)
        return sendOn(to: marker.returnTo, setCookies: [],
                      log: .init(level: .info, message: "a login response this browser completed \(now - marker.completedAt) s ago was posted again (the Back button?): sent on to \(Masking.printable(marker.returnTo))"),
                      config: site.config)
    }

    /// The login this response answers, from the state cookie named after its state (over https only
    /// the `__Host-` name counts: a sibling subdomain could have planted the other).
    private static func loginState(for state: String, request: AuthRequest, site: Site, now: Int64) throws(LoginError) -> LoginState {
        let config = site.config
        let values = request.cookies.values(named: LoginState.cookieName(forState: state, secure: request.isSecure))
        guard !values.isEmpty else { throw .stateCookieMissing }
        // Two at most: a browser holds one per name and path; more is someone else's doing.
        for value in values.prefix(2) {
            request.work.sealedOpens += 1
            guard let plain = SealedCookie.open(value, keys: config.keys, purpose: .state, context: site.sessionProfile.stateContext),
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
            let expect = TokenExpectations(issuer: IssuerRule(issuer: metadata.issuer), clientID: config.clientID,
                                           trustedAudiences: config.trustedAudiences, nonce: login.nonce,
                                           loginStartedAt: login.createdAt, allowedAlgorithms: config.allowedAlgorithms,
                                           clientSecret: config.clientSecret, maxAge: login.maxAge,
                                           acrValues: login.acrValues, clockSkew: config.clockSkew)
            return try IDTokenValidator.withProviderKeys(jws, alg: alg, provider: site.provider, now: now) { keys throws(TokenError) in
                try IDTokenValidator.validate(jws, alg: alg, keys: keys, expect: expect, now: now)
            }
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
    /// refuses the response anyway. The store's `add` is atomic (with Redis, across servers). When the
    /// store fails, IDTokenReplayCheckFailure decides: refused (503), or true: accepted unmarked.
    private static func markUsed(_ login: LoginState, request: AuthRequest, site: Site, now: Int64) throws(LoginError) -> Bool {
        let store = site.store(for: request)
        let key = StoreKey.make(.used, login.nonce, context: site.config.storeContext)
        let expiresAt = login.createdAt + site.config.stateLifetime + site.config.clockSkew
        switch store.add(key, [1], expiresAt: max(expiresAt, now + 2), now: now) {
        case .ok: return false
        case .exists: throw .replayed
        case .error, .notFound:
            guard site.config.replayCheckFailure == .accept else { throw .storeFailed }
            return true
        }
    }

    static func refusal(_ error: LoginError, request: AuthRequest, clearing: [String]) -> Decision {
        let level: Decision.LogLine.Level = switch error {
        case .provider, .loginLoop: .error
        default: .warning
        }
        request.work.countRefusal(error)
        var env = [("IDTOKEN_ERROR", error.code), ("IDTOKEN_ERROR_DESCRIPTION", error.userMessage)]
        if case .providerError(_, let description) = error, let description {
            env.append(("IDTOKEN_PROVIDER_ERROR_DESCRIPTION", ClaimsForApp.cleanValue(Masking.printable(description))))
        }
        return .respond(ErrorPage.response(status: error.status, code: error.code, message: error.userMessage,
                                           env: env, setCookies: clearing,
                                           log: .init(level: level, message: error.logLine)))
    }
}
