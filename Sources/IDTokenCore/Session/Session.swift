/// A logged-in browser: who, since and until when, what logout needs (the provider's session id and
/// the ID token for id_token_hint), and the claims the application receives (already flattened, so
/// serving a request needs no JSON).
struct Session: Equatable {
    var subject: String
    var issuer: String
    var createdAt: Int64
    /// The absolute end.
    var expiresAt: Int64
    /// When the session was last re-issued; the idle timeout counts from here.
    var refreshedAt: Int64
    /// The provider's session id (`sid`), for back-channel logout.
    var sid: String?
    /// The raw ID token, sent back as id_token_hint at logout (several providers require it).
    var idToken: String
    /// What REMOTE_USER is set to: `sub`, or the claim IDTokenRemoteUserClaim names.
    var remoteUser: String
    /// Claim name, flattened value (for headers and environment) and, for claims that are not plain
    /// strings, the JSON (for `Require idtoken-claim` on arrays and nested members), in a stable order.
    var claims: [Claim]

    struct Claim: Equatable {
        var name: String
        var value: String
        var json: String?

        init(_ name: String, _ value: String, json: String? = nil) {
            self.name = name
            self.value = value
            self.json = json
        }

        /// The claim as JSON, for authorization.
        var jsonValue: String { json ?? JSONValue.quote(value) }
    }

    static func == (a: Session, b: Session) -> Bool {
        a.subject == b.subject && a.issuer == b.issuer && a.createdAt == b.createdAt && a.expiresAt == b.expiresAt
            && a.refreshedAt == b.refreshedAt && a.sid == b.sid && a.idToken == b.idToken && a.remoteUser == b.remoteUser
            && a.claims == b.claims
    }

    init(subject: String, issuer: String, createdAt: Int64, expiresAt: Int64, refreshedAt: Int64? = nil,
         sid: String? = nil, idToken: String = "", remoteUser: String? = nil, claims: [Claim]) {
        self.subject = subject
        self.issuer = issuer
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.refreshedAt = refreshedAt ?? createdAt
        self.sid = sid
        self.idToken = idToken
        self.remoteUser = remoteUser ?? subject
        self.claims = claims
    }

    /// Whether the session still holds at `now`: before its absolute end, and used recently enough.
    func isValid(now: Int64, idleTimeout: Int64) -> Bool {
        now < expiresAt && (idleTimeout == 0 || now - refreshedAt <= idleTimeout)
    }

    private static let format: UInt8 = 3

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(Self.format)
        w.i64(createdAt)
        w.i64(expiresAt)
        w.i64(refreshedAt)
        w.string(subject)
        w.string(issuer)
        w.string(sid ?? "")
        w.string(idToken)
        w.string(remoteUser)
        w.i64(Int64(claims.count))
        for c in claims {
            w.string(c.name)
            w.string(c.value)
            w.string(c.json ?? "")
        }
        return w.bytes
    }

    init?(decoding bytes: [UInt8]) {
        var r = ByteReader(bytes)
        guard r.u8() == Self.format, let created = r.time(), let expires = r.time(), let refreshed = r.time(),
              let subject = r.string(), let issuer = r.string(), let sid = r.string(), let idToken = r.string(),
              let remoteUser = r.string(), let count = r.i64(), count >= 0, count <= 10_000 else { return nil }
        var claims = [Claim]()
        for _ in 0..<count {
            guard let n = r.string(), let v = r.string(), let j = r.string() else { return nil }
            claims.append(Claim(n, v, json: j.isEmpty ? nil : j))
        }
        guard r.isAtEnd else { return nil }
        self.init(subject: subject, issuer: issuer, createdAt: created, expiresAt: expires, refreshedAt: refreshed,
                  sid: sid.isEmpty ? nil : sid, idToken: idToken, remoteUser: remoteUser, claims: claims)
    }
}
