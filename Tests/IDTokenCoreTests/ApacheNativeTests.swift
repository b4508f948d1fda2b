import Testing
@testable import IDTokenCore

/// What a location can ask for: authorization on claims, how claims reach the app, what an
/// unauthenticated request gets, extra authorization-request parameters.
@Suite struct ApacheNativeTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 3)

    static let claims: [String: String] = [
        "groups": #"["staff","admins"]"#,
        "email": #""alice@example.org""#,
        "realm_access": #"{"roles":["editor","viewer"],"level":3}"#,
        "email_verified": "true",
        "https://example.com/role": #""boss""#,
        "name": #""Alice Example""#,
    ]

    func satisfied(_ line: String) throws -> Bool {
        let reqs = try ClaimRequirement.parse(line).get()
        return reqs.contains { $0.isSatisfied(by: Self.claims) }
    }

    @Test func requireMatchesExactRegexArrayAndNested() throws {
        #expect(try satisfied("groups:admins"))
        #expect(try !satisfied("groups:admin"))
        #expect(try satisfied("email~@example\\.org$"))
        #expect(try !satisfied("email~^bob@"))
        #expect(try satisfied("realm_access.roles:editor"))
        #expect(try !satisfied("realm_access.roles:admin"))
        #expect(try satisfied("realm_access.level:3"))
        #expect(try satisfied("email_verified:true"))
        #expect(try satisfied("\"https://example.com/role\":boss"))
        #expect(try satisfied("\"name:Alice Example\""))
        #expect(try satisfied("groups:nobody groups:staff"))
        #expect(try !satisfied("missing:x"))
        #expect(try !satisfied("realm_access:editor"))
    }

    @Test func badRequireLinesAreRefusedAtConfigTime() {
        for line in ["", "groups", "groups~(", ":x", "a..b:c"] {
            if case .success = ClaimRequirement.parse(line) { Issue.record("'\(line)' was accepted") }
        }
    }

    @Test func blocksOverlayParentFirst() throws {
        let parent = try DirConfig(settings: [("IDTokenUnauthAction", "401"), ("IDTokenPassClaimsAs", "headers")])
        let child = try DirConfig(settings: [("IDTokenUnauthAction", "pass")])
        let eff = DirConfig.overlaid([parent, child])
        #expect(eff.unauthAction == .pass)
        #expect(eff.passClaimsAs == .headers)
        #expect(throws: ConfigError.self) { try DirConfig(settings: [("IDTokenAuthRequestParams", "state=x")]) }
        #expect(throws: ConfigError.self) { try DirConfig(settings: [("IDTokenClientID", "x")]) }
    }

    func get(_ dir: DirConfig, _ jar: CookieJar = CookieJar(), accept: String = "text/html") -> AuthRequest {
        AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/", cookie: jar.header, accept: accept, dir: dir)
    }

    @Test mutating func unauthenticatedActions() throws {
        let site = Site.fixture()
        let pass = try #require(RequestDecider.decide(get(try DirConfig(settings: [("IDTokenUnauthAction", "pass")])), site: site, now: now, rng: &rng).passed)
        #expect(pass.remoteUser == nil && pass.headers.isEmpty)
        #expect(RequestDecider.decide(get(try DirConfig(settings: [("IDTokenUnauthAction", "401")])), site: site, now: now, rng: &rng).response?.status == 401)
        #expect(RequestDecider.decide(get(try DirConfig(settings: [("IDTokenUnauthAction", "410")])), site: site, now: now, rng: &rng).response?.status == 410)
    }

    @Test mutating func extraAuthorizationParametersAndTheirMaxAge() throws {
        let dir = try DirConfig(settings: [("IDTokenAuthRequestParams", "prompt=login max_age=120 scope=groups login_hint=alice@example.org")])
        let r = try #require(RequestDecider.decide(get(dir), site: .fixture(), now: now, rng: &rng).redirect)
        let q = queryItems(r.location)
        #expect(q["prompt"] == "login" && q["max_age"] == "120" && q["login_hint"] == "alice@example.org")
        #expect(q["scope"] == "openid email profile groups")
        #expect(r.location.components(separatedBy: "max_age=").count == 2)
    }

    @Test mutating func requestedAcrValuesAreEnforcedAtTheCallback() throws {
        let site = Site.fixture()
        let dir = try DirConfig(settings: [("IDTokenAuthRequestParams", "acr_values=urn:mfa")])
        var jar = CookieJar()
        let r = try #require(RequestDecider.decide(get(dir), site: site, now: now, rng: &rng).redirect)
        jar.apply(r.setCookies)
        let q = queryItems(r.location)
        #expect(q["acr_values"] == "urn:mfa")
        func callback(acr: String?) -> Decision {
            var f = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "")
            if let acr { f.claims["acr"] = .string(acr) }
            let body = "state=\(q["state"] ?? "")&id_token=\(f.signed())"
            return RequestDecider.decide(AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback",
                                                     cookie: jar.header, contentType: "application/x-www-form-urlencoded",
                                                     body: Array(body.utf8)), site: site, now: now, rng: &rng)
        }
        #expect(callback(acr: "urn:password").response?.status == 401)
        #expect(callback(acr: "urn:mfa").redirect?.status == 303)
    }

    @Test mutating func claimsReachTheAppAsTheLocationAsks() throws {
        var s = SessionTests()
        let site = Site.fixture()
        let (jar, token) = try s.login(site, claims: ["name": .string("Zoë Ünal")])
        func pass(_ settings: [(String, String)]) throws -> Decision.Pass {
            try #require(RequestDecider.decide(get(try DirConfig(settings: settings), jar), site: site, now: now + 1, rng: &rng).passed)
        }
        let headersOnly = try pass([("IDTokenPassClaimsAs", "headers")])
        #expect(headersOnly.env.isEmpty && !headersOnly.headers.isEmpty)
        #expect(try pass([("IDTokenPassClaimsAs", "none")]).headers.isEmpty)
        let b64 = try pass([("IDTokenClaimEncoding", "base64url")])
        #expect(b64.env.contains { $0 == ("IDTOKEN_CLAIM_name", Base64URL.encode(Array("Zoë Ünal".utf8))) })
        #expect(try pass([("IDTokenClaimEncoding", "latin1")]).latin1)
        let serialized = try pass([("IDTokenPassIDToken", "serialized")])
        #expect(serialized.env.contains { $0 == ("IDTOKEN_TOKEN", token) })
        let payload = try pass([("IDTokenPassIDToken", "payload")])
        #expect(payload.headers.contains { $0.0 == "IDToken-Payload" && $0.1.contains("\"sub\":\"alice-0001\"") })
        #expect(headersOnly.claims.contains { $0 == ("groups", #"["staff","admins"]"#) })
        // Each shape is rendered once and kept with the opened session: asked again, a location gets
        // its own rendering back, never another location's.
        #expect(try pass([("IDTokenPassClaimsAs", "headers")]).env.isEmpty)
        #expect(try pass([("IDTokenPassClaimsAs", "none")]).headers.isEmpty)
        #expect(try pass([("IDTokenClaimEncoding", "latin1")]).headers.contains { $0 == ("IDToken-Claim-name", "Zoë Ünal") })
        #expect(try pass([]).headers.contains { $0 == ("IDToken-Claim-name", "Zoë Ünal") })
    }

    @Test mutating func remoteUserFromAnotherClaimWithAPattern() throws {
        var s = SessionTests()
        let site = Site.fixture { $0.remoteUserClaim = "email"; $0.remoteUserPattern = "^([^@]+)@example\\.org$" }
        let (jar, _) = try s.login(site)
        #expect(RequestDecider.decide(get(DirConfig(), jar), site: site, now: now + 1, rng: &rng).passed?.remoteUser == "alice")
        // No usable value for REMOTE_USER: the login is refused, not let in as someone else.
        let strict = Site.fixture { $0.remoteUserClaim = "email"; $0.remoteUserPattern = "@corp\\.example$" }
        var browser = CookieJar()
        let start = try #require(RequestDecider.decide(get(DirConfig(), browser), site: strict, now: now, rng: &rng).redirect)
        browser.apply(start.setCookies)
        let q = queryItems(start.location)
        let body = "state=\(q["state"] ?? "")&id_token=\(TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed())"
        let refused = try #require(RequestDecider.decide(
            AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: browser.header,
                        contentType: "application/x-www-form-urlencoded", body: Array(body.utf8)),
            site: strict, now: now, rng: &rng).response)
        #expect(refused.status == 401)
        #expect(refused.log?.message.contains("REMOTE_USER") == true)
    }

    @Test func redirectURIMustLieInsideAProtectedLocation() throws {
        func make(_ redirect: String, _ paths: [String]) throws(ConfigError) {
            _ = try SiteConfig.make(.init(siteName: "t", defaultScheme: "https", defaultHost: "app.example", settings: [
                ("IDTokenDiscoveryURL", FakeProvider.discoveryURL), ("IDTokenClientID", "c"), ("IDTokenRedirectURI", redirect),
                ("IDTokenSessionKeyFile", ConfigTests.keyFile()),
            ], protectedPaths: paths))
        }
        #expect(throws: Never.self) { try make("/app/callback", ["/app"]) }
        #expect(throws: Never.self) { try make("/app/callback", ["/"]) }
        #expect(throws: ConfigError.self) { try make("/callback", ["/app"]) }
        #expect(throws: ConfigError.self) { try make("/application/cb", ["/app"]) }
    }
}
