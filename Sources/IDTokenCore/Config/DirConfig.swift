/// The settings of one <Location> or <Directory> block, and the effective settings of a request:
/// its blocks overlaid parent first, so a nested block inherits what it does not set itself.
package struct DirConfig: Sendable, Equatable {
    package enum UnauthAction: String, Sendable {
        /// Start a login (scripts' requests get 401).
        case auth
        /// Let the request through without identity: optional login.
        case pass
        case unauthorized = "401"
        case gone = "410"
    }

    package enum PassClaimsAs: String, Sendable {
        case both, headers, environment, none
    }

    package enum ClaimEncoding: String, Sendable {
        /// UTF-8 as it is.
        case none
        case base64url
        /// ISO-8859-1 bytes, '?' for characters beyond it (what Tomcat and some Java stacks decode).
        case latin1
    }

    package enum PassIDToken: String, Sendable {
        case off, payload, serialized
    }

    var unauthAction: UnauthAction?
    /// IDTokenSilentLogin: try prompt=none first.
    var silentLogin: Bool?
    var passClaimsAs: PassClaimsAs?
    var claimEncoding: ClaimEncoding?
    var passIDToken: PassIDToken?
    var authRequestParameters: [(String, String)]?
    /// Names of the starting request's query parameters passed on to the provider (portal links).
    var authRequestFromQuery: [String]?

    /// What IDTokenAuthRequestFromQuery may name: hints only, never anything that changes what the
    /// login proves (prompt, max_age, acr_values stay the admin's).
    static let passableFromQuery: Set<String> = ["login_hint", "domain_hint"]

    package init() {}

    /// What a request gets: each directive set by a block it falls in, or its default (kept here only).
    struct Effective: Equatable {
        var unauthAction: UnauthAction
        var silentLogin: Bool
        var passClaimsAs: PassClaimsAs
        var claimEncoding: ClaimEncoding
        var passIDToken: PassIDToken
        var authRequestParameters: [String]
        var authRequestFromQuery: [String]
    }

    var effective: Effective {
        Effective(unauthAction: unauthAction ?? .auth, silentLogin: silentLogin ?? false, passClaimsAs: passClaimsAs ?? .both, claimEncoding: claimEncoding ?? .none,
                  passIDToken: passIDToken ?? .off, authRequestParameters: (authRequestParameters ?? []).map { $0.0 + "=" + $0.1 },
                  authRequestFromQuery: authRequestFromQuery ?? [])
    }

    package static func == (a: DirConfig, b: DirConfig) -> Bool {
        a.unauthAction == b.unauthAction && a.silentLogin == b.silentLogin && a.passClaimsAs == b.passClaimsAs && a.claimEncoding == b.claimEncoding
            && a.passIDToken == b.passIDToken
            && (a.authRequestParameters ?? []).elementsEqual(b.authRequestParameters ?? []) { $0 == $1 }
            && a.authRequestFromQuery == b.authRequestFromQuery
    }

    /// Parameters the module itself sets: an admin's extra parameter must not replace them.
    static let reservedParameters: Set<String> = [
        "response_type", "response_mode", "client_id", "redirect_uri", "state", "nonce", "request", "request_uri",
    ]

    /// Parses one block's settings (each was already parsed once when Apache read it, for configtest).
    package init(settings: [(String, String)]) throws(ConfigError) {
        for (name, value) in settings {
            guard let d = Directive(rawValue: name), d.isPerDirectory else { throw .invalid("\(name) is not a per-directory directive") }
            let parsed: Directive.Parsed
            do throws(ConfigError) { parsed = try d.parse(value) } catch { throw .invalid("\(name): \(error.message)") }
            guard case .dir(let apply) = parsed else { throw .invalid("\(name) is not a per-directory directive") }
            apply(&self)
        }
    }

    /// Each later block's settings replace the earlier ones'.
    package static func overlaid(_ blocks: [DirConfig]) -> DirConfig {
        var result = DirConfig()
        for b in blocks {
            result.unauthAction = b.unauthAction ?? result.unauthAction
            result.silentLogin = b.silentLogin ?? result.silentLogin
            result.passClaimsAs = b.passClaimsAs ?? result.passClaimsAs
            result.claimEncoding = b.claimEncoding ?? result.claimEncoding
            result.passIDToken = b.passIDToken ?? result.passIDToken
            result.authRequestParameters = b.authRequestParameters ?? result.authRequestParameters
            result.authRequestFromQuery = b.authRequestFromQuery ?? result.authRequestFromQuery
        }
        return result
    }
}
