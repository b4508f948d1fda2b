import Crypto
import CryptoExtras
import FoundationEssentials

/// A public key from a provider's JWKS (RFC 7517), parsed once when the set is fetched so that each
/// verification costs only the signature check.
struct JWK: Sendable {
    enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    let kid: String?
    /// The algorithm the key is restricted to, when the JWKS says so.
    let alg: String?
    let material: Material

    /// The raw members of a JWK; unknown members are ignored as RFC 7517 §4 requires.
    struct Members: Decodable {
        let kty: String?
        let kid: String?
        let use: String?
        let key_ops: [String]?
        let alg: String?
        let crv: String?
        let n: String?
        let e: String?
        let x: String?
        let y: String?
        /// A symmetric key: never used for verification, read only so tests can name it.
        let k: String?
    }

    enum ParseError: Error, Equatable {
        case notForSignatures
        case unsupportedKeyType(String)
        case invalidKey(String)
    }

    init(members m: Members) throws(ParseError) {
        // A key marked for encryption, or whose operations exclude verify, is not ours to use.
        if let use = m.use, use != "sig" { throw .notForSignatures }
        if let ops = m.key_ops, !ops.contains("verify") { throw .notForSignatures }
        kid = m.kid
        alg = m.alg
        switch m.kty {
        case "RSA":
            guard let n = m.n.flatMap(Base64URL.decode), let e = m.e.flatMap(Base64URL.decode) else {
                throw .invalidKey("RSA key without n or e")
            }
            do {
                material = .rsa(try _RSA.Signing.PublicKey(n: n, e: e))
            } catch {
                throw .invalidKey("RSA key rejected (under 2048 bits or malformed)")
            }
        case "EC":
            guard let x = m.x.flatMap(Base64URL.decode), let y = m.y.flatMap(Base64URL.decode) else {
                throw .invalidKey("EC key without x or y")
            }
            let raw = x + y
            do {
                switch m.crv {
                case "P-256" where x.count == 32 && y.count == 32:
                    material = .p256(try P256.Signing.PublicKey(rawRepresentation: raw))
                case "P-384" where x.count == 48 && y.count == 48:
                    material = .p384(try P384.Signing.PublicKey(rawRepresentation: raw))
                case "P-521" where x.count == 66 && y.count == 66:
                    material = .p521(try P521.Signing.PublicKey(rawRepresentation: raw))
                default:
                    throw ParseError.invalidKey("EC curve '\(m.crv ?? "none")' or coordinate size not supported")
                }
            } catch let e as ParseError {
                throw e
            } catch {
                throw .invalidKey("EC point not on the curve")
            }
        case "OKP":
            guard m.crv == "Ed25519", let x = m.x.flatMap(Base64URL.decode), x.count == 32 else {
                throw .invalidKey("OKP key that is not a 32-byte Ed25519 key")
            }
            do {
                material = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: x))
            } catch {
                throw .invalidKey("invalid Ed25519 key")
            }
        default:
            throw .unsupportedKeyType(m.kty ?? "none")
        }
    }

    /// Whether this key may verify a token signed with `algorithm`: same family and curve, and the
    /// key's own `alg` (when it has one) agrees (RFC 8725 §3.1: the key decides, not the token).
    func accepts(_ algorithm: SignatureAlgorithm) -> Bool {
        if let alg, alg != algorithm.rawValue { return false }
        switch (material, algorithm) {
        case (.rsa, .rs256), (.rsa, .rs384), (.rsa, .rs512), (.rsa, .ps256), (.rsa, .ps384), (.rsa, .ps512),
             (.p256, .es256), (.p384, .es384), (.p521, .es512), (.ed25519, .edDSA):
            return true
        default:
            return false
        }
    }

    func verify(_ signature: [UInt8], over input: [UInt8], with algorithm: SignatureAlgorithm) -> Bool {
        switch (material, algorithm) {
        case (.rsa(let key), _):
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch algorithm {
            case .rs256: return key.isValidSignature(sig, for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
            case .rs384: return key.isValidSignature(sig, for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5)
            case .rs512: return key.isValidSignature(sig, for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5)
            case .ps256: return key.isValidSignature(sig, for: SHA256.hash(data: input), padding: .PSS)
            case .ps384: return key.isValidSignature(sig, for: SHA384.hash(data: input), padding: .PSS)
            case .ps512: return key.isValidSignature(sig, for: SHA512.hash(data: input), padding: .PSS)
            default: return false
            }
        case (.p256(let key), .es256):
            // JWS carries ECDSA as raw r||s (RFC 7518 §3.4), never DER.
            guard signature.count == 64, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA256.hash(data: input))
        case (.p384(let key), .es384):
            guard signature.count == 96, let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA384.hash(data: input))
        case (.p521(let key), .es512):
            guard signature.count == 132, let sig = try? P521.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA512.hash(data: input))
        case (.ed25519(let key), .edDSA):
            return key.isValidSignature(signature, for: input)
        default:
            return false
        }
    }
}
