import CCurl

/// The production fetcher: libcurl's easy API, blocking in the calling request thread, with no signals
/// and no threads of its own (safe in any MPM, and nothing running before fork).
package struct CurlFetcher: HTTPFetcher {
    package let connectTimeoutMs: Int
    package let totalTimeoutMs: Int
    /// Discovery documents and key sets are small; anything beyond this is refused, not buffered.
    package let maximumBytes: Int

    package init(connectTimeoutMs: Int = 3000, totalTimeoutMs: Int = 10000, maximumBytes: Int = 1 << 20) {
        self.connectTimeoutMs = connectTimeoutMs
        self.totalTimeoutMs = totalTimeoutMs
        self.maximumBytes = maximumBytes
    }

    package static func globalInit() { ccurl_global_init() }

    package func get(_ url: String) -> HTTPFetchResult {
        var r = ccurl_result()
        ccurl_get(url, connectTimeoutMs, totalTimeoutMs, maximumBytes, &r)
        defer { ccurl_result_free(&r) }
        guard r.ok != 0 else {
            let reason = withUnsafeBytes(of: r.error) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            return .failed(timedOut: r.timed_out != 0, tooLarge: r.too_large != 0, reason: reason)
        }
        var body = [UInt8]()
        if let p = r.body, r.body_len > 0 {
            body = Array(UnsafeRawBufferPointer(start: p, count: r.body_len))
        }
        return .response(status: r.status, body: body)
    }
}
