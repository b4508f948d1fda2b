import CShim
import IDTokenCore
#if canImport(Glibc)
import Glibc
#endif

// The C entry points. Each one is total: any failure becomes a return value, never a trap, because a
// trap here kills the Apache child and every request it is serving.

@_cdecl("idt_abi_version")
public func idt_abi_version() -> Int32 { Int32(IDT_ABI_VERSION) }

/// Made once, never freed or written: the C side keeps the pointer.
nonisolated(unsafe) private let versionCString: UnsafeMutablePointer<CChar>? = strdup(IDT_VERSION)

@_cdecl("idt_version")
public func idt_version() -> UnsafePointer<CChar>? { UnsafePointer(versionCString) }

@_cdecl("idt_free")
public func idt_free(_ p: UnsafeMutablePointer<CChar>?) { free(p) }

@_cdecl("idt_setting_check")
public func idt_setting_check(_ name: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?) -> UnsafeMutablePointer<CChar>? {
    guard let name, let directive = Directive(rawValue: String(cString: name)) else {
        return CExport.string("this library does not know the directive: install the module and the library from the same build")
    }
    guard let value else { return CExport.string("a value is required") }
    return directive.check(String(cString: value)).flatMap(CExport.string)
}

@_cdecl("idt_sites_reset")
public func idt_sites_reset() {
    SiteRegistry.sites = []
    SiteRegistry.dirs = []
    SiteRegistry.requirements = []
}

@_cdecl("idt_dir_register")
public func idt_dir_register(_ list: UnsafePointer<idt_setting>?, _ count: Int,
                             _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    error?.pointee = nil
    do {
        let dir = try DirConfig(settings: CExport.settings(list, count))
        SiteRegistry.dirs.append(dir)
        return Int32(SiteRegistry.dirs.count - 1)
    } catch let problem {
        error?.pointee = CExport.string(problem.message)
        return -1
    }
}

@_cdecl("idt_require_register")
public func idt_require_register(_ line: UnsafePointer<CChar>?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    error?.pointee = nil
    guard let line else {
        error?.pointee = CExport.string("needs at least one claim:value or claim~regex")
        return -1
    }
    switch ClaimRequirement.parse(String(cString: line)) {
    case .failure(let problem):
        error?.pointee = CExport.string(problem.message)
        return -1
    case .success(let requirements):
        SiteRegistry.requirements.append(requirements)
        return Int32(SiteRegistry.requirements.count - 1)
    }
}

@_cdecl("idt_require_eval")
public func idt_require_eval(_ handle: Int32, _ claims: UnsafePointer<idt_pair>?, _ count: Int) -> Int32 {
    guard let requirements = SiteRegistry.requirement(handle) else { return -1 }
    var map = [String: String]()
    if let claims {
        // By length: a name is never cut short at a NUL inside it.
        for i in 0..<count {
            let c = claims[i]
            guard let n = c.name, let v = c.value else { continue }
            map[CExport.string(n, length: c.name_len)] = CExport.string(v, length: c.value_len)
        }
    }
    return requirements.contains { $0.isSatisfied(by: map) } ? 1 : 0
}

@_cdecl("idt_site_register")
public func idt_site_register(_ config: UnsafePointer<idt_site_config>?,
                              _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                              _ warning: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    error?.pointee = nil
    warning?.pointee = nil
    guard let c = config?.pointee else {
        error?.pointee = CExport.string("no configuration given")
        return -1
    }
    var protectedPaths = [String]()
    if let paths = c.protected_paths {
        for i in 0..<c.protected_paths_count { if let p = paths[i] { protectedPaths.append(String(cString: p)) } }
    }
    let input = SiteConfig.Input(
        siteName: CExport.optionalString(c.site_name) ?? "?",
        defaultScheme: CExport.optionalString(c.default_scheme) ?? "http",
        defaultHost: CExport.optionalString(c.default_host) ?? "localhost",
        settings: CExport.settings(c.settings, c.settings_count),
        protectedPaths: protectedPaths,
        limitRequestFieldSize: c.limit_request_field_size > 0 ? Int(c.limit_request_field_size) : 8190)
    do {
        let (site, warnings) = try SiteConfig.make(input)
        if !warnings.isEmpty { warning?.pointee = CExport.string(warnings.joined(separator: "; ")) }
        let fetcher = CurlFetcher(connectTimeoutMs: site.httpConnectTimeoutMs, totalTimeoutMs: site.httpTotalTimeoutMs)
        let provider = ProviderCache(source: site.provider, fetcher: fetcher, policy: site.cachePolicy)
        SiteRegistry.sites.append(Site(config: site, provider: provider))
        return Int32(SiteRegistry.sites.count - 1)
    } catch let problem {
        error?.pointee = CExport.string(problem.message)
        return -1
    }
}

