/// The syntax of each setting, checked the moment Apache reads the directive.
public enum Setting: Int32, Sendable {
    case discoveryURL = 1
    case clientID = 2
    case redirectURI = 3
    case sessionKeyFile = 4
    case scope = 5

    var directive: String {
        switch self {
        case .discoveryURL: return "IDTokenDiscoveryURL"
        case .clientID: return "IDTokenClientID"
        case .redirectURI: return "IDTokenRedirectURI"
        case .sessionKeyFile: return "IDTokenSessionKeyFile"
        case .scope: return "IDTokenScope"
        }
    }

    /// Nil when the value is acceptable, else what is wrong with it.
    public func check(_ value: String) -> String? {
        switch self {
        case .discoveryURL:
            guard let u = URLParts(value), !u.pathAndQuery.contains("#") else {
                return "must be an absolute http(s) URL such as https://login.example.com/.well-known/openid-configuration (got '\(value)')"
            }
            _ = u
            return nil
        case .clientID:
            guard !value.isEmpty, value.utf8.count <= 1024, value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
                return "must be the client ID registered at the provider: non-empty, printable, at most 1024 bytes"
            }
            return nil
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
            let ok = value.unicodeScalars.allSatisfy {
                $0 == " " || ($0.value > 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\")
            }
            return ok && !value.isEmpty ? nil : "must be space-separated scope names of printable ASCII (got '\(value)')"
        }
    }
}
