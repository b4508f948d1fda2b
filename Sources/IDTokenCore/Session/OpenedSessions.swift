/// Sessions already opened by this child, by the exact sealed value (the cookie's, or the shared
/// store's in cache mode), with what each location shape renders of them. A sealed value can only ever
/// open to one session (AES-GCM authenticates it), so a hit is as good as decrypting again; the expiry
/// checks still run, and in cache mode the session is still looked up in the store (or, by FastPass,
/// known unchanged there: PassMemo), so logout revokes at once.
///
/// Split into shards by the value's last byte (ciphertext, so evenly spread) so that writes rarely
/// meet; readers share a shard (ReadMostly).
final class OpenedSessions: Sendable {
    /// Immutable and shared: a hit costs one retain, not a copy of every string of the session.
    final class Entry: Sendable {
        let session: Session
        let renders: [RenderShape: RenderedClaims]

        init(session: Session, renders: [RenderShape: RenderedClaims] = [:]) {
            self.session = session
            self.renders = renders
        }
    }

    /// What decides how a session is rendered for a location.
    struct RenderShape: Hashable {
        var passAs: DirConfig.PassClaimsAs
        var encoding: DirConfig.ClaimEncoding
        var passIDToken: DirConfig.PassIDToken
    }

    /// Hashes only the value's last bytes (the AES-GCM tag: as good as random) instead of its whole
    /// kilobyte or more, and compares the whole value for equality.
    struct SealedKey: Hashable {
        let value: String

        func hash(into hasher: inout Hasher) {
            let utf8 = value.utf8
            hasher.combine(utf8.count)
            for b in utf8.suffix(24) { hasher.combine(b) }
        }

        static func == (a: SealedKey, b: SealedKey) -> Bool { a.value == b.value }
    }

    private final class Shard: Sendable {
        let map = ReadMostly<[SealedKey: Entry]>([:])
    }

    private static let shardCount = 16
    private let shards: [Shard]
    let capacityPerShard: Int

    init(capacity: Int = 1024) {
        capacityPerShard = max(1, capacity / Self.shardCount)
        shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    private func shard(_ key: SealedKey) -> Shard {
        shards[Int(key.value.utf8.last ?? 0) % Self.shardCount]
    }

    func entry(for sealed: String) -> Entry? {
        let key = SealedKey(value: sealed)
        return shard(key).map.read { $0.pointee[key] }
    }

    func remember(_ session: Session, for sealed: String) {
        let key = SealedKey(value: sealed)
        let limit = capacityPerShard
        // Not kept when another thread holds the shard: the session is opened again next time.
        shard(key).map.tryWrite { map in
            // Cheaper than an LRU and good enough: a full shard starts over.
            if map.count >= limit { map.removeAll(keepingCapacity: true) }
            map[key] = Entry(session: session)
        }
    }

    /// Keeps a rendering with its session; nothing when the session is no longer remembered.
    func remember(_ rendered: RenderedClaims, as shape: RenderShape, for sealed: String) {
        let key = SealedKey(value: sealed)
        shard(key).map.tryWrite { map in
            guard let entry = map[key] else { return }
            // A handful of shapes per site at most; the bound only guards against surprises.
            var renders = entry.renders.count >= 8 ? [:] : entry.renders
            renders[shape] = rendered
            map[key] = Entry(session: entry.session, renders: renders)
        }
    }
}
