import Testing
@testable import IDTokenCore

@Suite struct LogoutTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 5)

    func logout(_ value: String, _ jar: CookieJar, store: (any SharedStore)? = nil) -> AuthRequest {
        AuthRequest(method: "GET", scheme: "http", host: "localhost:8080",
                    target: "/app/callback?logout=" + FormEncoding.percentEncode(value), cookie: jar.header, store: store)
    }

    @Test mutating func logoutEndsTheSessionAndGoesToTheProvider() throws {
        var s = SessionTests()
        let site = Site.fixture()
        var (jar, token) = try s.login(site)
        let r = try #require(RequestDecider.decide(logout("/public/", jar), site: site, now: now + 10, rng: &rng).redirect)
        #expect(r.location.hasPrefix(FakeProvider.issuer + "/logout?"))
        let q = queryItems(r.location)
        #expect(q["id_token_hint"] == token)
        #expect(q["client_id"] == "client-1")
        #expect(q["post_logout_redirect_uri"] == "http://localhost:8080/public/")
        #expect((q["state"] ?? "").count >= 43)
        #expect(r.setCookies.contains { $0.hasPrefix("idtoken_session=;") && $0.contains("Max-Age=0") })
        jar.apply(r.setCookies)
        #expect(jar.cookies["idtoken_session"] == nil)
    }

    static let openRedirects = [
        "https://evil.example/", "//evil.example/", "/\\evil.example", "https:evil.example", "javascript:alert(1)",
        "http://localhost:8080@evil.example/", "/ok\r\nSet-Cookie: x=1", "http://evil.example/?http://localhost:8080/",
        "data:text/html,hi", "\t//evil.example", "http://localhost:8081/",
    ]

    @Test(arguments: openRedirects)
    func openRedirectIsRefusedAndNothingIsCleared(_ url: String) throws {
        var s = SessionTests()
        let site = Site.fixture()
        let (jar, _) = try s.login(site)
        var rng = SeededRandom(state: 1)
        let r = try #require(RequestDecider.decide(logout(url, jar), site: site, now: now + 10, rng: &rng).response)
        #expect(r.status == 400)
        #expect(r.setCookies.isEmpty)
        #expect(RequestDecider.decide(s.get("/app/", jar), site: site, now: now + 11, rng: &rng).passed != nil)
    }

    @Test func allowedOriginsAndOwnOriginPass() {
        let req = AuthRequest(method: "GET", scheme: "https", host: "App.Example.org", target: "/")
        #expect(ReturnURL.validate("https://app.example.org/bye", request: req, allowedOrigins: []) == "https://app.example.org/bye")
        #expect(ReturnURL.validate("https://www.example.org/", request: req, allowedOrigins: ["https://www.example.org"]) != nil)
        #expect(ReturnURL.validate("http://app.example.org/", request: req, allowedOrigins: []) == nil)
    }

    @Test mutating func cacheModeLogoutRevokesEverywhere() throws {
        var s = SessionTests()
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let (jar, _) = try s.login(site, store: store)
        _ = try #require(RequestDecider.decide(logout("", jar, store: store), site: site, now: now + 10, rng: &rng).redirect)
        // The stolen copy of the cookie is worth nothing now.
        #expect(RequestDecider.decide(s.get("/app/", jar, store: store), site: site, now: now + 11, rng: &rng).passed == nil)
    }

    @Test mutating func withoutEndSessionTheBrowserGoesStraightBack() throws {
        let fake = FakeProvider()
        fake.set(FakeProvider.discoveryURL, .response(status: 200, body: Array("""
            {"issuer":"\(FakeProvider.issuer)","authorization_endpoint":"\(FakeProvider.issuer)/authorize","jwks_uri":"\(FakeProvider.issuer)/jwks"}
            """.utf8)))
        let site = Site.fixture(provider: fake)
        let r = try #require(RequestDecider.decide(logout("/bye", CookieJar()), site: site, now: now, rng: &rng).redirect)
        #expect(r.location == "http://localhost:8080/bye")
        let page = try #require(RequestDecider.decide(logout("", CookieJar()), site: site, now: now, rng: &rng).response)
        #expect(page.status == 200 && page.contentType?.hasPrefix("text/html") == true)
    }
}

