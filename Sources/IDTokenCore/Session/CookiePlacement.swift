/// The whole session sealed into the browser's cookie, split into numbered chunks when it outgrows one.
/// Nothing is kept on the server, so every server with the key accepts it, and logout can only ask the
/// browser to forget it. A session too big for the cookie budget (a token with hundreds of groups) goes
/// to the shared store instead, under a random ID as with IDTokenSessionStore cache, when there is one.
struct CookiePlacement: SessionPlacement {
    static let chunkMarker = "chunks-"
    static let maximumChunks = 32
    /// Where a session that does not fit is kept.
    private static let overflow = CachePlacement()

    var isRevocable: Bool { false }

    func load(_ jar: SessionJar, now: Int64) -> SessionJar.Loaded? {
        var reassembled = false
        for value in jar.sessionCookieValues() {
            // A sealed session is longer than an ID: this is one that overflowed to the store.
            if LoginState.isRandomToken(value) {
                if let loaded = Self.overflow.load(id: value, jar, now: now) { return loaded }
                continue
            }
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

    func save(_ session: Session, id: String?, _ jar: SessionJar, now: Int64) -> SessionJar.Saved {
        guard let sealed = jar.seal(session) else { return .failed }
        let cookies = cookies(for: sealed, jar)
        let budget = jar.budget
        if cookies.count <= Self.maximumChunks + 1, budget.fits(cookies.map { ($0.name, $0.value) }) {
            return .stored(cookies.map(\.headerValue) + jar.clearingChunks(from: cookies.count > 1 ? cookies.count - 1 : 0))
        }
        let bytes = CookieBudget.cookieHeaderLength(cookies.map { ($0.name, $0.value) })
        // Only a store every process (and server) shares: a child's own memory would lose the session
        // on the next request another child serves.
        guard jar.request.store != nil else { return .tooLarge(bytes: bytes, limit: budget.sessionLimit) }
        guard case .stored(let headers, _) = Self.overflow.save(session, id: nil, jar, now: now) else { return .failed }
        return .stored(headers + jar.clearingChunks(from: 0), overflowed: true)
    }

    func refresh(_ loaded: SessionJar.Loaded, _ jar: SessionJar, now: Int64) -> SessionJar.Refresh {
        if loaded.id != nil { return Self.overflow.refresh(loaded, jar, now: now) }
        guard case .stored(let headers, _) = save(loaded.session, id: nil, jar, now: now) else { return .failed }
        return .refreshed(headers)
    }

    func end(_ loaded: SessionJar.Loaded, _ jar: SessionJar, now: Int64) {
        if loaded.id != nil { Self.overflow.end(loaded, jar, now: now) }
    }

    func endSessions(sid: String?, sub: String?, _ jar: SessionJar, now: Int64) -> Int? { nil }

    /// One cookie when it fits; else a marker cookie and numbered chunks sized with their attributes
    /// counted.
    private func cookies(for sealed: String, _ jar: SessionJar) -> [SetCookie] {
        let single = jar.cookie(jar.cookieName, sealed)
        if single.headerValue.utf8.count <= CookieBudget.maximumSetCookieLength { return [single] }
        let overhead = jar.cookie(jar.cookieName + "_\(Self.maximumChunks)", "").headerValue.utf8.count
        // A very long cookie path or domain leaves little room per chunk, never none (no division
        // by zero on a request path).
        let size = max(512, CookieBudget.maximumSetCookieLength - overhead)
        let bytes = Array(sealed.utf8)
        let count = (bytes.count + size - 1) / size
        var cookies = [jar.cookie(jar.cookieName, Self.chunkMarker + String(count))]
        for i in 0..<count {
            let part = bytes[(i * size)..<min(bytes.count, (i + 1) * size)]
            cookies.append(jar.cookie(jar.cookieName + "_\(i)", String(decoding: part, as: UTF8.self)))
        }
        return cookies
    }
}
