/// Checks what JSONDecoder does not: that no object repeats a member name (JSONDecoder keeps the
/// first, while RFC 7515 §4 and RFC 7519 §4 allow only rejecting or keeping the last — a token whose
/// header says "alg" twice would otherwise mean different things to different libraries), and that
/// nesting stays shallow. Syntax errors are left to JSONDecoder, which runs after this.
enum JSONShape {
    enum Result: Equatable {
        case ok
        case duplicate
        case tooDeep
        case malformed
    }

    static let maximumDepth = 32

    private enum Container {
        case object(names: Set<String>, expectingName: Bool)
        case array
    }

    static func check(_ bytes: [UInt8]) -> Result {
        var stack = [Container]()
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard stack.count < maximumDepth else { return .tooDeep }
                stack.append(c == UInt8(ascii: "{") ? .object(names: [], expectingName: true) : .array)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard stack.popLast() != nil else { return .malformed }
            case UInt8(ascii: ","):
                if case .object(let names, _) = stack.last { stack[stack.count - 1] = .object(names: names, expectingName: true) }
            case UInt8(ascii: ":"):
                if case .object(let names, _) = stack.last { stack[stack.count - 1] = .object(names: names, expectingName: false) }
            case UInt8(ascii: "\""):
                guard let (string, end) = readString(bytes, from: i + 1) else { return .malformed }
                if case .object(var names, true) = stack.last {
                    guard names.insert(string).inserted else { return .duplicate }
                    stack[stack.count - 1] = .object(names: names, expectingName: false)
                }
                i = end
            default:
                break
            }
            i += 1
        }
        return .ok
    }

    /// The unescaped string starting after an opening quote, and the index of its closing quote.
    private static func readString(_ b: [UInt8], from start: Int) -> (String, Int)? {
        var out = [UInt8]()
        var units = [UInt16]()
        var i = start
        func flushUnits() {
            if !units.isEmpty {
                out += Array(String(decoding: units, as: UTF16.self).utf8)
                units.removeAll()
            }
        }
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                flushUnits()
                return (String(decoding: out, as: UTF8.self), i)
            }
            if c == UInt8(ascii: "\\") {
                guard i + 1 < b.count else { return nil }
                let e = b[i + 1]
                if e == UInt8(ascii: "u") {
                    guard i + 5 < b.count, let u = UInt16(String(decoding: b[(i + 2)...(i + 5)], as: UTF8.self), radix: 16) else { return nil }
                    units.append(u)
                    i += 6
                    continue
                }
                flushUnits()
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                default: out.append(e)
                }
                i += 2
                continue
            }
            flushUnits()
            out.append(c)
            i += 1
        }
        return nil
    }
}
