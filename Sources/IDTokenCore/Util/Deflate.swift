import CZlib

/// Raw deflate with a preset dictionary (zlib). Used for the session's token only: its content comes
/// from the provider and the user it describes, never from a third party who could also watch the
/// cookie's length, so compressing it leaks nothing (unlike a return URL sealed beside a nonce).
enum Deflate {
    static func compress(_ input: [UInt8], dictionary: [UInt8]) -> [UInt8]? {
        // Deflate's worst case is a few bytes per 16 KiB block over the input.
        let capacity = input.count + input.count / 8 + 64
        var out = [UInt8](repeating: 0, count: capacity)
        let n = input.withUnsafeBufferPointer { i in
            dictionary.withUnsafeBufferPointer { d in
                out.withUnsafeMutableBufferPointer { o in
                    czlib_deflate(i.baseAddress, i.count, d.baseAddress, d.count, o.baseAddress, o.count)
                }
            }
        }
        guard n > 0, n <= capacity else { return nil }
        out.removeSubrange(n...)
        return out
    }

    /// Nil unless `input` is one whole stream made with `dictionary` that expands to at most `limit` bytes.
    static func decompress(_ input: ArraySlice<UInt8>, dictionary: [UInt8], limit: Int) -> [UInt8]? {
        guard limit > 0 else { return nil }
        // A first try with room for sixteen times the input (sessions compress about 3:1): a buffer of
        // the whole limit, 192 KiB, was mapped and cleared for every session opened.
        let guess = min(limit, max(16 * 1024, input.count.multipliedReportingOverflow(by: 16).partialValue))
        switch inflate(input, dictionary: dictionary, capacity: guess) {
        case .some(.full) where guess < limit: return inflate(input, dictionary: dictionary, capacity: limit)?.bytes
        case .some(let result): return result.bytes
        case .none: return nil
        }
    }

    private enum Inflated {
        case done([UInt8])
        case full

        var bytes: [UInt8]? {
            if case .done(let b) = self { return b }
            return nil
        }
    }

    private static func inflate(_ input: ArraySlice<UInt8>, dictionary: [UInt8], capacity limit: Int) -> Inflated? {
        var out = [UInt8](repeating: 0, count: limit)
        let n = input.withUnsafeBufferPointer { i in
            dictionary.withUnsafeBufferPointer { d in
                out.withUnsafeMutableBufferPointer { o in
                    czlib_inflate(i.baseAddress, i.count, d.baseAddress, d.count, o.baseAddress, o.count)
                }
            }
        }
        if n == CZLIB_OUTPUT_FULL { return .full }
        guard n >= 0, n <= limit else { return nil }
        out.removeSubrange(Int(n)...)
        return .done(out)
    }
}
