/// The whole session sealed into the browser's cookie, split into numbered chunks when it outgrows one.
/// Nothing is kept on the server, so every server with the key accepts it, and logout can only ask the
/// browser to forget it.
struct CookiePlacement: SessionPlacement {
    static let chunkMarker = "chunks-"
    static let maximumChunks = 32
    /// Browsers keep about 4096 bytes of name, value and attributes per cookie; stay below with margin.
    static let maximumSetCookieLength = 4000

    var isRevocable: Bool { false }

    func load(_ jar: SessionJar, now: Int64) -> SessionJar.Loaded? {
        var reassembled = false
        for value in jar.sessionCookieValues() {
            var sealed = value
            if value.utf8.starts(with: Self.chunkMarker.utf8) {
                // One reassembly per request, whatever the number of markers.
                guard !reassembled, let whole = reassemble(value, jar) else { continue }
                reassembled = true
                sealed = whole
            }
            if let opened = jar.open(String(sealed)) { return opened }
        }
        return nil
    }

    private func reassemble(_ marker: Substring, _ jar: SessionJar) -> Substring? {
        guard let n = Int(marker.dropFirst(Self.chunkMarker.count)), (1...Self.maximumChunks).contains(n),
              let parts = jar.request.cookies.numbered(jar.cookieName + "_", count: n) else { return nil }
        return parts.joined()[...]
    }

    func save(_ session: Session, id: String?, _ jar: SessionJar, now: Int64) -> [String]? {
        jar.seal(session).map { cookieHeaders(for: $0, jar) }
    }

    func refresh(_ loaded: SessionJar.Loaded, _ jar: SessionJar, now: Int64) -> SessionJar.Refresh {
        save(loaded.session, id: nil, jar, now: now).map { .refreshed($0) } ?? .failed
    }

    func end(_ loaded: SessionJar.Loaded, _ jar: SessionJar, now: Int64) {}

    func endSessions(sid: String?, sub: String?, _ jar: SessionJar, now: Int64) -> Int? { nil }

    /// One cookie when it fits; else a marker cookie and numbered chunks sized with their attributes
    /// counted. Chunks the browser still holds from a larger session are cleared.
    private func cookieHeaders(for sealed: String, _ jar: SessionJar) -> [String] {
        let single = jar.cookie(jar.cookieName, sealed).headerValue
        var headers = [String]()
        var count = 0
        if single.utf8.count <= Self.maximumSetCookieLength {
            headers.append(single)
        } else {
            let overhead = jar.cookie(jar.cookieName + "_\(Self.maximumChunks)", "").headerValue.utf8.count
            // A very long cookie path or domain leaves little room per chunk, never none (no division
            // by zero on a request path).
            let size = max(512, Self.maximumSetCookieLength - overhead)
            let bytes = Array(sealed.utf8)
            count = (bytes.count + size - 1) / size
            headers.append(jar.cookie(jar.cookieName, Self.chunkMarker + String(count)).headerValue)
            for i in 0..<count {
                let part = bytes[(i * size)..<min(bytes.count, (i + 1) * size)]
                headers.append(jar.cookie(jar.cookieName + "_\(i)", String(decoding: part, as: UTF8.self)).headerValue)
            }
        }
        return headers + jar.clearingChunks(from: count)
    }
}
