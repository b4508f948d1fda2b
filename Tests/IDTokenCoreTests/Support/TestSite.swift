@testable import IDTokenCore

extension Site {
    static func fixture(provider: FakeProvider = FakeProvider(), redirect: String = "/app/callback",
                     configure: (inout SiteConfig) -> Void = { _ in }) -> Site {
        let keys = (try? SessionKeys(lines: [SealedCookieTests.keyA]))
        guard let keys, let redirectURI = try? RedirectURI(redirect) else {
            preconditionFailure("test fixture keys must parse")
        }
        var config = SiteConfig(siteName: "test", provider: ProviderSource(discoveryURL: FakeProvider.discoveryURL),
                                clientID: "client-1", redirectURI: redirectURI, scope: SiteConfig.normalizedScope(nil), keys: keys)
        configure(&config)
        return Site(config: config, provider: ProviderCache(discoveryURL: FakeProvider.discoveryURL, fetcher: provider))
    }
}

extension Decision {
    var redirect: Redirect? { if case .redirect(let r) = self { return r } else { return nil } }
    var response: Response? { if case .respond(let r) = self { return r } else { return nil } }
    var passed: Pass? { if case .pass(let p) = self { return p } else { return nil } }
}

/// Cookie bookkeeping like a browser's, for the flow tests.
struct CookieJar {
    var cookies: [String: String] = [:]

    mutating func apply(_ setCookies: [String]) {
        for header in setCookies {
            let first = header.split(separator: ";").first ?? ""
            guard let eq = first.firstIndex(of: "=") else { continue }
            let name = String(first[..<eq]), value = String(first[first.index(after: eq)...])
            if header.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = value }
        }
    }

    var header: String? {
        cookies.isEmpty ? nil : cookies.keys.sorted().map { "\($0)=\(cookies[$0] ?? "")" }.joined(separator: "; ")
    }
}

func queryItems(_ url: String) -> [String: String] {
    guard let q = url.split(separator: "?", maxSplits: 1).last, url.contains("?"),
          let pairs = FormEncoding.parse(Array(q.utf8)) else { return [:] }
    return Dictionary(pairs, uniquingKeysWith: { a, _ in a })
}
