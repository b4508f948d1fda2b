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
    /// When the user authenticated at the provider (`auth_time`), if the token said; a location's
    /// max_age is checked against it on every request, not only at login.
    var authTime: Int64?
    /// The token's `acr`, if any: a location's acr_values must hold it.
    var acr: String?
    /// The login that opened the session asked for prompt=login (a location requiring a fresh login
    /// accepts no other session).
    var promptLogin = false
    /// The ID token's `exp`, so a site with IDTokenSessionCapToTokenExpiry applies it at load too.
    var tokenExpiresAt: Int64?
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
            && a.claims == b.claims && a.authTime == b.authTime && a.acr == b.acr && a.promptLogin == b.promptLogin
            && a.tokenExpiresAt == b.tokenExpiresAt
    }

    init(subject: String, issuer: String, createdAt: Int64, expiresAt: Int64, refreshedAt: Int64? = nil,
         sid: String? = nil, idToken: String = "", remoteUser: String? = nil, claims: [Claim], authTime: Int64? = nil,
         acr: String? = nil, promptLogin: Bool = false, tokenExpiresAt: Int64? = nil) {
        self.subject = subject
        self.issuer = issuer
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.refreshedAt = refreshedAt ?? createdAt
        self.sid = sid
        self.idToken = idToken
        self.remoteUser = remoteUser ?? subject
        self.claims = claims
        self.authTime = authTime
        self.acr = acr
        self.promptLogin = promptLogin
        self.tokenExpiresAt = tokenExpiresAt
    }

    /// Whether the session still holds at `now`: before its absolute end, and used recently enough.
    func isValid(now: Int64, idleTimeout: Int64) -> Bool {
        now < expiresAt && (idleTimeout == 0 || now - refreshedAt <= idleTimeout)
    }

    /// Formats sealed by earlier releases, still opened so that no upgrade logs anyone out (format 5 is
    /// in SessionCodec). 4 added auth_time, acr, prompt=login and the token's exp; 3 lacks those, so a
    /// location asking max_age or acr_values sends it to log in.
    static let legacyFormats: ClosedRange<UInt8> = 3...4

    init?(decodingLegacy bytes: [UInt8]) {
        var r = ByteReader(bytes)
        guard let format = r.u8(), Self.legacyFormats.contains(format), let created = r.time(), let expires = r.time(),
              let refreshed = r.time(), let subject = r.string(), let issuer = r.string(), let sid = r.string(),
              let idToken = r.string(), let remoteUser = r.string(), let count = r.i64(), count >= 0, count <= 10_000 else {
            return nil
        }
        var claims = [Claim]()
        for _ in 0..<count {
            guard let n = r.string(), let v = r.string(), let j = r.string() else { return nil }
            claims.append(Claim(n, v, json: j.isEmpty ? nil : j))
        }
        var authTime: Int64?, acr: String?, promptLogin = false, tokenExpiresAt: Int64?
        if format >= 4 {
            // -1 stands for none; anything else must be a sane time (no overflow in later arithmetic).
            guard let auth = r.i64(), auth >= -1, auth <= ByteReader.maximumSeconds, let a = r.string(), let prompt = r.u8(),
                  prompt <= 1, let exp = r.i64(), exp >= -1, exp <= ByteReader.maximumSeconds else { return nil }
            authTime = auth >= 0 ? auth : nil
            acr = a.isEmpty ? nil : a
            promptLogin = prompt == 1
            tokenExpiresAt = exp >= 0 ? exp : nil
        }
        guard r.isAtEnd else { return nil }
        self.init(subject: subject, issuer: issuer, createdAt: created, expiresAt: expires, refreshedAt: refreshed,
                  sid: sid.isEmpty ? nil : sid, idToken: idToken, remoteUser: remoteUser, claims: claims,
                  authTime: authTime, acr: acr, promptLogin: promptLogin, tokenExpiresAt: tokenExpiresAt)
    }
}
