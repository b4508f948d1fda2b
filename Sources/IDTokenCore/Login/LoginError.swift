/// Why a login response was refused. Each case maps to a status, a short code the error page and
/// `ErrorDocument` can show, and a log line for the admin.
enum LoginError: Error, Equatable {
    case responseInQuery
    case callbackNotPost(method: String)
    case unsupportedContentType(String?)
    case bodyTooLarge(limit: Int)
    case malformedForm
    case repeatedParameter(String)
    case missingParameter(String)
    case providerError(code: String, description: String?)
    /// An error response whose state matches no login of this browser: its text is not shown.
    case unsolicitedProviderError
    /// A subrequest or internal redirect that led to the redirect URI.
    case internalCallback
    case stateCookieMissing
    case stateCookieUnreadable
    case stateExpired(age: Int64)
    case stateMismatch
    case replayed
    case storeFailed
    case sessionNotStored(bytes: Int)
    /// The session's cookies would exceed what the browser or httpd carries, and no shared store can
    /// take it instead.
    case sessionTooLarge(bytes: Int, limit: Int)
    case logoutReturnRefused(String)
    case remoteUserClaimMissing(String)
    case invalidToken(TokenError)
    case provider(ProviderError)
    /// The loop guard (LoginMarker): the browser completed `rounds` logins in a row and came back each
    /// time without a session; `cause` is what the request and the settings suggest.
    case loginLoop(rounds: Int, cause: String)

    var status: Int {
        switch self {
        case .callbackNotPost: return 405
        case .bodyTooLarge: return 413
        case .providerError, .invalidToken, .remoteUserClaimMissing: return 401
        case .provider(let e): return e.status
        case .storeFailed, .sessionNotStored: return 503
        case .sessionTooLarge: return 500
        case .loginLoop: return 500
        default: return 400
        }
    }

