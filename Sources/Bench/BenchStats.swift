/// Per-packet times of one block (or of every block of a case): a histogram
/// with 1 ns buckets, so percentiles need no stored samples.
struct NanosecondHistogram {
    /// Times at or above this land in the last bucket (they're outliers: interrupts, VM exits).
    static let limit = 1 << 16

    /// Count of samples per ns (the last bucket: that many ns or more). Fill it
    /// directly in hot loops, then call `added(count:sum:)`.
    var buckets = [UInt32](repeating: 0, count: NanosecondHistogram.limit)
    private(set) var count = 0
    private(set) var sum: UInt64 = 0

    /// Records that `count` samples totalling `sum` ns were put into `buckets`.
    mutating func added(count n: Int, sum s: UInt64) {
        count += n
        sum &+= s
    }

    /// Adds `other` (same bucket layout).
    mutating func merge(_ other: NanosecondHistogram) {
        buckets.withUnsafeMutableBufferPointer { b in
            other.buckets.withUnsafeBufferPointer { o in
                for i in 0..<b.count { b[i] &+= o[i] }
            }
        }
        count += other.count
        sum &+= other.sum
    }

    var mean: Double { count == 0 ? 0 : Double(sum) / Double(count) }

    /// Mean of the samples between the `trim` and 1 − `trim` quantiles
    /// (fractional buckets at the edges): robust to interrupts and VM exits
    /// like a median, but not limited to the clock's step like one.
    func trimmedMean(_ trim: Double) -> Double {
        guard count > 0 else { return 0 }
        let lo = Double(count) * trim, hi = Double(count) * (1 - trim)
        guard hi > lo else { return percentile(0.5) }
        var seen = 0.0, total = 0.0
        for (t, n) in buckets.enumerated() where n > 0 {
            let a = seen, b = seen + Double(n)
            seen = b
            let overlap = min(b, hi) - max(a, lo)
            if overlap > 0 { total += overlap * Double(t) }
            if b >= hi { break }
        }
        return total / (hi - lo)
    }

    /// The smallest time t with at least fraction `q` of the samples ≤ t.
    func percentile(_ q: Double) -> Double {
        guard count > 0 else { return 0 }
        let rank = max(1, Int((q * Double(count)).rounded(.up)))
        var seen = 0
        for (t, n) in buckets.enumerated() {
            seen += Int(n)
            if seen >= rank { return Double(t) }
        }
        return Double(buckets.count - 1)
    }
}

/// Median of a non-empty list (mean of the middle two for an even count).
func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    let m = s.count / 2
    return s.count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2
}
