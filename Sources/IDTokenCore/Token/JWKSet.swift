import FoundationEssentials

/// A provider's key set. Keys that cannot be parsed or are not for signatures are skipped (and
/// counted for the log) instead of failing the whole set: one exotic key must not lock users out.
struct JWKSet: Sendable {
    let keys: [JWK]
    let skipped: [String]

    private struct Document: Decodable {
        let keys: [JWK.Members]
    }

    init(keys: [JWK], skipped: [String] = []) {
        self.keys = keys
        self.skipped = skipped
    }

    init(json: [UInt8]) throws(ProviderError) {
        let doc: Document
        do {
            doc = try JSONDecoder().decode(Document.self, from: Data(json))
        } catch {
            throw .invalidDocument("JWKS is not a JSON object with a keys array")
        }
        var keys = [JWK](), skipped = [String]()
        for m in doc.keys {
            do {
                keys.append(try JWK(members: m))
            } catch {
                skipped.append("\(m.kid ?? "(no kid)"): \(error)")
            }
        }
        self.init(keys: keys, skipped: skipped)
    }

    /// The keys that could have signed a token with this header.
    func candidates(kid: String?, algorithm: SignatureAlgorithm) -> [JWK] {
        keys.filter { key in
            if let kid, key.kid != kid { return false }
            return key.accepts(algorithm)
        }
    }

    func contains(kid: String) -> Bool { keys.contains { $0.kid == kid } }
}
