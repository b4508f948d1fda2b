import FoundationEssentials
import Testing
@testable import IDTokenCore

@Suite struct CodecTests {
    /// Without the token (IDTokenLogoutIDTokenHint Off): the kept claims in a compact payload.
    @Test func sessionRoundTripAndTruncation() throws {
        let profile = Site.fixture { $0.logoutIDTokenHint = false }.sessionProfile
        let s = Session(subject: "alice", issuer: "https://op", createdAt: 1, expiresAt: 2, sid: "s-1",
                        claims: [.init("email", "a@example.org"), .init("groups", "a,b", json: "[\"a\",\"b\"]"),
                                 .init("sid", "s-1"), .init("sub", "alice"), .init("acr", "urn:mfa")].sorted { $0.name < $1.name },
                        authTime: 1, acr: "urn:mfa", promptLogin: true, tokenExpiresAt: 3)
        let bytes = try #require(s.encoded(profile))
        #expect(Session(decoding: bytes, profile: profile) == s)
        for n in 0..<bytes.count { #expect(Session(decoding: Array(bytes.prefix(n)), profile: profile) == nil) }
        #expect(Session(decoding: bytes + [0], profile: profile) == nil)
    }

    /// With the token: its parts, the claims rebuilt from its payload, the token given back as issued.
    @Test func sessionKeepsTheTokenOnceAndRebuildsTheClaims() throws {
        let site = Site.fixture()
        var f = TokenFactory.standard(now: 1_700_000_000, nonce: "n-1")
        f.claims["groups"] = .array([.string("staff"), .string("admins")])
        f.claims["acr"] = .string("urn:mfa")
        let token = f.signed()
        let payload = try #require(Base64URL.decode(String(token.split(separator: ".")[1])))
        let all = try IDTokenClaims(payload: payload)
        let s = Session(subject: all.subject ?? "", issuer: all.issuer ?? "", createdAt: 1_700_000_000, expiresAt: 1_700_003_600,
                        sid: all.all["sid"]?.stringValue, idToken: token, remoteUser: "alice",
                        claims: site.sessionProfile.claims(all.all), authTime: all.time("auth_time"), acr: "urn:mfa",
                        tokenExpiresAt: all.time("exp"))
        let bytes = try #require(s.encoded(site.sessionProfile))
        let back = try #require(Session(decoding: bytes, profile: site.sessionProfile))
        #expect(back == s)
        #expect(back.idToken == token)
        // Nothing twice: the encoding is smaller than the token alone.
        #expect(bytes.count < token.utf8.count)
        for n in stride(from: 0, to: bytes.count, by: 7) {
            #expect(Session(decoding: Array(bytes.prefix(n)), profile: site.sessionProfile) == nil)
        }
    }

    @Test func deflateRefusesWhatItDidNotMake() throws {
        let dict = Array("dictionary".utf8)
        let packed = try #require(Deflate.compress(Array(String(repeating: "abc", count: 1000).utf8), dictionary: dict))
        #expect(packed.count < 100)
        #expect(Deflate.decompress(packed[...], dictionary: dict, limit: 3000)?.count == 3000)
        // A bomb: more than the limit is refused, not allocated.
        #expect(Deflate.decompress(packed[...], dictionary: dict, limit: 2999) == nil)
        #expect(Deflate.decompress((packed + [0])[...], dictionary: dict, limit: 3000) == nil)
        #expect(Deflate.decompress(packed.dropLast(), dictionary: dict, limit: 3000) == nil)
        #expect(Deflate.decompress([0xFF, 0xFF, 0xFF][...], dictionary: dict, limit: 3000) == nil)
        #expect(Deflate.decompress([][...], dictionary: dict, limit: 3000) == nil)
    }

    /// Decompression first tries a buffer sized from the input; a stream that expands past it is read
    /// again with room up to the limit, and one that expands past the limit is still refused.
    @Test func deflateExpandsPastItsFirstGuessUpToTheLimit() throws {
        let dict = Array(#"{"iss":"","sub":""#.utf8)
        let text = Array(String(repeating: #"{"groups":["admins","users"]}"#, count: 3000).utf8)  // 90 KB
        let packed = try #require(Deflate.compress(text, dictionary: dict))
        #expect(packed.count * 16 < text.count)
        #expect(Deflate.decompress(packed[...], dictionary: dict, limit: 192 * 1024) == text)
        #expect(Deflate.decompress(packed[...], dictionary: dict, limit: text.count) == text)
        #expect(Deflate.decompress(packed[...], dictionary: dict, limit: text.count - 1) == nil)
        #expect(Deflate.decompress(packed.dropLast()[...], dictionary: dict, limit: 192 * 1024) == nil)
        // Small inputs of every window size the compressor picks open with the same dictionary.
        for size in [1, 100, 500, 1500, 3000, 7000, 20000, 40000] {
            let input = (0..<size).map { UInt8(truncatingIfNeeded: ($0 &* 7919) % 61 + 32) }
            let sealed = try #require(Deflate.compress(input, dictionary: dict))
            #expect(Deflate.decompress(sealed[...], dictionary: dict, limit: 192 * 1024) == input, "size \(size)")
        }
    }

    @Test func varintsRoundTripAndRefuseOverlongInput() {
        for v: Int64 in [0, 1, -1, 63, 64, -64, -65, 300, 1_700_000_000, -1_700_000_000, .max, .min] {
            var w = ByteWriter()
            w.varint(v)
            var r = ByteReader(w.bytes)
            #expect(r.varint() == v && r.isAtEnd)
            for n in 0..<w.bytes.count {
                var short = ByteReader(Array(w.bytes.prefix(n)))
                #expect(short.varint() == nil)
            }
        }
        var small = ByteWriter()
        small.varint(1_700_000_000)
        #expect(small.bytes.count == 5)
        var eleven = ByteReader([UInt8](repeating: 0xFF, count: 11))
        #expect(eleven.varint() == nil)
        var tenthTooBig = ByteReader([UInt8](repeating: 0xFF, count: 9) + [0x02])
        #expect(tenthTooBig.varint() == nil)
        var blob = ByteReader([0x7E]) // a length of 63 with nothing after it
        #expect(blob.varblob() == nil)
    }

    @Test func cookieBudgetArithmetic() {
        #expect(CookieBudget.cookieHeaderLength([]) == 0)
        #expect(CookieBudget.cookieHeaderLength([("a", "1")]) == 3)
        #expect(CookieBudget.cookieHeaderLength([("a", "1"), ("bb", "22")]) == 3 + 2 + 5)
        let alone = CookieBudget(fieldLimit: 8190, othersLength: 0)
        #expect(alone.sessionLimit == 8190 - 8 - 1024)
        #expect(alone.fits([("s", String(repeating: "x", count: 8190 - 8 - 1024 - 2))]))
        #expect(!alone.fits([("s", String(repeating: "x", count: 8190 - 8 - 1024 - 1))]))
        let crowded = CookieBudget(fieldLimit: 8190, othersLength: 7000)
        #expect(crowded.sessionLimit == 158)
        #expect(!crowded.fits([("s", String(repeating: "x", count: 156))]))
        #expect(crowded.fits([("s", String(repeating: "x", count: 150))]))
        #expect(CookieBudget(fieldLimit: 100, othersLength: 0).sessionLimit == 0)
    }

    @Test func loginStateRoundTripAndTruncation() {
        let l = LoginState(state: "s", nonce: "n", returnTo: "/x?y=1", createdAt: 42)
        let bytes = l.encoded()
        #expect(LoginState(decoding: bytes) == l)
        for n in 0..<bytes.count { #expect(LoginState(decoding: Array(bytes.prefix(n))) == nil) }
    }

    @Test func base64urlIsStrict() {
        #expect(Base64URL.decode("AQAB") == [1, 0, 1])
        #expect(Base64URL.decode("_-8") == [0xFF, 0xEF])
        #expect(Base64URL.decode("AQAB=") == nil)
        #expect(Base64URL.decode("AQ+B") == nil)
        #expect(Base64URL.decode("A") == nil)
        // Non-canonical: "_-9" decodes to the same bytes as "_-8" unless its unused bits are refused.
        #expect(Base64URL.decode("_-9") == nil)
        #expect(Base64URL.decode("AR") == nil)
        #expect(Base64URL.encode([0xFF, 0xEF]) == "_-8")
    }

    @Test func base64urlAgreesWithFoundation() {
        var rng = SeededRandom(state: 99)
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let ours = Base64URL.encode(bytes)
            let foundation = String(Data(bytes).base64EncodedString().filter { $0 != "=" }
                .map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
            #expect(ours == foundation)
            #expect(Base64URL.decode(ours) == bytes)
        }
    }

    @Test func formBodies() throws {
        let pairs = try #require(FormEncoding.parse(Array("a=1&b=x+y&c=%2F%3D&d".utf8)))
        #expect(pairs.map(\.0) == ["a", "b", "c", "d"])
        #expect(pairs.map(\.1) == ["1", "x y", "/=", ""])
        #expect(FormEncoding.parse(Array("a=%zz".utf8)) == nil)
        #expect(FormEncoding.parse(Array("a=%4".utf8)) == nil)
        #expect(FormEncoding.parse(Array("a=%FF".utf8)) == nil)
        #expect(FormEncoding.percentEncode("a b/é") == "a%20b%2F%C3%A9")
    }

    @Test func cookieHeader() {
        let c = CookieHeader("a=1; idtoken_session=xyz;b=\"q\" ; idtoken_session=second")
        #expect(c.values(named: "idtoken_session") == ["xyz", "second"])
        #expect(c.values(named: "b") == ["q"])
        #expect(CookieHeader(nil).pairs.isEmpty)
    }

    @Test func claimsBecomeSafeHeaderAndEnvNames() {
        #expect(ClaimsForApp.headerName("http://example.com/role") == "IDToken-Claim-http---example-com-role")
        #expect(ClaimsForApp.envName("realm_access.roles") == "IDTOKEN_CLAIM_realm_access_roles")
        #expect(ClaimsForApp.cleanValue("a\r\nInjected: 1") == "a  Injected: 1")
        let flat = ClaimsForApp.flatten(["sub": .string("x"), "nonce": .string("n"), "groups": .array([.string("a"), .string("b")]),
                                         "n": .number(3), "o": .object(["k": .bool(true)])], delimiter: ",")
        #expect(flat.map(\.name) == ["groups", "n", "o", "sub"])
        #expect(flat.map(\.value) == ["a,b", "3", "{\"k\":true}", "x"])
        #expect(flat.map(\.jsonValue) == ["[\"a\",\"b\"]", "3", "{\"k\":true}", "\"x\""])
    }
}
