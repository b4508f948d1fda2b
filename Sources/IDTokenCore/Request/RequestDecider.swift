/// The module's one question: what to do with this request to a protected location.
///
///     GET redirect URI ?logout=…         → LogoutHandler      (end the session, then the provider's)
///     GET redirect URI ?info=json        → SessionInfo        (the session's claims and times, for scripts)
///     GET redirect URI ?frontchannel_logout&iss&sid → FrontChannelLogout (the provider's iframe)
///     POST to the redirect URI           → CallbackHandler    (validate, open a session, go back;
///                                                              or a back-channel logout token)
///     a valid session the location takes → SessionGate        (pass, with the user's claims)
///     anything else                      → LoginStart         (off to the provider, or 401 for scripts)
///
/// Subrequests and internal redirects are decided the same way, from the request's own cookies, since
/// httpd asks only when their configuration differs from the request they came from; only the callback
/// is out of their reach (its body and its state belong to the provider's POST alone).
package enum RequestDecider {
    package static func decide<R: RandomNumberGenerator>(_ request: AuthRequest, site: Site, now: Int64, rng: inout R) -> Decision {
        let config = site.config
        // Behind a trusted proxy, the scheme and host the browser used (IDTokenTrustedProxies).
        var request = request
        config.trustedProxies.apply(to: &request)
        if config.redirectURI.matches(host: request.host, path: String(request.path)) {
            if request.isInternal { return CallbackHandler.refusal(.internalCallback, request: request, clearing: []) }
            if request.method == "GET", let query = request.query, let pairs = FormEncoding.parse(query.utf8) {
                if let logout = pairs.first(where: { $0.0 == "logout" })?.1 {
                    return LogoutHandler.handle(request, returnTo: logout, site: site, now: now, rng: &rng)
                }
                if let format = pairs.first(where: { $0.0 == "info" })?.1 {
                    return SessionInfo.handle(request, format: format, query: pairs, site: site, now: now)
                }
                if pairs.contains(where: { $0.0 == "frontchannel_logout" }) {
                    return FrontChannelLogout.handle(request, query: pairs, site: site, now: now)
                }
            }
            return CallbackHandler.handle(request, site: site, now: now)
        }
        switch SessionGate.check(request, site: site, now: now) {
        case .pass(let pass):
            request.work.count(.request(.passed))
            return .pass(pass)
        case .stepUp(let why): return request.work.counted(LoginStart.begin(request, site: site, now: now, rng: &rng, stepUp: why))
        case .none: return request.work.counted(LoginStart.begin(request, site: site, now: now, rng: &rng))
        case .storeUnavailable: return request.work.counted(storeUnavailable)
        }
    }

    /// A session kept in the shared store that cannot be read: 503, not a login that could not complete
    /// either. The store's adapter logs the outage (once for the server, then once a minute), so each
    /// request adds a line at debug level only.
    static let storeUnavailable: Decision = .respond(ErrorPage.response(
        status: 503, code: "temporarily_unavailable",
        message: "Your session cannot be checked right now. Please try again in a moment.", setCookies: [],
        log: .init(level: .debug, message: "the session store (IDTokenCache) cannot be reached: 503")))
}
