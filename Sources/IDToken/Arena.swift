import CShim
#if canImport(Glibc)
import Glibc
#endif

/// Writes a decision into memory from the request's allocator (the request pool), in one block.
/// The same filling code runs twice: first on a counting arena that only adds up the size, then on
/// the block of that size. Nothing in it is freed by hand; it goes with the request.
struct Arena {
    private let base: UnsafeMutableRawPointer?
    private let capacity: Int
    private(set) var used = 0

    /// Every item is placed at this alignment, so pointers and strings can share the block.
    static let alignment = MemoryLayout<UnsafeRawPointer>.alignment

    static func rounded(_ n: Int) -> Int { (n + alignment - 1) & ~(alignment - 1) }

    /// Measures: every placement returns nil and only `used` grows.
    static func counting() -> Arena { Arena(base: nil, capacity: Int.max) }

    private init(base: UnsafeMutableRawPointer?, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    /// A block of `size` bytes from the request's allocator; nil when there is none or it failed.
    static func block(_ size: Int, from request: idt_request) -> Arena? {
        guard size > 0 else { return Arena(base: nil, capacity: 0) }
        guard let alloc = request.alloc, let base = alloc(request.alloc_ctx, size) else { return nil }
        return Arena(base: base, capacity: size)
    }

    private mutating func take(_ n: Int) -> UnsafeMutableRawPointer? {
        let n = Self.rounded(n)
        guard n <= capacity - used else { return nil }
        defer { used += n }
        return base.map { $0 + used }
    }

    mutating func string(_ s: String) -> UnsafeMutablePointer<CChar>? {
        var s = s
        return s.withUTF8 { utf8 in
            guard let p = take(utf8.count + 1) else { return nil }
            if let from = utf8.baseAddress { p.copyMemory(from: from, byteCount: utf8.count) }
            p.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
            return p.assumingMemoryBound(to: CChar.self)
        }
    }

    mutating func bytes(_ b: [UInt8]) -> UnsafeMutablePointer<CChar>? {
        b.withUnsafeBytes { raw in
            guard let p = take(raw.count) else { return nil }
            if let from = raw.baseAddress { p.copyMemory(from: from, byteCount: raw.count) }
            return p.assumingMemoryBound(to: CChar.self)
        }
    }

    mutating func array<T>(of: T.Type, count: Int) -> UnsafeMutablePointer<T>? {
        guard count > 0, let p = take(count * MemoryLayout<T>.stride) else { return nil }
        return p.bindMemory(to: T.self, capacity: count)
    }
}
