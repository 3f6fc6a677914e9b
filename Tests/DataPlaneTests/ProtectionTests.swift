import BPF
import CXdplb
import Config
import DataPlane
import NetAddress
import Packets
import Testing

/// Deny/allow prefixes and per-source limits (xdplb_abi.h 4c) through the real program.
@Suite("protection: prefix lists and per-source limits", .serialized)
struct ProtectionTests {
    /// The one outcome counter `frame` moved (e.g. "fwd_tx", "drop_deny").
    func outcome(_ bed: TestBed, _ frame: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let before = try bed.counters()
        _ = try bed.run(frame)
        let d = delta(before, try bed.counters())
        let outcomes = d.filter { CounterNames.isOutcome($0.key) }
        #expect(d["rx"] == 1 && outcomes.count == 1 && outcomes.first?.value == 1, "\(d)", sourceLocation: sourceLocation)
        return outcomes.first?.key ?? "none"
    }

    func syn(_ src: String, _ sport: UInt16 = 1000, vip: IPAddress = Lab.vip4, port: UInt16 = 80) -> [UInt8] {
        Frames.tcp(IPAddress(src)!, sport, vip, port)
    }

    func prefixes(_ texts: [String]) -> [IPPrefix] { texts.map { IPPrefix($0)! } }

    func apply(_ bed: TestBed, _ p: ProtectionConfig) throws {
        var c = bed.config
        c.protection = p
        try bed.apply(c)
    }

    func nodeFlags(_ bed: TestBed) throws -> UInt32 {
        try #require(try bed.balancer.maps.config.lookup(UInt32(0), as: xdplb_node_cfg.self)).flags
    }

    @Test("global deny, v4 and v6, at the prefix edges; established flows of a denied source are cut; off again")
    func denyEdges() throws {
        let bed = try TestBed()
        #expect(try nodeFlags(bed) == 0, "off by default")
        #expect(try outcome(bed, syn("198.51.100.7")) == "fwd_tx")
        // An established flow from a source that is denied later.
        let est = Frames.tcp(IPAddress("198.51.100.9")!, 4000, Lab.vip4, 80, flags: .ack)
        #expect(try outcome(bed, est) == "fwd_tx")
        var p = ProtectionConfig()
        p.defaults.deny = prefixes(["198.51.100.0/24", "203.0.113.77/32", "2001:db8:bad::/48", "2001:db8::dead/128"])
        try apply(bed, p)
        #expect(try nodeFlags(bed) & UInt32(XDPLB_NODE_F_PROTECT) != 0)
        for src in ["198.51.100.0", "198.51.100.255", "203.0.113.77"] {
            #expect(try outcome(bed, syn(src)) == "drop_deny", "\(src)")
        }
        for src in ["198.51.99.255", "198.51.101.0", "203.0.113.76", "203.0.113.78"] {
            #expect(try outcome(bed, syn(src)) == "fwd_tx", "\(src)")
        }
        #expect(try outcome(bed, est) == "drop_deny", "a deny cuts the source's established flows too")
        for src in ["2001:db8:bad::", "2001:db8:bad:ffff:ffff:ffff:ffff:ffff", "2001:db8::dead"] {
            #expect(try outcome(bed, syn(src, vip: Lab.vip6, port: 443)) == "drop_deny", "\(src)")
        }
        for src in ["2001:db8:bac:ffff::1", "2001:db8:bae::", "2001:db8::deae", "2001:db8::deac"] {
            #expect(try outcome(bed, syn(src, vip: Lab.vip6, port: 443)) == "fwd_tx", "\(src)")
        }
        // An IPv4 prefix never matches an IPv6 source with the same leading bytes (families have their own scope).
        #expect(try outcome(bed, syn("c633:6400::1", vip: Lab.vip6, port: 443)) == "fwd_tx")
        let counts = try bed.controller.vipFlowCounts()
        #expect(counts[bed.config.vips[0].name]?.dropDeny == 4)
        #expect(counts[bed.config.vips[4].name]?.dropDeny == 3)
        // Removed again: the node flag is off, the trie empty, the source forwards.
        let report = try bed.controller.applyProtection(ProtectionConfig())
        #expect(report.prefixesRemoved == 4 && !report.active)
        #expect(try nodeFlags(bed) == 0)
        #expect(try bed.balancer.maps.prefixes.keys(as: xdplb_prefix_key.self).isEmpty)
        #expect(try outcome(bed, syn("198.51.100.7", 1001)) == "fwd_tx")
    }

