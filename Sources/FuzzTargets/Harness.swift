import IDTokenCore

/// The world each fuzz target runs in: one site configured as an admin would, a provider played in
/// memory with fixed keys, a clock that never moves, and a login already started (its state cookie,
/// state and nonce), so that fuzzed input can reach as deep as a real browser's or provider's could.
enum Harness {
    static let now: Int64 = 1_800_000_000
    static let issuer = "https://op.example.org"
    static let discoveryURL = issuer + "/.well-known/openid-configuration"
    static let jwksURL = issuer + "/jwks"
    static let clientID = "client-1"
    static let host = "localhost:8080"
    static let redirectPath = "/app/callback"
    /// The first line seals; the second only opens (a rolled-over key).
    static let keyLines = ["fuzz-session-key-0123456789abcdefghijklmnopqrstuvwxyz", "fuzz-older-session-key-0123456789abcdefghijklm"]
    static let partnerOrigin = "https://partner.example.net"

    static let discovery: [UInt8] = Array("""
        {"issuer":"\(issuer)","authorization_endpoint":"\(issuer)/authorize?tenant=t1","jwks_uri":"\(jwksURL)",\
        "end_session_endpoint":"\(issuer)/logout","response_modes_supported":["form_post"]}
        """.utf8)

    /// Serves a discovery document at the discovery URL and a key set at every other URL.
    struct Fetcher: HTTPFetcher {
        let discovery: [UInt8]
        let jwks: [UInt8]
        func get(_ url: String) -> HTTPFetchResult {
            .response(status: 200, body: url == Harness.discoveryURL ? discovery : jwks)
        }
    }

    static func provider(discovery: [UInt8] = Harness.discovery, jwks: [UInt8] = FixedKeys.jwks) -> ProviderCache {
        var policy = ProviderCache.Policy()
        // Every unknown kid refetches, so that an input's path never depends on the inputs before it.
        policy.unknownKeyRefetchInterval = 0
        return ProviderCache(discoveryURL: discoveryURL, fetcher: Fetcher(discovery: discovery, jwks: jwks), policy: policy)
    }

    /// Shared by the targets that do not fuzz the provider's documents: fetched and parsed once.
    static let sharedProvider = provider()

    /// Sessions in cookies (the default), every algorithm allowed, HMAC keyed with the client secret.
    static let cookieSite: SiteConfig = {
        do {
            var c = try SiteConfig.inMemory(siteName: "fuzz", discoveryURL: discoveryURL, clientID: clientID,
                                            redirectURI: redirectPath, keyLines: keyLines)
            c.allowedAlgorithms = Set(SignatureAlgorithm.allCases)
            c.clientSecret = FixedKeys.clientSecret
            c.logoutAllowedOrigins = [partnerOrigin]
            c.trustedAudiences = ["partner-api"]
            return c
        } catch {
            FixedKeys.harnessFailure("site configuration: \(error)")
        }
    }()

    /// Sessions on the server (IDTokenSessionStore cache): back-channel logout is accepted.
    static let cacheSite: SiteConfig = {
        var c = cookieSite
        c.sessionStore = .cache
        return c
    }()

    /// REMOTE_USER from a claim through a pattern, claims filtered, the session capped to the token.
    static let remoteUserSite: SiteConfig = {
        var c = cookieSite
        c.remoteUserClaim = "email"
        c.remoteUserPattern = "^([^@]+)@"
        c.claimsDrop = ["groups"]
        c.claimDelimiter = "|"
        c.sessionCapToTokenExpiry = true
        return c
    }()

    /// Location settings a protected request may carry.
    static let plainDir = DirConfig()
    static let richDir: DirConfig = (try? DirConfig(settings: [("IDTokenClaimEncoding", "latin1"), ("IDTokenPassIDToken", "payload"),
                                                              ("IDTokenPassClaimsAs", "both")])) ?? DirConfig()
    static let base64Dir: DirConfig = (try? DirConfig(settings: [("IDTokenClaimEncoding", "base64url"),
                                                                ("IDTokenPassIDToken", "serialized")])) ?? DirConfig()

    // MARK: A login in progress

    struct Login {
        /// The state sent to the provider, and the nonce the token must carry.
        let state: String
        let nonce: String
        /// `idtoken_state_…=<sealed>`, as the browser sends it back.
        let cookie: String
        var cookieName: Substring { cookie.prefix { $0 != "=" } }
    }

