import FoundationEssentials
import Testing
@testable import IDTokenCore

/// RFC 7520 §4.1–4.4, the JOSE cookbook's signed examples, verified by the same code that verifies ID
/// tokens; and any changed byte fails them.
@Suite struct RFC7520Tests {
    struct Vectors: Decodable {
        struct Example: Decodable, Sendable, CustomTestStringConvertible {
            let section: String
            let alg: String
            let key: String
            let compact: String
            var testDescription: String { "§\(section) \(alg)" }
        }
        let keys: [String: JWK.Members]
        let examples: [Example]
    }

    static let vectors: Vectors? = try? JSONDecoder().decode(Vectors.self, from: Data(Fixture.bytes("rfc7520-signatures.json")))

    func verify(_ compact: String, _ example: Vectors.Example) throws {
        let vectors = try #require(Self.vectors)
        let members = try #require(vectors.keys[example.key])
        let (jws, alg) = try IDTokenValidator.parse(compact, allowed: Set(SignatureAlgorithm.allCases))
        #expect(alg.rawValue == example.alg)
        if alg.isHMAC {
            let secret = try #require(members.k.flatMap(Base64URL.decode))
            try IDTokenValidator.verifySignature(jws, alg: alg, keys: JWKSet(keys: []), secret: secret)
        } else {
            let set = JWKSet(keys: [try JWK(members: members)])
            try IDTokenValidator.verifySignature(jws, alg: alg, keys: set, secret: nil)
        }
    }

    @Test(arguments: vectors?.examples ?? [])
    func exampleVerifies(_ example: Vectors.Example) throws {
        try verify(example.compact, example)
    }

    @Test(arguments: vectors?.examples ?? [])
    func anyFlippedByteFails(_ example: Vectors.Example) throws {
        let bytes = Array(example.compact.utf8)
        let firstDot = try #require(bytes.firstIndex(of: UInt8(ascii: ".")))
        // A character of the header, of the payload, and of the signature.
        for i in [firstDot / 2, firstDot + 10, bytes.count - 5] {
            var t = bytes
            t[i] = t[i] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(throws: TokenError.self) { try verify(String(decoding: t, as: UTF8.self), example) }
        }
    }

    @Test func allFourSectionsArePresent() throws {
        #expect(try #require(Self.vectors).examples.map(\.section) == ["4.1", "4.2", "4.3", "4.4"])
    }
}
