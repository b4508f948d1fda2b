/// The module's one question: what to do with this request to a protected location.
///
///     GET redirect URI ?logout=…         → LogoutHandler      (end the session, then the provider's)
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
        if config.redirectURI.matches(host: request.host, path: String(request.path)) {
            if request.isInternal { return CallbackHandler.refusal(.internalCallback, request: request, clearing: []) }
            if request.method == "GET", let logout = LogoutHandler.returnParameter(request) {
                return LogoutHandler.handle(request, returnTo: logout, site: site, now: now, rng: &rng)
            }
            return CallbackHandler.handle(request, site: site, now: now)
        }
        switch SessionGate.check(request, site: site, now: now) {
        case .pass(let pass):
            request.work.count(.request(.passed))
            return .pass(pass)
        case .stepUp(let why): return request.work.counted(LoginStart.begin(request, site: site, now: now, rng: &rng, stepUp: why))
        case .none: return request.work.counted(LoginStart.begin(request, site: site, now: now, rng: &rng))
        }
    }
}