@_cdecl("idt_site_notice")
public func idt_site_notice(_ handle: Int32) -> UnsafeMutablePointer<CChar>? {
    guard let site = SiteRegistry.site(handle) else { return nil }
    let lines = site.config.notices
    return lines.isEmpty ? nil : CExport.string(lines.joined(separator: "\n"))
}

@_cdecl("idt_child_init")
public func idt_child_init() {
    CurlFetcher.globalInit()
}

@_cdecl("idt_decide")
public func idt_decide(_ request: UnsafePointer<idt_request>?, _ out: UnsafeMutablePointer<idt_decision>?) {
    guard let out else { return }
    out.pointee = idt_decision()
    out.pointee.log_level = IDT_LOG_NONE
    guard let r = request?.pointee, let site = SiteRegistry.site(r.site) else {
        out.pointee.action = Int32(IDT_RESPOND.rawValue)
        out.pointee.status = 500
        out.pointee.log_level = IDT_LOG_ERR
        out.pointee.log_message = CExport.literal("request for an unregistered site")
        return
    }
    let now = Int64(time(nil))
    if r.internal == 0, r.body_read == 0, fastPass(r, site: site, now: now, into: out) { return }
    var body: [UInt8]?
    if r.body_read != 0 {
        body = r.body.map { Array(UnsafeRawBufferPointer(start: $0, count: r.body_len)) } ?? []
    }
    let work = WorkMeter()
    var req = AuthRequest(
        method: CExport.optionalString(r.method) ?? "GET",
        scheme: CExport.optionalString(r.scheme) ?? "http",
        host: CExport.optionalString(r.host) ?? "",
        target: CExport.optionalString(r.uri) ?? "/",
        cookie: CExport.optionalString(r.cookie),
        contentType: CExport.optionalString(r.content_type),
        accept: CExport.optionalString(r.accept),
        secFetchMode: CExport.optionalString(r.sec_fetch_mode),
        secFetchDest: CExport.optionalString(r.sec_fetch_dest),
        xRequestedWith: CExport.optionalString(r.x_requested_with),
        secFetchSite: CExport.optionalString(r.sec_fetch_site),
        origin: CExport.optionalString(r.origin),
        referer: CExport.optionalString(r.referer),
        isInternal: r.internal != 0,
        cannotRedirect: r.cannot_redirect != 0,
        body: body,
        bodyTooLarge: r.body_too_large != 0,
        store: r.store.map { CStore($0, counting: work) },
        dir: SiteRegistry.dir(r.dir_configs, count: r.dir_configs_count),
        work: work)
    if let handles = r.dir_configs, r.dir_configs_count > 0 {
        req.dirHandles = Array(UnsafeBufferPointer(start: handles, count: r.dir_configs_count))
    }
    setPeer(of: r, on: &req)
    // One getrandom for a login's state and nonce instead of eight; nothing fetched unless used.
    var rng = BufferedSystemRandom()
    let decision = RequestDecider.decide(req, site: site, now: now, rng: &rng)
    export(decision, events: work.metricEvents(fetchedBy: site.provider), into: out, request: r)
    out.pointee.work_cookie_lookups = UInt32(clamping: work.cookieLookups)
    out.pointee.work_sealed_opens = UInt32(clamping: work.sealedOpens)
}

/// The connection's peer and the headers a proxy describes the browser's request with (TrustedProxies).
func setPeer(of r: idt_request, on req: inout AuthRequest) {
    req.peerAddress = CExport.optionalString(r.peer_ip)
    req.forwarded = CExport.optionalString(r.forwarded)
    req.xForwardedProto = CExport.optionalString(r.x_forwarded_proto)
    req.xForwardedHost = CExport.optionalString(r.x_forwarded_host)
    req.xForwardedPort = CExport.optionalString(r.x_forwarded_port)
}

func export(_ decision: Decision, events: MetricEvents?, into out: UnsafeMutablePointer<idt_decision>,
                    request: idt_request) {
    var counting = Arena.counting()
    var scratch = idt_decision()
    fill(decision, into: &scratch, arena: &counting)
    setMetrics(events, into: &scratch, arena: &counting)
    guard var arena = Arena.block(counting.used, from: request) else {
        out.pointee = idt_decision()
        out.pointee.action = Int32(IDT_RESPOND.rawValue)
        out.pointee.status = 500
        out.pointee.log_level = IDT_LOG_ERR
        out.pointee.log_message = CExport.literal("the module gave the IDToken library no memory for its decision")
        return
    }
    fill(decision, into: out, arena: &arena)
    setMetrics(events, into: out, arena: &arena)
}

