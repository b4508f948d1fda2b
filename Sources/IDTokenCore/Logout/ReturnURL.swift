/// Where a logout may send the browser afterwards: a path on this site, or an absolute URL on this
/// site's origin or on one the admin allowed. Everything else is refused, so logout cannot serve as an
/// open redirect (`//evil`, `/\evil`, `https:evil`, `user@host`, schemes other than http(s)...).
enum ReturnURL {
    /// The absolute URL, or nil when the value is not acceptable.
    static func validate(_ raw: String, request: AuthRequest, allowedOrigins: Set<String>) -> String? {
        guard !raw.isEmpty, raw.utf8.count <= 2048,
              raw.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "\\" }) else { return nil }
        let ownOrigin = request.scheme.lowercased() + "://" + request.host.lowercased()
        if raw.hasPrefix("/") {
            guard !raw.hasPrefix("//") else { return nil }
            return ownOrigin + raw
        }
        guard let url = URLParts(raw), url.origin == ownOrigin || allowedOrigins.contains(url.origin) else { return nil }
        return raw
    }
}