    /// Started through the module itself (GET of a protected page) with a seeded random generator,
    /// so state and nonce are the same in every run and committed seeds can carry them.
    static let login: Login = {
        var rng = SplitMix(seed: 20_260_101)
        let request = AuthRequest(method: "GET", scheme: "http", host: host, target: "/app/", accept: "text/html")
        guard case .redirect(let r) = RequestDecider.decide(request, site: Site(config: cookieSite, provider: sharedProvider),
                                                              now: now, rng: &rng),
              let state = Codec.queryValue(r.location, "state"), let nonce = Codec.queryValue(r.location, "nonce"),
              let pair = r.setCookies.compactMap(Codec.cookiePair).first(where: { $0.name.hasPrefix("idtoken_state_") }) else {
            FixedKeys.harnessFailure("starting a login did not redirect to the provider with a state cookie")
        }
        return Login(state: state, nonce: nonce, cookie: pair.name + "=" + pair.value)
    }()

    // MARK: Tokens

    /// The claims of a good ID token for the login in progress, as JSON text.
    static func claimsJSON(nonce: String? = nil, extra: String = "") -> String {
        #"{"iss":"\#(issuer)","sub":"alice-0001","aud":"\#(clientID)","exp":\#(now + 300),"iat":\#(now),"nonce":"\#(nonce ?? login.nonce)","sid":"sid-0001","email":"alice@example.org","groups":["staff","admins"]\#(extra)}"#
    }

    static func mint(header: [UInt8], payload: [UInt8], alg: String) -> String {
        let input = Codec.base64url(header) + "." + Codec.base64url(payload)
        return input + "." + Codec.base64url(FixedKeys.sign(Array(input.utf8), alg: alg))
    }

    static func mint(alg: String, kid: String?, typ: String? = "JWT", claims: String? = nil) -> String {
        var header = #"{"alg":"\#(alg)""#
        if let kid { header += #","kid":"\#(kid)""# }
        if let typ { header += #","typ":"\#(typ)""# }
        return mint(header: Array((header + "}").utf8), payload: Array((claims ?? claimsJSON()).utf8), alg: alg)
    }

    /// One good token per kind of key the provider publishes.
    static let goodTokens: [String] = [
        mint(alg: "RS256", kid: "rsa-1"), mint(alg: "PS384", kid: nil), mint(alg: "ES256", kid: "ec-256"),
        mint(alg: "ES384", kid: "ec-384"), mint(alg: "ES512", kid: "ec-521"), mint(alg: "EdDSA", kid: "ed-1"),
    ]
    /// With auth_time and acr, so that a login state's max_age and acr_values are checked too.
    static let goodHMACToken = mint(alg: "HS256", kid: nil, claims: claimsJSON(extra: #","auth_time":\#(now - 30),"acr":"urn:b""#))

    // MARK: Requests

    static func navigation(_ target: String, cookie: String?, scheme: String = "http", host: String = Harness.host,
                           dir: DirConfig = plainDir) -> AuthRequest {
        AuthRequest(method: "GET", scheme: scheme, host: host, target: target, cookie: cookie, accept: "text/html",
                    secFetchMode: "navigate", dir: dir)
    }

    static func callback(body: [UInt8], cookie: String?) -> AuthRequest {
        AuthRequest(method: "POST", scheme: "http", host: host, target: redirectPath, cookie: cookie,
                    contentType: "application/x-www-form-urlencoded; charset=UTF-8", body: body)
    }

    static func loginForm(token: String, state: String? = nil) -> [UInt8] {
        Array(("state=" + Codec.formEncode((state ?? login.state).utf8) + "&id_token=" + Codec.formEncode(token.utf8)).utf8)
    }

    /// One request through the module's decision, on a fresh site (its own store and opened-session
    /// memory, so nothing carries over from one input to the next), noting how far it got.
    @discardableResult
    static func decide(_ request: AuthRequest, _ config: SiteConfig, provider: ProviderCache = sharedProvider,
                       _ outcome: inout FuzzTarget.Outcome) -> Decision {
        var rng = SplitMix(seed: 7)
        let decision = RequestDecider.decide(request, site: Site(config: config, provider: provider), now: now, rng: &rng)
        outcome.decisions += 1
        switch decision {
        case .pass(let p):
            if p.remoteUser != nil { outcome.passed = true }
        case .redirect(let r):
            if r.status == 303, r.setCookies.contains(where: { Codec.cookiePair($0)?.name.hasPrefix("idtoken_session") == true }) {
                outcome.loggedIn = true
                outcome.sessionCookie = sessionCookieHeader(r.setCookies)
            }
            if r.location.hasPrefix(issuer + "/logout?") { outcome.loggedOut = true }
        default:
            break
        }
        return decision
    }

    /// The Cookie header a browser would send back after these Set-Cookie headers.
    static func sessionCookieHeader(_ setCookies: [String]) -> String {
        setCookies.compactMap(Codec.cookiePair).filter { $0.name.hasPrefix("idtoken_session") }
            .map { $0.name + "=" + $0.value }.joined(separator: "; ")
    }
}

/// A deterministic RandomNumberGenerator (SplitMix64): the same input always takes the same path.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
