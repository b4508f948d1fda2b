/// What a location hands the application for one session: REMOTE_USER, the claim headers and
/// environment variables, and the claims as JSON for `Require idtoken-claim`, already in the bytes
/// Apache will receive (NUL-terminated, ISO-8859-1 where the location asks for it).
///
/// Rendered once per opened session and location shape and kept with the session, so that serving a
/// request copies one block of bytes instead of building some forty strings (see bench/README.md).
package final class RenderedClaims: Sendable {
    /// NUL-terminated strings back to back: the remote user (when there is one), then each header's
    /// name and value, then each environment variable's, then each claim's name and JSON.
    package let bytes: [UInt8]
    /// Where each string of `bytes` starts, in that order, and its length without the NUL: what the
    /// module's pairs point at, read on every request.
    package let offsets: [Int]
    package let lengths: [Int]
    package let hasRemoteUser: Bool
    package let headerCount: Int
    package let envCount: Int
    package let claimCount: Int
    /// Header and environment values are ISO-8859-1 bytes (claim names and JSON stay UTF-8).
    package let latin1: Bool

    /// A pass without identity (`IDTokenUnauthAction pass`).
    package static let anonymous = RenderedClaims(remoteUser: nil, headers: [], env: [], claims: [], latin1: false)

    package init(remoteUser: String?, headers: [(String, String)], env: [(String, String)], claims: [(String, String)],
                latin1: Bool) {
        var bytes = [UInt8](), offsets = [Int]()
        func add(_ s: String, latin1: Bool = false) {
            offsets.append(bytes.count)
            if latin1 {
                // Each character up to U+00FF as one byte, anything beyond as '?'.
                for scalar in s.unicodeScalars {
                    bytes.append(scalar.value <= 0xFF && scalar.value != 0 ? UInt8(scalar.value) : UInt8(ascii: "?"))
                }
            } else {
                bytes.append(contentsOf: s.utf8)
            }
            bytes.append(0)
        }
        // Two claims can map to one name (`a.b` and `a_b`): the last wins, as it did when the module set
        // each in turn, and the module may then add the names without looking (idtoken.h).
        let headers = Self.lastOfEachName(headers), env = Self.lastOfEachName(env)
        if let remoteUser { add(remoteUser) }
        for (name, value) in headers + env {
            add(name)
            add(value, latin1: latin1)
        }
        for (name, json) in claims {
            add(name)
            add(json)
        }
        self.bytes = bytes
        self.offsets = offsets
        lengths = offsets.indices.map { i in (i + 1 < offsets.count ? offsets[i + 1] : bytes.count) - 1 - offsets[i] }
        self.hasRemoteUser = remoteUser != nil
        self.headerCount = headers.count
        self.envCount = env.count
        self.claimCount = claims.count
        self.latin1 = latin1
    }

    /// The pairs without those whose name (in any case: Apache's tables ignore it) comes again later.
    static func lastOfEachName(_ pairs: [(String, String)]) -> [(String, String)] {
        var seen = Set<String>()
        var kept = [(String, String)]()
        for pair in pairs.reversed() where seen.insert(pair.0.lowercased()).inserted { kept.append(pair) }
        return kept.count == pairs.count ? pairs : kept.reversed()
    }

    // MARK: Reading back, for tests and anything that is not the C module

    package var remoteUser: String? { hasRemoteUser ? string(0) : nil }
    package var headers: [(String, String)] { pairs(from: firstPair, count: headerCount, latin1: latin1) }
    package var env: [(String, String)] { pairs(from: firstPair + 2 * headerCount, count: envCount, latin1: latin1) }
    package var claims: [(String, String)] {
        pairs(from: firstPair + 2 * (headerCount + envCount), count: claimCount, latin1: false)
    }

    /// The byte length of string `i` (without its NUL).
    package func length(of i: Int) -> Int { lengths[i] }

    private var firstPair: Int { hasRemoteUser ? 1 : 0 }

    private func pairs(from index: Int, count: Int, latin1: Bool) -> [(String, String)] {
        (0..<count).map { (string(index + 2 * $0), string(index + 2 * $0 + 1, latin1: latin1)) }
    }

    private func string(_ i: Int, latin1: Bool = false) -> String {
        let start = offsets[i]
        let end = i + 1 < offsets.count ? offsets[i + 1] - 1 : bytes.count - 1
        let slice = bytes[start..<end]
        return latin1 ? String(String.UnicodeScalarView(slice.map { Unicode.Scalar($0) }))
                      : String(decoding: slice, as: UTF8.self)
    }
}
