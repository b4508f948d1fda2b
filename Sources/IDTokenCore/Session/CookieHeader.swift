/// Reads a Cookie request header (RFC 6265 §5.4): `name=value` pairs separated by `;`. Every pair is
/// kept, in order, since a browser may send two cookies of one name (different paths). It runs on
/// every request, so it scans the header's bytes once and keeps offsets; names and values become
/// strings only when asked for (walking a long header by Characters cost more than the decryption).
struct CookieHeader {
    private let bytes: [UInt8]
    private let ranges: [(name: Range<Int>, value: Range<Int>)]

    /// Beyond this the header is not parsed at all; browsers cap a cookie header well below it.
    static let maximumLength = 64 * 1024

    init(_ header: String?) {
        guard let header, header.utf8.count <= Self.maximumLength else {
            bytes = []
            ranges = []
            return
        }
        let b = Array(header.utf8)
        func isBlank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }
        var ranges = [(name: Range<Int>, value: Range<Int>)]()
        var start = 0
        while start < b.count {
            var end = start
            while end < b.count, b[end] != UInt8(ascii: ";") { end += 1 }
            var eq = start
            while eq < end, b[eq] != UInt8(ascii: "=") { eq += 1 }
            if eq < end {
                var nameStart = start
                while nameStart < eq, isBlank(b[nameStart]) { nameStart += 1 }
                var valueStart = eq + 1, valueEnd = end
                while valueEnd > valueStart, isBlank(b[valueEnd - 1]) { valueEnd -= 1 }
                if valueEnd - valueStart >= 2, b[valueStart] == UInt8(ascii: "\""), b[valueEnd - 1] == UInt8(ascii: "\"") {
                    valueStart += 1
                    valueEnd -= 1
                }
                ranges.append((nameStart..<eq, valueStart..<valueEnd))
            }
            start = end + 1
        }
        self.bytes = b
        self.ranges = ranges
    }

    var pairs: [(name: Substring, value: Substring)] {
        ranges.map { (text($0.name), text($0.value)) }
    }

    func values(named name: String) -> [Substring] {
        let wanted = Array(name.utf8)
        return ranges.compactMap { r in
            r.name.count == wanted.count && bytes[r.name].elementsEqual(wanted) ? text(r.value) : nil
        }
    }

    func names(withPrefix prefix: String) -> [Substring] {
        let p = Array(prefix.utf8)
        return ranges.compactMap { r in
            r.name.count >= p.count && bytes[r.name].starts(with: p) ? text(r.name) : nil
        }
    }

    private func text(_ r: Range<Int>) -> Substring {
        Substring(String(decoding: bytes[r], as: UTF8.self))
    }
}
