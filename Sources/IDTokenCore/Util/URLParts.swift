/// The pieces of an absolute http(s) URL this module needs: scheme, authority and the rest.
/// Deliberately small; anything it cannot split cleanly is refused.
package struct URLParts: Equatable, Sendable {
    let scheme: String      // lowercased
    let host: String        // as written, lowercased, with any port
    let pathAndQuery: String

    init?(_ url: String) {
        guard let sep = url.firstRange(of: "://") else { return nil }
        let scheme = url[..<sep.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = url[sep.upperBound...]
        let hostEnd = rest.firstIndex(where: { (c: Character) -> Bool in c == "/" || c == "?" || c == "#" }) ?? rest.endIndex
        let host = rest[..<hostEnd].lowercased()
        guard !host.isEmpty, !host.contains("@"),
              host.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0 != "\\" }) else { return nil }
        guard url.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else { return nil }
        self.scheme = scheme
        self.host = host
        let tail = String(rest[hostEnd...])
        self.pathAndQuery = tail.isEmpty ? "/" : tail
    }

    var isHTTP: Bool { scheme == "http" || scheme == "https" }

    /// The host without its port.
    var hostName: String {
        if host.hasPrefix("[") { return String(host.prefix { $0 != "]" }) + "]" }
        return String(host.prefix { $0 != ":" })
    }

    /// Browsers treat these as secure contexts even over http, so a Secure cookie works there.
    var isLoopback: Bool {
        let h = hostName
        return h == "localhost" || h.hasSuffix(".localhost") || h.hasPrefix("127.") || h == "[::1]"
    }

    var origin: String { scheme + "://" + host }
}
