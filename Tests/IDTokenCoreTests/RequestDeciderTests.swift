import Testing
@testable import IDTokenCore

/// The whole login, decided in memory: the browser's requests in, the module's decisions out.
@Suite struct RequestDeciderTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 7)

    func get(_ target: String, _ jar: CookieJar, accept: String = "text/html") -> AuthRequest {
        AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: target, cookie: jar.header, accept: accept)
    }

    func post(state: String, token: String?, _ jar: CookieJar, extra: String = "") -> AuthRequest {
        var body = "state=" + FormEncoding.percentEncode(state)
        if let token { body += "&id_token=" + token }
        return AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback",
                           cookie: jar.header, contentType: "application/x-www-form-urlencoded",
                           body: Array((body + extra).utf8))
    }

    /// Starts a login and returns the authorization request's parameters.
    mutating func startLogin(_ site: Site, _ jar: inout CookieJar, target: String = "/app/page?x=1") throws -> [String: String] {
        let d = RequestDecider.decide(get(target, jar), site: site, now: now, rng: &rng)
        let r = try #require(d.redirect)
        jar.apply(r.setCookies)
        return queryItems(r.location)
    }

    @Test mutating func unauthenticatedBrowserIsSentToTheProvider() throws {
        var jar = CookieJar()
        let d = RequestDecider.decide(get("/app/page?x=1", jar), site: .fixture(), now: now, rng: &rng)
        let r = try #require(d.redirect)
        #expect(r.status == 302)
        #expect(r.location.hasPrefix(FakeProvider.issuer + "/authorize?"))
        let q = queryItems(r.location)
        #expect(q["response_type"] == "id_token")
        #expect(q["response_mode"] == "form_post")
        #expect(q["client_id"] == "client-1")
        #expect(q["redirect_uri"] == "http://localhost:8080/app/callback")
        #expect(q["scope"] == "openid email profile")
        #expect((q["state"] ?? "").count >= 43)
        #expect((q["nonce"] ?? "").count >= 43)
        #expect(q["state"] != q["nonce"])
        let cookie = try #require(r.setCookies.first)
        #expect(cookie.hasPrefix("idtoken_state_"))
        for attribute in ["Path=/", "Max-Age=360", "Secure", "HttpOnly", "SameSite=None"] { #expect(cookie.contains(attribute)) }
        jar.apply(r.setCookies)
        let again = try #require(RequestDecider.decide(get("/app/page", jar), site: .fixture(), now: now, rng: &rng).redirect)
        #expect(queryItems(again.location)["state"] != q["state"])
    }

    @Test mutating func completeLoginThenRequestsPassWithClaims() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let q = try startLogin(site, &jar)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let cb = RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar), site: site, now: now + 5, rng: &rng)
        let r = try #require(cb.redirect)
        #expect(r.status == 303)
        #expect(r.location == "/app/page?x=1")
        #expect(r.setCookies.contains { $0.hasPrefix("idtoken_state_") && $0.contains("Max-Age=0") })
        let session = try #require(r.setCookies.first { $0.hasPrefix("idtoken_session=") })
        #expect(session.contains("SameSite=Lax") && session.contains("HttpOnly"))
        jar.apply(r.setCookies)
        #expect(!jar.cookies.keys.contains { $0.hasPrefix("idtoken_state_") })

        let pass = try #require(RequestDecider.decide(get("/app/page", jar), site: site, now: now + 60, rng: &rng).passed)
        #expect(pass.remoteUser == "alice-0001")
        #expect(pass.headers.contains { $0 == ("IDToken-Claim-email", "alice@example.org") })
        #expect(pass.env.contains { $0 == ("IDTOKEN_CLAIM_groups", "staff,admins") })
        #expect(!pass.env.contains { $0.0 == "IDTOKEN_CLAIM_nonce" })

        // The session ends at its absolute lifetime: then it is a new login, not an error.
        let later = RequestDecider.decide(get("/app/page", jar), site: site, now: now + 8 * 3600 + 10, rng: &rng)
        #expect(later.redirect?.status == 302)
    }

    @Test mutating func wrongNonceOpensNoSession() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let q = try startLogin(site, &jar)
        let token = TokenFactory.standard(now: now, nonce: "someone-elses-nonce").signed()
        let r = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar), site: site, now: now, rng: &rng).response)
        #expect(r.status == 401)
        #expect(!r.setCookies.contains { $0.hasPrefix("idtoken_session") })
        #expect(r.log?.message.contains("nonce") == true)
        #expect(r.env.contains { $0 == ("IDTOKEN_ERROR", "invalid_token") })
        #expect(r.log?.message.contains(token) == false)
    }

    @Test mutating func callbackWithoutItsStateCookieIsRefused() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let q = try startLogin(site, &jar)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let r = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: token, CookieJar()), site: site, now: now, rng: &rng).response)
        #expect(r.status == 400)
        #expect(r.log?.message.contains("state cookie missing") == true)
    }

    @Test mutating func expiredStateIsRefused() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let q = try startLogin(site, &jar)
        let token = TokenFactory.standard(now: now + 400, nonce: q["nonce"] ?? "").signed()
        let r = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar), site: site, now: now + 400, rng: &rng).response)
        #expect(r.status == 400)
        #expect(r.log?.message.contains("state expired") == true)
    }

    @Test mutating func repeatedParameterAndQueryResponsesAreRefused() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let q = try startLogin(site, &jar)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let dup = RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar, extra: "&state=x"), site: site, now: now, rng: &rng)
        #expect(dup.response?.status == 400)
        #expect(dup.response?.log?.message.contains("repeated") == true)
        let inQuery = RequestDecider.decide(get("/app/callback?id_token=\(token)&state=x", jar), site: site, now: now, rng: &rng)
        #expect(inQuery.response?.status == 400)
        #expect(inQuery.response?.log?.message.contains("query string") == true)
    }

    @Test mutating func callbackAsksForTheBodyAndRefusesWrongContentTypes() throws {
        let site = Site.fixture()
        var req = AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback",
                              contentType: "application/x-www-form-urlencoded; charset=UTF-8")
        guard case .readBody(let limit) = RequestDecider.decide(req, site: site, now: now, rng: &rng) else {
            Issue.record("expected a body request")
            return
        }
        #expect(limit == 64 * 1024)
        req.contentType = "application/json"
        #expect(RequestDecider.decide(req, site: site, now: now, rng: &rng).response?.status == 400)
        req.contentType = "application/x-www-form-urlencoded"
        req.bodyTooLarge = true
        #expect(RequestDecider.decide(req, site: site, now: now, rng: &rng).response?.status == 413)
    }

    @Test mutating func providerErrorResponseIsShownAndClearsTheState() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let q = try startLogin(site, &jar)
        var req = post(state: q["state"] ?? "", token: nil, jar)
        req.body = Array("error=access_denied&error_description=User+said+no&state=\(q["state"] ?? "")".utf8)
        let r = try #require(RequestDecider.decide(req, site: site, now: now, rng: &rng).response)
        #expect(r.status == 401)
        #expect(r.env.contains { $0 == ("IDTOKEN_ERROR", "access_denied") })
        #expect(r.setCookies.contains { $0.hasPrefix("idtoken_state_") && $0.contains("Max-Age=0") })
    }

    @Test mutating func scriptsGet401AndNoStateCookie() throws {
        let d = RequestDecider.decide(get("/app/data.json", CookieJar(), accept: "application/json"), site: .fixture(), now: now, rng: &rng)
        let r = try #require(d.response)
        #expect(r.status == 401)
        #expect(r.setCookies.isEmpty)
        var xhr = get("/app/page", CookieJar())
        xhr.secFetchMode = "cors"
        #expect(RequestDecider.decide(xhr, site: .fixture(), now: now, rng: &rng).response?.status == 401)
    }

    @Test mutating func stateCookiesAreCapped() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        for i in 0..<12 {
            let d = RequestDecider.decide(get("/app/p\(i)", jar), site: site, now: now + Int64(i), rng: &rng)
            jar.apply(try #require(d.redirect).setCookies)
        }
        #expect(jar.cookies.keys.filter { $0.hasPrefix("idtoken_state_") }.count == site.config.maximumStateCookies)
    }

    @Test mutating func providerDownGives503AndBadDocumentGives502() throws {
        let down = FakeProvider()
        down.set(FakeProvider.discoveryURL, .failed(timedOut: true, tooLarge: false, reason: "timeout"))
        let r = try #require(RequestDecider.decide(get("/app/", CookieJar()), site: .fixture(provider: down), now: now, rng: &rng).response)
        #expect(r.status == 503)
        #expect(r.log?.level == .error)
        let garbage = FakeProvider()
        garbage.set(FakeProvider.discoveryURL, .response(status: 200, body: Array("<html>".utf8)))
        #expect(RequestDecider.decide(get("/app/", CookieJar()), site: .fixture(provider: garbage), now: now, rng: &rng).response?.status == 502)
    }

    @Test mutating func forgedSessionCookieIsJustNotASession() throws {
        var jar = CookieJar()
        jar.cookies["idtoken_session"] = "AQ" + String(repeating: "x", count: 100)
        #expect(RequestDecider.decide(get("/app/", jar), site: .fixture(), now: now, rng: &rng).redirect?.status == 302)
    }

    @Test mutating func replayedResponseIsRefusedEvenWithItsStateCookie() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let q = try startLogin(site, &jar)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let captured = post(state: q["state"] ?? "", token: token, jar)
        #expect(RequestDecider.decide(captured, site: site, now: now + 1, rng: &rng).redirect?.status == 303)
        let replay = try #require(RequestDecider.decide(captured, site: site, now: now + 2, rng: &rng).response)
        #expect(replay.status == 400)
        #expect(replay.log?.message.contains("replayed") == true)
        #expect(!replay.setCookies.contains { $0.hasPrefix("idtoken_session") })
    }

    @Test mutating func failingSharedStoreFailsClosed() throws {
        struct BrokenStore: SharedStore {
            func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { .error }
            func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { .error }
            func get(_ key: [UInt8], now: Int64) -> Result<[UInt8], StoreFailure> { .failure(.failed) }
            func remove(_ key: [UInt8]) -> StoreStatus { .error }
        }
        let site = Site.fixture()
        var jar = CookieJar()
        let q = try startLogin(site, &jar)
        var req = post(state: q["state"] ?? "", token: TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed(), jar)
        req.store = BrokenStore()
        let r = try #require(RequestDecider.decide(req, site: site, now: now, rng: &rng).response)
        #expect(r.status == 503)
        #expect(!r.setCookies.contains { $0.hasPrefix("idtoken_session") })
    }

    @Test mutating func staticMetadataNeedsNoDiscovery() throws {
        let fake = FakeProvider()
        var site = Site.fixture(provider: fake)
        var config = site.config
        config.provider = ProviderSource(issuer: FakeProvider.issuer, authorizationEndpoint: "https://op.example.org/auth?tenant=x",
                                         jwksURI: FakeProvider.issuer + "/jwks")
        config.maxAge = 900
        site = Site(config: config, provider: ProviderCache(source: config.provider, fetcher: fake))
        var jar = CookieJar()
        let d = RequestDecider.decide(get("/app/", jar), site: site, now: now, rng: &rng)
        let r = try #require(d.redirect)
        #expect(r.location.hasPrefix("https://op.example.org/auth?tenant=x&response_type=id_token"))
        #expect(queryItems(r.location)["max_age"] == "900")
        #expect(fake.count(FakeProvider.discoveryURL) == 0)
        jar.apply(r.setCookies)
        let q = queryItems(r.location)
        var f = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "")
        f.claims["auth_time"] = JSONValue(now - 60)
        let cb = RequestDecider.decide(post(state: q["state"] ?? "", token: f.signed(), jar), site: site, now: now, rng: &rng)
        #expect(cb.redirect?.status == 303)
        #expect(fake.count(FakeProvider.discoveryURL) == 0)
    }
}
