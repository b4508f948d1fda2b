import Crypto

/// HS256/384/512 keyed with the client secret's octets (Core §10.1). Separate from JWK on purpose:
/// no key from the provider's set can ever be used as an HMAC key.
enum ClientSecretMAC {
    static func verify(_ mac: [UInt8], over input: [UInt8], secret: [UInt8], alg: SignatureAlgorithm) -> Bool {
        let key = SymmetricKey(data: secret)
        switch alg {
        case .hs256: return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: input, using: key)
        case .hs384: return HMAC<SHA384>.isValidAuthenticationCode(mac, authenticating: input, using: key)
        case .hs512: return HMAC<SHA512>.isValidAuthenticationCode(mac, authenticating: input, using: key)
        default: return false
        }
    }
}
