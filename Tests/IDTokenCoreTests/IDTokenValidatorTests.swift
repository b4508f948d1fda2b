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

    /// One refused token: how it is made, and the rule that must refuse it.
    struct NegativeCase: CustomTestStringConvertible, Sendable {
        let name: String
        let expected: TokenError
        let make: @Sendable (inout TokenFactory) -> Void
        var token: (@Sendable (TokenFactory) -> String)? = nil
        var testDescription: String { name }
    }

    static let negativeCases: [NegativeCase] = [
        .init(name: "wrong issuer", expected: .issuerMismatch(expected: FakeProvider.issuer, got: "https://evil.example")) {
            $0.claims["iss"] = .string("https://evil.example")
        },
        .init(name: "issuer missing", expected: .issuerMismatch(expected: FakeProvider.issuer, got: nil)) { $0.claims["iss"] = nil },
        .init(name: "issuer with a trailing slash added", expected: .issuerMismatch(expected: FakeProvider.issuer, got: FakeProvider.issuer + "/")) {
            $0.claims["iss"] = .string(FakeProvider.issuer + "/")
        },
        .init(name: "aud not a string or array of strings", expected: .audienceMismatch(got: [])) { $0.claims["aud"] = .number(1) },
        .init(name: "wrong audience", expected: .audienceMismatch(got: ["other-client"])) { $0.claims["aud"] = .string("other-client") },
        .init(name: "audience missing", expected: .audienceMismatch(got: [])) { $0.claims["aud"] = nil },
        .init(name: "untrusted extra audience", expected: .untrustedAudience("other")) {
            $0.claims["aud"] = .array([.string("client-1"), .string("other")])
            $0.claims["azp"] = .string("client-1")
        },
        .init(name: "azp of another client", expected: .authorizedPartyMismatch("other")) { $0.claims["azp"] = .string("other") },
        .init(name: "expired", expected: .expired(at: now - 61)) { $0.claims["exp"] = JSONValue(now - 61) },
        .init(name: "exp missing", expected: .missingExpiry) { $0.claims["exp"] = nil },
        .init(name: "exp not a number", expected: .missingExpiry) { $0.claims["exp"] = .string("tomorrow") },
        .init(name: "iat missing", expected: .missingIssuedAt) { $0.claims["iat"] = nil },
        .init(name: "iat in the future", expected: .issuedInFuture(at: now + 120)) { $0.claims["iat"] = JSONValue(now + 120) },
        .init(name: "iat before the login", expected: .issuedBeforeLogin(at: now - 3600)) { $0.claims["iat"] = JSONValue(now - 3600) },
        .init(name: "nbf in the future", expected: .notYetValid(until: now + 600)) { $0.claims["nbf"] = JSONValue(now + 600) },
        .init(name: "wrong nonce", expected: .nonceMismatch) { $0.claims["nonce"] = .string("other-nonce") },
        .init(name: "nonce missing", expected: .missingNonce) { $0.claims["nonce"] = nil },
        .init(name: "sub missing", expected: .missingSubject) { $0.claims["sub"] = nil },
        .init(name: "sub empty", expected: .invalidSubject) { $0.claims["sub"] = .string("") },
        .init(name: "sub too long", expected: .invalidSubject) { $0.claims["sub"] = .string(String(repeating: "a", count: 256)) },
        .init(name: "sub a number", expected: .invalidSubject) { $0.claims["sub"] = .number(42) },
        .init(name: "alg none", expected: .unsupportedAlgorithm("none"), make: { $0.header["alg"] = .string("none") },
              token: { f in let (h, p) = f.encodedParts(); return h + "." + p + "." }),
        .init(name: "alg HS256 without a client secret", expected: .algorithmNotAllowed("HS256")) { $0.header["alg"] = .string("HS256") },
        .init(name: "alg RS1 (unknown)", expected: .unsupportedAlgorithm("RS1")) { $0.header["alg"] = .string("RS1") },
        .init(name: "key embedded in the header (jwk) is never used", expected: .unknownKeyID("attacker")) {
            $0.header["kid"] = .string("attacker")
            $0.header["jwk"] = .object(["kty": .string("EC"), "crv": .string("P-256"), "x": .string("AA"), "y": .string("AA")])
            $0.header["jku"] = .string("https://evil.example/jwks")
        },
        .init(name: "alg missing", expected: .malformed("header has no alg")) { $0.header["alg"] = nil },
        .init(name: "typ of a logout token", expected: .unsupportedType("logout+jwt")) { $0.header["typ"] = .string("logout+jwt") },
        .init(name: "crit header", expected: .criticalHeader) { $0.header["crit"] = .array([.string("exp")]) },
        .init(name: "unknown kid", expected: .unknownKeyID("nope")) { $0.header["kid"] = .string("nope") },
        .init(name: "kid of a key of another type", expected: .noMatchingKey(kid: "ec-256")) { $0.header["kid"] = .string("ec-256") },
        .init(name: "signed by another RSA key", expected: .badSignature, make: { _ in },
              token: { $0.signed(rsaKey: TestKeys.rsaOther) }),
        .init(name: "payload changed after signing", expected: .badSignature, make: { _ in }, token: { f in
            var g = f
            g.claims["sub"] = .string("mallory")
            let parts = f.signed().split(separator: ".")
            return g.encodedParts().0 + "." + g.encodedParts().1 + "." + String(parts.last ?? "")
        }),
        .init(name: "RS256 token relabelled PS256", expected: .badSignature, make: { _ in }, token: { f in
            var g = f
            g.header["alg"] = .string("PS256")
            let sig = f.signed().split(separator: ".").last ?? ""
            return g.encodedParts().0 + "." + g.encodedParts().1 + "." + sig
        }),
        .init(name: "two parts", expected: .malformed("not three dot-separated parts"), make: { _ in },
              token: { f in f.encodedParts().0 + "." + f.encodedParts().1 }),
        .init(name: "five parts (JWE)", expected: .malformed("encrypted tokens (JWE) are not accepted"), make: { _ in },
              token: { _ in "a.b.c.d.e" }),
        .init(name: "header not base64url", expected: .malformed("header is not base64url"), make: { _ in },
              token: { f in "e30=." + f.encodedParts().1 + ".AA" }),
        .init(name: "header not JSON", expected: .malformed("header is not a JSON object"), make: { _ in },
              token: { f in Base64URL.encode(Array("nope".utf8)) + "." + f.encodedParts().1 + ".AA" }),
        .init(name: "oversized token", expected: .tooLarge(bytes: 40_003), make: { _ in },
              token: { _ in String(repeating: "a", count: 40_001) + ".." }),
    ]

    @Test(arguments: negativeCases)
    func refused(_ c: NegativeCase) {
        var f = TokenFactory.standard(now: Self.now)
        c.make(&f)
        let token = c.token?(f) ?? f.signed()
        #expect(throws: c.expected) { try IDTokenValidator.validate(token, keys: keys, expect: Self.expect, now: Self.now) }
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
