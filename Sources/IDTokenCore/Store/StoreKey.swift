import Crypto

/// The shared store's key space: one named section per kind of entry, each key hashed with the site's
/// context. A dump of the store holds no cookie value, two sites sharing a store never see each other's
/// entries, and every key is short (mod_socache_redis and memcache refuse keys much over 100 bytes).
enum StoreKey {
    enum Section: String {
        /// A server-side session, by its ID.
        case session = "s"
        /// The tombstone of an ended session.
        case ended
        /// The IDs of a provider session's (`sid`) or user's (`sub`) sessions, for back-channel logout.
        case sid, sub
        /// A login response's nonce, once used.
        case used
        /// A logout token's jti, once used.
        case jti
        /// A login's return URL too long for its state cookie, by the login's state (LongReturnURL).
        case returnURL = "return"
    }

    static func make(_ section: Section, _ name: String, context: String) -> [UInt8] {
        let kind = section.rawValue
        let digest = SHA256.hash(data: Array((context + "\u{0}" + kind + "\u{0}" + name).utf8))
        return Array("idtoken:\(kind):".utf8) + Array(Base64URL.encode(digest).utf8)
    }
}
