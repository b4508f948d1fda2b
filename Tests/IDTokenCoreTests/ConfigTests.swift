import Testing
@testable import IDTokenCore

@Suite struct ConfigTests {
    @Test func settingSyntax() {
        #expect(Setting.discoveryURL.check("https://op.example/.well-known/openid-configuration") == nil)
        #expect(Setting.discoveryURL.check("not-a-url") != nil)
        #expect(Setting.discoveryURL.check("ftp://op.example/") != nil)
        #expect(Setting.redirectURI.check("/protected/callback") == nil)
        #expect(Setting.redirectURI.check("https://app.example/cb") == nil)
        #expect(Setting.redirectURI.check("callback") != nil)
        #expect(Setting.redirectURI.check("//evil.example/cb") != nil)
        #expect(Setting.redirectURI.check("/cb?x=1") != nil)
        #expect(Setting.clientID.check("") != nil)
        #expect(Setting.scope.check("openid \"email") != nil)
    }

    @Test func scopeAlwaysHoldsOpenID() {
        #expect(SiteConfig.normalizedScope(nil) == "openid email profile")
        #expect(SiteConfig.normalizedScope("email") == "openid email")
        #expect(SiteConfig.normalizedScope("profile openid") == "profile openid")
    }

    @Test func missingKeyFileSaysHowToMakeOne() {
        let input = SiteConfig.Input(siteName: "t", defaultScheme: "https", defaultHost: "app.example",
                                     discoveryURL: FakeProvider.discoveryURL, clientID: "c", redirectURI: "/cb",
                                     sessionKeyFile: "/nonexistent/key", scope: nil)
        #expect(throws: ConfigError.self) { try SiteConfig.make(input) }
        do {
            _ = try SiteConfig.make(input)
        } catch {
            #expect(error.message.contains("openssl rand"))
        }
    }

    @Test func authorizationURLKeepsAnEndpointQuery() {
        let a = AuthorizationRequest(endpoint: "https://op/authorize?p=B2C_1", clientID: "c", redirectURI: "https://app/cb",
                                     scope: "openid", state: "s", nonce: "n")
        #expect(a.url.hasPrefix("https://op/authorize?p=B2C_1&response_type=id_token&response_mode=form_post"))
        #expect(a.url.contains("redirect_uri=https%3A%2F%2Fapp%2Fcb"))
    }
}
