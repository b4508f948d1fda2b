import Testing
@testable import IDTokenCore

/// Issue 15: trusted proxies, session info for front ends, silent login, front-channel logout, and
/// script detection by any of its signals. End to end in Tests/e2e/test_proxy.py and test_front_end.py.

// MARK: - Trusted proxies

@Suite struct TrustedProxiesTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 15)

    func site(_ settings: [(String, String)]) throws -> Site {
        let parsed = try SiteSettings(parsing: settings)
        return Site.fixture { $0.trustedProxies = TrustedProxies(ranges: parsed.trustedProxies, headers: parsed.forwardedHeaders) }
    }

    /// The login a request from `peer` with these headers starts: its redirect_uri and state cookie.
    mutating func start(_ site: Site, peer: String, host: String = "127.0.0.1:8080", headers: [String: String]) throws -> (redirectURI: String, cookie: String) {
        var req = AuthRequest(method: "GET", scheme: "http", host: host, target: "/app/page", accept: "text/html")
        req.peerAddress = peer
        req.forwarded = headers["Forwarded"]
        req.xForwardedProto = headers["X-Forwarded-Proto"]
        req.xForwardedHost = headers["X-Forwarded-Host"]
        req.xForwardedPort = headers["X-Forwarded-Port"]
        let r = try #require(RequestDecider.decide(req, site: site, now: now, rng: &rng).redirect)
        return (queryItems(r.location)["redirect_uri"] ?? "", r.setCookies.last ?? "")
    }

    static let proxyHeaders = ["X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example.org", "X-Forwarded-Port": "443"]

    @Test mutating func aTrustedProxysHeadersGiveTheBrowsersSchemeAndHost() throws {
        let site = try site([("IDTokenTrustedProxies", "10.0.0.0/8 192.0.2.7")])
        let r = try start(site, peer: "10.1.2.3", headers: Self.proxyHeaders)
        #expect(r.redirectURI == "https://app.example.org/app/callback")
        #expect(r.cookie.hasPrefix("__Host-idtoken_state_"), "over https the state cookie is __Host-: \(r.cookie)")
        // On another port, the port stays in the host.
        let other = try start(site, peer: "192.0.2.7", headers: ["X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example.org",
                                                                  "X-Forwarded-Port": "8443"])
        #expect(other.redirectURI == "https://app.example.org:8443/app/callback")
    }

    @Test(arguments: ["10.0.0.1", "192.0.2.8", "::1", "", "not an address", "2001:db8::1"])
    mutating func fromAnyoneElseTheHeadersChangeNothing(_ peer: String) throws {
        let site = try site([("IDTokenTrustedProxies", "127.0.0.1 192.0.2.7/32 2001:db9::/32")])
        let r = try start(site, peer: peer, headers: Self.proxyHeaders.merging(["Forwarded": "proto=https;host=evil.example"]) { a, _ in a })
        #expect(r.redirectURI == "http://127.0.0.1:8080/app/callback")
        #expect(r.cookie.hasPrefix("idtoken_state_"))
    }

    @Test mutating func withoutTheDirectiveNobodyIsTrusted() throws {
        let r = try start(Site.fixture(), peer: "127.0.0.1", headers: Self.proxyHeaders)
        #expect(r.redirectURI == "http://127.0.0.1:8080/app/callback")
    }

    @Test mutating func forwardedIsBelievedOnlyWhenNamedAndWalksBackThroughTrustedProxies() throws {
        // The client's own element first, then proxy A's (10.0.0.9: its client is the browser), then proxy B's
        // (10.0.0.1, httpd's peer: its client is proxy A).
        let chain = "proto=http;host=evil.example, for=198.51.100.1;proto=https;host=app.example.org, for=10.0.0.9;host=lb.internal"
        // Not named: only the X-Forwarded-* defaults are believed (none here).
        let plain = try site([("IDTokenTrustedProxies", "10.0.0.0/8")])
        #expect(try start(plain, peer: "10.0.0.1", headers: ["Forwarded": chain]).redirectURI == "http://127.0.0.1:8080/app/callback")
        // Named: B's element says its client was A, a trusted proxy, so A's element is believed; A's client is
        // the browser, so the walk stops there and the client's own element is never reached.
        let named = try site([("IDTokenTrustedProxies", "10.0.0.0/8"), ("IDTokenForwardedHeaders", "Forwarded")])
        #expect(try start(named, peer: "10.0.0.1", headers: ["Forwarded": chain]).redirectURI == "https://app.example.org/app/callback")
        // One proxy appending its element after the client's.
        let appended = "proto=http;host=evil.example, for=\"[2001:db8::17]:4711\";proto=https;host=app.example.org"
        #expect(try start(named, peer: "10.0.0.1", headers: ["Forwarded": appended]).redirectURI == "https://app.example.org/app/callback")
        // An unreadable Forwarded is ignored whole.
        #expect(try start(named, peer: "10.0.0.1", headers: ["Forwarded": "proto=https;host=\"app"]).redirectURI
                == "http://127.0.0.1:8080/app/callback")
    }

    @Test mutating func theValueTheNearestProxyWroteIsTheOneBelievedAndJunkIsIgnored() throws {
        let site = try site([("IDTokenTrustedProxies", "10.0.0.0/8")])
        // mod_proxy appends X-Forwarded-Host to what the client sent.
        #expect(try start(site, peer: "10.0.0.1", headers: ["X-Forwarded-Host": "evil.example, app.example.org"]).redirectURI
                == "http://app.example.org/app/callback")
        for junk in ["app.example.org/path", "user@app", "app example", "[::1", "app:99999", "app:", "\u{7F}x"] {
            #expect(try start(site, peer: "10.0.0.1", headers: ["X-Forwarded-Host": junk]).redirectURI == "http://127.0.0.1:8080/app/callback", "\(junk)")
        }
        #expect(try start(site, peer: "10.0.0.1", headers: ["X-Forwarded-Proto": "javascript"]).redirectURI == "http://127.0.0.1:8080/app/callback")
        #expect(try start(site, peer: "10.0.0.1", headers: ["X-Forwarded-Host": "[2001:db8::1]:8443"]).redirectURI
                == "http://[2001:db8::1]:8443/app/callback")
    }

    @Test func addressesAndRanges() throws {
        let v4 = try #require(IPRange("10.0.0.0/8"))
        #expect(v4.contains(try #require(IPAddress(peer: "10.255.0.1"))))
        #expect(v4.contains(try #require(IPAddress(peer: "::ffff:10.0.0.1"))), "an IPv4 peer on a dual-stack socket")
        #expect(!v4.contains(try #require(IPAddress(peer: "11.0.0.1"))))
        let v6 = try #require(IPRange("2001:db8::/32"))
        #expect(v6.contains(try #require(IPAddress(peer: "2001:db8:ffff::1%eth0"))))
        #expect(!v6.contains(try #require(IPAddress(peer: "2001:db9::1"))))
        #expect(try #require(IPRange("192.0.2.7")).contains(try #require(IPAddress(peer: "192.0.2.7"))))
        #expect(!(try #require(IPRange("192.0.2.7")).contains(try #require(IPAddress(peer: "192.0.2.6")))))
        #expect(IPRange("2001:db8::/32")?.description == "2001:db8::/32")
        #expect(IPRange("::ffff:10.0.0.1")?.description == "10.0.0.1")
        for good in ["127.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "::1", "::", "fe80::/10", "2001:db8:0:0:0:0:0:1", "::ffff:192.0.2.1"] {
            #expect(Directive.trustedProxies.check(good) == nil, "\(good)")
        }
        for bad in ["localhost", "10.0.0.0/33", "10.0.0/8", "010.0.0.1", "256.0.0.1", "::1/129", "1::2::3", "10.0.0.1/", "fe80::1%eth0",
                    "1:2:3:4:5:6:7:8:9", "2001:db8::g"] {
            #expect(Directive.trustedProxies.check(bad) != nil, "\(bad)")
        }
        #expect(Directive.forwardedHeaders.check("Forwarded x-forwarded-proto") == nil)
        #expect(Directive.forwardedHeaders.check("X-Real-IP") != nil)
    }

    /// IPv4 text is read strictly, whatever the digits: four parts, no leading zeros, each ≤ 255.
    @Test func ipv4IsReadStrictly() {
        for good in ["0.0.0.0", "127.0.0.1", "255.255.255.255", "10.0.0.1", "192.0.2.60", "1.22.133.4"] {
            #expect(IPAddress(peer: good)?.description == good, "\(good)")
        }
        for bad in ["", ".", "1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "01.2.3.4", "1.2.3.00", "256.1.1.1",
                    "1.2.3.1000", "1.2.3.-1", "1.2.3.a", " 1.2.3.4", "1.2.3.4 ", "999.1.1.1", "1.2.3.4/8"] {
            #expect(IPAddress(peer: bad) == nil || IPAddress(peer: bad)?.isV4 == false, "\(bad)")
        }
    }

    /// The value the nearest proxy wrote: after the last comma, spaces and tabs trimmed on the bytes,
    /// non-ASCII kept whole; nothing for an empty one. An IPv4 tail of an IPv6 address still reads.
    @Test func theLastValueOfAListAndAnIPv4TailAreReadOnTheBytes() {
        let cases: [(String?, String?)] = [
            (nil, nil), ("", nil), (" ", nil), (",", nil), ("https,", nil), ("a, \t", nil),
            ("https", "https"), (" https\t", "https"), ("http, https", "https"), ("x,y ,\t z \t", "z"),
            ("a,é h", "é h"), ("é", "é"), (" \u{301}x", "\u{301}x"), ("a,b,,c", "c"),
        ]
        for (header, expected) in cases {
            #expect(TrustedProxies.last(header).map(String.init) == expected, "\(String(describing: header))")
        }
        #expect(IPAddress(peer: "::ffff:192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress(peer: "64:ff9b::192.0.2.33")?.bytes.suffix(4) == [192, 0, 2, 33])
        #expect(IPRange("10.0.0.0/8")?.contains(IPAddress(peer: "10.200.3.4")!) == true)
        #expect(IPRange("10.0.0.0/8")?.contains(IPAddress(peer: "11.0.0.1")!) == false)
    }

    /// An IPv4 peer is checked on its word, without an IPAddress: the answer is the address's, for every
    /// kind of range (IPv4, IPv6 covering mapped IPv4, odd prefix lengths).
    @Test func anIPv4PeerIsTrustedExactlyAsItsAddressWouldBe() {
        let ranges = ["10.0.0.0/8", "192.0.2.128/25", "198.51.100.7", "0.0.0.0/0", "::/0", "::ffff:0:0/96",
                      "::ffff:10.0.0.0/104", "2001:db8::/32", "::1", "172.16.0.0/12", "1.2.3.4/31"].compactMap(IPRange.init)
        let peers = ["10.1.2.3", "11.0.0.1", "192.0.2.127", "192.0.2.128", "192.0.2.255", "198.51.100.7", "198.51.100.8",
                     "172.31.255.255", "172.32.0.0", "1.2.3.5", "1.2.3.6", "0.0.0.0", "255.255.255.255", "::1",
                     "::ffff:10.0.0.1", "2001:db8::1", "fe80::1%eth0", "1.2.3.4%eth0", "01.2.3.4", "junk", ""]
        for range in ranges {
            let proxies = TrustedProxies(ranges: [range])
            for peer in peers {
                let expected = IPAddress(peer: peer).map { range.contains($0) } ?? false
                #expect(proxies.trusts(peer: peer) == expected, "\(range) \(peer)")
            }
        }
        #expect(TrustedProxies(ranges: IPRange("192.0.2.128/25").map { [$0] } ?? []).trusts(peer: "192.0.2.200"))
        #expect(!TrustedProxies(ranges: IPRange("192.0.2.128/25").map { [$0] } ?? []).trusts(peer: "192.0.2.100"))
    }

    /// The headers believed can be changed after the proxies are made, and then they are the ones asked.
    @Test func changedHeadersAreTheOnesBelieved() {
        var proxies = TrustedProxies(ranges: IPRange("10.0.0.0/8").map { [$0] } ?? [])
        #expect(proxies.scheme(peer: "10.0.0.1", xForwardedProto: "https", forwarded: nil, scheme: "http") == "https")
        proxies.headers = [.xForwardedHost]
        #expect(proxies.scheme(peer: "10.0.0.1", xForwardedProto: "https", forwarded: nil, scheme: "http") == "http")
        proxies.headers = [.forwarded, .xForwardedProto]
        #expect(proxies.scheme(peer: "10.0.0.1", xForwardedProto: "https", forwarded: "proto=https", scheme: "http") == nil)
        #expect(proxies.scheme(peer: "10.0.0.1", xForwardedProto: "https", forwarded: nil, scheme: "http") == "https")
    }

    /// FastPass asks only for the scheme behind a trusted proxy: it must be what `apply` makes of the
    /// same request, for every peer, header set and value, or say that only `apply` can tell.
    @Test func theSchemeAloneIsWhatApplyMakesOfIt() {
        let peers: [String?] = ["10.0.0.1", "10.9.9.9", "192.0.2.8", "::ffff:10.0.0.2", "2001:db8::5", "fe80::1%eth0", "junk", "", nil]
        let protos: [String?] = [nil, "https", "http", "HTTPS", " https ", "http, https", "https,http", "ftp", "", ",", "https,"]
        let forwardeds: [String?] = [nil, "proto=https", "for=10.0.0.9;proto=http", "junk=\""]
        let headerSets: [Set<ForwardedHeader>] = [ForwardedHeader.standard, [.forwarded], [.xForwardedHost], Set(ForwardedHeader.allCases)]
        var compared = 0
        for ranges in [["10.0.0.0/8", "2001:db8::/32"], ["0.0.0.0/0"], []] {
            for headers in headerSets {
                let proxies = TrustedProxies(ranges: ranges.compactMap(IPRange.init), headers: headers)
                for peer in peers { for proto in protos { for forwarded in forwardeds { for given in ["http", "https"] {
                    var request = AuthRequest(method: "GET", scheme: given, host: "backend:8080", target: "/")
                    request.peerAddress = peer
                    request.xForwardedProto = proto
                    request.forwarded = forwarded
                    request.xForwardedHost = "app.example.org"
                    proxies.apply(to: &request)
                    if let alone = proxies.scheme(peer: peer, xForwardedProto: proto, forwarded: forwarded, scheme: given) {
                        #expect(alone == request.scheme, "\(ranges) \(headers) \(String(describing: peer)) \(String(describing: proto)) \(String(describing: forwarded))")
                        compared += 1
                    } else {
                        #expect(headers.contains(.forwarded) && forwarded != nil)
                    }
                } } } }
            }
        }
        #expect(compared > 2000)
    }

    /// Whatever a trusted proxy (here: everyone) passes on, and whatever a client puts in the new query
    /// parameters of the redirect URI, nothing traps and no one is let in.
    @Test func junkInForwardedHeadersAndTheNewQueriesNeverTraps() throws {
        let settings = try SiteSettings(parsing: [("IDTokenTrustedProxies", "0.0.0.0/0 ::/0"),
                                                  ("IDTokenForwardedHeaders", "Forwarded X-Forwarded-Proto X-Forwarded-Host X-Forwarded-Port")])
        let site = Site.fixture { $0.trustedProxies = TrustedProxies(ranges: settings.trustedProxies, headers: settings.forwardedHeaders) }
        let alphabet = Array("abc019:.[]/\"=;, \tforhostprotohttps_-%&?".utf8)
        var rng = SeededRandom(state: 1515)
        for i in 0..<2000 {
            let len = Int(rng.next() % 120)
            let junk = String(decoding: HostileInputTests.bytes(&rng, len, alphabet: i % 2 == 0 ? alphabet : nil), as: UTF8.self)
            var get = AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/x", accept: "text/html")
            get.peerAddress = i % 3 == 0 ? junk : "10.0.0.1"
            get.forwarded = junk
            get.xForwardedProto = junk
            get.xForwardedHost = junk
            get.xForwardedPort = String(junk.prefix(6))
            var info = get
            info.target = "/app/callback?info=json&extend_session=\(FormEncoding.percentEncode(junk))"
            var front = get
            front.target = "/app/callback?frontchannel_logout=\(FormEncoding.percentEncode(junk))&sid=\(FormEncoding.percentEncode(junk))&iss=\(FormEncoding.percentEncode(junk))"
            for r in [get, info, front] {
                var g = SeededRandom(state: UInt64(i))
                if case .pass(let p) = RequestDecider.decide(r, site: site, now: now, rng: &g) {
                    Issue.record("request \(i) was let in as \(p.remoteUser ?? "")")
                }
            }
            _ = IPRange(junk)
            _ = ForwardedElement.parse(junk)
        }
    }

    @Test func theStartUpLineNamesTheProxiesAndTheHeaders() throws {
        let settings = try SiteSettings(parsing: [("IDTokenTrustedProxies", "10.0.0.0/8 ::1")])
        let proxies = TrustedProxies(ranges: settings.trustedProxies, headers: settings.forwardedHeaders)
        #expect(proxies.notice == "IDTokenTrustedProxies: X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Port believed from 10.0.0.0/8 ::1 only (the connection's peer address); from any other peer they are ignored")
        #expect(TrustedProxies().notice == nil)
    }
}

