/// Where the provider's metadata comes from: its discovery document, or the admin's own directives for
/// providers without discovery. Static values given beside a discovery URL override the discovered ones.
package struct ProviderSource: Sendable, Equatable {
    package var discoveryURL: String?
    /// With discovery: the issuer the document must name (else the one derived from the URL).
    /// Without: the issuer itself.
    package var issuer: String?
    package var authorizationEndpoint: String?
    package var jwksURI: String?
    package var endSessionEndpoint: String?

    /// Identifies the provider in sealed cookies and cache keys.
    var identity: String { discoveryURL ?? issuer ?? "" }

    /// The metadata when every part is configured, so no discovery is needed.
    var staticMetadata: ProviderMetadata? {
        guard discoveryURL == nil, let issuer, let authorizationEndpoint, let jwksURI else { return nil }
        return ProviderMetadata(issuer: issuer, authorizationEndpoint: authorizationEndpoint, jwksURI: jwksURI,
                                endSessionEndpoint: endSessionEndpoint)
    }

    func overriding(_ discovered: ProviderMetadata) -> ProviderMetadata {
        ProviderMetadata(issuer: discovered.issuer,
                         authorizationEndpoint: authorizationEndpoint ?? discovered.authorizationEndpoint,
                         jwksURI: jwksURI ?? discovered.jwksURI,
                         endSessionEndpoint: endSessionEndpoint ?? discovered.endSessionEndpoint)
    }
}
