/// A logged-in browser, as sealed into its session cookie: who, until when, and the claims the
/// application receives (already flattened, so serving a request needs no JSON).
struct Session: Equatable {
    var subject: String
    var issuer: String
    var createdAt: Int64
    var expiresAt: Int64
    /// Claim name and flattened value, in a stable order.
    var claims: [(name: String, value: String)]

    static func == (a: Session, b: Session) -> Bool {
        a.subject == b.subject && a.issuer == b.issuer && a.createdAt == b.createdAt && a.expiresAt == b.expiresAt
            && a.claims.elementsEqual(b.claims) { $0.name == $1.name && $0.value == $1.value }
    }

    private static let format: UInt8 = 1

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(Self.format)
        w.i64(createdAt)
        w.i64(expiresAt)
        w.string(subject)
        w.string(issuer)
        w.i64(Int64(claims.count))
        for c in claims {
            w.string(c.name)
            w.string(c.value)
        }
        return w.bytes
    }

    init(subject: String, issuer: String, createdAt: Int64, expiresAt: Int64, claims: [(name: String, value: String)]) {
        self.subject = subject
        self.issuer = issuer
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.claims = claims
    }

    init?(decoding bytes: [UInt8]) {
        var r = ByteReader(bytes)
        guard r.u8() == Self.format, let created = r.i64(), let expires = r.i64(),
              let subject = r.string(), let issuer = r.string(), let count = r.i64(),
              count >= 0, count <= 10_000 else { return nil }
        var claims = [(name: String, value: String)]()
        for _ in 0..<count {
            guard let n = r.string(), let v = r.string() else { return nil }
            claims.append((n, v))
        }
        guard r.isAtEnd else { return nil }
        self.init(subject: subject, issuer: issuer, createdAt: created, expiresAt: expires, claims: claims)
    }
}
