import CShim
#if canImport(Glibc)
import Glibc
#endif

/// Copies Swift values into malloc'd C memory the module releases with idt_decision_free / idt_free.
enum CExport {
    static func string(_ s: String) -> UnsafeMutablePointer<CChar>? {
        strdup(s)
    }

    static func pairs(_ list: [(String, String)]) -> (UnsafeMutablePointer<idt_pair>?, Int) {
        guard !list.isEmpty, let p = calloc(list.count, MemoryLayout<idt_pair>.stride)?.assumingMemoryBound(to: idt_pair.self) else {
            return (nil, 0)
        }
        for (i, (name, value)) in list.enumerated() {
            p[i] = idt_pair(name: strdup(name), value: strdup(value))
        }
        return (p, list.count)
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
