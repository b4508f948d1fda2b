#if canImport(Glibc)
import Glibc
#endif

/// The kernel's random bytes, as SystemRandomNumberGenerator gives them (getrandom, here through glibc's
/// getentropy, up to 256 bytes a call), but 64 at a time.
/// SystemRandomNumberGenerator makes a system call per 8 bytes: eight for a login's state and nonce,
/// about 0.5 µs each on a test machine, where one does. Made per request and never shared or kept, so
/// no byte is ever served twice; nothing is fetched until a request asks (a protected request never
/// does). Should getentropy fail, SystemRandomNumberGenerator serves.
package struct BufferedSystemRandom: RandomNumberGenerator {
    private var words: [UInt64] = []
    private var used = 0
    private var fallback = SystemRandomNumberGenerator()

    static let wordsPerFetch = 8

    package init() {}

    package mutating func next() -> UInt64 {
        if used == words.count {
            words = Self.fetch() ?? []
            used = 0
            guard !words.isEmpty else { return fallback.next() }
        }
        defer { used += 1 }
        return words[used]
    }

    private static func fetch() -> [UInt64]? {
        var words = [UInt64](repeating: 0, count: wordsPerFetch)
        let failed = words.withUnsafeMutableBytes { getentropy($0.baseAddress, $0.count) } != 0
        return failed ? nil : words
    }
}
