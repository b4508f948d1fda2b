/// IDTokenTrustedProxies and IDTokenForwardedHeaders: how a request that came through a reverse proxy
/// (a TLS-terminating load balancer, an ingress) is seen as the browser sent it. The scheme and host the
/// browser used decide the redirect URI, the return URL, logout's own origin and the cookies' `Secure`
/// and `__Host-`; behind a proxy httpd sees the proxy's request instead, and the proxy says what the
/// browser's was in `X-Forwarded-Proto`/`-Host`/`-Port` or `Forwarded` (RFC 7239).
///
/// Anyone can send those headers, so they are believed only from a connection whose peer address (the
/// TCP peer, c->client_ip, which mod_remoteip leaves alone) lies in one of the trusted ranges, and only
/// the headers the admin names. From anyone else they are ignored, silently: a per-request warning would
/// fill the log with what any client may send.
package struct TrustedProxies: Equatable, Sendable, CustomStringConvertible {
    package var ranges: [IPRange] = []
    /// The headers believed, kept as bits: behind a proxy every request asks, and Set.contains hashed
    /// the header's name, 370 instructions each time.
    private var believed: UInt8

    package var headers: Set<ForwardedHeader> {
        get { Set(ForwardedHeader.allCases.filter(believes)) }
        set { believed = newValue.reduce(0) { $0 | $1.bit } }
    }

    package init(ranges: [IPRange] = [], headers: Set<ForwardedHeader> = ForwardedHeader.standard) {
        self.ranges = ranges
        believed = headers.reduce(0) { $0 | $1.bit }
    }

    func believes(_ header: ForwardedHeader) -> Bool { believed & header.bit != 0 }

    package var isEmpty: Bool { ranges.isEmpty }

    /// In a stable order (the headers are a set).
    package var description: String {
        ranges.map(\.description).joined(separator: " ") + " / "
            + ForwardedHeader.allCases.filter(believes).map(\.rawValue).joined(separator: " ")
    }

    func trusts(_ address: IPAddress) -> Bool { ranges.contains { $0.contains(address) } }

    /// The connection's peer as httpd gives it. An IPv4 peer is checked without making an IPAddress:
    /// behind a proxy this runs on every request, and the address's array cost 1,600 instructions.
    func trusts(peer: String) -> Bool {
        if let v4 = IPAddress.parseV4(peer.utf8) { return ranges.contains { $0.contains(v4: v4) } }
        guard let address = IPAddress(peer: peer) else { return false }
        return trusts(address)
    }

    /// The start-up line: which proxies are believed, and for which headers.
    var notice: String? {
        guard !ranges.isEmpty else { return nil }
        let names = ForwardedHeader.allCases.filter(believes).map(\.rawValue).joined(separator: ", ")
        return "IDTokenTrustedProxies: \(names) believed from \(ranges.map(\.description).joined(separator: " ")) only (the connection's peer address); from any other peer they are ignored"
    }

    /// The scheme and host the browser used, when the request comes from a trusted proxy that says so;
    /// otherwise the request as it is. Values that are not a scheme or a host are ignored.
    package func apply(to request: inout AuthRequest) {
        guard !ranges.isEmpty, let peer = request.peerAddress, trusts(peer: peer) else { return }
        var scheme: String?, host: String?
        if believes(.forwarded), let value = request.forwarded, let element = ForwardedElement.believed(value, trusting: self) {
            scheme = element.proto
            host = element.host
        }
        if scheme == nil, host == nil {
            if believes(.xForwardedProto) { scheme = Self.last(request.xForwardedProto).flatMap(Self.scheme) }
            if believes(.xForwardedHost) { host = Self.last(request.xForwardedHost).flatMap(Self.host) }
            if believes(.xForwardedPort), let port = Self.last(request.xForwardedPort).flatMap(Self.port) {
                host = Self.withPort(host ?? request.host, port)
            }
        }
        if let scheme { request.scheme = scheme }
        if let host { request.host = Self.withoutDefaultPort(host, scheme: request.scheme) }
    }

    /// The scheme alone, as `apply` makes it: what FastPass needs, without working out the host. Nil
    /// when only `apply` can say (a `Forwarded` header that IDTokenForwardedHeaders names).
    package func scheme(peer: String?, xForwardedProto: String?, forwarded: String?, scheme: String) -> String? {
        guard !ranges.isEmpty, let peer, trusts(peer: peer) else { return scheme }
        if believes(.forwarded), forwarded != nil { return nil }
        guard believes(.xForwardedProto) else { return scheme }
        return Self.last(xForwardedProto).flatMap(Self.scheme) ?? scheme
    }

    /// The value the proxy nearest to httpd wrote: the last of a list (proxies that append put theirs
    /// last; anything before it came from further away, possibly from the client).
    /// On the bytes, without a copy: trimming by Character cost 1,500 instructions on every proxied
    /// request. The bounds sit next to ASCII bytes (a comma, a space, a tab) or at the ends, so they
    /// are Character boundaries.
    static func last(_ header: String?) -> Substring? {
        guard let header else { return nil }
        let bytes = header.utf8
        let isSpace: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        var start = bytes.lastIndex(of: UInt8(ascii: ",")).map { bytes.index(after: $0) } ?? bytes.startIndex
        var end = bytes.endIndex
        while start < end, isSpace(bytes[start]) { start = bytes.index(after: start) }
        while start < end, isSpace(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        return start == end ? nil : header[start..<end]
    }

    static func scheme(_ value: Substring) -> String? {
        // Compared on the bytes, any case: no lowercased copy on every proxied request.
        func named(_ name: StaticString) -> Bool {
            let v = value.utf8
            guard v.count == name.utf8CodeUnitCount else { return false }
            return zip(v, UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)).allSatisfy { $0 | 0x20 == $1 }
        }
        if named("https") { return "https" }
        if named("http") { return "http" }
        return nil
    }

    /// A Host header's value: a DNS name, an IPv4 address or a bracketed IPv6 address, and an optional
    /// port; lowercased. Nothing else (no user, path, spaces or control characters) is taken.
    static func host(_ value: Substring) -> String? {
        let v = value.lowercased()
        guard !v.isEmpty, v.utf8.count <= 261 else { return nil }
        var name = Substring(v), port: Substring?
        if v.hasPrefix("[") {
            guard let close = v.firstIndex(of: "]") else { return nil }
            let inside = v[v.index(after: v.startIndex)..<close]
            guard IPAddress(inside, allowV4: false) != nil else { return nil }
            name = v[...close]
            let rest = v[v.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                port = rest.dropFirst()
            }
        } else if let colon = v.firstIndex(of: ":") {
            name = v[..<colon]
            port = v[v.index(after: colon)...]
        }
        if let port, Self.port(port) == nil { return nil }
        if !v.hasPrefix("[") {
            guard !name.isEmpty, name.utf8.count <= 253, name.utf8.allSatisfy({ c in
                (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                    || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
            }) else { return nil }
        }
        return v
    }

    static func port(_ value: Substring) -> Int? {
        guard !value.isEmpty, value.utf8.count <= 5, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let n = Int(value), (1...65535).contains(n) else { return nil }
        return n
    }

    /// `host` with its port replaced by `port`.
    static func withPort(_ host: String, _ port: Int) -> String {
        LoopDiagnosis.hostName(host) + ":" + String(port)
    }

    /// Browsers leave the scheme's own port out of Host and Origin: so does the URL built from it (the
    /// redirect URI registered at the provider, the origin logout compares with).
    static func withoutDefaultPort(_ host: String, scheme: String) -> String {
        let suffix = scheme == "https" ? ":443" : ":80"
        return host.hasSuffix(suffix) ? String(host.dropLast(suffix.count)) : host
    }
}

/// The headers IDTokenForwardedHeaders may name.
package enum ForwardedHeader: String, CaseIterable, Sendable {
    case xForwardedProto = "X-Forwarded-Proto"
    case xForwardedHost = "X-Forwarded-Host"
    case xForwardedPort = "X-Forwarded-Port"
    case forwarded = "Forwarded"

    /// What most proxies set (nginx, HAProxy, Traefik, cloud load balancers); `Forwarded` only when
    /// named, since most proxies pass a client's `Forwarded` on untouched.
    package static let standard: Set<ForwardedHeader> = [.xForwardedProto, .xForwardedHost, .xForwardedPort]

    var bit: UInt8 {
        switch self {
        case .xForwardedProto: return 1
        case .xForwardedHost: return 2
        case .xForwardedPort: return 4
        case .forwarded: return 8
        }
    }

    init?(name: String) {
        guard let h = Self.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else { return nil }
        self = h
    }
}

/// One element of an RFC 7239 `Forwarded` header: what one proxy says of the request it received.
struct ForwardedElement: Equatable {
    var forAddress: String?
    var proto: String?
    var host: String?

    /// The element to believe: the last one (the proxy nearest to httpd, whose peer is trusted), or,
    /// while an element's `for` is itself a trusted proxy, the one before it (that proxy's own).
    /// Nil when the header cannot be read, or the element chosen says neither proto nor host.
    static func believed(_ header: String, trusting proxies: TrustedProxies) -> ForwardedElement? {
        guard let elements = parse(header), var i = elements.indices.last else { return nil }
        while i > 0, let f = elements[i].forAddress, let address = IPAddress(forwardedFor: f), proxies.trusts(address) {
            i -= 1
        }
        let e = elements[i]
        let chosen = ForwardedElement(forAddress: e.forAddress, proto: e.proto.flatMap { TrustedProxies.scheme($0[...]) },
                                      host: e.host.flatMap { TrustedProxies.host($0[...]) })
        return chosen.proto == nil && chosen.host == nil ? nil : chosen
    }

    /// `Forwarded: for=192.0.2.60;proto=https;host=app.example.org, for="[2001:db8::17]:4711"`: elements
    /// separated by commas, pairs by semicolons, values tokens or quoted strings. Nil for anything
    /// else (the whole header is then ignored), a repeated parameter in an element among it.
    static func parse(_ header: String) -> [ForwardedElement]? {
        guard header.utf8.count <= 8192 else { return nil }
        var elements = [ForwardedElement](), current = [String: String](), name = "", value = "", inName = true
        var quoted = false, escaped = false, wasQuoted = false
        func endPair() -> Bool {
            let n = name.trimmingSpaces.lowercased()
            let v = wasQuoted ? value : value.trimmingSpaces
            defer { name = ""; value = ""; inName = true; wasQuoted = false }
            if n.isEmpty, v.isEmpty { return true }
            guard !n.isEmpty, !inName, current[n] == nil else { return false }
            current[n] = v
            return true
        }
        func endElement() -> Bool {
            guard endPair() else { return false }
            defer { current = [:] }
            if current.isEmpty { return true }
            elements.append(ForwardedElement(forAddress: current["for"], proto: current["proto"], host: current["host"]))
            return elements.count <= 64
        }
        for ch in header.unicodeScalars {
            if ch.value < 0x20 && ch != "\t" || ch.value == 0x7F { return nil }
            if quoted {
                if escaped { value.unicodeScalars.append(ch); escaped = false }
                else if ch == "\\" { escaped = true }
                else if ch == "\"" { quoted = false }
                else { value.unicodeScalars.append(ch) }
                continue
            }
            switch ch {
            case "=":
                guard inName else { return nil }
                inName = false
            case "\"":
                guard !inName, value.trimmingSpaces.isEmpty, !wasQuoted else { return nil }
                quoted = true
                wasQuoted = true
                value = ""
            case ";":
                guard endPair() else { return nil }
            case ",":
                guard endElement() else { return nil }
            default:
                if wasQuoted, ch != " ", ch != "\t" { return nil }
                if inName { name.unicodeScalars.append(ch) } else if !wasQuoted { value.unicodeScalars.append(ch) }
            }
        }
        guard !quoted, endElement() else { return nil }
        return elements
    }
}

/// An IPv4 or IPv6 address, as 16 bytes (IPv4 as ::ffff:a.b.c.d, so that an IPv4 peer reported on a
/// dual-stack socket as `::ffff:10.0.0.1` matches `10.0.0.0/8`).
package struct IPAddress: Equatable, Sendable, CustomStringConvertible {
    package let bytes: [UInt8]
    /// Written as IPv4.
    let isV4: Bool

    private static let v4Prefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]

    /// A literal address, strictly: dotted decimal (no leading zeros) or RFC 4291 text, no zone.
    init?(_ text: Substring, allowV4: Bool = true) {
        if allowV4, let v4 = Self.parseV4(text.utf8) {
            // One allocation: the peer is parsed on every request behind a trusted proxy.
            bytes = [UInt8](unsafeUninitializedCapacity: 16) { buffer, count in
                for i in 0..<16 { buffer[i] = Self.mapped(v4, byte: i) }
                count = 16
            }
            isV4 = true
        } else if let v6 = Self.parseV6(text) {
            bytes = v6
            isV4 = false
        } else {
            return nil
        }
    }

    /// The connection's peer as httpd gives it: a zone (`fe80::1%eth0`) is dropped.
    init?(peer: String) {
        let text = peer.utf8.firstIndex(of: UInt8(ascii: "%")).map { peer[..<$0] } ?? peer[...]
        self.init(text)
    }

    /// A Forwarded `for=` value: `192.0.2.60`, `192.0.2.60:4711`, `[2001:db8::17]`, `[2001:db8::17]:4711`;
    /// `unknown` and obfuscated names (`_hidden`) are no address.
    init?(forwardedFor value: String) {
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else { return nil }
            self.init(value[value.index(after: value.startIndex)..<close], allowV4: false)
        } else {
            self.init(value.utf8.firstIndex(of: UInt8(ascii: ":")).map { value[..<$0] } ?? value[...])
            guard isV4 else { return nil }
        }
    }

    var isV4Mapped: Bool { Array(bytes.prefix(12)) == Self.v4Prefix }

    /// Byte `i` of the IPv4-mapped form (::ffff:a.b.c.d) of an address as parseV4 gives it.
    static func mapped(_ v4: UInt32, byte i: Int) -> UInt8 {
        i < 10 ? 0 : i < 12 ? 0xFF : UInt8(truncatingIfNeeded: v4 >> (8 * (15 - i)))
    }

    package var description: String {
        if isV4 || isV4Mapped { return bytes.suffix(4).map(String.init).joined(separator: ".") }
        // The shortest RFC 5952 form: the longest run of two or more zero groups as "::".
        let groups = stride(from: 0, to: 16, by: 2).map { Int(bytes[$0]) << 8 | Int(bytes[$0 + 1]) }
        var best = (start: -1, length: 0), run = (start: -1, length: 0)
        for (i, g) in groups.enumerated() {
            if g == 0 {
                run = run.start < 0 ? (i, 1) : (run.start, run.length + 1)
                if run.length > best.length { best = run }
            } else {
                run = (-1, 0)
            }
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard best.length >= 2 else { return hex(0..<8) }
        return hex(0..<best.start) + "::" + hex((best.start + best.length)..<8)
    }

    /// Four decimal parts of 1 to 3 digits, no leading zero, each at most 255, in one word (first part
    /// highest). On the bytes and without an array: behind a trusted proxy the peer is parsed on every
    /// request, and splitting into Substrings cost 7,400 instructions for "127.0.0.1".
    static func parseV4<Bytes: Sequence<UInt8>>(_ text: Bytes) -> UInt32? {
        var out: UInt32 = 0, parts = 0, value = 0, digits = 0, first: UInt8 = 0
        for c in text {
            if c == UInt8(ascii: ".") {
                guard digits > 0, value <= 255, parts < 3 else { return nil }
                out = out << 8 | UInt32(value)
                parts += 1
                value = 0
                digits = 0
                continue
            }
            guard c >= 48, c <= 57, digits < 3 else { return nil }
            if digits == 0 { first = c } else if first == 48 { return nil }  // a leading zero
            value = value * 10 + Int(c - 48)
            digits += 1
        }
        guard digits > 0, value <= 255, parts == 3 else { return nil }
        return out << 8 | UInt32(value)
    }

    private static func parseV6(_ text: Substring) -> [UInt8]? {
        guard text.utf8.count >= 2, text.utf8.count <= 45 else { return nil }
        // Split once at "::" (a second one is an error), on the bytes.
        let u = Array(text.utf8)
        var halves = [text]
        if let at = (0..<(u.count - 1)).first(where: { u[$0] == 0x3A && u[$0 + 1] == 0x3A }) {
            let head = Substring(decoding: u[..<at], as: UTF8.self), tail = Substring(decoding: u[(at + 2)...], as: UTF8.self)
            guard !tail.contains("::"), !head.hasSuffix(":"), !tail.hasPrefix(":") else { return nil }
            halves = [head, tail]
        }
        func groups(_ s: Substring, allowV4Tail: Bool) -> [UInt8]? {
            if s.isEmpty { return [] }
            var out = [UInt8]()
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, p) in parts.enumerated() {
                if i == parts.count - 1, allowV4Tail, p.contains("."), let v4 = parseV4(p.utf8) {
                    out += (12..<16).map { IPAddress.mapped(v4, byte: $0) }
                    continue
                }
                guard !p.isEmpty, p.utf8.count <= 4, let n = UInt16(p, radix: 16), p.utf8.allSatisfy({ Base16.isDigit($0) }) else { return nil }
                out += [UInt8(n >> 8), UInt8(n & 0xFF)]
            }
            return out
        }
        if halves.count == 1 {
            guard let all = groups(halves[0], allowV4Tail: true), all.count == 16 else { return nil }
            return all
        }
        guard let head = groups(halves[0], allowV4Tail: false), let tail = groups(halves[1], allowV4Tail: true),
              head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

private enum Base16 {
    static func isDigit(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F"))
    }
}

/// An address or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`).
package struct IPRange: Equatable, Sendable, CustomStringConvertible {
    let network: IPAddress
    /// Bits of the 16-byte form that must match (an IPv4 /8 is 104).
    let prefixBits: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let width = address.isV4 ? 32 : 128
        var length = width
        if parts.count == 2 {
            let p = parts[1]
            guard !p.isEmpty, p.utf8.count <= 3, p.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(p), n <= width else { return nil }
            length = n
        }
        network = address
        prefixBits = length + (address.isV4 ? 96 : 0)
    }

    func contains(_ address: IPAddress) -> Bool { contains { address.bytes[$0] } }

    /// An IPv4 address as parseV4 gives it, seen as its 16-byte IPv4-mapped form without making it.
    func contains(v4 word: UInt32) -> Bool {
        contains { IPAddress.mapped(word, byte: $0) }
    }

    /// `byte(i)`: byte i of the address's 16-byte form.
    private func contains(byte: (Int) -> UInt8) -> Bool {
        var bits = prefixBits, i = 0
        while bits >= 8 {
            if byte(i) != network.bytes[i] { return false }
            bits -= 8
            i += 1
        }
        if bits == 0 { return true }
        let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        return byte(i) & mask == network.bytes[i] & mask
    }

    package var description: String {
        let width = network.isV4 ? 32 : 128, length = prefixBits - (network.isV4 ? 96 : 0)
        return length == width ? network.description : network.description + "/" + String(length)
    }
}
