/// The settings of one <Location> or <Directory> block, and the effective settings of a request:
/// its blocks overlaid parent first, so a nested block inherits what it does not set itself.
public struct DirConfig: Sendable, Equatable {
    public enum UnauthAction: String, Sendable {
        /// Start a login (scripts' requests get 401).
        case auth
        /// Let the request through without identity: optional login.
        case pass
        case unauthorized = "401"
        case gone = "410"
    }

    public enum PassClaimsAs: String, Sendable {
        case both, headers, environment, none
    }

    public enum ClaimEncoding: String, Sendable {
        /// UTF-8 as it is.
        case none
        case base64url
        /// ISO-8859-1 bytes, '?' for characters beyond it (what Tomcat and some Java stacks decode).
        case latin1
    }

    public enum PassIDToken: String, Sendable {
        case off, payload, serialized
    }

    var unauthAction: UnauthAction?
    var passClaimsAs: PassClaimsAs?
    var claimEncoding: ClaimEncoding?
    var passIDToken: PassIDToken?
    var authRequestParameters: [(String, String)]?

    public init() {}

    public static func == (a: DirConfig, b: DirConfig) -> Bool {
        a.unauthAction == b.unauthAction && a.passClaimsAs == b.passClaimsAs && a.claimEncoding == b.claimEncoding
            && a.passIDToken == b.passIDToken
            && (a.authRequestParameters ?? []).elementsEqual(b.authRequestParameters ?? []) { $0 == $1 }
    }

    /// Parameters the module itself sets: an admin's extra parameter must not replace them.
    static let reservedParameters: Set<String> = [
        "response_type", "response_mode", "client_id", "redirect_uri", "state", "nonce", "request", "request_uri",
    ]

    /// Parses one block's settings; they were each checked when Apache read them.
    public init(settings: [(String, String)]) throws(ConfigError) {
        for (name, value) in settings {
            guard let d = Directive(rawValue: name), d.isPerDirectory else { throw .invalid("\(name) is not a per-directory directive") }
            if let problem = d.check(value) { throw .invalid("\(name): \(problem)") }
            switch d {
            case .unauthAction: unauthAction = UnauthAction(rawValue: value.lowercased())
            case .passClaimsAs: passClaimsAs = PassClaimsAs(rawValue: value.lowercased())
            case .claimEncoding: claimEncoding = ClaimEncoding(rawValue: value.lowercased())
            case .passIDToken: passIDToken = PassIDToken(rawValue: value.lowercased())
            case .authRequestParams:
                // Values are form-decoded, so a value with spaces is written acr_values=urn:a+urn:b.
                authRequestParameters = value.split(separator: " ").compactMap { word in
                    guard let eq = word.firstIndex(of: "=") else { return nil }
                    let raw = word[word.index(after: eq)...]
                    return (String(word[..<eq]), FormEncoding.decodeComponent(raw.utf8) ?? String(raw))
                }
            default: break
            }
        }
    }

    /// Each later block's settings replace the earlier ones'.
    public static func overlaid(_ blocks: [DirConfig]) -> DirConfig {
        var result = DirConfig()
        for b in blocks {
            result.unauthAction = b.unauthAction ?? result.unauthAction
            result.passClaimsAs = b.passClaimsAs ?? result.passClaimsAs
            result.claimEncoding = b.claimEncoding ?? result.claimEncoding
            result.passIDToken = b.passIDToken ?? result.passIDToken
            result.authRequestParameters = b.authRequestParameters ?? result.authRequestParameters
        }
        return result
    }
}
