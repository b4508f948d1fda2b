/// Sends a browser without a session (or with one this location asks more of: `stepUp` says what) to the
/// provider, with a fresh state cookie.
enum LoginStart {
    static func begin<R: RandomNumberGenerator>(_ request: AuthRequest, site: Site, now: Int64, rng: inout R,
                                                stepUp: String? = nil) -> Decision {
        let config = site.config
        switch request.dir.effective.unauthAction {
        case .auth: break
        case .pass:
            return .pass(Decision.Pass(rendered: .anonymous))
        case .unauthorized:
            return .respond(ErrorPage.response(status: 401, code: "login_required", message: "You are not logged in.",
                                               setCookies: [], log: nil))
        case .gone:
            return .respond(ErrorPage.response(status: 410, code: "login_required", message: "You are not logged in.",
                                               setCookies: [], log: nil))
        }
        // A script's request cannot follow a login page; answering 401 also keeps background polling
        // from piling up a state cookie per request.
        if request.cannotRedirect {
            return .respond(ErrorPage.response(status: 401, code: "login_required", message: "You are not logged in.", setCookies: [],
                                               log: .init(level: .info, message: "no session for a subrequest or error document at \(Masking.printable(String(request.path))): 401, as no login redirect could reach the browser")))
        }
        guard request.isNavigation else {
            return .respond(ErrorPage.response(status: 401, code: "login_required",
                                               message: "You are not logged in.", setCookies: [],
                                               log: .init(level: .info, message: "no session for a non-navigation request to \(Masking.printable(String(request.path))): 401 instead of a login redirect")))
        }
        // A browser that keeps coming back from the provider without its session would go round forever:
        // after a few such round trips it gets a page saying what is wrong instead (LoginMarker). A
        // step-up (a valid session that asks for more) is no such round trip.
        // One pass over the Cookie header finds the marker and the state cookies.
        let pairs = request.cookies.pairs
        var streak = 0
        let markerName = LoginMarker.cookieName(secure: request.isSecure)
        if stepUp == nil, let value = pairs.first(where: { $0.name == markerName })?.value,
           let marker = LoginMarker.open(value, request: request, config: config, now: now),
           marker.isRecent(now: now, clockSkew: config.clockSkew) {
            if marker.streak >= LoginMarker.loopLimit {
                return CallbackHandler.refusal(.loginLoop(rounds: marker.streak, cause: LoopDiagnosis.explain(request, site: site, now: now)),
                                               request: request, clearing: [])
            }
            streak = marker.streak
        }
        let metadata: ProviderMetadata
        do {
            metadata = try site.provider.metadata(now: now)
        } catch {
            return CallbackHandler.refusal(.provider(error), request: request, clearing: [])
        }
        // Only the path and query are kept, so the redirect after login cannot leave this site.
        let returnTo = LoginState.isLocalTarget(request.target) ? request.target : "/"
        // A hint from the request replaces the location's own of that name.
        let hints = hints(request)
        let extra = (request.dir.authRequestParameters ?? []).filter { p in !hints.contains { $0.0 == p.0 } } + hints
        let maxAge = extra.last { $0.0 == "max_age" }.flatMap { Int64($0.1) } ?? config.maxAge
        let rules = LocationRules(request.dir)
        var login = LoginState.start(returnTo: returnTo, now: now, maxAge: maxAge, acrValues: rules.acrValues,
                                     promptLogin: rules.promptLogin, using: &rng)
        login.streak = streak
        let fallback = LongReturnURL.keep(returnTo, for: &login, request: request, site: site, now: now)
        guard let sealed = SealedCookie.seal(login.encoded(), keys: config.keys, purpose: .state, context: config.stateContext) else {
            return .respond(ErrorPage.response(status: 500, code: "internal_error", message: "The login could not be started.",
                                               setCookies: [], log: .init(level: .error, message: "sealing the state cookie failed")))
        }
        let auth = AuthorizationRequest(endpoint: metadata.authorizationEndpoint, clientID: config.clientID,
                                        redirectURI: config.redirectURI.url(scheme: request.scheme, host: request.host),
                                        scope: config.scope, state: login.state, nonce: login.nonce, maxAge: maxAge,
                                        extra: extra)
        var cookies = staleStateCookies(request, pairs: pairs, config: config, now: now).map { stateCookie($0, value: "", maxAge: 0) }
        // The browser keeps the cookie a minute past the state's lifetime, so a login that took too long
        // is reported as expired (with its own message) rather than as a missing cookie.
        cookies.append(stateCookie(login.cookieName(secure: request.isSecure), value: sealed, maxAge: config.stateLifetime + 60))
        var log: Decision.LogLine = stepUp.map { .init(level: .info, message: "\($0): login started for \(Masking.printable(returnTo))") }
            ?? .init(level: .debug, message: "no session: login started for \(Masking.printable(returnTo))")
        if let fallback { log = .init(level: .warning, message: log.message + "; " + fallback) }
        return .redirect(.init(status: 302, location: auth.url, setCookies: cookies.map(\.headerValue), log: log))
    }

    /// The hints the location lets a portal link pass on (`?login_hint=...`): the first of each, short and
    /// printable, else left out. They only prefill the provider's page; what the login proves is unchanged.
    static func hints(_ request: AuthRequest) -> [(String, String)] {
        guard let names = request.dir.authRequestFromQuery, !names.isEmpty, let query = request.query,
              let pairs = FormEncoding.parse(query.utf8) else { return [] }
        return names.compactMap { name in
            guard let value = pairs.first(where: { $0.0 == name })?.1, !value.isEmpty, value.utf8.count <= 256,
                  value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else { return nil }
            return (name, value)
        }
    }

    /// The state cookie must come back on the provider's cross-site POST: SameSite=None, which
    /// browsers accept only with Secure (and honour over http on loopback hosts only).
    static func stateCookie(_ name: String, value: String, maxAge: Int64) -> SetCookie {
        SetCookie(name: name, value: value, maxAge: maxAge, secure: true, sameSite: SetCookie.SameSite.none)
    }

    /// State cookies opened per login start. A browser holds at most IDTokenMaxStateCookies (20 at the
    /// most); a header stuffed with more must not cost a decryption each: the rest are deleted unopened.
    static let maximumStateCookiesExamined = 24

    /// State cookies to delete before adding one: those that no longer open or have expired, and the
    /// oldest beyond the cap, so abandoned logins cannot grow the Cookie header without bound. Over https
    /// un-prefixed ones are someone else's (or from before the site moved to https): deleted unopened.
    static func staleStateCookies(_ request: AuthRequest, pairs: [(name: Substring, value: Substring)], config: SiteConfig,
                                  now: Int64) -> [String] {
        var live = [(name: String, createdAt: Int64)]()
        var stale = [String]()
        let own = LoginState.namePrefix(secure: request.isSecure)
        var examined = 0
        for (name, value) in pairs {
            let ours = name.hasPrefix(own)
            guard ours || name.hasPrefix(LoginState.cookiePrefix) else { continue }
            examined += 1
            if ours, examined <= maximumStateCookiesExamined {
                request.work.sealedOpens += 1
                if let plain = SealedCookie.open(value, keys: config.keys, purpose: .state, context: config.stateContext),
                   let state = LoginState(decoding: plain), now - state.createdAt <= config.stateLifetime {
                    live.append((String(name), state.createdAt))
                    continue
                }
            }
            stale.append(String(name))
        }
        let excess = live.count - (config.maximumStateCookies - 1)
        if excess > 0 {
            stale += live.sorted { $0.createdAt < $1.createdAt }.prefix(excess).map(\.name)
        }
        return stale
    }
}
