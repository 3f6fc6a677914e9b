import BPF
import Config
import CXdplb
import Foundation
import NetAddress

/// What a protection write left in the maps, to write only differences next time.
struct ProtectionWritten {
    /// Non-empty `xdplb_protect` entries by VIP index.
    var entries: [UInt32: xdplb_vip_protect]
    /// Every key of `xdplb_prefixes` with its action.
    var prefixes: [xdplb_prefix_key: UInt32]
    /// The inputs of that write: equal inputs write nothing.
    var config: ProtectionConfig
    var indexes: [String: UInt32]
}

/// What `applyProtection` changed.
public struct ProtectionReport: Sendable, Equatable {
    /// VIP entries of `xdplb_protect` written (set or cleared).
    public var vipEntriesWritten = 0
    /// Prefixes added to / removed from the trie.
    public var prefixesAdded = 0
    public var prefixesRemoved = 0
    /// Whether the node's protection flag is on after the write.
    public var active = false

    /// A report (all zero: nothing written, protection off).
    public init(vipEntriesWritten: Int = 0, prefixesAdded: Int = 0, prefixesRemoved: Int = 0, active: Bool = false) {
        self.vipEntriesWritten = vipEntriesWritten
        self.prefixesAdded = prefixesAdded
        self.prefixesRemoved = prefixesRemoved
        self.active = active
    }
}

extension xdplb_prefix_key: @retroactive Hashable {
    /// The trie key of `prefix` in `scope` (0: every VIP; a VIP index + 1: that VIP).
    init(_ prefix: IPPrefix, slot: UInt32) {
        self.init()
        prefixlen = 32 + UInt32(prefix.length)
        scope = (UInt32(prefix.address.family) << 24) | slot
        addr = ABI.addr(prefix.address)
    }

    public static func == (a: xdplb_prefix_key, b: xdplb_prefix_key) -> Bool { ABI.bytesEqual(a, b) }
    public func hash(into h: inout Hasher) { withUnsafeBytes(of: self) { h.combine(bytes: $0) } }
}

extension xdplb_vip_protect {
    /// The entry for a VIP's resolved limits and which prefix scopes apply to it.
    init(_ limits: SourceLimits, ownPrefixes: Bool, globalPrefixes: Bool) {
        self.init()
        if ownPrefixes { flags |= UInt32(XDPLB_PROTECT_F_PREFIXES_VIP) }
        if globalPrefixes { flags |= UInt32(XDPLB_PROTECT_F_PREFIXES_ALL) }
        plen_v4 = UInt8(limits.sourcePrefixV4)
        plen_v6 = UInt8(limits.sourcePrefixV6)
        if limits.newFlowsPerSecond > 0 {
            flags |= UInt32(XDPLB_PROTECT_F_LIMIT_FLOWS)
            flow_cost_ns = 1_000_000_000 / UInt64(limits.newFlowsPerSecond)
            flow_burst_ns = UInt64(max(1, limits.newFlowBurst)) * flow_cost_ns
        }
        if limits.packetsPerSecond > 0 {
            flags |= UInt32(XDPLB_PROTECT_F_LIMIT_PKTS)
            pkt_cost_ns = 1_000_000_000 / UInt64(limits.packetsPerSecond)
            pkt_burst_ns = UInt64(max(1, limits.packetBurst)) * pkt_cost_ns
        }
        if flags & UInt32(XDPLB_PROTECT_F_LIMIT_FLOWS | XDPLB_PROTECT_F_LIMIT_PKTS) == 0 {
            plen_v4 = 0
            plen_v6 = 0
        }
    }
}

