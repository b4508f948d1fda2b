/// What the module counts, for the metrics handler (`SetHandler idtoken-metrics`). Each case is one
/// series: a family and its labels. The C module keeps one number per series in memory that every
/// process of the server shares, adds to it what each decision reports (`MetricEvent`), and sums it over
/// the processes when scraped; it knows the series by index only, so their names, labels and meanings
/// live here (MetricsReport renders them). The label sets are fixed, so every series is known up front
/// and shown from zero.
package enum Counter: Hashable, Sendable {
    /// A request to a protected location (not the redirect URI), by what it got.
    case request(RequestOutcome)
    /// A browser sent to the provider to log in.
    case loginStarted
    /// A login response that opened a session.
    case loginCompleted
    /// A login response this browser had already completed, posted again (the Back button): sent on.
    case loginResent
    /// A login refused, by the rule that refused it.
    case loginRefused(RefusalReason)
    /// Completed logins by how long they took, from the login's start (its state) to the callback:
    /// bucket i holds those of at most `loginDurationBounds[i]` seconds and more than the bound before
    /// (not cumulative: the report adds them up); the last bucket, the longer ones.
    case loginDuration(bucket: Int)
    /// Seconds of all completed logins together (the histogram's sum).
    case loginDurationSum
    case sessionOpened
    case sessionEnded(SessionEnd)
    case providerFetch(ProviderDocument, FetchResult)
    /// A call to the shared store (IDTokenCache) and what it answered.
    case store(StoreOperation, StoreResult)
    /// A logout token posted to the redirect URI (back-channel logout), by the answer.
    case backchannelLogout(BackchannelResult)

    /// Upper bounds of the login-duration buckets, in seconds (the clock the state records is seconds).
    package static let loginDurationBounds: [Int64] = [1, 2, 5, 10, 20, 30, 60, 120, 300]

    package enum RequestOutcome: Int, CaseIterable, Sendable {
        /// Let through with a session.
        case passed
        /// Let through without one (IDTokenUnauthAction pass).
        case anonymous
        /// Sent to the provider to log in.
        case login
        /// Answered with an error (401/410 without a session, a login loop, the provider down).
        case refused

        package var label: String {
            switch self {
            case .passed: "passed"
            case .anonymous: "anonymous"
            case .login: "login"
            case .refused: "refused"
            }
        }
    }

    /// How a session ended. Sessions that give way in a full file store are the store's own count
    /// (MetricsSnapshot.Store.evicted), shown in the same family as `evicted`.
    package enum SessionEnd: Int, CaseIterable, Sendable {
        case logout
        case backchannel
        /// Its idle time or lifetime was over when its browser came back, and a new login started.
        case expired

        package var label: String {
            switch self {
            case .logout: "logout"
            case .backchannel: "backchannel"
            case .expired: "expired"
            }
        }
    }

    package enum ProviderDocument: Int, CaseIterable, Sendable {
        case discovery
        case keys

        package var label: String { self == .discovery ? "discovery" : "keys" }
    }

    package enum FetchResult: Int, CaseIterable, Sendable {
        case ok
        /// No connection, or the timeout fired.
        case unreachable
        /// An answer that was not a document (status, size, encoding).
        case badResponse
        /// A document the module cannot use (invalid, another issuer, no usable key set).
        case invalid

        package var label: String {
            switch self {
            case .ok: "ok"
            case .unreachable: "unreachable"
            case .badResponse: "bad_response"
            case .invalid: "invalid"
            }
        }

        package init(_ error: ProviderError) {
            switch error {
            case .unreachable: self = .unreachable
            case .badResponse: self = .badResponse
            case .invalidDocument, .issuerMismatch: self = .invalid
            }
        }
    }

    package enum StoreOperation: Int, CaseIterable, Sendable {
        case get, put, add, remove

        package var label: String {
            switch self {
            case .get: "get"
            case .put: "put"
            case .add: "add"
            case .remove: "remove"
            }
        }
    }

    package enum StoreResult: Int, CaseIterable, Sendable {
        case ok
        case notFound
        case exists
        /// The store failed or was full: the core failed closed.
        case error

        package var label: String {
            switch self {
            case .ok: "ok"
            case .notFound: "not_found"
            case .exists: "exists"
            case .error: "error"
            }
        }

        package init(_ status: StoreStatus) {
            switch status {
            case .ok: self = .ok
            case .notFound: self = .notFound
            case .exists: self = .exists
            case .error: self = .error
            }
        }
    }

    package enum BackchannelResult: Int, CaseIterable, Sendable {
        /// Valid: the sessions of its sid or sub ended.
        case accepted
        /// Invalid or replayed (400).
        case refused
        /// Sessions in cookies cannot be ended from the server (501).
        case unsupported
        /// The provider's keys or the store failed (503).
        case failed

        package var label: String {
            switch self {
            case .accepted: "accepted"
            case .refused: "refused"
            case .unsupported: "unsupported"
            case .failed: "failed"
            }
        }

        init(status: Int) {
            switch status {
            case 200: self = .accepted
            case 501: self = .unsupported
            case 500...: self = .failed
            default: self = .refused
            }
        }
    }

    /// Where each family starts in the index order of `all`.
    private enum Base {
        static let loginStarted = RequestOutcome.allCases.count
        static let loginCompleted = loginStarted + 1
        static let loginResent = loginCompleted + 1
        static let loginRefused = loginResent + 1
        static let loginDuration = loginRefused + RefusalReason.allCases.count
        static let loginDurationSum = loginDuration + Counter.loginDurationBounds.count + 1
        static let sessionOpened = loginDurationSum + 1
        static let sessionEnded = sessionOpened + 1
        static let providerFetch = sessionEnded + SessionEnd.allCases.count
        static let store = providerFetch + ProviderDocument.allCases.count * FetchResult.allCases.count
        static let backchannel = store + StoreOperation.allCases.count * StoreResult.allCases.count
        static let end = backchannel + BackchannelResult.allCases.count
    }

    /// How many series there are: what the module keeps per process.
    package static var count: Int { Base.end }

    /// The series' place in the module's array of numbers.
    package var index: Int {
        switch self {
        case .request(let o): return o.rawValue
        case .loginStarted: return Base.loginStarted
        case .loginCompleted: return Base.loginCompleted
        case .loginResent: return Base.loginResent
        case .loginRefused(let r): return Base.loginRefused + r.rawValue
        case .loginDuration(let bucket): return Base.loginDuration + min(max(bucket, 0), Counter.loginDurationBounds.count)
        case .loginDurationSum: return Base.loginDurationSum
        case .sessionOpened: return Base.sessionOpened
        case .sessionEnded(let e): return Base.sessionEnded + e.rawValue
        case .providerFetch(let d, let r): return Base.providerFetch + d.rawValue * FetchResult.allCases.count + r.rawValue
        case .store(let o, let r): return Base.store + o.rawValue * StoreResult.allCases.count + r.rawValue
        case .backchannelLogout(let r): return Base.backchannel + r.rawValue
        }
    }

    /// Every series, in index order.
    package static let all: [Counter] = {
        var all = RequestOutcome.allCases.map(Counter.request)
        all += [.loginStarted, .loginCompleted, .loginResent]
        all += RefusalReason.allCases.map(Counter.loginRefused)
        all += (0...loginDurationBounds.count).map { Counter.loginDuration(bucket: $0) }
        all += [.loginDurationSum, .sessionOpened]
        all += SessionEnd.allCases.map(Counter.sessionEnded)
        for d in ProviderDocument.allCases { all += FetchResult.allCases.map { Counter.providerFetch(d, $0) } }
        for o in StoreOperation.allCases { all += StoreResult.allCases.map { Counter.store(o, $0) } }
        all += BackchannelResult.allCases.map(Counter.backchannelLogout)
        return all
    }()

    /// The bucket of a login that took `seconds`.
    static func loginDurationBucket(_ seconds: Int64) -> Int {
        loginDurationBounds.firstIndex { seconds <= $0 } ?? loginDurationBounds.count
    }
}

