/// The network, as the core sees it: one bounded GET. Passed in so tests can play the provider.
package protocol HTTPFetcher: Sendable {
    func get(_ url: String) -> HTTPFetchResult
}

package enum HTTPFetchResult: Sendable {
    case response(status: Int, body: [UInt8])
    case failed(timedOut: Bool, tooLarge: Bool, reason: String)
}

extension HTTPFetcher {
    /// A 200 body, or the ProviderError that says why not.
    func fetchDocument(_ url: String) throws(ProviderError) -> [UInt8] {
        switch get(url) {
        case .response(200, let body):
            return body
        case .response(let status, _):
            throw .badResponse(url: url, reason: "HTTP status \(status)")
        case .failed(let timedOut, let tooLarge, let reason):
            if tooLarge { throw .badResponse(url: url, reason: "response larger than the limit") }
            throw .unreachable(url: url, reason: timedOut ? "timed out (\(reason))" : reason)
        }
    }
}
