import Testing
@testable import IDTokenCore

/// Issue 14: every login completes. The loop guard, SameSite=Strict, long return URLs, the Back button,
/// and kid-less tokens after a key rotation, decided in memory.
@Suite struct LoginCompletesTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 14)

    func get(_ target: String, _ jar: CookieJar, store: (any SharedStore)? = nil) -> AuthRequest {
        AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: target, cookie: jar.header,
                    accept: "text/html", store: store)
    }

    func post(state: String, token: String, _ jar: CookieJar, store: (any SharedStore)? = nil) -> AuthRequest {
        AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: jar.header,
                    contentType: "application/x-www-form-urlencoded",
                    body: Array(("state=" + FormEncoding.percentEncode(state) + "&id_token=" + token).utf8), store: store)
    }

    /// One login: the start (with the browser's cookies), the provider, the callback. Returns the start's
    /// decision and, when it went to the provider, the callback's, each applied to the jar.
    mutating func login(_ site: Site, _ jar: inout CookieJar, target: String = "/app/page?x=1", at t: Int64,
                        store: (any SharedStore)? = nil) throws -> (start: Decision, callback: Decision?, state: String) {
        let start = RequestDecider.decide(get(target, jar, store: store), site: site, now: t, rng: &rng)
        guard let r = start.redirect else { return (start, nil, "") }
        jar.apply(r.setCookies)
        let q = queryItems(r.location)
        let token = TokenFactory.standard(now: t, nonce: q["nonce"] ?? "").signed()
        let cb = RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar, store: store), site: site, now: t + 1, rng: &rng)
        jar.apply(cb.redirect?.setCookies ?? cb.response?.setCookies ?? [])
        return (start, cb, q["state"] ?? "")
    }

    // MARK: The loop guard

    /// A browser that refuses the session cookie (here: the jar drops it, as a browser drops a cookie
    /// for another domain or a path it never sends) goes to the provider three times, then gets the page.
    @Test mutating func aBrowserThatNeverKeepsItsSessionGetsThePageAfterThreeRoundTrips() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        var trips = 0
        var t = now
        var page: Decision.Response?
        for _ in 0..<10 {
            let (start, callback, _) = try login(site, &jar, at: t)
            if let refused = start.response { page = refused; break }
            trips += 1
            #expect(callback?.redirect?.status == 303)
            #expect(callback?.redirect?.setCookies.contains { $0.hasPrefix("idtoken_login=") && $0.contains("SameSite=None") && $0.contains("Secure") } == true)
            jar.cookies["idtoken_session"] = nil
            t += 2
        }
        #expect(trips == LoginMarker.loopLimit)
        let r = try #require(page)
        #expect(r.status == 500)
        #expect(r.env.contains { $0 == ("IDTOKEN_ERROR", "login_loop") })
        #expect(r.page.contains("cookies"))
        #expect(r.setCookies.isEmpty)
        let log = try #require(r.log)
        #expect(log.level == .error)
        #expect(log.message.contains("login loop") && log.message.contains("no session cookie came back"))

        // Once the window has passed, the browser may try again (the admin fixed something, say).
        let later = RequestDecider.decide(get("/app/page", jar), site: site, now: t + LoginMarker.loopWindow + 1, rng: &rng)
        #expect(later.redirect?.status == 302)
    }

    /// The log line names the likely cause: a cookie domain that does not match, a cookie path that
    /// does not cover the page, a session cookie that comes back but does not open.
    @Test mutating func theLogLineSaysWhatIsWrong() throws {
        func loop(_ site: Site, dropSession: Bool, spoil: Bool = false) throws -> String {
            var rng = SeededRandom(state: 3)
            var jar = CookieJar()
            var t = now
            for _ in 0...LoginMarker.loopLimit {
                let start = RequestDecider.decide(get("/app/page", jar), site: site, now: t, rng: &rng)
                if let page = start.response { return page.log?.message ?? "" }
                let r = try #require(start.redirect)
                jar.apply(r.setCookies)
                let q = queryItems(r.location)
                let cb = RequestDecider.decide(post(state: q["state"] ?? "", token: TokenFactory.standard(now: t, nonce: q["nonce"] ?? "").signed(), jar),
                                               site: site, now: t + 1, rng: &rng)
                jar.apply(try #require(cb.redirect).setCookies)
                if dropSession { jar.cookies["idtoken_session"] = nil }
                if spoil { jar.cookies["idtoken_session"] = "AQ" + String(repeating: "x", count: 80) }
                t += 2
            }
            Issue.record("no loop page")
            return ""
        }
        #expect(try loop(.fixture { $0.cookieDomain = "example.org" }, dropSession: true).contains("IDTokenCookieDomain example.org does not match the host localhost"))
        #expect(try loop(.fixture { $0.cookiePath = "/elsewhere" }, dropSession: true).contains("IDTokenCookiePath /elsewhere does not cover /app/page"))
        #expect(try loop(.fixture(), dropSession: false, spoil: true).contains("does not open here"))
    }

    /// Two servers behind one name, with the same key but another claim mapping: the session of one does
    /// not open on the other, but the marker does, so the loop there is recognised and explained.
    @Test mutating func aServerWithAnotherClaimMappingSeesTheMarkerAndExplains() throws {
        let a = Site.fixture()
        let b = Site.fixture { $0.claimsDrop = ["groups"] }
        var jar = CookieJar()
        _ = try login(a, &jar, at: now)
        let request = get("/app/page", jar)
        #expect(LoginMarker.read(request, config: b.config, now: now + 2)?.streak == 1)
        #expect(RequestDecider.decide(request, site: b, now: now + 2, rng: &rng).redirect?.status == 302)
        #expect(LoopDiagnosis.explain(request, site: b, now: now + 2).contains("does not open here"))
    }

    /// Logins that keep their session, or come back later than the window, never add up to a loop.
    @Test mutating func loginsThatKeepTheirSessionOrComeLaterAreNoLoop() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        var t = now
        for _ in 0..<6 {
            let (start, callback, _) = try login(site, &jar, at: t)
            #expect(start.redirect?.status == 302)
            #expect(callback?.redirect?.status == 303)
            jar.cookies["idtoken_session"] = nil  // the session ended (logout elsewhere, idle timeout)...
            t += LoginMarker.loopWindow + 5      // ...and the next login comes well after this one
        }
    }

    /// A step-up (a valid session that this location asks more of) is no round trip of a loop.
    @Test mutating func stepUpsAreNotCounted() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        _ = try login(site, &jar, at: now)
        var strict = get("/app/admin", jar)
        strict.dir.authRequestParameters = [("prompt", "login")]
        for i in 0..<5 {
            let d = RequestDecider.decide(strict, site: site, now: now + 2 + Int64(i), rng: &rng)
            #expect(d.redirect?.status == 302, "step-up \(i)")
        }
    }

    /// Logout takes the marker away: logging out and in again at once is no loop.
    @Test mutating func logoutClearsTheMarker() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        _ = try login(site, &jar, at: now)
        #expect(jar.cookies["idtoken_login"] != nil)
        let out = RequestDecider.decide(get("/app/callback?logout=%2F", jar), site: site, now: now + 2, rng: &rng)
        let cleared = out.redirect?.setCookies ?? out.response?.setCookies ?? []
        #expect(cleared.contains { $0.hasPrefix("idtoken_login=;") && $0.contains("Max-Age=0") })
    }

    // MARK: SameSite=Strict

    @Test mutating func withStrictTheLoginEndsOnAPageThatMovesOnBySelf() throws {
        let site = Site.fixture { $0.cookieSameSite = .strict }
        var jar = CookieJar()
        let (_, callback, _) = try login(site, &jar, target: "/app/page?x=1&y=\"2\"", at: now)
        let r = try #require(callback?.response)
        #expect(r.status == 200)
        #expect(r.contentType == "text/html; charset=utf-8")
        #expect(r.page.contains("<meta http-equiv=\"refresh\" content=\"0;url=/app/page?x=1&amp;y=&quot;2&quot;\">"))
        #expect(r.page.contains("<a href=\"/app/page?x=1&amp;y=&quot;2&quot;\">"))
        #expect(!r.page.contains("<script"))
        #expect(r.setCookies.contains { $0.hasPrefix("idtoken_session=") && $0.contains("SameSite=Strict") })
        #expect(r.setCookies.contains { $0.hasPrefix("idtoken_login=") })
        #expect(RequestDecider.decide(get("/app/page?x=1", jar), site: site, now: now + 2, rng: &rng).passed?.remoteUser == "alice-0001")
    }

    @Test mutating func laxAndNoneRedirect() throws {
        for sameSite in [SetCookie.SameSite.lax, .none] {
            let site = Site.fixture { $0.cookieSameSite = sameSite }
            var jar = CookieJar()
            #expect(try login(site, &jar, at: now).callback?.redirect?.status == 303)
        }
    }

    // MARK: Long return URLs

    @Test mutating func aLongReturnURLIsKeptInTheStoreAndTheStateCookieStaysSmall() throws {
        let site = Site.fixture()
        let store = CountingStore()
        var jar = CookieJar()
        let target = "/app/search?q=" + String(repeating: "abcdefghij", count: 350)
        let start = RequestDecider.decide(get(target, jar, store: store), site: site, now: now, rng: &rng)
        let r = try #require(start.redirect)
        let state = try #require(r.setCookies.first { $0.hasPrefix("idtoken_state_") })
        #expect(state.utf8.count < 700, "state cookie of \(state.utf8.count) bytes")
        jar.apply(r.setCookies)
        let q = queryItems(r.location)
        let key = LongReturnURL.key(state: q["state"] ?? "", config: site.config)
        #expect(store.inner.get(key, now: now) == .success(Array(target.utf8)))
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let cb = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar, store: store), site: site,
                                                    now: now + 1, rng: &rng).redirect)
        #expect(cb.location == target)
        #expect(cb.log?.level == .info)
        #expect(store.inner.get(key, now: now + 1) == .failure(.notFound), "taken out of the store once used")
        // The marker keeps the path only.
        jar.apply(cb.setCookies)
        let marker = try #require(LoginMarker.read(get("/", jar), config: site.config, now: now + 2))
        #expect(marker.returnTo == "/app/search")
    }

    @Test mutating func withoutTheStoreALongReturnURLFallsBackToItsPathAndSaysSo() throws {
        struct BrokenStore: SharedStore {
            func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { .error }
            func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { .error }
            func get(_ key: [UInt8], now: Int64) -> Result<[UInt8], StoreFailure> { .failure(.failed) }
            func remove(_ key: [UInt8]) -> StoreStatus { .error }
        }
        let site = Site.fixture()
        var jar = CookieJar()
        let target = "/app/search?q=" + String(repeating: "x", count: 3500)
        let start = try #require(RequestDecider.decide(get(target, jar, store: BrokenStore()), site: site, now: now, rng: &rng).redirect)
        #expect(start.log?.level == .warning)
        #expect(start.log?.message.contains("returns to /app/search") == true)
        jar.apply(start.setCookies)
        let q = queryItems(start.location)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        // The callback on a working store (another process's would not have it either): the path.
        let cb = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar), site: site, now: now + 1, rng: &rng).redirect)
        #expect(cb.location == "/app/search")
    }

    @Test mutating func aStoredReturnURLLostBeforeTheCallbackFallsBackAndSaysSo() throws {
        let site = Site.fixture()
        let store = MemoryStore()
        var jar = CookieJar()
        let target = "/app/search?q=" + String(repeating: "y", count: 2000)
        let start = try #require(RequestDecider.decide(get(target, jar, store: store), site: site, now: now, rng: &rng).redirect)
        jar.apply(start.setCookies)
        let q = queryItems(start.location)
        _ = store.remove(LongReturnURL.key(state: q["state"] ?? "", config: site.config))  // a restart, another server
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let cb = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar, store: store), site: site,
                                                    now: now + 1, rng: &rng).redirect)
        #expect(cb.location == "/app/search")
        #expect(cb.log?.level == .warning)
        #expect(cb.log?.message.contains("no longer in the shared store") == true)
    }

    /// Attack: a flood of login starts with 8 KB URLs, each of which would be written into the shared
    /// store, could push sessions and single-use marks out of a small shmcb. Each process keeps at most
    /// StoreBudget.standardLimit per minute; the rest fall back to their path and write nothing.
    @Test mutating func aFloodOfLongReturnURLsWritesABoundedAmountIntoTheStore() throws {
        let site = Site.fixture()
        let store = MemoryStore()
        let target = "/app/x?q=" + String(repeating: "z", count: 8000)
        var kept = 0
        for i in 0..<(StoreBudget.standardLimit + 40) {
            let r = try #require(RequestDecider.decide(get(target, CookieJar(), store: store), site: site, now: now + Int64(i % 30), rng: &rng).redirect)
            let key = LongReturnURL.key(state: queryItems(r.location)["state"] ?? "", config: site.config)
            if case .success = store.get(key, now: now) { kept += 1 }
        }
        #expect(kept == StoreBudget.standardLimit)
        // A minute later the budget is back.
        let r = try #require(RequestDecider.decide(get(target, CookieJar(), store: store), site: site, now: now + 61, rng: &rng).redirect)
        #expect(store.get(LongReturnURL.key(state: queryItems(r.location)["state"] ?? "", config: site.config), now: now + 61) != .failure(.notFound))
    }

    @Test func returnURLsThatLeadElsewhereAreNeverKept() {
        for bad in ["//evil.example/x", "/\\evil.example/x", "https://evil.example/", "evil", "/a\u{0}b", ""] {
            #expect(!LoginState.isLocalTarget(bad), "\(bad)")
        }
        for good in ["/", "/app?x=//y", "/a/b/c?q=%2F%2F"] { #expect(LoginState.isLocalTarget(good), "\(good)") }
    }

    @Test func loginStateFormatsRoundTrip() throws {
        var s = LoginState(state: "s", nonce: "n", returnTo: "/a", createdAt: now, maxAge: 60, acrValues: ["x"], promptLogin: true,
                           streak: 2, returnStored: true, silent: true)
        #expect(LoginState(decoding: s.encoded()) == s)
        s.silent = false
        // Format 5 (0.9.0): still opens, not silent.
        var v5 = s.encoded()
        v5[0] = 5
        v5.removeLast(1)
        #expect(LoginState(decoding: v5) == s)
        s.streak = 0
        s.returnStored = false
        #expect(LoginState(decoding: s.encoded()) == s)
        // Format 4 (before 0.9.0): still opens, with no streak and nothing stored.
        var v4 = s.encoded()
        v4[0] = 4
        v4.removeLast(3)
        #expect(LoginState(decoding: v4) == s)
    }

    // MARK: The Back button

    /// The browser that completed a login posts its response again (Back reloads the provider's
    /// auto-submitting page): it is sent on to the login's page, nothing else changes.
    @Test mutating func aReplayedResponseOfALoginThisBrowserCompletedIsSentOn() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let start = try #require(RequestDecider.decide(get("/app/page?x=1", jar), site: site, now: now, rng: &rng).redirect)
        jar.apply(start.setCookies)
        let q = queryItems(start.location)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let first = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar), site: site, now: now + 1, rng: &rng).redirect)
        jar.apply(first.setCookies)
        // The provider answers the reloaded request again: a new token for the same nonce and state.
        let again = TokenFactory.standard(now: now + 30, nonce: q["nonce"] ?? "").signed()
        for replayed in [token, again] {
            let r = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: replayed, jar), site: site, now: now + 40, rng: &rng).redirect)
            #expect(r.status == 303)
            #expect(r.location == "/app/page?x=1")
            #expect(r.setCookies.isEmpty)
            #expect(r.log?.message.contains("posted again") == true)
        }
        // With Strict: the same, through the page that moves on by itself.
        let strict = Site(config: { var c = site.config; c.cookieSameSite = .strict; return c }(), provider: site.provider)
        let page = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: again, jar), site: strict, now: now + 40, rng: &rng).response)
        #expect(page.status == 200 && page.page.contains("url=/app/page?x=1"))
        // After the marker's lifetime it is the error again.
        let late = RequestDecider.decide(post(state: q["state"] ?? "", token: again, jar), site: site, now: now + 1 + LoginMarker.lifetime + 1, rng: &rng)
        #expect(late.response?.status == 400)
    }

    /// Attack: a captured login response replayed by anyone without the marker of that login (another
    /// browser, or one that completed another login) gets the refusal, and no session.
    @Test mutating func aReplayedResponseWithoutThatLoginsMarkerIsRefused() throws {
        let site = Site.fixture()
        var victim = CookieJar()
        let start = try #require(RequestDecider.decide(get("/app/page", victim), site: site, now: now, rng: &rng).redirect)
        victim.apply(start.setCookies)
        let q = queryItems(start.location)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let captured = post(state: q["state"] ?? "", token: token, victim)
        victim.apply(try #require(RequestDecider.decide(captured, site: site, now: now + 1, rng: &rng).redirect).setCookies)

        var attacker = CookieJar()
        _ = try login(site, &attacker, at: now + 2)  // a login of the attacker's own: its own marker
        attacker.cookies["idtoken_session"] = nil
        for (who, jar) in [("no cookies", CookieJar()), ("its own marker", attacker)] {
            let r = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar), site: site, now: now + 5, rng: &rng).response, "\(who)")
            #expect(r.status == 400, "\(who)")
            #expect(!r.setCookies.contains { $0.hasPrefix("idtoken_session") }, "\(who)")
        }
        // The captured request as it was (with the state cookie, before the marker existed): replayed.
        let replay = try #require(RequestDecider.decide(captured, site: site, now: now + 5, rng: &rng).response)
        #expect(replay.status == 400)
        #expect(replay.log?.message.contains("replayed") == true)
    }

    // MARK: Kid-less tokens

    /// A token without kid, signed with a key the cached set does not have yet (a rotation): one refetch,
    /// then it verifies. A burst of forged kid-less tokens costs at most one fetch per interval.
    @Test mutating func aKidlessTokenAfterARotationIsAcceptedAfterOneRefetch() throws {
        let jwks = FakeProvider.issuer + "/jwks"
        let fake = FakeProvider(jwks: TestKeys.jwksJSON(TestKeys.standardJWKs.filter { $0["kid"] != "rsa-1" }))
        let site = Site.fixture(provider: fake)
        var jar = CookieJar()
        // A first login with an EC key fills the cache (no RSA key in it).
        let s1 = try #require(RequestDecider.decide(get("/app/", jar), site: site, now: now, rng: &rng).redirect)
        jar.apply(s1.setCookies)
        let q1 = queryItems(s1.location)
        let t1 = TokenFactory.standard(now: now, nonce: q1["nonce"] ?? "", alg: .es256, kid: nil).signed()
        #expect(RequestDecider.decide(post(state: q1["state"] ?? "", token: t1, jar), site: site, now: now, rng: &rng).redirect?.status == 303)
        #expect(fake.count(jwks) == 1)

        // The provider rotates in its RSA key; a kid-less RS256 token arrives.
        fake.set(jwks, .response(status: 200, body: TestKeys.jwksJSON(TestKeys.standardJWKs)))
        var fresh = CookieJar()
        let s2 = try #require(RequestDecider.decide(get("/app/", fresh), site: site, now: now + 1, rng: &rng).redirect)
        fresh.apply(s2.setCookies)
        let q2 = queryItems(s2.location)
        let t2 = TokenFactory.standard(now: now + 1, nonce: q2["nonce"] ?? "", kid: nil).signed()
        let cb = RequestDecider.decide(post(state: q2["state"] ?? "", token: t2, fresh), site: site, now: now + 1, rng: &rng)
        #expect(cb.redirect?.status == 303, "\(String(describing: cb.response?.log))")
        #expect(fake.count(jwks) == 2)

        // Forged kid-less tokens (an unpublished key): refused, with one more fetch in the interval at most.
        for i in 0..<10 {
            var b = CookieJar()
            let s = try #require(RequestDecider.decide(get("/app/", b), site: site, now: now + 40, rng: &rng).redirect)
            b.apply(s.setCookies)
            let q = queryItems(s.location)
            let forged = TokenFactory.standard(now: now + 40, nonce: q["nonce"] ?? "", kid: nil).signed(rsaKey: TestKeys.rsaOther)
            let r = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: forged, b), site: site, now: now + 40, rng: &rng).response, "forged \(i)")
            #expect(r.status == 401)
            #expect(r.log?.message.contains("signature") == true)
        }
        #expect(fake.count(jwks) == 3)
    }

    @Test func kidlessRefetchSharesTheUnknownKidRateLimit() throws {
        let fake = FakeProvider()
        let jwks = FakeProvider.issuer + "/jwks"
        let cache = ProviderCache(discoveryURL: FakeProvider.discoveryURL, fetcher: fake)
        let (_, generation) = try cache.keysAndGeneration(now: now, kid: nil)
        #expect(fake.count(jwks) == 1)
        _ = try cache.keys(now: now + 1, kid: "made-up")  // takes the interval's refetch
        #expect(fake.count(jwks) == 2)
        // Another request refetched meanwhile: its set is tried without a fetch of our own.
        #expect(cache.keysAfterFailedKidless(now: now + 2, generation: generation) != nil)
        #expect(fake.count(jwks) == 2)
        let (_, current) = try cache.keysAndGeneration(now: now + 2, kid: nil)
        #expect(cache.keysAfterFailedKidless(now: now + 3, generation: current) == nil)
        #expect(fake.count(jwks) == 2)
        #expect(cache.keysAfterFailedKidless(now: now + 40, generation: current) != nil)
        #expect(fake.count(jwks) == 3)
    }
}
