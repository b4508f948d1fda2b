import Crypto

/// Everything the core needs to protect one site (an Apache virtual host), checked as a whole at
/// configuration time so request handling never meets an invalid value.
public struct SiteConfig: Sendable {
    public var siteName: String
    public var provider: ProviderSource
    public var clientID: String
    public var redirectURI: RedirectURI
    public var scope: String
    public var keys: SessionKeys

    /// Audiences besides the client ID that a token's `aud` may name.
    public var trustedAudiences: Set<String> = []
    public var allowedAlgorithms = SignatureAlgorithm.asymmetric
    /// Keys HS256/384/512, and nothing else.
    public var clientSecret: [UInt8]?
    /// Sent as max_age; the token's auth_time must then be at most this old.
    public var maxAge: Int64?
    public var clockSkew: Int64 = 60
    /// How long a login may take at the provider before its state cookie is refused.
    public var stateLifetime: Int64 = 300
    /// At most this many login attempts are pending per browser; older state cookies are dropped.
    public var maximumStateCookies = 5
    /// Absolute session lifetime.
    public var sessionLifetime: Int64 = 8 * 3600
    public var cachePolicy = ProviderCache.Policy()
    public var httpTotalTimeoutMs = 10_000
    public var httpConnectTimeoutMs = 3_000
    public var claimDelimiter = ","
    public var sessionStore = SessionStoreKind.cookie
    /// Sliding: a session unused this long ends. 0: none.
    public var sessionIdleTimeout: Int64 = 3600
    /// The session is re-issued (its idle clock reset) at most this often.
    public var sessionRefreshInterval: Int64 = 60
    public var sessionCapToTokenExpiry = false
    public var cookiePath = "/"
    public var cookieDomain: String?
    var cookieSameSite = SetCookie.SameSite.lax
    /// Claims kept in the session for the application: nil keeps all (but the protocol claims).
    public var claimsKeep: Set<String>?
    public var claimsDrop: Set<String> = []
    /// Origins besides the request's own that a logout may return to.
    public var logoutAllowedOrigins: Set<String> = []
    /// Keep the raw ID token in the session to send as id_token_hint at logout (Okta requires it; it
    /// roughly doubles a cookie session's size).
    public var logoutIDTokenHint = true
    /// REMOTE_USER from this claim instead of `sub`, optionally the first capture group of a pattern.
    public var remoteUserClaim: String?
    public var remoteUserPattern: String?
    /// The largest callback body read; a real form_post carries a token of a few KB.
    public var callbackBodyLimit = 64 * 1024

    public static let defaultScope = "openid email profile"

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
    public struct Input {
        public var siteName: String
        public var defaultScheme: String
        public var defaultHost: String
        public var settings: [(String, String)]
        /// The vhost's sections with AuthType IDToken; nil when unknown (tests).
        public var protectedPaths: [String]?

        public init(siteName: String, defaultScheme: String, defaultHost: String, settings: [(String, String)],
                    protectedPaths: [String]? = nil) {
            self.siteName = siteName
            self.defaultScheme = defaultScheme
            self.defaultHost = defaultHost
            self.settings = settings
            self.protectedPaths = protectedPaths
        }
    }

