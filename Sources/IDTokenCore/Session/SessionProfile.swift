/// What turns a token into a session's claims on this site: the settings whose digest is bound into every
/// sealed session (SiteConfig.sessionProfile), so a session read back here is rebuilt exactly as it was
/// made, and the deflate dictionary the session's token is compressed with. Made once per site.
struct SessionProfile: Sendable {
    var delimiter: String
    var keep: Set<String>?
    var drop: Set<String>
    /// Keep the token itself (IDTokenLogoutIDTokenHint): else only what the session needs of its payload.
    var keepsToken: Bool
    let dictionary: [UInt8]
    /// SiteConfig's sessionContext and stateContext, made once here: each is a SHA-256 of the settings,
    /// sorted and joined, which cost every login about 9,000 instructions per seal or open.
    let sessionContext: SealContext
    let stateContext: SealContext

    init(config: SiteConfig) {
        delimiter = config.claimDelimiter
        keep = config.claimsKeep
        drop = config.claimsDrop
        keepsToken = config.logoutIDTokenHint
        // Deflate finds matches best near the dictionary's end: the likeliest strings go last. Issuer and
        // client come from the configuration, so the dictionary is the same wherever the session opens
        // (a different one would be a different site, whose context the seal already refuses).
        dictionary = Array((Self.commonText + config.provider.identity + "\"" + config.clientID + "\"").utf8)
        sessionContext = config.sessionContext
        stateContext = config.stateContext
    }

    func claims(_ all: [String: JSONValue]) -> [Session.Claim] {
        ClaimsForApp.flatten(all, delimiter: delimiter, keep: keep, drop: drop)
    }

    /// Claim names and values most ID tokens carry, as they appear in compact JSON.
    static let commonText = #"{"kty":"RSA","x5t":"{"typ":"JWT","alg":"EdDSA","alg":"PS256","alg":"ES256","alg":"RS256","kid":"# +
        #""tid":"","oid":"","uti":"","rh":"","ver":"2.0","preferred_username":"","unique_name":"","upn":"","#
        + #""roles":[""groups":["amr":["pwd"],"acr":"1","at_hash":"","c_hash":"","azp":"","session_state":"","#
        + #""given_name":"","family_name":"","locale":"en","email_verified":true,"email_verified":false,"#
        + #""email":"","name":"","sid":"","nonce":"","auth_time":17"# + #","iat":17"# + #","exp":17"#
        + #","nbf":17"# + #","aud":"","sub":"","iss":""#
}
