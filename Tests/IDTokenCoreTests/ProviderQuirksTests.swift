import Testing
@testable import IDTokenCore

/// Discovery documents as real providers publish them (recorded), each read from its own discovery URL.
@Suite struct ProviderQuirksTests {
    struct Recorded: Sendable, CustomTestStringConvertible {
        let file: String
        let discoveryURL: String
        let issuer: String
        var testDescription: String { file }
    }

    static let recorded: [Recorded] = [
        .init(file: "entra-common.json", discoveryURL: "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration",
              issuer: "https://login.microsoftonline.com/{tenantid}/v2.0"),
        .init(file: "entra-tenant.json", discoveryURL: "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0/.well-known/openid-configuration",
              issuer: "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"),
        .init(file: "google.json", discoveryURL: "https://accounts.google.com/.well-known/openid-configuration",
              issuer: "https://accounts.google.com"),
        .init(file: "auth0.json", discoveryURL: "https://example.eu.auth0.com/.well-known/openid-configuration",
              issuer: "https://example.eu.auth0.com/"),
        .init(file: "keycloak.json", discoveryURL: "https://sso.example.org/realms/staff/.well-known/openid-configuration",
              issuer: "https://sso.example.org/realms/staff"),
    ]

    @Test(arguments: recorded)
    func recordedDocumentIsAccepted(_ r: Recorded) throws {
        let doc = Fixture.bytes("discovery/" + r.file)
        #expect(!doc.isEmpty)
        let m = try ProviderMetadata(discoveryDocument: doc, discoveryURL: r.discoveryURL)
        #expect(m.issuer == r.issuer)
        #expect(m.jwksURI.hasPrefix("https://"))
        #expect(m.endSessionEndpoint != nil || r.file == "google.json")
    }

    @Test(arguments: recorded)
    func documentServedFromAnotherProvidersURLIsRefused(_ r: Recorded) {
        let doc = Fixture.bytes("discovery/" + r.file)
        #expect(throws: ProviderError.self) {
            try ProviderMetadata(discoveryDocument: doc, discoveryURL: "https://attacker.example/.well-known/openid-configuration")
        }
    }

    @Test func configuredIssuerWinsOverTheDerivedOne() throws {
        let doc = Fixture.bytes("discovery/keycloak.json")
        #expect(throws: ProviderError.self) {
            try ProviderMetadata(discoveryDocument: doc, discoveryURL: "https://sso.example.org/realms/staff/.well-known/openid-configuration",
                                 expectedIssuer: "https://sso.example.org/realms/other")
        }
        // A discovery URL not ending in the well-known suffix: the configured issuer is the reference.
        let m = try ProviderMetadata(discoveryDocument: doc, discoveryURL: "https://mirror.example/kc.json",
                                     expectedIssuer: "https://sso.example.org/realms/staff")
        #expect(m.issuer == "https://sso.example.org/realms/staff")
    }

    @Test func entraTemplateIsNotAcceptedForAnUnrelatedURL() {
        let doc = Fixture.bytes("discovery/entra-common.json")
        #expect(throws: ProviderError.self) {
            try ProviderMetadata(discoveryDocument: doc, discoveryURL: "https://login.microsoftonline.com/evil/v2.0/.well-known/openid-configuration")
        }
    }
}
