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

    /// Every global counter by name, summed over CPUs.
    public static func global(_ maps: BalancerMaps) throws(BPFError) -> [String: CounterValue] {
        var out: [String: CounterValue] = [:]
        for (id, name) in CounterNames.all {
            out[name] = try sum(maps.counters, index: UInt32(id))
        }
        return out
    }
}
