import Testing
@testable import IDTokenCore
#if canImport(Glibc)
import Glibc
#endif

/// An upgrade logs no one out: a sealed sample of every session and state format a release wrote, kept in
/// Fixtures/upgrade/ (sealed with the tests' fixed key, `SealedCookieTests.keyA`, for the fixture site),
/// still opens. A release that changes a format adds its own sample with
/// `IDT_WRITE_UPGRADE_FIXTURES=1 swift test --filter UpgradeFixtureTests`, which writes only the files
/// that are missing: a released sample is never rewritten.
@Suite struct UpgradeFixtureTests {
    static let t: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 2026)

    /// What each release sealed, by file name.
    enum Sample: String, CaseIterable {
        case session3 = "session-format3-seal1-0.7.0.txt"
        case session4 = "session-format4-seal2-0.8.0.txt"
        case session5 = "session-format5-seal2-0.9.0.txt"
        case state4 = "state-format4-0.8.0.txt"
        case state6 = "state-format6-0.9.0.txt"

        var isSession: Bool { rawValue.hasPrefix("session") }
    }

    static let state = "fixture-state-0123456789abcdefghijklmnopqrstuvwx"
    static let nonce = "fixture-nonce-0123456789abcdefghijklmnopqrstuvwx"

    static func session(token: String = "") -> Session {
        Session(subject: "alice-0001", issuer: FakeProvider.issuer, createdAt: t, expiresAt: t + 3600, sid: nil,
                idToken: token, remoteUser: "alice-0001", claims: [.init("email", "alice@example.org"), .init("sub", "alice-0001")],
                authTime: t, acr: nil, tokenExpiresAt: t + 300)
    }

    /// The sample as the release that wrote it sealed it.
    static func make(_ sample: Sample, site: Site) -> String? {
        let config = site.config
        switch sample {
        case .session3:
            let v4 = session().encodedFormat4()
            return LegacySeal.seal([3] + Array(v4[1..<(v4.count - 21)]), keys: config.keys, context: config.storeContext)
        case .session4:
            return SealedCookie.seal(session().encodedFormat4(), keys: config.keys, purpose: .session, context: config.sessionContext)
        case .session5:
            var f = TokenFactory.standard(now: t, nonce: nonce)
            f.claims["email"] = .string("alice@example.org")
            let token = f.signed()
            return session(token: token).encoded(site.sessionProfile).flatMap {
                SealedCookie.seal($0, keys: config.keys, purpose: .session, context: config.sessionContext)
            }
        case .state4, .state6:
            let login = LoginState(state: state, nonce: nonce, returnTo: "/app/after-upgrade?x=1", createdAt: t)
            var bytes = login.encoded()
            if sample == .state4 {
                // Format 4 as 0.8.0 wrote it: the fields up to prompt=login.
                var w = ByteWriter()
                w.u8(4)
                w.i64(t)
                w.string(state)
                w.string(nonce)
                w.string(login.returnTo)
                w.i64(-1)
                w.string("")
                w.u8(0)
                bytes = w.bytes
            }
            return SealedCookie.seal(bytes, keys: config.keys, purpose: .state, context: config.stateContext)
        }
    }

    static func path(_ sample: Sample) -> String { Fixture.folder + "upgrade/" + sample.rawValue }

    static func read(_ sample: Sample) -> String {
        String(decoding: Fixture.bytes("upgrade/" + sample.rawValue).filter { $0 > 0x20 }, as: UTF8.self)
    }

    @Test func writeMissingSamplesWhenAsked() throws {
        guard getenv("IDT_WRITE_UPGRADE_FIXTURES") != nil else { return }
        let site = Site.fixture()
        for sample in Sample.allCases where Self.read(sample).isEmpty {
            let value = try #require(Self.make(sample, site: site))
            let f = try #require(fopen(Self.path(sample), "w"))
            fputs(value + "\n", f)
            fclose(f)
        }
    }

    @Test(arguments: Sample.allCases.filter(\.isSession))
    mutating func aSessionOfAnEarlierReleaseStillOpens(_ sample: Sample) throws {
        let value = Self.read(sample)
        try #require(!value.isEmpty, "missing fixture \(sample.rawValue)")
        let site = Site.fixture()
        var jar = CookieJar()
        jar.cookies["idtoken_session"] = value
        let request = AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: "/app/", cookie: jar.header,
                                  accept: "text/html")
        let pass = try #require(RequestDecider.decide(request, site: site, now: Self.t + 10, rng: &rng).passed, "\(sample)")
        #expect(pass.remoteUser == "alice-0001")
        #expect(pass.env.contains { $0.0 == "IDTOKEN_CLAIM_email" && $0.1 == "alice@example.org" })
    }

    @Test(arguments: Sample.allCases.filter { !$0.isSession })
    mutating func aLoginInFlightAcrossTheUpgradeCompletes(_ sample: Sample) throws {
        let value = Self.read(sample)
        try #require(!value.isEmpty, "missing fixture \(sample.rawValue)")
        let site = Site.fixture()
        var jar = CookieJar()
        jar.cookies[LoginState.cookieName(forState: Self.state, secure: false)] = value
        let token = TokenFactory.standard(now: Self.t + 10, nonce: Self.nonce).signed()
        let body = "state=\(Self.state)&id_token=\(token)"
        let post = AuthRequest(method: "POST", scheme: "http", host: "localhost:8080", target: "/app/callback", cookie: jar.header,
                               contentType: "application/x-www-form-urlencoded", body: Array(body.utf8))
        let done = try #require(RequestDecider.decide(post, site: site, now: Self.t + 10, rng: &rng).redirect, "\(sample)")
        #expect(done.location == "/app/after-upgrade?x=1")
        #expect(done.setCookies.contains { $0.hasPrefix("idtoken_session=") })
    }
}
