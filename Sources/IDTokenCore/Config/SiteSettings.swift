/// The server directives of one site, parsed: one field per directive, holding its typed value, or its
/// default when the directive is not set. The defaults live here and nowhere else: SiteConfig starts
/// from them, and a test shows that setting each documented default (`DirectiveSpec.defaultValue`)
/// gives the same settings as setting nothing.
package struct SiteSettings: Equatable, Sendable {
    package var provider = ProviderSource()
    package var clientID: String?
    package var clientSecret: String?
    package var redirectURI: RedirectURI?
    package var sessionKeyFile: String?
    package var scope = ["openid", "email", "profile"]
    package var signatureAlgorithms = SignatureAlgorithm.asymmetric
    package var trustedAudiences: Set<String> = []
    package var clockSkew: Int64 = 60
    package var maxAge: Int64?
    package var stateLifetime: Int64 = 300
    package var maximumStateCookies = 5
    package var replayCheckFailure = ReplayCheckFailure.refuse
    package var metadataLifetime: Int64 = 24 * 3600
    package var keysLifetime: Int64 = 3600
    package var keyRefetchInterval: Int64 = 30
    package var sessionLifetime: Int64 = 8 * 3600
    package var httpTimeout = HTTPTimeout(totalSeconds: 10, connectSeconds: 3)
    package var sessionStore = SessionStoreKind.cookie
    package var sessionIdleTimeout: Int64 = 3600
    package var sessionRefreshInterval: Int64 = 60
    package var sessionCapToTokenExpiry = false
    package var cookiePath = "/"
    package var cookieDomain: String?
    var cookieSameSite = SetCookie.SameSite.lax
    package var trustedProxies: [IPRange] = []
    package var forwardedHeaders = ForwardedHeader.standard
    package var claimsKeep: Set<String>?
    package var claimsDrop: Set<String> = []
    package var logoutAllowedOrigins: Set<String> = []
    package var logoutIDTokenHint = true
    package var sessionInfo = SessionInfoMode.on
    package var sessionInfoOrigins: Set<String> = []
    /// Nil: REMOTE_USER is `sub`.
    package var remoteUser: RemoteUserRule?
    package var claimDelimiter = ","

    package init() {}

    /// The defaults, for what SiteConfig starts from.
    package static let standard = SiteSettings()

    /// Parses a site's settings (directive name, value); the last value of a directive wins.
    package init(parsing settings: [(String, String)]) throws(ConfigError) {
        for (name, value) in settings {
            guard let d = Directive(rawValue: name), !d.isPerDirectory else { throw .invalid("\(name) is not a server directive") }
            let parsed: Directive.Parsed
            do throws(ConfigError) { parsed = try d.parse(value) } catch { throw .invalid("\(name): \(error.message)") }
            guard case .site(let apply) = parsed else { throw .invalid("\(name) is not a server directive") }
            apply(&self)
        }
    }
}

package struct HTTPTimeout: Equatable, Sendable {
    package var totalSeconds: Int
    package var connectSeconds: Int
}

/// IDTokenSessionInfo: whether `<redirect URI>?info=json` answers, and with the ID token or not.
package enum SessionInfoMode: String, Sendable {
    case on, off
    case withIDToken = "withidtoken"
}

/// IDTokenRemoteUserClaim: the claim, and optionally a pattern whose first group is the user name.
package struct RemoteUserRule: Equatable, Sendable {
    package var claim: String
    package var pattern: String?
}
