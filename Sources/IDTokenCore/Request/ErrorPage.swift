/// The short page a browser gets when the module refuses. Apache shows an `ErrorDocument` instead when
/// the admin configured one; the IDTOKEN_ERROR* variables let that page say what happened.
enum ErrorPage {
    static func response(status: Int, code: String, message: String, env: [(String, String)]? = nil,
                         setCookies: [String], log: Decision.LogLine?) -> Decision.Response {
        let page = """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>Login failed</title></head>
            <body><h1>Login failed</h1><p>\(HTML.escape(message))</p><p><small>\(HTML.escape(code))</small></p></body></html>

            """
        return Decision.Response(status: status, page: page,
                                 env: env ?? [("IDTOKEN_ERROR", code), ("IDTOKEN_ERROR_DESCRIPTION", message)],
                                 setCookies: setCookies, log: log)
    }

    static func loggedOut(setCookies: [String], log: Decision.LogLine) -> Decision.Response {
        let page = """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>Logged out</title></head>
            <body><h1>Logged out</h1><p>You are logged out.</p></body></html>

            """
        return Decision.Response(status: 200, page: page, env: [], setCookies: setCookies, log: log,
                                 contentType: "text/html; charset=utf-8")
    }

    /// The answer to a completed login when a redirect would lose the session cookie (SameSite=Strict):
    /// a page of this site that moves on to `location` (a path of this site) by itself, with a link for
    /// a browser that does not follow a meta refresh. No script, so no Content-Security-Policy stops it.
    static func onward(to location: String, setCookies: [String], log: Decision.LogLine?) -> Decision.Response {
        let target = HTML.escape(location)
        let page = """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=\(target)"><title>Logged in</title></head>
            <body><p>You are logged in. <a href="\(target)">Continue</a></p></body></html>

            """
        return Decision.Response(status: 200, page: page, env: [], setCookies: setCookies, log: log,
                                 contentType: "text/html; charset=utf-8")
    }

    /// A logout asked for by another site: the same URL as a link, which the user's click makes a
    /// same-origin request. `target` is this request's own path and query (it matched the redirect URI).
    static func confirmLogout(target: String, log: Decision.LogLine) -> Decision.Response {
        let page = """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>Log out?</title></head>
            <body><h1>Log out?</h1><p>Another site asked to log you out of this one.</p>
            <p><a href="\(HTML.escape(target))">Log out</a></p></body></html>

            """
        return Decision.Response(status: 200, page: page, env: [], setCookies: [], log: log,
                                 contentType: "text/html; charset=utf-8")
    }
}
