/// `<redirect URI>?info=json` (IDTokenSessionInfo): what a JavaScript front end may know of its session,
/// without an HttpOnly cookie to read: who (REMOTE_USER, `sub`, the claims the application receives),
/// and when the session ends (absolutely, and idle), so that a single-page app can log in again before
/// its calls start failing; with `WithIDToken`, the ID token as the provider issued it.
///
/// - Same origin only: a request another site makes (`Sec-Fetch-Site` cross-site or same-site, or an
///   `Origin` of another origin) gets 403 before the session is even looked at, so a page elsewhere
///   cannot tell whether its visitor is logged in here; an origin listed in IDTokenSessionInfoOrigins may
///   read it through CORS (credentials included).
/// - It does not extend the session: polling it must not keep an idle session alive. `extend_session=1`
///   asks for that, as a navigation would (at most once per IDTokenSessionRefreshInterval).
/// - `Cache-Control: no-store` (set by the module on every answer of the core's own), `nosniff`,
///   `Cross-Origin-Resource-Policy: same-origin`: nothing keeps or embeds it.
/// - No session: `401` with a JSON body; never a redirect, which a script cannot follow.
enum SessionInfo {
    static func handle(_ request: AuthRequest, format: String, query: [(String, String)], site: Site, now: Int64) -> Decision {
        let config = site.config
        guard config.sessionInfo != .off else {
            return answer(404, ["error": "not_found", "error_description": "IDTokenSessionInfo is Off"], cors: [])
        }
        guard format == "json" else {
            return answer(400, ["error": "invalid_request", "error_description": "info=json is the one format"], cors: [])
        }
        // CORS only for the admin's origins; any other origin's request is refused unread.
        let origin = request.origin.flatMap { URLParts($0)?.origin }
        let own = request.scheme.lowercased() + "://" + request.host.lowercased()
        var cors = [(String, String)]()
        if let origin, origin != own {
            guard config.sessionInfoOrigins.contains(origin) else {
                return answer(403, ["error": "forbidden", "error_description": "not for another origin"], cors: [],
                              log: "session info refused to the origin \(Masking.printable(origin, max: 120)) (not in IDTokenSessionInfoOrigins)")
            }
            cors = [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]
        } else if let fetchSite = request.secFetchSite?.lowercased(), fetchSite == "cross-site" || fetchSite == "same-site" {
            return answer(403, ["error": "forbidden", "error_description": "not for another site"], cors: [])
        }
        let jar = SessionJar(site: site, request: request)
        guard var loaded = jar.load(now: now) else { return noSession(cors) }
        loaded.session.expiresAt = SessionGate.effectiveExpiry(loaded.session, config: config)
        guard loaded.session.isValid(now: now, idleTimeout: config.sessionIdleTimeout) else { return noSession(cors) }
        var setCookies = [String]()
        let extend = query.first { $0.0 == "extend_session" }.map { ["1", "true", "yes"].contains($0.1.lowercased()) } ?? false
        if extend, !request.isInternal, config.sessionIdleTimeout > 0,
           now - loaded.session.refreshedAt >= config.sessionRefreshInterval {
            var refreshed = loaded
            refreshed.session.refreshedAt = now
            switch jar.refresh(refreshed, now: now) {
            case .refreshed(let cookies):
                setCookies = cookies
                loaded = refreshed
            case .failed: break
            case .ended: return noSession(cors)
            }
        }
        let s = loaded.session
        var claims = [String]()
        for claim in s.claims { claims.append(JSONValue.quote(claim.name) + ":" + claim.jsonValue) }
        var session = [
            "\"created_at\":\(s.createdAt)",
            "\"expires_at\":\(s.expiresAt)",
            "\"idle_expires_at\":" + (config.sessionIdleTimeout > 0 ? String(min(s.expiresAt, s.refreshedAt + config.sessionIdleTimeout)) : "null"),
            "\"idle_timeout\":\(config.sessionIdleTimeout)",
        ]
        if let t = s.authTime { session.append("\"auth_time\":\(t)") }
        if let acr = s.acr { session.append("\"acr\":" + JSONValue.quote(acr)) }
        var members = [
            "\"remote_user\":" + JSONValue.quote(s.remoteUser),
            "\"sub\":" + JSONValue.quote(s.subject),
            "\"claims\":{" + claims.joined(separator: ",") + "}",
            "\"session\":{" + session.joined(separator: ",") + "}",
            "\"now\":\(now)",
        ]
        if config.sessionInfo == .withIDToken, !s.idToken.isEmpty { members.append("\"id_token\":" + JSONValue.quote(s.idToken)) }
        return .respond(.init(status: 200, page: "{" + members.joined(separator: ",") + "}\n", env: [], setCookies: setCookies,
                              log: nil, contentType: "application/json", headers: cors + commonHeaders))
    }

    /// Nothing keeps the answer, nothing embeds or sniffs it.
    static let commonHeaders = [("X-Content-Type-Options", "nosniff"), ("Cross-Origin-Resource-Policy", "same-origin")]

    private static func noSession(_ cors: [(String, String)]) -> Decision {
        answer(401, ["error": "login_required", "error_description": "no session"], cors: cors)
    }

    private static func answer(_ status: Int, _ body: [String: String], cors: [(String, String)], log: String? = nil) -> Decision {
        let json = "{" + body.keys.sorted().map { JSONValue.quote($0) + ":" + JSONValue.quote(body[$0] ?? "") }.joined(separator: ",") + "}\n"
        return .respond(.init(status: status, page: json, env: [], setCookies: [],
                              log: log.map { .init(level: .info, message: $0) }, contentType: "application/json",
                              headers: cors + commonHeaders))
    }
}
