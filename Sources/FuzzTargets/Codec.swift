/// The encodings the harness needs to build inputs the way a browser or provider would. Written here
/// rather than borrowed from IDTokenCore so that the harness does not share a bug with the code under test.
enum Codec {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func base64url<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let b = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity(b.count * 4 / 3 + 3)
        var i = 0
        while i < b.count {
            let n = Int(b[i]) << 16 | (i + 1 < b.count ? Int(b[i + 1]) << 8 : 0) | (i + 2 < b.count ? Int(b[i + 2]) : 0)
            out.append(alphabet[n >> 18 & 63])
            out.append(alphabet[n >> 12 & 63])
            if i + 1 < b.count { out.append(alphabet[n >> 6 & 63]) }
            if i + 2 < b.count { out.append(alphabet[n & 63]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Form encoding of one value: everything but RFC 3986 unreserved characters as %XX.
    static func formEncode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let hex = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        for c in bytes {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(c)
            default:
                out += [UInt8(ascii: "%"), hex[Int(c >> 4)], hex[Int(c & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The value of `name` in a URL's query (values the module generates are base64url: no decoding needed).
    static func queryValue(_ url: String, _ name: String) -> String? {
        guard let q = url.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in q.split(separator: "&") where pair.hasPrefix(name + "=") {
            return String(pair.dropFirst(name.count + 1))
        }
        return nil
    }

    /// `name=value` of a Set-Cookie header, or nil for one that clears a cookie.
    static func cookiePair(_ setCookie: String) -> (name: Substring, value: Substring)? {
        guard !setCookie.contains("Max-Age=0"), let first = setCookie.split(separator: ";").first,
              let eq = first.firstIndex(of: "=") else { return nil }
        return (first[..<eq], first[first.index(after: eq)...])
    }
}

/// The length-prefixed binary layout the module seals into cookies (Util/ByteCodec.swift), written
/// independently so that seeds for the decoders behind the cipher can be made. The replay test checks
/// that these still open to a session or a login, so a format change cannot silently blind the fuzzers.
struct SealedLayout {
    private(set) var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }

    mutating func i64(_ v: Int64) {
        let u = UInt64(bitPattern: v)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: u >> UInt64(shift))) }
    }

    mutating func string(_ s: String) {
        let n = UInt32(s.utf8.count)
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: n >> UInt32(shift))) }
        bytes += s.utf8
    }

    /// A session (Session.swift, format 3); claims are (name, flattened value, JSON or "").
    static func session(created: Int64, expires: Int64, refreshed: Int64, subject: String, issuer: String, sid: String,
                        idToken: String, remoteUser: String, claims: [(String, String, String)]) -> [UInt8] {
        var w = SealedLayout()
        w.u8(3)
        w.i64(created)
        w.i64(expires)
        w.i64(refreshed)
        for s in [subject, issuer, sid, idToken, remoteUser] { w.string(s) }
        w.i64(Int64(claims.count))
        for (n, v, j) in claims {
            w.string(n)
            w.string(v)
            w.string(j)
        }
        return w.bytes
    }

    /// A login in progress (LoginState.swift, format 3); maxAge -1 for none, acr values space-joined.
    static func loginState(created: Int64, state: String, nonce: String, returnTo: String, maxAge: Int64, acr: String) -> [UInt8] {
        var w = SealedLayout()
        w.u8(3)
        w.i64(created)
        w.string(state)
        w.string(nonce)
        w.string(returnTo)
        w.i64(maxAge)
        w.string(acr)
        return w.bytes
    }
}
