import Crypto
import CryptoExtras

/// The provider's signing keys, fixed so that committed corpora keep verifying from one run to the
/// next. Test keys, published nowhere else: they protect nothing.
enum FixedKeys {
    static let rsaPEM = """
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQD7gVHyH5Fsy/Oq
12hMkKBhhSTk8Z6fTDt7TKmVDffpjqDY+aV4of7ODgI2rjW1uVjZqYfA/N4czPIY
ZEFi+GMCOl8L9HNpPBhgxa3ImPCCPg+OjhboM90l/3FbxE8r3sO5rAs5lrxZwlNC
L13MIdW/IDdBvccHsUTZUDMe39HkGPhLnFC1w96J7kFUHxZO6PnXCddNjuNF/bS2
XKdz1BKgxzZEp15bw2wpIlipfLbOTKHQUqGIb4mVyNFnEgb9SHme8jZBmBHzpDBU
pQQQ549eBt3VHBgfKZEe7QF8/oGVbp6EJMXQcj06wwYo2C+7k7l8yaDJyeOTDlt3
1dHAgsCXAgMBAAECggEAW4RttKyfBtdaJc73UXEJIyNHTxXK0g1z0YSOasIn9XFk
fz+sYi6UYReA37PZsHQu7Bk/4E5DZnh/GbgVgPWAVZW280sy2da3yjL0bzuTvNjn
YUi79ie1L7f5YFqZMo3/a6c6eGyswf6vvDQvLfIb7M3EvaPYciijtG32BCSOpDBn
MV+wtnc0sV0w5BHgFu2KDWoZ0oHhdlindMNiTSngIgDB6Zhd+51PceTBC9EcNNzA
q25+Uc+J06+z1f3L9MO/ZGi0VJilB1v/esDgq/0c6Nms6XSTgCMXTPOtKjVy6mIc
HV5CzQphMddfVfenz4G/1OFpMkDv1fjAvxXJx0iRRQKBgQD/0cCulWD+q0LB2bBD
qW15kX4h83aGCJ7lNqPjb+xqbHlQrRFq/tcJtH5DA7iJmMsKeC2Bkn8KgWYJYsbr
hkgOi1bLTampwl9zPXavgEugsEkEeuEAjLs6k6RRUDlSVZgcI1F4EWpurGASTg0v
FeOViX4q6RsN89nXdneJqz/RYwKBgQD7rsmaaA2bDDmAZg4kj56VNeXjuxaGBOM2
FnDuu/PWhBDLecsgARE3H0JLvASeKWRwtn9aqp6kOEsw8VhLr21lpf9iPl9fyBk/
fWJIVtuXXJBEE8RoYcISHpfyqZ77sQl1ALemGgyxrq/jNOKyYKKjP59dCm9QssCd
O+p7BO90PQKBgQDOGO+R95jYM6OpxzahnFstaNDki1++pi1VXwr0ThR6vP+TxorU
15DpKbfbR6Ehga56tc17qUmebheFkkXONDXTOeDoE56PvJ/nmOoIhGTphXyeFl01
cyvYCmCEfgxgT8MnUDDveaB0n30a4jTu7USYEdhKu9hnCkFDvBacHBJjHwKBgHUl
HeEonWyVfA4vclXCI2X/+EjPQ+SNUdRTDa2Q/iXSwp5yygDTflfRzOHDWcLkMUPl
LdHdqIl3Skg1jYts09aENSJdNbc3Q8kxaxWQmBUTmHKXYMvU9KfKZZ8lJEKyXFyB
QPmnFlF9pZBzhTDRmeGyM1LzEGzXRp/oy3MHEQ1hAoGAWR9knwSRvmvTCTzCDRUG
OaiyXoQAa7TmfHcebVpXCNmAPPrJZ//GhwvJBMLJFXHS3LspHMgbO3qLDqRMptXf
8uasERJ5pMyYApE6JUG1M5m972KGoPFSd7grgneketBz96BrvNh5eQ65CgCIalVj
4F5g/sTACY5SUY5IeeUJrwc=
-----END PRIVATE KEY-----
"""

    static func harnessFailure(_ what: String) -> Never {
        fatalError("FuzzTargets harness: \(what)")
    }

    static let rsa: _RSA.Signing.PrivateKey = {
        do { return try _RSA.Signing.PrivateKey(pemRepresentation: rsaPEM) } catch { harnessFailure("RSA key: \(error)") }
    }()

