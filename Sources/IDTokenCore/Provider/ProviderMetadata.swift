import FoundationEssentials

/// The parts of a discovery document (OpenID Connect Discovery 1.0 §3) this flow uses.
struct ProviderMetadata: Sendable, Equatable {
    let issuer: String
    let authorizationEndpoint: String
    let jwksURI: String
    let endSessionEndpoint: String?

    private struct Document: Decodable {
        let issuer: String?
        let authorization_endpoint: String?
        let jwks_uri: String?
        let end_session_endpoint: String?
    }

    init(issuer: String, authorizationEndpoint: String, jwksURI: String, endSessionEndpoint: String? = nil) {
        self.issuer = issuer
        self.authorizationEndpoint = authorizationEndpoint
        self.jwksURI = jwksURI
        self.endSessionEndpoint = endSessionEndpoint
    }

    /// Parses a discovery document fetched from `discoveryURL`. Discovery §4.3: the issuer in the
    /// document must be the one the discovery URL was derived from, or an attacker controlling the
    /// document could name any issuer.
    /// `expectedIssuer`, when the admin configured one, replaces the issuer derived from the URL.
    init(discoveryDocument json: [UInt8], discoveryURL: String, expectedIssuer: String? = nil) throws(ProviderError) {
        let doc: Document
        do {
            doc = try JSONDecoder().decode(Document.self, from: Data(json))
        } catch {
            throw .invalidDocument("discovery document is not a JSON object")
        }
        guard let issuer = doc.issuer, let auth = doc.authorization_endpoint, let jwks = doc.jwks_uri else {
            throw .invalidDocument("discovery document lacks issuer, authorization_endpoint or jwks_uri")
        }
        guard URLParts(auth)?.isHTTP == true, URLParts(jwks)?.isHTTP == true else {
            throw .invalidDocument("authorization_endpoint and jwks_uri must be http(s) URLs")
        }
        // Discovery §3: these are https URLs. Over plain http the keys (and where the browser logs in)
        // could be replaced in transit; loopback stays allowed for local providers and tests.
        for (name, url) in [("authorization_endpoint", auth), ("jwks_uri", jwks), ("end_session_endpoint", doc.end_session_endpoint)] {
            guard let url, let parts = URLParts(url) else { continue }
            if parts.scheme != "https", !parts.isLoopback {
                throw .invalidDocument("\(name) \(Masking.printable(url, max: 120)) is plain http: the discovery document must name https URLs (Discovery section 3)")
            }
        }
        if let expected = expectedIssuer ?? ProviderMetadata.issuer(fromDiscoveryURL: discoveryURL),
           !Self.issuer(issuer, matchesExpected: expected) {
            throw .issuerMismatch(configured: expected, discovered: issuer)
        }
        self.init(issuer: issuer, authorizationEndpoint: auth, jwksURI: jwks, endSessionEndpoint: doc.end_session_endpoint)
    }

    /// Discovery §4.3: the document's issuer is the one its URL was derived from. Two allowances:
    /// - Discovery §4.1 drops an issuer's trailing slash before appending the suffix (Auth0's issuers end
    ///   in "/"), so the derived value may lack the slash the document has;
    /// - Entra's multi-tenant endpoints (common, organizations, consumers) publish the template
    ///   `.../{tenantid}/v2.0`, which the token's `tid` fills in (see IssuerRule).
    static func issuer(_ issuer: String, matchesExpected expected: String) -> Bool {
        if issuer == expected || issuer == expected + "/" { return true }
        guard issuer.contains(IssuerRule.tenantPlaceholder) else { return false }
        return ["common", "organizations", "consumers"].contains {
            issuer.replacing(IssuerRule.tenantPlaceholder, with: $0) == expected
        }
    }

    static let wellKnownSuffix = "/.well-known/openid-configuration"

    /// The issuer a discovery URL stands for: the URL without the well-known suffix. Nil when the URL
    /// does not end with it (then the document's issuer is taken as it is).
    static func issuer(fromDiscoveryURL url: String) -> String? {
        guard url.hasSuffix(wellKnownSuffix) else { return nil }
        return String(url.dropLast(wellKnownSuffix.count))
    }
}
