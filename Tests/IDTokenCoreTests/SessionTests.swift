import Synchronization
import Testing
@testable import IDTokenCore

/// Sessions after login: chunked cookies, server-side entries, idle and absolute expiry, logout.
extension OpenedSessions {
    func session(for sealed: String) -> Session? { entry(for: sealed)?.session }
}

@Suite struct SessionTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 11)

    func get(_ target: String, _ jar: CookieJar, scheme: String = "http", store: (any SharedStore)? = nil,
             accept: String = "text/html") -> AuthRequest {
        AuthRequest(method: "GET", scheme: scheme, host: "localhost:8080", target: target, cookie: jar.header, accept: accept, store: store)
    }

    /// Logs in through the decider and returns the browser's cookies and the raw ID token.
    mutating func login(_ site: Site, claims extra: [String: JSONValue] = [:], store: (any SharedStore)? = nil,
                        scheme: String = "http", at t: Int64? = nil) throws -> (CookieJar, String) {
        let t = t ?? now
        var jar = CookieJar()
        let start = try #require(RequestDecider.decide(get("/app/", jar, scheme: scheme, store: store), site: site, now: t, rng: &rng).redirect)
        jar.apply(start.setCookies)
        let q = queryItems(start.location)
        var f = TokenFactory.standard(now: t, nonce: q["nonce"] ?? "")
        f.claims["sid"] = .string("op-session-1")
        for (k, v) in extra { f.claims[k] = v }
        let token = f.signed()
        let body = "state=\(q["state"] ?? "")&id_token=\(token)"
        let post = AuthRequest(method: "POST", scheme: scheme, host: "localhost:8080", target: "/app/callback", cookie: jar.header,
                               contentType: "application/x-www-form-urlencoded", body: Array(body.utf8), store: store)
        let done = try #require(RequestDecider.decide(post, site: site, now: t, rng: &rng).redirect, "login failed")
        jar.apply(done.setCookies)
        return (jar, token)
    }

    /// 400 group IDs as Entra ID sends them: random, so they compress to about half.
    static let fatClaims: [String: JSONValue] = {
        var rng = SeededRandom(state: 7)
        return ["groups": .array((0..<400).map { i in
            .string(String(rng.next(), radix: 16) + "-" + String(rng.next() >> 20, radix: 16) + "-\(i)")
        })]
    }()

    static let lastGroup: String = {
        guard case .array(let groups) = fatClaims["groups"], case .string(let last) = groups.last else { return "" }
        return last
    }()

    @Test mutating func fatSessionIsChunkedAndReassembled() throws {
        let site = Site.fixture { $0.limitRequestFieldSize = 65536 }
        let (jar, _) = try login(site, claims: Self.fatClaims)
        let chunks = jar.cookies.keys.filter { $0.hasPrefix("idtoken_session_") }
        #expect(chunks.count >= 3)
        #expect(jar.cookies["idtoken_session"] == "chunks-\(chunks.count)")
        let pass = try #require(RequestDecider.decide(get("/app/", jar), site: site, now: now + 1, rng: &rng).passed)
        #expect(pass.env.contains { $0.0 == "IDTOKEN_CLAIM_groups" && $0.1.hasSuffix(Self.lastGroup) })
    }

    @Test mutating func aSessionTooBigForTheRequestHeaderGoesToTheSharedStore() throws {
        let site = Site.fixture()
        let store = MemoryStore()
        let (jar, _) = try login(site, claims: Self.fatClaims, store: store)
        let id = try #require(jar.cookies["idtoken_session"])
        #expect(LoginState.isRandomToken(id[...]))
        #expect(!jar.cookies.keys.contains { $0.hasPrefix("idtoken_session_") })
        let pass = try #require(RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 1, rng: &rng).passed)
        #expect(pass.env.contains { $0.0 == "IDTOKEN_CLAIM_groups" && $0.1.hasSuffix(Self.lastGroup) })
        // Another server with the same key but without the store cannot read it: it lives in the store.
        #expect(RequestDecider.decide(get("/app/", jar, store: MemoryStore()), site: site, now: now + 1, rng: &rng).passed == nil)
    }

    @Test mutating func aSessionTooBigWithoutASharedStoreFailsTheLoginWithTheRemedy() throws {
        let site = Site.fixture()
        var jar = CookieJar()
        let start = try #require(RequestDecider.decide(get("/app/", jar), site: site, now: now, rng: &rng).redirect)
        jar.apply(start.setCookies)
        let q = queryItems(start.location)
        var f = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "")
        for (k, v) in Self.fatClaims { f.claims[k] = v }
        let body = "state=\(q["state"] ?? "")&id_token=\(f.signed())"
        let post = AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: jar.header,
                               contentType: "application/x-www-form-urlencoded", body: Array(body.utf8))
        let refused = try #require(RequestDecider.decide(post, site: site, now: now, rng: &rng).response)
        #expect(refused.status == 500)
        #expect(!refused.setCookies.contains { $0.hasPrefix("idtoken_session") })
        #expect(refused.log?.message.contains("LimitRequestFieldSize") == true)
        #expect(refused.log?.message.contains("IDTokenSessionStore cache") == true)
    }

    @Test mutating func theBudgetCountsTheBrowsersOtherCookies() throws {
        // Alone, the 4 KB-claims session fits; beside 5 KB of the application's cookies it would make the
        // Cookie header too long, so it goes to the store.
        let site = Site.fixture()
        let store = MemoryStore()
        let claims: [String: JSONValue] = ["groups": Self.fatClaims["groups"].map { v -> JSONValue in
            guard case .array(let a) = v else { return v }
            return .array(Array(a.prefix(100)))
        } ?? .null]
        let (alone, _) = try login(site, claims: claims, store: store)
        #expect(alone.cookies["idtoken_session"].map { !LoginState.isRandomToken($0[...]) } == true)
        var crowded = CookieJar()
        crowded.cookies["app_prefs"] = String(repeating: "p", count: 5000)
        var jar = crowded
        let start = try #require(RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now, rng: &rng).redirect)
        jar.apply(start.setCookies)
        let q = queryItems(start.location)
        var f = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "")
        for (k, v) in claims { f.claims[k] = v }
        let body = "state=\(q["state"] ?? "")&id_token=\(f.signed())"
        let post = AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: jar.header,
                               contentType: "application/x-www-form-urlencoded", body: Array(body.utf8), store: store)
        let done = try #require(RequestDecider.decide(post, site: site, now: now, rng: &rng).redirect)
        jar.apply(done.setCookies)
        #expect(jar.cookies["idtoken_session"].map { LoginState.isRandomToken($0[...]) } == true)
    }

    /// What the release before format 5 sealed: format 4, seal version 2. Nobody is logged out by the upgrade.
    @Test mutating func aFormat4SessionOfThePreviousReleaseStillOpens() throws {
        let site = Site.fixture()
        let session = Session(subject: "alice-0001", issuer: FakeProvider.issuer, createdAt: now, expiresAt: now + 3600,
                              remoteUser: "alice-0001", claims: [.init("email", "alice@example.org")], authTime: now, acr: "urn:mfa")
        let sealed = try #require(SealedCookie.seal(session.encodedFormat4(), keys: site.config.keys, purpose: .session,
                                                    context: site.config.sessionContext))
        var jar = CookieJar()
        jar.cookies["idtoken_session"] = sealed
        let pass = try #require(RequestDecider.decide(get("/app/", jar), site: site, now: now + 5, rng: &rng).passed)
        #expect(pass.remoteUser == "alice-0001")
        #expect(pass.env.contains { $0.0 == "IDTOKEN_CLAIM_email" && $0.1 == "alice@example.org" })
    }

    @Test func everyChunkFitsInABrowserCookie() throws {
        let site = Site.fixture { $0.limitRequestFieldSize = 65536 }
        var rng = SeededRandom(state: 5)
        let noise = (0..<700).map { _ in String(rng.next(), radix: 36) }.joined()
        let session = Session(subject: "alice", issuer: "https://op", createdAt: now, expiresAt: now + 3600,
                              claims: [.init("groups", noise), .init("sub", "alice")])
        let request = get("/app/", CookieJar())
        guard case .stored(let headers, false) = SessionJar(site: site, request: request).save(session, now: now) else {
            Issue.record("not stored in cookies")
            return
        }
        #expect(headers.count >= 4)
        for h in headers { #expect(h.utf8.count <= 4000) }
        var jar = CookieJar()
        jar.apply(headers)
        let back = SessionJar(site: site, request: get("/app/", jar)).load(now: now)
        #expect(back?.session == session)
        // A later small session clears every leftover chunk.
        let small = Session(subject: "alice", issuer: "https://op", createdAt: now, expiresAt: now + 3600, claims: [.init("sub", "alice")])
        guard case .stored(let again, _) = SessionJar(site: site, request: get("/app/", jar)).save(small, now: now) else {
            Issue.record("not stored")
            return
        }
        jar.apply(again)
        #expect(!jar.cookies.keys.contains { $0.hasPrefix("idtoken_session_") })
        #expect(SessionJar(site: site, request: get("/app/", jar)).load(now: now)?.session == small)
    }

    @Test mutating func idleTimeoutSlidesAndRefreshesAtMostOncePerInterval() throws {
        let site = Site.fixture { $0.sessionIdleTimeout = 600; $0.sessionRefreshInterval = 60 }
        var (jar, _) = try login(site)
        let early = try #require(RequestDecider.decide(get("/app/", jar), site: site, now: now + 30, rng: &rng).passed)
        #expect(early.setCookies.isEmpty)
        var t = now
        for _ in 0..<5 {
            t += 500
            let p = try #require(RequestDecider.decide(get("/app/", jar), site: site, now: t, rng: &rng).passed, "still active at +\(t - now)")
            #expect(!p.setCookies.isEmpty)
            jar.apply(p.setCookies)
        }
        #expect(RequestDecider.decide(get("/app/", jar), site: site, now: t + 601, rng: &rng).redirect?.status == 302)
    }

    @Test mutating func absoluteLifetimeEndsEvenAnActiveSession() throws {
        let site = Site.fixture { $0.sessionLifetime = 3600; $0.sessionIdleTimeout = 600 }
        var (jar, _) = try login(site)
        var t = now
        while t < now + 3500 {
            t += 300
            if let p = RequestDecider.decide(get("/app/", jar), site: site, now: t, rng: &rng).passed { jar.apply(p.setCookies) }
        }
        #expect(RequestDecider.decide(get("/app/", jar), site: site, now: now + 3601, rng: &rng).passed == nil)
        // An expired session is a new login for a page, and a 401 without a state cookie for a script.
        let xhr = try #require(RequestDecider.decide(get("/app/", jar, accept: "application/json"), site: site, now: now + 3601, rng: &rng).response)
        #expect(xhr.status == 401 && xhr.setCookies.isEmpty)
    }

    @Test mutating func sessionCanBeCappedByTheTokenExpiry() throws {
        let site = Site.fixture { $0.sessionCapToTokenExpiry = true }
        let (jar, _) = try login(site)
        #expect(RequestDecider.decide(get("/app/", jar), site: site, now: now + 299, rng: &rng).passed != nil)
        #expect(RequestDecider.decide(get("/app/", jar), site: site, now: now + 301, rng: &rng).passed == nil)
    }

    @Test mutating func cacheModeKeepsOnlyAnIDInTheCookie() throws {
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let (jar, _) = try login(site, claims: Self.fatClaims, store: store)
        let cookie = try #require(jar.cookies["idtoken_session"])
        #expect(cookie.count < 64)
        #expect(jar.cookies.keys.filter { $0 != LoginMarker.baseName } == ["idtoken_session"])  // (and the login marker)
        #expect(RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 5, rng: &rng).passed?.remoteUser == "alice-0001")
        // Another server sharing the store serves it; one without it does not.
        let other = Site.fixture { $0.sessionStore = .cache }
        #expect(RequestDecider.decide(get("/app/", jar, store: store), site: other, now: now + 5, rng: &rng).passed != nil)
        #expect(RequestDecider.decide(get("/app/", jar, store: MemoryStore()), site: other, now: now + 5, rng: &rng).passed == nil)
    }

    /// When the store is full, only a session may give way (the user logs in again): a single-use mark,
    /// a tombstone or an index entry that vanished would let a replay, a revoked session or a missed
    /// back-channel logout through. So sessions alone are written evictable, at login and at refresh.
    @Test mutating func onlySessionsAreWrittenEvictable() throws {
        let store = WriteRecordingStore()
        let site = Site.fixture { $0.sessionStore = .cache; $0.sessionRefreshInterval = 1 }
        let (jar, _) = try login(site, store: store)
        #expect(RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 5, rng: &rng).passed != nil)
        let logout = AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/callback?logout=%2F",
                                 cookie: jar.header, secFetchSite: "same-origin", store: store)
        _ = RequestDecider.decide(logout, site: site, now: now + 6, rng: &rng)
        let writes = store.writes
        let sessions = writes.filter { $0.key.hasPrefix("idtoken:s:") }
        #expect(sessions.count == 2, "a login and a refresh: \(writes)")
        let allEvictable = sessions.allSatisfy { $0.evictable }
        #expect(allEvictable, "\(sessions)")
        let others = writes.filter { !$0.key.hasPrefix("idtoken:s:") }
        for section in ["used", "sub", "sid", "ended"] {
            #expect(others.contains { $0.key.hasPrefix("idtoken:\(section):") }, "no \(section) entry written: \(writes)")
        }
        let evictableOthers = others.filter { $0.evictable }
        #expect(evictableOthers.isEmpty, "only sessions may give way: \(evictableOthers)")
    }

    /// A session back-channel logout could not find is no session: when the store refuses its sid/sub
    /// index entries, the login fails (503) and the session written just before is taken back.
    @Test mutating func aSessionWhoseIndexCannotBeWrittenIsNotOpened() throws {
        let store = IndexRefusingStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        var jar = CookieJar()
        let start = try #require(RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now, rng: &rng).redirect)
        jar.apply(start.setCookies)
        let q = queryItems(start.location)
        var f = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "")
        f.claims["sid"] = .string("op-session-1")
        let body = "state=\(q["state"] ?? "")&id_token=\(f.signed())"
        let post = AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: jar.header,
                               contentType: "application/x-www-form-urlencoded", body: Array(body.utf8), store: store)
        let refused = try #require(RequestDecider.decide(post, site: site, now: now, rng: &rng).response)
        #expect(refused.status == 503)
        #expect(!refused.setCookies.contains { $0.hasPrefix("idtoken_session=") })
        #expect(store.sessionsLeft == 0, "the session written before its index must be taken back")
    }

    @Test mutating func httpsCookiesUseTheHostPrefix() throws {
        let site = Site.fixture()
        let (jar, _) = try login(site, scheme: "https")
        #expect(jar.cookies["__Host-idtoken_session"] != nil)
        let pass = RequestDecider.decide(get("/app/", jar, scheme: "https"), site: site, now: now + 1, rng: &rng).passed
        #expect(pass?.remoteUser == "alice-0001")
    }

    @Test mutating func claimsKeepAndDropListsShrinkTheSession() throws {
        let site = Site.fixture { $0.claimsKeep = ["email", "groups"]; $0.claimsDrop = ["groups"] }
        let (jar, _) = try login(site)
        let pass = try #require(RequestDecider.decide(get("/app/", jar), site: site, now: now + 1, rng: &rng).passed)
        #expect(pass.env.map(\.0) == ["IDTOKEN_CLAIM_email"])
        #expect(pass.remoteUser == "alice-0001")
    }

    @Test mutating func rememberedSessionsAreKeyedByTheExactSealedValue() throws {
        let site = Site.fixture()
        let (jar, _) = try login(site)
        let opened = site.openedSessions
        let loader = SessionJar(site: site, request: get("/app/", jar))
        let first = try #require(loader.load(now: now))
        let sealed = try #require(jar.cookies["idtoken_session"])
        #expect(opened.session(for: sealed) == first.session)
        // One changed character is another key: it is opened (and refused) afresh, never served from memory.
        var tampered = Array(sealed.utf8)
        tampered[tampered.count / 2] = tampered[tampered.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        var forged = jar
        forged.cookies["idtoken_session"] = String(decoding: tampered, as: UTF8.self)
        #expect(SessionJar(site: site, request: get("/app/", forged)).load(now: now) == nil)
        // The expiry is still checked for a remembered session.
        #expect(RequestDecider.decide(get("/app/", jar), site: site, now: now + 9 * 3600, rng: &rng).passed == nil)
    }
}

