/// The provider's form_post to the redirect URI, parsed strictly: each parameter at most once
/// (a repeated `state` or `id_token` is a sign of parameter pollution, not a second answer).
struct CallbackForm {
    let parameters: [String: String]

    init(body: [UInt8]) throws(LoginError) {
        guard let pairs = FormEncoding.parse(body) else { throw .malformedForm }
        var parameters = [String: String]()
        for (name, value) in pairs {
            guard parameters[name] == nil else { throw .repeatedParameter(name) }
            parameters[name] = value
        }
        self.parameters = parameters
    }

    subscript(_ name: String) -> String? { parameters[name] }

    /// Whether a Content-Type header announces a form body (parameters such as charset allowed).
    static func isFormContentType(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        // On bytes: the String path (split, trim, lowercase) was a noticeable part of every login.
        let wanted = Array("application/x-www-form-urlencoded".utf8)
        let b = Array(contentType.utf8)
        var start = 0, end = b.firstIndex(of: UInt8(ascii: ";")) ?? b.count
        while start < end, b[start] == 0x20 || b[start] == 0x09 { start += 1 }
        while end > start, b[end - 1] == 0x20 || b[end - 1] == 0x09 { end -= 1 }
        guard end - start == wanted.count else { return false }
        for i in 0..<wanted.count {
            let c = b[start + i]
            guard (c >= 0x41 && c <= 0x5A ? c | 0x20 : c) == wanted[i] else { return false }
        }
        return true
    }
}
