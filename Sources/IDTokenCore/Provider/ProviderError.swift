/// Why the provider's metadata or keys could not be had. These are the provider's (or the network's)
/// fault, not the user's: they answer 502/503, never a session.
package enum ProviderError: Error, Equatable, Sendable {
    /// Could not connect, or the timeout fired.
    case unreachable(url: String, reason: String)
    /// Answered, but not with something usable.
    case badResponse(url: String, reason: String)
    case invalidDocument(String)
    case issuerMismatch(configured: String, discovered: String)

    package var logDescription: String {
        switch self {
        case .unreachable(let url, let reason): return "provider unreachable: GET \(url): \(reason)"
        case .badResponse(let url, let reason): return "provider answered badly: GET \(url): \(reason)"
        case .invalidDocument(let why): return "provider document invalid: \(why)"
        case .issuerMismatch(let c, let d): return "discovered issuer '\(d)' does not match the expected '\(c)'"
        }
    }

    /// 503 when the provider could not be reached (try again later), 502 when it answered wrongly.
    var status: Int {
        if case .unreachable = self { return 503 }
        return 502
    }
}
