import BPF
import Dispatch
import Foundation

/// One batch update of a ring table (a map of maps), run on its own thread.
/// The kernel stores every pointer of the batch first, then waits for running
/// programs (an RCU grace period, 7-25 ms here) before the syscall returns;
/// so once ``waitStored()`` sees the last ring in, the new rings are what
/// every program from then on reads, and the agent can write the VIP entries
/// pointing at them (and release the build's mappings) while the kernel
/// waits. ``wait()`` then waits for the grace period itself: only after it
/// may a ring swapped out be rewritten or a backend it names be cleared.
final class RingTableBatch: @unchecked Sendable {
    private let table: BPFMap
    private let last: (index: UInt32, id: UInt32)
    /// The last index held that ring already: reading it back proves nothing.
    private let lastAlreadyIn: Bool
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var failure: BPFError?
    private var joined = false

    /// Starts the batch update of `table`: each ring at its index. The rings
    /// stay open (the thread holds them) until the kernel holds them.
    init(_ table: BPFMap, _ rings: [(index: UInt32, ring: BPFMap)]) {
        precondition(!rings.isEmpty, "a batch of no rings")
        self.table = table
        let end = rings[rings.count - 1]
        self.last = (end.index, end.ring.info.id)
        self.lastAlreadyIn = (try? table.lookup(end.index, as: UInt32.self)) == end.ring.info.id
        Thread.detachNewThread { [self] in
            do throws(BPFError) {
                try withExtendedLifetime(rings) { () throws(BPFError) in
                    try table.updateBatch(keys: rings.map(\.index), values: rings.map(\.ring.fd))
                }
            } catch {
                lock.withLock { failure = error }
            }
            done.signal()
        }
    }

    private var error: BPFError? { lock.withLock { failure } }

    /// Returns once the last ring of the batch reads back from the table
    /// (the kernel stores in order, so every ring is in, and nothing is left
    /// that can fail). Bounded: when that isn't seen within a second, or the
    /// last index held that ring before the batch, it waits for the whole
    /// batch. Throws the batch's error.
    func waitStored() throws(BPFError) {
        let deadline = DispatchTime.now().uptimeNanoseconds + 1_000_000_000
        while !lastAlreadyIn && error == nil && DispatchTime.now().uptimeNanoseconds < deadline {
            if (try? table.lookup(last.index, as: UInt32.self)) == last.id { return }
            usleep(50)
        }
        try wait()
    }

    /// Waits for the whole batch (the grace period too). Throws its error.
    func wait() throws(BPFError) {
        join()
        if let e = error { throw e }
    }

    /// Waits for the batch's thread, whatever its outcome (once).
    func join() {
        let wasJoined = lock.withLock { () -> Bool in defer { joined = true }; return joined }
        if !wasJoined { done.wait() }
    }
}
