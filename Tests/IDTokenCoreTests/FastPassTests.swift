import Testing
@testable import IDTokenCore

/// The request path's shortcut (FastPass, PassMemo): it answers exactly as the full decision would,
/// and only while nothing could make the full decision answer otherwise.
@Suite struct FastPassTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 23)

    func get(_ target: String, _ jar: CookieJar, scheme: String = "http", store: (any SharedStore)? = nil,
             dir: [Int32] = []) -> AuthRequest {
        var r = AuthRequest(method: "GET", scheme: scheme, host: "localhost:8080", target: target, cookie: jar.header,
                            accept: "text/html", store: store)
        r.dirHandles = dir
        return r
    }

    /// What FastPass answers for this request, from its bytes as the C module hands them over.
    func fast(_ site: Site, _ request: AuthRequest, at t: Int64) -> RenderedClaims? {
        let cookie = Array((request.cookie ?? "").utf8), target = Array(request.target.utf8)
        return cookie.withUnsafeBytes { c in
            target.withUnsafeBytes { t2 in
                request.dirHandles.withUnsafeBufferPointer { d in
                    FastPass.pass(.init(cookie: c, target: t2, secure: request.scheme == "https", dir: d), site: site, now: t) {
                        request.store
                    }
                }
            }
        }
    }

    mutating func login(_ site: Site, scheme: String = "http", store: (any SharedStore)? = nil,
                        claims: [String: JSONValue] = [:]) throws -> CookieJar {
        var jar = CookieJar()
        let start = try #require(RequestDecider.decide(get("/app/", jar, scheme: scheme, store: store), site: site, now: now, rng: &rng).redirect)
        jar.apply(start.setCookies)
        let q = queryItems(start.location)
        var f = TokenFactory.standard(now: now, nonce: q["nonce"] ?? "")
        for (k, v) in claims { f.claims[k] = v }
        let body = "state=\(q["state"] ?? "")&id_token=\(f.signed())"
        let post = AuthRequest(method: "POST", scheme: scheme, host: "localhost:8080", target: "/app/callback", cookie: jar.header,
                               contentType: "application/x-www-form-urlencoded", body: Array(body.utf8), store: store)
        let done = try #require(RequestDecider.decide(post, site: site, now: now, rng: &rng).redirect, "login failed")
        jar.apply(done.setCookies)
        return jar
    }

    @Test mutating func aPassIsRememberedAndAnsweredAlike() throws {
        let site = Site.fixture()
        let jar = try login(site)
        // Nothing remembered before the full decision let a request through.
        #expect(fast(site, get("/app/page", jar), at: now + 1) == nil)
        let full = try #require(RequestDecider.decide(get("/app/page", jar), site: site, now: now + 1, rng: &rng).passed)
        let quick = try #require(fast(site, get("/app/other?x=1", jar), at: now + 2))
        #expect(quick.remoteUser == full.remoteUser)
        #expect(quick.headers.map { "\($0.0)=\($0.1)" } == full.headers.map { "\($0.0)=\($0.1)" })
        #expect(quick.env.map { "\($0.0)=\($0.1)" } == full.env.map { "\($0.0)=\($0.1)" })
        #expect(quick.claims.map(\.0) == full.claims.map(\.0))
    }

    /// The refresh interval, the idle timeout and the lifetime: at the second the full decision would
    /// refresh the session (a Set-Cookie) or end it, the shortcut no longer answers.
    @Test mutating func notAtTheNextRefreshNorAfterTheEnd() throws {
        let site = Site.fixture { $0.sessionRefreshInterval = 60; $0.sessionIdleTimeout = 600; $0.sessionLifetime = 3600 }
        let jar = try login(site)
        _ = RequestDecider.decide(get("/app/", jar), site: site, now: now + 1, rng: &rng)
        #expect(fast(site, get("/app/", jar), at: now + 59) != nil)
        #expect(fast(site, get("/app/", jar), at: now + 60) == nil)
        let refreshed = try #require(RequestDecider.decide(get("/app/", jar), site: site, now: now + 60, rng: &rng).passed)
        #expect(!refreshed.setCookies.isEmpty, "the full decision refreshes at that second")
        #expect(fast(site, get("/app/", jar), at: now + 4000) == nil)
    }

    @Test mutating func notForAnotherLocationNorTheOtherScheme() throws {
        let site = Site.fixture()
        let jar = try login(site)
        _ = RequestDecider.decide(get("/app/", jar, dir: [3]), site: site, now: now + 1, rng: &rng)
        #expect(fast(site, get("/app/", jar, dir: [3]), at: now + 2) != nil)
        #expect(fast(site, get("/app/", jar, dir: [4]), at: now + 2) == nil)
        #expect(fast(site, get("/app/", jar, dir: [3, 4]), at: now + 2) == nil)
        #expect(fast(site, get("/app/", jar), at: now + 2) == nil)
        #expect(fast(site, get("/app/", jar, scheme: "https", dir: [3]), at: now + 2) == nil)
    }

    /// Logout, session info and the provider's POST go to the redirect URI: always decided in full.
    @Test mutating func neverTheRedirectURI() throws {
        let site = Site.fixture()
        let jar = try login(site)
        _ = RequestDecider.decide(get("/app/", jar), site: site, now: now + 1, rng: &rng)
        #expect(fast(site, get("/app/", jar), at: now + 2) != nil)
        #expect(fast(site, get("/app/callback", jar), at: now + 2) == nil)
        #expect(fast(site, get("/app/callback?logout=%2F", jar), at: now + 2) == nil)
        #expect(fast(site, get("/app/callback?info=json", jar), at: now + 2) == nil)
    }

    @Test mutating func aForgedOrAlteredCookieIsNotRemembered() throws {
        let site = Site.fixture()
        var jar = try login(site)
        _ = RequestDecider.decide(get("/app/", jar), site: site, now: now + 1, rng: &rng)
        let sealed = try #require(jar.cookies["idtoken_session"])
        // The same last 16 bytes (what the memo hashes), one byte changed before them.
        var bytes = Array(sealed.utf8)
        bytes[10] = bytes[10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        jar.cookies["idtoken_session"] = String(decoding: bytes, as: UTF8.self)
        #expect(fast(site, get("/app/", jar), at: now + 2) == nil)
        #expect(RequestDecider.decide(get("/app/", jar), site: site, now: now + 2, rng: &rng).passed == nil)
    }

    /// In the shared store the session is still read on every request: logout revokes it at once.
    @Test mutating func aCacheSessionEndsAtLogout() throws {
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let jar = try login(site, store: store)
        _ = RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 1, rng: &rng)
        #expect(fast(site, get("/app/", jar, store: store), at: now + 2) != nil)
        let logout = AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/callback?logout=%2F",
                                 cookie: jar.header, secFetchSite: "same-origin", store: store)
        _ = RequestDecider.decide(logout, site: site, now: now + 3, rng: &rng)
        #expect(fast(site, get("/app/", jar, store: store), at: now + 4) == nil)
        #expect(RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 4, rng: &rng).passed == nil)
    }

    /// A store that counts its writes (the file store, shmcb) is not read again while the count stands
    /// still; any write sends the next request to the store once more.
    @Test mutating func aCacheSessionIsReadAgainOnlyAfterAWrite() throws {
        let store = CountingStore(countsWrites: true)
        let site = Site.fixture { $0.sessionStore = .cache }
        let jar = try login(site, store: store)
        _ = RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 1, rng: &rng)
        let before = store.gets
        for t in 2...6 { #expect(fast(site, get("/app/", jar, store: store), at: now + Int64(t)) != nil) }
        #expect(store.gets == before)
        _ = store.put(Array("idtoken:x:other".utf8), [1], expiresAt: now + 100, now: now + 7)
        #expect(fast(site, get("/app/", jar, store: store), at: now + 7) != nil)
        #expect(store.gets == before + 1)
        #expect(fast(site, get("/app/", jar, store: store), at: now + 8) != nil)
        #expect(store.gets == before + 1)
    }

    /// Another process's logout only writes the store: the count moves, the session is read and gone.
    @Test mutating func aCacheSessionRemovedByAnotherProcessIsNotPassed() throws {
        let store = CountingStore(countsWrites: true)
        let site = Site.fixture { $0.sessionStore = .cache }
        let jar = try login(site, store: store)
        _ = RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 1, rng: &rng)
        #expect(fast(site, get("/app/", jar, store: store), at: now + 2) != nil)
        let id = try #require(jar.cookies["idtoken_session"])
        #expect(store.remove(StoreKey.make(.session, id, context: site.config.storeContext)) == .ok)
        #expect(fast(site, get("/app/", jar, store: store), at: now + 3) == nil)
        #expect(RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 3, rng: &rng).passed == nil)
    }

    /// A store other servers write too (no count) is read on every request.
    @Test mutating func aStoreWithoutACountIsReadOnEveryRequest() throws {
        let store = CountingStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let jar = try login(site, store: store)
        _ = RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 1, rng: &rng)
        let before = store.gets
        for t in 2...4 { #expect(fast(site, get("/app/", jar, store: store), at: now + Int64(t)) != nil) }
        #expect(store.gets == before + 3)
    }

    /// The store drops an unused session at its idle deadline, a write-free change: the memo ends there.
    @Test mutating func aCacheSessionIsNotPassedPastTheStoresIdleDeadline() throws {
        let store = CountingStore(countsWrites: true)
        let site = Site.fixture {
            $0.sessionStore = .cache
            $0.sessionIdleTimeout = 60
            $0.sessionRefreshInterval = 600
        }
        let jar = try login(site, store: store)
        _ = RequestDecider.decide(get("/app/", jar, store: store), site: site, now: now + 1, rng: &rng)
        #expect(fast(site, get("/app/", jar, store: store), at: now + 59) != nil)
        #expect(fast(site, get("/app/", jar, store: store), at: now + 60) == nil)
    }

    /// A chunked session's first cookie is a marker shared by every chunked session: never a key.
    @Test mutating func aChunkedSessionIsNotRemembered() throws {
        let site = Site.fixture { $0.limitRequestFieldSize = 65536 }
        let jar = try login(site, claims: SessionTests.fatClaims)
        #expect(jar.cookies["idtoken_session"]?.hasPrefix("chunks-") == true)
        #expect(RequestDecider.decide(get("/app/", jar), site: site, now: now + 1, rng: &rng).passed != nil)
        #expect(fast(site, get("/app/", jar), at: now + 2) == nil)
    }

    @Test mutating func aLocationsMaxAgeBoundsIt() throws {
        let site = Site.fixture { $0.sessionRefreshInterval = 600 }
        let jar = try login(site, claims: ["auth_time": JSONValue(now)])
        var request = get("/app/admin", jar, dir: [7])
        request.dir.authRequestParameters = [("max_age", "100")]
        _ = try #require(RequestDecider.decide(request, site: site, now: now + 1, rng: &rng).passed)
        let skew = site.config.clockSkew
        #expect(fast(site, request, at: now + 100 + skew) != nil)
        #expect(fast(site, request, at: now + 101 + skew) == nil)
        #expect(RequestDecider.decide(request, site: site, now: now + 101 + skew, rng: &rng).passed == nil)
    }

    /// The shortcut reads the header's bytes as CookieHeader does.
    /// The remembered cookie is compared in blocks of 32 and 8 bytes and then byte by byte: a single
    /// changed byte anywhere, at every length around those blocks, is seen.
    @Test func theComparisonSeesOneChangedByteAnywhere() {
        for count in 0...80 {
            let a = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            a.withUnsafeBytes { x in a.withUnsafeBytes { y in #expect(PassMemo.same(x, y)) } }
            for i in 0..<count {
                var b = a
                b[i] ^= 0x40
                a.withUnsafeBytes { x in b.withUnsafeBytes { y in #expect(!PassMemo.same(x, y), "byte \(i) of \(count)") } }
            }
            let longer = a + [0]
            a.withUnsafeBytes { x in longer.withUnsafeBytes { y in #expect(!PassMemo.same(x, y)) } }
        }
    }

    @Test func theFirstValueIsReadAsCookieHeaderReadsIt() {
        let headers = ["a=1; idtoken_session=xyz; b=2", " idtoken_session = q", "idtoken_session=\"quoted\"; x=y",
                       "idtoken_session=first; idtoken_session=second", "noequals; idtoken_session=v ;", "idtoken_sessionx=1",
                       "x=1;idtoken_session=", "", ";;;", "idtoken_session=\t tail \t"]
        let name = Array("idtoken_session".utf8)
        for header in headers {
            let bytes = Array(header.utf8)
            let range = bytes.withUnsafeBytes { h in name.withUnsafeBytes { CookieHeader.firstValue(named: $0, in: h) } }
            let fast = range.map { String(decoding: bytes[$0], as: UTF8.self) }
            let full = CookieHeader(header).values(named: "idtoken_session").first.map(String.init)
            #expect(fast == full, "\(header)")
        }
    }

    @Test func twoClaimsOfOneNameKeepTheLast() {
        let rendered = RenderedClaims(remoteUser: "u", headers: [("IDToken-Claim-A-B", "1"), ("IDToken-Claim-a-b", "2"), ("IDToken-Claim-C", "3")],
                                      env: [("X", "1"), ("x", "2")], claims: [("a.b", "1"), ("a_b", "2")], latin1: false)
        #expect(rendered.headers.map(\.1) == ["2", "3"])
        #expect(rendered.env.map(\.1) == ["2"])
        #expect(rendered.claims.count == 2)
    }
}
