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
    /// The login asked for prompt=login: the session it opens counts as a fresh login.
    var promptLogin = false
    /// Logins this browser completed in a row before this one, each followed at once by a request
    /// without a session (LoginMarker): the loop guard's count, carried through the provider.
    var streak = 0
    /// `returnTo` is only the fallback: the whole return URL was too long for this cookie and is kept in
    /// the shared store under this login's state (LongReturnURL).
    var returnStored = false
    /// A silent login (IDTokenSilentLogin: prompt=none): a provider's login_required and the like then
    /// start an interactive one instead of ending on an error page.
    var silent = false

    static let cookiePrefix = "idtoken_state_"
    /// Over https: the browser then refuses the cookie unless it is Secure, host-only and for path "/", so
    /// a sibling subdomain cannot plant a state of its own choosing (login CSRF, RFC 6265bis §4.1.3.2).
    static let securePrefix = "__Host-"
    /// Characters of the state value that name its cookie, so parallel logins (two tabs) do not
    /// overwrite each other's cookie.
    static let cookieNameLength = 12

    func cookieName(secure: Bool) -> String { Self.cookieName(forState: state, secure: secure) }

    static func cookieName(forState state: String, secure: Bool) -> String {
        namePrefix(secure: secure) + String(state.prefix(cookieNameLength))
    }

    static func namePrefix(secure: Bool) -> String { secure ? securePrefix + cookiePrefix : cookiePrefix }

    /// 6 added the silent login; 5 the loop guard's streak and the stored return URL; 4 prompt=login;
    /// 3 to 5 still open (a login in flight across an upgrade completes).
    private static let format: UInt8 = 6
    private static let formatsRead: ClosedRange<UInt8> = 3...6

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(Self.format)
        w.i64(createdAt)
        w.string(state)
        w.string(nonce)
        w.string(returnTo)
        w.i64(maxAge ?? -1)
        w.string(acrValues.joined(separator: " "))
        w.u8(promptLogin ? 1 : 0)
        w.u8(UInt8(clamping: streak))
        w.u8(returnStored ? 1 : 0)
        w.u8(silent ? 1 : 0)
        return w.bytes
    }

    init(state: String, nonce: String, returnTo: String, createdAt: Int64, maxAge: Int64? = nil, acrValues: [String] = [],
         promptLogin: Bool = false, streak: Int = 0, returnStored: Bool = false, silent: Bool = false) {
        self.state = state
        self.nonce = nonce
        self.returnTo = returnTo
        self.createdAt = createdAt
        self.maxAge = maxAge
        self.acrValues = acrValues
        self.promptLogin = promptLogin
        self.streak = streak
        self.returnStored = returnStored
        self.silent = silent
    }

    init?(decoding bytes: [UInt8]) {
        var r = ByteReader(bytes)
        // max_age -1 stands for none; a larger one than any time cannot be meant (and would overflow).
        guard let format = r.u8(), Self.formatsRead.contains(format), let created = r.time(), let state = r.string(),
              let nonce = r.string(), let returnTo = r.string(), let maxAge = r.i64(), maxAge <= ByteReader.maximumSeconds,
              let acr = r.string() else { return nil }
        var prompt: UInt8 = 0, streak: UInt8 = 0, stored: UInt8 = 0, silent: UInt8 = 0
        if format >= 4 {
            guard let p = r.u8(), p <= 1 else { return nil }
            prompt = p
        }
        if format >= 5 {
            guard let n = r.u8(), let s = r.u8(), s <= 1 else { return nil }
            streak = n
            stored = s
        }
        if format >= 6 {
            guard let q = r.u8(), q <= 1 else { return nil }
            silent = q
        }
        // Whatever was sealed, the return URL is a path of this site (the redirect after login goes there).
        guard r.isAtEnd, Self.isLocalTarget(returnTo) else { return nil }
        self.init(state: state, nonce: nonce, returnTo: returnTo, createdAt: created, maxAge: maxAge >= 0 ? maxAge : nil,
                  acrValues: acr.split(separator: " ").map(String.init), promptLogin: prompt == 1, streak: Int(streak),
                  returnStored: stored == 1, silent: silent == 1)
    }

    /// A path (and query) of this site: one leading "/", not "//" or "/\\" (which browsers read as another
    /// host), no control characters. Only such a target is ever a return URL.
    static func isLocalTarget(_ target: String) -> Bool {
        let b = Array(target.utf8.prefix(2))
        guard b.first == UInt8(ascii: "/") else { return false }
        if b.count == 2, b[1] == UInt8(ascii: "/") || b[1] == UInt8(ascii: "\\") { return false }
        return !target.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    /// A fresh login: 256-bit random state and nonce, unguessable and single-use.
    static func start<R: RandomNumberGenerator>(returnTo: String, now: Int64, maxAge: Int64?, acrValues: [String] = [],
                                                promptLogin: Bool = false, using rng: inout R) -> LoginState {
        LoginState(state: randomToken(using: &rng), nonce: randomToken(using: &rng), returnTo: returnTo, createdAt: now,
                   maxAge: maxAge, acrValues: acrValues, promptLogin: promptLogin)
    }

    /// Whether a value has the shape of `randomToken`'s: 43 base64url characters.
    static func isRandomToken(_ value: Substring) -> Bool {
        value.utf8.count == 43 && value.utf8.allSatisfy { Base64URL.isAlphabet($0) }
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