/// On every request (one event, usually): plain loops, no closure.
private func setMetrics(_ events: MetricEvents?, into out: UnsafeMutablePointer<idt_decision>, arena: inout Arena) {
    guard let events, let first = events.first else { return }
    let count = 1 + events.rest.count
    guard let list = arena.array(of: idt_metric.self, count: count) else { return }
    func metric(_ e: MetricEvent) -> idt_metric {
        let kind: UInt32
        switch e.kind {
        case .add: kind = IDT_METRIC_ADD
        case .latest: kind = IDT_METRIC_LATEST
        }
        return idt_metric(kind: kind, index: UInt32(clamping: e.index), value: max(0, e.value))
    }
    list[0] = metric(first)
    for (i, e) in events.rest.enumerated() { list[1 + i] = metric(e) }
    out.pointee.metrics = list
    out.pointee.metrics_count = count
}

/// Writes the decision's fields; every string and list comes from the arena.
private func fill(_ decision: Decision, into out: UnsafeMutablePointer<idt_decision>, arena: inout Arena) {
    func setLog(_ log: Decision.LogLine?) {
        guard let log else { return }
        out.pointee.log_level = log.level.rawValue
        out.pointee.log_message = arena.string(log.message)
    }
    func setCookies(_ list: [String]) {
        let array = arena.array(of: UnsafeMutablePointer<CChar>?.self, count: list.count)
        for (i, cookie) in list.enumerated() {
            let s = arena.string(cookie)
            array?[i] = s
        }
        out.pointee.set_cookies = array
        out.pointee.set_cookies_count = array == nil ? 0 : list.count
    }
    func setPairs(_ list: [(String, String)]) -> (UnsafeMutablePointer<idt_pair>?, Int) {
        let array = arena.array(of: idt_pair.self, count: list.count)
        for (i, (name, value)) in list.enumerated() {
            let n = arena.string(name), v = arena.string(value)
            array?[i] = idt_pair(name: n, value: v, name_len: name.utf8.count, value_len: value.utf8.count)
        }
        return (array, array == nil ? 0 : list.count)
    }
    switch decision {
    case .decline:
        out.pointee.action = Int32(IDT_DECLINE.rawValue)
    case .readBody(let limit):
        out.pointee.action = Int32(IDT_READ_BODY.rawValue)
        out.pointee.body_limit = limit
    case .pass(let p):
        out.pointee.action = Int32(IDT_PASS.rawValue)
        setRendered(p.rendered, into: out, arena: &arena)
        setCookies(p.setCookies)
    case .redirect(let r):
        out.pointee.action = Int32(IDT_REDIRECT.rawValue)
        out.pointee.status = Int32(r.status)
        out.pointee.location = arena.string(r.location)
        setCookies(r.setCookies)
        setLog(r.log)
    case .respond(let r):
        out.pointee.action = Int32(IDT_RESPOND.rawValue)
        out.pointee.status = Int32(r.status)
        out.pointee.page = arena.string(r.page)
        out.pointee.content_type = r.contentType.flatMap { arena.string($0) }
        (out.pointee.env, out.pointee.env_count) = setPairs(r.env)
        (out.pointee.response_headers, out.pointee.response_headers_count) = setPairs(r.headers)
        setCookies(r.setCookies)
        setLog(r.log)
    }
}

/// A rendered pass is already the strings Apache receives: its bytes are copied once and the lists
/// point into the copy.
private func setRendered(_ r: RenderedClaims, into out: UnsafeMutablePointer<idt_decision>, arena: inout Arena) {
    // The counting arena places nothing (text nil) but must see every block asked for.
    let text = arena.bytes(r.bytes)
    var next = r.hasRemoteUser ? 1 : 0
    if r.hasRemoteUser, let text { out.pointee.remote_user = text + r.offsets[0] }
    r.offsets.withUnsafeBufferPointer { offsets in
        r.lengths.withUnsafeBufferPointer { lengths in
            // The lists follow one another in `bytes`: each takes the next 2 × count strings.
            func pairs(_ count: Int) -> (UnsafeMutablePointer<idt_pair>?, Int) {
                defer { next += 2 * count }
                guard next + 2 * count <= offsets.count, let list = arena.array(of: idt_pair.self, count: count),
                      let text else { return (nil, 0) }
                for i in 0..<count {
                    let n = next + 2 * i
                    list[i] = idt_pair(name: text + offsets[n], value: text + offsets[n + 1],
                                       name_len: lengths[n], value_len: lengths[n + 1])
                }
                return (list, count)
            }
            (out.pointee.headers, out.pointee.headers_count) = pairs(r.headerCount)
            (out.pointee.env, out.pointee.env_count) = pairs(r.envCount)
            (out.pointee.claims, out.pointee.claims_count) = pairs(r.claimCount)
        }
    }
}
