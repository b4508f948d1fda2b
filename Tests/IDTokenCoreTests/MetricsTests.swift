import Testing
@testable import IDTokenCore

/// The metrics: what each decision reports (the events the module adds to the shared counters), the
/// catalogue the module knows only by index, and the two renderings of the sums.
@Suite struct MetricsTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 11)

    func get(_ target: String, _ jar: CookieJar, accept: String = "text/html") -> AuthRequest {
        AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: target, cookie: jar.header, accept: accept)
    }

    func post(state: String, token: String, _ jar: CookieJar) -> AuthRequest {
        AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: jar.header,
                    contentType: "application/x-www-form-urlencoded",
                    body: Array(("state=" + FormEncoding.percentEncode(state) + "&id_token=" + token).utf8))
    }

    // MARK: The catalogue

    @Test func everySeriesHasItsOwnIndexInOrder() {
        #expect(Counter.all.count == Counter.count)
        for (i, counter) in Counter.all.enumerated() { #expect(counter.index == i, "\(counter) has index \(counter.index), not \(i)") }
        #expect(Set(Counter.all).count == Counter.count)
    }

    /// The `error` label is what the browser and an ErrorDocument see (IDTOKEN_ERROR) for that refusal,
    /// except a provider's own codes, all `provider_error`, so that a provider cannot grow the label set.
    @Test func aRefusalsErrorLabelIsItsErrorCode() {
        let errors: [LoginError] = [
            .responseInQuery, .callbackNotPost(method: "GET"), .unsupportedContentType(nil), .bodyTooLarge(limit: 1),
            .malformedForm, .repeatedParameter("state"), .missingParameter("state"), .unsolicitedProviderError,
            .internalCallback, .stateCookieMissing, .stateCookieUnreadable, .stateExpired(age: 400), .stateMismatch,
            .replayed, .storeFailed, .sessionNotStored(bytes: 1), .sessionTooLarge(bytes: 2, limit: 1),
            .remoteUserClaimMissing("email"), .invalidToken(.badSignature), .invalidToken(.expired(at: 1)),
            .invalidToken(.nonceMismatch), .provider(.unreachable(url: "u", reason: "r")),
            .provider(.badResponse(url: "u", reason: "r")), .loginLoop(rounds: 3, cause: "c"),
        ]
        for error in errors {
            let reason = error.refusalReason
            #expect(reason?.error == error.code, "\(error): label \(reason?.error ?? "none"), code \(error.code)")
        }
        #expect(LoginError.providerError(code: "access_denied", description: nil).refusalReason?.error == "provider_error")
        #expect(LoginError.providerError(code: "anything_at_all", description: nil).refusalReason == .providerError)
        #expect(LoginError.logoutReturnRefused("https://evil.example").refusalReason == nil)
        #expect(Set(RefusalReason.allCases.map(\.label)).count == RefusalReason.allCases.count)
    }

    @Test func loginDurationBuckets() {
        #expect(Counter.loginDurationBucket(0) == 0)
        #expect(Counter.loginDurationBucket(1) == 0)
        #expect(Counter.loginDurationBucket(2) == 1)
        #expect(Counter.loginDurationBucket(3) == 2)
        #expect(Counter.loginDurationBucket(300) == Counter.loginDurationBounds.count - 1)
        #expect(Counter.loginDurationBucket(301) == Counter.loginDurationBounds.count)
    }

    // MARK: What decisions report

    @Test mutating func aLoginReportsItsStartCompletionDurationAndSession() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let start = get("/app/page", jar)
        let first = try #require(RequestDecider.decide(start, site: site, now: now, rng: &rng).redirect)
        #expect(start.work.events.total(.request(.login)) == 1)
        #expect(start.work.events.total(.loginStarted) == 1)
        #expect(start.work.events.total(.sessionEnded(.expired)) == 0)
        // The discovery fetch the start needed, handed to the next request of the site that takes it.
        site.provider.drainFetches(into: start.work)
        #expect(start.work.events.total(.providerFetch(.discovery, .ok)) == 1)
        #expect(start.work.events.all.contains { $0.kind == .latest && $0.index == SiteGauge.discoveryFetched.rawValue && $0.value == now })
        let again = WorkMeter()
        site.provider.drainFetches(into: again)
        #expect(again.events.count == 0)

        jar.apply(first.setCookies)
        let q = queryItems(first.location)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let callback = post(state: q["state"] ?? "", token: token, jar)
        let done = try #require(RequestDecider.decide(callback, site: site, now: now + 4, rng: &rng).redirect)
        #expect(done.status == 303)
        let events = callback.work.events
        #expect(events.total(.loginCompleted) == 1)
        #expect(events.total(.sessionOpened) == 1)
        #expect(events.total(.loginDuration(bucket: 2)) == 1)  // 4 s: within 5
        #expect(events.total(.loginDurationSum) == 4)
        #expect(events.total(.request(.passed)) == 0)  // the callback is no protected request
        site.provider.drainFetches(into: callback.work)
        #expect(callback.work.events.total(.providerFetch(.keys, .ok)) == 1)

        jar.apply(done.setCookies)
        let page = get("/app/page", jar)
        #expect(RequestDecider.decide(page, site: site, now: now + 10, rng: &rng).passed != nil)
        #expect(page.work.events.total(.request(.passed)) == 1)
        #expect(page.work.events.count == 1)
    }

    @Test mutating func refusalsReportTheirRule() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let first = try #require(RequestDecider.decide(get("/app/page", jar), site: site, now: now, rng: &rng).redirect)
        jar.apply(first.setCookies)
        let q = queryItems(first.location)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        // Another browser, without the state cookie.
        let stray = post(state: q["state"] ?? "", token: token, CookieJar())
        #expect(RequestDecider.decide(stray, site: site, now: now, rng: &rng).response?.status == 400)
        #expect(stray.work.events.total(.loginRefused(.stateCookieMissing)) == 1)
        // A token for another nonce.
        let forged = post(state: q["state"] ?? "", token: TokenFactory.standard(now: now, nonce: "other").signed(), jar)
        #expect(RequestDecider.decide(forged, site: site, now: now, rng: &rng).response?.status == 401)
        #expect(forged.work.events.total(.loginRefused(.tokenNonce)) == 1)
        #expect(forged.work.events.total(.loginCompleted) == 0)
        // A script without a session: refused, no login.
        let script = get("/app/api", CookieJar(), accept: "application/json")
        #expect(RequestDecider.decide(script, site: site, now: now, rng: &rng).response?.status == 401)
        #expect(script.work.events.total(.request(.refused)) == 1)
        #expect(script.work.events.total(.loginStarted) == 0)
    }

    @Test mutating func aProviderThatFailsIsReportedWithTheRefusedLogin() throws {
        let provider = FakeProvider()
        provider.set(FakeProvider.discoveryURL, .response(status: 500, body: []))
        let site = Site.fixture(provider: provider)
        let start = get("/app/page", CookieJar())
        #expect(RequestDecider.decide(start, site: site, now: now, rng: &rng).response?.status == 502)
        site.provider.drainFetches(into: start.work)
        #expect(start.work.events.total(.providerFetch(.discovery, .badResponse)) == 1)
        #expect(start.work.events.total(.loginRefused(.providerBadResponse)) == 1)
        #expect(start.work.events.total(.request(.refused)) == 1)
        #expect(start.work.events.all.contains { $0.kind == .latest && $0.index == SiteGauge.discoveryFailed.rawValue })
    }

    @Test mutating func aSessionFoundEndedCountsWhenItsBrowserIsSentToLogIn() throws {
        let site = Site.fixture { $0.sessionIdleTimeout = 600; $0.sessionRefreshInterval = 60 }
        var jar = CookieJar()
        let first = try #require(RequestDecider.decide(get("/app/page", jar), site: site, now: now, rng: &rng).redirect)
        jar.apply(first.setCookies)
        let q = queryItems(first.location)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let done = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar), site: site, now: now, rng: &rng).redirect)
        jar.apply(done.setCookies)
        // A script with the ended session gets 401 and counts no end; the browser's navigation does.
        let script = get("/app/api", jar, accept: "application/json")
        #expect(RequestDecider.decide(script, site: site, now: now + 700, rng: &rng).response?.status == 401)
        #expect(script.work.events.total(.sessionEnded(.expired)) == 0)
        let page = get("/app/page", jar)
        #expect(RequestDecider.decide(page, site: site, now: now + 700, rng: &rng).redirect?.status == 302)
        #expect(page.work.events.total(.sessionEnded(.expired)) == 1)
        #expect(page.work.events.total(.loginStarted) == 1)
    }

    @Test mutating func aLogoutEndsTheSessionItFinds() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let first = try #require(RequestDecider.decide(get("/app/page", jar), site: site, now: now, rng: &rng).redirect)
        jar.apply(first.setCookies)
        let q = queryItems(first.location)
        let token = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "").signed()
        let done = try #require(RequestDecider.decide(post(state: q["state"] ?? "", token: token, jar), site: site, now: now, rng: &rng).redirect)
        jar.apply(done.setCookies)
        let logout = get("/app/callback?logout=%2F", jar)
        #expect(RequestDecider.decide(logout, site: site, now: now + 1, rng: &rng).redirect != nil)
        #expect(logout.work.events.total(.sessionEnded(.logout)) == 1)
        let none = get("/app/callback?logout=%2F", CookieJar())
        _ = RequestDecider.decide(none, site: site, now: now + 1, rng: &rng)
        #expect(none.work.events.total(.sessionEnded(.logout)) == 0)
    }

    // MARK: The renderings

    func snapshot() -> MetricsSnapshot {
        var s = MetricsSnapshot()
        s.counters = [UInt64](repeating: 0, count: Counter.count)
        s.counters[Counter.loginCompleted.index] = 7
        s.counters[Counter.loginDuration(bucket: 0).index] = 3
        s.counters[Counter.loginDuration(bucket: 3).index] = 2
        s.counters[Counter.loginDuration(bucket: Counter.loginDurationBounds.count).index] = 2
        s.counters[Counter.loginDurationSum.index] = 900
        s.counters[Counter.loginRefused(.stateExpired).index] = 5
        s.now = now
        s.countingSince = now - 100
        s.sites = [.init(name: "app \"one\"", provider: "https://op/.well-known/openid-configuration",
                         gauges: [now - 50, 0, now - 40, now - 10]),
                   .init(name: "two", provider: "https://op2", gauges: [0, 0, 0, 0])]
        s.store.kind = "file"
        s.store.reachable = true
        s.store.file = .init(entries: 3, bytes: 65536, freeBytes: 1024, evicted: 4, refused: 1)
        s.library = "0.9.0"
        s.module = "0.9.0"
        return s
    }

    @Test func prometheusTextIsWellFormed() throws {
        let text = MetricsReport.prometheus(snapshot())
        let sample = try Regex(#"^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? -?[0-9]+$"#)
        var helped = Set<String>(), typed = Set<String>()
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") { helped.insert(String(line.split(separator: " ")[2])); continue }
            if line.hasPrefix("# TYPE ") { typed.insert(String(line.split(separator: " ")[2])); continue }
            #expect(line.wholeMatch(of: sample) != nil, "not a sample line: \(line)")
        }
        #expect(helped == typed)
        #expect(text.contains("idtoken_logins_completed_total 7\n"))
        #expect(text.contains("idtoken_logins_refused_total{error=\"invalid_state\",reason=\"state_expired\"} 5\n"))
        // Cumulative buckets, +Inf equal to the count.
        #expect(text.contains("idtoken_login_duration_seconds_bucket{le=\"1\"} 3\n"))
        #expect(text.contains("idtoken_login_duration_seconds_bucket{le=\"5\"} 3\n"))
        #expect(text.contains("idtoken_login_duration_seconds_bucket{le=\"10\"} 5\n"))
        #expect(text.contains("idtoken_login_duration_seconds_bucket{le=\"+Inf\"} 7\n"))
        #expect(text.contains("idtoken_login_duration_seconds_count 7\n"))
        #expect(text.contains("idtoken_login_duration_seconds_sum 900\n"))
        #expect(text.contains("idtoken_sessions_ended_total{reason=\"evicted\"} 4\n"))
        // A site whose keys failed after they were fetched is down; one never fetched is not shown.
        #expect(text.contains("idtoken_provider_up{site=\"app \\\"one\\\"\"} 0\n"))
        #expect(!text.contains("site=\"two\""))
        #expect(text.contains("idtoken_provider_keys_age_seconds{site=\"app \\\"one\\\"\"} 40\n"))
        #expect(text.contains("idtoken_store_up{store=\"file\"} 1\n"))
        // Every series of a fixed label set is there from zero.
        #expect(text.contains("idtoken_store_operations_total{operation=\"remove\",result=\"error\"} 0\n"))
    }

    @Test func statusIsJSONAndUnhealthyOnlyWhenTheStoreFails() throws {
        var s = snapshot()
        let (code, body) = MetricsReport.status(s)
        #expect(code == 200)
        let json = try #require(try? JSONParser.parse(Array(body.utf8)))
        guard case .object(let top) = json, case .array(let sites)? = top["sites"], case .object(let first)? = sites.first,
              case .object(let store)? = top["store"] else {
            Issue.record("unexpected status: \(body)")
            return
        }
        #expect(top["healthy"] == .bool(true))
        #expect(first["name"] == .string("app \"one\""))
        #expect(first["provider_reachable"] == .bool(false))
        #expect(first["keys_age_seconds"] == .number(40))
        #expect(store["reachable"] == .bool(true) && store["evicted"] == .number(4))
        s.store.reachable = false
        #expect(MetricsReport.status(s).status == 503)
        s.store = .init()
        #expect(MetricsReport.status(s).status == 200)
    }
}
