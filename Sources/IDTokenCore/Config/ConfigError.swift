/// A configuration value that cannot work. The message says what is allowed; the C module prefixes the
/// directive's name (or the virtual host's) so `apachectl configtest` points at the mistake.
package enum ConfigError: Error, Equatable, Sendable {
    case invalid(String)
    case missing(String)

    package var message: String {
        switch self {
        case .invalid(let m): return m
        case .missing(let directive): return "\(directive) is required"
        }
    }
}
