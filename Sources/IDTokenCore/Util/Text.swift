enum HTML {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            // Apache serves custom error pages as ISO-8859-1: anything beyond ASCII goes as a reference.
            case _ where !ch.isASCII: out += "&#x" + String(ch.value, radix: 16) + ";"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (FoundationEssentials has no CharacterSet trimming).
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}

/// ASCII matching on UTF-8 bytes, for header values and cookie names compared with fixed ASCII text.
/// StringProtocol.contains(_:) goes by Character through a generic searcher and lowercased() makes a
/// copy: together about 25,000 instructions of every login start, for four short headers.
enum ASCII {
    static func lower(_ c: UInt8) -> UInt8 { c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") ? c | 0x20 : c }

    /// Whether `needle` occurs in `text`; with `ignoringCase`, ASCII letters match either case. (Of the
    /// non-ASCII characters, only the Kelvin sign lowercases to an ASCII letter, k, which no text
    /// searched for here holds.)
    static func contains<S: StringProtocol>(_ text: S, _ needle: String, ignoringCase: Bool = false) -> Bool {
        let hay = Array(text.utf8), n = Array(needle.utf8)
        guard !n.isEmpty else { return true }
        guard hay.count >= n.count else { return false }
        for start in 0...(hay.count - n.count) {
            var i = 0
            while i < n.count, (ignoringCase ? lower(hay[start + i]) == lower(n[i]) : hay[start + i] == n[i]) { i += 1 }
            if i == n.count { return true }
        }
        return false
    }

    /// `text` equals `other` but for the case of ASCII letters.
    static func equalsIgnoringCase<S: StringProtocol>(_ text: S, _ other: String) -> Bool {
        text.utf8.elementsEqual(other.utf8) { lower($0) == lower($1) }
    }
}

/// Bytes to a String, refused unless valid UTF-8: what String(validating:as:) does, without its cost.
/// That initializer is generic and reaches this module unspecialized: it looked up type metadata on
/// every call, about 45,000 instructions of every login for the claims, form values and state it read.
/// ASCII, nearly every claim and parameter, goes to String(decoding:) (nothing to repair in it);
/// anything else still goes through String(validating:).
enum UTF8Text {
    static func validated(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        var high: UInt8 = 0
        for b in bytes { high |= b }
        if high < 0x80 { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    static func validated(_ bytes: [UInt8]) -> String? { bytes.withUnsafeBufferPointer { validated($0) } }

    static func validated(_ bytes: ArraySlice<UInt8>) -> String? { bytes.withUnsafeBufferPointer { validated($0) } }
}
