import CShim
#if canImport(Glibc)
import Glibc
#endif

/// Copies Swift values into malloc'd C memory the module releases with idt_decision_free / idt_free.
enum CExport {
    static func string(_ s: String) -> UnsafeMutablePointer<CChar>? {
        strdup(s)
    }

    static func pairs(_ list: [(String, String)], latin1: Bool = false) -> (UnsafeMutablePointer<idt_pair>?, Int) {
        guard !list.isEmpty, let p = calloc(list.count, MemoryLayout<idt_pair>.stride)?.assumingMemoryBound(to: idt_pair.self) else {
            return (nil, 0)
        }
        for (i, (name, value)) in list.enumerated() {
            p[i] = idt_pair(name: strdup(name), value: latin1 ? latin1String(value) : strdup(value))
        }
        return (p, list.count)
    }

    /// ISO-8859-1 bytes: each character up to U+00FF as one byte, anything beyond as '?'.
    static func latin1String(_ s: String) -> UnsafeMutablePointer<CChar>? {
        let bytes = s.unicodeScalars.map { $0.value <= 0xFF && $0.value != 0 ? UInt8($0.value) : UInt8(ascii: "?") }
        guard let p = malloc(bytes.count + 1)?.assumingMemoryBound(to: UInt8.self) else { return nil }
        for (i, b) in bytes.enumerated() { p[i] = b }
        p[bytes.count] = 0
        return UnsafeMutableRawPointer(p).assumingMemoryBound(to: CChar.self)
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

    static func strings(_ list: [String]) -> (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, Int) {
        guard !list.isEmpty,
              let p = calloc(list.count, MemoryLayout<UnsafeMutablePointer<CChar>?>.stride)?
                .assumingMemoryBound(to: UnsafeMutablePointer<CChar>?.self) else { return (nil, 0) }
        for (i, s) in list.enumerated() { p[i] = strdup(s) }
        return (p, list.count)
    }

    static func optionalString(_ p: UnsafePointer<CChar>?) -> String? {
        p.map { String(cString: $0) }
    }
}
