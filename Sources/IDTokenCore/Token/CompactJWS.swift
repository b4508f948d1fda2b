import FoundationEssentials

/// A JWS in compact serialization (RFC 7515 §7.1), split and decoded but not yet trusted.
struct CompactJWS {
    struct Header: Decodable {
        let alg: String?
        let kid: String?
        let typ: String?
        let crit: JSONValue?
    }

    /// Tokens past this size are refused before any decoding: real ID tokens are a few KB.
    static let maximumLength = 32 * 1024

    let header: Header
    let payload: [UInt8]
    let signingInput: [UInt8]
    let signature: [UInt8]

    init(_ token: String) throws(TokenError) {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maximumLength else { throw .tooLarge(bytes: bytes.count) }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw .malformed(parts.count == 5 ? "encrypted tokens (JWE) are not accepted" : "not three dot-separated parts")
        }
        guard let headerBytes = Base64URL.decode(String(decoding: parts[0], as: UTF8.self)[...]) else {
            throw .malformed("header is not base64url")
        }
        guard let payload = Base64URL.decode(String(decoding: parts[1], as: UTF8.self)[...]) else {
            throw .malformed("payload is not base64url")
        }
        guard let signature = Base64URL.decode(String(decoding: parts[2], as: UTF8.self)[...]) else {
            throw .malformed("signature is not base64url")
        }
        switch JSONShape.check(headerBytes) {
        case .ok: break
        case .duplicate: throw .duplicateMember("header")
        case .tooDeep, .malformed: throw .malformed("header is not a JSON object")
        }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(headerBytes))
        } catch {
            throw .malformed("header is not a JSON object")
        }
        self.header = header
        self.payload = payload
        self.signature = signature
        self.signingInput = Array(parts[0]) + [UInt8(ascii: ".")] + Array(parts[1])
    }
}
