#if canImport(Glibc)
import Glibc
#endif

/// Files read by path, relative to this file (no Foundation bundle needed): the fixtures under
/// Tests/IDTokenCoreTests/Fixtures, and any file of the repository.
enum Fixture {
    /// The repository's root, three folders above this file, with a trailing slash.
    static let repositoryRoot: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(4) // Tests/IDTokenCoreTests/Support/Fixture.swift
        return parts.joined(separator: "/") + "/"
    }()

    static let folder = repositoryRoot + "Tests/IDTokenCoreTests/Fixtures/"

    static func bytes(_ name: String) -> [UInt8] { read(folder + name) ?? [] }

    static func repositoryText(_ path: String) -> String? {
        read(repositoryRoot + path).map { String(decoding: $0, as: UTF8.self) }
    }

    private static func read(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "r") else { return nil }
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
