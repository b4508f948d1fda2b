/// Why an ID token was refused. Each case names one rule, so the log line says exactly what failed;
/// none carries the token itself.
package enum TokenError: Error, Equatable, Sendable {
    case malformed(String)
    case tooLarge(bytes: Int)
    case unsupportedAlgorithm(String)
    case algorithmNotAllowed(String)
    case unsupportedType(String)
    case criticalHeader
    case noMatchingKey(kid: String?)
    case unknownKeyID(String)
    case badSignature
    case issuerMismatch(expected: String, got: String?)
    case audienceMismatch(got: [String])
    case untrustedAudience(String)
    case missingAuthorizedParty
    case authorizedPartyMismatch(String)
    case expired(at: Int64)
    case missingExpiry
    case missingIssuedAt
    case issuedInFuture(at: Int64)
    case issuedBeforeLogin(at: Int64)
    case notYetValid(until: Int64)
    case missingSubject
    case invalidSubject
    case nonceMismatch
    case missingNonce
    case missingAuthTime
    case authenticationTooOld(at: Int64)
    case duplicateMember(String)
    case acrNotSatisfied(got: String?)
    case controlCharacterInClaimName(String)

    /// One line for the error log. Every value quoted came from the token, so it is made printable and
    /// short first: a token must not be able to forge log lines.
    package var logDescription: String {
        let m = { (s: String) in Masking.printable(s, max: 100) }
        switch self {
        case .malformed(let why): return "malformed ID token: \(why)"
        case .tooLarge(let n): return "ID token too large (\(n) bytes)"
        case .unsupportedAlgorithm(let alg): return "unsupported signature algorithm '\(m(alg))'"
        case .algorithmNotAllowed(let alg): return "signature algorithm '\(m(alg))' is not allowed"
        case .unsupportedType(let typ): return "unexpected token type (typ) '\(m(typ))'"
        case .criticalHeader: return "token has critical header extensions (crit) that are not understood"
        case .noMatchingKey(let kid): return "no key in the provider's JWKS matches the token's algorithm (kid \(kid.map(m) ?? "absent"))"
        case .unknownKeyID(let kid): return "unknown kid '\(m(kid))' (not in the provider's JWKS, refetched at most once per refetch interval)"
        case .badSignature: return "signature verification failed"
        case .issuerMismatch(let exp, let got): return "issuer mismatch: expected '\(exp)', got '\(got.map(m) ?? "none")'"
        case .audienceMismatch(let got): return "audience mismatch: the client ID is not in aud \(m(got.joined(separator: " ")))"
        case .untrustedAudience(let aud): return "untrusted extra audience '\(m(aud))' in aud"
        case .missingAuthorizedParty: return "several audiences but no azp claim"
        case .authorizedPartyMismatch(let azp): return "azp '\(m(azp))' is not the client ID"
        case .expired(let at): return "token expired at \(at)"
        case .missingExpiry: return "token has no exp claim"
        case .missingIssuedAt: return "token has no iat claim"
        case .issuedInFuture(let at): return "token issued in the future (iat \(at))"
        case .issuedBeforeLogin(let at): return "token issued (iat \(at)) before this login started"
        case .notYetValid(let until): return "token not valid before \(until) (nbf)"
        case .missingSubject: return "token has no sub claim"
        case .invalidSubject: return "sub claim is not a string of 1 to 255 characters without control characters"
        case .nonceMismatch: return "nonce mismatch: the token was not issued for this login"
        case .missingNonce: return "token has no nonce claim"
        case .missingAuthTime: return "token has no auth_time although max_age was requested"
        case .authenticationTooOld(let at): return "the user authenticated at \(at), longer ago than max_age allows"
        case .acrNotSatisfied(let got): return "acr '\(got.map(m) ?? "none")' is not one of the acr_values requested"
        case .duplicateMember(let where_): return "duplicate member in the token's \(where_) JSON"
        case .controlCharacterInClaimName(let name): return "a claim name holds a control character ('\(name)')"
        }
    }
}
