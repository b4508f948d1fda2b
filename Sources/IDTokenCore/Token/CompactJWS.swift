/// A JWS in compact serialization (RFC 7515 §7.1), split and decoded but not yet trusted.
struct CompactJWS {
    struct Header {
        let alg: String?
        let kid: String?
        let typ: String?
        let crit: JSONValue?

        /// Members of another type than their RFC 7515 definition make the header malformed, as they
        /// did under JSONDecoder.
        init?(_ json: JSONValue) {
            guard case .object(let m) = json else { return nil }
            func string(_ name: String) -> String?? {
                switch m[name] {
                case nil, .null?: return .some(nil)
                case .string(let s)?: return .some(s)
                default: return nil
                }
            }
            guard let alg = string("alg"), let kid = string("kid"), let typ = string("typ") else { return nil }
            self.alg = alg
            self.kid = kid
            self.typ = typ
            self.crit = m["crit"].flatMap { $0 == .null ? nil : $0 }
        }
    }

    /// Tokens past this size are refused before any decoding: real ID tokens are a few KB.
    static let maximumLength = 32 * 1024

    let header: Header
    let payload: [UInt8]
    let signingInput: [UInt8]
    let signature: [UInt8]

    /// A compact serialization's parts, on bytes. Not Collection.split: its closure per byte cost more
    /// than the rest of the parsing.
    static func dotSeparated(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var parts = [ArraySlice<UInt8>]()
        var from = 0
        for i in bytes.indices where bytes[i] == UInt8(ascii: ".") {
            parts.append(bytes[from..<i])
            from = i + 1
        }
        parts.append(bytes[from...])
        return parts
    }

    init(_ token: String) throws(TokenError) {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maximumLength else { throw .tooLarge(bytes: bytes.count) }
        let parts = Self.dotSeparated(bytes)
        guard parts.count == 3 else {
            throw .malformed(parts.count == 5 ? "encrypted tokens (JWE) are not accepted" : "not three dot-separated parts")
        }
        guard let headerBytes = Base64URL.decode(parts[0]) else {
            throw .malformed("header is not base64url")
        }
        guard let payload = Base64URL.decode(parts[1]) else {
            throw .malformed("payload is not base64url")
        }
        guard let signature = Base64URL.decode(parts[2]) else {
            throw .malformed("signature is not base64url")
        }
        let parsed: JSONValue
        do {
            parsed = try JSONParser.parse(headerBytes)
        } catch .duplicate {
            throw .duplicateMember("header")
        } catch {
            throw .malformed("header is not a JSON object")
        }
        guard let header = Header(parsed) else { throw .malformed("header is not a JSON object") }
        self.header = header
        self.payload = payload
        self.signature = signature
        self.signingInput = Array(parts[0]) + [UInt8(ascii: ".")] + Array(parts[1])
    }
}
