/// Every directive (server-level and per-directory), with its syntax check. The C module's command
/// table lists the same names; a name this enum does not know is refused when Apache reads it, and
/// DocsDriftTests keeps the table and docs/configuration.md in step.
public enum Directive: String, CaseIterable, Sendable {
    case discoveryURL = "IDTokenDiscoveryURL"
    case issuer = "IDTokenIssuer"
    case authorizationEndpoint = "IDTokenAuthorizationEndpoint"
    case jwksURI = "IDTokenJWKSURI"
    case endSessionEndpoint = "IDTokenEndSessionEndpoint"
    case clientID = "IDTokenClientID"
    case clientSecret = "IDTokenClientSecret"
    case redirectURI = "IDTokenRedirectURI"
    case sessionKeyFile = "IDTokenSessionKeyFile"
    case scope = "IDTokenScope"
    case signatureAlgorithms = "IDTokenSignatureAlgorithms"
    case trustedAudiences = "IDTokenTrustedAudiences"
    case clockSkew = "IDTokenClockSkew"
    case maxAge = "IDTokenMaxAge"
    case stateLifetime = "IDTokenStateLifetime"
    case maxStateCookies = "IDTokenMaxStateCookies"
    case metadataLifetime = "IDTokenMetadataLifetime"
    case keysLifetime = "IDTokenKeysLifetime"
    case keyRefetchInterval = "IDTokenKeyRefetchInterval"
    case sessionLifetime = "IDTokenSessionLifetime"
    case httpTimeout = "IDTokenHTTPTimeout"
    case sessionStore = "IDTokenSessionStore"
    case sessionIdleTimeout = "IDTokenSessionIdleTimeout"
    case sessionRefreshInterval = "IDTokenSessionRefreshInterval"
    case sessionCapToTokenExpiry = "IDTokenSessionCapToTokenExpiry"
    case cookiePath = "IDTokenCookiePath"
    case cookieDomain = "IDTokenCookieDomain"
    case cookieSameSite = "IDTokenCookieSameSite"
    case claimsKeep = "IDTokenClaimsKeep"
    case claimsDrop = "IDTokenClaimsDrop"
    case logoutRedirectAllowed = "IDTokenLogoutRedirectAllowed"
    case logoutIDTokenHint = "IDTokenLogoutIDTokenHint"
    case remoteUserClaim = "IDTokenRemoteUserClaim"
    case claimDelimiter = "IDTokenClaimDelimiter"
    // Per-directory:
    case unauthAction = "IDTokenUnauthAction"
    case passClaimsAs = "IDTokenPassClaimsAs"
    case claimEncoding = "IDTokenClaimEncoding"
    case passIDToken = "IDTokenPassIDToken"
    case authRequestParams = "IDTokenAuthRequestParams"

    /// Directives of <Location> and <Directory> blocks; the others belong to the server or a vhost.
    public var isPerDirectory: Bool {
        [.unauthAction, .passClaimsAs, .claimEncoding, .passIDToken, .authRequestParams].contains(self)
    }

    /// Nil when the value is acceptable, else what is wrong with it. List directives are checked one
    /// word at a time (a quoted "a b" arrives from Apache as one word, and is split here).
    public func check(_ value: String) -> String? {
        if isList {
            let words = value.split(separator: " ")
            if words.isEmpty { return "needs at least one value" }
            if words.count > 1 { return words.lazy.compactMap { self.checkWord(String($0)) }.first }
        }
        return checkWord(value)
    }

