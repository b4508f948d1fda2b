/// The server directives of one site, parsed: one field per directive, holding its typed value, or its
/// default when the directive is not set. The defaults live here and nowhere else: SiteConfig starts
/// from them, and a test shows that setting each documented default (`DirectiveSpec.defaultValue`)
/// gives the same settings as setting nothing.
public struct SiteSettings: Equatable, Sendable {
    public var provider = ProviderSource()
    public var clientID: String?
    public var clientSecret: String?
    public var redirectURI: RedirectURI?
    public var sessionKeyFile: String?
    public var scope = ["openid", "email", "profile"]
    public var signatureAlgorithms = SignatureAlgorithm.asymmetric
    public var trustedAudiences: Set<String> = []
    public var clockSkew: Int64 = 60
    public var maxAge: Int64?
    public var stateLifetime: Int64 = 300
    public var maximumStateCookies = 5
    public var metadataLifetime: Int64 = 24 * 3600
    public var keysLifetime: Int64 = 3600
    public var keyRefetchInterval: Int64 = 30
    public var sessionLifetime: Int64 = 8 * 3600
    public var httpTimeout = HTTPTimeout(totalSeconds: 10, connectSeconds: 3)
    public var sessionStore = SessionStoreKind.cookie
    public var sessionIdleTimeout: Int64 = 3600
    public var sessionRefreshInterval: Int64 = 60
    public var sessionCapToTokenExpiry = false
    public var cookiePath = "/"
    public var cookieDomain: String?
    var cookieSameSite = SetCookie.SameSite.lax
    public var claimsKeep: Set<String>?
    public var claimsDrop: Set<String> = []
    public var logoutAllowedOrigins: Set<String> = []
    public var logoutIDTokenHint = true
    /// Nil: REMOTE_USER is `sub`.
    public var remoteUser: RemoteUserRule?
    public var claimDelimiter = ","

    public init() {}

    /// The defaults, for what SiteConfig starts from.
    public static let standard = SiteSettings()

    /// Parses a site's settings (directive name, value); the last value of a directive wins.
    public init(parsing settings: [(String, String)]) throws(ConfigError) {
        for (name, value) in settings {
            guard let d = Directive(rawValue: name), !d.isPerDirectory else { throw .invalid("\(name) is not a server directive") }
            let parsed: Directive.Parsed
            do throws(ConfigError) { parsed = try d.parse(value) } catch { throw .invalid("\(name): \(error.message)") }
            guard case .site(let apply) = parsed else { throw .invalid("\(name) is not a server directive") }
            apply(&self)
        }
    }
}

public struct HTTPTimeout: Equatable, Sendable {
    public var totalSeconds: Int
    public var connectSeconds: Int
}

/// IDTokenRemoteUserClaim: the claim, and optionally a pattern whose first group is the user name.
public struct RemoteUserRule: Equatable, Sendable {
    public var claim: String
    public var pattern: String?
}
