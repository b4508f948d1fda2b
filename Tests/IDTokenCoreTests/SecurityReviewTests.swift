import Crypto
import Synchronization
import Testing
@testable import IDTokenCore

/// The security review's findings, each as the attack performed on the decision and shown to fail. The
/// end-to-end versions, through a real httpd, are in Tests/e2e/test_security.py.
@Suite struct SecurityReviewTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 12)

    func get(_ target: String, _ jar: CookieJar, store: (any SharedStore)? = nil, dir: DirConfig = DirConfig(),
             accept: String = "text/html", isInternal: Bool = false) -> AuthRequest {
        AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: target, cookie: jar.header, accept: accept,
                    isInternal: isInternal, store: store, dir: dir)
    }

    /// A login through the decider; each with its own state and nonce (a repeated nonce is a replay).
    mutating func login(_ site: Site, claims: [String: JSONValue] = [:], store: (any SharedStore)? = nil, at t: Int64? = nil) throws -> CookieJar {
        var s = SessionTests()
        s.rng = SeededRandom(state: rng.next())
        return try s.login(site, claims: claims, store: store, at: t).0
    }

    static func dir(_ params: String) -> DirConfig {
        (try? DirConfig(settings: [("IDTokenAuthRequestParams", params)])) ?? DirConfig()
    }

    // MARK: 1. Internal redirects and subrequests

    @Test mutating func anInternalRequestNeverReachesTheCallback() throws {
        let site = Site.fixture()
        let post = AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback",
                               contentType: "application/x-www-form-urlencoded", isInternal: true, body: Array("state=x&id_token=y".utf8))
        let r = try #require(RequestDecider.decide(post, site: site, now: now, rng: &rng).response)
        #expect(r.status == 400)
        #expect(r.setCookies.isEmpty)
        #expect(r.log?.message.contains("internal redirect") == true)
    }

    @Test mutating func anInternalRequestIsDecidedFromItsCookiesAndDoesNotRefresh() throws {
        let site = Site.fixture()
        let jar = try login(site)
        let pass = try #require(RequestDecider.decide(get("/app/x", jar, isInternal: true), site: site, now: now + 120, rng: &rng).passed)
        #expect(pass.remoteUser == "alice-0001")
        #expect(pass.setCookies.isEmpty)
        // Without a session it is a login like any other request, never a pass.
        #expect(RequestDecider.decide(get("/app/x", CookieJar(), isInternal: true), site: site, now: now, rng: &rng).passed == nil)
    }

    @Test mutating func whereNoRedirectCanReachTheBrowserNoLoginStarts() throws {
        let request = AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/x", accept: "text/html",
                                  isInternal: true, cannotRedirect: true)
        let r = try #require(RequestDecider.decide(request, site: .fixture(), now: now, rng: &rng).response)
        #expect(r.status == 401)
        #expect(r.setCookies.isEmpty)
    }

    // MARK: 2. Step-up on an existing session

    @Test mutating func aLocationsMaxAgeAndAcrApplyToSessionsOpenedElsewhere() throws {
        let site = Site.fixture()
        let jar = try login(site, claims: ["acr": .string("urn:pwd"), "auth_time": JSONValue(now - 3600)])
        let admin = Self.dir("max_age=60 acr_values=urn:mfa")
        #expect(RequestDecider.decide(get("/app/", jar), site: site, now: now + 5, rng: &rng).passed != nil)
        let r = try #require(RequestDecider.decide(get("/app/admin/x", jar, dir: admin), site: site, now: now + 5, rng: &rng).redirect)
        #expect(r.status == 302)
        let q = queryItems(r.location)
        #expect(q["max_age"] == "60")
        #expect(q["acr_values"] == "urn:mfa")
        #expect(r.log?.message.contains("max_age=60") == true)
        // A script's request gets 401, not a redirect it cannot follow.
        let xhr = RequestDecider.decide(get("/app/admin/x", jar, dir: admin, accept: "application/json"), site: site, now: now + 5, rng: &rng)
        #expect(xhr.response?.status == 401)
    }

    @Test mutating func aSteppedUpLoginPassesTheStricterLocation() throws {
        let site = Site.fixture()
        let admin = Self.dir("max_age=60 acr_values=urn:mfa")
        let fresh = try login(site, claims: ["acr": .string("urn:mfa"), "auth_time": JSONValue(now - 10)])
        #expect(RequestDecider.decide(get("/app/admin/x", fresh, dir: admin), site: site, now: now + 5, rng: &rng).passed != nil)
        // The same session once max_age has run out: back to the provider.
        #expect(RequestDecider.decide(get("/app/admin/x", fresh, dir: admin), site: site, now: now + 200, rng: &rng).redirect != nil)
        // The wrong acr, however fresh: refused.
        let pwd = try login(site, claims: ["acr": .string("urn:pwd"), "auth_time": JSONValue(now)])
        #expect(RequestDecider.decide(get("/app/admin/x", pwd, dir: admin), site: site, now: now + 5, rng: &rng).redirect != nil)
    }

    @Test mutating func promptLoginAcceptsOnlyASessionFromSuchALogin() throws {
        let site = Site.fixture()
        let strict = Self.dir("prompt=login")
        let jar = try login(site, claims: ["auth_time": JSONValue(now)])
        let r = try #require(RequestDecider.decide(get("/app/admin/", jar, dir: strict), site: site, now: now + 5, rng: &rng).redirect)
        #expect(queryItems(r.location)["prompt"] == "login")
        // The login that redirect starts, completed: its session passes.
        var browser = jar
        browser.apply(r.setCookies)
        let q = queryItems(r.location)
        var f = TokenFactory.standard(now: now + 5, nonce: q["nonce"] ?? "")
        f.claims["auth_time"] = JSONValue(now + 5)
        let post = AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: browser.header,
                               contentType: "application/x-www-form-urlencoded",
                               body: Array("state=\(q["state"] ?? "")&id_token=\(f.signed())".utf8))
        let done = try #require(RequestDecider.decide(post, site: site, now: now + 6, rng: &rng).redirect)
        #expect(done.status == 303 && done.location == "/app/admin/")
        browser.apply(done.setCookies)
        #expect(RequestDecider.decide(get("/app/admin/", browser, dir: strict), site: site, now: now + 7, rng: &rng).passed != nil)
    }

    // MARK: 3. Chunk markers

    @Test mutating func chunkMarkersCostOneReassemblyWhateverTheirNumber() throws {
        let site = Site.fixture()
        let chunks = (0..<31).map { "idtoken_session_\($0)=x" }
        let markers = [String](repeating: "idtoken_session=chunks-32", count: 300)
        let header = (chunks + markers).joined(separator: "; ")
        let request = AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/", cookie: header, accept: "text/html")
        #expect(RequestDecider.decide(request, site: site, now: now, rng: &rng).redirect?.status == 302)
        #expect(request.work.cookieLookups <= 4)
        #expect(request.work.sealedOpens == 0)
    }

    @Test mutating func aChunkedSessionStillOpens() throws {
        let site = Site.fixture { $0.limitRequestFieldSize = 65536 }
        var random = SeededRandom(state: 11)
        let big = JSONValue.array((0..<400).map { _ in .string(String(random.next(), radix: 36)) })
        let jar = try login(site, claims: ["groups": big])
        #expect(jar.cookies.keys.contains("idtoken_session_1"))
        let request = get("/app/", jar)
        #expect(RequestDecider.decide(request, site: site, now: now + 5, rng: &rng).passed?.remoteUser == "alice-0001")
        #expect(request.work.cookieLookups <= 4)
    }

    // MARK: 4. Store lookups per cookie value

    @Test mutating func onlyTwoValuesOfTheIDShapeReachTheStore() throws {
        let store = CountingStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let ids = (0..<100).map { i in String(repeating: "A", count: 40) + String(format3(i)) }
        let header = ([String](repeating: "idtoken_session=x", count: 449) + ids.map { "idtoken_session=" + $0 }).joined(separator: "; ")
        let request = AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/", cookie: header,
                                  accept: "text/html", store: store)
        #expect(RequestDecider.decide(request, site: site, now: now, rng: &rng).redirect?.status == 302)
        #expect(store.gets <= 2)
    }

    private func format3(_ i: Int) -> String { String("000\(i)".suffix(3)) }

    // MARK: 5. Back-channel logout by sid

    @Test mutating func aSidEndsEverySessionItOpened() throws {
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let first = try login(site, store: store)
        let second = try login(site, store: store, at: now + 1)
        let l = BackChannelLogoutTests()
        let token = l.logoutToken(sid: "op-session-1")
        let post = l.post(token, store: store)
        let r = try #require(RequestDecider.decide(post, site: site, now: now + 5, rng: &rng).response)
        #expect(r.status == 200)
        #expect(r.log?.message.contains("2 session(s) ended") == true)
        for jar in [first, second] {
            #expect(RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 6, rng: &rng).passed == nil)
        }
    }

    // MARK: 6. Sessions bound to the site's session profile

    @Test mutating func anotherSitesMappingDoesNotTakeThisSitesSession() throws {
        let a = Site.fixture()
        let jar = try login(a)
        let b = Site.fixture { $0.remoteUserClaim = "email" }
        #expect(RequestDecider.decide(get("/app/", jar), site: b, now: now + 5, rng: &rng).passed == nil)
        let dropping = Site.fixture { $0.claimsDrop = ["groups"] }
        #expect(RequestDecider.decide(get("/app/", jar), site: dropping, now: now + 5, rng: &rng).passed == nil)
        // A server configured alike (behind the same load balancer) takes it.
        #expect(RequestDecider.decide(get("/app/", jar), site: .fixture(), now: now + 5, rng: &rng).passed?.remoteUser == "alice-0001")
    }

    @Test mutating func theReadingSitesLifetimeApplies() throws {
        let jar = try login(Site.fixture())
        let short = Site.fixture { $0.sessionLifetime = 600 }
        #expect(RequestDecider.decide(get("/app/", jar), site: short, now: now + 500, rng: &rng).passed != nil)
        #expect(RequestDecider.decide(get("/app/", jar), site: short, now: now + 700, rng: &rng).passed == nil)
        let capped = Site.fixture { $0.sessionCapToTokenExpiry = true }
        #expect(RequestDecider.decide(get("/app/", jar), site: capped, now: now + 310, rng: &rng).passed == nil)
    }

    @Test mutating func aSessionSealedBeforeTheUpgradeStillOpens() throws {
        let site = Site.fixture()
        // Format 3, sealed as version 1 with the context of before: what the previous release wrote.
        let session = Session(subject: "alice-0001", issuer: FakeProvider.issuer, createdAt: now, expiresAt: now + 3600,
                              remoteUser: "alice-0001", claims: [Session.Claim("email", "alice@example.org")])
        let v4 = session.encodedFormat4()
        let v3 = [UInt8(3)] + v4[1..<(v4.count - 21)]
        #expect(Session(decoding: Array(v3), profile: site.sessionProfile) == session)
        let sealed = try #require(LegacySeal.seal(Array(v3), keys: site.config.keys, context: site.config.storeContext))
        var jar = CookieJar()
        jar.cookies["idtoken_session"] = sealed
        let pass = try #require(RequestDecider.decide(get("/app/", jar), site: site, now: now + 5, rng: &rng).passed)
        #expect(pass.remoteUser == "alice-0001")
        // It has no auth_time: a location asking max_age sends it to log in.
        #expect(RequestDecider.decide(get("/app/a", jar, dir: Self.dir("max_age=600")), site: site, now: now + 5, rng: &rng).redirect != nil)
    }

    // MARK: 7. Control characters in claim names

    @Test mutating func aClaimNameWithAControlCharacterIsRefused() throws {
        let site = Site.fixture()
        for name in ["groups\u{0}x", "a\r\nb", "x\u{7F}"] {
            var jar = CookieJar()
            let start = try #require(RequestDecider.decide(get("/app/", jar), site: site, now: now, rng: &rng).redirect)
            jar.apply(start.setCookies)
            let q = queryItems(start.location)
            var f = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "")
            f.claims[name] = .string("root")
            let post = AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: jar.header,
                                   contentType: "application/x-www-form-urlencoded",
                                   body: Array("state=\(q["state"] ?? "")&id_token=\(f.signed())".utf8))
            let r = try #require(RequestDecider.decide(post, site: site, now: now + 1, rng: &rng).response)
            #expect(r.status == 401)
            #expect(r.log?.message.contains("claim name") == true)
            #expect(!r.setCookies.contains { $0.hasPrefix("idtoken_session=") })
        }
    }

    // MARK: 10. Logout from another site

    func logout(_ jar: CookieJar, site secFetchSite: String? = nil, origin: String? = nil, referer: String? = nil) -> AuthRequest {
        AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/callback?logout=%2Fbye", cookie: jar.header,
                    accept: "text/html", secFetchSite: secFetchSite, origin: origin, referer: referer)
    }

    @Test mutating func aCrossSiteLogoutIsConfirmedNotCarriedOut() throws {
        let site = Site.fixture()
        let jar = try login(site)
        for request in [logout(jar, site: "cross-site"), logout(jar, site: "same-site"),
                        logout(jar, origin: "https://evil.example"), logout(jar, referer: "https://evil.example/page")] {
            let r = try #require(RequestDecider.decide(request, site: site, now: now + 5, rng: &rng).response)
            #expect(r.status == 200)
            #expect(r.page.contains("Log out?") && r.page.contains("href=\"/app/callback?logout=%2Fbye\""))
            #expect(r.setCookies.isEmpty)
        }
        #expect(RequestDecider.decide(get("/app/", jar), site: site, now: now + 6, rng: &rng).passed != nil)
        for request in [logout(jar, site: "same-origin"), logout(jar, site: "none"), logout(jar),
                        logout(jar, referer: "http://localhost:8080/app/page")] {
            let r = try #require(RequestDecider.decide(request, site: site, now: now + 7, rng: &rng).redirect)
            #expect(r.location.hasPrefix(FakeProvider.issuer + "/logout?"))
            #expect(r.setCookies.contains { $0.hasPrefix("idtoken_session=;") })
        }
    }

    // MARK: 11. Provider error responses

    @Test mutating func aProviderErrorWithoutItsStateShowsNothingOfIt() throws {
        let site = Site.fixture()
        for body in ["error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
                     "error=access_denied&error_description=evil&state=made-up"] {
            let post = AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback",
                                   contentType: "application/x-www-form-urlencoded", body: Array(body.utf8))
            let r = try #require(RequestDecider.decide(post, site: site, now: now, rng: &rng).response)
            #expect(r.status == 400)
            #expect(r.env.contains { $0 == ("IDTOKEN_ERROR", "invalid_state") })
            #expect(!r.env.contains { $0.0 == "IDTOKEN_PROVIDER_ERROR_DESCRIPTION" })
            #expect(r.log?.message.contains("script") == false && r.log?.message.contains("evil") == false)
            #expect(!r.page.contains("script") && !r.page.contains("access_denied"))
        }
    }

    // MARK: 13. A refresh racing a logout

    @Test mutating func aRefreshNeverResurrectsASessionLoggedOutMeanwhile() throws {
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let jar = try login(site, store: store)
        // The logout runs between this request's load and its refresh write.
        let logoutRequest = logout(jar, site: "same-origin").with(store: store), at = now + 120
        let racing = RacingStore(store) {
            var logoutRNG = SeededRandom(state: 99)
            _ = RequestDecider.decide(logoutRequest, site: site, now: at, rng: &logoutRNG)
        }
        let during = RequestDecider.decide(get("/app/", jar, store: racing), site: site, now: now + 120, rng: &rng)
        #expect(racing.ran)
        #expect(during.passed == nil)
        #expect(RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 121, rng: &rng).passed == nil)
    }

    // MARK: 14. Plain-http endpoints in the discovery document

    @Test mutating func plainHTTPEndpointsAreRefusedExceptOnLoopback() throws {
        for (jwks, refused) in [("http://op.example.org/jwks", true), ("http://127.0.0.1:9000/jwks", false)] {
            let provider = FakeProvider()
            let doc = """
                {"issuer":"\(FakeProvider.issuer)","authorization_endpoint":"\(FakeProvider.issuer)/authorize","jwks_uri":"\(jwks)"}
                """
            provider.set(FakeProvider.discoveryURL, .response(status: 200, body: Array(doc.utf8)))
            let d = RequestDecider.decide(get("/app/", CookieJar()), site: .fixture(provider: provider), now: now, rng: &rng)
            if refused {
                let r = try #require(d.response)
                #expect(r.status == 502)
                #expect(r.log?.message.contains("plain http") == true)
            } else {
                #expect(d.redirect?.status == 302)
            }
        }
    }
}

