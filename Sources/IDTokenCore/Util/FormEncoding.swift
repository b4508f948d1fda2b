/// application/x-www-form-urlencoded and URL query handling (WHATWG URL §5), small enough to own:
/// Foundation's URLComponents is not in FoundationEssentials' fast path and is lenient where we want
/// to be strict.
enum FormEncoding {
    /// Characters left as they are in a query value: RFC 3986 unreserved.
    private static func isUnreserved(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func percentEncode(_ s: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count)
        appendEncoded(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static let hex = Array("0123456789ABCDEF".utf8)

    private static func appendEncoded(_ s: String, to out: inout [UInt8]) {
        // Over the string's own buffer when it has one (native strings do): walking a String.UTF8View
        // byte by byte cost several times as much.
        if let done: Void = s.utf8.withContiguousStorageIfAvailable({ appendEncoded(bytes: $0, to: &out) }) { return done }
        appendEncoded(bytes: Array(s.utf8), to: &out)
    }

    private static func appendEncoded<C: Collection>(bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        for c in bytes {
            if isUnreserved(c) {
                out.append(c)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 15)])
            }
        }
    }

    /// Encodes pairs as a query string or form body, into one buffer (it builds every login's
    /// authorization URL).
    static func encode(_ pairs: [(String, String)]) -> String {
        var out = [UInt8]()
        append(pairs, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The same, after what `out` holds already (the authorization URL's endpoint).
    static func append(_ pairs: [(String, String)], to out: inout [UInt8]) {
        out.reserveCapacity(out.count + pairs.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 2 } * 2)
        for (i, (name, value)) in pairs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "&")) }
            appendEncoded(name, to: &out)
            out.append(UInt8(ascii: "="))
            appendEncoded(value, to: &out)
        }
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Decodes one component: `+` is a space, `%XX` a byte. Nil for a broken escape or invalid UTF-8,
    /// which a correct client never sends.
    static func decodeComponent<S: Collection>(_ bytes: S) -> String? where S.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let c = bytes[i]
            if c == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if c == UInt8(ascii: "%") {
                let h = bytes.index(after: i)
                guard h != bytes.endIndex else { return nil }
                let l = bytes.index(after: h)
                guard l != bytes.endIndex, let hi = hexValue(bytes[h]), let lo = hexValue(bytes[l]) else { return nil }
                out.append(hi << 4 | lo)
                i = l
            } else {
                out.append(c)
            }
            i = bytes.index(after: i)
        }
        return UTF8Text.validated(out)
    }

    /// Parses `a=1&b=2` into ordered pairs. Nil when any part is malformed. The loops run on one
    /// buffer, not a generic collection: a login's form body is a kilobyte or more of token.
    static func parse<S: Collection>(_ bytes: S) -> [(String, String)]? where S.Element == UInt8 {
        Array(bytes).withUnsafeBufferPointer { b -> [(String, String)]? in
            func find(_ c: UInt8, _ from: Int, _ to: Int) -> Int {
                var i = from
                while i < to, b[i] != c { i += 1 }
                return i
            }
            func decode(_ r: Range<Int>) -> String? {
                let part = UnsafeBufferPointer(rebasing: b[r])
                // Base64url tokens and random states need no unescaping: straight to a validated String.
                if !part.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
                    return UTF8Text.validated(part)
                }
                return decodeComponent(part)
            }
            var result = [(String, String)]()
            var start = 0
            while start < b.count {
                let end = find(UInt8(ascii: "&"), start, b.count)
                if end > start {
                    let eq = find(UInt8(ascii: "="), start, end)
                    guard let n = decode(start..<eq), let v = decode(eq < end ? eq + 1..<end : end..<end) else { return nil }
                    result.append((n, v))
                }
                start = end + 1
            }
            return result
        }
    }
}
