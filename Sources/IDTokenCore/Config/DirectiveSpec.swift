/// Everything about a directive that is not its parsing: how Apache reads it (the command table entry,
/// generated from here into apache/directives.inc), where it may appear, and what the reference says
/// of its syntax and default. DocsDriftTests holds docs/configuration.md and apache/auth_idtoken.conf to
/// it; SettingsTests shows that setting every documented default changes nothing.
package struct DirectiveSpec: Sendable {
    package enum Arity: Sendable {
        /// One word (TAKE1).
        case one
        /// One or more words, each line adding to the list (ITERATE).
        case list
        /// One value of one or two words (TAKE12).
        case oneOrTwo
    }

    package enum Scope: Sendable {
        /// The main server and virtual hosts (RSRC_CONF).
        case server
        /// <Location>, <Directory>, <Files>; never .htaccess (ACCESS_CONF).
        case directory
    }

    package let arity: Arity
    package let scope: Scope
    /// A file, resolved against ServerRoot by the module before the core sees it.
    package let isPath: Bool
    /// The arguments as the reference's **Syntax:** line writes them after the name.
    package let syntax: String
    /// One line for `httpd -L` and the reference's summary.
    package let summary: String
    /// The default, as words: what the reference's **Default:** line starts with.
    package let defaultText: String
    /// A value that, set, is the same as not setting the directive; nil where no value is (a required
    /// directive, or one whose absence means "from the provider").
    package let defaultValue: String?

    init(_ arity: Arity, _ scope: Scope = .server, path: Bool = false, syntax: String, _ summary: String,
         default defaultText: String, value defaultValue: String? = nil) {
        self.arity = arity
        self.scope = scope
        self.isPath = path
        self.syntax = syntax
        self.summary = summary
        self.defaultText = defaultText
        self.defaultValue = defaultValue
    }
}

extension Directive {
    /// Directives of <Location> and <Directory> blocks; the others belong to the server or a vhost.
    package var isPerDirectory: Bool { spec.scope == .directory }

    var isList: Bool { spec.arity == .list }