/// Why a login was refused, as the `reason` label says it: one per rule (the ID token's rules grouped),
/// each with the `error` code the browser and an ErrorDocument see (IDTOKEN_ERROR). A provider's own
/// error codes are all `provider_error` here, so that what a provider sends cannot grow the label set.
package enum RefusalReason: Int, CaseIterable, Sendable {
    case responseInQuery, notPost, contentType, bodyTooLarge, malformedForm, missingParameter, internalCallback
    case providerError, unsolicitedProviderError
    case stateCookieMissing, stateCookieUnreadable, stateExpired, stateMismatch, replayed
    case storeFailed, sessionNotStored, sessionTooLarge
    case tokenMalformed, tokenSignature, tokenIssuer, tokenAudience, tokenTimes, tokenNonce, tokenSubject, tokenAuthentication
    case remoteUserClaim
    case providerUnreachable, providerBadResponse
    case loginLoop

    package var label: String {
        switch self {
        case .responseInQuery: "response_in_query"
        case .notPost: "not_post"
        case .contentType: "content_type"
        case .bodyTooLarge: "body_too_large"
        case .malformedForm: "malformed_form"
        case .missingParameter: "missing_parameter"
        case .internalCallback: "internal_callback"
        case .providerError: "provider_error"
        case .unsolicitedProviderError: "unsolicited_provider_error"
        case .stateCookieMissing: "state_cookie_missing"
        case .stateCookieUnreadable: "state_cookie_unreadable"
        case .stateExpired: "state_expired"
        case .stateMismatch: "state_mismatch"
        case .replayed: "replayed"
        case .storeFailed: "store_failed"
        case .sessionNotStored: "session_not_stored"
        case .sessionTooLarge: "session_too_large"
        case .tokenMalformed: "token_malformed"
        case .tokenSignature: "token_signature"
        case .tokenIssuer: "token_issuer"
        case .tokenAudience: "token_audience"
        case .tokenTimes: "token_times"
        case .tokenNonce: "token_nonce"
        case .tokenSubject: "token_subject"
        case .tokenAuthentication: "token_authentication"
        case .remoteUserClaim: "remote_user_claim"
        case .providerUnreachable: "provider_unreachable"
        case .providerBadResponse: "provider_bad_response"
        case .loginLoop: "login_loop"
        }
    }

    /// IDTOKEN_ERROR of such a refusal (`provider_error` for every code a provider sends).
    package var error: String {
        switch self {
        case .responseInQuery, .notPost, .contentType, .bodyTooLarge, .malformedForm, .missingParameter, .internalCallback:
            "invalid_request"
        case .providerError: "provider_error"
        case .unsolicitedProviderError, .stateCookieMissing, .stateCookieUnreadable, .stateExpired, .stateMismatch, .replayed:
            "invalid_state"
        case .storeFailed, .sessionNotStored: "temporarily_unavailable"
        case .sessionTooLarge: "server_error"
        case .tokenMalformed, .tokenSignature, .tokenIssuer, .tokenAudience, .tokenTimes, .tokenNonce, .tokenSubject,
             .tokenAuthentication, .remoteUserClaim:
            "invalid_token"
        case .providerUnreachable, .providerBadResponse: "provider_unavailable"
        case .loginLoop: "login_loop"
        }
    }
}

