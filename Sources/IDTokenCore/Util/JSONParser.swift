/// A strict JSON parser (RFC 8259) into JSONValue, for the claims of every ID token: Foundation's
/// JSONDecoder, through Decodable, cost a quarter of a login's CPU. Stricter than JSONDecoder where
/// tokens need it: a repeated member name is refused (RFC 7515 §4, RFC 7519 §4 allow nothing else
/// safe), nesting is bounded, strings must be valid UTF-8 with paired surrogates, and nothing may
/// follow the value. Tested against bad input in JSONParserTests and fuzzed through the JWS target.
enum JSONParser {
    enum Failure: Error, Equatable {
        case malformed
        case duplicate
        case tooDeep
    }

    static let maximumDepth = 32

    static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (b) throws(Failure) -> JSONValue in
            var p = Cursor(bytes: b)
            let value = try p.value(depth: 0)
            p.skipSpace()
            guard p.i == b.count else { throw .malformed }
            return value
        }
    }

    private struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func expect(_ literal: StaticString) throws(Failure) {
            let n = literal.utf8CodeUnitCount
            guard bytes.count - i >= n else { throw .malformed }
            for k in 0..<n where bytes[i + k] != literal.utf8Start[k] { throw .malformed }
            i += n
        }

        mutating func value(depth: Int) throws(Failure) -> JSONValue {
            skipSpace()
            guard let c = peek else { throw .malformed }
            switch c {
            case UInt8(ascii: "{"):
                guard depth < JSONParser.maximumDepth else { throw .tooDeep }
                return try object(depth: depth + 1)
            case UInt8(ascii: "["):
                guard depth < JSONParser.maximumDepth else { throw .tooDeep }
                return try array(depth: depth + 1)
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            default:
                return .number(try number())
            }
        }

        mutating func object(depth: Int) throws(Failure) -> JSONValue {
            i += 1
            var members = [String: JSONValue]()
            skipSpace()
            if peek == UInt8(ascii: "}") {
                i += 1
                return .object(members)
            }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else { throw .malformed }
                let name = try string()
                skipSpace()
                guard peek == UInt8(ascii: ":") else { throw .malformed }
                i += 1
                let v = try value(depth: depth)
                guard members.updateValue(v, forKey: name) == nil else { throw .duplicate }
                skipSpace()
                switch peek {
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "}"):
                    i += 1
                    return .object(members)
                default: throw .malformed
                }
            }
        }

        mutating func array(depth: Int) throws(Failure) -> JSONValue {
            i += 1
            var items = [JSONValue]()
            skipSpace()
            if peek == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            while true {
                items.append(try value(depth: depth))
                skipSpace()
                switch peek {
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "]"):
                    i += 1
                    return .array(items)
                default: throw .malformed
                }
            }
        }

        /// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, then the platform's correctly rounded
        /// conversion of exactly that text.
        mutating func number() throws(Failure) -> Double {
            let start = i
            func digits() -> Int {
                let from = i
                while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
                return i - from
            }
            if peek == UInt8(ascii: "-") { i += 1 }
            if peek == UInt8(ascii: "0") {
                i += 1
            } else if digits() == 0 {
                throw .malformed
            }
            if peek == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { throw .malformed }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                i += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw .malformed }
            }
            guard i - start <= 512, let n = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)) else {
                throw .malformed
            }
            return n
        }

        mutating func string() throws(Failure) -> String {
            i += 1
            // The common case, no escape: the bytes as they are, validated as UTF-8.
            let start = i
            while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\"), bytes[i] >= 0x20 { i += 1 }
            guard i < bytes.count else { throw .malformed }
            // No escape in it (nearly every string): straight from the input, without a copy first.
            if bytes[i] == UInt8(ascii: "\"") {
                guard let s = UTF8Text.validated(UnsafeBufferPointer(rebasing: bytes[start..<i])) else { throw .malformed }
                i += 1
                return s
            }
            var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<i]))
            while true {
                guard i < bytes.count else { throw .malformed }
                let c = bytes[i]
                switch c {
                case UInt8(ascii: "\""):
                    i += 1
                    guard let s = UTF8Text.validated(out) else { throw .malformed }
                    return s
                case UInt8(ascii: "\\"):
                    guard i + 1 < bytes.count else { throw .malformed }
                    let e = bytes[i + 1]
                    i += 2
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"): out.append(contentsOf: try escapedScalar())
                    default: throw .malformed
                    }
                case 0..<0x20:
                    throw .malformed
                default:
                    out.append(c)
                    i += 1
                }
            }
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            guard bytes.count - i >= 4 else { throw .malformed }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                default: throw .malformed
                }
                v = v << 4 | UInt32(d)
                i += 1
            }
            return v
        }

        /// After `\u`: one scalar, from a surrogate pair where needed, as UTF-8.
        mutating func escapedScalar() throws(Failure) -> [UInt8] {
            var v = try hex4()
            if (0xD800...0xDBFF).contains(v) {
                guard bytes.count - i >= 2, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw .malformed }
                i += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw .malformed }
                v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let scalar = Unicode.Scalar(v) else { throw .malformed } // a lone low surrogate
            return Array(String(Character(scalar)).utf8)
        }
    }
}
