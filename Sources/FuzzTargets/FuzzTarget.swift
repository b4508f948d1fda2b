import IDTokenCore

/// One fuzz target per parser that meets outside input (Fuzz/README.md). Each feeds the bytes to the
/// public RequestDecider the way the Apache module would hand them over (a form body, a Cookie header,
/// a request target, a document the provider serves), so the parser runs in its real context and
/// whatever it lets through goes on to the checks behind it. A thrown error or refusal is a correct
/// answer; only a trap (or a sanitizer report) is a bug.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A compact JWS/JWT posted as the id_token (and as a back-channel logout_token): splitting,
    /// base64url, header JSON, algorithm and key choice, signature verification with the provider's keys.
    case jws
    /// A JWT payload (optionally preceded by a header line), validly signed with HS256/384/512: the
    /// claims JSON and every claim rule, then the session made from it, used and logged out.
    case claims
    /// The provider's JWKS: key parsing (RSA, EC, OKP), then tokens verified against the keys found.
    case jwks
    /// The provider's discovery document: parsed, then used for a login, a callback and a logout.
    case discovery
    /// The callback's form body (form_post): form decoding, parameter rules, state, token, logout token.
    case form
    /// The Cookie header, on a protected page, a logout and a callback: cookie splitting, session chunks,
    /// state cookies by name.
    case cookie
    /// The session cookie: the value as sent (base64url, AES-GCM opening), and any plaintext validly
    /// sealed (the session decoder, expiry, claims passed to the application, logout).
    case session
    /// The state cookie: the value as sent, and any plaintext validly sealed (the login-state decoder,
    /// state and nonce comparison, max_age and acr rules, stale state cookies at a new login).
    case state
    /// The redirect URI's query on GET: `logout=<return URL>` and the return URL validator.
    case logout

    /// How deep an input got; the replay test checks that the seeds still get this deep.
    public struct Outcome: Sendable {
        public var decisions = 0
        /// A login completed: 303 with a session cookie.
        public var loggedIn = false
        /// A protected request passed with a user.
        public var passed = false
        /// A logout went on to the provider's end_session_endpoint.
        public var loggedOut = false
        /// The last login's session cookies, as a browser would send them back.
        public var sessionCookie: String?
    }

    /// Runs one input. Never traps on any input; anything else the harness cannot set up is a bug in
    /// the harness and stops the run.
    @discardableResult
    public func run(_ bytes: [UInt8]) -> Outcome {
        var o = Outcome()
        switch self {
        case .jws: Self.jws(bytes, &o)
        case .claims: Self.claims(bytes, &o)
        case .jwks: Self.jwks(bytes, &o)
        case .discovery: Self.discovery(bytes, &o)
        case .form: Self.form(bytes, &o)
        case .cookie: Self.cookie(bytes, &o)
        case .session: Self.session(bytes, &o)
        case .state: Self.state(bytes, &o)
        case .logout: Self.logout(bytes, &o)
        }
        return o
    }

    /// Builds what the target needs (keys, the provider's documents, the login in progress) before the
    /// first input, so that this cost and coverage are not charged to that input.
    public func prepare() {
        run([])
        for seed in FuzzSeeds.seeds(for: self) { run(seed.bytes) }
    }

    // MARK: Targets

    private static func jws(_ bytes: [UInt8], _ o: inout Outcome) {
        let token = String(decoding: bytes, as: UTF8.self)
        Harness.decide(Harness.callback(body: Harness.loginForm(token: token), cookie: Harness.login.cookie), Harness.cookieSite, &o)
        Harness.decide(Harness.callback(body: Array(("logout_token=" + Codec.formEncode(token.utf8)).utf8), cookie: nil),
                       Harness.cacheSite, &o)
    }

    private static func claims(_ bytes: [UInt8], _ o: inout Outcome) {
        // "header\npayload", or the payload alone under a plain HS256 header.
        let header: [UInt8], payload: [UInt8]
        if let nl = bytes.firstIndex(of: 0x0A) {
            header = Array(bytes[..<nl])
            payload = Array(bytes[(nl + 1)...])
        } else {
            header = Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)
            payload = bytes
        }
        let text = String(decoding: header, as: UTF8.self)
        let alg = text.contains("HS512") ? "HS512" : text.contains("HS384") ? "HS384" : "HS256"
        let token = Harness.mint(header: header, payload: payload, alg: alg)
        let form = Harness.loginForm(token: token)
        Harness.decide(Harness.callback(body: form, cookie: Harness.login.cookie), Harness.cookieSite, &o)
        if let session = o.sessionCookie {
            // The session the claims made, used as a browser would, then logged out.
            for dir in [Harness.plainDir, Harness.richDir, Harness.base64Dir] {
                Harness.decide(Harness.navigation("/app/page", cookie: session, dir: dir), Harness.cookieSite, &o)
            }
            Harness.decide(Harness.navigation(Harness.redirectPath + "?logout=%2Fbye", cookie: session), Harness.cookieSite, &o)
            // REMOTE_USER through a pattern only for tokens that log in: a regular expression costs.
            Harness.decide(Harness.callback(body: form, cookie: Harness.login.cookie), Harness.remoteUserSite, &o)
        }
        Harness.decide(Harness.callback(body: Array(("logout_token=" + Codec.formEncode(token.utf8)).utf8), cookie: nil),
                       Harness.cacheSite, &o)
    }

    private static func jwks(_ bytes: [UInt8], _ o: inout Outcome) {
        let provider = Harness.provider(jwks: bytes)
        for token in Harness.goodTokens {
            Harness.decide(Harness.callback(body: Harness.loginForm(token: token), cookie: Harness.login.cookie),
                           Harness.cookieSite, provider: provider, &o)
        }
    }

    private static func discovery(_ bytes: [UInt8], _ o: inout Outcome) {
        let provider = Harness.provider(discovery: bytes)
        Harness.decide(Harness.navigation("/app/page?x=1", cookie: nil), Harness.cookieSite, provider: provider, &o)
        Harness.decide(Harness.callback(body: Harness.loginForm(token: Harness.goodTokens[0]), cookie: Harness.login.cookie),
                       Harness.cookieSite, provider: provider, &o)
        Harness.decide(Harness.navigation(Harness.redirectPath + "?logout=%2Fbye", cookie: nil), Harness.cookieSite,
                       provider: provider, &o)
    }

    private static func form(_ bytes: [UInt8], _ o: inout Outcome) {
        Harness.decide(Harness.callback(body: bytes, cookie: Harness.login.cookie), Harness.cookieSite, &o)
        Harness.decide(Harness.callback(body: bytes, cookie: Harness.login.cookie), Harness.cacheSite, &o)
    }

    private static func cookie(_ bytes: [UInt8], _ o: inout Outcome) {
        let header = String(decoding: bytes, as: UTF8.self)
        Harness.decide(Harness.navigation("/app/page", cookie: header), Harness.cookieSite, &o)
        Harness.decide(Harness.navigation("/app/page", cookie: header), Harness.cacheSite, &o)
        Harness.decide(Harness.navigation(Harness.redirectPath + "?logout=", cookie: header), Harness.cookieSite, &o)
        Harness.decide(Harness.callback(body: Harness.loginForm(token: Harness.goodHMACToken), cookie: header), Harness.cookieSite, &o)
    }

    private static func session(_ bytes: [UInt8], _ o: inout Outcome) {
        // The value as a browser could send it.
        let raw = String(decoding: bytes, as: UTF8.self)
        Harness.decide(Harness.navigation("/app/page", cookie: "idtoken_session=" + raw), Harness.cookieSite, &o)
        // Any plaintext, validly sealed: what only a holder of the key could make, and what the
        // decoder must still survive (a key shared with an older version, a bug on the sealing side).
        guard let sealed = Harness.cookieSite.sealCookieValue(bytes, purpose: .session) else { return }
        let cookie = "idtoken_session=" + sealed
        Harness.decide(Harness.navigation("/app/page", cookie: cookie), Harness.cookieSite, &o)
        Harness.decide(Harness.navigation("/app/page", cookie: cookie, dir: Harness.richDir), Harness.cookieSite, &o)
        Harness.decide(Harness.navigation(Harness.redirectPath + "?logout=" + Codec.formEncode((Harness.partnerOrigin + "/bye").utf8),
                                          cookie: cookie), Harness.cookieSite, &o)
    }

    private static func state(_ bytes: [UInt8], _ o: inout Outcome) {
        let form = Harness.loginForm(token: Harness.goodHMACToken)
        let name = Harness.login.cookieName
        let raw = String(decoding: bytes, as: UTF8.self)
        Harness.decide(Harness.callback(body: form, cookie: name + "=" + raw), Harness.cookieSite, &o)
        guard let sealed = Harness.cookieSite.sealCookieValue(bytes, purpose: .state) else { return }
        Harness.decide(Harness.callback(body: form, cookie: name + "=" + sealed), Harness.cookieSite, &o)
        Harness.decide(Harness.callback(body: form, cookie: name + "=" + sealed), Harness.remoteUserSite, &o)
        // A new login looks at every state cookie to drop stale ones.
        Harness.decide(Harness.navigation("/app/page", cookie: name + "=" + sealed + "; idtoken_state_other=" + sealed),
                       Harness.cookieSite, &o)
    }

    private static func logout(_ bytes: [UInt8], _ o: inout Outcome) {
        let query = String(decoding: bytes, as: UTF8.self)
        let session = sessionCookie
        Harness.decide(Harness.navigation(Harness.redirectPath + "?" + query, cookie: session), Harness.cookieSite, &o)
        Harness.decide(Harness.navigation(Harness.redirectPath + "?" + query, cookie: nil, scheme: "https", host: "App.Example.ORG"),
                       Harness.cookieSite, &o)
        // Not the redirect URI: the query is only carried into the login's return path.
        Harness.decide(Harness.navigation("/app/page?" + query, cookie: nil), Harness.cookieSite, &o)
    }

    /// A session from a real login, for the logout target.
    private static let sessionCookie: String? = {
        var o = Outcome()
        Harness.decide(Harness.callback(body: Harness.loginForm(token: Harness.goodTokens[0]), cookie: Harness.login.cookie),
                       Harness.cookieSite, &o)
        return o.sessionCookie
    }()
}
