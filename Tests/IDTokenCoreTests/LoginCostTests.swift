import Testing
@testable import IDTokenCore

/// The helpers the login's cost reductions brought (issue 17): each must answer as what it replaced.
@Suite struct LoginCostTests {
    @Test func utf8ValidationAgreesWithTheStandardLibrary() {
        let samples: [[UInt8]] = [
            [], Array("plain ascii".utf8), Array("Zoë, Łódź, 東京, 🙂".utf8),
            [0xFF], [0xC3], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x61, 0xC0, 0xAF],
            Array("ascii then".utf8) + [0xE2, 0x82],
        ]
        for bytes in samples {
            #expect(UTF8Text.validated(bytes) == String(validating: bytes, as: UTF8.self))
            #expect(UTF8Text.validated(bytes[...]) == String(validating: bytes, as: UTF8.self))
        }
    }

    @Test func asciiMatching() {
        #expect(ASCII.contains("text/HTML,application/xml", "text/html", ignoringCase: true))
        #expect(!ASCII.contains("text/HTML", "text/html"))
        #expect(ASCII.contains("a */* b", "*/*"))
        #expect(!ASCII.contains("text/htm", "text/html", ignoringCase: true))
        #expect(ASCII.contains("anything", ""))
        #expect(ASCII.contains("x_idtoken_state_abc"[...], "idtoken_state_"))
        #expect(ASCII.equalsIgnoringCase("NaviGate", "navigate"))
        #expect(!ASCII.equalsIgnoringCase("navigates", "navigate"))
        #expect(!ASCII.equalsIgnoringCase("navigatë", "navigate"))
    }

    @Test func bufferedRandomKeepsGivingFreshWords() {
        var rng = BufferedSystemRandom()
        let words = (0..<(3 * BufferedSystemRandom.wordsPerFetch + 1)).map { _ in rng.next() }
        // 25 random 64-bit words: a repeat would mean a buffer served twice.
        #expect(Set(words).count == words.count)
        let tokens = (0..<5).map { _ in LoginState.randomToken(using: &rng) }
        #expect(Set(tokens).count == tokens.count)
        #expect(tokens.allSatisfy { LoginState.isRandomToken($0[...]) })
    }

    @Test func authorizationURLIsEncodedAsBefore() {
        let auth = AuthorizationRequest(endpoint: "https://op.example/authorize?tenant=a b#frag", clientID: "client 1",
                                        redirectURI: "https://rp.example/cb", scope: "openid email", state: "s/1",
                                        nonce: "n+1", maxAge: 60, extra: [("ui_locales", "fr é")])
        #expect(auth.url == "https://op.example/authorize?tenant=a b&response_type=id_token&response_mode=form_post"
            + "&client_id=client%201&redirect_uri=https%3A%2F%2Frp.example%2Fcb&scope=openid%20email&state=s%2F1"
            + "&nonce=n%2B1&max_age=60&ui_locales=fr%20%C3%A9")
    }

    @Test func setCookieHeaderValue() {
        let c = SetCookie(name: "n", value: "v", path: "/p", domain: "example.org", maxAge: -5, secure: true, sameSite: .lax)
        #expect(c.headerValue == "n=v; Path=/p; Domain=example.org; Max-Age=-5; Secure; HttpOnly; SameSite=Lax")
        let d = SetCookie(name: "n", value: "", maxAge: nil, secure: false, httpOnly: false, sameSite: nil)
        #expect(d.headerValue == "n=; Path=/")
    }

    /// Store keys outlive a release (file store, Redis): these are what the key format has always given.
    @Test func storeKeysAreUnchanged() {
        #expect(String(decoding: StoreKey.make(.session, "abc", context: "client\u{0}https://op/.well-known/openid-configuration"), as: UTF8.self)
            == "idtoken:s:hCDI1XQYzvgQdffVKKIvzUE7UYFlupjWgj48CGePtos")
        #expect(String(decoding: StoreKey.make(.sub, "Zoë", context: "c\u{0}i"), as: UTF8.self)
            == "idtoken:sub:Sv3omK8bxVHlkXVIZ8K55vtDDs8ncJXiyS5slLyXmNQ")
    }
}
