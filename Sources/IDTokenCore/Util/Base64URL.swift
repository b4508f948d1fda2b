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
        switch b64.utf8.count % 4 {
        case 0: break
        case 2: b64 += "=="
        case 3: b64 += "="
        default: return nil
        }
        guard let data = Data(base64Encoded: b64) else { return nil }
        return [UInt8](data)
    }

    static func decode(_ text: String) -> [UInt8]? { decode(text[...]) }
}
