import Crypto
import Testing
@testable import IDTokenCore

/// The rules beyond the basic checks: HMAC keyed by the client secret, trusted audiences, max_age,
/// and the issuer conventions of Entra and Google.
@Suite struct TokenRulesTests {
    static let now: Int64 = 1_800_000_000
    let keys = TestKeys.standardSet

    func expect(issuer: String = FakeProvider.issuer, secret: [UInt8]? = nil, allowed: Set<SignatureAlgorithm> = SignatureAlgorithm.asymmetric,
                trusted: Set<String> = [], maxAge: Int64? = nil) -> TokenExpectations {
        TokenExpectations(issuer: IssuerRule(issuer: issuer), clientID: "client-1", trustedAudiences: trusted, nonce: "n-0S6_WzA2Mj",
                          loginStartedAt: Self.now - 10, allowedAlgorithms: allowed, clientSecret: secret, maxAge: maxAge, clockSkew: 60)
    }

    static let secret = Array("a client secret of at least thirty-two bytes".utf8)

    func hmacToken(_ f: TokenFactory, key: [UInt8], alg: SignatureAlgorithm = .hs256) -> String {
        var g = f
        g.header["alg"] = .string(alg.rawValue)
        g.header["kid"] = nil
        let (h, p) = g.encodedParts()
        let input = Array((h + "." + p).utf8)
        let mac: [UInt8]
        switch alg {
        case .hs384: mac = Array(HMAC<SHA384>.authenticationCode(for: input, using: SymmetricKey(data: key)))
        case .hs512: mac = Array(HMAC<SHA512>.authenticationCode(for: input, using: SymmetricKey(data: key)))
        default: mac = Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: key)))
        }
        return h + "." + p + "." + Base64URL.encode(mac)
    }

    @Test(arguments: [SignatureAlgorithm.hs256, .hs384, .hs512])
    func hmacWithTheClientSecretIsAccepted(_ alg: SignatureAlgorithm) throws {
        let token = hmacToken(.standard(now: Self.now), key: Self.secret, alg: alg)
        let e = expect(secret: Self.secret, allowed: SignatureAlgorithm.asymmetric.union([alg]))
        #expect(try IDTokenValidator.validate(token, keys: keys, expect: e, now: Self.now).algorithm == alg)
    }

    @Test func hmacKeyedWithThePublicKeyIsRefused() throws {
        // The classic algorithm confusion: HS256 keyed with the provider's public RSA key bytes.
        let rsa = try #require(TestKeys.rsa)
        let token = hmacToken(.standard(now: Self.now), key: Array(rsa.publicKey.derRepresentation))
        let withSecret = expect(secret: Self.secret, allowed: SignatureAlgorithm.asymmetric.union([.hs256]))
        #expect(throws: TokenError.badSignature) { try IDTokenValidator.validate(token, keys: keys, expect: withSecret, now: Self.now) }
        let noSecret = expect(allowed: SignatureAlgorithm.asymmetric.union([.hs256]))
        #expect(throws: TokenError.algorithmNotAllowed("HS256")) { try IDTokenValidator.validate(token, keys: keys, expect: noSecret, now: Self.now) }
    }

    @Test func hmacNotInTheAllowListIsRefusedEvenWithASecret() {
        let token = hmacToken(.standard(now: Self.now), key: Self.secret)
        #expect(throws: TokenError.algorithmNotAllowed("HS256")) {
            try IDTokenValidator.validate(token, keys: keys, expect: expect(secret: Self.secret), now: Self.now)
        }
    }

    @Test func trustedExtraAudienceIsAccepted() throws {
        var f = TokenFactory.standard(now: Self.now)
        f.claims["aud"] = .array([.string("client-1"), .string("api.example")])
        f.claims["azp"] = .string("client-1")
        #expect(throws: TokenError.untrustedAudience("api.example")) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(), now: Self.now) }
        #expect(throws: Never.self) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(trusted: ["api.example"]), now: Self.now) }
        // Core §3.1.3.7 step 4: several audiences need an azp.
        f.claims["azp"] = nil
        #expect(throws: TokenError.missingAuthorizedParty) {
            try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(trusted: ["api.example"]), now: Self.now)
        }
    }

    @Test func maxAgeRequiresARecentAuthTime() {
        var f = TokenFactory.standard(now: Self.now)
        #expect(throws: TokenError.missingAuthTime) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(maxAge: 600), now: Self.now) }
        f.claims["auth_time"] = JSONValue(Self.now - 3600)
        #expect(throws: TokenError.authenticationTooOld(at: Self.now - 3600)) {
            try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(maxAge: 600), now: Self.now)
        }
        f.claims["auth_time"] = JSONValue(Self.now - 300)
        #expect(throws: Never.self) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(maxAge: 600), now: Self.now) }
    }

    @Test func acrMustBeOneOfTheRequestedValues() {
        var e = expect()
        e.acrValues = ["urn:mfa", "urn:phr"]
        var f = TokenFactory.standard(now: Self.now)
        #expect(throws: TokenError.acrNotSatisfied(got: nil)) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: e, now: Self.now) }
        f.claims["acr"] = .string("urn:password")
        #expect(throws: TokenError.acrNotSatisfied(got: "urn:password")) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: e, now: Self.now) }
        f.claims["acr"] = .string("urn:phr")
        #expect(throws: Never.self) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: e, now: Self.now) }
        // Not requested: not checked.
        #expect(throws: Never.self) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(), now: Self.now) }
    }

    @Test func entraTenantTemplateIsFilledFromTid() throws {
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0"
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad"
        var f = TokenFactory.standard(now: Self.now)
        f.claims["iss"] = .string("https://login.microsoftonline.com/\(tid)/v2.0")
        f.claims["tid"] = .string(tid)
        #expect(throws: Never.self) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(issuer: template), now: Self.now) }
        f.claims["tid"] = .string("72f988bf-86f1-41af-91ab-2d7cd011db47")
        #expect(throws: TokenError.self) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(issuer: template), now: Self.now) }
        f.claims["tid"] = .string("x/../evil")
        f.claims["iss"] = .string("https://login.microsoftonline.com/x/../evil/v2.0")
        #expect(throws: TokenError.self) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(issuer: template), now: Self.now) }
    }

    @Test func googleBareIssuerOnlyForGoogle() {
        var f = TokenFactory.standard(now: Self.now)
        f.claims["iss"] = .string("accounts.google.com")
        #expect(throws: Never.self) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(issuer: IssuerRule.google), now: Self.now) }
        f.claims["iss"] = .string("op.example.org")
        #expect(throws: TokenError.self) { try IDTokenValidator.validate(f.signed(), keys: keys, expect: expect(), now: Self.now) }
    }

    @Test func duplicateMembersAreRefused() {
        // RFC 7515 §4 / RFC 7519 §4: reject duplicates, or use a parser that keeps only the last one.
        // Either way the first "sub" must never win.
        let header = Base64URL.encode(Array(#"{"alg":"ES256","kid":"ec-256","alg":"none"}"#.utf8))
        let payload = Base64URL.encode(Array(#"{"iss":"https://op.example.org","sub":"alice","sub":"mallory","aud":"client-1","exp":1800000300,"iat":1800000000,"nonce":"n-0S6_WzA2Mj"}"#.utf8))
        let input = Array((header + "." + payload).utf8)
        let token = header + "." + payload + "." + Base64URL.encode(TokenFactory.sign(input, alg: .es256, rsaKey: nil))
        do {
            let ok = try IDTokenValidator.validate(token, keys: keys, expect: expect(), now: Self.now)
            Issue.record("a token with a duplicate alg (last: none) was accepted as \(ok.subject)")
        } catch {
            #expect(error == .unsupportedAlgorithm("none") || error == .duplicateMember("header"))
        }
        let goodHeader = Base64URL.encode(Array(#"{"alg":"ES256","kid":"ec-256"}"#.utf8))
        let input2 = Array((goodHeader + "." + payload).utf8)
        let token2 = goodHeader + "." + payload + "." + Base64URL.encode(TokenFactory.sign(input2, alg: .es256, rsaKey: nil))
        #expect(throws: TokenError.duplicateMember("payload")) { try IDTokenValidator.validate(token2, keys: keys, expect: expect(), now: Self.now) }
        // Names equal after unescaping are the same name; nesting is checked too.
        for json in [#"{"a":1,"a":2}"#, #"{"o":{"k":1,"k":2}}"#, #"{"l":[{"k":1,"k":2}]}"#] {
            #expect(throws: JSONParser.Failure.duplicate) { try JSONParser.parse(Array(json.utf8)) }
        }
        for json in [#"{"a":{"a":1},"b":[{"a":1},{"a":2}],"s":"{\"a\":1,\"a\":2}"}"#, "{}", "[]"] {
            #expect(throws: Never.self) { try JSONParser.parse(Array(json.utf8)) }
        }
        #expect(throws: JSONParser.Failure.tooDeep) {
            try JSONParser.parse(Array((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8))
        }
    }
}
