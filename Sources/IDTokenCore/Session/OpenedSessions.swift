import Synchronization

/// Sessions already opened by this child, by the exact sealed cookie value. A sealed value can only
/// ever open to one session (AES-GCM authenticates it), so a hit is as good as decrypting again; the
/// expiry checks still run on every request. Cookie sessions only: a server-side session must be
/// read from the store each time, so that logout revokes it at once.
///
/// Split into shards by the value's last byte (ciphertext, so evenly spread) so that the threads of
/// an event-MPM child rarely wait on one another's lock.
final class OpenedSessions: Sendable {
    private final class Shard: Sendable {
        let map = Mutex<[String: Session]>([:])
    }

    private static let shardCount = 16
    private let shards: [Shard]
    let capacityPerShard: Int

    init(capacity: Int = 1024) {
        capacityPerShard = max(1, capacity / Self.shardCount)
        shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    private func shard(_ sealed: String) -> Shard {
        shards[Int(sealed.utf8.last ?? 0) % Self.shardCount]
    }

    func session(for sealed: String) -> Session? {
        shard(sealed).map.withLock { $0[sealed] }
    }

    func remember(_ session: Session, for sealed: String) {
        let limit = capacityPerShard
        shard(sealed).map.withLock { map in
            // Cheaper than an LRU and good enough: a full shard starts over.
            if map.count >= limit { map.removeAll(keepingCapacity: true) }
            map[sealed] = session
        }
    }
}