    @Test("per-VIP lists: only that VIP; the VIP's own list decides before the global one; allow inside deny")
    func perVIPScopes() throws {
        let bed = try TestBed()
        let web = bed.config.vips[0].name, dns6 = bed.config.vips[4].name
        var p = ProtectionConfig()
        p.defaults.deny = prefixes(["192.0.2.0/24", "2001:db8:1::/48"])
        p.defaults.allow = prefixes(["192.0.2.128/25"])
        var own = ProtectionRules()
        own.deny = prefixes(["198.18.0.0/15"])
        own.allow = prefixes(["192.0.2.0/26"])
        p.perVIP[web] = own
        try apply(bed, p)
        // The VIP's own deny: this VIP only.
        #expect(try outcome(bed, syn("198.19.255.255")) == "drop_deny")
        #expect(try outcome(bed, syn("198.19.255.255", vip: Lab.vip4src)) == "fwd_tx")
        // Its own allow beats the global deny; elsewhere the global deny holds.
        #expect(try outcome(bed, syn("192.0.2.63")) == "fwd_tx")
        #expect(try outcome(bed, syn("192.0.2.63", vip: Lab.vip4src)) == "drop_deny")
        #expect(try outcome(bed, syn("192.0.2.64")) == "drop_deny")
        // Global allow inside the global deny: the longer prefix wins.
        #expect(try outcome(bed, syn("192.0.2.128", vip: Lab.vip4src)) == "fwd_tx")
        #expect(try outcome(bed, syn("192.0.2.127", vip: Lab.vip4src)) == "drop_deny")
        #expect(try outcome(bed, syn("2001:db8:1:2::3", vip: Lab.vip6, port: 443)) == "drop_deny")
        _ = dns6
        // Trie contents: exactly the configured keys, the VIP's under its slot + 1.
        let slot = try #require(bed.controller.vips[web]).index + 1
        var keys: [String] = []
        for k in try bed.balancer.maps.prefixes.keys(as: xdplb_prefix_key.self) {
            let action = try #require(try bed.balancer.maps.prefixes.lookup(k, as: xdplb_prefix_rule.self)).action
            keys.append("\(k.scope >> 24)/\(k.scope & 0xffffff)/\(k.prefixlen - 32)/\(action)")
        }
        #expect(keys.sorted() == ["4/0/24/1", "4/0/25/2", "4/\(slot)/15/1", "4/\(slot)/26/2", "6/0/48/1"].sorted())
    }

    /// The limit state the program keeps for (VIP slot, masked source).
    func sourceKey(_ bed: TestBed, vip: String, _ masked: String) throws -> xdplb_src_key {
        var k = xdplb_src_key()
        let a = IPAddress(masked)!
        withUnsafeMutableBytes(of: &k.addr) { $0.copyBytes(from: a.paddedBytes) }
        k.vip_index = try #require(bed.controller.vips[vip]).index
        k.family = a.family
        return k
    }