    /// Builds a site from its settings. Returns warnings worth logging at start-up.
    public static func make(_ input: Input) throws(ConfigError) -> (SiteConfig, warnings: [String]) {
        var values = [Directive: String]()
        for (name, value) in input.settings {
            guard let d = Directive(rawValue: name), !d.isPerDirectory else { throw .invalid("\(name) is not a server directive") }
            if let problem = d.check(value) { throw .invalid("\(name): \(problem)") }
            values[d] = value
        }
        var warnings = [String]()

        let source = ProviderSource(discoveryURL: values[.discoveryURL], issuer: values[.issuer],
                                    authorizationEndpoint: values[.authorizationEndpoint], jwksURI: values[.jwksURI],
                                    endSessionEndpoint: values[.endSessionEndpoint])
        if source.discoveryURL == nil, source.staticMetadata == nil {
            throw .invalid("IDTokenDiscoveryURL is required (or, for a provider without discovery, all of IDTokenIssuer, IDTokenAuthorizationEndpoint and IDTokenJWKSURI)")
        }
        guard let clientID = values[.clientID] else { throw .missing("IDTokenClientID") }
        guard let redirect = values[.redirectURI] else { throw .missing("IDTokenRedirectURI") }
        guard let keyFile = values[.sessionKeyFile] else {
            throw .invalid("IDTokenSessionKeyFile is required: a file holding a random key that seals the session cookies; \(SessionKeys.howToCreate)")
        }
        let redirectURI: RedirectURI
        do { redirectURI = try RedirectURI(redirect) } catch { throw .invalid("IDTokenRedirectURI: \(error.message)") }
        // The callback only reaches the module inside a location it protects (mod_auth_openidc's most
        // asked-about setup mistake): say so now rather than answer the provider's POST with a 404.
        if let paths = input.protectedPaths, !paths.isEmpty,
           !paths.contains(where: { Self.path(redirectURI.path, isInside: $0) }) {
            throw .invalid("IDTokenRedirectURI \(redirectURI.path) is outside every location with AuthType IDToken (\(paths.joined(separator: ", "))): the provider's POST would never reach the module. Put it inside one.")
        }
        let (keys, keyWarning) = try SessionKeys.load(path: keyFile)
        if let keyWarning { warnings.append(keyWarning) }

        var config = SiteConfig(siteName: input.siteName, provider: source, clientID: clientID, redirectURI: redirectURI,
                                scope: normalizedScope(values[.scope]), keys: keys)
        if let list = values[.signatureAlgorithms] {
            config.allowedAlgorithms = Set(list.split(separator: " ").compactMap { SignatureAlgorithm(rawValue: String($0)) })
        }
        if let secret = values[.clientSecret] { config.clientSecret = Array(secret.utf8) }
        if let hmac = config.allowedAlgorithms.first(where: \.isHMAC) {
            guard let secret = config.clientSecret else {
                throw .invalid("IDTokenSignatureAlgorithms lists \(hmac.rawValue), which is keyed with the client secret: set IDTokenClientSecret or remove it")
            }
            guard secret.count >= 32 else {
                throw .invalid("IDTokenClientSecret is \(secret.count) bytes: HMAC-signed tokens need a secret of at least 32 bytes (RFC 7518 section 3.2)")
            }
        }
        if let list = values[.trustedAudiences] { config.trustedAudiences = Set(list.split(separator: " ").map(String.init)) }
        func seconds(_ d: Directive) -> Int64? { values[d].flatMap { Int64($0) } }
        config.maxAge = seconds(.maxAge)
        if let v = seconds(.clockSkew) { config.clockSkew = v }
        if let v = seconds(.stateLifetime) { config.stateLifetime = v }
        if let v = seconds(.maxStateCookies) { config.maximumStateCookies = Int(v) }
        if let v = seconds(.sessionLifetime) { config.sessionLifetime = v }
        if let v = seconds(.metadataLifetime) { config.cachePolicy.metadataLifetime = v }
        if let v = seconds(.keysLifetime) { config.cachePolicy.keysLifetime = v }
        if let v = seconds(.keyRefetchInterval) { config.cachePolicy.unknownKeyRefetchInterval = v }
        if values[.sessionStore]?.lowercased() == "cache" { config.sessionStore = .cache }
        if let v = seconds(.sessionIdleTimeout) { config.sessionIdleTimeout = v }
        if let v = seconds(.sessionRefreshInterval) { config.sessionRefreshInterval = v }
        config.sessionCapToTokenExpiry = values[.sessionCapToTokenExpiry]?.lowercased() == "on"
        config.logoutIDTokenHint = values[.logoutIDTokenHint]?.lowercased() != "off"
        if let v = values[.remoteUserClaim] {
            let parts = v.split(separator: " ", maxSplits: 1).map(String.init)
            config.remoteUserClaim = parts.first
            config.remoteUserPattern = parts.count == 2 ? parts[1] : nil
        }
        if let v = values[.claimDelimiter] { config.claimDelimiter = v }
        if let v = values[.cookiePath] { config.cookiePath = v }
        config.cookieDomain = values[.cookieDomain]
        if let v = values[.cookieSameSite] {
            config.cookieSameSite = SetCookie.SameSite(rawValue: v.prefix(1).uppercased() + v.dropFirst().lowercased()) ?? .lax
        }
        func words(_ d: Directive) -> Set<String>? { values[d].map { Set($0.split(separator: " ").map(String.init)) } }
        config.claimsKeep = words(.claimsKeep)
        config.claimsDrop = words(.claimsDrop) ?? []
        config.logoutAllowedOrigins = Set((words(.logoutRedirectAllowed) ?? []).compactMap { URLParts($0)?.origin })
        // An active user must be re-issued well within the idle timeout, or they would time out while
        // using the site: a refresh interval too long for a short idle timeout is shortened.
        if config.sessionIdleTimeout > 0, config.sessionRefreshInterval * 2 > config.sessionIdleTimeout {
            config.sessionRefreshInterval = max(1, config.sessionIdleTimeout / 2)
        }
        if let timeouts = values[.httpTimeout]?.split(separator: " ").compactMap({ Int($0) }) {
            config.httpTotalTimeoutMs = (timeouts.first ?? 10) * 1000
            config.httpConnectTimeoutMs = min(timeouts.dropFirst().first ?? 3, timeouts.first ?? 3) * 1000
        }

        // The state cookie must cross the provider's cross-site POST, so it is SameSite=None, which
        // browsers accept only with Secure: over plain http that works on loopback hosts alone.
        let callback = URLParts(redirectURI.url(scheme: input.defaultScheme, host: input.defaultHost))
        if let callback, callback.scheme == "http", !callback.isLoopback {
            warnings.append("the redirect URI \(callback.origin + callback.pathAndQuery) is plain http on a non-loopback host: browsers drop the Secure, SameSite=None state cookie there, so logins through form_post cannot complete. Serve the site over https.")
        }
        for url in [source.discoveryURL, source.jwksURI].compactMap({ $0 }) where url.hasPrefix("http://") {
            if let u = URLParts(url), !u.isLoopback {
                warnings.append("\(url) is plain http: the provider's keys could be replaced in transit. Use https.")
            }
        }
        return (config, warnings)
    }

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

public enum SessionStoreKind: Sendable {
    /// The whole session, sealed, in the browser's cookie: nothing kept on the server.
    case cookie
    /// The session in the shared store (IDTokenCache); the cookie holds a random ID. Logout revokes.
    case cache
}

extension Directive {
    var isList: Bool {
        [.scope, .signatureAlgorithms, .trustedAudiences, .claimsKeep, .claimsDrop, .logoutRedirectAllowed,
         .authRequestParams].contains(self)
    }
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
