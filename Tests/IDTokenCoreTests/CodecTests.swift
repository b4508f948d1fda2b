import FoundationEssentials
import Testing
@testable import IDTokenCore

@Suite struct CodecTests {
    @Test func sessionRoundTripAndTruncation() throws {
        let s = Session(subject: "alice", issuer: "https://op", createdAt: 1, expiresAt: 2,
                        claims: [.init("email", "a@example.org"), .init("groups", "a,b", json: "[\"a\",\"b\"]")])
        let bytes = s.encoded()
        #expect(Session(decoding: bytes) == s)
        for n in 0..<bytes.count { #expect(Session(decoding: Array(bytes.prefix(n))) == nil) }
        #expect(Session(decoding: bytes + [0]) == nil)
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
