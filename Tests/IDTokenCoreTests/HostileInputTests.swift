import Testing
@testable import IDTokenCore

/// Random and mangled input through the whole decision: every request gets an answer, none traps
/// (a trap would kill the Apache child), and none opens a session. Not a fuzzer, a cheap floor.
@Suite struct HostileInputTests {
    let now: Int64 = 1_800_000_000

    static func bytes(_ rng: inout SeededRandom, _ n: Int, alphabet: [UInt8]? = nil) -> [UInt8] {
        (0..<n).map { _ in
            let r = UInt8(truncatingIfNeeded: rng.next())
            return alphabet.map { $0[Int(r) % $0.count] } ?? r
        }
    }

    static let tokenish = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=;%+&\" \t{}[]:,".utf8)

    @Test func randomRequestsNeverTrapNorLogIn() {
        var rng = SeededRandom(state: 2026)
        let site = Site.fixture()
        for i in 0..<3000 {
            let len = Int(rng.next() % 600)
            let junk = String(decoding: Self.bytes(&rng, len, alphabet: i % 2 == 0 ? Self.tokenish : nil), as: UTF8.self)
            let cookie = "idtoken_session=\(junk); idtoken_state_\(junk.prefix(12))=\(junk); idtoken_session_0=\(junk)"
            let body = Array(("state=\(junk.prefix(40))&id_token=\(junk)&logout_token=\(junk)").utf8.prefix(4000))
            let requests = [
                AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/\(junk.prefix(50))", cookie: cookie),
                AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: cookie,
                            contentType: "application/x-www-form-urlencoded", body: Self.bytes(&rng, len)),
                AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: cookie,
                            contentType: "application/x-www-form-urlencoded", body: body),
                AuthRequest(method: "GET", scheme: "https", host: junk, target: "/app/callback?logout=\(junk.prefix(80))", cookie: cookie),
            ]
            for r in requests {
                var g = SeededRandom(state: UInt64(i))
                switch RequestDecider.decide(r, site: site, now: now, rng: &g) {
                case .pass(let p): #expect(p.remoteUser == nil, "request \(i) was let in as \(p.remoteUser ?? "")")
                case .redirect(let red): #expect(!red.setCookies.contains { $0.hasPrefix("idtoken_session=A") })
                default: break
                }
            }
        }
    }

    @Test func mangledTokensNeverTrap() {
        var rng = SeededRandom(state: 7)
        let good = TokenFactory.standard(now: now).signed()
        let expect = TokenExpectations(issuer: IssuerRule(issuer: FakeProvider.issuer), clientID: "client-1", nonce: "n-0S6_WzA2Mj",
                                       loginStartedAt: now - 10, allowedAlgorithms: SignatureAlgorithm.asymmetric, clockSkew: 60)
        var accepted = 0
        for _ in 0..<3000 {
            var b = Array(good.utf8)
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 3 {
                case 0: b[at] = Self.tokenish[Int(rng.next() % UInt64(Self.tokenish.count))]
                case 1: b.remove(at: at)
                default: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                }
            }
            let mangled = String(decoding: b, as: UTF8.self)
            if (try? IDTokenValidator.validate(mangled, keys: TestKeys.standardSet, expect: expect, now: now)) != nil, mangled != good {
                accepted += 1
                Issue.record("accepted a mangled token:\n\(mangled)\noriginal:\n\(good)")
            }
        }
        #expect(accepted == 0)
    }

    @Test func deeplyNestedJSONIsRefusedNotRecursed() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let payload = Base64URL.encode(Array(deep.utf8))
        let header = Base64URL.encode(Array(#"{"alg":"RS256","kid":"rsa-1"}"#.utf8))
        #expect(throws: TokenError.self) {
            try IDTokenClaims(payload: Array(deep.utf8))
        }
        #expect(throws: TokenError.self) {
            try CompactJWS(header + "." + payload + ".AA")
        }
    }
}
