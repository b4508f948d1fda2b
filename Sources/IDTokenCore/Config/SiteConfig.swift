/// Everything the core needs to protect one site (an Apache virtual host), checked as a whole at
/// configuration time so request handling never meets an invalid value.
public struct SiteConfig: Sendable {
    public var siteName: String
    public var discoveryURL: String
    public var clientID: String
    public var redirectURI: RedirectURI
    public var scope: String
    public var keys: SessionKeys

    /// How long a login may take at the provider before its state cookie is refused.
    public var stateLifetime: Int64 = 300
    /// At most this many login attempts are pending per browser; older state cookies are dropped.
    public var maximumStateCookies = 5
    /// Absolute session lifetime.
    public var sessionLifetime: Int64 = 8 * 3600
    public var clockSkew: Int64 = 60
    public var allowedAlgorithms = SignatureAlgorithm.asymmetric
    public var claimDelimiter = ","
    /// The largest callback body read; a real form_post carries a token of a few KB.
    public var callbackBodyLimit = 64 * 1024

    /// Sealed cookies are bound to the provider and client they were made for, so two sites sharing a
    /// key file but trusting different providers never accept each other's users.
    var cookieContext: String { clientID + "\u{0}" + discoveryURL }

    public static let defaultScope = "openid email profile"

    /// The settings as the C module hands them over. Nil fields are directives that were not set.
    public struct Input {
        public var siteName: String
        public var defaultScheme: String
        public var defaultHost: String
        public var discoveryURL: String?
        public var clientID: String?
        public var redirectURI: String?
        public var sessionKeyFile: String?
        public var scope: String?

        public init(siteName: String, defaultScheme: String, defaultHost: String, discoveryURL: String?,
                    clientID: String?, redirectURI: String?, sessionKeyFile: String?, scope: String?) {
            self.siteName = siteName
            self.defaultScheme = defaultScheme
            self.defaultHost = defaultHost
            self.discoveryURL = discoveryURL
            self.clientID = clientID
            self.redirectURI = redirectURI
            self.sessionKeyFile = sessionKeyFile
            self.scope = scope
        }
    }

    /// Builds a site from its settings. Returns warnings worth logging at start-up.
    public static func make(_ input: Input) throws(ConfigError) -> (SiteConfig, warnings: [String]) {
        var warnings = [String]()
        guard let discovery = input.discoveryURL else { throw .missing("IDTokenDiscoveryURL") }
        guard let clientID = input.clientID else { throw .missing("IDTokenClientID") }
        guard let redirect = input.redirectURI else { throw .missing("IDTokenRedirectURI") }
        guard let keyFile = input.sessionKeyFile else {
            throw .invalid("IDTokenSessionKeyFile is required: a file holding a random key that seals the session cookies; \(SessionKeys.howToCreate)")
        }
        for (setting, value) in [(Setting.discoveryURL, discovery), (.clientID, clientID), (.redirectURI, redirect)] {
            if let problem = setting.check(value) { throw .invalid("\(setting.directive): \(problem)") }
        }
        let redirectURI: RedirectURI
        do { redirectURI = try RedirectURI(redirect) } catch { throw .invalid("IDTokenRedirectURI: \(error.message)") }
        let (keys, keyWarning) = try SessionKeys.load(path: keyFile)
        if let keyWarning { warnings.append(keyWarning) }

        // The state cookie must cross the provider's cross-site POST, so it is SameSite=None, which
        // browsers accept only with Secure: over plain http that works on loopback hosts alone.
        let callback = URLParts(redirectURI.url(scheme: input.defaultScheme, host: input.defaultHost))
        if let callback, callback.scheme == "http", !callback.isLoopback {
            warnings.append("the redirect URI \(callback.origin + callback.pathAndQuery) is plain http on a non-loopback host: browsers drop the Secure, SameSite=None state cookie there, so logins through form_post cannot complete. Serve the site over https.")
        }
        if discovery.hasPrefix("http://"), let u = URLParts(discovery), !u.isLoopback {
            warnings.append("IDTokenDiscoveryURL is plain http: the provider's keys could be replaced in transit. Use https.")
        }
        let config = SiteConfig(siteName: input.siteName, discoveryURL: discovery, clientID: clientID,
                                redirectURI: redirectURI, scope: Self.normalizedScope(input.scope), keys: keys)
        return (config, warnings)
    }

    /// The scope always holds `openid` (without it the request is plain OAuth and no ID token comes).
    static func normalizedScope(_ scope: String?) -> String {
        let words = (scope ?? defaultScope).split(separator: " ").map(String.init)
        return (words.contains("openid") ? words : ["openid"] + words).joined(separator: " ")
    }
}
