import Synchronization

/// Passes this child has already decided, by the session cookie's exact value and the location: the
/// next request that brings the same value to the same kind of location, before anything about the
/// session can have changed, is let through with the same rendering without its Cookie header being
/// parsed into strings, its session opened or looked up, or anything rendered (FastPass).
///
/// An entry holds only while nothing could change the slow path's answer (`validUntil`): the session's
/// end, its idle deadline, its next refresh, and a location's max_age. What is not a matter of time is
/// in the key (the cookie value, the location's configuration blocks, http or https). A session kept in
/// the shared store is read from it again (`storeKey`) whenever the store has taken a write since it
/// was last read (`storeWrites`), so logout and back-channel logout, which write, revoke it at once, as
/// without the memo; a store that cannot count its writes is read on every request.
package final class PassMemo: Sendable {
    package final class Entry: Sendable {
        /// The session cookie's value as the browser sends it.
        let value: [UInt8]
        /// The request's <Location>/<Directory> configuration handles, in order.
        let dir: [Int32]
        let secure: Bool
        package let rendered: RenderedClaims
        /// The first second at which the slow path could answer differently.
        let validUntil: Int64
        /// A session in the shared store: its key there and the sealed value it was opened from.
        let storeKey: [UInt8]?
        let stored: [UInt8]?
        /// The store's write count last read before `stored` was found there (SharedStore.writes);
        /// `unknown` when it cannot say.
        let storeWrites: Atomic<UInt64>
        static let unknown = UInt64.max

        init(value: [UInt8], dir: [Int32], secure: Bool, rendered: RenderedClaims, validUntil: Int64,
             storeKey: [UInt8]?, stored: [UInt8]?, storeWrites: UInt64? = nil) {
            self.value = value
            self.dir = dir
            self.secure = secure
            self.rendered = rendered
            self.validUntil = validUntil
            self.storeKey = storeKey
            self.stored = stored
            self.storeWrites = Atomic(storeWrites ?? Self.unknown)
        }

        /// Whether nothing has been written to the store since the value was last seen there.
        func storeUnchanged(writes: UInt64?) -> Bool {
            guard let writes, writes != Self.unknown else { return false }
            return storeWrites.load(ordering: .acquiring) == writes
        }

        /// After a read that found the value still there: `writes` was read before it. Threads may race
        /// here; any count read before a read that found the value is a true one to keep.
        func stillStored(writes: UInt64?) {
            if let writes { storeWrites.store(writes, ordering: .releasing) }
        }

        func matches(_ value: UnsafeRawBufferPointer, _ dir: UnsafeBufferPointer<Int32>, secure: Bool) -> Bool {
            guard self.secure == secure, self.value.count == value.count, self.dir.count == dir.count else { return false }
            for i in 0..<dir.count where self.dir[i] != dir[i] { return false }
            return self.value.withUnsafeBytes { PassMemo.same($0, value) }
        }
    }

    /// Byte equality without an early exit (how long it takes says nothing of a remembered value),
    /// a word at a time: a sealed session is a kilobyte, compared on every request.
    static func same(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let x = a.baseAddress, let y = b.baseAddress else { return a.count == 0 }
        var diff: UInt64 = 0, i = 0
        // Four words an iteration: the loop's own bookkeeping was half of its cost.
        while i + 32 <= a.count {
            diff |= (x.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ y.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                | (x.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self) ^ y.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
                | (x.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self) ^ y.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
                | (x.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self) ^ y.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
            i += 32
        }
        while i + 8 <= a.count {
            diff |= x.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ y.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < a.count {
            diff |= UInt64(x.load(fromByteOffset: i, as: UInt8.self) ^ y.load(fromByteOffset: i, as: UInt8.self))
            i += 1
        }
        return diff == 0
    }

    /// Split like OpenedSessions; readers share a shard's lock (ReadMostly), since all the requests of
    /// one session land on one shard.
    private final class Shard: Sendable {
        let map = ReadMostly<[UInt64: Entry]>([:])
    }

    private static let shardCount = 16
    private let shards: [Shard]
    let capacityPerShard: Int

    package init(capacity: Int = 1024) {
        capacityPerShard = max(1, capacity / Self.shardCount)
        shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    /// The value's last 16 bytes (the AES-GCM tag of a sealed cookie, or random ID characters: as good
    /// as random either way), its length and the location, folded into one word.
    static func hash(_ value: UnsafeRawBufferPointer, _ dir: UnsafeBufferPointer<Int32>, secure: Bool) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(value.count) ^ (secure ? 0x9e37_79b9 : 0)
        for b in value.suffix(16) { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        for d in dir { h = (h ^ UInt64(UInt32(bitPattern: d))) &* 0x100_0000_01b3 }
        return h
    }

    private func shard(_ hash: UInt64) -> Shard { shards[Int(hash % UInt64(Self.shardCount))] }

    /// The pass remembered for this value and location, still valid at `now`.
    package func entry(value: UnsafeRawBufferPointer, dir: UnsafeBufferPointer<Int32>, secure: Bool, now: Int64) -> Entry? {
        let h = Self.hash(value, dir, secure: secure)
        guard let entry = shard(h).map.read({ $0.pointee[h] }), now < entry.validUntil,
              entry.matches(value, dir, secure: secure) else { return nil }
        return entry
    }

    func remember(_ entry: Entry) {
        let h = entry.value.withUnsafeBytes { v in entry.dir.withUnsafeBufferPointer { Self.hash(v, $0, secure: entry.secure) } }
        let limit = capacityPerShard
        // Not remembered when another thread holds the shard: the next pass will be.
        shard(h).map.tryWrite { map in
            // As in OpenedSessions: a full shard starts over, cheaper than an LRU.
            if map.count >= limit, map[h] == nil { map.removeAll(keepingCapacity: true) }
            map[h] = entry
        }
    }
}
