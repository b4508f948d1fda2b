/// What the module should do with a request. The C module applies it without interpreting it.
package enum Decision: Sendable {
    /// Not the module's business.
    case decline
    /// Read at most `limit` bytes of the body and ask again.
    case readBody(limit: Int)
    case pass(Pass)
    case redirect(Redirect)
    case respond(Response)

    package struct Pass: Sendable {
        /// REMOTE_USER, headers, environment and claims, shared with the opened session they came from.
        package var rendered: RenderedClaims
        package var setCookies: [String] = []

        package init(rendered: RenderedClaims, setCookies: [String] = []) {
            self.rendered = rendered
            self.setCookies = setCookies
        }

        /// Nil: let the request through without identity (IDTokenUnauthAction pass).
        package var remoteUser: String? { rendered.remoteUser }
        package var headers: [(String, String)] { rendered.headers }
        package var env: [(String, String)] { rendered.env }
        /// Claim name and JSON, for `Require idtoken-claim`.
        package var claims: [(String, String)] { rendered.claims }
        /// Header and environment values go to Apache as ISO-8859-1 bytes.
        package var latin1: Bool { rendered.latin1 }
    }

    package struct Redirect: Sendable {
        package var status: Int
        package var location: String
        package var setCookies: [String]
        package var log: LogLine?
    }

    package struct Response: Sendable {
        package var status: Int
        package var page: String
        package var env: [(String, String)]
        package var setCookies: [String]
        package var log: LogLine?
        /// Set: `page` is the response body as it is, sent with this type and status (no ErrorDocument).
        /// Nil: an error response, for which Apache shows an ErrorDocument if one is configured.
        package var contentType: String? = nil
        /// Headers of the response (CORS, a framing policy), set as they are.
        package var headers: [(String, String)] = []
    }

    package struct LogLine: Sendable, Equatable {
        package enum Level: Int32, Sendable { case error = 3, warning = 4, notice = 5, info = 6, debug = 7 }
        package var level: Level
        package var message: String
    }

    var status: Int? {
        switch self {
        case .redirect(let r): return r.status
        case .respond(let r): return r.status
        default: return nil
        }
    }
}