@Suite struct BackChannelLogoutTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 9)

    func logoutToken(sid: String? = "op-session-1", sub: String? = nil, jti: String = "jti-1", typ: String = "logout+jwt",
                     change: (inout TokenFactory) -> Void = { _ in }) -> String {
        var f = TokenFactory.standard(now: now)
        f.header["typ"] = .string(typ)
        f.claims = ["iss": .string(FakeProvider.issuer), "aud": .string("client-1"), "iat": JSONValue(now), "exp": JSONValue(now + 120),
                    "jti": .string(jti), "events": .object([BackChannelLogout.event: .object([:])])]
        if let sid { f.claims["sid"] = .string(sid) }
        if let sub { f.claims["sub"] = .string(sub) }
        change(&f)
        return f.signed()
    }

    func post(_ token: String, store: any SharedStore) -> AuthRequest {
        AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback",
                    contentType: "application/x-www-form-urlencoded", body: Array("logout_token=\(token)".utf8), store: store)
    }

    mutating func loggedIn(_ site: Site, _ store: MemoryStore) throws -> CookieJar {
        var s = SessionTests()
        return try s.login(site, store: store).0
    }

    @Test mutating func logoutTokenEndsTheSessionsOfItsSid() throws {
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let jar = try loggedIn(site, store)
        let r = try #require(RequestDecider.decide(post(logoutToken(), store: store), site: site, now: now + 5, rng: &rng).response)
        #expect(r.status == 200)
        #expect(r.log?.message.contains("1 session(s) ended") == true)
        #expect(RequestDecider.decide(SessionTests().get("/app/", jar, store: store), site: site, now: now + 6, rng: &rng).passed == nil)
        // The same token again is a replay.
        #expect(RequestDecider.decide(post(logoutToken(), store: store), site: site, now: now + 7, rng: &rng).response?.status == 400)
    }

    @Test mutating func subOnlyTokenEndsTheUsersSessions() throws {
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let jar = try loggedIn(site, store)
        let token = logoutToken(sid: nil, sub: "alice-0001", jti: "jti-sub")
        #expect(RequestDecider.decide(post(token, store: store), site: site, now: now + 5, rng: &rng).response?.status == 200)
        #expect(RequestDecider.decide(SessionTests().get("/app/", jar, store: store), site: site, now: now + 6, rng: &rng).passed == nil)
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        let name: String
        let make: @Sendable (BackChannelLogoutTests) -> String
        var testDescription: String { name }
    }

    static let badTokens: [Bad] = [
        .init(name: "signed by an unpublished key") { t in
            var f = TokenFactory.standard(now: t.now)
            f.header["typ"] = .string("logout+jwt")
            f.claims = ["iss": .string(FakeProvider.issuer), "aud": .string("client-1"), "iat": JSONValue(t.now), "exp": JSONValue(t.now + 120),
                        "jti": .string("x"), "sid": .string("op-session-1"), "events": .object([BackChannelLogout.event: .object([:])])]
            return f.signed(rsaKey: TestKeys.rsaOther)
        },
        .init(name: "no events") { $0.logoutToken { $0.claims["events"] = nil } },
        .init(name: "events without the logout event") { $0.logoutToken { $0.claims["events"] = .object(["other": .object([:])]) } },
        .init(name: "with a nonce") { $0.logoutToken { $0.claims["nonce"] = .string("n") } },
        .init(name: "wrong audience") { $0.logoutToken { $0.claims["aud"] = .string("other") } },
        .init(name: "neither sid nor sub") { $0.logoutToken(sid: nil) },
        .init(name: "no jti") { $0.logoutToken { $0.claims["jti"] = nil } },
        .init(name: "expired") { t in t.logoutToken { $0.claims["exp"] = JSONValue(t.now - 600) } },
        .init(name: "an ID token") { t in TokenFactory.standard(now: t.now).signed() },
    ]

    @Test(arguments: badTokens)
    mutating func badLogoutTokenChangesNothing(_ bad: Bad) throws {
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let jar = try loggedIn(site, store)
        let r = try #require(RequestDecider.decide(post(bad.make(self), store: store), site: site, now: now + 5, rng: &rng).response)
        #expect(r.status == 400)
        #expect(RequestDecider.decide(SessionTests().get("/app/", jar, store: store), site: site, now: now + 6, rng: &rng).passed != nil)
    }

    @Test mutating func cookieSessionsCannotBeEndedFromTheServer() throws {
        let r = try #require(RequestDecider.decide(post(logoutToken(), store: MemoryStore()), site: .fixture(), now: now, rng: &rng).response)
        #expect(r.status == 501)
    }

    @Test func logoutTokenNeverPassesAsAnIDToken() {
        let expect = TokenExpectations(issuer: IssuerRule(issuer: FakeProvider.issuer), clientID: "client-1", nonce: "n-0S6_WzA2Mj",
                                       loginStartedAt: now - 10, allowedAlgorithms: SignatureAlgorithm.asymmetric, clockSkew: 60)
        #expect(throws: TokenError.unsupportedType("logout+jwt")) {
            try IDTokenValidator.validate(logoutToken(), keys: TestKeys.standardSet, expect: expect, now: now)
        }
        #expect(throws: TokenError.self) {
            try IDTokenValidator.validate(logoutToken(typ: "JWT"), keys: TestKeys.standardSet, expect: expect, now: now)
        }
    }
}
