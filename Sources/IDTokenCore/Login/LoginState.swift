/// One login in progress, sealed into a state cookie that binds the `state` sent to the provider to
/// this browser (OAuth 2.0 §10.12) and remembers the nonce the token must carry and where to return.
struct LoginState: Equatable {
    var state: String
    var nonce: String
    /// The path and query the browser asked for; always starting with a single "/", so the redirect
    /// after login can only lead back into this site.
    var returnTo: String
    var createdAt: Int64
    /// The max_age this login asked for (server-wide or the location's), which auth_time must meet.
    var maxAge: Int64?
    /// The acr_values this login asked for (the location's), one of which the token's acr must be.
    var acrValues: [String] = []

    static let cookiePrefix = "idtoken_state_"
    /// Characters of the state value that name its cookie, so parallel logins (two tabs) do not
    /// overwrite each other's cookie.
    static let cookieNameLength = 12

    var cookieName: String { Self.cookieName(forState: state) }

    static func cookieName(forState state: String) -> String {
        cookiePrefix + String(state.prefix(cookieNameLength))
    }

    private static let format: UInt8 = 3

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(Self.format)
        w.i64(createdAt)
        w.string(state)
        w.string(nonce)
        w.string(returnTo)
        w.i64(maxAge ?? -1)
        w.string(acrValues.joined(separator: " "))
        return w.bytes
    }

    init(state: String, nonce: String, returnTo: String, createdAt: Int64, maxAge: Int64? = nil, acrValues: [String] = []) {
        self.state = state
        self.nonce = nonce
        self.returnTo = returnTo
        self.createdAt = createdAt
        self.maxAge = maxAge
        self.acrValues = acrValues
    }

    init?(decoding bytes: [UInt8]) {
        var r = ByteReader(bytes)
        // max_age -1 stands for none; a larger one than any time cannot be meant (and would overflow).
        guard r.u8() == Self.format, let created = r.time(), let state = r.string(), let nonce = r.string(),
              let returnTo = r.string(), let maxAge = r.i64(), maxAge <= ByteReader.maximumSeconds, let acr = r.string(),
              r.isAtEnd else { return nil }
        self.init(state: state, nonce: nonce, returnTo: returnTo, createdAt: created, maxAge: maxAge >= 0 ? maxAge : nil,
                  acrValues: acr.split(separator: " ").map(String.init))
    }

    /// A fresh login: 256-bit random state and nonce, unguessable and single-use.
    static func start<R: RandomNumberGenerator>(returnTo: String, now: Int64, maxAge: Int64?, acrValues: [String] = [],
                                                using rng: inout R) -> LoginState {
        LoginState(state: randomToken(using: &rng), nonce: randomToken(using: &rng), returnTo: returnTo, createdAt: now,
                   maxAge: maxAge, acrValues: acrValues)
    }

    static func randomToken<R: RandomNumberGenerator>(using rng: inout R) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(32)
        for _ in 0..<4 {
            let v = rng.next()
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
        }
        return Base64URL.encode(bytes)
    }
}