extension AuthRequest {
    func with(store: any SharedStore) -> AuthRequest {
        var copy = self
        copy.store = store
        return copy
    }
}

/// Counts the look-ups a request makes. `countsWrites`: it tells its write count, as the file store
/// and shmcb do; without, it is a store other servers write to too (Redis, memcache).
final class CountingStore: SharedStore, @unchecked Sendable {
    let inner = MemoryStore()
    let countsWrites: Bool
    private let count = Mutex(0)
    var gets: Int { count.withLock { $0 } }

    init(countsWrites: Bool = false) { self.countsWrites = countsWrites }

    func writes() -> UInt64? { countsWrites ? inner.writes() : nil }

    func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { inner.add(key, value, expiresAt: expiresAt, now: now) }
    func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { inner.put(key, value, expiresAt: expiresAt, now: now) }
    func get(_ key: [UInt8], now: Int64) -> Result<[UInt8], StoreFailure> {
        count.withLock { $0 += 1 }
        return inner.get(key, now: now)
    }
    func remove(_ key: [UInt8]) -> StoreStatus { inner.remove(key) }
}

/// Runs `interleave` once, just before the first write of a session entry: another request's work
/// landing between this request's read and its write.
final class RacingStore: SharedStore, @unchecked Sendable {
    let inner: MemoryStore
    let interleave: () -> Void
    private(set) var ran = false

    init(_ inner: MemoryStore, interleave: @escaping () -> Void) {
        self.inner = inner
        self.interleave = interleave
    }

    func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { inner.add(key, value, expiresAt: expiresAt, now: now) }
    func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        if !ran, key.starts(with: Array("idtoken:s:".utf8)) {
            ran = true
            interleave()
        }
        return inner.put(key, value, expiresAt: expiresAt, now: now)
    }
    func get(_ key: [UInt8], now: Int64) -> Result<[UInt8], StoreFailure> { inner.get(key, now: now) }
    func remove(_ key: [UInt8]) -> StoreStatus { inner.remove(key) }
}

/// Seals as the release before the session profile was bound in: version 1, provider and client only.
enum LegacySeal {
    static func seal(_ plaintext: [UInt8], keys: SessionKeys, context: String) -> String? {
        let aad = [SealedCookie.legacyVersion] + Array(SessionKeys.Purpose.session.rawValue.utf8) + [0] + Array(context.utf8)
        guard let box = try? AES.GCM.seal(plaintext, using: keys.sealingKey(.session), authenticating: aad),
              let combined = box.combined else { return nil }
        return Base64URL.encode([SealedCookie.legacyVersion] + Array(combined))
    }
}
