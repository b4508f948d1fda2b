import Crypto
import FoundationEssentials

/// Seals a cookie value with AES-256-GCM: confidential (claims are not readable by the browser or
/// anything logging cookies) and authenticated (any changed byte makes it unopenable). The cookie's
/// purpose and context (which provider and client it was made for) are bound in as associated data, so
/// a value sealed as one kind of cookie, or for another site sharing the key, cannot be replayed here.
enum SealedCookie {
    static let version: UInt8 = 1

    static func seal(_ plaintext: [UInt8], keys: SessionKeys, purpose: SessionKeys.Purpose, context: String) -> String? {
        let aad = associatedData(purpose, context)
        guard let box = try? AES.GCM.seal(plaintext, using: keys.sealingKey(purpose), authenticating: aad),
              let combined = box.combined else { return nil }
        return Base64URL.encode([version] + Array(combined))
    }

    /// The plaintext, or nil when the value was not sealed by one of our keys for this purpose.
    static func open(_ value: Substring, keys: SessionKeys, purpose: SessionKeys.Purpose, context: String,
                     maximumLength: Int = 16 * 1024) -> [UInt8]? {
        guard value.utf8.count <= maximumLength, let raw = Base64URL.decode(value), raw.first == version,
              raw.count >= 1 + 12 + 16 else { return nil }
        let aad = associatedData(purpose, context)
        guard let box = try? AES.GCM.SealedBox(combined: raw.dropFirst()) else { return nil }
        for key in keys.openingKeys(purpose) {
            if let plain = try? AES.GCM.open(box, using: key, authenticating: aad) { return Array(plain) }
        }
        return nil
    }

    private static func associatedData(_ purpose: SessionKeys.Purpose, _ context: String) -> [UInt8] {
        [version] + Array(purpose.rawValue.utf8) + [0] + Array(context.utf8)
    }
}
