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
        // Appended into one string reserved up front: `a + b + ...` made a string per `+`, each copying
        // the (kilobyte-long) value again, and interpolation went through the generic string writer.
        var s = ""
        s.reserveCapacity(name.utf8.count + value.utf8.count + path.utf8.count + (domain?.utf8.count ?? 0) + 80)
        s += name
        s += "="
        s += value
        s += "; Path="
        s += path
        if let domain {
            s += "; Domain="
            s += domain
        }
        if let maxAge {
            s += "; Max-Age="
            s += String(maxAge)
        }
        if secure { s += "; Secure" }
        if httpOnly { s += "; HttpOnly" }
        if let sameSite {
            s += "; SameSite="
            s += sameSite.rawValue
        }
        return s
    }
}