// MARK: - Session info

@Suite struct SessionInfoTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 16)

    func info(_ jar: CookieJar, _ query: String = "info=json", headers: [String: String] = [:], store: (any SharedStore)? = nil) -> AuthRequest {
        AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/callback?" + query, cookie: jar.header,
                    accept: "*/*", secFetchMode: headers["Sec-Fetch-Mode"] ?? "cors", secFetchDest: "empty",
                    secFetchSite: headers["Sec-Fetch-Site"] ?? "same-origin", origin: headers["Origin"], store: store)
    }

    func json(_ r: Decision.Response) throws -> [String: JSONValue] {
        guard case .object(let o) = try JSONParser.parse(Array(r.page.utf8)) else { throw ConfigError.invalid("not an object") }
        return o
    }

    @Test mutating func theSessionsClaimsAndTimesWithoutExtendingIt() throws {
        var s = SessionTests()
        let site = Site.fixture { $0.sessionIdleTimeout = 1800 }
        let (jar, token) = try s.login(site)
        let r = try #require(RequestDecider.decide(info(jar), site: site, now: now + 600, rng: &rng).response)
        #expect(r.status == 200 && r.contentType == "application/json")
        #expect(r.setCookies.isEmpty, "reading the info does not extend the session")
        #expect(r.headers.contains { $0 == ("X-Content-Type-Options", "nosniff") })
        #expect(!r.headers.contains { $0.0 == "Access-Control-Allow-Origin" })
        let o = try json(r)
        #expect(o["remote_user"] == .string("alice-0001") && o["sub"] == .string("alice-0001"))
        guard case .object(let claims) = o["claims"], case .object(let session) = o["session"] else { Issue.record("no claims or session"); return }
        #expect(claims["email"] == .string("alice@example.org"))
        #expect(claims["groups"] == .array([.string("staff"), .string("admins")]))
        #expect(claims["nonce"] == nil && claims["exp"] == nil)
        #expect(session["created_at"] == .number(Double(now)))
        #expect(session["expires_at"] == .number(Double(now + 8 * 3600)))
        #expect(session["idle_expires_at"] == .number(Double(now + 1800)), "counted from the last refresh, not from this read")
        #expect(o["id_token"] == nil, "the ID token only with IDTokenSessionInfo WithIDToken")
        // Asked to, it extends the session as a navigation would.
        let extended = try #require(RequestDecider.decide(info(jar, "info=json&extend_session=1"), site: site, now: now + 600, rng: &rng).response)
        #expect(extended.setCookies.contains { $0.hasPrefix("idtoken_session=") })
        guard case .object(let later) = try json(extended)["session"] else { Issue.record("no session"); return }
        #expect(later["idle_expires_at"] == .number(Double(now + 600 + 1800)))

        let withToken = Site.fixture { $0.sessionInfo = .withIDToken }
        let (jar2, token2) = try s.login(withToken)
        let t = try #require(RequestDecider.decide(info(jar2), site: withToken, now: now + 1, rng: &rng).response)
        #expect(try json(t)["id_token"] == .string(token2))
        _ = token
    }

    @Test mutating func noSessionIs401InJSONAndOffIs404() throws {
        let r = try #require(RequestDecider.decide(info(CookieJar()), site: .fixture(), now: now, rng: &rng).response)
        #expect(r.status == 401 && r.contentType == "application/json")
        #expect(try json(r)["error"] == .string("login_required"))
        let off = Site.fixture { $0.sessionInfo = .off }
        #expect(RequestDecider.decide(info(CookieJar()), site: off, now: now, rng: &rng).response?.status == 404)
        #expect(RequestDecider.decide(info(CookieJar(), "info=xml"), site: .fixture(), now: now, rng: &rng).response?.status == 400)
    }

    @Test mutating func anotherOriginIsRefusedUnlessListedThenGetsCORS() throws {
        var s = SessionTests()
        let site = Site.fixture { $0.sessionInfoOrigins = ["https://spa.example.org"] }
        let (jar, _) = try s.login(site)
        for headers in [["Sec-Fetch-Site": "cross-site"], ["Sec-Fetch-Site": "same-site"], ["Origin": "https://evil.example"]] {
            let r = try #require(RequestDecider.decide(info(jar, headers: headers), site: site, now: now + 1, rng: &rng).response)
            #expect(r.status == 403 && !r.page.contains("alice"), "\(headers)")
        }
        let cors = try #require(RequestDecider.decide(info(jar, headers: ["Origin": "https://spa.example.org", "Sec-Fetch-Site": "cross-site"]),
                                                      site: site, now: now + 1, rng: &rng).response)
        #expect(cors.status == 200)
        #expect(cors.headers.contains { $0 == ("Access-Control-Allow-Origin", "https://spa.example.org") })
        #expect(cors.headers.contains { $0 == ("Access-Control-Allow-Credentials", "true") })
        #expect(cors.headers.contains { $0 == ("Vary", "Origin") })
    }
}

