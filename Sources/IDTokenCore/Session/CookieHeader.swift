#if canImport(Glibc)
import Glibc
#endif

/// Reads a Cookie request header (RFC 6265 §5.4): `name=value` pairs separated by `;`. Every pair is
/// kept, in order, since a browser may send two cookies of one name (different paths). It runs on
/// every request, so it scans the header's bytes once and keeps offsets; names and values are slices
/// of the header, never copies (walking a long header by Characters cost more than the decryption).
struct CookieHeader {
    private let header: String
    private let ranges: [(name: Range<Int>, value: Range<Int>)]
    private let meter: WorkMeter?

    /// Beyond this the header is not parsed at all; browsers cap a cookie header well below it.
    static let maximumLength = 64 * 1024

    init(_ header: String?, meter: WorkMeter? = nil) {
        self.meter = meter
        guard let header, header.utf8.count <= Self.maximumLength else {
            self.header = ""
            ranges = []
            return
        }
        self.header = header
        var copy = header
        ranges = copy.withUTF8(Self.parse)  // in place for a native string (every string from C is one)
    }

    private static func parse(_ b: UnsafeBufferPointer<UInt8>) -> [(name: Range<Int>, value: Range<Int>)] {
        var ranges = [(name: Range<Int>, value: Range<Int>)]()
        scan(UnsafeRawBufferPointer(b)) { name, value in
            ranges.append((name, value))
            return true
        }
        return ranges
    }

    /// The first value of the cookie `name` in a header's bytes, read exactly as `values(named:)` reads
    /// it, without parsing the rest or making any string (FastPass).
    package static func firstValue(named name: UnsafeRawBufferPointer, in header: UnsafeRawBufferPointer) -> Range<Int>? {
        guard header.count <= maximumLength, let n = name.baseAddress, let h = header.baseAddress else { return nil }
        var found: Range<Int>?
        scan(header) { r, value in
            guard r.count == name.count, memcmp(h + r.lowerBound, n, name.count) == 0 else { return true }
            found = value
            return false
        }
        return found
    }

    /// Each `name=value` pair in order, until `body` says stop. memchr finds the delimiters: a session
    /// cookie is a kilobyte or more, scanned on every request.
    private static func scan(_ b: UnsafeRawBufferPointer, _ body: (Range<Int>, Range<Int>) -> Bool) {
        guard let base = b.baseAddress else { return }
        func isBlank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }
        func find(_ c: UInt8, from: Int, to: Int) -> Int {
            guard from < to, let p = memchr(base + from, Int32(c), to - from) else { return to }
            return base.distance(to: UnsafeRawPointer(p))
        }
        var start = 0
        while start < b.count {
            let end = find(UInt8(ascii: ";"), from: start, to: b.count)
            let eq = find(UInt8(ascii: "="), from: start, to: end)
            if eq < end {
                var nameStart = start
                while nameStart < eq, isBlank(b[nameStart]) { nameStart += 1 }
                var valueStart = eq + 1, valueEnd = end
                while valueEnd > valueStart, isBlank(b[valueEnd - 1]) { valueEnd -= 1 }
                if valueEnd - valueStart >= 2, b[valueStart] == UInt8(ascii: "\""), b[valueEnd - 1] == UInt8(ascii: "\"") {
                    valueStart += 1
                    valueEnd -= 1
                }
                if !body(nameStart..<eq, valueStart..<valueEnd) { return }
            }
            start = end + 1
        }
    }

    var pairs: [(name: Substring, value: Substring)] {
        meter?.cookieLookups += 1
        return ranges.map { (text($0.name), text($0.value)) }
    }

    /// The first value of each cookie `prefix` + "0" ..< `prefix` + "\(count - 1)", found in one pass
    /// over the header (a search per chunk made a header full of chunk markers cost quadratic time).
    /// Nil when one of them is missing.
    func numbered(_ prefix: String, count: Int) -> [Substring]? {
        meter?.cookieLookups += 1
        var found = [Range<Int>?](repeating: nil, count: count)
        var missing = count
        for i in matching(prefix, whole: false) {
            let name = text(ranges[i].name).utf8.dropFirst(prefix.utf8.count)
            guard !name.isEmpty, name.count <= 3, name.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let n = Int(Substring(name)), n < count, found[n] == nil else { continue }
            found[n] = ranges[i].value
            missing -= 1
            if missing == 0 { break }
        }
        guard missing == 0 else { return nil }
        return found.map { text($0 ?? 0..<0) }
    }

    func values(named name: String) -> [Substring] {
        meter?.cookieLookups += 1
        return matching(name, whole: true).map { text(ranges[$0].value) }
    }

    func names(withPrefix prefix: String) -> [Substring] {
        meter?.cookieLookups += 1
        return matching(prefix, whole: false).map { text(ranges[$0].name) }
    }

    /// The indexes of the pairs whose name is `name` (or starts with it), compared as bytes.
    private func matching(_ name: String, whole: Bool) -> [Int] {
        var header = header, name = name
        return header.withUTF8 { h in
            name.withUTF8 { n in
                ranges.indices.filter { i in
                    let r = ranges[i].name
                    guard whole ? r.count == n.count : r.count >= n.count else { return false }
                    guard let hb = h.baseAddress, let nb = n.baseAddress else { return n.isEmpty }
                    return memcmp(hb + r.lowerBound, nb, n.count) == 0
                }
            }
        }
    }

    /// A slice of the header itself, no copy. The bounds sit next to ASCII delimiters, so on scalar
    /// boundaries; a header with invalid UTF-8 was repaired when it became a String.
    private func text(_ r: Range<Int>) -> Substring {
        let utf8 = header.utf8
        let from = utf8.index(utf8.startIndex, offsetBy: r.lowerBound)
        return Substring(utf8[from..<utf8.index(from, offsetBy: r.count)])
    }
}
