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
        var extra = (request.dir.authRequestParameters ?? []).filter { p in !hints.contains { $0.0 == p.0 } } + hints
        // IDTokenSilentLogin: prompt=none first, unless a silent login just failed for this browser (it
        // came back with the flag the callback set) or the location asks a prompt of its own. Never for
        // a step-up: what it asks for (max_age, acr_values, prompt=login) may need the user.
        let interactiveName = SilentLogin.cookieName(secure: request.isSecure)
        let silentFailed = pairs.contains { $0.name == interactiveName }
        let silent = request.dir.effective.silentLogin && stepUp == nil && !silentFailed && !extra.contains { $0.0 == "prompt" }
        if silent { extra.append(("prompt", "none")) }
        let maxAge = extra.last { $0.0 == "max_age" }.flatMap { Int64($0.1) } ?? config.maxAge
        let rules = LocationRules(request.dir)
        var login = LoginState.start(returnTo: returnTo, now: now, maxAge: maxAge, acrValues: rules.acrValues,
                                     promptLogin: rules.promptLogin, using: &rng)
        login.streak = streak
        login.silent = silent
        let fallback = LongReturnURL.keep(returnTo, for: &login, request: request, site: site, now: now)
        guard let sealed = SealedCookie.seal(login.encoded(), keys: config.keys, purpose: .state, context: site.sessionProfile.stateContext) else {
            return .respond(ErrorPage.response(status: 500, code: "internal_error", message: "The login could not be started.",
                                               setCookies: [], log: .init(level: .error, message: "sealing the state cookie failed")))
        }
        let auth = AuthorizationRequest(endpoint: metadata.authorizationEndpoint, clientID: config.clientID,
                                        redirectURI: config.redirectURI.url(scheme: request.scheme, host: request.host),
                                        scope: config.scope, state: login.state, nonce: login.nonce, maxAge: maxAge,
                                        extra: extra)
        var cookies = staleStateCookies(request, pairs: pairs, site: site, now: now).map { stateCookie($0, value: "", maxAge: 0) }
        // The browser keeps the cookie a minute past the state's lifetime, so a login that took too long
        // is reported as expired (with its own message) rather than as a missing cookie.
        cookies.append(stateCookie(login.cookieName(secure: request.isSecure), value: sealed, maxAge: config.stateLifetime + 60))
        var setCookies = cookies.map(\.headerValue)
        if silentFailed { setCookies.append(SilentLogin.cookie(secure: request.isSecure, set: false)) }
        var log: Decision.LogLine = stepUp.map { .init(level: .info, message: "\($0): login started for \(Masking.printable(returnTo))") }
            ?? .init(level: .debug, message: "no session: \(silent ? "silent login (prompt=none)" : silentFailed ? "interactive login, as the silent one needed the user," : "login") started for \(Masking.printable(returnTo))")
        if let fallback { log = .init(level: .warning, message: log.message + "; " + fallback) }
        return .redirect(.init(status: 302, location: auth.url, setCookies: setCookies, log: log))
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
    static func staleStateCookies(_ request: AuthRequest, pairs: [(name: Substring, value: Substring)], site: Site,
                                  now: Int64) -> [String] {
        let config = site.config
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
                if let plain = SealedCookie.open(value, keys: config.keys, purpose: .state, context: site.sessionProfile.stateContext),
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

/// IDTokenSilentLogin: a login tried with `prompt=none` first, so that a user who still has a session
/// at the provider comes back at once, without seeing it. When the provider answers that it needs the
/// user (one of `fallbackErrors`) for such a login, the callback sends the browser back to its page with a
/// flag cookie, and the login that page starts is interactive: once, since the flag is spent by that
/// login start and an interactive login's error is shown as it is. The flag grants nothing: it only
/// leaves `prompt=none` out of one login.
enum SilentLogin {
    /// OpenID Connect Core 3.1.2.6: what a provider answers prompt=none when it cannot log the user in
    /// without showing something.
    static let fallbackErrors: Set<String> = ["login_required", "interaction_required", "consent_required", "account_selection_required"]

    static let baseName = "idtoken_interactive"
    /// Long enough for the round trip from the callback back to the page; a browser that does not make
    /// it simply tries silently again.
    static let lifetime: Int64 = 120

    static func cookieName(secure: Bool) -> String { secure ? LoginState.securePrefix + baseName : baseName }

    /// SameSite=None; Secure like the state cookie: it is set on the answer to the provider's cross-site
    /// POST and must come with the redirect that follows, whatever IDTokenCookieSameSite says.
    static func cookie(secure: Bool, set: Bool) -> String {
        SetCookie(name: cookieName(secure: secure), value: set ? "1" : "", maxAge: set ? lifetime : 0, secure: true,
                  sameSite: SetCookie.SameSite.none).headerValue
    }
}
