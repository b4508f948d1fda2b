import Synchronization

/// One provider's discovery document and key set, fetched lazily in the child that first needs them
/// and shared by its threads. The cache's lock is never held during a fetch; a second lock lets only
/// one fetch run at a time per process.
package final class ProviderCache: Sendable {
    package struct Policy: Sendable {
        /// How long a discovery document is used before it is fetched again.
        package var metadataLifetime = SiteSettings.standard.metadataLifetime
        /// How long a key set is used before it is fetched again.
        package var keysLifetime = SiteSettings.standard.keysLifetime
        /// At most one refetch of the key set for an unknown `kid` (or for a token without `kid` that no
        /// cached key verifies) in this many seconds: a flood of tokens with made-up kids or forged
        /// signatures must not turn into a flood of requests to the provider.
        package var unknownKeyRefetchInterval = SiteSettings.standard.keyRefetchInterval
        /// After a failed fetch, requests fail fast for this long instead of each waiting on a timeout.
        /// Counted from the end of the failed fetch: a fetch that ran into a timeout longer than this
        /// must not have used the backoff up by the time it fails.
        package var failureBackoff: Int64 = 2
        package init() {}
    }

    package let source: ProviderSource
    let fetcher: any HTTPFetcher
    let policy: Policy

    private struct Cached<T> {
        var value: T
        var fetchedAt: Int64
    }

    private struct State {
        var metadata: Cached<ProviderMetadata>?
        var keys: Cached<JWKSet>?
        /// Bumped by every fetch that stored something: a thread that waited for another's fetch sees
        /// the change and takes its result instead of fetching again.
        var metadataGeneration = 0
        var keysGeneration = 0
        var lastFailure: (at: Int64, error: ProviderError)?
        var lastKeysFailure: (at: Int64, error: ProviderError)?
        var lastUnknownKeyRefetch: Int64?
    }

    private let state = Mutex(State())
    /// The fetches, for the metrics: taken by the requests of the site (`drainFetches`).
    private let fetches = FetchTally()
    /// One fetch at a time in this process: when the cache runs out with a slow provider, the other
    /// threads use the stale copy (or, with none, wait for that one fetch) instead of each opening its
    /// own connection and blocking on it.
    private let fetching = Mutex(())

    package convenience init(discoveryURL: String, fetcher: any HTTPFetcher, policy: Policy = Policy()) {
        self.init(source: ProviderSource(discoveryURL: discoveryURL), fetcher: fetcher, policy: policy)
    }

    package init(source: ProviderSource, fetcher: any HTTPFetcher, policy: Policy = Policy()) {
        self.source = source
        self.fetcher = fetcher
        self.policy = policy
    }

    func metadata(now: Int64) throws(ProviderError) -> ProviderMetadata {
        guard let discoveryURL = source.discoveryURL else {
            // SiteConfig refuses a source that is neither discovered nor complete.
            guard let fixed = source.staticMetadata else { throw .invalidDocument("no discovery URL and no complete static metadata") }
            return fixed
        }
        let (cached, generation) = state.withLock { ($0.metadata, $0.metadataGeneration) }
        if let cached, now - cached.fetchedAt < policy.metadataLifetime { return cached.value }
        return try oneFetch(stale: cached?.value) { () throws(ProviderError) -> ProviderMetadata in
            let (latest, latestGeneration) = state.withLock { ($0.metadata, $0.metadataGeneration) }
            if let latest, latestGeneration != generation { return latest.value }
            if let failure = recentFailure(now: now, keys: false) {
                // While the provider is failing, a stale document is better than none.
                if let cached { return cached.value }
                throw failure
            }
            let started = ContinuousClock.now
            do throws(ProviderError) {
                let body = try fetcher.fetchDocument(discoveryURL)
                let metadata = source.overriding(try ProviderMetadata(discoveryDocument: body, discoveryURL: discoveryURL,
                                                                      expectedIssuer: source.issuer))
                state.withLock {
                    $0.metadata = Cached(value: metadata, fetchedAt: now)
                    $0.metadataGeneration += 1
                    $0.lastFailure = nil
                }
                fetches.record(.discovery, .ok, at: now)
                return metadata
            } catch {
                let failedAt = now + Self.seconds(since: started)
                state.withLock { $0.lastFailure = (failedAt, error) }
                fetches.record(.discovery, .init(error), at: failedAt)
                if let cached { return cached.value }
                throw error
            }
        }
    }

    /// The key set, fresh enough for a token with this `kid`. An unknown kid triggers one refetch,
    /// rate-limited; when the limit applies the current set is returned and the token fails on it.
    func keys(now: Int64, kid: String?) throws(ProviderError) -> JWKSet {
        try keysAndGeneration(now: now, kid: kid).keys
    }

    /// The same, with the generation of the set returned (for `keysAfterFailedKidless`).
    func keysAndGeneration(now: Int64, kid: String?) throws(ProviderError) -> (keys: JWKSet, generation: Int) {
        let (cached, generation) = state.withLock { ($0.keys, $0.keysGeneration) }
        if let cached, now - cached.fetchedAt < policy.keysLifetime {
            guard let kid, !cached.value.contains(kid: kid) else { return (cached.value, generation) }
            // A flood of made-up kids costs at most one fetch per interval (failing closed in between),
            // and each such fetch also picks up any real rotation: a rotated key waits at most one
            // interval even while someone keeps sending bogus kids.
            guard refetchAllowed(now: now) else { return (cached.value, generation) }
        }
        let set = try fetchKeys(now: now, stale: cached?.value, generation: generation)
        return (set, state.withLock { $0.keysGeneration })
    }

    /// A token without `kid` that no key of the set of `generation` verified: the provider may have
    /// rotated its key, and without a kid nothing else tells. One refetch, under the same rate limit as
    /// an unknown kid (so forged kid-less tokens cost at most one fetch per interval). The newer set, or
    /// nil when there is none to try: the limit applies, the fetch failed, or it brought nothing new.
    func keysAfterFailedKidless(now: Int64, generation: Int) -> JWKSet? {
        let (cached, current) = state.withLock { ($0.keys, $0.keysGeneration) }
        // Another request refetched since this one took its set: try that one, at no fetch.
        if let cached, current != generation { return cached.value }
        guard refetchAllowed(now: now), let set = try? fetchKeys(now: now, stale: cached?.value, generation: current) else {
            return nil
        }
        return state.withLock { $0.keysGeneration } != generation ? set : nil
    }

    /// The rate limit of refetches out of turn (unknown kid, kid-less token that fails): at most one per
    /// `unknownKeyRefetchInterval`, and this call takes it when it is free.
    private func refetchAllowed(now: Int64) -> Bool {
        state.withLock { s -> Bool in
            if let last = s.lastUnknownKeyRefetch, now - last < policy.unknownKeyRefetchInterval { return false }
            s.lastUnknownKeyRefetch = now
            return true
        }
    }

    private func fetchKeys(now: Int64, stale cached: JWKSet?, generation: Int) throws(ProviderError) -> JWKSet {
        let metadata = try metadata(now: now)
        return try oneFetch(stale: cached) { () throws(ProviderError) -> JWKSet in
            let (latest, latestGeneration) = state.withLock { ($0.keys, $0.keysGeneration) }
            if let latest, latestGeneration != generation { return latest.value }
            if let failure = recentFailure(now: now, keys: true) {
                if let cached { return cached }
                throw failure
            }
            let started = ContinuousClock.now
            do throws(ProviderError) {
                let body = try fetcher.fetchDocument(metadata.jwksURI)
                let set = try JWKSet(json: body)
                state.withLock {
                    $0.keys = Cached(value: set, fetchedAt: now)
                    $0.keysGeneration += 1
                    $0.lastKeysFailure = nil
                }
                fetches.record(.keys, .ok, at: now)
                return set
            } catch {
                let failedAt = now + Self.seconds(since: started)
                state.withLock { $0.lastKeysFailure = (failedAt, error) }
                fetches.record(.keys, .init(error), at: failedAt)
                if let cached { return cached }
                throw error
            }
        }
    }

    /// Hands the fetches made since the last call to a request, whose decision reports them.
    package func drainFetches(into meter: WorkMeter) { fetches.drain(into: &meter.events) }
    package func drainFetches(into events: inout MetricEvents) { fetches.drain(into: &events) }

    /// Runs `fetch` as this process's only fetch in progress. With a stale copy at hand a busy fetch is
    /// not waited for: the copy is returned. Without one, the caller waits its turn (and `fetch` first
    /// looks whether the fetch it waited for brought what it needs).
    private func oneFetch<T>(stale: T?, _ fetch: () throws(ProviderError) -> T) throws(ProviderError) -> T {
        if let stale {
            let result: Result<T, ProviderError>? = fetching.withLockIfAvailable { _ in
                do throws(ProviderError) { return .success(try fetch()) } catch { return .failure(error) }
            }
            guard let result else { return stale }
            return try result.get()
        }
        let result: Result<T, ProviderError> = fetching.withLock { _ in
            do throws(ProviderError) { return .success(try fetch()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private func recentFailure(now: Int64, keys: Bool) -> ProviderError? {
        state.withLock { s in
            // `at` may lie after `now`: a request that started before a slow fetch failed.
            guard let f = keys ? s.lastKeysFailure : s.lastFailure, now - f.at < policy.failureBackoff else { return nil }
            return f.error
        }
    }

    /// Whole seconds since `start`: `now` is when the request began, and a fetch may have run for its
    /// whole timeout since.
    private static func seconds(since start: ContinuousClock.Instant) -> Int64 {
        (ContinuousClock.now - start).components.seconds
    }
}
