import Synchronization

/// A key-value store shared by every process of the server (the module's file store or Apache's
/// socache, supplied by the C module), or, without one, a store local to this process. Entries expire
/// at `expiresAt`.
package protocol SharedStore {
    /// Writes the entry only if the key is absent (or expired), atomically across processes.
    func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus
    func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus
    /// A put of an entry that may give way to newer ones when the store is full (a session: losing it
    /// logs one user out, where a lost single-use mark or tombstone would let something through).
    func putEvictable(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus
    /// The value, or nil with the status that says why not.
    func get(_ key: [UInt8], now: Int64) -> Result<[UInt8], StoreFailure>
    func remove(_ key: [UInt8]) -> StoreStatus
    /// How many calls that may change an entry the store has taken, when every one of them is made by
    /// this server (the file store, shmcb, this process's own store); nil when other servers write to it
    /// too. The same count before a get and later means nothing has changed in between.
    func writes() -> UInt64?
}

extension SharedStore {
    /// Stores that do not choose what gives way keep everything alike.
    package func putEvictable(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        put(key, value, expiresAt: expiresAt, now: now)
    }

    /// Unknown unless the store says: every session is read again.
    package func writes() -> UInt64? { nil }
}

package enum StoreStatus: Equatable, Sendable {
    case ok
    case exists
    case notFound
    case error
}

package enum StoreFailure: Error, Equatable, Sendable {
    case notFound
    case failed
}

/// The fallback when Apache has no socache: entries kept in this process only, so a single-use mark
/// or a server-side session is seen by this child alone; the C module says so at start-up.
package final class MemoryStore: SharedStore, Sendable {
    private let entries = Mutex<[[UInt8]: (value: [UInt8], expiresAt: Int64)]>([:])
    private let changes = Atomic<UInt64>(0)
    let capacity: Int

    package init(capacity: Int = 10_000) { self.capacity = capacity }

    package func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        write(key, value, expiresAt: expiresAt, now: now, onlyIfAbsent: true)
    }

    package func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        write(key, value, expiresAt: expiresAt, now: now, onlyIfAbsent: false)
    }

    private func write(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64, onlyIfAbsent: Bool) -> StoreStatus {
        entries.withLock { map in
            if onlyIfAbsent, let e = map[key], e.expiresAt > now { return .exists }
            if map[key] == nil, map.count >= capacity {
                map = map.filter { $0.value.expiresAt > now }
                // Still full of live entries: refuse rather than forget one (fail closed).
                if map.count >= capacity { return .error }
            }
            map[key] = (value, expiresAt)
            changes.add(1, ordering: .releasing)
            return .ok
        }
    }

    package func get(_ key: [UInt8], now: Int64) -> Result<[UInt8], StoreFailure> {
        entries.withLock { map in
            guard let e = map[key], e.expiresAt > now else { return .failure(.notFound) }
            return .success(e.value)
        }
    }

    package func remove(_ key: [UInt8]) -> StoreStatus {
        entries.withLock {
            guard $0.removeValue(forKey: key) != nil else { return .notFound }
            changes.add(1, ordering: .releasing)
            return .ok
        }
    }

    package func writes() -> UInt64? { changes.load(ordering: .acquiring) }
}
