/// When one target is probed: on absolute deadlines `epoch + phase + k × interval`, so a slow
/// probe or a late wake-up never shifts the probes after it (no drift), and the phase, fixed
/// per target, spreads many targets over the interval instead of firing them at once.
/// Pure arithmetic on nanoseconds of one monotonic clock: no clock is read here.
public struct ProbeSchedule: Sendable, Equatable {
    /// The origin every target's slots count from (the checker's start).
    public let epochNs: Int64
    /// Time between two probes of the target.
    public let intervalNs: Int64
    /// Offset of the target's slots within the interval, `0 ..< intervalNs`.
    public let phaseNs: Int64

    /// - Parameters:
    ///   - phaseKey: a stable hash of the target (`ProbeTarget.phaseKey`); the phase is this modulo the interval.
    public init(epochNs: Int64, intervalMs: Int, phaseKey: UInt64) {
        self.epochNs = epochNs
        intervalNs = Int64(Swift.max(1, intervalMs)) * 1_000_000
        phaseNs = Int64(phaseKey % UInt64(intervalNs))
    }

    /// The target's first slot at or after `nowNs`.
    public func first(atOrAfter nowNs: Int64) -> Int64 {
        let origin = epochNs + phaseNs
        if nowNs <= origin { return origin }
        let k = (nowNs - origin + intervalNs - 1) / intervalNs
        return origin + k * intervalNs
    }

    /// The slot after the one at `deadline`, handled at `nowNs`: `deadline + interval`, or when
    /// that is not ahead of `nowNs` any more (the probe is an interval late or worse) the first
    /// slot after `nowNs`, with the number of slots passed over.
    public func next(after deadline: Int64, now nowNs: Int64) -> (deadline: Int64, skipped: Int) {
        let n = deadline + intervalNs
        if n > nowNs { return (n, 0) }
        let k = (nowNs - deadline) / intervalNs + 1
        return (deadline + k * intervalNs, Int(k - 1))
    }
}

extension ProbeTarget {
    /// A hash of what identifies the probe (addresses, port, check kind and path), the same in
    /// every process (unlike `hashValue`): the target keeps its phase across restarts and reloads.
    public var phaseKey: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a
        func mix(_ b: UInt8) { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        for b in address.bytes { mix(b) }
        mix(0xff)
        if let via { for b in via.bytes { mix(b) } }
        mix(UInt8(port >> 8))
        mix(UInt8(port & 0xff))
        for b in check.type.rawValue.utf8 { mix(b) }
        for b in check.path.utf8 { mix(b) }
        // splitmix64's finaliser: FNV's low bits alone follow the last bytes too closely.
        h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
        h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
    }
}

/// A binary min-heap of deadlines; equal deadlines come out in insertion order.
struct DeadlineQueue<Element> {
    private struct Item {
        var deadline: Int64
        var seq: UInt64
        var element: Element
    }
    private var items: [Item] = []
    private var seq: UInt64 = 0

    var count: Int { items.count }
    var isEmpty: Bool { items.isEmpty }
    /// The earliest deadline.
    var nextDeadline: Int64? { items.first?.deadline }

    mutating func push(_ deadline: Int64, _ element: Element) {
        seq &+= 1
        items.append(Item(deadline: deadline, seq: seq, element: element))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard less(i, p) else { break }
            items.swapAt(i, p)
            i = p
        }
    }

    /// Removes and returns the earliest item if its deadline is at or before `nowNs`.
    mutating func popDue(_ nowNs: Int64) -> (deadline: Int64, element: Element)? {
        guard let top = items.first, top.deadline <= nowNs else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, less(l, m) { m = l }
                if r < items.count, less(r, m) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return (top.deadline, top.element)
    }

    /// Drops every item `drop` selects (removed targets), keeping the others' order.
    mutating func removeAll(where drop: (Element) -> Bool) {
        let kept = items.filter { !drop($0.element) }
        guard kept.count != items.count else { return }
        items = []
        for it in kept.sorted(by: { ($0.deadline, $0.seq) < ($1.deadline, $1.seq) }) { items.append(it) }   // sorted is a heap
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        items[a].deadline < items[b].deadline || items[a].deadline == items[b].deadline && items[a].seq < items[b].seq
    }
}
