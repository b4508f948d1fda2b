/// The module's one question: what to do with this request to a protected location.
///
///     callback POST at the redirect URI  → CallbackHandler   (validate, open a session, go back)
///     a valid session cookie             → SessionGate       (pass, with the user's claims)
///     anything else                      → LoginStart        (off to the provider, or 401 for scripts)
public enum RequestDecider {
    public static func decide<R: RandomNumberGenerator>(_ request: AuthRequest, site: Site, now: Int64, rng: inout R) -> Decision {
        let config = site.config
        if config.redirectURI.matches(host: request.host, path: String(request.path)) {
            return CallbackHandler.handle(request, site: site, now: now)
        }
        if let pass = SessionGate.pass(request, config: config, now: now) {
            return .pass(pass)
        }
        return LoginStart.begin(request, site: site, now: now, rng: &rng)
    }
}
