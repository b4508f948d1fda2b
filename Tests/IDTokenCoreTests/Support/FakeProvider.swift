import Synchronization
@testable import IDTokenCore

/// Plays the provider's discovery and JWKS endpoints in memory, counting fetches.
final class FakeProvider: HTTPFetcher {
    static let issuer = "https://op.example.org"
    static let discoveryURL = issuer + "/.well-known/openid-configuration"

    struct State {
        var responses: [String: HTTPFetchResult] = [:]
        var fetches: [String] = []
    }
    let state = Mutex(State())

    init(jwks: [UInt8] = TestKeys.jwksJSON(TestKeys.standardJWKs), issuer: String = FakeProvider.issuer) {
        let discovery = """
            {"issuer":"\(issuer)","authorization_endpoint":"\(FakeProvider.issuer)/authorize","jwks_uri":"\(FakeProvider.issuer)/jwks","end_session_endpoint":"\(FakeProvider.issuer)/logout"}
            """
        state.withLock {
            $0.responses[Self.discoveryURL] = .response(status: 200, body: Array(discovery.utf8))
            $0.responses[Self.issuer + "/jwks"] = .response(status: 200, body: jwks)
        }
    }

    func set(_ url: String, _ result: HTTPFetchResult) { state.withLock { $0.responses[url] = result } }
    func count(_ url: String) -> Int { state.withLock { $0.fetches.filter { $0 == url }.count } }

    func get(_ url: String) -> HTTPFetchResult {
        state.withLock { s in
            s.fetches.append(url)
            return s.responses[url] ?? .failed(timedOut: false, tooLarge: false, reason: "Connection refused")
        }
    }
}

/// A deterministic RandomNumberGenerator (SplitMix64), so tests can predict nothing but repeat everything.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