/// Records each write's key and whether it was written evictable.
/// A full store that still takes sessions (they may evict) but refuses what never gives way.
final class IndexRefusingStore: SharedStore, @unchecked Sendable {
    let inner = MemoryStore()
    private let live = Mutex<Set<[UInt8]>>([])
    var sessionsLeft: Int { live.withLock { $0.count } }
    func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { inner.add(key, value, expiresAt: expiresAt, now: now) }
    func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus { .error }
    func putEvictable(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        _ = live.withLock { $0.insert(key) }
        return inner.put(key, value, expiresAt: expiresAt, now: now)
    }
    func get(_ key: [UInt8], now: Int64) -> Result<[UInt8], StoreFailure> { inner.get(key, now: now) }
    func remove(_ key: [UInt8]) -> StoreStatus {
        _ = live.withLock { $0.remove(key) }
        return inner.remove(key)
    }
}

final class WriteRecordingStore: SharedStore, @unchecked Sendable {
    let inner = MemoryStore()
    private let recorded = Mutex<[(key: String, evictable: Bool)]>([])
    var writes: [(key: String, evictable: Bool)] { recorded.withLock { $0 } }

    private func record(_ key: [UInt8], _ evictable: Bool) {
        recorded.withLock { $0.append((String(decoding: key, as: UTF8.self), evictable)) }
    }

    func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        record(key, false)
        return inner.add(key, value, expiresAt: expiresAt, now: now)
    }
    func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        record(key, false)
        return inner.put(key, value, expiresAt: expiresAt, now: now)
    }
    func putEvictable(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        record(key, true)
        return inner.put(key, value, expiresAt: expiresAt, now: now)
    }
    func get(_ key: [UInt8], now: Int64) -> Result<[UInt8], StoreFailure> { inner.get(key, now: now) }
    func remove(_ key: [UInt8]) -> StoreStatus { inner.remove(key) }
}
