import BPF
import BPFObjects
import CXdplb
import Foundation

/// The through-tunnel probe program (`bpf/probe.bpf.c`, tc clsact egress on the node's
/// interface): wraps the agent's marked probe packets in the data plane's GRE header toward
/// the backend whose id the mark carries (`XDPLB_PROBE_MARK | id`). It shares the balancer's
/// backends and config maps, so a probe goes where client traffic goes.
public final class ProbeEncapsulator: @unchecked Sendable {
    /// The tc filter handle and priority of the program on egress.
    public static let handle: UInt32 = 1
    public static let priority = UInt32(XDPLB_PROBE_TC_PRIORITY)

    /// Counter names, in enum xdplb_probe_counter_id order.
    public static let counterNames = ["rx", "gre_v4", "gre_v6", "drop_no_backend", "drop_no_source", "drop_malformed",
                                      "drop_encap_fail", "drop_fib_fail"]

    /// The interface it is attached to.
    public let interface: String
    let object: BPFObject
    let counterMap: BPFMap
    /// The attached program's kernel id.
    public let programID: UInt32

    /// Loads the program with `maps`' backends and config and attaches it to `interface`'s
    /// egress (replacing an earlier xdplb probe filter there).
    public init(interface: String, maps: BalancerMaps) throws(BPFError) {
        _ = XDPLB_PROBE_CNT_MAX  // the ABI header in sync with counterNames
        let ifindex = if_nametoindex(interface)
        guard ifindex != 0 else { throw BPFError("through-tunnel probes on '\(interface)': no such interface", errno: ENODEV) }
        let obj = try BPFObject(elf: BPFObjects.probe, name: "xdplb_probe")
        try obj.reuse(map: XDPLB_MAP_BACKENDS, maps.backends)
        try obj.reuse(map: XDPLB_MAP_CONFIG, maps.config)
        try obj.load()
        let prog = try obj.program(XDPLB_PROG_PROBE)
        let rc = xdplb_tc_attach_egress(Int32(ifindex), prog.fd, Self.handle, Self.priority)
        guard rc == 0 else {
            throw BPFError("attach the probe program to \(interface) egress (tc clsact, priority \(Self.priority))", errno: -rc)
        }
        self.interface = interface
        object = obj
        counterMap = try obj.map(XDPLB_MAP_PROBE_COUNTERS)
        programID = (try? prog.info().id) ?? 0
    }

    /// Packets and bytes per outcome, summed over CPUs.
    public func counters() -> [String: CounterValue] {
        var out: [String: CounterValue] = [:]
        for (i, name) in Self.counterNames.enumerated() {
            out[name] = (try? CounterReader.sum(counterMap, index: UInt32(i))) ?? CounterValue()
        }
        return out
    }

    /// Removes an xdplb probe filter from `ifindex`'s egress, if there is one.
    /// - Returns: true if one was removed.
    @discardableResult
    public static func detach(ifindex: UInt32) -> Bool {
        var id: UInt32 = 0
        guard ifindex != 0, xdplb_tc_query_egress(Int32(ifindex), handle, priority, &id) == 0 else { return false }
        // Only ours: a filter of another name at this priority stays.
        guard let info = try? BPFProgram.open(id: id).info(), info.name == XDPLB_PROG_PROBE else { return false }
        return xdplb_tc_detach_egress(Int32(ifindex), handle, priority) == 0
    }
}
