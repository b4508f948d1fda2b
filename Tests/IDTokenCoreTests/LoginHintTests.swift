import Testing
@testable import IDTokenCore

/// IDTokenAuthRequestFromQuery: a portal link's hints reach the provider; nothing else from the query does.
@Suite struct LoginHintTests {
    let now: Int64 = 1_800_000_000
    var rng = SeededRandom(state: 21)

    func start(_ target: String, _ words: String?) throws -> [String: String] {
        var settings = [("IDTokenAuthRequestParams", "login_hint=admin@example.org prompt=login")]
        if let words { settings.append(("IDTokenAuthRequestFromQuery", words)) }
        let dir = try DirConfig(settings: settings)
        let request = AuthRequest(method: "GET", scheme: "http", host: "localhost:8080", target: target, accept: "text/html", dir: dir)
        var rng = SeededRandom(state: 3)
        let r = try #require(RequestDecider.decide(request, site: .fixture(), now: now, rng: &rng).redirect)
        return queryItems(r.location)
    }

    @Test func hintsFromTheQueryReachTheProvider() throws {
        let q = try start("/app/?login_hint=alice%40example.org&domain_hint=example.org&prompt=none&max_age=0", "login_hint domain_hint")
        #expect(q["login_hint"] == "alice@example.org")
        #expect(q["domain_hint"] == "example.org")
        // What the login proves stays the admin's.
        #expect(q["prompt"] == "login")
        #expect(q["max_age"] == nil)
    }

    @Test func withoutTheDirectiveTheQueryIsIgnored() throws {
        let q = try start("/app/?login_hint=alice%40example.org", nil)
        #expect(q["login_hint"] == "admin@example.org")
    }

    @Test func unusableHintsAreLeftOut() throws {
        let long = String(repeating: "a", count: 300)
        #expect(try start("/app/?login_hint=" + long, "login_hint")["login_hint"] == "admin@example.org")
        #expect(try start("/app/?login_hint=a%0Db", "login_hint")["login_hint"] == "admin@example.org")
    }

    @Test func onlyHintsMayBeNamed() {
        #expect(Directive.authRequestFromQuery.check("login_hint domain_hint") == nil)
        for bad in ["prompt", "max_age", "acr_values", "redirect_uri"] {
            #expect(Directive.authRequestFromQuery.check(bad) != nil, "\(bad)")
        }
    }
}
