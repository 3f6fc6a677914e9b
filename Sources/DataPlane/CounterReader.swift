import BPF
import CXdplb

/// Packets and bytes, summed over CPUs.
public struct CounterValue: Sendable, Equatable {
    /// Packets.
    public var packets: UInt64 = 0
    /// Bytes.
    public var bytes: UInt64 = 0

    /// A value.
    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }
}

/// Reads the balancer's per-CPU counters.
public enum CounterReader {
    /// Sum over CPUs of one entry of a per-CPU counter map.
    public static func sum(_ map: BPFMap, index: UInt32) throws(BPFError) -> CounterValue {
        let perCPU = try map.lookupPerCPU(index, as: xdplb_counter.self)
        return perCPU.reduce(into: CounterValue()) { acc, c in
            acc.packets &+= c.packets
            acc.bytes &+= c.bytes
        }
    }

    /// Per-CPU values of one entry, in CPU order.
    public static func perCPU(_ map: BPFMap, index: UInt32) throws(BPFError) -> [CounterValue] {
        try map.lookupPerCPU(index, as: xdplb_counter.self).map { CounterValue(packets: $0.packets, bytes: $0.bytes) }
    }

    /// Every global counter by name, summed over CPUs; `rx` is the sum of the
    /// outcome counters (the program does not write it: xdplb_abi.h section 5).
    public static func global(_ maps: BalancerMaps) throws(BPFError) -> [String: CounterValue] {
        var out: [String: CounterValue] = [:]
        var rx = CounterValue()
        for (id, name) in CounterNames.all where id != Int(XDPLB_CNT_RX.rawValue) {
            let v = try sum(maps.counters, index: UInt32(id))
            out[name] = v
            if CounterNames.isOutcome(name) { rx.packets &+= v.packets; rx.bytes &+= v.bytes }
        }
        out["rx"] = rx
        return out
    }

    /// Every global counter by name, per CPU (in CPU order); `rx` derived as in ``global(_:)``.
    public static func globalPerCPU(_ maps: BalancerMaps) throws(BPFError) -> [String: [CounterValue]] {
        var out: [String: [CounterValue]] = [:]
        var rx: [CounterValue] = []
        for (id, name) in CounterNames.all where id != Int(XDPLB_CNT_RX.rawValue) {
            let v = try perCPU(maps.counters, index: UInt32(id))
            out[name] = v
            guard CounterNames.isOutcome(name) else { continue }
            if rx.isEmpty { rx = Array(repeating: CounterValue(), count: v.count) }
            for (i, c) in v.enumerated() { rx[i].packets &+= c.packets; rx[i].bytes &+= c.bytes }
        }
        out["rx"] = rx
        return out
    }
}
