import FoundationEssentials

/// Base64url without padding (RFC 7515 §2), the only encoding JOSE uses. Decoding is strict: padding,
/// whitespace and characters outside the alphabet are refused rather than skipped, so one token has
/// exactly one spelling.
enum Base64URL {
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var s = Data(bytes).base64EncodedString()
        while s.last == "=" { s.removeLast() }
        return String(s.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }

    static func decode(_ text: Substring) -> [UInt8]? {
        var b64 = ""
        b64.reserveCapacity(text.utf8.count + 3)
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"):
                b64.unicodeScalars.append(Unicode.Scalar(c))
            case UInt8(ascii: "-"): b64.append("+")
            case UInt8(ascii: "_"): b64.append("/")
            default: return nil
            }
        }
        // The last character of an unpadded encoding carries bits that decode to nothing; they must be
        // zero, or two different strings would decode to the same bytes.
        let unusedBits: UInt8
        switch b64.utf8.count % 4 {
        case 0: unusedBits = 0
        case 2: unusedBits = 0x0F; b64 += "=="
        case 3: unusedBits = 0x03; b64 += "="
        default: return nil
        }
        if unusedBits != 0, let last = text.utf8.last, sextet(last) & unusedBits != 0 { return nil }
        guard let data = Data(base64Encoded: b64) else { return nil }
        return [UInt8](data)
    }

    static func decode(_ text: String) -> [UInt8]? { decode(text[...]) }

    private static func sextet(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): return 62
        default: return 63
        }
    }
}
