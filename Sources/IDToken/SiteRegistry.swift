import IDTokenCore

/// The sites registered at configuration time.
///
/// Written only while httpd reads its configuration, in the parent process before any child exists
/// and before any thread starts; children inherit it through fork and only read it. That discipline,
/// not a lock, is what makes the unsynchronised global safe — and it keeps a lock off every request.
enum SiteRegistry {
    nonisolated(unsafe) static var sites: [Site] = []

    static func site(_ handle: Int32) -> Site? {
        let i = Int(handle)
        return i >= 0 && i < sites.count ? sites[i] : nil
    }
}
