import Synchronization

/// One thing a request did that the metrics count: add `value` to a counter, or report a time for one
/// of the request's site's gauges (the module keeps the latest). The C module applies it to the shared
/// numbers after the decision (idt_decision.metrics).
package struct MetricEvent: Equatable, Sendable {
    package enum Kind: Sendable { case add, latest }
    package var kind: Kind
    package var index: Int
    package var value: Int64

    package static func add(_ counter: Counter, _ value: Int64 = 1) -> MetricEvent {
        MetricEvent(kind: .add, index: counter.index, value: value)
    }

    package static func latest(_ gauge: SiteGauge, _ time: Int64) -> MetricEvent {
        MetricEvent(kind: .latest, index: gauge.rawValue, value: time)
    }
}

/// The events of one request, in the order they happened. Most requests record one (the request's
/// outcome), kept inline: no allocation on the common path.
package struct MetricEvents: Sendable {
    /// The first event, and those after it.
    package private(set) var first: MetricEvent?
    package private(set) var rest: [MetricEvent] = []

    package init() {}

    package var count: Int { first == nil ? 0 : 1 + rest.count }

    package var all: [MetricEvent] { first.map { [$0] + rest } ?? [] }

    package mutating func append(_ event: MetricEvent) {
        if first == nil { first = event } else { rest.append(event) }
    }

    package func forEach(_ body: (MetricEvent) -> Void) {
        guard let first else { return }
        body(first)
        rest.forEach(body)
    }

    /// How much was added to `counter` (for tests).
    package func total(_ counter: Counter) -> Int64 {
        var sum: Int64 = 0
        forEach { if $0.kind == .add, $0.index == counter.index { sum += $0.value } }
        return sum
    }
}

/// Whether anything is counted: `IDTokenMetrics Off` turns it off for the whole server. Set while httpd
/// reads its configuration, in the parent before any child or thread exists (as SiteRegistry is), and
/// only read afterwards.
package enum Metrics {
    /// Read on every request: no runtime exclusivity check (written only before any thread exists).
    @exclusivity(unchecked) nonisolated(unsafe) package static var enabled = true
}

extension WorkMeter {
    package func count(_ counter: Counter, by value: Int64 = 1) {
        guard Metrics.enabled, value != 0 else { return }
        events.append(.add(counter, value))
    }

    /// A completed login: its session, and how long it took since its state was made.
    func countLogin(startedAt: Int64, now: Int64) {
        let seconds = max(0, now - startedAt)
        count(.loginCompleted)
        count(.sessionOpened)
        count(.loginDuration(bucket: Counter.loginDurationBucket(seconds)))
        count(.loginDurationSum, by: seconds)
    }

    func countRefusal(_ error: LoginError) {
        if let reason = error.refusalReason { count(.loginRefused(reason)) }
    }

    /// What a protected request (not the redirect URI) got, handed on as it is. A login started for a
    /// browser whose session had ended counts as that session's end.
    func counted(_ decision: Decision) -> Decision {
        guard Metrics.enabled else { return decision }
        switch decision {
        case .pass(let p):
            count(.request(p.rendered.hasRemoteUser ? .passed : .anonymous))
        case .redirect:
            count(.request(.login))
            count(.loginStarted)
            if foundEndedSession { count(.sessionEnded(.expired)) }
        case .respond:
            count(.request(.refused))
        case .decline, .readBody:
            break
        }
        return decision
    }

    /// What the module adds to the shared numbers once the decision is made: this request's events and
    /// the fetches of its site's provider that no request took yet; nil with `IDTokenMetrics Off`. One
    /// call, so that the module's side reads nothing of this object twice.
    package func metricEvents(fetchedBy provider: ProviderCache) -> MetricEvents? {
        guard Metrics.enabled else { return nil }
        provider.drainFetches(into: self)
        return events
    }

    func countBackchannel(_ answer: Decision) {
        count(.backchannelLogout(.init(status: answer.status ?? 500)))
    }
}

/// A provider's fetches, counted where they happen (ProviderCache, which sees no request) and handed
/// to the next request of its site that takes them (`drain`, after every decision): that request's
/// decision reports them to the module. One flag read per request while nothing happened.
final class FetchTally: Sendable {
    private let pending = Atomic<Bool>(false)
    private let events = Mutex<[MetricEvent]>([])

    func record(_ document: Counter.ProviderDocument, _ result: Counter.FetchResult, at time: Int64) {
        guard Metrics.enabled else { return }
        events.withLock {
            $0.append(.add(.providerFetch(document, result)))
            $0.append(.latest(.of(document, ok: result == .ok), time))
        }
        pending.store(true, ordering: .releasing)
    }

    func drain(into drained: inout MetricEvents) {
        guard pending.load(ordering: .acquiring) else { return }
        let taken = events.withLock { list -> [MetricEvent] in
            pending.store(false, ordering: .relaxed)
            defer { list = [] }
            return list
        }
        for event in taken { drained.append(event) }
    }
}