    package var spec: DirectiveSpec {
        switch self {
        case .discoveryURL:
            return .init(.one, syntax: "url", "URL of the provider's discovery document", default: "none")
        case .issuer:
            return .init(.one, syntax: "issuer", "The provider's issuer", default: "taken from the discovery document")
        case .authorizationEndpoint:
            return .init(.one, syntax: "url", "URL the browser is sent to for the login", default: "taken from the discovery document")
        case .jwksURI:
            return .init(.one, syntax: "url", "URL of the provider's signing keys", default: "taken from the discovery document")
        case .endSessionEndpoint:
            return .init(.one, syntax: "url", "URL for logging out at the provider", default: "taken from the discovery document")
        case .clientID:
            return .init(.one, syntax: "client-id", "The client ID registered at the provider", default: "none")
        case .clientSecret:
            return .init(.one, syntax: "secret", "The client secret registered at the provider", default: "none")
        case .redirectURI:
            return .init(.one, syntax: "path|url", "Path or absolute URL the provider sends the login back to", default: "none")
        case .sessionKeyFile:
            return .init(.one, path: true, syntax: "file", "File (relative to ServerRoot) with the session cookie keys", default: "none")
        case .scope:
            return .init(.list, syntax: "scope [scope] ...", "Scopes to request", default: "`openid email profile`",
                         value: "openid email profile")
        case .signatureAlgorithms:
            return .init(.list, syntax: "alg [alg] ...", "Token signature algorithms accepted", default: "every asymmetric algorithm",
                         value: SignatureAlgorithm.allCases.filter { !$0.isHMAC }.map(\.rawValue).joined(separator: " "))
        case .trustedAudiences:
            return .init(.list, syntax: "audience [audience] ...", "Audiences trusted in tokens", default: "none")
        case .clockSkew:
            return .init(.one, syntax: "seconds", "Seconds of clock difference tolerated", default: "`60`", value: "60")
        case .maxAge:
            return .init(.one, syntax: "seconds", "Seconds a login at the provider stays acceptable", default: "none")
        case .stateLifetime:
            return .init(.one, syntax: "seconds", "Seconds a started login may take to complete", default: "`300`", value: "300")
        case .maxStateCookies:
            return .init(.one, syntax: "number", "Logins a browser may have in progress at once", default: "`5`", value: "5")
        case .replayCheckFailure:
            return .init(.one, syntax: "refuse|accept", "When the store cannot mark a login response as used: refuse (503) or accept (logged)",
                         default: "`refuse`", value: "refuse")
        case .metadataLifetime:
            return .init(.one, syntax: "seconds", "Seconds the discovery document is cached", default: "`86400`", value: "86400")
        case .keysLifetime:
            return .init(.one, syntax: "seconds", "Seconds the signing keys are cached", default: "`3600`", value: "3600")
        case .keyRefetchInterval:
            return .init(.one, syntax: "seconds", "Minimum seconds between fetches of the keys for an unknown one",
                         default: "`30`", value: "30")
        case .sessionLifetime:
            return .init(.one, syntax: "seconds", "Seconds a session lasts", default: "`28800`", value: "28800")
        case .httpTimeout:
            return .init(.oneOrTwo, syntax: "total [connect]", "Seconds for a request to the provider: total [connect]",
                         default: "`10 3`", value: "10 3")
        case .sessionStore:
            return .init(.one, syntax: "cookie|cache", "Where sessions live: cookie (sealed in the browser) or cache (IDTokenCache)",
                         default: "`cookie`", value: "cookie")
        case .sessionIdleTimeout:
            return .init(.one, syntax: "seconds", "Seconds of inactivity that end a session, 0 for none", default: "`3600`", value: "3600")
        case .sessionRefreshInterval:
            return .init(.one, syntax: "seconds", "At most how often an active session is re-issued, in seconds",
                         default: "`60`", value: "60")
        case .sessionCapToTokenExpiry:
            return .init(.one, syntax: "On|Off", "On: a session ends no later than its ID token expires", default: "`Off`", value: "Off")
        case .cookiePath:
            return .init(.one, syntax: "path", "Path of the session cookie", default: "`/`", value: "/")
        case .cookieDomain:
            return .init(.one, syntax: "domain", "Domain of the session cookie", default: "none")
        case .cookieSameSite:
            return .init(.one, syntax: "Lax|Strict|None", "SameSite of the session cookie", default: "`Lax`", value: "Lax")
        case .trustedProxies:
            return .init(.list, syntax: "address|cidr [address|cidr] ...",
                         "Proxies whose X-Forwarded-*/Forwarded headers say the browser's scheme and host", default: "none")
        case .forwardedHeaders:
            return .init(.list, syntax: "header [header] ...",
                         "Headers believed from IDTokenTrustedProxies: X-Forwarded-Proto X-Forwarded-Host X-Forwarded-Port Forwarded",
                         default: "`X-Forwarded-Proto X-Forwarded-Host X-Forwarded-Port`",
                         value: "X-Forwarded-Proto X-Forwarded-Host X-Forwarded-Port")
        case .sessionInfo:
            return .init(.one, syntax: "On|Off|WithIDToken",
                         "The session's claims and times as JSON at <redirect URI>?info=json: On, Off, or WithIDToken (the ID token too)",
                         default: "`On`", value: "On")
        case .sessionInfoOrigins:
            return .init(.list, syntax: "origin [origin] ...", "Other origins whose scripts may read <redirect URI>?info=json (CORS)",
                         default: "none")
        case .claimsKeep:
            return .init(.list, syntax: "claim [claim] ...", "Only these claims are kept in the session for the application",
                         default: "all claims")
        case .claimsDrop:
            return .init(.list, syntax: "claim [claim] ...", "Claims not kept in the session", default: "none")
        case .logoutRedirectAllowed:
            return .init(.list, syntax: "origin [origin] ...", "Origins besides the site's own that a logout may return to",
                         default: "none")
        case .logoutIDTokenHint:
            return .init(.one, syntax: "On|Off", "On: keep the ID token to send as id_token_hint at logout", default: "`On`", value: "On")
        case .remoteUserClaim:
            return .init(.oneOrTwo, syntax: "claim [regex]",
                         "Claim that becomes the user name: claim [regex whose first group is the name]", default: "`sub`", value: "sub")
        case .claimDelimiter:
            return .init(.one, syntax: "text", "Separator between the values of a list claim passed to the application",
                         default: "`,`", value: ",")
        case .unauthAction:
            return .init(.one, .directory, syntax: "auth|pass|401|410",
                         "Without a session: auth (log in at the provider), pass (let through without a user), 401 or 410",
                         default: "`auth`", value: "auth")
        case .silentLogin:
            return .init(.one, .directory, syntax: "On|Off",
                         "On: try a login without a prompt (prompt=none) first, and an interactive one if the provider needs it",
                         default: "`Off`", value: "Off")
        case .passClaimsAs:
            return .init(.one, .directory, syntax: "both|headers|environment|none",
                         "How claims reach the application: both, headers, environment or none", default: "`both`", value: "both")
        case .claimEncoding:
            return .init(.one, .directory, syntax: "none|base64url|latin1",
                         "Encoding of claim values passed to the application: none, base64url or latin1", default: "`none`", value: "none")
        case .passIDToken:
            return .init(.one, .directory, syntax: "off|payload|serialized",
                         "Pass the ID token to the application: off, payload or serialized", default: "`off`", value: "off")
        case .authRequestParams:
            return .init(.list, .directory, syntax: "name=value [name=value] ...",
                         "Extra parameters of the login request, also required of existing sessions (max_age, acr_values, prompt=login)",
                         default: "none")
        case .authRequestFromQuery:
            return .init(.list, .directory, syntax: "name [name] ...",
                         "Parameters of the login request taken from the query of the request that starts it (login_hint, domain_hint)",
                         default: "none")
        }
    }
}
