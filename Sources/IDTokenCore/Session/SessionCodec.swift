/// The session as sealed into a cookie or a store entry (format 5). Nothing is kept twice: the token's
/// payload is the only copy of the claims, compressed, and the claims, subject, sid, auth_time and acr
/// are read back out of it on opening (once per child: OpenedSessions keeps the result). Only what the
/// token cannot say is written beside it: the times, REMOTE_USER as derived at login, and whether the
/// login asked for prompt=login.
///
/// With the token kept (for id_token_hint) its three parts are stored decoded: header and payload
/// deflated together, the signature raw (it does not compress). Without it, a compact payload of just
/// the claims the site keeps. Formats 3 and 4 (sessions sealed before) still open.
extension Session {
    static let format: UInt8 = 5
    /// A token or payload is at most this big once inflated (a 64 KiB callback body holds less).
    static let maximumInflated = 192 * 1024

    private struct Flags: OptionSet {
        let rawValue: UInt8
        static let promptLogin = Flags(rawValue: 1)
        /// The token's header, payload and signature: the token can be rebuilt as it was issued.
        static let tokenParts = Flags(rawValue: 2)
        /// The token as text (its base64url was not in the canonical form re-encoding would give).
        static let tokenText = Flags(rawValue: 4)
        /// REMOTE_USER is the subject (the default): not written again.
        static let remoteUserIsSubject = Flags(rawValue: 8)
        static let known: Flags = [.promptLogin, .tokenParts, .tokenText, .remoteUserIsSubject]
    }

    func encoded(_ profile: SessionProfile) -> [UInt8]? {
        var flags: Flags = promptLogin ? [.promptLogin] : []
        var body = ByteWriter()
        var signature: [UInt8]?
        if profile.keepsToken, !idToken.isEmpty {
            if let parts = Self.canonicalParts(idToken) {
                flags.insert(.tokenParts)
                body.varblob(parts.header)
                body.varblob(parts.payload)
                signature = parts.signature
            } else {
                flags.insert(.tokenText)
                body.string(idToken)
            }
        } else {
            body.string(compactPayload())
        }
        guard let compressed = Deflate.compress(body.bytes, dictionary: profile.dictionary) else { return nil }
        if remoteUser == subject { flags.insert(.remoteUserIsSubject) }
        var w = ByteWriter()
        w.u8(Self.format)
        // The end and the last refresh as offsets from the start: a byte or three each instead of eight.
        w.varint(createdAt)
        w.varint(expiresAt &- createdAt)
        w.varint(refreshedAt &- createdAt)
        w.u8(flags.rawValue)
        if !flags.contains(.remoteUserIsSubject) { w.varblob(Array(remoteUser.utf8)) }
        w.varblob(compressed)
        if let signature { w.varblob(signature) }
        return w.bytes
    }

    /// Any format this release reads: 5 needs the site's profile to rebuild the claims; 3 and 4 carry them.
    init?(decoding bytes: [UInt8], profile: SessionProfile) {
        guard let format = bytes.first else { return nil }
        guard format == Self.format else {
            self.init(decodingLegacy: bytes)
            return
        }
        var r = ByteReader(bytes)
        let range = 0...ByteReader.maximumSeconds
        guard r.u8() != nil, let created = r.varint(), range.contains(created), let toEnd = r.varint(),
              let toRefresh = r.varint(), case let (expires, o1) = created.addingReportingOverflow(toEnd), !o1, range.contains(expires),
              case let (refreshed, o2) = created.addingReportingOverflow(toRefresh), !o2, range.contains(refreshed),
              let rawFlags = r.u8(), case let flags = Flags(rawValue: rawFlags), Flags.known.isSuperset(of: flags),
              !flags.isSuperset(of: [.tokenParts, .tokenText]) else { return nil }
        var remoteUser: String?
        if !flags.contains(.remoteUserIsSubject) {
            guard let raw = r.varblob(), let name = String(validating: raw, as: UTF8.self) else { return nil }
            remoteUser = name
        }
        guard let compressed = r.varblob(),
              let inflated = Deflate.decompress(compressed, dictionary: profile.dictionary, limit: Self.maximumInflated) else {
            return nil
        }
        var body = ByteReader(inflated)
        let payload: [UInt8]
        var token = ""
        if flags.contains(.tokenParts) {
            guard let header = body.varblob(), let p = body.varblob(), let signature = r.varblob() else { return nil }
            payload = Array(p)
            token = Base64URL.encode(header) + "." + Base64URL.encode(payload) + "." + Base64URL.encode(signature)
        } else if flags.contains(.tokenText) {
            guard let text = body.string() else { return nil }
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, let p = Base64URL.decode(parts[1]) else { return nil }
            payload = p
            token = text
        } else {
            guard let p = body.string() else { return nil }
            payload = Array(p.utf8)
        }
        guard body.isAtEnd, r.isAtEnd, let claims = try? IDTokenClaims(payload: payload),
              let subject = claims.subject, let issuer = claims.issuer else { return nil }
        self.init(subject: subject, issuer: issuer, createdAt: created, expiresAt: expires, refreshedAt: refreshed,
                  sid: claims.all["sid"]?.stringValue, idToken: token, remoteUser: remoteUser ?? subject,
                  claims: profile.claims(claims.all), authTime: claims.time("auth_time"),
                  acr: claims.all["acr"]?.stringValue, promptLogin: flags.contains(.promptLogin),
                  tokenExpiresAt: claims.time("exp"))
    }

    /// The token's parts decoded, when encoding them again gives the token back byte for byte.
    private static func canonicalParts(_ token: String) -> (header: [UInt8], payload: [UInt8], signature: [UInt8])? {
        // On bytes: String.split and String comparison go by Character, which cost a quarter of a
        // login's instructions here.
        let parts = CompactJWS.dotSeparated(Array(token.utf8))
        guard parts.count == 3, let h = Base64URL.decode(parts[0]), let p = Base64URL.decode(parts[1]),
              let s = Base64URL.decode(parts[2]), Array(Base64URL.encode(h).utf8)[...] == parts[0],
              Array(Base64URL.encode(p).utf8)[...] == parts[1], Array(Base64URL.encode(s).utf8)[...] == parts[2] else { return nil }
        return (h, p, s)
    }

    /// Without the token: a payload of what the session is made from (the claims already kept and
    /// flattened, which rebuild to themselves), in compact JSON.
    private func compactPayload() -> String {
        var members = [String: String]()
        for c in claims { members[c.name] = c.jsonValue }
        members["sub"] = JSONValue.quote(subject)
        members["iss"] = JSONValue.quote(issuer)
        if let sid { members["sid"] = JSONValue.quote(sid) }
        if let acr { members["acr"] = JSONValue.quote(acr) }
        if let authTime { members["auth_time"] = String(authTime) }
        if let tokenExpiresAt { members["exp"] = String(tokenExpiresAt) }
        return "{" + members.keys.sorted().map { JSONValue.quote($0) + ":" + (members[$0] ?? "null") }.joined(separator: ",") + "}"
    }
}
