import CShim
import IDTokenCore

/// The store the C module lends for one idt_decide call (and only on its thread). Each call is counted
/// in the metrics of the request it was lent to, with its answer.
struct CStore: SharedStore {
    let store: idt_store
    let meter: WorkMeter

    /// The C side refuses larger values (shmcb would silently drop them): the ABI header's limit.
    static let maximumValue = Int(IDT_STORE_VALUE_MAX)

    init(_ pointer: UnsafePointer<idt_store>, counting meter: WorkMeter) {
        store = pointer.pointee
        self.meter = meter
    }

    func add(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        guard let add = store.add else { return counted(.add, .error) }
        return counted(.add, call(key, value) { add(store.ctx, $0, $1, $2, $3, expiresAt) })
    }

    func put(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        guard let put = store.put else { return counted(.put, .error) }
        return counted(.put, call(key, value) { put(store.ctx, $0, $1, $2, $3, expiresAt, 0) })
    }

    func putEvictable(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64, now: Int64) -> StoreStatus {
        guard let put = store.put else { return counted(.put, .error) }
        return counted(.put, call(key, value) { put(store.ctx, $0, $1, $2, $3, expiresAt, IDT_STORE_MAY_EVICT) })
    }

    func get(_ key: [UInt8], now: Int64) -> Result<[UInt8], StoreFailure> {
        guard let get = store.get else { _ = counted(.get, .error); return .failure(.failed) }
        var found: UnsafePointer<UInt8>?
        var length = 0
        let rc = key.withUnsafeBufferPointer { k in get(store.ctx, k.baseAddress, k.count, &found, &length) }
        switch Self.status(rc) {
        case .ok where length <= Self.maximumValue:
            _ = counted(.get, .ok)
            return .success(length == 0 ? [] : found.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? [])
        case .notFound:
            _ = counted(.get, .notFound)
            return .failure(.notFound)
        default:
            _ = counted(.get, .error)
            return .failure(.failed)
        }
    }

    func remove(_ key: [UInt8]) -> StoreStatus {
        guard let remove = store.remove else { return counted(.remove, .error) }
        return counted(.remove, key.withUnsafeBufferPointer { Self.status(remove(store.ctx, $0.baseAddress, $0.count)) })
    }

    func writes() -> UInt64? {
        store.writes.map { $0(store.ctx) }
    }

    private func counted(_ operation: Counter.StoreOperation, _ status: StoreStatus) -> StoreStatus {
        meter.count(.store(operation, .init(status)))
        return status
    }

    private func call(_ key: [UInt8], _ value: [UInt8],
                      _ body: (UnsafePointer<UInt8>?, Int, UnsafePointer<UInt8>?, Int) -> Int32) -> StoreStatus {
        guard value.count <= Self.maximumValue else { return .error }
        let rc = key.withUnsafeBufferPointer { k in value.withUnsafeBufferPointer { v in body(k.baseAddress, k.count, v.baseAddress, v.count) } }
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
