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
        // Put together as bytes: the strings joined and interpolated cost a login about 15,000
        // instructions per key (four keys a login with cache sessions).
        var input = [UInt8]()
        input.reserveCapacity(context.utf8.count + kind.utf8.count + name.utf8.count + 2)
        input += context.utf8
        input.append(0)
        input += kind.utf8
        input.append(0)
        input += name.utf8
        let digest = SHA256.hash(data: input).withUnsafeBytes { Array($0) }
        var key = Array("idtoken:".utf8)
        key.reserveCapacity(8 + kind.utf8.count + 1 + 43)
        key += kind.utf8
        key.append(UInt8(ascii: ":"))
        key += Base64URL.encode(digest).utf8
        return key
    }
}
