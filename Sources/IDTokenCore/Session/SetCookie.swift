/// One Set-Cookie header value.
struct SetCookie: Equatable {
    enum SameSite: String {
        case lax = "Lax", strict = "Strict", none = "None"
    }

    var name: String
    var value: String
    var path = "/"
    var domain: String? = nil
    var maxAge: Int64?
    var secure: Bool
    var httpOnly = true
    var sameSite: SameSite?

    var headerValue: String {
        var s = name + "=" + value + "; Path=" + path
        if let domain { s += "; Domain=" + domain }
        if let maxAge { s += "; Max-Age=\(maxAge)" }
        if secure { s += "; Secure" }
        if httpOnly { s += "; HttpOnly" }
        if let sameSite { s += "; SameSite=" + sameSite.rawValue }
        return s
    }
}
