#if canImport(Glibc)
import Glibc
#endif

/// Files under Tests/IDTokenCoreTests/Fixtures, read by path (no Foundation bundle needed).
enum Fixture {
    static let folder: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2) // Support/Fixture.swift
        return parts.joined(separator: "/") + "/Fixtures/"
    }()

    static func bytes(_ name: String) -> [UInt8] {
        guard let f = fopen(folder + name, "r") else { return [] }
        defer { fclose(f) }
        var out = [UInt8](), buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            out += buffer.prefix(n)
        }
        return out
    }
}
