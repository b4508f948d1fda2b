import IDTokenCore

/// Seed inputs for each target: the real thing (valid tokens, documents, form bodies, cookies) and the
/// near misses worth starting from. Written to Fuzz/Corpus/<target>/seed-* by the replay test when
/// IDT_WRITE_FUZZ_SEEDS=1, and replayed from memory by it on every run.
public enum FuzzSeeds {
    public struct Seed: Sendable {
        public let name: String
        public let bytes: [UInt8]
        /// How deep this seed must get (nil: no expectation): the replay test's guard against a harness
        /// that no longer reaches what it was written for.
        public let expect: Expectation?

        init(name: String, bytes: [UInt8], expect: Expectation? = nil) {
            self.name = name
            self.bytes = bytes
            self.expect = expect
        }
    }

    public enum Expectation: Sendable {
        case loggedIn, passed, loggedOut
    }

    static func seed(_ name: String, _ text: String, _ expect: Expectation? = nil) -> Seed {
        Seed(name: name, bytes: Array(text.utf8), expect: expect)
    }

    /// Real providers' discovery documents (Tests/IDTokenCoreTests/Fixtures/discovery) are added to the
    /// discovery corpus by the replay test, which can read them.
    public static func seeds(for target: FuzzTarget) -> [Seed] {
        let login = Harness.login
        switch target {
        case .jws:
            let parts = Harness.goodTokens[0].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let logoutClaims = #"{"iss":"\#(Harness.issuer)","aud":"\#(Harness.clientID)","iat":\#(Harness.now),"exp":\#(Harness.now + 120),"jti":"jti-1","sid":"sid-0001","events":{"http://schemas.openid.net/event/backchannel-logout":{}}}"#
            return [
                seed("rs256", Harness.goodTokens[0], .loggedIn),
                seed("ps384-no-kid", Harness.goodTokens[1], .loggedIn),
                seed("es256", Harness.goodTokens[2], .loggedIn),
                seed("es384", Harness.goodTokens[3], .loggedIn),
                seed("es512", Harness.goodTokens[4], .loggedIn),
                seed("eddsa", Harness.goodTokens[5], .loggedIn),
                seed("hs256", Harness.goodHMACToken, .loggedIn),
                seed("logout-token", Harness.mint(alg: "RS256", kid: "rsa-1", typ: "logout+jwt", claims: logoutClaims)),
                seed("unknown-kid", Harness.mint(alg: "ES256", kid: "rotated-2")),
                seed("alg-none", Codec.base64url(Array(#"{"alg":"none"}"#.utf8)) + "." + parts[1] + "."),
                seed("crit", Harness.mint(header: Array(#"{"alg":"HS256","crit":["exp"],"exp":1}"#.utf8),
                                          payload: Array(Harness.claimsJSON().utf8), alg: "HS256")),
                seed("jwe", parts[0] + ".." + parts[1] + ".." + parts[2]),
                seed("bad-signature", parts[0] + "." + parts[1] + "." + String(parts[2].reversed())),
            ]
        case .claims:
            let n = Harness.now
            return [
                seed("standard", Harness.claimsJSON(), .loggedIn),
                seed("standard-hs512", "{\"alg\":\"HS512\",\"typ\":\"JWT\",\"kid\":\"k\"}\n" + Harness.claimsJSON(), .loggedIn),
                seed("rich", Harness.claimsJSON(extra: #","name":"Al\u00efce \"A\"\n","nested":{"a":[1,2.5,-3e2,true,null,{"b":"c"}]},"roles":["x","y"],"n":1e308,"neg":-0,"acr":"urn:mace:incommon:iap:silver","auth_time":\#(n - 30),"nbf":\#(n - 5),"azp":"client-1""#), .loggedIn),
                seed("multi-aud", #"{"iss":"\#(Harness.issuer)","sub":"bob","aud":["client-1","partner-api"],"azp":"client-1","exp":\#(n + 60),"iat":\#(n),"nonce":"\#(login.nonce)","email":"bob@example.org"}"#, .loggedIn),
                seed("entra-like", #"{"iss":"https://login.microsoftonline.com/0000-aaaa/v2.0","tid":"0000-aaaa","sub":"x","aud":"client-1","exp":\#(n + 60),"iat":\#(n),"nonce":"\#(login.nonce)"}"#),
                seed("typ-at-jwt", "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}\n" + Harness.claimsJSON()),
                seed("logout-token", #"{"iss":"\#(Harness.issuer)","aud":"\#(Harness.clientID)","iat":\#(n),"exp":\#(n + 120),"jti":"jti-1","sid":"sid-0001","sub":"alice-0001","events":{"http://schemas.openid.net/event/backchannel-logout":{}}}"#),
                seed("duplicate-member", #"{"sub":"a","sub":"b","iss":"\#(Harness.issuer)"}"#),
                seed("long-sub", Harness.claimsJSON().replacingOccurrences("alice-0001", String(repeating: "s", count: 300))),
            ]
        case .jwks:
            return [
                seed("provider", String(decoding: FixedKeys.jwks, as: UTF8.self), .loggedIn),
                seed("mixed", #"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"hmac"},{"kty":"RSA","use":"enc","kid":"rsa-1","n":"AQAB","e":"AQAB"},{"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"},{"kty":"EC","crv":"P-256","kid":"ec-256","x":"AA","y":"AA"},{"kty":"OKP","crv":"X25519","kid":"x","x":"AAAA"},{"kty":"EC","crv":"secp256k1","kid":"k1"}]}"#),
                seed("empty", #"{"keys":[]}"#),
                seed("alg-restricted", String(decoding: FixedKeys.jwks, as: UTF8.self).replacingOccurrences(#""kid":"rsa-1""#, #""kid":"rsa-1","alg":"RS512","key_ops":["verify"]"#)),
            ]
        case .discovery:
            var seeds = [seed("provider", String(decoding: Harness.discovery, as: UTF8.self), .loggedIn)]
            seeds.append(seed("entra-template", #"{"issuer":"https://login.microsoftonline.com/{tenantid}/v2.0","authorization_endpoint":"https://op.example.org/a","jwks_uri":"https://op.example.org/k"}"#))
            seeds.append(seed("no-end-session", #"{"issuer":"https://op.example.org/","authorization_endpoint":"http://op.example.org/a?x=1#f","jwks_uri":"HTTPS://op.example.org/k"}"#))
            return seeds
        case .form:
            let good = String(decoding: Harness.loginForm(token: Harness.goodTokens[0]), as: UTF8.self)
            return [
                seed("login", good, .loggedIn),
                seed("login-hs256", String(decoding: Harness.loginForm(token: Harness.goodHMACToken), as: UTF8.self), .loggedIn),
                seed("provider-error", "error=access_denied&error_description=The+user+said+no%21&state=" + login.state),
                seed("logout-token", "logout_token=" + Harness.goodTokens[0]),
                seed("repeated", good + "&state=other"),
                seed("plus-and-escapes", "state=a+b%20c&id_token=x%2Ey%2Ez&extra=%E2%82%AC&&=&flag"),
            ]
        case .cookie:
            let session = sessionFromLogin ?? ""
            return [
                seed("state-cookie", login.cookie, .loggedIn),
                seed("browser", "theme=dark; " + login.cookie + "; idtoken_state_stale12345=AAAA; _ga=GA1.2.3", .loggedIn),
                seed("session-and-state", session + "; " + login.cookie, .passed),
                seed("quoted-chunks", "idtoken_session=chunks-2; idtoken_session_0=\"abc\"; idtoken_session_1=def; idtoken_session_7=x"),
                seed("cache-id", "idtoken_session=" + String(repeating: "A", count: 43)),
            ]
        case .session:
            let n = Harness.now
            return [
                seed("sealed-value", sessionFromLogin.map { String($0.drop { $0 != "=" }.dropFirst()) } ?? ""),
                Seed(name: "plaintext", bytes: SealedLayout.session(
                    created: n - 100, expires: n + 3600, refreshed: n - 100, subject: "alice-0001", issuer: Harness.issuer,
                    sid: "sid-0001", idToken: Harness.goodTokens[0], remoteUser: "alice",
                    claims: [("email", "alice@example.org", ""), ("groups", "staff,admins", #"["staff","admins"]"#),
                             ("na\u{e9}me \u{2603}", "x\u{1}y", "")]), expect: .passed),
                Seed(name: "plaintext-minimal", bytes: SealedLayout.session(
                    created: n, expires: n + 1, refreshed: n, subject: "s", issuer: "", sid: "", idToken: "",
                    remoteUser: "s", claims: []), expect: .passed),
                Seed(name: "plaintext-expired", bytes: SealedLayout.session(
                    created: 0, expires: n, refreshed: 0, subject: "s", issuer: "", sid: "", idToken: "x.y.z",
                    remoteUser: "s", claims: [])),
            ]
        case .state:
            let n = Harness.now
            return [
                Seed(name: "plaintext", bytes: SealedLayout.loginState(
                    created: n - 20, state: login.state, nonce: login.nonce, returnTo: "/app/page?x=1", maxAge: -1, acr: ""),
                     expect: .loggedIn),
                Seed(name: "plaintext-max-age-acr", bytes: SealedLayout.loginState(
                    created: n - 20, state: login.state, nonce: login.nonce, returnTo: "/", maxAge: 300, acr: "urn:a urn:b"),
                     expect: .loggedIn),
                Seed(name: "plaintext-other-state", bytes: SealedLayout.loginState(
                    created: n, state: "other", nonce: login.nonce, returnTo: "/", maxAge: -1, acr: "")),
                seed("sealed-value", String(login.cookie.drop { $0 != "=" }.dropFirst()), .loggedIn),
            ]
        case .logout:
            return [
                seed("path", "logout=%2Fbye", .loggedOut),
                seed("own-origin", "logout=http%3A%2F%2Flocalhost%3A8080%2Fbye%3Fa%3Db", .loggedOut),
                seed("partner", "x=1&logout=https://partner.example.net/done#f", .loggedOut),
                seed("empty", "logout=", .loggedOut),
                seed("protocol-relative", "logout=%2F%2Fevil.example"),
                seed("backslash", "logout=/%5Cevil.example"),
                seed("userinfo", "logout=http://localhost:8080@evil.example/"),
                seed("javascript", "logout=javascript:alert(1)"),
                seed("response-in-query", "state=abc&id_token=x.y.z"),
            ]
        }
    }

    /// The session cookie header of a real login.
    static let sessionFromLogin: String? = {
        var o = FuzzTarget.Outcome()
        Harness.decide(Harness.callback(body: Harness.loginForm(token: Harness.goodTokens[0]), cookie: Harness.login.cookie),
                       Harness.cookieSite, &o)
        return o.sessionCookie
    }()
}

extension String {
    fileprivate func replacingOccurrences(_ a: String, _ b: String) -> String { replacing(a, with: b) }
}
