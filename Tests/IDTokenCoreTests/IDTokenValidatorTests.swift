import Testing
@testable import IDTokenCore

@Suite struct IDTokenValidatorTests {
    static let now: Int64 = 1_800_000_000
    static let expect = TokenExpectations(issuer: IssuerRule(issuer: FakeProvider.issuer), clientID: "client-1", nonce: "n-0S6_WzA2Mj",
                                          loginStartedAt: now - 10, allowedAlgorithms: SignatureAlgorithm.asymmetric,
                                          clockSkew: 60)
    let keys = TestKeys.standardSet

    @Test(arguments: SignatureAlgorithm.allCases.filter { !$0.isHMAC })
    func validTokenPassesForEachAlgorithm(_ alg: SignatureAlgorithm) throws {
        let token = TokenFactory.standard(now: Self.now, alg: alg, kid: TokenFactory.kid(for: alg)).signed()
        let ok = try IDTokenValidator.validate(token, keys: keys, expect: Self.expect, now: Self.now)
        #expect(ok.subject == "alice-0001")
        #expect(ok.algorithm == alg)
        #expect(ok.claims["email"] == .string("alice@example.org"))
    }

    @Test func tokenWithoutKidIsVerifiedWithTheMatchingKey() throws {
        let token = TokenFactory.standard(now: Self.now, alg: .es256, kid: nil).signed()
        #expect(try IDTokenValidator.validate(token, keys: keys, expect: Self.expect, now: Self.now).subject == "alice-0001")
    }

    @Test func skewAllowsARecentlyExpiredToken() throws {
        var f = TokenFactory.standard(now: Self.now)
        f.claims["exp"] = JSONValue(Self.now - 30)
        #expect(throws: Never.self) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: Self.expect, now: Self.now) }
    }

    @Test(arguments: NegativeTokenCase.all)
    func refused(_ c: NegativeTokenCase) {
        let token = c.token(now: Self.now)
        do {
            let ok = try IDTokenValidator.validate(token, keys: keys, expect: Self.expect, now: Self.now)
            Issue.record("\(c.name) (\(c.rule)): accepted as \(ok.subject), expected \(c.expected)")
        } catch {
            #expect(NegativeTokenCase.caseName(error) == c.expected, "\(c.name) (\(c.rule)): \(error)")
        }
    }

    @Test func thereAreEnoughCases() {
        #expect(NegativeTokenCase.all.count >= 30)
    }

    @Test func everyByteOfTheSignatureMatters() {
        let token = TokenFactory.standard(now: Self.now, alg: .es256, kid: "ec-256").signed()
        var bytes = Array(token.utf8)
        let sigStart = (bytes.lastIndex(of: UInt8(ascii: ".")) ?? 0) + 1
        for i in stride(from: sigStart, to: bytes.count - 1, by: 7) {
            let original = bytes[i]
            bytes[i] = original == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(throws: TokenError.self) {
                try IDTokenValidator.validate(String(decoding: bytes, as: UTF8.self), keys: keys, expect: Self.expect, now: Self.now)
            }
            bytes[i] = original
        }
    }

    @Test func algorithmOutsideTheAllowListIsRefused() {
        let token = TokenFactory.standard(now: Self.now, alg: .es256, kid: "ec-256").signed()
        let expect = TokenExpectations(issuer: IssuerRule(issuer: FakeProvider.issuer), clientID: "client-1", nonce: "n-0S6_WzA2Mj",
                                       loginStartedAt: Self.now, allowedAlgorithms: [.rs256], clockSkew: 60)
        #expect(throws: TokenError.algorithmNotAllowed("ES256")) { try IDTokenValidator.validate(token, keys: keys, expect: expect, now: Self.now) }
    }

    @Test func keyRestrictedToAnotherAlgorithmIsNotUsed() throws {
        guard let rsa = TestKeys.rsa else { Issue.record("no RSA key"); return }
        let set = try JWKSet(json: TestKeys.jwksJSON([TestKeys.jwk(rsa: rsa.publicKey, kid: "rsa-1", alg: "PS256")]))
        let token = TokenFactory.standard(now: Self.now, alg: .rs256).signed()
        #expect(throws: TokenError.noMatchingKey(kid: "rsa-1")) { try IDTokenValidator.validate(token, keys: set, expect: Self.expect, now: Self.now) }
    }
}
