import Crypto

/// Everything the core needs to protect one site (an Apache virtual host), checked as a whole at
/// configuration time so request handling never meets an invalid value.
package struct SiteConfig: Sendable {
    package var siteName: String
    package var provider: ProviderSource
    package var clientID: String
    package var redirectURI: RedirectURI
    package var scope: String
    package var keys: SessionKeys

    /// Audiences besides the client ID that a token's `aud` may name.
    package var trustedAudiences: Set<String> = []
    package var allowedAlgorithms = SiteSettings.standard.signatureAlgorithms
    /// Keys HS256/384/512, and nothing else.
    package var clientSecret: [UInt8]?
    /// Sent as max_age; the token's auth_time must then be at most this old.
    package var maxAge: Int64?
    package var clockSkew = SiteSettings.standard.clockSkew
    /// How long a login may take at the provider before its state cookie is refused.
    package var stateLifetime = SiteSettings.standard.stateLifetime
    /// At most this many login attempts are pending per browser; older state cookies are dropped.
    package var maximumStateCookies = SiteSettings.standard.maximumStateCookies
    /// What a login gets when its response cannot be marked as used (the store is down or full).
    package var replayCheckFailure = SiteSettings.standard.replayCheckFailure
    /// Absolute session lifetime.
    package var sessionLifetime = SiteSettings.standard.sessionLifetime
    package var cachePolicy = ProviderCache.Policy()
    package var httpTotalTimeoutMs = SiteSettings.standard.httpTimeout.totalSeconds * 1000
    package var httpConnectTimeoutMs = SiteSettings.standard.httpTimeout.connectSeconds * 1000
    package var claimDelimiter = SiteSettings.standard.claimDelimiter
    package var sessionStore = SiteSettings.standard.sessionStore
    /// Sliding: a session unused this long ends. 0: none.
    package var sessionIdleTimeout = SiteSettings.standard.sessionIdleTimeout
    /// The session is re-issued (its idle clock reset) at most this often.
    package var sessionRefreshInterval = SiteSettings.standard.sessionRefreshInterval
    package var sessionCapToTokenExpiry = false
    package var cookiePath = SiteSettings.standard.cookiePath
    package var cookieDomain: String?
    var cookieSameSite = SiteSettings.standard.cookieSameSite
    /// Claims kept in the session for the application: nil keeps all (but the protocol claims).
    package var claimsKeep: Set<String>?
    package var claimsDrop: Set<String> = []
    /// Origins besides the request's own that a logout may return to.
    package var logoutAllowedOrigins: Set<String> = []
    /// Keep the raw ID token in the session to send as id_token_hint at logout (Okta requires it; it
    /// roughly doubles a cookie session's size).
    package var logoutIDTokenHint = SiteSettings.standard.logoutIDTokenHint
    /// Who may say what the browser's scheme and host were (IDTokenTrustedProxies, IDTokenForwardedHeaders).
    package var trustedProxies = TrustedProxies()
    /// `<redirect URI>?info=json` (IDTokenSessionInfo) and the other origins allowed to read it.
    package var sessionInfo = SiteSettings.standard.sessionInfo
    package var sessionInfoOrigins: Set<String> = []
    /// REMOTE_USER from this claim instead of `sub`, optionally the first capture group of a pattern.
    package var remoteUserClaim: String?
    package var remoteUserPattern: String?
    /// The largest callback body read; a real form_post carries a token of a few KB.
    package var callbackBodyLimit = 64 * 1024
    /// httpd's LimitRequestFieldSize: the longest Cookie header line the next request may carry.
    package var limitRequestFieldSize = 8190

    package static let defaultScope = SiteSettings.standard.scope.joined(separator: " ")

    /// Store entries are bound to the provider and client they were made for, so two sites sharing a key
    /// file and a store but trusting different providers never see each other's entries.
    var storeContext: String { clientID + "\u{0}" + provider.identity }

    /// Sealed cookies are bound to that and to the site's session profile: what makes REMOTE_USER and the
    /// claims out of a token. Another site with the same key, provider and client but another mapping
    /// (or another server not configured alike) cannot take this site's session as one of its own;
    /// servers behind one load balancer, configured alike, accept each other's. Sessions sealed before
    /// the profile was bound in (version 1) still open, until they end.
    var sessionContext: SealContext { SealContext(current: storeContext + "\u{0}" + sessionProfile, legacy: storeContext) }
    /// State cookies live minutes: no legacy form is accepted.
    var stateContext: SealContext { SealContext(current: storeContext + "\u{0}" + sessionProfile) }

    /// The settings that shape a session, as a digest (the AAD stays short).
    var sessionProfile: String {
        let parts = [remoteUserClaim ?? "", remoteUserPattern ?? "", claimDelimiter,
                     claimsKeep.map { $0.sorted().joined(separator: " ") } ?? "*", claimsDrop.sorted().joined(separator: " ")]
        return Base64URL.encode(SHA256.hash(data: Array(parts.joined(separator: "\u{0}").utf8)))
    }

    /// The settings as the C module hands them over: directive name and value, lists space-joined.
    package struct Input {
        package var siteName: String
        package var defaultScheme: String
        package var defaultHost: String
        package var settings: [(String, String)]
        /// The vhost's sections with AuthType IDToken; nil when unknown (tests).
        package var protectedPaths: [String]?
        /// httpd's LimitRequestFieldSize for the server (its default when unknown).
        package var limitRequestFieldSize: Int

        package init(siteName: String, defaultScheme: String, defaultHost: String, settings: [(String, String)],
                    protectedPaths: [String]? = nil, limitRequestFieldSize: Int = 8190) {
            self.limitRequestFieldSize = limitRequestFieldSize
            self.siteName = siteName
            self.defaultScheme = defaultScheme
            self.defaultHost = defaultHost
            self.settings = settings
            self.protectedPaths = protectedPaths
        }
    }

    /// Builds a site from its settings. Returns warnings worth logging at start-up.
    package static func make(_ input: Input) throws(ConfigError) -> (SiteConfig, warnings: [String]) {
        let settings = try SiteSettings(parsing: input.settings)
        var warnings = [String]()

        let source = settings.provider
        if source.discoveryURL == nil, source.staticMetadata == nil {
            throw .invalid("IDTokenDiscoveryURL is required (or, for a provider without discovery, all of IDTokenIssuer, IDTokenAuthorizationEndpoint and IDTokenJWKSURI)")
        }
        guard let clientID = settings.clientID else { throw .missing("IDTokenClientID") }
        guard let redirectURI = settings.redirectURI else { throw .missing("IDTokenRedirectURI") }
        guard let keyFile = settings.sessionKeyFile else {
            throw .invalid("IDTokenSessionKeyFile is required: a file holding a random key that seals the session cookies; \(SessionKeys.howToCreate)")
        }
        // The callback only reaches the module inside a location it protects (mod_auth_openidc's most
        // asked-about setup mistake): say so now rather than answer the provider's POST with a 404.
        if let paths = input.protectedPaths, !paths.isEmpty,
           !paths.contains(where: { Self.path(redirectURI.path, isInside: $0) }) {
            throw .invalid("IDTokenRedirectURI \(redirectURI.path) is outside every location with AuthType IDToken (\(paths.joined(separator: ", "))): the provider's POST would never reach the module. Put it inside one.")
        }
        let (keys, keyWarning) = try SessionKeys.load(path: keyFile)
        if let keyWarning { warnings.append(keyWarning) }

        var config = SiteConfig(siteName: input.siteName, provider: source, clientID: clientID, redirectURI: redirectURI,
                                scope: normalizedScope(settings.scope.joined(separator: " ")), keys: keys)
        config.allowedAlgorithms = settings.signatureAlgorithms
        config.limitRequestFieldSize = input.limitRequestFieldSize
        config.clientSecret = settings.clientSecret.map { Array($0.utf8) }
        if let hmac = config.allowedAlgorithms.first(where: \.isHMAC) {
            guard let secret = config.clientSecret else {
                throw .invalid("IDTokenSignatureAlgorithms lists \(hmac.rawValue), which is keyed with the client secret: set IDTokenClientSecret or remove it")
            }
            guard secret.count >= 32 else {
                throw .invalid("IDTokenClientSecret is \(secret.count) bytes: HMAC-signed tokens need a secret of at least 32 bytes (RFC 7518 section 3.2)")
            }
        }
        config.trustedAudiences = settings.trustedAudiences
        config.maxAge = settings.maxAge
        config.clockSkew = settings.clockSkew
        config.stateLifetime = settings.stateLifetime
        config.maximumStateCookies = settings.maximumStateCookies
        config.replayCheckFailure = settings.replayCheckFailure
        config.sessionLifetime = settings.sessionLifetime
        config.cachePolicy.metadataLifetime = settings.metadataLifetime
        config.cachePolicy.keysLifetime = settings.keysLifetime
        config.cachePolicy.unknownKeyRefetchInterval = settings.keyRefetchInterval
        config.sessionStore = settings.sessionStore
        config.sessionIdleTimeout = settings.sessionIdleTimeout
        config.sessionRefreshInterval = settings.sessionRefreshInterval
        config.sessionCapToTokenExpiry = settings.sessionCapToTokenExpiry
        config.logoutIDTokenHint = settings.logoutIDTokenHint
        config.remoteUserClaim = settings.remoteUser?.claim
        config.remoteUserPattern = settings.remoteUser?.pattern
        config.claimDelimiter = settings.claimDelimiter
        config.cookiePath = settings.cookiePath
        config.cookieDomain = settings.cookieDomain
        config.cookieSameSite = settings.cookieSameSite
        config.claimsKeep = settings.claimsKeep
        config.claimsDrop = settings.claimsDrop
        config.logoutAllowedOrigins = settings.logoutAllowedOrigins
        config.trustedProxies = TrustedProxies(ranges: settings.trustedProxies, headers: settings.forwardedHeaders)
        config.sessionInfo = settings.sessionInfo
        config.sessionInfoOrigins = settings.sessionInfoOrigins
        config.httpTotalTimeoutMs = settings.httpTimeout.totalSeconds * 1000
        config.httpConnectTimeoutMs = settings.httpTimeout.connectSeconds * 1000
        // An active user must be re-issued well within the idle timeout, or they would time out while
        // using the site: a refresh interval too long for a short idle timeout is shortened.
        if config.sessionIdleTimeout > 0, config.sessionRefreshInterval * 2 > config.sessionIdleTimeout {
            config.sessionRefreshInterval = max(1, config.sessionIdleTimeout / 2)
        }

        // The state cookie must cross the provider's cross-site POST, so it is SameSite=None, which
        // browsers accept only with Secure: over plain http that works on loopback hosts alone.
        let callback = URLParts(redirectURI.url(scheme: input.defaultScheme, host: input.defaultHost))
        if let callback, callback.scheme == "http", !callback.isLoopback {
            warnings.append("the redirect URI \(callback.origin + callback.pathAndQuery) is plain http on a non-loopback host: browsers drop the Secure, SameSite=None state cookie there, so logins through form_post cannot complete. Serve the site over https.")
        }
        if settings.trustedProxies.isEmpty, settings.forwardedHeaders != ForwardedHeader.standard {
            warnings.append("IDTokenForwardedHeaders has no effect without IDTokenTrustedProxies: no proxy is trusted, so no forwarded header is believed")
        }
        if let everyone = settings.trustedProxies.first(where: { $0.prefixBits == 96 || $0.prefixBits == 0 }) {
            warnings.append("IDTokenTrustedProxies \(everyone) trusts every address: any client can then say which scheme and host it used. Name the proxies' own addresses")
        }
        for url in [source.discoveryURL, source.jwksURI].compactMap({ $0 }) where url.hasPrefix("http://") {
            if let u = URLParts(url), !u.isLoopback {
                warnings.append("\(url) is plain http: the provider's keys could be replaced in transit. Use https.")
            }
        }
        return (config, warnings)
    }

    /// What the start-up log says of this site beyond warnings: which proxies it trusts.
    package var notices: [String] { [trustedProxies.notice].compactMap { $0 } }

    /// Whether a URL path lies inside a <Location> path (the same segment rules as Apache's prefix match).
    static func path(_ path: String, isInside location: String) -> Bool {
        if location == "/" || path == location { return true }
        let base = location.hasSuffix("/") ? location : location + "/"
        return path.hasPrefix(base)
    }

    /// The scope always holds `openid` (without it the request is plain OAuth and no ID token comes).
    static func normalizedScope(_ scope: String?) -> String {
        let words = (scope ?? defaultScope).split(separator: " ").map(String.init)
        return (words.contains("openid") ? words : ["openid"] + words).joined(separator: " ")
    }
}

