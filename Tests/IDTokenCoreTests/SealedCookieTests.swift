import Testing
@testable import IDTokenCore

@Suite struct SealedCookieTests {
    static func keys(_ lines: [String]) -> SessionKeys? { try? SessionKeys(lines: lines) }
    static let keyA = "Q2hhbmdlIG1lOiB0aGlzIGlzIGEgdGVzdCBrZXkgb25seSE="
    static let keyB = "QW5vdGhlciB0ZXN0IGtleSwgYWxzbyBub3QgYSBzZWNyZXQh"

    @Test func roundTrip() throws {
        let keys = try #require(Self.keys([Self.keyA]))
        let sealed = try #require(SealedCookie.seal(Array("hello".utf8), keys: keys, purpose: .session, context: "c"))
        #expect(SealedCookie.open(sealed[...], keys: keys, purpose: .session, context: "c") == Array("hello".utf8))
    }

    @Test func anyChangedCharacterMakesItUnopenable() throws {
        let keys = try #require(Self.keys([Self.keyA]))
        let sealed = Array(try #require(SealedCookie.seal(Array("session payload".utf8), keys: keys, purpose: .session, context: "c")).utf8)
        for i in sealed.indices {
            var t = sealed
            t[i] = t[i] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(SealedCookie.open(String(decoding: t, as: UTF8.self)[...], keys: keys, purpose: .session, context: "c") == nil)
        }
    }

    @Test func wrongKeyPurposeOrContextCannotOpen() throws {
        let a = try #require(Self.keys([Self.keyA])), b = try #require(Self.keys([Self.keyB]))
        let sealed = try #require(SealedCookie.seal([1, 2, 3], keys: a, purpose: .session, context: "c"))
        #expect(SealedCookie.open(sealed[...], keys: b, purpose: .session, context: "c") == nil)
        #expect(SealedCookie.open(sealed[...], keys: a, purpose: .state, context: "c") == nil)
        #expect(SealedCookie.open(sealed[...], keys: a, purpose: .session, context: "other site") == nil)
    }

    @Test func rolloverNewKeySealsOldKeyStillOpens() throws {
        let old = try #require(Self.keys([Self.keyA]))
        let rolled = try #require(Self.keys([Self.keyB, Self.keyA]))
        let before = try #require(SealedCookie.seal([9], keys: old, purpose: .session, context: "c"))
        #expect(SealedCookie.open(before[...], keys: rolled, purpose: .session, context: "c") == [9])
        let after = try #require(SealedCookie.seal([8], keys: rolled, purpose: .session, context: "c"))
        #expect(SealedCookie.open(after[...], keys: old, purpose: .session, context: "c") == nil)
        #expect(SealedCookie.open(after[...], keys: try #require(Self.keys([Self.keyB])), purpose: .session, context: "c") == [8])
    }

    @Test func garbageIsRefusedNotTrapped() throws {
        let keys = try #require(Self.keys([Self.keyA]))
        for junk in ["", "A", "AQ", "%%%", String(repeating: "A", count: 20_000), "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            #expect(SealedCookie.open(junk[...], keys: keys, purpose: .session, context: "c") == nil)
        }
    }

    @Test func shortKeysAreRefused() {
        #expect(throws: ConfigError.self) { try SessionKeys(lines: ["too short"]) }
        #expect(throws: ConfigError.self) { try SessionKeys(lines: []) }
    }
}
