/// Every directive (server-level and per-directory) and how its value is parsed. What Apache and the
/// reference need to know of it is its `spec` (DirectiveSpec.swift); the C module's command table is
/// generated from that, and a name this enum does not know is refused when Apache reads it.
package enum Directive: String, CaseIterable, Sendable {
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
    case replayCheckFailure = "IDTokenReplayCheckFailure"
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
    case trustedProxies = "IDTokenTrustedProxies"
    case forwardedHeaders = "IDTokenForwardedHeaders"
    case claimsKeep = "IDTokenClaimsKeep"
    case claimsDrop = "IDTokenClaimsDrop"
    case logoutRedirectAllowed = "IDTokenLogoutRedirectAllowed"
    case logoutIDTokenHint = "IDTokenLogoutIDTokenHint"
    case sessionInfo = "IDTokenSessionInfo"
    case sessionInfoOrigins = "IDTokenSessionInfoOrigins"
    case remoteUserClaim = "IDTokenRemoteUserClaim"
    case claimDelimiter = "IDTokenClaimDelimiter"
    // Per-directory:
    case unauthAction = "IDTokenUnauthAction"
    case silentLogin = "IDTokenSilentLogin"
    case passClaimsAs = "IDTokenPassClaimsAs"
    case claimEncoding = "IDTokenClaimEncoding"
    case passIDToken = "IDTokenPassIDToken"
    case authRequestParams = "IDTokenAuthRequestParams"
    case authRequestFromQuery = "IDTokenAuthRequestFromQuery"

    /// A directive's value, parsed: what it does to the settings of its scope. Parsing is the check: a
    /// value that parses is valid, and what it parsed to is what the site runs with (no second reading).
    package enum Parsed {
        case site((inout SiteSettings) -> Void)
        case dir((inout DirConfig) -> Void)
    }

    /// Nil when the value is acceptable, else what is wrong with it (for the module, as Apache reads a line).
    package func check(_ value: String) -> String? {
        do throws(ConfigError) {
            _ = try parse(value)
            return nil
        } catch {
            return error.message
        }
    }

    /// List directives are parsed one word at a time (a quoted "a b" arrives from Apache as one word,
    /// and is split here); their value is the whole list.
    package func parse(_ value: String) throws(ConfigError) -> Parsed {
        if isList {
            let words = value.split(separator: " ").map(String.init)
            if words.isEmpty { throw .invalid("needs at least one value") }
            for word in words { try checkWord(word) }
            return list(words)
        }
        return try one(value)
    }

    private func fail(_ message: String) -> ConfigError { .invalid(message) }

    private func checkWord(_ value: String) throws(ConfigError) {
        switch self {
        case .clientID, .trustedAudiences:
            guard Self.isPrintable(value, max: 1024) else { throw fail("must be non-empty printable text of at most 1024 bytes") }
        case .scope:
            let ok = !value.isEmpty && value.utf8.count <= 253 && value.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" }
            guard ok else { throw fail("scope names are printable ASCII without spaces, quotes or backslashes (got '\(Masking.printable(value))')") }
        case .signatureAlgorithms:
            if value == "none" { throw fail("'none' is never accepted: an unsigned token proves nothing") }
            guard SignatureAlgorithm(rawValue: value) != nil else {
                throw fail("unknown algorithm '\(Masking.printable(value))'; known: \(SignatureAlgorithm.allCases.map(\.rawValue).joined(separator: " "))")
            }
        case .claimsKeep, .claimsDrop:
            guard Self.isPrintable(value, max: 256) else { throw fail("claim names are printable text") }
        case .logoutRedirectAllowed, .sessionInfoOrigins:
            guard let u = URLParts(value), [u.origin, u.origin + "/"].contains(value.lowercased()) else {
                throw fail("must be an origin such as https://app.example.org (scheme, host and optional port, no path)")
            }
        case .trustedProxies:
            guard IPRange(value) != nil else {
                throw fail("'\(Masking.printable(value))' is not an IP address or a CIDR range such as 10.0.0.0/8 or 2001:db8::/32 (the proxy's own address, as httpd sees the connection)")
            }
        case .forwardedHeaders:
            guard ForwardedHeader(name: value) != nil else {
                throw fail("'\(Masking.printable(value))' is not one of \(ForwardedHeader.allCases.map(\.rawValue).joined(separator: " "))")
            }
        case .authRequestFromQuery:
            guard DirConfig.passableFromQuery.contains(value) else {
                throw fail("'\(Masking.printable(value))' cannot be passed on; one of \(DirConfig.passableFromQuery.sorted().joined(separator: ", "))")
            }
        case .authRequestParams:
            guard let eq = value.firstIndex(of: "="), eq != value.startIndex else {
                throw fail("takes name=value pairs such as prompt=login (got '\(Masking.printable(value))')")
            }
            let name = String(value[..<eq])
            if DirConfig.reservedParameters.contains(name) { throw fail("\(name) is set by the module itself") }
            if name == "max_age", Self.seconds(String(value[value.index(after: eq)...]), in: 0...31_536_000) == nil {
                throw fail("max_age must be a number of seconds")
            }
            guard Self.isPrintable(value, max: 1024) else { throw fail("must be printable") }
        default:
            break
        }
    }

    private func list(_ words: [String]) -> Parsed {
        switch self {
        case .scope: return .site { $0.scope = words }
        case .signatureAlgorithms: return .site { $0.signatureAlgorithms = Set(words.compactMap(SignatureAlgorithm.init(rawValue:))) }
        case .trustedAudiences: return .site { $0.trustedAudiences = Set(words) }
        case .claimsKeep: return .site { $0.claimsKeep = Set(words) }
        case .claimsDrop: return .site { $0.claimsDrop = Set(words) }
        case .logoutRedirectAllowed: return .site { $0.logoutAllowedOrigins = Set(words.compactMap { URLParts($0)?.origin }) }
        case .sessionInfoOrigins: return .site { $0.sessionInfoOrigins = Set(words.compactMap { URLParts($0)?.origin }) }
        case .trustedProxies: return .site { $0.trustedProxies = words.compactMap(IPRange.init) }
        case .forwardedHeaders: return .site { $0.forwardedHeaders = Set(words.compactMap(ForwardedHeader.init(name:))) }
        case .authRequestParams:
            // Values are form-decoded, so a value with spaces is written acr_values=urn:a+urn:b.
            let pairs = words.compactMap { word -> (String, String)? in
                guard let eq = word.firstIndex(of: "=") else { return nil }
                let raw = word[word.index(after: eq)...]
                return (String(word[..<eq]), FormEncoding.decodeComponent(raw.utf8) ?? String(raw))
            }
            return .dir { $0.authRequestParameters = pairs }
        case .authRequestFromQuery: return .dir { $0.authRequestFromQuery = words }
        default: return .site { _ in }  // every list directive is above
        }
    }

    private func one(_ value: String) throws(ConfigError) -> Parsed {
        func url() throws(ConfigError) -> String {
            guard let u = URLParts(value), !u.pathAndQuery.contains("#") else {
                throw fail("must be an absolute http(s) URL such as https://login.example.com/... (got '\(Masking.printable(value))')")
            }
            return value
        }
        func seconds(_ range: ClosedRange<Int64>, _ message: String) throws(ConfigError) -> Int64 {
            guard let n = Self.seconds(value, in: range) else { throw fail(message) }
            return n
        }
        func flag() throws(ConfigError) -> Bool {
            switch value.lowercased() {
            case "on": return true
            case "off": return false
            default: throw fail("must be On or Off")
            }
        }
        switch self {
        case .discoveryURL: let v = try url(); return .site { $0.provider.discoveryURL = v }
        case .authorizationEndpoint: let v = try url(); return .site { $0.provider.authorizationEndpoint = v }
        case .jwksURI: let v = try url(); return .site { $0.provider.jwksURI = v }
        case .endSessionEndpoint: let v = try url(); return .site { $0.provider.endSessionEndpoint = v }
        case .issuer:
            guard URLParts(value) != nil, !value.contains("?"), !value.contains("#") else {
                throw fail("must be the provider's issuer identifier: an http(s) URL without query or fragment (got '\(Masking.printable(value))')")
            }
            return .site { $0.provider.issuer = value }
        case .clientID:
            try checkWord(value)
            return .site { $0.clientID = value }
        case .clientSecret:
            guard Self.isPrintable(value, max: 4096) else { throw fail("must be non-empty printable text") }
            return .site { $0.clientSecret = value }
        case .redirectURI:
            let uri = try RedirectURI(value)
            return .site { $0.redirectURI = uri }
        case .sessionKeyFile:
            guard !value.isEmpty else { throw fail("must name a file; \(SessionKeys.howToCreate)") }
            return .site { $0.sessionKeyFile = value }
        case .clockSkew:
            let v = try seconds(0...600, "must be a number of seconds from 0 to 600")
            return .site { $0.clockSkew = v }
        case .maxAge:
            let v = try seconds(0...31_536_000, "must be a number of seconds (the longest a user's authentication may date back)")
            return .site { $0.maxAge = v }
        case .stateLifetime:
            let v = try seconds(2...3600, "must be a number of seconds from 2 to 3600")
            return .site { $0.stateLifetime = v }
        case .maxStateCookies:
            let v = try seconds(1...20, "must be a number from 1 to 20")
            return .site { $0.maximumStateCookies = Int(v) }
        case .replayCheckFailure:
            switch value.lowercased() {
            case "refuse": return .site { $0.replayCheckFailure = .refuse }
            case "accept": return .site { $0.replayCheckFailure = .accept }
            default: throw fail("must be refuse (the login gets 503 while the store cannot mark its response as used) or accept (it is let through, with a warning in the log)")
            }
        case .metadataLifetime:
            let v = try seconds(60...604_800, "must be a number of seconds from 60 to 604800")
            return .site { $0.metadataLifetime = v }
        case .keysLifetime:
            let v = try seconds(60...604_800, "must be a number of seconds from 60 to 604800")
            return .site { $0.keysLifetime = v }
        case .keyRefetchInterval:
            let v = try seconds(1...3600, "must be a number of seconds from 1 to 3600")
            return .site { $0.keyRefetchInterval = v }
        case .sessionLifetime:
            let v = try seconds(60...31_536_000, "must be a number of seconds from 60 to 31536000")
            return .site { $0.sessionLifetime = v }
        case .sessionStore:
            switch value.lowercased() {
            case "cookie": return .site { $0.sessionStore = .cookie }
            case "cache": return .site { $0.sessionStore = .cache }
            default: throw fail("must be cookie (the session sealed in the browser's cookie) or cache (in the IDTokenCache store)")
            }
        case .sessionIdleTimeout:
            guard value == "0" || Self.seconds(value, in: 2...31_536_000) != nil, let v = Int64(value) else {
                throw fail("must be 0 (none) or a number of seconds from 2 to 31536000")
            }
            return .site { $0.sessionIdleTimeout = v }
        case .sessionRefreshInterval:
            let v = try seconds(1...86_400, "must be a number of seconds from 1 to 86400")
            return .site { $0.sessionRefreshInterval = v }
        case .sessionCapToTokenExpiry:
            let v = try flag()
            return .site { $0.sessionCapToTokenExpiry = v }
        case .logoutIDTokenHint:
            let v = try flag()
            return .site { $0.logoutIDTokenHint = v }
        case .cookiePath:
            let ok = value.hasPrefix("/") && value.utf8.count <= 256
                && value.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != ";" && $0 != "," }
            guard ok else { throw fail("must be a path starting with / of at most 256 characters, without spaces, ';' or ','") }
            return .site { $0.cookiePath = value }
        case .cookieDomain:
            let ok = !value.isEmpty && value.utf8.count <= 253 && value.unicodeScalars.allSatisfy {
                ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "." || $0 == "-"
            }
            guard ok else { throw fail("must be a domain name such as example.org") }
            return .site { $0.cookieDomain = value }
        case .cookieSameSite:
            switch value.lowercased() {
            case "lax": return .site { $0.cookieSameSite = .lax }
            case "strict": return .site { $0.cookieSameSite = .strict }
            case "none": return .site { $0.cookieSameSite = .none }
            default: throw fail("must be Lax, Strict or None")
            }
        case .remoteUserClaim:
            let parts = value.split(separator: " ", maxSplits: 1).map(String.init)
            guard let claim = parts.first, Self.isPrintable(claim, max: 256) else { throw fail("takes a claim name and optionally a regular expression") }
            let pattern = parts.count == 2 ? parts[1] : nil
            if let pattern, (try? Regex(pattern)) == nil {
                throw fail("'\(Masking.printable(pattern))' is not a valid regular expression")
            }
            // `sub` alone is the default itself: the same site, the same sessions.
            if claim == "sub", pattern == nil { return .site { $0.remoteUser = nil } }
            return .site { $0.remoteUser = RemoteUserRule(claim: claim, pattern: pattern) }
        case .claimDelimiter:
            guard Self.isPrintable(value, max: 8) else { throw fail("must be 1 to 8 printable characters") }
            return .site { $0.claimDelimiter = value }
        case .httpTimeout:
            let words = value.split(separator: " ").map(String.init)
            let numbers = words.compactMap { Self.seconds($0, in: 1...120) }
            guard (1...2).contains(words.count), numbers.count == words.count, let total = numbers.first else {
                throw fail("takes the total timeout and optionally the connect timeout, in seconds from 1 to 120")
            }
            let connect = min(numbers.count == 2 ? numbers[1] : 3, total)
            return .site { $0.httpTimeout = HTTPTimeout(totalSeconds: Int(total), connectSeconds: Int(connect)) }
        case .unauthAction:
            guard let v = DirConfig.UnauthAction(rawValue: value.lowercased()) else { throw fail("must be auth (log in), pass (optional login), 401 or 410") }
            return .dir { $0.unauthAction = v }
        case .silentLogin:
            let v = try flag()
            return .dir { $0.silentLogin = v }
        case .sessionInfo:
            guard let v = SessionInfoMode(rawValue: value.lowercased()) else {
                throw fail("must be On (the session's claims and times at <redirect URI>?info=json), Off, or WithIDToken (the ID token too)")
            }
            return .site { $0.sessionInfo = v }
        case .passClaimsAs:
            guard let v = DirConfig.PassClaimsAs(rawValue: value.lowercased()) else { throw fail("must be both, headers, environment or none") }
            return .dir { $0.passClaimsAs = v }
        case .claimEncoding:
            guard let v = DirConfig.ClaimEncoding(rawValue: value.lowercased()) else { throw fail("must be none, base64url or latin1") }
            return .dir { $0.claimEncoding = v }
        case .passIDToken:
            guard let v = DirConfig.PassIDToken(rawValue: value.lowercased()) else { throw fail("must be off, payload or serialized") }
            return .dir { $0.passIDToken = v }
        case .scope, .signatureAlgorithms, .trustedAudiences, .claimsKeep, .claimsDrop, .logoutRedirectAllowed, .authRequestParams,
             .authRequestFromQuery, .trustedProxies, .forwardedHeaders, .sessionInfoOrigins:
            return list([value])  // lists are parsed by `parse`; reached only if a list's spec changed
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