extension LoginError {
    /// The metrics' reason for this refusal; nil for what is no refused login (a logout's return URL).
    var refusalReason: RefusalReason? {
        switch self {
        case .responseInQuery: return .responseInQuery
        case .callbackNotPost: return .notPost
        case .unsupportedContentType: return .contentType
        case .bodyTooLarge: return .bodyTooLarge
        case .malformedForm, .repeatedParameter: return .malformedForm
        case .missingParameter: return .missingParameter
        case .internalCallback: return .internalCallback
        case .providerError: return .providerError
        case .unsolicitedProviderError: return .unsolicitedProviderError
        case .stateCookieMissing: return .stateCookieMissing
        case .stateCookieUnreadable: return .stateCookieUnreadable
        case .stateExpired: return .stateExpired
        case .stateMismatch: return .stateMismatch
        case .replayed: return .replayed
        case .storeFailed: return .storeFailed
        case .sessionNotStored: return .sessionNotStored
        case .sessionTooLarge: return .sessionTooLarge
        case .logoutReturnRefused: return nil
        case .remoteUserClaimMissing: return .remoteUserClaim
        case .invalidToken(let e): return e.refusalReason
        case .provider(let e):
            if case .unreachable = e { return .providerUnreachable }
            return .providerBadResponse
        case .loginLoop: return .loginLoop
        }
    }
}

extension TokenError {
    /// The ID token's rules, grouped for the metrics (the log line names the exact one).
    var refusalReason: RefusalReason {
        switch self {
        case .malformed, .tooLarge, .unsupportedType, .criticalHeader, .duplicateMember, .controlCharacterInClaimName:
            return .tokenMalformed
        case .unsupportedAlgorithm, .algorithmNotAllowed, .noMatchingKey, .unknownKeyID, .badSignature:
            return .tokenSignature
        case .issuerMismatch:
            return .tokenIssuer
        case .audienceMismatch, .untrustedAudience, .missingAuthorizedParty, .authorizedPartyMismatch:
            return .tokenAudience
        case .expired, .missingExpiry, .missingIssuedAt, .issuedInFuture, .issuedBeforeLogin, .notYetValid:
            return .tokenTimes
        case .nonceMismatch, .missingNonce:
            return .tokenNonce
        case .missingSubject, .invalidSubject:
            return .tokenSubject
        case .missingAuthTime, .authenticationTooOld, .acrNotSatisfied:
            return .tokenAuthentication
        }
    }
}

/// Per site, the times (Unix seconds) of the last fetch of each of the provider's documents that
/// succeeded and that failed, in any process: the module keeps the latest reported of each.
package enum SiteGauge: Int, CaseIterable, Sendable {
    case discoveryFetched, discoveryFailed, keysFetched, keysFailed

    static func of(_ document: Counter.ProviderDocument, ok: Bool) -> SiteGauge {
        switch document {
        case .discovery: ok ? .discoveryFetched : .discoveryFailed
        case .keys: ok ? .keysFetched : .keysFailed
        }
    }
}
