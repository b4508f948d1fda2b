import Testing
@testable import IDTokenCore

/// The shared store down (Redis unreachable): cache sessions get 503 rather than a login that could not
/// complete either, and a login's single-use mark follows IDTokenReplayCheckFailure.
@Suite struct StoreDownTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 16)

    /// Every call fails, as the C adapter answers while Redis cannot be reached.
    struct DownStore: SharedStore {
        func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { .error }
        func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { .error }
        func get(_ key: [UInt8], now: Int64) -> Result<[UInt8], StoreFailure> { .failure(.failed) }
        func remove(_ key: [UInt8]) -> StoreStatus { .error }
    }

    @Test mutating func aCacheSessionWhoseStoreIsDownGets503NotALogin() throws {
        var s = SessionTests()
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let (jar, _) = try s.login(site, store: store)
        #expect(RequestDecider.decide(s.get("/app/", jar, store: store), site: site, now: now + 5, rng: &rng).passed != nil)

        let request = s.get("/app/", jar, store: DownStore())
        let r = try #require(RequestDecider.decide(request, site: site, now: now + 6, rng: &rng).response)
        #expect(r.status == 503)
        #expect(r.env.contains { $0 == ("IDTOKEN_ERROR", "temporarily_unavailable") })
        #expect(r.setCookies.isEmpty, "the session cookie must stay: the session is still in the store")
        // The adapter logs the outage once for the server; each request only at debug level.
        #expect(r.log?.level == .debug)
        #expect(request.work.storeFailures == 1)

        // A session the store does not have (it answers, "not found") is no session: a new login.
        let gone = RequestDecider.decide(s.get("/app/", jar, store: MemoryStore()), site: site, now: now + 7, rng: &rng)
        #expect(gone.redirect?.status == 302)
        // Without a session cookie the store is not asked: a login starts as usual.
        let fresh = RequestDecider.decide(s.get("/app/", CookieJar(), store: DownStore()), site: site, now: now + 8, rng: &rng)
        #expect(fresh.redirect?.status == 302)
    }

    @Test mutating func cookieSessionsGoOnWhileTheStoreIsDown() throws {
        var s = SessionTests()
        let site = Site.fixture()
        let (jar, _) = try s.login(site, store: MemoryStore())
        let pass = RequestDecider.decide(s.get("/app/", jar, store: DownStore()), site: site, now: now + 120, rng: &rng).passed
        #expect(pass?.remoteUser == "alice-0001")
    }

    @Test(arguments: [ReplayCheckFailure.refuse, .accept])
    mutating func aLoginWhoseResponseCannotBeMarkedFollowsTheSetting(_ setting: ReplayCheckFailure) throws {
        var d = RequestDeciderTests()
        let site = Site.fixture { $0.replayCheckFailure = setting }
        var jar = CookieJar()
        let q = try d.startLogin(site, &jar)
        var req = d.post(state: q["state"] ?? "", token: TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed(), jar)
        req.store = DownStore()
        let decision = RequestDecider.decide(req, site: site, now: now, rng: &rng)
        switch setting {
        case .refuse:
            let r = try #require(decision.response)
            #expect(r.status == 503)
            #expect(r.log?.message.contains("IDTokenReplayCheckFailure refuse") == true)
            #expect(!r.setCookies.contains { $0.hasPrefix("idtoken_session") })
        case .accept:
            let r = try #require(decision.redirect)
            #expect(r.status == 303)
            #expect(r.setCookies.contains { $0.hasPrefix("idtoken_session=") })
            #expect(r.log?.level == .warning)
            #expect(r.log?.message.contains("accepted without its single-use mark") == true)
        }
    }

    @Test func theSettingParses() {
        #expect(Directive.replayCheckFailure.check("refuse") == nil)
        #expect(Directive.replayCheckFailure.check("ACCEPT") == nil)
        #expect(Directive.replayCheckFailure.check("maybe")?.contains("must be refuse") == true)
    }
}
