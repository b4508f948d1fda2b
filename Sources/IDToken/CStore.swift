import CShim
import IDTokenCore

/// The socache store the C module lends for one idt_decide call.
struct CStore: SharedStore {
    let store: idt_store

    init(_ pointer: UnsafePointer<idt_store>) { store = pointer.pointee }

    func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        guard let add = store.add else { return .error }
        let rc = key.withUnsafeBufferPointer { k in
            value.withUnsafeBufferPointer { v in
                add(store.ctx, k.baseAddress, k.count, v.baseAddress, v.count, expiresAt)
            }
        }
        return Self.status(rc)
    }

    static func status(_ rc: Int32) -> StoreStatus {
        switch UInt32(bitPattern: rc) {
        case IDT_STORE_OK.rawValue: return .ok
        case IDT_STORE_EXISTS.rawValue: return .exists
        case IDT_STORE_NOT_FOUND.rawValue: return .notFound
        default: return .error
        }
    }
}
