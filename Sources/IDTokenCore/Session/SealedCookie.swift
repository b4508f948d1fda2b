import Crypto
import FoundationEssentials

/// Seals a cookie value with AES-256-GCM: confidential (claims are not readable by the browser or
/// anything logging cookies) and authenticated (any changed byte makes it unopenable). The cookie's
/// purpose and context (which provider, client and session profile it was made for) are bound in as
/// associated data, so a value sealed as one kind of cookie, or for another site sharing the key, cannot
/// be replayed here.
enum SealedCookie {
    /// 2: the context holds the site's session profile. 1 (before it) opens only where the caller
    /// passes the legacy context: sessions made before the upgrade stay valid until they end.
    static let version: UInt8 = 2
    static let legacyVersion: UInt8 = 1

    static func seal(_ plaintext: [UInt8], keys: SessionKeys, purpose: SessionKeys.Purpose, context: SealContext) -> String? {
        let aad = associatedData(version, purpose, context.current)
        guard let box = try? AES.GCM.seal(plaintext, using: keys.sealingKey(purpose), authenticating: aad),
              let combined = box.combined else { return nil }
        return Base64URL.encode([version] + Array(combined))
    }

    /// The plaintext, or nil when the value was not sealed by one of our keys for this purpose and context.
    static func open(_ value: Substring, keys: SessionKeys, purpose: SessionKeys.Purpose, context: SealContext,
                     maximumLength: Int = 16 * 1024) -> [UInt8]? {
        guard value.utf8.count <= maximumLength, let raw = Base64URL.decode(value), let v = raw.first,
              raw.count >= 1 + 12 + 16 else { return nil }
        let aad: [UInt8]
        switch v {
        case version: aad = associatedData(v, purpose, context.current)
        case legacyVersion:
            guard let legacy = context.legacy else { return nil }
            aad = associatedData(v, purpose, legacy)
        default: return nil
        }
        guard let box = try? AES.GCM.SealedBox(combined: raw.dropFirst()) else { return nil }
        for key in keys.openingKeys(purpose) {
            if let plain = try? AES.GCM.open(box, using: key, authenticating: aad) { return Array(plain) }
        }
        return nil
    }

    private static func associatedData(_ version: UInt8, _ purpose: SessionKeys.Purpose, _ context: String) -> [UInt8] {
        [version] + Array(purpose.rawValue.utf8) + [0] + Array(context.utf8)
    }
}

/// What a sealed value is bound to besides its purpose: `current` for what is sealed now, and `legacy`
/// (the context of version 1) where values from before the upgrade are still accepted.
struct SealContext: ExpressibleByStringLiteral {
    var current: String
    var legacy: String?

    init(current: String, legacy: String? = nil) {
        self.current = current
        self.legacy = legacy
    }

    init(stringLiteral value: String) { self.init(current: value) }
}
