/// What the module gathered for a scrape or a status request: the counters summed over every process of
/// the server, each site's gauges, and the store as the module sees it.
package struct MetricsSnapshot: Sendable {
    /// By `Counter.index`; missing ones are zero (none at all with `IDTokenMetrics Off`).
    package var counters: [UInt64] = []
    package var sites: [SiteState] = []
    /// Unix seconds.
    package var now: Int64 = 0
    /// When the counters started from zero (httpd's start); nil when nothing is counted.
    package var countingSince: Int64?
    /// Process slots of the shared counters that hold any count, and how many there are.
    package var slotsUsed = 0
    package var slots = 0
    package var store = Store()
    /// The library's release and ABI, and the module's (they differ after a graceful restart that
    /// loaded a new module beside the old library, which is never unloaded).
    package var library = ""
    package var libraryABI = 0
    package var module = ""
    package var moduleABI = 0

    package init() {}

    package struct SiteState: Sendable {
        package var name: String
        /// The discovery URL, or the issuer of a provider described without one.
        package var provider: String
        /// By `SiteGauge.rawValue`, Unix seconds; 0 for never.
        package var gauges: [Int64]

        package init(name: String, provider: String, gauges: [Int64]) {
            self.name = name
            self.provider = provider
            self.gauges = gauges
        }

        package func gauge(_ g: SiteGauge) -> Int64 { g.rawValue < gauges.count ? gauges[g.rawValue] : 0 }

        /// Whether the provider answered the last fetch of each of its documents: nil when nothing was
        /// fetched yet since httpd started.
        package var providerReachable: Bool? {
            var seen = false
            for (ok, failed) in [(SiteGauge.discoveryFetched, SiteGauge.discoveryFailed), (.keysFetched, .keysFailed)] {
                let (o, f) = (gauge(ok), gauge(failed))
                if o == 0 && f == 0 { continue }
                seen = true
                if f > o { return false }
            }
            return seen ? true : nil
        }
    }

    /// The shared store (IDTokenCache). The counts are the file store's, kept in its file.
    package struct Store: Sendable {
        /// "file", a socache provider's name, or "none".
        package var kind = "none"
        /// Whether a call to it just now answered; nil without a store.
        package var reachable: Bool?
        package var file: FileCounts?

        package init() {}
    }

    package struct FileCounts: Sendable {
        package var entries: UInt64
        package var bytes: UInt64
        package var freeBytes: UInt64
        /// Sessions that gave way when it was full, and writes refused for lack of room, since the file
        /// was made.
        package var evicted: UInt64
        package var refused: UInt64

        package init(entries: UInt64, bytes: UInt64, freeBytes: UInt64, evicted: UInt64, refused: UInt64) {
            self.entries = entries
            self.bytes = bytes
            self.freeBytes = freeBytes
            self.evicted = evicted
            self.refused = refused
        }
    }

    package subscript(_ counter: Counter) -> UInt64 {
        counter.index < counters.count ? counters[counter.index] : 0
    }
}

