/// How late probes started over the last window: how much later than its scheduled
/// deadline each probe actually began (waiting for the event loop, or for a free slot
/// under the in-flight limit).
public struct ProbeLatenessSnapshot: Sendable, Equatable {
    /// The window the quantiles cover, in seconds.
    public var windowSeconds: Double
    /// Probes started within the window.
    public var probes: Int
    /// Median lateness in seconds (an upper bound within 1/16 of the value, never above `max`).
    public var p50: Double
    /// 99th percentile lateness in seconds (same precision).
    public var p99: Double
    /// Largest lateness in the window, in seconds (exact to the microsecond).
    public var max: Double
    /// Probes started since the checker started.
    public var started: Int
    /// Scheduled probes not run since the checker started: the target's previous probe was
    /// still running or waiting, or the probe was more than one interval late.
    public var skipped: Int

    public init(windowSeconds: Double, probes: Int, p50: Double, p99: Double, max: Double, started: Int, skipped: Int) {
        self.windowSeconds = windowSeconds
        self.probes = probes
        self.p50 = p50
        self.p99 = p99
        self.max = max
        self.started = started
        self.skipped = skipped
    }
}

/// Lateness samples of the last `slots` seconds in fixed log-linear buckets of microseconds:
/// values below 16 µs exactly, above that 16 buckets per power of two (at most 1/16 wide),
/// up to about 2^40 µs. Recording is O(1) with no allocation; one slot (one second) is
/// cleared when a new second begins. A snapshot merges the slots still inside the window.
public struct LatenessWindow: Sendable {
    /// Buckets per slot.
    static let bucketCount = 16 + 37 * 16
    public let slots: Int
    public let slotNs: Int64
    private var counts: [UInt32]
    /// The absolute slot number each ring position holds (-1: empty).
    private var slotIDs: [Int64]
    private var maxMicros: [Int64]
    private var slotTotals: [Int]

    /// - Parameters:
    ///   - slots: seconds (slots) kept.
    ///   - slotNs: the length of one slot.
    public init(slots: Int = 10, slotNs: Int64 = 1_000_000_000) {
        precondition(slots >= 1 && slotNs > 0)
        self.slots = slots
        self.slotNs = slotNs
        counts = [UInt32](repeating: 0, count: slots * Self.bucketCount)
        slotIDs = [Int64](repeating: -1, count: slots)
        maxMicros = [Int64](repeating: 0, count: slots)
        slotTotals = [Int](repeating: 0, count: slots)
    }

    /// The bucket of a value in microseconds.
    static func bucket(ofMicros v: Int64) -> Int {
        if v < 16 { return Int(Swift.max(0, v)) }
        let e = Swift.min(63 - v.leadingZeroBitCount, 40)   // v >= 2^e
        if e == 40, v >= Int64(1) << 41 { return bucketCount - 1 }
        let sub = Int((v >> (e - 4)) & 15)
        return 16 + (e - 4) * 16 + sub
    }

    /// The largest value (microseconds) a bucket holds.
    static func upperMicros(ofBucket b: Int) -> Int64 {
        if b < 16 { return Int64(b) }
        let e = (b - 16) / 16 + 4, sub = Int64((b - 16) % 16)
        let width = Int64(1) << (e - 4)
        return (16 + sub) * width + width - 1
    }

    /// Records one probe that started `latenessNs` after its deadline, at `nowNs`.
    public mutating func record(latenessNs: Int64, nowNs: Int64) {
        let slot = nowNs / slotNs
        let i = Int(slot % Int64(slots))
        if slotIDs[i] != slot {
            let base = i * Self.bucketCount
            for k in base..<(base + Self.bucketCount) { counts[k] = 0 }
            slotIDs[i] = slot
            maxMicros[i] = 0
            slotTotals[i] = 0
        }
        let us = Swift.max(0, latenessNs) / 1000
        counts[i * Self.bucketCount + Self.bucket(ofMicros: us)] &+= 1
        slotTotals[i] += 1
        if us > maxMicros[i] { maxMicros[i] = us }
    }

    /// p50/p99/max over the slots within the window ending at `nowNs`, merged with other
    /// windows of the same shape (one per event loop).
    public static func snapshot(_ windows: [LatenessWindow], nowNs: Int64, started: Int, skipped: Int) -> ProbeLatenessSnapshot {
        var merged = [Int](repeating: 0, count: bucketCount)
        var total = 0
        var maxUs: Int64 = 0
        var seconds = 0.0
        for w in windows {
            let current = nowNs / w.slotNs
            seconds = Double(w.slots) * Double(w.slotNs) / 1e9
            for i in 0..<w.slots where w.slotIDs[i] >= 0 && w.slotIDs[i] > current - Int64(w.slots) && w.slotIDs[i] <= current {
                let base = i * bucketCount
                for b in 0..<bucketCount { merged[b] += Int(w.counts[base + b]) }
                total += w.slotTotals[i]
                maxUs = Swift.max(maxUs, w.maxMicros[i])
            }
        }
        func quantile(_ q: Double) -> Double {
            guard total > 0 else { return 0 }
            let rank = Swift.max(1, Int((q * Double(total)).rounded(.up)))
            var seen = 0
            for b in 0..<bucketCount {
                seen += merged[b]
                if seen >= rank { return Double(Swift.min(upperMicros(ofBucket: b), maxUs)) / 1e6 }
            }
            return Double(maxUs) / 1e6
        }
        return ProbeLatenessSnapshot(windowSeconds: seconds, probes: total, p50: quantile(0.5), p99: quantile(0.99),
                                     max: Double(maxUs) / 1e6, started: started, skipped: skipped)
    }
}
