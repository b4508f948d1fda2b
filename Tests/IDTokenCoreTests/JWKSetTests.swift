import Testing
@testable import IDTokenCore

@Suite struct JWKSetTests {
    @Test func unusableKeysAreSkippedNotFatal() throws {
        let json = Array("""
            {"keys":[
              {"kty":"RSA","n":"AQAB","e":"AQAB","kid":"tiny"},
              {"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"short"},
              {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
              {"kty":"EC","crv":"P-256","use":"enc","x":"x","y":"y","kid":"enc"},
              \(String(decoding: TestKeys.jwksJSON(TestKeys.standardJWKs).dropFirst(9).dropLast(2), as: UTF8.self))
            ]}
            """.utf8)
        let set = try JWKSet(json: json)
        #expect(set.keys.count == TestKeys.standardJWKs.count)
        #expect(set.skipped.count == 4)
    }

    @Test func notAKeySetIsAnError() {
        #expect(throws: ProviderError.self) { try JWKSet(json: Array("[1,2]".utf8)) }
        #expect(throws: ProviderError.self) { try JWKSet(json: Array("{\"keys\":3}".utf8)) }
    }

    @Test func candidatesFollowKidAndAlgorithm() {
        let set = TestKeys.standardSet
        #expect(set.candidates(kid: "ec-256", algorithm: .es256).count == 1)
        #expect(set.candidates(kid: "ec-256", algorithm: .es384).isEmpty)
        #expect(set.candidates(kid: nil, algorithm: .rs256).count == 1)
        #expect(set.candidates(kid: nil, algorithm: .edDSA).count == 1)
    }
}