/// The two views of the numbers: the Prometheus text exposition format (version 0.0.4) for a scrape,
/// and a JSON status for health checks.
package enum MetricsReport {
    /// The Prometheus text format: every family with HELP and TYPE, every series of a fixed label set
    /// from zero, the histogram's buckets cumulative.
    package static func prometheus(_ s: MetricsSnapshot) -> String {
        var out = Text()
        out.family("idtoken_build_info", "gauge", "The library's and the module's release and ABI version (always 1).")
        out.sample("idtoken_build_info", [("version", s.library), ("abi", String(s.libraryABI)),
                                          ("module_version", s.module), ("module_abi", String(s.moduleABI))], 1)
        if let since = s.countingSince {
            out.family("idtoken_metrics_start_time_seconds", "gauge",
                       "When the counters started from zero (httpd's start; a graceful restart keeps them).")
            out.sample("idtoken_metrics_start_time_seconds", [], since)
        }

        out.family("idtoken_requests_total", "counter",
                   "Requests to protected locations (not the redirect URI) by outcome: passed with a session, passed without one (IDTokenUnauthAction pass), sent to the provider to log in, or refused.")
        for o in Counter.RequestOutcome.allCases { out.sample("idtoken_requests_total", [("outcome", o.label)], s[.request(o)]) }

        out.counter("idtoken_logins_started_total", "Browsers sent to the provider to log in.", s[.loginStarted])
        out.counter("idtoken_logins_completed_total", "Login responses that opened a session.", s[.loginCompleted])
        out.counter("idtoken_logins_resent_total",
                    "Login responses of a login the browser had completed, posted again (the Back button) and sent on to its page.",
                    s[.loginResent])
        out.family("idtoken_logins_refused_total", "counter",
                   "Logins refused, by the error the browser sees (IDTOKEN_ERROR; provider_error for every code a provider returns) and the rule that failed.")
        for r in RefusalReason.allCases {
            out.sample("idtoken_logins_refused_total", [("error", r.error), ("reason", r.label)], s[.loginRefused(r)])
        }

        out.family("idtoken_login_duration_seconds", "histogram",
                   "Seconds from a login's start (the redirect to the provider) to its completion (the callback), in whole seconds.")
        var cumulative: UInt64 = 0
        for (i, bound) in Counter.loginDurationBounds.enumerated() {
            cumulative &+= s[.loginDuration(bucket: i)]
            out.sample("idtoken_login_duration_seconds_bucket", [("le", String(bound))], cumulative)
        }
        cumulative &+= s[.loginDuration(bucket: Counter.loginDurationBounds.count)]
        out.sample("idtoken_login_duration_seconds_bucket", [("le", "+Inf")], cumulative)
        out.sample("idtoken_login_duration_seconds_sum", [], s[.loginDurationSum])
        out.sample("idtoken_login_duration_seconds_count", [], cumulative)

        out.counter("idtoken_sessions_opened_total", "Sessions opened by a completed login.", s[.sessionOpened])
        out.family("idtoken_sessions_ended_total", "counter",
                   "Sessions ended: by logout, by back-channel logout, found over their idle time or lifetime when their browser came back (and logged in again), or evicted from a full file store (counted in the store file, since it was made).")
        for e in Counter.SessionEnd.allCases { out.sample("idtoken_sessions_ended_total", [("reason", e.label)], s[.sessionEnded(e)]) }
        if let file = s.store.file { out.sample("idtoken_sessions_ended_total", [("reason", "evicted")], file.evicted) }

        out.family("idtoken_backchannel_logouts_total", "counter",
                   "Logout tokens posted to the redirect URI (back-channel logout), by answer.")
        for r in Counter.BackchannelResult.allCases {
            out.sample("idtoken_backchannel_logouts_total", [("result", r.label)], s[.backchannelLogout(r)])
        }

        out.family("idtoken_provider_fetches_total", "counter",
                   "Fetches of the providers' discovery documents and key sets (every site together), by result.")
        for d in Counter.ProviderDocument.allCases {
            for r in Counter.FetchResult.allCases {
                out.sample("idtoken_provider_fetches_total", [("document", d.label), ("result", r.label)], s[.providerFetch(d, r)])
            }
        }
        out.family("idtoken_provider_up", "gauge",
                   "1 when the last fetch of each of the site's provider documents succeeded, 0 when one failed; absent before any fetch.")
        for site in s.sites {
            if let up = site.providerReachable { out.sample("idtoken_provider_up", [("site", site.name)], up ? 1 : 0) }
        }
        out.family("idtoken_provider_last_fetch_timestamp_seconds", "gauge",
                   "When a fetch of the site's provider document last succeeded (result ok) or failed (result error), in any process.")
        for site in s.sites {
            for d in Counter.ProviderDocument.allCases {
                for ok in [true, false] {
                    let t = site.gauge(.of(d, ok: ok))
                    if t > 0 {
                        out.sample("idtoken_provider_last_fetch_timestamp_seconds",
                                   [("site", site.name), ("document", d.label), ("result", ok ? "ok" : "error")], t)
                    }
                }
            }
        }
        out.family("idtoken_provider_keys_age_seconds", "gauge",
                   "Seconds since the site's provider key set was last fetched, in any process.")
        for site in s.sites where site.gauge(.keysFetched) > 0 {
            out.sample("idtoken_provider_keys_age_seconds", [("site", site.name)], max(0, s.now - site.gauge(.keysFetched)))
        }

        out.family("idtoken_store_operations_total", "counter",
                   "Calls to the shared store (IDTokenCache) by operation and answer; error: the store failed or was full.")
        for o in Counter.StoreOperation.allCases {
            for r in Counter.StoreResult.allCases {
                out.sample("idtoken_store_operations_total", [("operation", o.label), ("result", r.label)], s[.store(o, r)])
            }
        }
        if let reachable = s.store.reachable {
            out.family("idtoken_store_up", "gauge", "1 when a call to the shared store (IDTokenCache) answered just now.")
            out.sample("idtoken_store_up", [("store", s.store.kind)], reachable ? 1 : 0)
        }
        if let file = s.store.file {
            out.family("idtoken_store_entries", "gauge", "Entries in the file store (expired ones until reclaimed).")
            out.sample("idtoken_store_entries", [], file.entries)
            out.family("idtoken_store_size_bytes", "gauge", "The file store's size.")
            out.sample("idtoken_store_size_bytes", [], file.bytes)
            out.family("idtoken_store_free_bytes", "gauge", "Bytes of the file store no entry uses.")
            out.sample("idtoken_store_free_bytes", [], file.freeBytes)
            out.counter("idtoken_store_refused_total", "Writes the full file store refused (IDTokenCacheFull refuse, or nothing could give way), since the file was made.",
                        file.refused)
        }
        return out.text
    }

    /// The status view (JSON) and its HTTP status: 503 when the store does not answer (this server
    /// cannot keep single-use marks or cache sessions), else 200. A provider that cannot be reached is
    /// reported but changes no status: every server shares it, and taking them all out helps no one.
    package static func status(_ s: MetricsSnapshot) -> (status: Int, body: String) {
        let healthy = s.store.reachable != false
        var store = ["\"kind\":" + JSONValue.quote(s.store.kind), "\"reachable\":" + json(s.store.reachable)]
        if let f = s.store.file {
            store += ["\"entries\":\(f.entries)", "\"bytes\":\(f.bytes)", "\"free_bytes\":\(f.freeBytes)",
                      "\"evicted\":\(f.evicted)", "\"refused\":\(f.refused)"]
        }
        let sites = s.sites.map { site -> String in
            func document(_ ok: SiteGauge, _ failed: SiteGauge) -> String {
                "{\"last_success\":\(time(site.gauge(ok))),\"last_failure\":\(time(site.gauge(failed)))}"
            }
            let fetched = site.gauge(.keysFetched)
            let age = fetched > 0 ? String(max(0, s.now - fetched)) : "null"
            return "{\"name\":\(JSONValue.quote(site.name)),\"provider\":\(JSONValue.quote(site.provider)),"
                + "\"provider_reachable\":\(json(site.providerReachable)),"
                + "\"discovery\":\(document(.discoveryFetched, .discoveryFailed)),"
                + "\"keys\":\(document(.keysFetched, .keysFailed)),\"keys_age_seconds\":\(age)}"
        }
        let body = "{\"healthy\":\(healthy),"
            + "\"version\":\(JSONValue.quote(s.library)),\"abi\":\(s.libraryABI),"
            + "\"module_version\":\(JSONValue.quote(s.module)),\"module_abi\":\(s.moduleABI),"
            + "\"now\":\(s.now),\"metrics\":{\"counting\":\(s.countingSince != nil),\"since\":\(time(s.countingSince ?? 0)),"
            + "\"processes\":\(s.slotsUsed),\"slots\":\(s.slots)},"
            + "\"store\":{\(store.joined(separator: ","))},"
            + "\"sites\":[\(sites.joined(separator: ","))]}\n"
        return (healthy ? 200 : 503, body)
    }

    private static func json(_ b: Bool?) -> String { b.map { $0 ? "true" : "false" } ?? "null" }
    private static func time(_ t: Int64) -> String { t > 0 ? String(t) : "null" }

    /// The exposition text, line by line.
    private struct Text {
        var text = ""

        mutating func family(_ name: String, _ type: String, _ help: String) {
            text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(type)\n"
        }

        mutating func counter(_ name: String, _ help: String, _ value: UInt64) {
            family(name, "counter", help)
            sample(name, [], value)
        }

        mutating func sample<N: BinaryInteger>(_ name: String, _ labels: [(String, String)], _ value: N) {
            text += name
            if !labels.isEmpty {
                text += "{" + labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
            }
            text += " \(value)\n"
        }

        /// Label values escape backslash, double quote and line feed; HELP text backslash and line feed.
        static func escapeLabel(_ s: String) -> String {
            guard s.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return s }
            return s.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
        }

        static func escapeHelp(_ s: String) -> String {
            s.replacing("\\", with: "\\\\").replacing("\n", with: "\\n")
        }
    }
}