/// IDTokenReplayCheckFailure: the single-use check of a login response could not be made.
package enum ReplayCheckFailure: Sendable {
    /// 503: fail closed (the default).
    case refuse
    /// Let the login through, with a warning: a response captured and replayed meanwhile would be accepted.
    case accept
}

package enum SessionStoreKind: Sendable {
    /// The whole session, sealed, in the browser's cookie: nothing kept on the server.
    case cookie
    /// The session in the shared store (IDTokenCache); the cookie holds a random ID. Logout revokes.
    case cache
}


/// For tools inside this package (the fuzz targets in Sources/FuzzTargets), which drive the public
/// RequestDecider the way the Apache module does: a site made in code, and cookies sealed as it seals them.
extension SiteConfig {
    /// A site whose keys are given as key-file lines rather than read from a file.
    package static func inMemory(siteName: String, discoveryURL: String, clientID: String, redirectURI: String,
                                 keyLines: [String]) throws(ConfigError) -> SiteConfig {
        SiteConfig(siteName: siteName, provider: ProviderSource(discoveryURL: discoveryURL), clientID: clientID,
                   redirectURI: try RedirectURI(redirectURI), scope: normalizedScope(nil), keys: try SessionKeys(lines: keyLines))
    }

    /// Any plaintext sealed as this site seals a session or state cookie, so a fuzz target reaches the
    /// decoders behind the cipher.
    package func sealCookieValue(_ plaintext: [UInt8], purpose: SessionKeys.Purpose) -> String? {
        SealedCookie.seal(plaintext, keys: keys, purpose: purpose, context: purpose == .state ? stateContext : sessionContext)
    }
}
