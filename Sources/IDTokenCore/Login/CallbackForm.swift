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
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces.lowercased() }
        return mediaType == "application/x-www-form-urlencoded"
    }
}
