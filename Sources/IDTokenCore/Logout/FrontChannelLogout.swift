/// OpenID Connect Front-Channel Logout 1.0: the provider's logout page loads
/// `<redirect URI>?frontchannel_logout=1&iss=<issuer>&sid=<its session id>` in an iframe, once per
/// application the user logged in to; each ends its sessions of that provider session. Entra ID signs
/// users out of applications this way only.
///
/// - `sid` must be given (frontchannel_logout_session_required): a request without it ends nothing, since
///   any page could load it (a logout CSRF). `iss`, when given, must be the provider's issuer; Entra ID
///   sends `sid` alone.
/// - Sessions in the shared store (`IDTokenSessionStore cache`, or cookie sessions that overflowed
///   there) end by the `sid` index, whether or not the iframe's request carries a cookie: browsers that
///   block third-party cookies, and SameSite=Lax or Strict session cookies, never send one there.
/// - A session cookie the iframe's request carries (SameSite=None) is cleared when its session holds
///   that `sid`: the only way to end a cookie session from the provider.
/// - The answer is a small page the provider may frame (`frame-ancestors` its own origins), never
///   cached, setting nothing but the deletions.
enum FrontChannelLogout {
    static func handle(_ request: AuthRequest, query: [(String, String)], site: Site, now: Int64) -> Decision {
        func value(_ name: String) -> String? {
            let values = query.filter { $0.0 == name }
            return values.count == 1 ? values[0].1 : nil
        }
        let metadata: ProviderMetadata
        do {
            metadata = try site.provider.metadata(now: now)
        } catch {
            return CallbackHandler.refusal(.provider(error), request: request, clearing: [])
        }
        let ancestors = frameAncestors(metadata)
        guard let sid = value("sid"), !sid.isEmpty, sid.utf8.count <= 512, query.filter({ $0.0 == "iss" }).count <= 1 else {
            return page(400, "The logout request does not say which session ended.", ancestors: ancestors, cookies: [],
                        log: .init(level: .warning, message: "front-channel logout without one sid: nothing ended (the sid is required, so that another page cannot log users out)"))
        }
        if let iss = value("iss"), !issuerMatches(iss, metadata.issuer) {
            return page(400, "The logout request names another provider.", ancestors: ancestors, cookies: [],
                        log: .init(level: .warning, message: "front-channel logout for the issuer '\(Masking.printable(iss, max: 120))', not this site's provider: nothing ended"))
        }
        let jar = SessionJar(site: site, request: request)
        // This browser's own cookie first, when it came along and is of that provider session.
        var clearing = [String]()
        var own = "no session cookie came with the request"
        if let loaded = jar.load(now: now) {
            if loaded.session.sid == sid {
                clearing = jar.clear(loaded, now: now)
                let marker = LoginMarker.cookieName(secure: request.isSecure)
                if !request.cookies.values(named: marker).isEmpty { clearing.append(LoginMarker.clearing(secure: request.isSecure)) }
                own = "this browser's session of '\(Masking.printable(loaded.session.subject))' cleared"
            } else {
                own = "this browser's session is of another provider session, kept"
            }
        }
        // Then the sessions of that sid in the store, whoever's browser holds them (cookie sessions too
        // big for cookies are there, indexed like cache sessions).
        let ended = jar.endSessions(sid: sid, sub: nil, now: now) ?? CachePlacement().endSessions(sid: sid, sub: nil, jar, now: now) ?? 0
        return page(200, "You are logged out.", ancestors: ancestors, cookies: clearing,
                    log: .init(level: .info, message: "front-channel logout for sid '\(Masking.printable(sid, max: 80))': \(ended) stored session(s) ended; \(own)"))
    }

    /// The issuer, or for an issuer with Entra ID's `{tenantid}` template, that template filled with a
    /// tenant ID.
    static func issuerMatches(_ iss: String, _ issuer: String) -> Bool {
        if iss == issuer { return true }
        guard let at = issuer.firstRange(of: IssuerRule.tenantPlaceholder) else { return IssuerRule(issuer: issuer).accepts(iss, claims: [:]) }
        let head = issuer[..<at.lowerBound], tail = issuer[at.upperBound...]
        guard iss.hasPrefix(head), iss.hasSuffix(tail), iss.utf8.count > head.utf8.count + tail.utf8.count else { return false }
        let tid = String(iss.dropFirst(head.count).dropLast(tail.count))
        return IssuerRule(issuer: issuer).accepts(iss, claims: ["tid": .string(tid)])
    }

    /// The provider's own origins (its issuer, login and logout pages): where its logout page that
    /// frames this one lives.
    static func frameAncestors(_ metadata: ProviderMetadata) -> [String] {
        var origins = [String]()
        for url in [metadata.issuer, metadata.authorizationEndpoint, metadata.endSessionEndpoint].compactMap({ $0 }) {
            if let o = URLParts(url)?.origin, !origins.contains(o) { origins.append(o) }
        }
        return origins
    }

    private static func page(_ status: Int, _ message: String, ancestors: [String], cookies: [String],
                             log: Decision.LogLine) -> Decision {
        let html = """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>Logged out</title></head>
            <body><p>\(HTML.escape(message))</p></body></html>

            """
        let policy = "frame-ancestors " + (ancestors.isEmpty ? "'none'" : ancestors.joined(separator: " ")) + "; default-src 'none'"
        return .respond(.init(status: status, page: html, env: [], setCookies: cookies, log: log,
                              contentType: "text/html; charset=utf-8",
                              headers: [("Content-Security-Policy", policy), ("X-Content-Type-Options", "nosniff")]))
    }
}
