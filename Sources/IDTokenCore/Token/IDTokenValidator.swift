/// What a valid ID token must say, for one login (OpenID Connect Core §3.2.2.11 and §3.1.3.7).
struct TokenExpectations {
    let issuer: IssuerRule
    let clientID: String
    /// Audiences besides the client ID that may appear in `aud` (Core §3.1.3.7 step 3).
    var trustedAudiences: Set<String> = []
    let nonce: String
    /// When this login's authorization request was made: a token cannot have been issued for it before.
    let loginStartedAt: Int64
    let allowedAlgorithms: Set<SignatureAlgorithm>
    /// The client secret, the only key HS256/384/512 are ever checked with. Nil: no HMAC at all.
    var clientSecret: [UInt8]? = nil
    /// When max_age was requested: `auth_time` must be present and recent enough (Core §3.1.3.7 step 13).
    var maxAge: Int64? = nil
    /// When acr_values was requested: the token's `acr` must be one of them (Core §3.1.3.7 step 12).
    var acrValues: [String] = []
    let clockSkew: Int64
}

/// A token that passed every check.
struct ValidatedIDToken {
    let subject: String
    let issuer: String
    let expiresAt: Int64
    let claims: [String: JSONValue]
    let keyID: String?
    let algorithm: SignatureAlgorithm
    /// `auth_time`, when the token has a usable one.
    var authTime: Int64? = nil
}

/// Checks an ID token against the provider's keys and this login's expectations. Pure: the keys and
/// the time are given, so a test controls both.
enum IDTokenValidator {
    /// Bounds the work a token without `kid` can cause when the set holds several candidate keys.
    static let maximumKeysTried = 4

    /// Parses and checks the header. Separate from `validate` so the caller can refetch keys when the
    /// `kid` is unknown, before the signature is checked.
    /// RFC 8725 §3.11: an ID token is a plain JWT; other types (logout+jwt, at+jwt) must not pass as one.
    static let idTokenTypes: Set<String> = ["jwt", "application/jwt"]

    static func parse(_ token: String, allowed: Set<SignatureAlgorithm>,
                      types: Set<String> = idTokenTypes) throws(TokenError) -> (CompactJWS, SignatureAlgorithm) {
        let jws = try CompactJWS(token)
        guard let algName = jws.header.alg else { throw .malformed("header has no alg") }
        guard let alg = SignatureAlgorithm(rawValue: algName) else { throw .unsupportedAlgorithm(algName) }
        guard allowed.contains(alg) else { throw .algorithmNotAllowed(algName) }
        if let typ = jws.header.typ, !types.contains(typ.lowercased()) {
            throw .unsupportedType(typ)
        }
        // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
        if jws.header.crit != nil { throw .criticalHeader }
        return (jws, alg)
    }

    static func validate(_ token: String, keys: JWKSet, expect: TokenExpectations, now: Int64) throws(TokenError) -> ValidatedIDToken {
        let (jws, alg) = try parse(token, allowed: expect.allowedAlgorithms)
        return try validate(jws, alg: alg, keys: keys, expect: expect, now: now)
    }

    /// For a token already parsed (the caller needed its kid to pick the key set).
    static func validate(_ jws: CompactJWS, alg: SignatureAlgorithm, keys: JWKSet, expect: TokenExpectations,
                         now: Int64) throws(TokenError) -> ValidatedIDToken {
        try verifySignature(jws, alg: alg, keys: keys, secret: expect.clientSecret)
        let claims = try IDTokenClaims(payload: jws.payload)
        let checked = try checkClaims(claims, expect: expect, now: now)
        return ValidatedIDToken(subject: checked.subject, issuer: claims.issuer ?? "", expiresAt: checked.exp,
                                claims: claims.all, keyID: jws.header.kid, algorithm: alg, authTime: claims.time("auth_time"))
    }

    /// Runs `check` (which verifies the signature) with the provider's keys for this token. A token
    /// without `kid` whose signature no cached key verifies gets one more try with a refetched set, as a
    /// token with an unknown kid gets a refetch before its first (the provider may have rotated its key,
    /// and nothing else in such a token says so); the refetch is rate-limited with the unknown-kid ones.
    /// Throws TokenError or ProviderError.
    static func withProviderKeys<T>(_ jws: CompactJWS, alg: SignatureAlgorithm, provider: ProviderCache, now: Int64,
                                    _ check: (JWKSet) throws(TokenError) -> T) throws -> T {
        let (keys, generation) = try provider.keysAndGeneration(now: now, kid: jws.header.kid)
        do {
            return try check(keys)
        } catch {
            guard jws.header.kid == nil, !alg.isHMAC, error == .badSignature || error == .noMatchingKey(kid: nil),
                  let fresh = provider.keysAfterFailedKidless(now: now, generation: generation) else { throw error }
            return try check(fresh)
        }
    }

