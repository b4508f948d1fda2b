import Crypto
import CryptoExtras
import FoundationEssentials
@testable import IDTokenCore

/// Signing keys for tests, made once (RSA generation is slow) and published as a JWKS the way a
/// provider would.
enum TestKeys {
    static let rsa = try? _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let rsaOther = try? _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let p256 = P256.Signing.PrivateKey()
    static let p384 = P384.Signing.PrivateKey()
    static let p521 = P521.Signing.PrivateKey()
    static let ed25519 = Curve25519.Signing.PrivateKey()

    static func jwk(rsa key: _RSA.Signing.PublicKey, kid: String?, alg: String? = nil) -> [String: String] {
        guard let p = try? key.getKeyPrimitives() else { return [:] }
        var m = ["kty": "RSA", "n": Base64URL.encode(p.modulus), "e": Base64URL.encode(p.publicExponent), "use": "sig"]
        if let kid { m["kid"] = kid }
        if let alg { m["alg"] = alg }
        return m
    }

    static func jwkEC(x: some Sequence<UInt8>, y: some Sequence<UInt8>, crv: String, kid: String) -> [String: String] {
        ["kty": "EC", "crv": crv, "x": Base64URL.encode(x), "y": Base64URL.encode(y), "kid": kid]
    }

    static var standardJWKs: [[String: String]] {
        var keys = [[String: String]]()
        if let rsa { keys.append(jwk(rsa: rsa.publicKey, kid: "rsa-1")) }
        let p256raw = Array(p256.publicKey.rawRepresentation)
        keys.append(jwkEC(x: p256raw[0..<32], y: p256raw[32...], crv: "P-256", kid: "ec-256"))
        let p384raw = Array(p384.publicKey.rawRepresentation)
        keys.append(jwkEC(x: p384raw[0..<48], y: p384raw[48...], crv: "P-384", kid: "ec-384"))
        let p521raw = Array(p521.publicKey.rawRepresentation)
        keys.append(jwkEC(x: p521raw[0..<66], y: p521raw[66...], crv: "P-521", kid: "ec-521"))
        keys.append(["kty": "OKP", "crv": "Ed25519", "x": Base64URL.encode(ed25519.publicKey.rawRepresentation), "kid": "ed-1"])
        return keys
    }

    static func jwksJSON(_ keys: [[String: String]]) -> [UInt8] {
        let body = keys.map { key in
            "{" + key.keys.sorted().map { "\"\($0)\":\"\(key[$0] ?? "")\"" }.joined(separator: ",") + "}"
        }.joined(separator: ",")
        return Array("{\"keys\":[\(body)]}".utf8)
    }

    static var standardSet: JWKSet {
        (try? JWKSet(json: jwksJSON(standardJWKs))) ?? JWKSet(keys: [])
    }
}

/// Builds and signs compact JWS tokens, including broken ones.
struct TokenFactory {
    var header: [String: JSONValue]
    var claims: [String: JSONValue]
    var alg: SignatureAlgorithm?

    static func standard(now: Int64, nonce: String = "n-0S6_WzA2Mj", alg: SignatureAlgorithm = .rs256, kid: String? = "rsa-1") -> TokenFactory {
        var header: [String: JSONValue] = ["alg": .string(alg.rawValue), "typ": .string("JWT")]
        if let kid { header["kid"] = .string(kid) }
        return TokenFactory(header: header, claims: [
            "iss": .string("https://op.example.org"),
            "sub": .string("alice-0001"),
            "aud": .string("client-1"),
            "exp": .number(Double(now + 300)),
            "iat": .number(Double(now)),
            "nonce": .string(nonce),
            "email": .string("alice@example.org"),
            "groups": .array([.string("staff"), .string("admins")]),
        ], alg: alg)
    }

    static func kid(for alg: SignatureAlgorithm) -> String {
        switch alg {
        case .es256: return "ec-256"
        case .es384: return "ec-384"
        case .es512: return "ec-521"
        case .edDSA: return "ed-1"
        default: return "rsa-1"
        }
    }

    func encodedParts() -> (String, String) {
        (Base64URL.encode(Array(JSONValue.object(header).compactJSON.utf8)),
         Base64URL.encode(Array(JSONValue.object(claims).compactJSON.utf8)))
    }

    func signed(rsaKey: _RSA.Signing.PrivateKey? = TestKeys.rsa) -> String {
        let (h, p) = encodedParts()
        let input = Array((h + "." + p).utf8)
        return h + "." + p + "." + Base64URL.encode(Self.sign(input, alg: alg, rsaKey: rsaKey))
    }

    static func sign(_ input: [UInt8], alg: SignatureAlgorithm?, rsaKey: _RSA.Signing.PrivateKey?) -> [UInt8] {
        guard let alg else { return [] }
        switch alg {
        case .rs256: return (try? rsaKey?.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)).map { Array($0.rawRepresentation) } ?? []
        case .rs384: return (try? rsaKey?.signature(for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5)).map { Array($0.rawRepresentation) } ?? []
        case .rs512: return (try? rsaKey?.signature(for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5)).map { Array($0.rawRepresentation) } ?? []
        case .ps256: return (try? rsaKey?.signature(for: SHA256.hash(data: input), padding: .PSS)).map { Array($0.rawRepresentation) } ?? []
        case .ps384: return (try? rsaKey?.signature(for: SHA384.hash(data: input), padding: .PSS)).map { Array($0.rawRepresentation) } ?? []
        case .ps512: return (try? rsaKey?.signature(for: SHA512.hash(data: input), padding: .PSS)).map { Array($0.rawRepresentation) } ?? []
        case .es256: return (try? TestKeys.p256.signature(for: input)).map { Array($0.rawRepresentation) } ?? []
        case .es384: return (try? TestKeys.p384.signature(for: input)).map { Array($0.rawRepresentation) } ?? []
        case .es512: return (try? TestKeys.p521.signature(for: input)).map { Array($0.rawRepresentation) } ?? []
        case .edDSA: return (try? TestKeys.ed25519.signature(for: input)).map { Array($0) } ?? []
        case .hs256, .hs384, .hs512: return [] // TokenRulesTests keys these with the client secret
        }
    }
}

extension JSONValue {
    init(_ n: Int64) { self = .number(Double(n)) }
}
