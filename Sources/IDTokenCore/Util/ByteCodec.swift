/// A tiny length-prefixed binary format for what the module seals into cookies. Cheaper to read on
/// every request than JSON, and the reader refuses anything truncated or oversized instead of trapping.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }

    mutating func i64(_ v: Int64) {
        let u = UInt64(bitPattern: v)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: u >> UInt64(shift))) }
    }

    mutating func string(_ s: String) { blob(Array(s.utf8)) }

    /// A signed integer in as few bytes as it needs (zigzag, then LEB128): times and lengths in a
    /// cookie, where every byte is a third of a character more.
    mutating func varint(_ v: Int64) {
        var u = UInt64(bitPattern: (v << 1) ^ (v >> 63))
        while u >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: u) | 0x80)
            u >>= 7
        }
        bytes.append(UInt8(u))
    }

    /// A length (as a varint), then the bytes.
    mutating func varblob(_ b: [UInt8]) {
        varint(Int64(b.count))
        bytes.append(contentsOf: b)
    }

    mutating func blob(_ b: [UInt8]) {
        let n = UInt32(clamping: b.count)
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: n >> UInt32(shift))) }
        bytes.append(contentsOf: b.prefix(Int(n)))
    }
}

struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func u8() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func i64() -> Int64? {
        guard bytes.count - offset >= 8 else { return nil }
        var u: UInt64 = 0
        for i in 0..<8 { u = u << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return Int64(bitPattern: u)
    }

    /// The latest time a sealed value can hold (the end of the year 9999). Anything beyond, or before
    /// 1970, was never sealed by this module; refusing it keeps the arithmetic on times (`now - createdAt`,
    /// `maxAge + clockSkew`) clear of overflow.
    static let maximumSeconds: Int64 = 253_402_300_799

    /// A time in seconds since 1970: nil outside 0...maximumSeconds.
    mutating func time() -> Int64? {
        guard let v = i64(), (0...Self.maximumSeconds).contains(v) else { return nil }
        return v
    }

    mutating func string() -> String? {
        blob().flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// Nil when truncated or longer than an Int64 needs (ten bytes).
    mutating func varint() -> Int64? {
        var u: UInt64 = 0
        for shift in stride(from: UInt64(0), through: 63, by: 7) {
            guard offset < bytes.count else { return nil }
            let b = bytes[offset]
            offset += 1
            // The tenth byte holds one bit: anything more would overflow.
            guard shift < 63 || b <= 1 else { return nil }
            u |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1) }
        }
        return nil
    }

    mutating func varblob() -> ArraySlice<UInt8>? {
        guard let n = varint(), n >= 0, n <= bytes.count - offset else { return nil }
        defer { offset += Int(n) }
        return bytes[offset..<offset + Int(n)]
    }

    mutating func blob() -> ArraySlice<UInt8>? {
        guard bytes.count - offset >= 4 else { return nil }
        var n = 0
        for i in 0..<4 { n = n << 8 | Int(bytes[offset + i]) }
        guard bytes.count - offset - 4 >= n else { return nil }
        offset += 4
        defer { offset += n }
        return bytes[offset..<offset + n]
    }
}
