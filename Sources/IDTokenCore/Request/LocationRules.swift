/// What a location asks of a login through IDTokenAuthRequestParams, applied to every session that
/// enters it, not only to logins that start there: a session opened elsewhere with a password an hour
/// ago does not pass a location asking `max_age=60 acr_values=urn:mfa`.
struct LocationRules {
    /// max_age: the user authenticated at the provider at most this long ago.
    var maxAge: Int64?
    /// acr_values: the session's acr is one of these.
    var acrValues: [String] = []
    /// prompt=login: the session comes from a login that asked for it.
    var promptLogin = false

    init(_ dir: DirConfig) {
        let extra = dir.authRequestParameters ?? []
        maxAge = extra.last { $0.0 == "max_age" }.flatMap { Int64($0.1) }
        acrValues = extra.last { $0.0 == "acr_values" }.map { $0.1.split(separator: " ").map(String.init) } ?? []
        promptLogin = extra.last { $0.0 == "prompt" }.map { $0.1.split(separator: " ").contains("login") } ?? false
    }

    /// Nil when the session meets every rule; else what it lacks, for the log.
    func unmet(by session: Session, now: Int64, clockSkew: Int64) -> String? {
        if let maxAge {
            guard let at = session.authTime else { return "has no auth_time, and this location asks max_age=\(maxAge)" }
            if now - at > maxAge + clockSkew { return "authenticated \(now - at) s ago, longer than this location's max_age=\(maxAge)" }
        }
        if !acrValues.isEmpty, !(session.acr.map(acrValues.contains) ?? false) {
            return "has acr '\(Masking.printable(session.acr ?? "none"))', not one of this location's acr_values"
        }
        if promptLogin, !session.promptLogin { return "was not opened by a login with prompt=login, which this location asks" }
        return nil
    }
}
