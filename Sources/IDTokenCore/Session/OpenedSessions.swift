import Synchronization

/// Sessions already opened by this child, by the exact sealed cookie value. A sealed value can only
/// ever open to one session (AES-GCM authenticates it), so a hit is as good as decrypting again; the
/// expiry checks still run on every request. Cookie sessions only: a server-side session must be
/// read from the store each time, so that logout revokes it at once.
final class OpenedSessions: Sendable {
    private let entries = Mutex<[String: Session]>([:])
    let capacity: Int

    init(capacity: Int = 1024) { self.capacity = capacity }

    func session(for sealed: String) -> Session? {
        entries.withLock { $0[sealed] }
    }

    func remember(_ session: Session, for sealed: String) {
        entries.withLock { map in
            // Cheaper than an LRU and good enough: a full table starts over.
            if map.count >= capacity { map.removeAll(keepingCapacity: true) }
            map[sealed] = session
        }
    }
}
