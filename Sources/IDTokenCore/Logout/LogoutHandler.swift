/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `<redirect URI>?logout=<return URL>`
/// ends the local session, then sends the browser to the provider's end_session_endpoint (when it has
/// one) so the provider's session ends too, and from there back to the return URL.
enum LogoutHandler {
    /// The `logout` query parameter of a request to the redirect URI, if it has one.
    static func returnParameter(_ request: AuthRequest) -> String? {
        guard let query = request.query, let pairs = FormEncoding.parse(query.utf8) else { return nil }
        return pairs.first { $0.0 == "logout" }?.1
    }

    static func handle<R: RandomNumberGenerator>(_ request: AuthRequest, returnTo raw: String, site: Site, now: Int64,
                                                 rng: inout R) -> Decision {
        let config = site.config
        var returnURL: String?
        if !raw.isEmpty {
            guard let url = ReturnURL.validate(raw, request: request, allowedOrigins: config.logoutAllowedOrigins) else {
                return CallbackHandler.refusal(.logoutReturnRefused(Masking.printable(raw, max: 120)), request: request, clearing: [])
            }
            returnURL = url
        }
        let jar = SessionJar(config: config, request: request, store: request.store ?? site.localStore)
        let loaded = jar.load(now: now)
        let clearing = jar.clear(loaded)
        let who = loaded.map { "'\(Masking.printable($0.session.subject))'" } ?? "a browser without a session"
        // Without the provider's metadata the local logout still happens; only the provider's is skipped.
        let endSession = (try? site.provider.metadata(now: now))?.endSessionEndpoint
        guard let endSession else {
            let log = Decision.LogLine(level: .info, message: "logout of \(who); the provider has no end_session_endpoint")
            if let returnURL {
                return .redirect(.init(status: 302, location: returnURL, setCookies: clearing, log: log))
            }
            return .respond(ErrorPage.loggedOut(setCookies: clearing, log: log))
        }
        var parameters = [("client_id", config.clientID)]
        if let hint = loaded?.session.idToken, !hint.isEmpty { parameters.append(("id_token_hint", hint)) }
        if let returnURL { parameters.append(("post_logout_redirect_uri", returnURL)) }
        parameters.append(("state", LoginState.randomToken(using: &rng)))
        let joiner = endSession.contains("?") ? "&" : "?"
        return .redirect(.init(status: 302, location: endSession + joiner + FormEncoding.encode(parameters), setCookies: clearing,
                               log: .init(level: .info, message: "logout of \(who): on to the provider's end_session_endpoint")))
    }
}
