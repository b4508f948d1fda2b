import CShim
import IDTokenCore
#if canImport(Glibc)
import Glibc
#endif

// The metrics' entry points: the shape of the numbers the module keeps, and the rendering of their sums
// (idtoken.h, "Metrics"). Total like the others: no input can make them trap.

@_cdecl("idt_metrics_setup")
public func idt_metrics_setup(_ enabled: Int32, _ shape: UnsafeMutablePointer<idt_metrics_shape>?) {
    Metrics.enabled = enabled != 0
    shape?.pointee = idt_metrics_shape(counters: UInt32(Counter.count), site_gauges: UInt32(SiteGauge.allCases.count))
}

@_cdecl("idt_metrics_render")
public func idt_metrics_render(_ facts: UnsafePointer<idt_metrics_facts>?, _ format: Int32,
                               _ status: UnsafeMutablePointer<Int32>?,
                               _ alloc: (@convention(c) (UnsafeMutableRawPointer?, Int) -> UnsafeMutableRawPointer?)?,
                               _ allocContext: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<CChar>? {
    status?.pointee = 500
    guard let f = facts?.pointee, let alloc else { return nil }
    let snapshot = MetricsFacts.snapshot(f)
    let text: String
    if format == IDT_METRICS_STATUS {
        let (code, body) = MetricsReport.status(snapshot)
        text = body
        status?.pointee = Int32(code)
    } else {
        text = MetricsReport.prometheus(snapshot)
        status?.pointee = 200
    }
    var copy = text
    return copy.withUTF8 { utf8 -> UnsafeMutablePointer<CChar>? in
        guard let p = alloc(allocContext, utf8.count + 1) else { return nil }
        if let from = utf8.baseAddress { p.copyMemory(from: from, byteCount: utf8.count) }
        p.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
        return p.assumingMemoryBound(to: CChar.self)
    }
}

enum MetricsFacts {
    /// The module's facts as the core's snapshot; the sites' names come from the registry, by handle.
    static func snapshot(_ f: idt_metrics_facts) -> MetricsSnapshot {
        var s = MetricsSnapshot()
        if let counters = f.counters, f.counters_count > 0 {
            s.counters = Array(UnsafeBufferPointer(start: counters, count: min(f.counters_count, Counter.count)))
        }
        let perSite = SiteGauge.allCases.count
        for (handle, site) in SiteRegistry.sites.enumerated() {
            var gauges = [Int64](repeating: 0, count: perSite)
            if let all = f.site_gauges, handle < f.sites_count {
                for g in 0..<perSite { gauges[g] = all[handle * perSite + g] }
            }
            let provider = site.provider.source.discoveryURL ?? site.provider.source.issuer ?? ""
            s.sites.append(.init(name: site.config.siteName, provider: provider, gauges: gauges))
        }
        s.now = f.now
        s.countingSince = f.counting_since > 0 ? f.counting_since : nil
        s.slots = Int(f.slots)
        s.slotsUsed = Int(f.slots_used)
        s.store.kind = f.store_kind.map { String(cString: $0) } ?? "none"
        s.store.reachable = f.store_reachable < 0 ? nil : f.store_reachable != 0
        if f.store_has_file_counts != 0 {
            s.store.file = .init(entries: f.store_entries, bytes: f.store_bytes, freeBytes: f.store_free_bytes,
                                 evicted: f.store_evicted, refused: f.store_refused)
        }
        s.library = IDT_VERSION
        s.libraryABI = Int(IDT_ABI_VERSION)
        s.module = f.module_version.map { String(cString: $0) } ?? "?"
        s.moduleABI = Int(f.module_abi)
        return s
    }
}