// MARK: - Silent login

@Suite struct SilentLoginTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 17)

    func get(_ target: String, _ jar: CookieJar, dir: DirConfig) -> AuthRequest {
        AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: target, cookie: jar.header, accept: "text/html", dir: dir)
    }

    func errorResponse(_ code: String, state: String, _ jar: CookieJar) -> AuthRequest {
        AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: jar.header,
                    contentType: "application/x-www-form-urlencoded", body: Array("error=\(code)&state=\(state)".utf8))
    }

    @Test(arguments: ["login_required", "interaction_required", "consent_required", "account_selection_required"])
    mutating func aSilentLoginTheProviderCannotCompleteFallsBackToAnInteractiveOneOnce(_ code: String) throws {
        let site = Site.fixture()
        let dir = try DirConfig(settings: [("IDTokenSilentLogin", "On")])
        var jar = CookieJar()
        let first = try #require(RequestDecider.decide(get("/app/page?x=1", jar, dir: dir), site: site, now: now, rng: &rng).redirect)
        #expect(queryItems(first.location)["prompt"] == "none")
        jar.apply(first.setCookies)
        let back = try #require(RequestDecider.decide(errorResponse(code, state: queryItems(first.location)["state"] ?? "", jar),
                                                      site: site, now: now + 1, rng: &rng).redirect)
        #expect(back.status == 303 && back.location == "/app/page?x=1")
        #expect(back.setCookies.contains { $0.hasPrefix("idtoken_state_") && $0.contains("Max-Age=0") })
        jar.apply(back.setCookies)
        #expect(jar.cookies["idtoken_interactive"] == "1")
        // The page's next login asks the user, and spends the flag.
        let second = try #require(RequestDecider.decide(get("/app/page?x=1", jar, dir: dir), site: site, now: now + 2, rng: &rng).redirect)
        #expect(queryItems(second.location)["prompt"] == nil)
        jar.apply(second.setCookies)
        #expect(jar.cookies["idtoken_interactive"] == nil)
        // The interactive login's own error is shown as it is: no loop.
        let refused = try #require(RequestDecider.decide(errorResponse(code, state: queryItems(second.location)["state"] ?? "", jar),
                                                         site: site, now: now + 3, rng: &rng).response)
        #expect(refused.status == 401)
        #expect(refused.env.contains { $0 == ("IDTOKEN_ERROR", code) })
        // Another error of a silent login is no reason to ask the user.
        var jar2 = CookieJar()
        let silent = try #require(RequestDecider.decide(get("/app/", jar2, dir: dir), site: site, now: now, rng: &rng).redirect)
        jar2.apply(silent.setCookies)
        let denied = try #require(RequestDecider.decide(errorResponse("access_denied", state: queryItems(silent.location)["state"] ?? "", jar2),
                                                        site: site, now: now + 1, rng: &rng).response)
        #expect(denied.status == 401)
    }

    @Test mutating func withTheOptionOffLoginRequiredIsACleanPage() throws {
        // An admin's own prompt=none, without IDTokenSilentLogin: the provider's answer is shown.
        let site = Site.fixture()
        let dir = try DirConfig(settings: [("IDTokenAuthRequestParams", "prompt=none")])
        var jar = CookieJar()
        let start = try #require(RequestDecider.decide(get("/app/", jar, dir: dir), site: site, now: now, rng: &rng).redirect)
        #expect(queryItems(start.location)["prompt"] == "none")
        jar.apply(start.setCookies)
        let r = try #require(RequestDecider.decide(errorResponse("login_required", state: queryItems(start.location)["state"] ?? "", jar),
                                                   site: site, now: now + 1, rng: &rng).response)
        #expect(r.status == 401 && r.contentType == nil)
        #expect(r.env.contains { $0 == ("IDTOKEN_ERROR", "login_required") })
        #expect(r.setCookies.contains { $0.hasPrefix("idtoken_state_") && $0.contains("Max-Age=0") })
        #expect(!r.setCookies.contains { $0.hasPrefix("idtoken_interactive") })
    }

    @Test mutating func aLocationsOwnPromptAndStepUpsAreNeverSilent() throws {
        let dir = try DirConfig(settings: [("IDTokenSilentLogin", "On"), ("IDTokenAuthRequestParams", "prompt=login")])
        let r = try #require(RequestDecider.decide(get("/app/", CookieJar(), dir: dir), site: .fixture(), now: now, rng: &rng).redirect)
        #expect(queryItems(r.location)["prompt"] == "login")
    }

    @Test func anyOneSignalOfAScriptMakesItOne() {
        func req(_ h: [String: String]) -> AuthRequest {
            AuthRequest(method: "GET", scheme: "http", host: "h", target: "/", accept: h["Accept"], secFetchMode: h["Sec-Fetch-Mode"],
                        secFetchDest: h["Sec-Fetch-Dest"], xRequestedWith: h["X-Requested-With"])
        }
        let navigation = ["Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "text/html,*/*"]
        #expect(req(navigation).isNavigation)
        #expect(req([:]).isNavigation)
        // Sec-Fetch-Mode: navigate used to decide alone, whatever the rest said.
        for (name, value) in [("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Dest", "iframe"), ("Sec-Fetch-Dest", "empty"),
                              ("X-Requested-With", "XMLHttpRequest"), ("Accept", "application/json")] {
            var h = navigation
            h[name] = value
            #expect(!req(h).isNavigation, "\(name): \(value)")
        }
    }
}

// MARK: - Front-channel logout

@Suite struct FrontChannelLogoutTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 18)

    func frontChannel(_ query: String, _ jar: CookieJar, store: (any SharedStore)? = nil) -> AuthRequest {
        AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/callback?frontchannel_logout=1&" + query,
                    cookie: jar.header, accept: "text/html", secFetchMode: "navigate", secFetchDest: "iframe", secFetchSite: "cross-site",
                    store: store)
    }

    static let iss = "iss=" + FormEncoding.percentEncode(FakeProvider.issuer)

    @Test mutating func cacheSessionsOfTheSidEndWithoutTheirCookie() throws {
        var s = SessionTests()
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let (jar, _) = try s.login(site, store: store)
        // The iframe's request carries no cookie (third-party): the sid index ends the session.
        let r = try #require(RequestDecider.decide(frontChannel(Self.iss + "&sid=op-session-1", CookieJar(), store: store),
                                                   site: site, now: now + 5, rng: &rng).response)
        #expect(r.status == 200 && r.contentType?.hasPrefix("text/html") == true)
        #expect(r.headers.contains { $0.0 == "Content-Security-Policy" && $0.1.hasPrefix("frame-ancestors https://op.example.org") })
        #expect(r.log?.message.contains("1 stored session(s) ended") == true)
        #expect(RequestDecider.decide(s.get("/app/", jar, store: store), site: site, now: now + 6, rng: &rng).passed == nil)
    }

    @Test mutating func aCookieSessionEndsWhenItsCookieComesAlongWithThatSid() throws {
        var s = SessionTests()
        let site = Site.fixture()
        let (jar, _) = try s.login(site)
        // Another sid: the session stays.
        let other = try #require(RequestDecider.decide(frontChannel(Self.iss + "&sid=op-session-2", jar), site: site, now: now + 5, rng: &rng).response)
        #expect(other.status == 200 && other.setCookies.isEmpty)
        // Entra ID sends the sid alone.
        let r = try #require(RequestDecider.decide(frontChannel("sid=op-session-1", jar), site: site, now: now + 5, rng: &rng).response)
        #expect(r.setCookies.contains { $0.hasPrefix("idtoken_session=;") && $0.contains("Max-Age=0") })
        #expect(r.setCookies.contains { $0.hasPrefix("idtoken_login=;") })
    }

    @Test mutating func withoutASidOrWithAnotherIssuerNothingEnds() throws {
        var s = SessionTests()
        let store = MemoryStore()
        let site = Site.fixture { $0.sessionStore = .cache }
        let (jar, _) = try s.login(site, store: store)
        for query in ["", Self.iss, "iss=https%3A%2F%2Fevil.example&sid=op-session-1", "sid=op-session-1&sid=op-session-2"] {
            let r = try #require(RequestDecider.decide(frontChannel(query, jar, store: store), site: site, now: now + 5, rng: &rng).response)
            #expect(r.status == 400 && r.setCookies.isEmpty, "\(query)")
        }
        #expect(RequestDecider.decide(s.get("/app/", jar, store: store), site: site, now: now + 6, rng: &rng).passed != nil)
    }

    @Test func entrasTenantTemplateMatchesATenantsIssuer() {
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0"
        #expect(FrontChannelLogout.issuerMatches("https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", template))
        #expect(!FrontChannelLogout.issuerMatches("https://login.microsoftonline.com/evil/x/v2.0", template))
        #expect(!FrontChannelLogout.issuerMatches("https://login.microsoftonline.com//v2.0", template))
    }
}
