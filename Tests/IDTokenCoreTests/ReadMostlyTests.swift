import Testing
@testable import IDTokenCore

/// The lock behind the per-child caches (PassMemo, OpenedSessions): readers see whole writes only, a
/// write made while the lock is free always happens, and one that finds it held gives up at once.
@Suite struct ReadMostlyTests {
    @Test func readersSeeOnlyWholeWritesWhileOthersWrite() async {
        // Two fields a write always changes together: a reader seeing them apart saw half a write.
        let cell = ReadMostly<(a: Int, b: Int)>((0, 0))
        let torn = await withTaskGroup(of: Int.self) { group in
            for t in 0..<8 {
                group.addTask {
                    var seenApart = 0
                    for i in 0..<20_000 {
                        if t % 2 == 0 {
                            cell.tryWrite { $0 = (i, -i) }
                        } else if let pair = cell.read({ $0.pointee }), pair.a != -pair.b {
                            seenApart += 1
                        }
                    }
                    return seenApart
                }
            }
            return await group.reduce(0, +)
        }
        #expect(torn == 0)
    }

    @Test func aWriteHappensWhenTheLockIsFreeAndGivesUpWhenItIsHeld() {
        let cell = ReadMostly<[Int: String]>([:])
        #expect(cell.tryWrite { $0[1] = "one" })
        #expect(cell.read { $0.pointee[1] } == "one")
        // Held by a reader (this thread, inside read): the write does not wait, and does not happen.
        let wrote = cell.read { _ in cell.tryWrite { $0[2] = "two" } }
        #expect(wrote == false)
        #expect(cell.read { $0.pointee[2] } == nil)
    }
}