    static func verifySignature(_ jws: CompactJWS, alg: SignatureAlgorithm, keys: JWKSet, secret: [UInt8]?) throws(TokenError) {
        if alg.isHMAC {
            guard let secret else { throw .algorithmNotAllowed(alg.rawValue) }
            guard ClientSecretMAC.verify(jws.signature, over: jws.signingInput, secret: secret, alg: alg) else { throw .badSignature }
            return
        }
        let candidates = keys.candidates(kid: jws.header.kid, algorithm: alg)
        guard !candidates.isEmpty else {
            if let kid = jws.header.kid, !keys.contains(kid: kid) { throw .unknownKeyID(kid) }
            throw .noMatchingKey(kid: jws.header.kid)
        }
        for key in candidates.prefix(maximumKeysTried) where key.verify(jws.signature, over: jws.signingInput, with: alg) {
            return
        }
        throw .badSignature
    }

    static func checkClaims(_ c: IDTokenClaims, expect: TokenExpectations, now: Int64) throws(TokenError) -> (subject: String, exp: Int64) {
        try checkIssuerAndAudience(c, expect: expect)
        // Claim names become header and variable names and cross the C boundary: `groups\u0000x` must not
        // read as `groups` anywhere. Replacing the character could merge two claims, so the token is refused.
        if let bad = c.all.keys.first(where: { $0.utf8.contains { $0 < 0x20 || $0 == 0x7F } }) {
            throw .controlCharacterInClaimName(Masking.printable(bad, max: 40))
        }
        let exp = try checkTimes(c, expect: expect, now: now)
        if let maxAge = expect.maxAge {
            guard let authTime = c.time("auth_time") else { throw .missingAuthTime }
            guard now - authTime <= maxAge + expect.clockSkew else { throw .authenticationTooOld(at: authTime) }
        }
        if !expect.acrValues.isEmpty {
            guard let acr = c.all["acr"]?.stringValue, expect.acrValues.contains(acr) else {
                throw .acrNotSatisfied(got: c.all["acr"]?.stringValue)
            }
        }
        guard let nonce = c.nonce else { throw .missingNonce }
        guard constantTimeEquals(nonce, expect.nonce) else { throw .nonceMismatch }
        guard c.all["sub"] != nil else { throw .missingSubject }
        // Core §2: sub is a string of at most 255 ASCII characters. It becomes REMOTE_USER as it is, which
        // admins copy into headers for proxied applications (`RequestHeader set X-User expr=%{REMOTE_USER}`):
        // a control character (CR, LF, NUL...) there would split or inject a header. Replacing them, as
        // claims are, could make two users one, so such a token is refused.
        guard let sub = c.subject, !sub.isEmpty, sub.utf8.count <= 255,
              !sub.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { throw .invalidSubject }
        return (sub, exp)
    }

    /// Core §3.1.3.7 steps 2–5 (also used for logout tokens).
    static func checkIssuerAndAudience(_ c: IDTokenClaims, expect: TokenExpectations) throws(TokenError) {
        guard expect.issuer.accepts(c.issuer, claims: c.all) else { throw .issuerMismatch(expected: expect.issuer.issuer, got: c.issuer) }
        guard let aud = c.audiences, aud.contains(expect.clientID) else {
            throw .audienceMismatch(got: c.audiences ?? [])
        }
        if let other = aud.first(where: { $0 != expect.clientID && !expect.trustedAudiences.contains($0) }) {
            throw .untrustedAudience(other)
        }
        if let azp = c.authorizedParty {
            guard azp == expect.clientID else { throw .authorizedPartyMismatch(azp) }
        } else if aud.count > 1 {
            throw .missingAuthorizedParty
        }
    }

    /// exp, iat and nbf (Core §3.1.3.7 steps 9–10, RFC 7519 §4.1.5). Returns exp.
    static func checkTimes(_ c: IDTokenClaims, expect: TokenExpectations, now: Int64) throws(TokenError) -> Int64 {
        guard let exp = c.time("exp") else { throw .missingExpiry }
        guard now < exp + expect.clockSkew else { throw .expired(at: exp) }
        guard let iat = c.time("iat") else { throw .missingIssuedAt }
        guard iat <= now + expect.clockSkew else { throw .issuedInFuture(at: iat) }
        guard iat >= expect.loginStartedAt - expect.clockSkew else { throw .issuedBeforeLogin(at: iat) }
        if c.all["nbf"] != nil {
            guard let nbf = c.time("nbf") else { throw .malformed("nbf is not a number") }
            guard now + expect.clockSkew >= nbf else { throw .notYetValid(until: nbf) }
        }
        return exp
    }
}
