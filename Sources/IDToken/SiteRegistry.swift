import IDTokenCore

/// The sites registered at configuration time.
///
/// Written only while httpd reads its configuration, in the parent process before any child exists
/// and before any thread starts; children inherit it through fork and only read it. That discipline,
/// not a lock, is what makes the unsynchronised global safe — and it keeps a lock off every request.
enum SiteRegistry {
    nonisolated(unsafe) static var sites: [Site] = []
    /// Per-directory blocks, registered while Apache reads the configuration (same discipline).
    nonisolated(unsafe) static var dirs: [DirConfig] = []
    /// `Require idtoken-claim` lines, parsed (same discipline).
    nonisolated(unsafe) static var requirements: [[ClaimRequirement]] = []

    static func requirement(_ handle: Int32) -> [ClaimRequirement]? {
        let i = Int(handle)
        return i >= 0 && i < requirements.count ? requirements[i] : nil
    }

    static func dir(_ handles: UnsafePointer<Int32>?, count: Int) -> DirConfig {
        guard let handles, count > 0 else { return DirConfig() }
        var blocks = [DirConfig]()
        blocks.reserveCapacity(count)
        for i in 0..<count {
            let h = Int(handles[i])
            if h >= 0 && h < dirs.count { blocks.append(dirs[h]) }
        }
        return blocks.count == 1 ? blocks[0] : DirConfig.overlaid(blocks)
    }

    static func site(_ handle: Int32) -> Site? {
        let i = Int(handle)
        return i >= 0 && i < sites.count ? sites[i] : nil
    }
}
