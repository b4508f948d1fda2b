#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value that many threads read at once and that is rarely written: a cache of this child's,
/// behind a pthread read-write lock.
///
/// Why not `Synchronization.Mutex`: on Linux it is a priority-inheritance futex, and when the threads
/// of an event-MPM child all looked up the same remembered session (one user's burst of parallel
/// requests; a benchmark with one cookie), they queued on it one by one: 12 % of the child's CPU went
/// to the mutex's slow path and the kernel's rt-mutex (bench/README.md, "Where the time goes"). Readers
/// do not exclude one another here. Writes only ever fill a cache, so they never wait: `tryWrite`
/// gives up when the lock is held and a later request fills the cache instead, and no writer can be
/// starved behind a stream of readers.
package final class ReadMostly<Value>: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private let value: UnsafeMutablePointer<Value>

    package init(_ initial: Value) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
        value = .allocate(capacity: 1)
        value.initialize(to: initial)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// `body` on the value, beside other readers; nil if the lock could not be taken (then the caller
    /// goes without its cache, as on a miss).
    package func read<R>(_ body: (UnsafePointer<Value>) -> R?) -> R? {
        guard pthread_rwlock_rdlock(lock) == 0 else { return nil }
        defer { pthread_rwlock_unlock(lock) }
        return body(UnsafePointer(value))
    }

    /// `body` on the value, alone, if no one holds the lock right now; false when it did not run.
    @discardableResult
    package func tryWrite(_ body: (inout Value) -> Void) -> Bool {
        guard pthread_rwlock_trywrlock(lock) == 0 else { return false }
        defer { pthread_rwlock_unlock(lock) }
        body(&value.pointee)
        return true
    }
}
