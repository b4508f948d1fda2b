/// Base64url without padding (RFC 7515 §2), the only encoding JOSE uses. Decoding is strict: padding,
/// whitespace, characters outside the alphabet and non-zero trailing bits are refused rather than
/// skipped, so one token has exactly one spelling. Written out by hand (a table and a loop) because it
/// runs on every request for the session cookie, where going through Foundation's Data costs more
/// than the decryption.
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// 0...63 for alphabet characters, 0xFF for anything else.
    private static let values: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    static func isAlphabet(_ c: UInt8) -> Bool { values[Int(c)] != 0xFF }

    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let input = Array(bytes)
        let count = (input.count * 4 + 2) / 3
        // Written straight into the string's storage: every session cookie is encoded here.
        return input.withUnsafeBufferPointer { inp in
            alphabet.withUnsafeBufferPointer { alpha in
                String(unsafeUninitializedCapacity: count) { out in
                    var i = 0, o = 0
                    while i + 3 <= inp.count {
                        let n = UInt32(inp[i]) << 16 | UInt32(inp[i + 1]) << 8 | UInt32(inp[i + 2])
                        out[o] = alpha[Int(n >> 18 & 63)]
                        out[o + 1] = alpha[Int(n >> 12 & 63)]
                        out[o + 2] = alpha[Int(n >> 6 & 63)]
                        out[o + 3] = alpha[Int(n & 63)]
                        i += 3
                        o += 4
                    }
                    let rest = inp.count - i
                    if rest > 0 {
                        let n = UInt32(inp[i]) << 16 | (rest == 2 ? UInt32(inp[i + 1]) << 8 : 0)
                        out[o] = alpha[Int(n >> 18 & 63)]
                        out[o + 1] = alpha[Int(n >> 12 & 63)]
                        o += 2
                        if rest == 2 {
                            out[o] = alpha[Int(n >> 6 & 63)]
                            o += 1
                        }
                    }
                    return o
                }
            }
        }
    }

    static func decode(_ text: Substring) -> [UInt8]? {
        let utf8 = text.utf8
        return utf8.withContiguousStorageIfAvailable { decode($0) } ?? decode(Array(utf8))
    }

    static func decode(_ text: String) -> [UInt8]? { decode(text[...]) }

    /// For text already split out of a byte array (a token's parts): no String made per part.
    static func decode(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        bytes.withContiguousStorageIfAvailable { decode($0) } ?? decode(Array(bytes))
    }

    private static func decode<C: RandomAccessCollection>(_ input: C) -> [UInt8]? where C.Element == UInt8, C.Index == Int {
        let count = input.count
        guard count % 4 != 1 else { return nil }
        let outCount = count / 4 * 3 + (count % 4 == 0 ? 0 : count % 4 - 1)
        var valid = true
        // Written into the array's storage with the table at hand: appending byte by byte (a capacity
        // check each) cost more than the decoding, twice over a login's token.
        let out = values.withUnsafeBufferPointer { table in
            [UInt8](unsafeUninitializedCapacity: outCount) { buffer, initialized in
                var i = input.startIndex, o = 0
                let end = input.endIndex
                defer { initialized = o }
                while end - i >= 4 {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                    let c = table[Int(input[i + 2])], d = table[Int(input[i + 3])]
                    // Valid values are 0...63; the 0xFF of a character outside the alphabet has the top bits set.
                    guard (a | b | c | d) & 0xC0 == 0 else {
                        valid = false
                        return
                    }
                    let n = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    buffer[o] = UInt8(truncatingIfNeeded: n >> 16)
                    buffer[o + 1] = UInt8(truncatingIfNeeded: n >> 8)
                    buffer[o + 2] = UInt8(truncatingIfNeeded: n)
                    o += 3
                    i += 4
                }
                switch end - i {
                case 2:
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                    // The unused low bits of the last character must be zero.
                    guard (a | b) & 0xC0 == 0, b & 0x0F == 0 else {
                        valid = false
                        return
                    }
                    buffer[o] = a << 2 | b >> 4
                    o += 1
                case 3:
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])], c = table[Int(input[i + 2])]
                    guard (a | b | c) & 0xC0 == 0, c & 0x03 == 0 else {
                        valid = false
                        return
                    }
                    buffer[o] = a << 2 | b >> 4
                    buffer[o + 1] = b << 4 | c >> 2
                    o += 2
                default:
                    break
                }
            }
        }
        return valid ? out : nil
    }
}
