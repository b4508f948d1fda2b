import FoundationEssentials
import Testing
@testable import IDTokenCore

/// The hand-written JSON parser that reads every token's claims: what it accepts must read as
/// JSONDecoder reads it, and what RFC 8259 refuses it refuses.
@Suite struct JSONParserTests {
    static let valid: [String] = [
        #"{}"#, #"[]"#, #" { "a" : 1 } "#, #"{"sub":"alice","aud":["x","y"],"exp":1700000000,"n":null,"t":true,"f":false}"#,
        #"{"x":-0.5e+3,"y":0,"z":1E2,"w":-12.25,"big":1e308}"#, #"{"e":"\"\\\/\b\f\n\r\t"}"#,
        #"{"u":"\u00e9\u4e2d\ud83d\ude00","raw":"Zoë 中 😀"}"#, #"{"nested":{"a":[{"b":[[]]}]}}"#, #""just a string""#, "42",
        "{\"nul\":\"a\\u0000b\"}",
    ]

    @Test(arguments: valid) func readsAsJSONDecoderDoes(_ text: String) throws {
        let ours = try JSONParser.parse(Array(text.utf8))
        let theirs = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == theirs)
    }

    static let malformed: [String] = [
        "", " ", "{", "}", "[", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[,1]", "{\"a\" 1}", "{a:1}", "{'a':1}",
        "01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "tru", "nul", "True", "{\"a\":1}}",
        "{\"a\":1} x", "[1 2]", "\"unterminated", "\"bad \\x escape\"", "\"\\u12\"", "\"\\uZZZZ\"",
        "\"\\ud800\"", "\"\\ud800\\u0041\"", "\"\\udc00\"", "\"raw\ttab\"", "\"raw\nnewline\"", "{\"a\":1,\"b\"}",
    ]

    @Test(arguments: malformed) func refusesMalformed(_ text: String) {
        #expect(throws: JSONParser.Failure.malformed) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func refusesInvalidUTF8() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF8, 0x88, 0x80, 0x80, 0x80, 0x22]] {
            #expect(throws: JSONParser.Failure.malformed) { try JSONParser.parse(bytes) }
        }
    }

    @Test func refusesRepeatedMembersAtAnyDepth() {
        for text in [#"{"alg":"RS256","alg":"none"}"#, #"{"a":{"b":1,"b":1}}"#, #"[{"x":1,"x":2}]"#, #"{"é":1,"\u00e9":2}"#] {
            #expect(throws: JSONParser.Failure.duplicate) { try JSONParser.parse(Array(text.utf8)) }
        }
        #expect(throws: Never.self) { try JSONParser.parse(Array(#"{"a":{"x":1},"b":{"x":1}}"#.utf8)) }
    }

    @Test func boundsNesting() throws {
        let ok = String(repeating: "[", count: JSONParser.maximumDepth) + String(repeating: "]", count: JSONParser.maximumDepth)
        _ = try JSONParser.parse(Array(ok.utf8))
        for open in ["[", "{\"a\":"] {
            let deep = String(repeating: open, count: 100_000)
            #expect(throws: JSONParser.Failure.tooDeep) { try JSONParser.parse(Array(deep.utf8)) }
        }
    }

    @Test func roundTripsWhatItWrites() throws {
        var rng = SystemRandomNumberGenerator()
        func random(_ depth: Int) -> JSONValue {
            switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &rng) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &rng))
            case 2: return .number(Double(Int.random(in: -1_000_000...1_000_000, using: &rng)) / 8)
            case 3: return .string(String((0..<Int.random(in: 0..<8, using: &rng)).map { _ in
                Character(Unicode.Scalar(UInt8.random(in: 0...0x7F, using: &rng))) }) + "é😀")
            case 4: return .array((0..<Int.random(in: 0..<4, using: &rng)).map { _ in random(depth + 1) })
            default: return .object(Dictionary(uniqueKeysWithValues: (0..<Int.random(in: 0..<4, using: &rng)).map { ("k\($0)", random(depth + 1)) }))
            }
        }
        for _ in 0..<500 {
            let v = random(0)
            #expect(try JSONParser.parse(Array(v.compactJSON.utf8)) == v)
        }
    }
}
