/// What the module should do with a request. The C module applies it without interpreting it.
public enum Decision: Sendable {
    /// Not the module's business.
    case decline
    /// Read at most `limit` bytes of the body and ask again.
    case readBody(limit: Int)
    case pass(Pass)
    case redirect(Redirect)
    case respond(Response)

    public struct Pass: Sendable {
        /// REMOTE_USER, headers, environment and claims, shared with the opened session they came from.
        public var rendered: RenderedClaims
        public var setCookies: [String] = []

        /// Nil: let the request through without identity (IDTokenUnauthAction pass).
        public var remoteUser: String? { rendered.remoteUser }
        public var headers: [(String, String)] { rendered.headers }
        public var env: [(String, String)] { rendered.env }
        /// Claim name and JSON, for `Require idtoken-claim`.
        public var claims: [(String, String)] { rendered.claims }
        /// Header and environment values go to Apache as ISO-8859-1 bytes.
        public var latin1: Bool { rendered.latin1 }
    }

    public struct Redirect: Sendable {
        public var status: Int
        public var location: String
        public var setCookies: [String]
        public var log: LogLine?
    }

    public struct Response: Sendable {
        public var status: Int
        public var page: String
        public var env: [(String, String)]
        public var setCookies: [String]
        public var log: LogLine?
        /// Set: `page` is the response body as it is, sent with this type and status (no ErrorDocument).
        /// Nil: an error response, for which Apache shows an ErrorDocument if one is configured.
        public var contentType: String? = nil
    }

    public struct LogLine: Sendable, Equatable {
        public enum Level: Int32, Sendable { case error = 3, warning = 4, notice = 5, info = 6, debug = 7 }
        public var level: Level
        public var message: String
    }

    var status: Int? {
        switch self {
        case .redirect(let r): return r.status
        case .respond(let r): return r.status
        default: return nil
        }
    }
}