    /// Private scalars derived from fixed labels (each digest is far below its curve's order).
    static let p256: P256.Signing.PrivateKey = {
        do { return try P256.Signing.PrivateKey(rawRepresentation: Array(SHA256.hash(data: Array("fuzz p256".utf8)))) }
        catch { harnessFailure("P-256 key: \(error)") }
    }()

    static let p384: P384.Signing.PrivateKey = {
        do { return try P384.Signing.PrivateKey(rawRepresentation: Array(SHA384.hash(data: Array("fuzz p384".utf8)))) }
        catch { harnessFailure("P-384 key: \(error)") }
    }()

    static let p521: P521.Signing.PrivateKey = {
        do { return try P521.Signing.PrivateKey(rawRepresentation: [0, 1] + Array(SHA512.hash(data: Array("fuzz p521".utf8)))) }
        catch { harnessFailure("P-521 key: \(error)") }
    }()

    static let ed25519: Curve25519.Signing.PrivateKey = {
        do { return try Curve25519.Signing.PrivateKey(rawRepresentation: Array(SHA256.hash(data: Array("fuzz ed25519".utf8)))) }
        catch { harnessFailure("Ed25519 key: \(error)") }
    }()

    /// HS256/384/512 are keyed with this (IDTokenClientSecret); at least 32 bytes, as the config requires.
    static let clientSecret = Array("fuzz-client-secret-0123456789abcdef".utf8)

    /// The provider's JWKS: every key above, each with a kid.
    static let jwks: [UInt8] = {
        var keys = [String]()
        if let p = try? rsa.publicKey.getKeyPrimitives() {
            keys.append(#"{"kty":"RSA","kid":"rsa-1","use":"sig","n":"\#(Codec.base64url(p.modulus))","e":"\#(Codec.base64url(p.publicExponent))"}"#)
        }
        func ec(_ raw: [UInt8], _ crv: String, _ kid: String) -> String {
            let half = raw.count / 2
            return #"{"kty":"EC","crv":"\#(crv)","kid":"\#(kid)","x":"\#(Codec.base64url(raw[..<half]))","y":"\#(Codec.base64url(raw[half...]))"}"#
        }
        keys.append(ec(Array(p256.publicKey.rawRepresentation), "P-256", "ec-256"))
        keys.append(ec(Array(p384.publicKey.rawRepresentation), "P-384", "ec-384"))
        keys.append(ec(Array(p521.publicKey.rawRepresentation), "P-521", "ec-521"))
        keys.append(#"{"kty":"OKP","crv":"Ed25519","kid":"ed-1","x":"\#(Codec.base64url(ed25519.publicKey.rawRepresentation))"}"#)
        return Array(("{\"keys\":[" + keys.joined(separator: ",") + "]}").utf8)
    }()

    /// The signature of `input` for a JWS `alg` (empty for an unknown one, which then fails to verify).
    static func sign(_ input: [UInt8], alg: String) -> [UInt8] {
        func rsa(_ digest: some Digest, _ padding: _RSA.Signing.Padding) -> [UInt8] {
            (try? Self.rsa.signature(for: digest, padding: padding)).map { Array($0.rawRepresentation) } ?? []
        }
        func hmac<H: HashFunction>(_: H.Type) -> [UInt8] {
            Array(HMAC<H>.authenticationCode(for: input, using: SymmetricKey(data: clientSecret)))
        }
        switch alg {
        case "RS256": return rsa(SHA256.hash(data: input), .insecurePKCS1v1_5)
        case "RS384": return rsa(SHA384.hash(data: input), .insecurePKCS1v1_5)
        case "RS512": return rsa(SHA512.hash(data: input), .insecurePKCS1v1_5)
        case "PS256": return rsa(SHA256.hash(data: input), .PSS)
        case "PS384": return rsa(SHA384.hash(data: input), .PSS)
        case "PS512": return rsa(SHA512.hash(data: input), .PSS)
        case "ES256": return (try? p256.signature(for: input)).map { Array($0.rawRepresentation) } ?? []
        case "ES384": return (try? p384.signature(for: input)).map { Array($0.rawRepresentation) } ?? []
        case "ES512": return (try? p521.signature(for: input)).map { Array($0.rawRepresentation) } ?? []
        case "EdDSA": return (try? ed25519.signature(for: input)).map { Array($0) } ?? []
        case "HS256": return hmac(SHA256.self)
        case "HS384": return hmac(SHA384.self)
        case "HS512": return hmac(SHA512.self)
        default: return []
        }
    }
}
