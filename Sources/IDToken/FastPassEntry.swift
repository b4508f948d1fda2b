import CShim
import IDTokenCore
#if canImport(Glibc)
import Glibc
#endif

/// idt_decide's shortcut (FastPass): the request's C strings read as bytes where they are, a pass
/// remembered for its session cookie exported as it is. False: decide the request in full.
func fastPass(_ r: idt_request, site: Site, now: Int64, into out: UnsafeMutablePointer<idt_decision>) -> Bool {
    guard let cookie = r.cookie, let uri = r.uri, let scheme = r.scheme else { return false }
    let config = site.config
    let secure: Bool
    if !config.trustedProxies.isEmpty,
       r.forwarded != nil || r.x_forwarded_proto != nil || r.x_forwarded_host != nil || r.x_forwarded_port != nil {
        // The scheme the browser used, as RequestDecider sees it behind a trusted proxy: the scheme
        // alone when it can be had without the host (20,000 instructions a request through `apply`).
        let given = String(cString: scheme)
        if let seen = config.trustedProxies.scheme(peer: CExport.optionalString(r.peer_ip),
                                                   xForwardedProto: CExport.optionalString(r.x_forwarded_proto),
                                                   forwarded: CExport.optionalString(r.forwarded), scheme: given) {
            secure = seen == "https"
        } else {
            var seen = AuthRequest(method: "GET", scheme: given, host: CExport.optionalString(r.host) ?? "", target: "/")
            setPeer(of: r, on: &seen)
            config.trustedProxies.apply(to: &seen)
            secure = seen.scheme == "https"
        }
    } else {
        secure = strcmp(scheme, "https") == 0
    }
    let dir = r.dir_configs.map { UnsafeBufferPointer(start: $0, count: r.dir_configs_count) } ?? UnsafeBufferPointer(start: nil, count: 0)
    let request = FastPass.Request(cookie: UnsafeRawBufferPointer(start: cookie, count: strlen(cookie)),
                                   target: UnsafeRawBufferPointer(start: uri, count: strlen(uri)), secure: secure, dir: dir)
    // A meter only when the store is read (a session kept there), for the store calls' metrics.
    var meter: WorkMeter?
    let found = FastPass.pass(request, site: site, now: now) {
        guard let store = r.store else { return nil }
        let m = WorkMeter()
        meter = m
        return CStore(store, counting: m)
    }
    guard let rendered = found else { return false }
    var events: MetricEvents?
    if Metrics.enabled {
        var e = meter?.events ?? MetricEvents()
        e.append(.add(.request(.passed)))
        site.provider.drainFetches(into: &e)
        events = e
    }
    export(.pass(Decision.Pass(rendered: rendered, setCookies: [])), events: events, into: out, request: r)
    return true
}