    private func checkWord(_ value: String) -> String? {
        switch self {
        case .discoveryURL, .authorizationEndpoint, .jwksURI, .endSessionEndpoint:
            guard let u = URLParts(value), !u.pathAndQuery.contains("#") else {
                return "must be an absolute http(s) URL such as https://login.example.com/... (got '\(Masking.printable(value))')"
            }
            return nil
        case .issuer:
            guard URLParts(value) != nil, !value.contains("?"), !value.contains("#") else {
                return "must be the provider's issuer identifier: an http(s) URL without query or fragment (got '\(Masking.printable(value))')"
            }
            return nil
        case .clientID, .trustedAudiences:
            return Self.isPrintable(value, max: 1024) ? nil : "must be non-empty printable text of at most 1024 bytes"
        case .clientSecret:
            return Self.isPrintable(value, max: 4096) ? nil : "must be non-empty printable text"
        case .redirectURI:
            do {
                _ = try RedirectURI(value)
                return nil
            } catch {
                return error.message
            }
        case .sessionKeyFile:
            return value.isEmpty ? "must name a file; \(SessionKeys.howToCreate)" : nil
        case .scope:
            let ok = !value.isEmpty && value.utf8.count <= 253 && value.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" }
            return ok ? nil : "scope names are printable ASCII without spaces, quotes or backslashes (got '\(Masking.printable(value))')"
        case .signatureAlgorithms:
            if value == "none" { return "'none' is never accepted: an unsigned token proves nothing" }
            if SignatureAlgorithm(rawValue: value) != nil { return nil }
            return "unknown algorithm '\(Masking.printable(value))'; known: \(SignatureAlgorithm.allCases.map(\.rawValue).joined(separator: " "))"
        case .clockSkew:
            return Self.seconds(value, in: 0...600) == nil ? "must be a number of seconds from 0 to 600" : nil
        case .maxAge:
            return Self.seconds(value, in: 0...31_536_000) == nil ? "must be a number of seconds (the longest a user's authentication may date back)" : nil
        case .stateLifetime:
            return Self.seconds(value, in: 2...3600) == nil ? "must be a number of seconds from 2 to 3600" : nil
        case .maxStateCookies:
            return Self.seconds(value, in: 1...20) == nil ? "must be a number from 1 to 20" : nil
        case .metadataLifetime, .keysLifetime:
            return Self.seconds(value, in: 60...604_800) == nil ? "must be a number of seconds from 60 to 604800" : nil
        case .keyRefetchInterval:
            return Self.seconds(value, in: 1...3600) == nil ? "must be a number of seconds from 1 to 3600" : nil
        case .sessionLifetime:
            return Self.seconds(value, in: 60...31_536_000) == nil ? "must be a number of seconds from 60 to 31536000" : nil
        case .sessionStore:
            return ["cookie", "cache"].contains(value.lowercased()) ? nil : "must be cookie (the session sealed in the browser's cookie) or cache (in the IDTokenCache store)"
        case .sessionIdleTimeout:
            return value == "0" || Self.seconds(value, in: 2...31_536_000) != nil ? nil : "must be 0 (none) or a number of seconds from 2 to 31536000"
        case .sessionRefreshInterval:
            return Self.seconds(value, in: 1...86_400) == nil ? "must be a number of seconds from 1 to 86400" : nil
        case .sessionCapToTokenExpiry, .logoutIDTokenHint:
            return ["on", "off"].contains(value.lowercased()) ? nil : "must be On or Off"
        case .cookiePath:
            let ok = value.hasPrefix("/") && value.utf8.count <= 256
                && value.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != ";" && $0 != "," }
            return ok ? nil : "must be a path starting with / of at most 256 characters, without spaces, ';' or ','"
        case .cookieDomain:
            let ok = !value.isEmpty && value.utf8.count <= 253 && value.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || $0 == "." || $0 == "-" || ($0 >= "0" && $0 <= "9") }
            return ok ? nil : "must be a domain name such as example.org"
        case .cookieSameSite:
            return ["lax", "strict", "none"].contains(value.lowercased()) ? nil : "must be Lax, Strict or None"
        case .claimsKeep, .claimsDrop:
            return Self.isPrintable(value, max: 256) ? nil : "claim names are printable text"
        case .logoutRedirectAllowed:
            guard let u = URLParts(value), [u.origin, u.origin + "/"].contains(value.lowercased()) else {
                return "must be an origin such as https://app.example.org (scheme, host and optional port, no path)"
            }
            return nil
        case .remoteUserClaim:
            let parts = value.split(separator: " ", maxSplits: 1)
            guard let claim = parts.first, Self.isPrintable(String(claim), max: 256) else { return "takes a claim name and optionally a regular expression" }
            if parts.count == 2 {
                guard let regex = try? Regex(String(parts[1])) else { return "'\(Masking.printable(String(parts[1])))' is not a valid regular expression" }
                _ = regex
            }
            return nil
        case .claimDelimiter:
            return !value.isEmpty && value.utf8.count <= 8 && Self.isPrintable(value, max: 8) ? nil : "must be 1 to 8 printable characters"
        case .unauthAction:
            return DirConfig.UnauthAction(rawValue: value.lowercased()) == nil ? "must be auth (log in), pass (optional login), 401 or 410" : nil
        case .passClaimsAs:
            return DirConfig.PassClaimsAs(rawValue: value.lowercased()) == nil ? "must be both, headers, environment or none" : nil
        case .claimEncoding:
            return DirConfig.ClaimEncoding(rawValue: value.lowercased()) == nil ? "must be none, base64url or latin1" : nil
        case .passIDToken:
            return DirConfig.PassIDToken(rawValue: value.lowercased()) == nil ? "must be off, payload or serialized" : nil
        case .authRequestParams:
            guard let eq = value.firstIndex(of: "="), eq != value.startIndex else {
                return "takes name=value pairs such as prompt=login (got '\(Masking.printable(value))')"
            }
            let name = String(value[..<eq])
            if DirConfig.reservedParameters.contains(name) { return "\(name) is set by the module itself" }
            if name == "max_age", Self.seconds(String(value[value.index(after: eq)...]), in: 0...31_536_000) == nil {
                return "max_age must be a number of seconds"
            }
            return Self.isPrintable(value, max: 1024) ? nil : "must be printable"
        case .httpTimeout:
            let words = value.split(separator: " ")
            let ok = (1...2).contains(words.count) && words.allSatisfy { Self.seconds(String($0), in: 1...120) != nil }
            return ok ? nil : "takes the total timeout and optionally the connect timeout, in seconds from 1 to 120"
        }
    }

    static func seconds(_ s: String, in range: ClosedRange<Int64>) -> Int64? {
        guard !s.isEmpty, s.utf8.count <= 12, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int64(s), range.contains(n) else { return nil }
        return n
    }

    static func isPrintable(_ s: String, max: Int) -> Bool {
        !s.isEmpty && s.utf8.count <= max && s.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F }
    }
}
