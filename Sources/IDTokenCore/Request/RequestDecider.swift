/// The module's one question: what to do with this request to a protected location.
///
///     GET redirect URI ?logout=…         → LogoutHandler      (end the session, then the provider's)
///     POST to the redirect URI           → CallbackHandler    (validate, open a session, go back;
///                                                              or a back-channel logout token)
///     a valid session                    → SessionGate        (pass, with the user's claims)
///     anything else                      → LoginStart         (off to the provider, or 401 for scripts)
public enum RequestDecider {
    public static func decide<R: RandomNumberGenerator>(_ request: AuthRequest, site: Site, now: Int64, rng: inout R) -> Decision {
        let config = site.config
        if config.redirectURI.matches(host: request.host, path: String(request.path)) {
            if request.method == "GET", let logout = LogoutHandler.returnParameter(request) {
                return LogoutHandler.handle(request, returnTo: logout, site: site, now: now, rng: &rng)
            }
            return CallbackHandler.handle(request, site: site, now: now)
        }
        if let pass = SessionGate.pass(request, site: site, now: now) {
            return .pass(pass)
        }
        return LoginStart.begin(request, site: site, now: now, rng: &rng)
    }
}
