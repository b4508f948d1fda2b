import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import IDTokenCore

@Suite struct ConfigTests {
    @Test func settingSyntax() {
        #expect(Directive.discoveryURL.check("https://op.example/.well-known/openid-configuration") == nil)
        #expect(Directive.discoveryURL.check("not-a-url") != nil)
        #expect(Directive.discoveryURL.check("ftp://op.example/") != nil)
        #expect(Directive.redirectURI.check("/protected/callback") == nil)
        #expect(Directive.redirectURI.check("https://app.example/cb") == nil)
        #expect(Directive.redirectURI.check("callback") != nil)
        #expect(Directive.redirectURI.check("//evil.example/cb") != nil)
        #expect(Directive.redirectURI.check("/cb?x=1") != nil)
        #expect(Directive.clientID.check("") != nil)
        #expect(Directive.scope.check("e\"mail") != nil)
    }

    @Test func scopeAlwaysHoldsOpenID() {
        #expect(SiteConfig.normalizedScope(nil) == "openid email profile")
        #expect(SiteConfig.normalizedScope("email") == "openid email")
        #expect(SiteConfig.normalizedScope("profile openid") == "profile openid")
    }

    @Test func missingKeyFileSaysHowToMakeOne() {
        let input = SiteConfig.Input(siteName: "t", defaultScheme: "https", defaultHost: "app.example", settings: [
            ("IDTokenDiscoveryURL", FakeProvider.discoveryURL), ("IDTokenClientID", "c"), ("IDTokenRedirectURI", "/cb"),
            ("IDTokenSessionKeyFile", "/nonexistent/key"),
        ])
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

    static func keyFile() -> String {
        var template = Array("/tmp/idtoken-test-key-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { b in b.baseAddress.map { mkstemp($0) } ?? -1 }
        let line = SealedCookieTests.keyA + "\n"
        _ = line.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func make(_ settings: [(String, String)]) throws(ConfigError) -> SiteConfig {
        let base = [("IDTokenClientID", "c"), ("IDTokenRedirectURI", "/cb"), ("IDTokenSessionKeyFile", Self.keyFile())]
        return try SiteConfig.make(.init(siteName: "t", defaultScheme: "https", defaultHost: "app.example", settings: base + settings)).0
    }

    @Test func everySettingIsRead() throws {
        let c = try make([("IDTokenDiscoveryURL", FakeProvider.discoveryURL), ("IDTokenSignatureAlgorithms", "ES256 PS256"),
                          ("IDTokenTrustedAudiences", "api1 api2"), ("IDTokenClockSkew", "30"), ("IDTokenMaxAge", "600"),
                          ("IDTokenStateLifetime", "120"), ("IDTokenMaxStateCookies", "3"), ("IDTokenKeyRefetchInterval", "10"),
                          ("IDTokenHTTPTimeout", "5 2"), ("IDTokenScope", "email")])
        #expect(c.allowedAlgorithms == [.es256, .ps256])
        #expect(c.trustedAudiences == ["api1", "api2"])
        #expect(c.clockSkew == 30 && c.maxAge == 600 && c.stateLifetime == 120 && c.maximumStateCookies == 3)
        #expect(c.cachePolicy.unknownKeyRefetchInterval == 10)
        #expect(c.httpTotalTimeoutMs == 5000 && c.httpConnectTimeoutMs == 2000)
        #expect(c.scope == "openid email")
    }

    @Test func inconsistentSettingsAreRefused() {
        let discovery = ("IDTokenDiscoveryURL", FakeProvider.discoveryURL)
        #expect(throws: ConfigError.self) { try make([discovery, ("IDTokenSignatureAlgorithms", "RS256 HS256")]) }
        #expect(throws: ConfigError.self) {
            try make([discovery, ("IDTokenSignatureAlgorithms", "HS256"), ("IDTokenClientSecret", "too short")])
        }
        #expect(throws: Never.self) {
            try make([discovery, ("IDTokenSignatureAlgorithms", "HS256"), ("IDTokenClientSecret", String(repeating: "s", count: 32))])
        }
        #expect(throws: ConfigError.self) { try make([("IDTokenIssuer", FakeProvider.issuer)]) }
        #expect(throws: Never.self) {
            try make([("IDTokenIssuer", FakeProvider.issuer), ("IDTokenAuthorizationEndpoint", "https://op/auth"), ("IDTokenJWKSURI", "https://op/jwks")])
        }
        #expect(throws: ConfigError.self) { try make([discovery, ("IDTokenNoSuchThing", "1")]) }
        #expect(throws: ConfigError.self) { try make([discovery, ("IDTokenSignatureAlgorithms", "none")]) }
        #expect(throws: ConfigError.self) { try make([discovery, ("IDTokenClockSkew", "-5")]) }
    }
}
