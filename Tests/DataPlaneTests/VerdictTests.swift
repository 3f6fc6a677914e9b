import BPF
import CXdplb
import Config
import DataPlane
import Maglev
import NetAddress
import Packets
import Testing

/// Packets the balancer must pass untouched or drop, each with its counter.
@Suite("pass and drop verdicts through the real program", .serialized)
struct VerdictTests {
    func expectVerdict(_ bed: TestBed, _ frame: [UInt8], _ action: XDPAction, counter: String,
                       untouched: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try bed.counters()
        let r = try bed.run(frame)
        #expect(r.action == action, sourceLocation: sourceLocation)
        if untouched && action == .pass { #expect(r.output == frame, "pass must leave the packet untouched", sourceLocation: sourceLocation) }
        let d = delta(before, try bed.counters())
        #expect(d["rx"] == 1 && d[counter] == 1, "counters moved: \(d)", sourceLocation: sourceLocation)
        let outcomes = d.filter { CounterNames.isOutcome($0.key) }
        #expect(outcomes.count == 1, "exactly one outcome counter: \(d)", sourceLocation: sourceLocation)
    }

    @Test("non-VIP traffic passes untouched")
    func nonVIP() throws {
        let bed = try TestBed()
        try expectVerdict(bed, Frames.tcp(Lab.client4, 1, IPAddress("10.100.0.77")!, 80), .pass, counter: "pass_not_vip")
        try expectVerdict(bed, Frames.tcp(Lab.client4, 1, Lab.vip4, 81), .pass, counter: "pass_not_vip")     // VIP address, other port
        try expectVerdict(bed, Frames.udp(Lab.client4, 1, Lab.vip4, 80), .pass, counter: "pass_not_vip")     // VIP port, other protocol
        try expectVerdict(bed, Frames.tcp(Lab.client6, 1, IPAddress("fd00:100::2")!, 443), .pass, counter: "pass_not_vip")
        try expectVerdict(bed, Frames.tcp(Lab.client4, 1, Lab.vip4udp, 9999), .pass, counter: "pass_not_vip") // port-0 UDP VIP, TCP
    }

    @Test("non-IP frames pass untouched")
    func nonIP() throws {
        let bed = try TestBed()
        let arp = PacketBuilder.ethernet(dst: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff], src: Lab.routerMAC, etherType: 0x0806,
                                         payload: [0, 1, 8, 0, 6, 4, 0, 1] + Lab.routerMAC + [10, 0, 1, 1] + [0, 0, 0, 0, 0, 0] + [10, 0, 1, 2])
        try expectVerdict(bed, arp, .pass, counter: "pass_not_ip")
    }

    @Test("a VIP without backends drops and counts")
    func emptyRing() throws {
        let bed = try TestBed()
        try expectVerdict(bed, Frames.tcp(Lab.client4, 1, Lab.vip4empty, 80), .drop, counter: "drop_no_backend")
        // Every backend drained: same.
        var c = Lab.config()
        c.vips[1].backends = c.vips[1].backends.map { var b = $0; b.weight = 0; return b }
        try bed.apply(c)
        try expectVerdict(bed, Frames.udp(Lab.client4, 1, Lab.vip4udp, 7), .drop, counter: "drop_no_backend")
    }

