/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `<redirect URI>?logout=<return URL>`
/// ends the local session, then sends the browser to the provider's end_session_endpoint (when it has
/// one) so the provider's session ends too, and from there back to the return URL.
enum LogoutHandler {
    /// What says the request came from another site, or nil. Fetch metadata when the browser sends it
    /// (`same-origin` and `none`, a typed URL or bookmark, are fine; `same-site` is a sibling subdomain,
    /// which is not this site); otherwise a foreign Origin or Referer. Without any of them there is
    /// nothing to go on, and the logout goes ahead as it always did.
    static func crossSiteOrigin(_ request: AuthRequest) -> String? {
        if let site = request.secFetchSite?.lowercased() {
            return site == "same-origin" || site == "none" ? nil : "Sec-Fetch-Site: \(Masking.printable(site, max: 20))"
        }
        let own = request.scheme.lowercased() + "://" + request.host.lowercased()
        for (name, value) in [("Origin", request.origin), ("Referer", request.referer)] {
            guard let value, !value.isEmpty, value != "null" else { continue }
            guard let url = URLParts(value), url.origin == own else { return "\(name): \(Masking.printable(value, max: 80))" }
        }
        return nil
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
        // A cross-site page could otherwise log users out (and send their id_token_hint to the provider)
        // with a link or an <img>: such a request gets a page whose link, followed, is same-origin.
        if let from = crossSiteOrigin(request) {
            return .respond(ErrorPage.confirmLogout(target: request.target,
                                                    log: .init(level: .info, message: "logout request from another site (\(from)) not carried out: the user is asked to confirm")))
        }
        let jar = SessionJar(site: site, request: request)
        let loaded = jar.load(now: now)
        if loaded != nil { request.work.count(.sessionEnded(.logout)) }
        var clearing = jar.clear(loaded, now: now)
        // The completed-login marker goes too: a login right after this logout is no round trip of a
        // loop, and a replayed login response no longer leads back in (LoginMarker).
        let marker = LoginMarker.cookieName(secure: request.isSecure)
        if !request.cookies.values(named: marker).isEmpty { clearing.append(LoginMarker.clearing(secure: request.isSecure)) }
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
