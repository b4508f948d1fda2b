import Synchronization

/// A key-value store shared by every process of the server (Apache's socache, supplied by the C
/// module), or, without one, a store local to this process.
public protocol SharedStore {
    /// Writes the entry only if the key is absent (or expired), atomically across processes.
    func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus
}

public enum StoreStatus: Equatable, Sendable {
    case ok
    case exists
    case notFound
    case error
}

/// The fallback when Apache has no socache: single-use marks kept in this process only. A replay that
/// reaches another child is not caught; the C module says so at start-up.
public final class MemoryStore: SharedStore, Sendable {
    private let entries = Mutex<[[UInt8]: Int64]>([:])
    let capacity: Int

    public init(capacity: Int = 10_000) { self.capacity = capacity }

    public func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        entries.withLock { map in
            if let until = map[key], until > now { return .exists }
            if map.count >= capacity {
                map = map.filter { $0.value > now }
                // Still full of live marks: refuse rather than forget one (fail closed).
                if map.count >= capacity { return .error }
            }
            map[key] = expiresAt
            return .ok
        }
    }
}