    @Test("IPv4 fragments to a VIP address are dropped; to others passed")
    func fragments() throws {
        let bed = try TestBed()
        for fo: UInt16 in [0x2000, 0x0010, 0x2010] {  // first (MF), last (offset), middle
            let seg = PacketBuilder.tcp(src: Lab.client4, dst: Lab.vip4, sport: 1, dport: 80, flags: .ack, payload: Array(repeating: 7, count: 40))
            let ip = PacketBuilder.ipv4(src: Lab.client4, dst: Lab.vip4, proto: 6, payload: seg, flagsAndOffset: fo)
            try expectVerdict(bed, PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800, payload: ip), .drop, counter: "drop_fragment")
            let other = PacketBuilder.ipv4(src: Lab.client4, dst: IPAddress("10.9.9.9")!, proto: 6, payload: seg, flagsAndOffset: fo)
            try expectVerdict(bed, PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800, payload: other), .pass, counter: "pass_not_vip")
        }
    }

    @Test("IPv6 extension headers and fragments to a VIP address are dropped")
    func ipv6Extensions() throws {
        let bed = try TestBed()
        let seg = PacketBuilder.tcp(src: Lab.client6, dst: Lab.vip6, sport: 1, dport: 443, flags: .syn)
        let hopByHop: [UInt8] = [6, 0, 1, 4, 0, 0, 0, 0] // next=TCP, len 0, PadN
        let frag: [UInt8] = [6, 0, 0, 1, 0, 0, 0, 1]      // next=TCP, offset 0, MF
        for (nh, ext, counter) in [(UInt8(0), hopByHop, "drop_ipv6_ext"), (UInt8(44), frag, "drop_fragment"), (UInt8(60), hopByHop, "drop_ipv6_ext")] {
            let ip = PacketBuilder.ipv6(src: Lab.client6, dst: Lab.vip6, nextHeader: nh, payload: ext + seg)
            try expectVerdict(bed, PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x86dd, payload: ip), .drop, counter: counter)
            let other = PacketBuilder.ipv6(src: Lab.client6, dst: IPAddress("fd00:100::99")!, nextHeader: nh, payload: ext + seg)
            try expectVerdict(bed, PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x86dd, payload: other), .pass, counter: "pass_not_vip")
        }
    }

    @Test("IPv4 options are honoured: forwarded as is, counted")
    func ipv4Options() throws {
        let bed = try TestBed()
        let seg = PacketBuilder.tcp(src: Lab.client4, dst: Lab.vip4, sport: 4242, dport: 80, flags: .syn)
        let ip = PacketBuilder.ipv4(src: Lab.client4, dst: Lab.vip4, proto: 6, payload: seg, options: [0x01, 0x01, 0x01, 0x00]) // NOP NOP NOP EOL
        let frame = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800, payload: ip)
        let before = try bed.counters()
        let r = try bed.run(frame)
        #expect(r.action == .tx)
        let flow = FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: 4242, dport: 80, proto: 6)
        let backend = try #require(bed.expectedBackend(flow))
        #expect(r.output == Frames.encapsulated(frame, backend: backend, flowHash: FlowHash.hash(flow, sourceOnly: false, seed: Lab.seed)))
        let d = delta(before, try bed.counters())
        #expect(d["ipv4_options"] == 1 && d["fwd_tx"] == 1)
    }

    @Test("ICMP echo to a VIP address passes to the kernel, counted")
    func icmpEcho() throws {
        let bed = try TestBed()
        let echo = PacketBuilder.icmpv4(type: 8, code: 0, rest: [0, 1, 0, 1], body: Array(repeating: 0x61, count: 32))
        let f = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800,
                                       payload: PacketBuilder.ipv4(src: Lab.client4, dst: Lab.vip4, proto: 1, payload: echo))
        try expectVerdict(bed, f, .pass, counter: "pass_icmp_other")
        let echo6 = PacketBuilder.icmpv6(src: Lab.client6, dst: Lab.vip6, type: 128, code: 0, rest: [0, 1, 0, 1], body: [1, 2, 3, 4])
        let f6 = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x86dd,
                                        payload: PacketBuilder.ipv6(src: Lab.client6, dst: Lab.vip6, nextHeader: 58, payload: echo6))
        try expectVerdict(bed, f6, .pass, counter: "pass_icmp_other")
        let toOther = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800,
                                             payload: PacketBuilder.ipv4(src: Lab.client4, dst: IPAddress("10.0.1.1")!, proto: 1, payload: echo))
        try expectVerdict(bed, toOther, .pass, counter: "pass_not_vip")
    }
}

@Suite("the VIP address prefilter", .serialized)
struct VIPFilterTests {
    @Test("the prefilter holds exactly the bits of the VIP addresses, enabled")
    func bits() throws {
        let bed = try TestBed()
        let f = try #require(try bed.balancer.maps.vipFilter.lookup(UInt32(0), as: xdplb_vip_filter.self))
        let want = VIPFilter.value(for: Set(Lab.config().vips.map(\.address)))
        #expect(f.enabled == 1)
        #expect(withUnsafeBytes(of: f.words) { Array($0) } == withUnsafeBytes(of: want.words) { Array($0) })
    }

    @Test("a non-VIP address whose bit collides with a VIP's is still passed, after the address lookup")
    func collision() throws {
        let bed = try TestBed()
        let target = VIPFilter.bit(Lab.vip4)
        let other = try #require((0..<65536).lazy.map { IPAddress.v4([10, 77, UInt8($0 >> 8), UInt8($0 & 0xff)]) }
            .first { VIPFilter.bit($0) == target })
        let before = try bed.counters()
        let f = Frames.tcp(Lab.client4, 1, other, 80)
        let r = try bed.run(f)
        #expect(r.action == .pass && r.output == f)
        #expect(delta(before, try bed.counters())["pass_not_vip"] == 1)
    }

    @Test("with the prefilter disabled (maps of an older agent) VIP and non-VIP traffic are still right")
    func disabled() throws {
        let bed = try TestBed()
        try bed.balancer.maps.vipFilter.update(UInt32(0), xdplb_vip_filter())
        #expect(try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80)).action == .tx)
        let f = Frames.tcp(Lab.client4, 1, IPAddress("10.9.9.9")!, 80)
        let r = try bed.run(f)
        #expect(r.action == .pass && r.output == f)
    }
}