    @Test("new flows per source prefix: the burst passes, the next is dropped, one cost of time later exactly one more")
    func newFlowBucketBoundaries() throws {
        let bed = try TestBed()
        let web = bed.config.vips[0].name
        var p = ProtectionConfig()
        p.defaults.newFlowsPerSecond = 10   // a cost of 100 ms
        p.defaults.newFlowBurst = 5
        p.defaults.sourcePrefixV4 = 24
        try apply(bed, p)
        for port in UInt16(1)...5 { #expect(try outcome(bed, syn("203.0.113.1", port)) == "fwd_tx", "\(port)") }
        #expect(try outcome(bed, syn("203.0.113.1", 6)) == "drop_rate_src_syn")
        #expect(try outcome(bed, syn("203.0.113.200", 7)) == "drop_rate_src_syn", "the same /24")
        #expect(try outcome(bed, syn("203.0.114.1", 8)) == "fwd_tx", "another /24 has its own bucket")
        // A packet that misses conntrack is a new flow too; a hit is not.
        #expect(try outcome(bed, Frames.tcp(IPAddress("203.0.113.1")!, 9, Lab.vip4, 80, flags: .ack)) == "drop_rate_src_syn")
        #expect(try outcome(bed, Frames.tcp(IPAddress("203.0.113.1")!, 1, Lab.vip4, 80, flags: .ack)) == "fwd_tx", "conntrack hit")
        // Refill: move the bucket back by exactly one cost.
        let key = try sourceKey(bed, vip: web, "203.0.113.0")
        var st = try #require(try bed.balancer.maps.sourceState.lookup(key, as: xdplb_src_state.self))
        st.flow_tat -= 100_000_000
        try bed.balancer.maps.sourceState.update(key, st)
        #expect(try outcome(bed, syn("203.0.113.1", 10)) == "fwd_tx")
        #expect(try outcome(bed, syn("203.0.113.1", 11)) == "drop_rate_src_syn")
        // Just short of one cost: still nothing.
        st = try #require(try bed.balancer.maps.sourceState.lookup(key, as: xdplb_src_state.self))
        st.flow_tat -= 90_000_000
        try bed.balancer.maps.sourceState.update(key, st)
        #expect(try outcome(bed, syn("203.0.113.1", 12)) == "drop_rate_src_syn")
        let counts = try #require(try bed.controller.vipFlowCounts()[web])
        #expect(counts.dropRateSourceSYN == 5 && counts.dropDeny == 0)
        #expect(counts.newFlows == 7, "5 + 1 + 1 SYNs the ring decided (the hit is not new)")
    }

    @Test("packets per source: burst then drop; IPv6 keyed by /64; an allowed source is exempt; per-VIP override")
    func packetLimitV6AndAllow() throws {
        let bed = try TestBed()
        let web6 = bed.config.vips[4].name
        var p = ProtectionConfig()
        var own = ProtectionRules()
        own.packetsPerSecond = 1      // one a second: the test sends well within one (1,000 flaked under load)
        own.packetBurst = 3
        own.sourcePrefixV6 = 64
        own.allow = prefixes(["2001:db8:aa:1::/64"])
        p.perVIP[web6] = own
        try apply(bed, p)
        for port in UInt16(1)...3 { #expect(try outcome(bed, syn("2001:db8:aa::1", port, vip: Lab.vip6, port: 443)) == "fwd_tx") }
        #expect(try outcome(bed, syn("2001:db8:aa::ffff", 4, vip: Lab.vip6, port: 443)) == "drop_rate_src_pps", "the same /64")
        #expect(try outcome(bed, syn("2001:db8:aa:0:1::1", 4, vip: Lab.vip6, port: 443)) == "drop_rate_src_pps")
        #expect(try outcome(bed, syn("2001:db8:aa:2::1", 4, vip: Lab.vip6, port: 443)) == "fwd_tx", "another /64")
        for port in UInt16(1)...10 { #expect(try outcome(bed, syn("2001:db8:aa:1::9", port, vip: Lab.vip6, port: 443)) == "fwd_tx", "allowed") }
        // Other VIPs have no limit.
        for port in UInt16(1)...10 { #expect(try outcome(bed, syn("2001:db8:aa::1", port, vip: Lab.vip6, port: 53)) != "drop_rate_src_pps") }
        let key = try sourceKey(bed, vip: web6, "2001:db8:aa::")
        #expect(try bed.balancer.maps.sourceState.lookup(key, as: xdplb_src_state.self) != nil, "keyed by the /64")
        #expect(try bed.controller.vipFlowCounts()[web6]?.dropRateSourcePPS == 2)
    }

    @Test("the same protection again writes nothing; a VIP removed clears its entry; its slot's next owner starts clean")
    func noOpAndRemoval() throws {
        let bed = try TestBed()
        let web = bed.config.vips[0].name
        var p = ProtectionConfig()
        var own = ProtectionRules()
        own.newFlowsPerSecond = 1
        own.deny = prefixes(["192.0.2.0/24"])
        p.perVIP[web] = own
        try apply(bed, p)
        let again = try bed.controller.applyProtection(p)
        #expect(again == ProtectionReport(vipEntriesWritten: 0, prefixesAdded: 0, prefixesRemoved: 0, active: true))
        let slot = try #require(bed.controller.vips[web]).index
        #expect(try bed.balancer.maps.protect.lookup(slot, as: xdplb_vip_protect.self)?.flags
            == UInt32(XDPLB_PROTECT_F_PREFIXES_VIP | XDPLB_PROTECT_F_LIMIT_FLOWS))
        var c = bed.config
        c.protection = p
        c.vips.remove(at: 0)
        try bed.apply(c)
        #expect(try bed.balancer.maps.protect.lookup(slot, as: xdplb_vip_protect.self)?.flags == 0)
        #expect(try bed.balancer.maps.prefixes.keys(as: xdplb_prefix_key.self).isEmpty, "the VIP's prefixes left with it")
        #expect(try nodeFlags(bed) == 0, "nothing left to check")
    }
}
