@testable import IDTokenCore

/// The session format 4 as the release before format 5 wrote it, so tests can make the values browsers
/// and stores still hold and show that they open.
extension Session {
    func encodedFormat4() -> [UInt8] {
        var w = ByteWriter()
        w.u8(4)
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
        w.i64(authTime ?? -1)
        w.string(acr ?? "")
        w.u8(promptLogin ? 1 : 0)
        w.i64(tokenExpiresAt ?? -1)
        return w.bytes
    }
}
