import Glibc
import Synchronization
import Testing
@testable import IDTokenCore

@Suite struct ProviderCacheTests {
    let now: Int64 = 1_800_000_000

    @Test func unknownKidRefetchesOnceThenIsRateLimited() throws {
        let fake = FakeProvider()
        let cache = ProviderCache(discoveryURL: FakeProvider.discoveryURL, fetcher: fake)
        let jwks = FakeProvider.issuer + "/jwks"
        _ = try cache.keys(now: now, kid: "rsa-1")
        #expect(fake.count(jwks) == 1)
        _ = try cache.keys(now: now + 1, kid: "rsa-1")
        #expect(fake.count(jwks) == 1)
        for i in 0..<20 { _ = try cache.keys(now: now + 2, kid: "made-up-\(i)") }
        #expect(fake.count(jwks) == 2)
        _ = try cache.keys(now: now + 40, kid: "another")
        #expect(fake.count(jwks) == 3)
    }

    @Test func rotatedKeyIsFoundAfterRefetch() throws {
        let fake = FakeProvider(jwks: TestKeys.jwksJSON([]))
        let cache = ProviderCache(discoveryURL: FakeProvider.discoveryURL, fetcher: fake)
        #expect(try cache.keys(now: now, kid: "rsa-1").keys.isEmpty)
        fake.set(FakeProvider.issuer + "/jwks", .response(status: 200, body: TestKeys.jwksJSON(TestKeys.standardJWKs)))
        #expect(try cache.keys(now: now + 1, kid: "rsa-1").contains(kid: "rsa-1"))
    }

    @Test func discoveredIssuerMustMatchTheDiscoveryURL() {
        let fake = FakeProvider(issuer: "https://evil.example")
        let cache = ProviderCache(discoveryURL: FakeProvider.discoveryURL, fetcher: fake)
        #expect(throws: ProviderError.issuerMismatch(configured: FakeProvider.issuer, discovered: "https://evil.example")) {
            try cache.metadata(now: now)
        }
    }

    @Test func issuerWithTrailingSlashIsAccepted() throws {
        let fake = FakeProvider(issuer: FakeProvider.issuer + "/")
        let cache = ProviderCache(discoveryURL: FakeProvider.discoveryURL, fetcher: fake)
        #expect(try cache.metadata(now: now).issuer == FakeProvider.issuer + "/")
    }

    @Test func failureIsRememberedBrieflySoRequestsFailFast() {
        let fake = FakeProvider()
        fake.set(FakeProvider.discoveryURL, .failed(timedOut: false, tooLarge: false, reason: "refused"))
        let cache = ProviderCache(discoveryURL: FakeProvider.discoveryURL, fetcher: fake)
        for _ in 0..<5 { _ = try? cache.metadata(now: now) }
        #expect(fake.count(FakeProvider.discoveryURL) == 1)
        _ = try? cache.metadata(now: now + 3)
        #expect(fake.count(FakeProvider.discoveryURL) == 2)
    }

    /// A fetch that ran into its timeout failed that long after its request began: the backoff counts
    /// from then, or a timeout longer than the backoff would use it up and every request would wait again.
    @Test func backoffCountsFromTheEndOfASlowFailedFetch() {
        let slow = SlowFailingFetcher(microseconds: 1_100_000)
        var policy = ProviderCache.Policy()
        policy.failureBackoff = 1
        let cache = ProviderCache(discoveryURL: FakeProvider.discoveryURL, fetcher: slow, policy: policy)
        _ = try? cache.metadata(now: now)
        _ = try? cache.metadata(now: now + 1)  // the next request, begun after the slow failure
        #expect(slow.count == 1)
        _ = try? cache.metadata(now: now + 2)
        #expect(slow.count == 2)
    }

    @Test func keySetFailureIsRememberedBrieflyToo() throws {
        let fake = FakeProvider()
        let jwks = FakeProvider.issuer + "/jwks"
        fake.set(jwks, .failed(timedOut: true, tooLarge: false, reason: "Operation timed out"))
        let cache = ProviderCache(discoveryURL: FakeProvider.discoveryURL, fetcher: fake)
        for _ in 0..<5 {
            #expect(throws: ProviderError.self) { try cache.keys(now: now, kid: "rsa-1") }
        }
        #expect(fake.count(jwks) == 1)
        fake.set(jwks, .response(status: 200, body: TestKeys.jwksJSON(TestKeys.standardJWKs)))
        #expect(try cache.keys(now: now + 3, kid: "rsa-1").contains(kid: "rsa-1"))
        #expect(fake.count(jwks) == 2)
    }
}

/// A provider that never answers: every fetch fails after the given time, as a timeout does.
final class SlowFailingFetcher: HTTPFetcher {
    let microseconds: UInt32
    private let fetches = Mutex(0)
    init(microseconds: UInt32) { self.microseconds = microseconds }
    var count: Int { fetches.withLock { $0 } }

    func get(_ url: String) -> HTTPFetchResult {
        fetches.withLock { $0 += 1 }
        usleep(microseconds)
        return .failed(timedOut: true, tooLarge: false, reason: "Operation timed out")
    }
}