extension DataPlaneController {
    /// Makes the protection maps (xdplb_abi.h 4c) match `protection` for the
    /// VIPs applied now: per-VIP entries, the deny/allow trie (global and per
    /// VIP, by VIP index), and the node flag that turns the checks on. Only
    /// differences are written. Enabling writes entries before the flag;
    /// disabling clears the flag first.
    @discardableResult
    public func applyProtection(_ protection: ProtectionConfig) throws(BPFError) -> ProtectionReport {
        let indexes = vips.mapValues(\.index)
        var report = ProtectionReport()
        if let w = protectionWritten, w.config == protection, w.indexes == indexes {
            report.active = nodeFlags & UInt32(XDPLB_NODE_F_PROTECT) != 0
            return report
        }
        // What the maps should hold.
        let globalPrefixes = !protection.defaults.deny.isEmpty || !protection.defaults.allow.isEmpty
        var entries: [UInt32: xdplb_vip_protect] = [:]
        var prefixes: [xdplb_prefix_key: UInt32] = [:]
        func add(_ rules: ProtectionRules, slot: UInt32) {
            for p in rules.deny { prefixes[xdplb_prefix_key(p, slot: slot)] = UInt32(XDPLB_PREFIX_DENY) }
            for p in rules.allow { prefixes[xdplb_prefix_key(p, slot: slot)] = UInt32(XDPLB_PREFIX_ALLOW) }
        }
        add(protection.defaults, slot: 0)
        for (name, index) in indexes {
            let own = protection.perVIP[name]
            let ownPrefixes = own.map { !$0.deny.isEmpty || !$0.allow.isEmpty } ?? false
            if let own { add(own, slot: index + 1) }
            let e = xdplb_vip_protect(protection.limits(forVIP: name), ownPrefixes: ownPrefixes, globalPrefixes: globalPrefixes)
            if e.flags != 0 { entries[index] = e }
        }
        if prefixes.count > Int(XDPLB_PREFIXES_MAX) {
            throw BPFError("refused: \(prefixes.count) deny/allow prefixes", errno: ENOSPC, hint: "at most \(XDPLB_PREFIXES_MAX) over all lists")
        }
        let active = !entries.isEmpty
        // Not known yet (a new controller, maybe on maps a previous agent filled): read the trie, rewrite every slot.
        var written = protectionWritten ?? ProtectionWritten(entries: [:], prefixes: [:], config: ProtectionConfig(), indexes: [:])
        let firstWrite = protectionWritten == nil
        if firstWrite {
            for k in try maps.prefixes.keys(as: xdplb_prefix_key.self) {
                written.prefixes[k] = try maps.prefixes.lookup(k, as: xdplb_prefix_rule.self)?.action ?? 0
            }
        }
        protectionWritten = nil   // set again once everything below is written
        if !active { try setNodeFlag(UInt32(XDPLB_NODE_F_PROTECT), on: false) }
        // Removals first: a slot given to another VIP must not keep its last owner's prefixes.
        for k in written.prefixes.keys where prefixes[k] == nil {
            _ = try maps.prefixes.delete(k)
            report.prefixesRemoved += 1
        }
        for (k, action) in prefixes where written.prefixes[k] != action {
            var rule = xdplb_prefix_rule()
            rule.action = action
            try maps.prefixes.update(k, rule)
            report.prefixesAdded += 1
        }
        let slots: [UInt32] = firstWrite ? Array(0..<UInt32(XDPLB_MAX_VIPS)) : Array(Set(written.entries.keys).union(entries.keys))
        // One batch update (the first write covers every slot: 4,096 single updates took ~7 ms).
        var keys: [UInt32] = [], values: [xdplb_vip_protect] = []
        for slot in slots {
            let want = entries[slot] ?? xdplb_vip_protect()
            if !firstWrite, let have = written.entries[slot], ABI.bytesEqual(have, want) { continue }
            keys.append(slot)
            values.append(want)
        }
        try maps.protect.updateBatch(keys: keys, values: values)
        report.vipEntriesWritten += keys.count
        if active { try setNodeFlag(UInt32(XDPLB_NODE_F_PROTECT), on: true) }
        protectionWritten = ProtectionWritten(entries: entries, prefixes: prefixes, config: protection, indexes: indexes)
        report.active = active
        return report
    }

    /// Clears the protection entry of a VIP slot being emptied (its next owner starts unprotected until written).
    func clearProtection(slot: UInt32) throws(BPFError) {
        guard protectionWritten?.entries[slot] != nil else { return }
        try maps.protect.update(slot, xdplb_vip_protect())
        protectionWritten?.entries[slot] = nil
        protectionWritten?.indexes = [:]   // makes the next applyProtection compare again
    }

    /// Sets or clears `flag` in the node config entry (the rest as it is in the map;
    /// written only when the map's flags differ).
    private func setNodeFlag(_ flag: UInt32, on: Bool) throws(BPFError) {
        let flags = on ? nodeFlags | flag : nodeFlags & ~flag
        nodeFlags = flags
        var cfg = try maps.config.lookup(UInt32(0), as: xdplb_node_cfg.self) ?? xdplb_node_cfg()
        guard cfg.flags != flags else { return }
        cfg.flags = flags
        try maps.config.update(UInt32(0), cfg)
    }

    /// Per VIP name: the flows its ring decided and its protection drops, summed over CPUs.
    public func vipFlowCounts() throws(BPFError) -> [String: VIPFlowCounts] {
        var out: [String: VIPFlowCounts] = [:]
        for (name, s) in vips {
            let per = try maps.vipFlows.lookupPerCPU(s.index, as: xdplb_vip_flows.self)
            var c = VIPFlowCounts()
            for v in per {
                c.newFlows &+= v.new_flows
                c.dropDeny &+= v.drop_deny
                c.dropRateSourceSYN &+= v.drop_rate_src_syn
                c.dropRateSourcePPS &+= v.drop_rate_src_pps
            }
            out[name] = c
        }
        return out
    }
}

/// One VIP's `xdplb_vip_flows`, summed over CPUs.
public struct VIPFlowCounts: Sendable, Equatable, Codable {
    /// Flows its ring decided (SYNs and conntrack misses).
    public var newFlows: UInt64 = 0
    /// Packets dropped: source in a deny prefix.
    public var dropDeny: UInt64 = 0
    /// Packets dropped: source prefix over its new-flow limit.
    public var dropRateSourceSYN: UInt64 = 0
    /// Packets dropped: source prefix over its packet limit.
    public var dropRateSourcePPS: UInt64 = 0
    public init() {}

    // Keys named like the counters (drop_rate_src_syn once in snake case), which also
    // survive the snake-case round trip the admin API's JSON makes (SYN would not).
    enum CodingKeys: String, CodingKey {
        case newFlows, dropDeny, dropRateSourceSYN = "dropRateSrcSyn", dropRateSourcePPS = "dropRateSrcPps"
    }
}
