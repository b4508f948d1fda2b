/// Reads a Cookie request header (RFC 6265 §5.4): `name=value` pairs separated by `;`. Every pair is
/// kept, in order, since a browser may send two cookies of one name (different paths).
struct CookieHeader {
    let pairs: [(name: Substring, value: Substring)]

    /// Beyond this the header is not parsed at all; browsers cap a cookie header well below it.
    static let maximumLength = 64 * 1024

    init(_ header: String?) {
        guard let header, header.utf8.count <= Self.maximumLength else {
            pairs = []
            return
        }
        var pairs = [(name: Substring, value: Substring)]()
        for part in header.split(separator: ";") {
            guard let eq = part.firstIndex(of: "=") else { continue }
            let name = part[..<eq].drop { $0 == " " || $0 == "\t" }
            var value = part[part.index(after: eq)...]
            while value.last == " " || value.last == "\t" { value = value.dropLast() }
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
            pairs.append((name, value))
        }
        self.pairs = pairs
    }

    func values(named name: String) -> [Substring] {
        pairs.filter { $0.name == name }.map(\.value)
    }

    func names(withPrefix prefix: String) -> [Substring] {
        pairs.map(\.name).filter { $0.hasPrefix(prefix) }
    }
}
