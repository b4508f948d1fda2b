/// What REMOTE_USER becomes: `sub` by default, or another claim, optionally cut down by a regular
/// expression's first capture group (e.g. `email ^(.*)@example\.org$` → the local part).
enum RemoteUser {
    static func derive(_ token: ValidatedIDToken, config: SiteConfig) -> String? {
        guard let claim = config.remoteUserClaim else { return token.subject }
        guard let value = token.claims[claim], case let flat = value.flattened(delimiter: config.claimDelimiter), !flat.isEmpty else {
            return nil
        }
        guard let pattern = config.remoteUserPattern else { return ClaimsForApp.cleanValue(flat) }
        guard let regex = try? Regex(pattern), let match = try? regex.firstMatch(in: flat) else { return nil }
        let picked = match.output.count > 1 ? match.output[1].substring.map(String.init) : String(match.output[0].substring ?? "")
        guard let picked, !picked.isEmpty else { return nil }
        return ClaimsForApp.cleanValue(picked)
    }
}