    /// Exposed to the browser and to ErrorDocument pages as IDTOKEN_ERROR.
    var code: String {
        switch self {
        case .responseInQuery, .callbackNotPost, .unsupportedContentType, .bodyTooLarge, .malformedForm,
             .repeatedParameter, .missingParameter, .logoutReturnRefused:
            return "invalid_request"
        case .providerError(let code, _):
            // The provider's own code, if it is a plain token (it is echoed into a page and a variable).
            let safe = code.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0 == "_" } && code.count <= 64
            return safe ? code : "provider_error"
        case .stateCookieMissing, .stateCookieUnreadable, .stateExpired, .stateMismatch, .replayed, .unsolicitedProviderError:
            return "invalid_state"
        case .internalCallback:
            return "invalid_request"
        case .storeFailed, .sessionNotStored:
            return "temporarily_unavailable"
        case .sessionTooLarge:
            return "server_error"
        case .invalidToken, .remoteUserClaimMissing:
            return "invalid_token"
        case .provider:
            return "provider_unavailable"
        case .loginLoop:
            return "login_loop"
        }
    }

    /// What the user is told. Short, and free of anything secret.
    var userMessage: String {
        switch self {
        case .stateCookieMissing, .stateCookieUnreadable, .stateExpired, .unsolicitedProviderError:
            return "This login attempt expired or was started in another browser. Please try again."
        case .providerError:
            return "The identity provider did not log you in."
        case .invalidToken, .stateMismatch, .replayed, .remoteUserClaimMissing:
            return "The login response could not be verified."
        case .storeFailed, .sessionNotStored:
            return "The login cannot be completed right now. Please try again in a moment."
        case .provider:
            return "The identity provider cannot be reached right now. Please try again in a moment."
        case .sessionTooLarge:
            return "Your sign-in data is too large for this site's settings. The administrator can see why in the server log."
        case .logoutReturnRefused:
            return "This logout link leads somewhere this site does not send you."
        case .loginLoop:
            return "You logged in, but your browser came back without the login several times in a row, so this site stopped sending you round in circles. Allow cookies for this site, use the address you were given (https if it has one), and try again in a minute. If it keeps happening, tell the site's administrator."
        default:
            return "The login response was not valid."
        }
    }

    var logLine: String {
        switch self {
        case .responseInQuery:
            return "authorization response in a query string refused: only response_mode=form_post is accepted"
        case .callbackNotPost(let m): return "the redirect URI accepts only the provider's POST, got \(m)"
        case .unsupportedContentType(let ct): return "callback Content-Type '\(ct ?? "none")' is not application/x-www-form-urlencoded"
        case .bodyTooLarge(let limit): return "callback body larger than \(limit) bytes"
        case .malformedForm: return "callback body is not a valid form encoding"
        case .repeatedParameter(let p): return "callback parameter '\(p)' repeated"
        case .missingParameter(let p): return "callback lacks '\(p)'"
        case .providerError(let code, let d): return "provider returned error '\(Masking.printable(code))'\(d.map { ": " + Masking.printable($0) } ?? "")"
        case .unsolicitedProviderError:
            return "a provider error response without a state of a login this browser started was refused (its text is not shown: anyone can post one)"
        case .internalCallback:
            return "an internal redirect or subrequest reached the redirect URI: refused (the callback takes only the provider's own POST)"
        case .stateCookieMissing:
            return "state cookie missing for this state: login too slow, cookie dropped by the browser (SameSite=None needs Secure: is the site on https?), or a forged/replayed response"
        case .stateCookieUnreadable: return "state cookie cannot be opened (tampered, or sealed with an unknown key)"
        case .stateExpired(let age): return "state expired: the login took \(age) s"
        case .stateMismatch: return "state mismatch between the response and the state cookie"
        case .logoutReturnRefused(let url): return "logout refused: the return URL '\(url)' is neither a path of this site nor on an origin allowed by IDTokenLogoutRedirectAllowed"
        case .remoteUserClaimMissing(let claim): return "the ID token has no usable '\(Masking.printable(claim))' claim for REMOTE_USER (IDTokenRemoteUserClaim)"
        case .replayed: return "login response replayed: its nonce was already used for a login"
        case .storeFailed: return "the shared store (IDTokenCache) failed or is full while marking the login response as used; refused (fail closed: IDTokenReplayCheckFailure refuse)"
        case .sessionNotStored(let bytes): return "the session (\(bytes) bytes sealed) could not be stored in the shared store (IDTokenCache): an entry over 64 KiB, a full store (see the store's own log line; IDTokenCache file(size), IDTokenCacheFull), or the store is down; keep fewer claims (IDTokenClaimsKeep) or set IDTokenLogoutIDTokenHint Off"
        case .sessionTooLarge(let bytes, let limit):
            return "the session needs \(bytes) bytes of cookies but the next request can carry \(limit) (LimitRequestFieldSize, less this browser's other cookies and 1 KiB kept for the application's): set IDTokenSessionStore cache, or give the server a shared store (IDTokenCache) that big sessions move to, keep fewer claims (IDTokenClaimsKeep), set IDTokenLogoutIDTokenHint Off, or raise LimitRequestFieldSize"
        case .invalidToken(let e): return "ID token refused: " + e.logDescription
        case .provider(let e): return e.logDescription
        case .loginLoop(let rounds, let cause):
            return "login loop stopped: this browser completed \(rounds) logins in a row and came back each time within \(LoginMarker.loopWindow) s without a session; \(cause). The user got a page saying so instead of another redirect to the provider"
        }
    }
}

enum Masking {
    /// Values from outside, made safe for one log line: control characters replaced, length capped.
    static func printable(_ s: String, max: Int = 200) -> String {
        if s.utf8.count <= max, s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return s } // the usual case
        let cleaned = String(String.UnicodeScalarView(s.unicodeScalars.prefix(max).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
        return s.unicodeScalars.count > max ? cleaned + "..." : cleaned
    }
}
