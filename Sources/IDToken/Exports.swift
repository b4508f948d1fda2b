import CShim
#if canImport(Glibc)
import Glibc
#endif

/// Copies Swift values into malloc'd C memory the module releases with idt_free (configuration time).
enum CExport {
    static func string(_ s: String) -> UnsafeMutablePointer<CChar>? {
        strdup(s)
    }

    static func settings(_ list: UnsafePointer<idt_setting>?, _ count: Int) -> [(String, String)] {
        var settings = [(String, String)]()
        guard let list else { return settings }
        for i in 0..<count {
            guard let name = list[i].name, let value = list[i].value else { continue }
            settings.append((String(cString: name), String(cString: value)))
        }
        return settings
    }

    /// A message that is a literal: static memory, valid for ever, which a decision may point to
    /// without the allocator (the module never frees a decision's strings).
    static func literal(_ s: StaticString) -> UnsafeMutablePointer<CChar>? {
        UnsafeMutableRawPointer(mutating: s.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    /// `length` bytes as UTF-8 (invalid sequences repaired), NULs included.
    static func string(_ p: UnsafePointer<CChar>, length: Int) -> String {
        p.withMemoryRebound(to: UInt8.self, capacity: length) { String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self) }
    }

    static func optionalString(_ p: UnsafePointer<CChar>?) -> String? {
        p.map { String(cString: $0) }
    }
}
