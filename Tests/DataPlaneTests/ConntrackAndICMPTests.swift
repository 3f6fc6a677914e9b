import BPF
import CXdplb
import Config
import DataPlane
import Maglev
import NetAddress
import Packets
import Testing

@Suite("conntrack, MTU and ICMP through the real program", .serialized)
struct ConntrackAndICMPTests {
    let flow = FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, proto: 6)

    @Test("an established flow keeps its backend while that backend drains; new flows avoid it")
    func drainKeepsLRUFlows() throws {
        let bed = try TestBed()
        let syn = Frames.tcp(Lab.client4, 40000, Lab.vip4, 80)
        let r1 = try bed.run(syn)
        let owner = try #require(Frames.outerDestination(r1.output))
        try bed.apply(Lab.config(backendWeights: [owner: 0]))
        let before = try bed.counters()
        let ack = Frames.tcp(Lab.client4, 40000, Lab.vip4, 80, flags: .ack, payload: [1, 2, 3])
        let r2 = try bed.run(ack)
        #expect(Frames.outerDestination(r2.output) == owner)
        #expect(delta(before, try bed.counters())["ct_hit"] == 1)
        // The ring no longer has it: a SYN (and the Swift model) picks another backend.
        let r3 = try bed.run(syn)
        let newOwner = try #require(Frames.outerDestination(r3.output))
        #expect(newOwner != owner)
        #expect(newOwner == bed.expectedBackend(flow))
    }

    @Test("a flow whose backend is gone (down or removed) is re-hashed")
    func goneBackendRehashes() throws {
        let bed = try TestBed()
        let owner = try #require(Frames.outerDestination(try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80)).output))
        try bed.apply(Lab.config(), down: [owner])
        let before = try bed.counters()
        let r = try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80, flags: .ack))
        let now = try #require(Frames.outerDestination(r.output))
        #expect(now != owner && now == bed.expectedBackend(flow))
        let d = delta(before, try bed.counters())
        #expect(d["ct_miss"] == 1 && d["new_flow"] == 1)
    }

    @Test("a conntrack entry is read back from the LRU map")
    func lruEntryWritten() throws {
        let bed = try TestBed()
        _ = try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80))
        let keys = try bed.balancer.maps.conntrack.keys(as: xdplb_flow_key.self)
        #expect(keys.count == 1)
        let entry = try #require(try bed.balancer.maps.conntrack.lookup(keys[0], as: xdplb_ct_entry.self))
        let backend = try #require(bed.expectedBackend(flow))
        #expect(entry.backend_id == bed.controller.backendIDs[backend])
    }

    // MARK: MTU

    func bigFrame(df: Bool) -> [UInt8] {
        let seg = PacketBuilder.tcp(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, flags: .ack, payload: Array(repeating: 0x5a, count: 1460))
        let ip = PacketBuilder.ipv4(src: Lab.client4, dst: Lab.vip4, proto: 6, payload: seg, id: 7, flagsAndOffset: df ? 0x4000 : 0)
        return PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800, payload: ip)
    }

    @Test("too big with DF: ICMP fragmentation-needed back to the client, exact bytes")
    func fragNeeded() throws {
        let bed = try TestBed()
        let f = bigFrame(df: true)
        let before = try bed.counters()
        let r = try bed.run(f)
        #expect(r.action == .tx)
        let quote = Array(f[14..<(14 + 128)])
        // Backend family decides the overhead; find which backend this flow has.
        let backend = try #require(bed.expectedBackend(flow))
        let mtu = UInt16(Lab.pathMTU - (backend.isV6 ? 44 : 24))
        let icmp = PacketBuilder.icmpv4(type: 3, code: 4, rest: [0, 0] + be16(mtu), body: quote)
        let ip = PacketBuilder.ipv4(src: Lab.vip4, dst: Lab.client4, proto: 1, payload: icmp, tos: 0, ttl: 64, id: 0, flagsAndOffset: 0)
        let want = PacketBuilder.ethernet(dst: Lab.routerMAC, src: Lab.nodeMAC, etherType: 0x0800, payload: ip)
        #expect(r.output == want, "\(hexDiff(r.output, want))")
        #expect(delta(before, try bed.counters())["tx_too_big"] == 1)
    }

    @Test("too big without DF: dropped and counted")
    func tooBigNoDF() throws {
        let bed = try TestBed()
        let before = try bed.counters()
        #expect(try bed.run(bigFrame(df: false)).action == .drop)
        #expect(delta(before, try bed.counters())["drop_too_big"] == 1)
    }

    @Test("just fitting the path MTU is forwarded")
    func exactFit() throws {
        let bed = try TestBed()
        let backend = try #require(bed.expectedBackend(flow))
        let overhead = backend.isV6 ? 44 : 24
        let payload = Lab.pathMTU - overhead - 40
        let seg = PacketBuilder.tcp(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, flags: .ack, payload: Array(repeating: 1, count: payload))
        let f = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800,
                                       payload: PacketBuilder.ipv4(src: Lab.client4, dst: Lab.vip4, proto: 6, payload: seg))
        let r = try bed.run(f)
        #expect(r.action == .tx && r.output.count == f.count + overhead)
        let bigger = PacketBuilder.tcp(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, flags: .ack, payload: Array(repeating: 1, count: payload + 1))
        let f2 = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800,
                                        payload: PacketBuilder.ipv4(src: Lab.client4, dst: Lab.vip4, proto: 6, payload: bigger))
        #expect(try bed.run(f2).action == .tx && (try bed.run(f2).output.count) < f2.count + overhead)  // the ICMP reply
    }

    @Test("too big IPv6: ICMPv6 packet-too-big back to the client, exact bytes")
    func packetTooBig() throws {
        let bed = try TestBed()
        let flow6 = FlowTuple(src: Lab.client6, dst: Lab.vip6, sport: 40000, dport: 443, proto: 6)
        let f = Frames.tcp(Lab.client6, 40000, Lab.vip6, 443, flags: .ack, payload: Array(repeating: 0x33, count: 1440))
        let r = try bed.run(f)
        #expect(r.action == .tx)
        let backend = try #require(bed.expectedBackend(flow6))
        let mtu = UInt32(Lab.pathMTU - (backend.isV6 ? 44 : 24))
        let icmp = PacketBuilder.icmpv6(src: Lab.vip6, dst: Lab.client6, type: 2, code: 0, rest: be32(mtu), body: Array(f[14..<(14 + 128)]))
        let ip = PacketBuilder.ipv6(src: Lab.vip6, dst: Lab.client6, nextHeader: 58, payload: icmp, trafficClass: 0, flowLabel: 0, hopLimit: 64)
        let want = PacketBuilder.ethernet(dst: Lab.routerMAC, src: Lab.nodeMAC, etherType: 0x86dd, payload: ip)
        #expect(r.output == want, "\(hexDiff(r.output, want))")
    }

    // MARK: ICMP errors about VIP flows

    @Test("ICMP frag-needed about a VIP flow goes to that flow's backend")
    func icmpErrorV4() throws {
        let bed = try TestBed()
        let owner = try #require(Frames.outerDestination(try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80)).output))
        // A router on the way back (VIP -> client, DSR) reports the reply too big.
        let reply = PacketBuilder.tcp(src: Lab.vip4, dst: Lab.client4, sport: 80, dport: 40000, flags: .ack, payload: Array(repeating: 9, count: 20))
        let quoted = Array(PacketBuilder.ipv4(src: Lab.vip4, dst: Lab.client4, proto: 6, payload: reply).prefix(28))
        let icmp = PacketBuilder.icmpv4(type: 3, code: 4, rest: [0, 0, 0x05, 0x00], body: quoted)
        let routerAddr = IPAddress("198.51.100.1")!
        let f = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800,
                                       payload: PacketBuilder.ipv4(src: routerAddr, dst: Lab.vip4, proto: 1, payload: icmp, tos: 0xc0))
        let before = try bed.counters()
        let r = try bed.run(f)
        #expect(r.action == .tx)
        #expect(r.output == Frames.encapsulated(f, backend: owner, flowHash: FlowHash.hash(flow, sourceOnly: false, seed: Lab.seed)))
        let d = delta(before, try bed.counters())
        #expect(d["icmp_fwd"] == 1 && d["fwd_tx"] == 1)
    }

    @Test("ICMPv6 packet-too-big about a VIP flow goes to that flow's backend")
    func icmpErrorV6() throws {
        let bed = try TestBed()
        let flow6 = FlowTuple(src: Lab.client6, dst: Lab.vip6, sport: 40000, dport: 443, proto: 6)
        let owner = try #require(bed.expectedBackend(flow6))
        let reply = PacketBuilder.tcp(src: Lab.vip6, dst: Lab.client6, sport: 443, dport: 40000, flags: .ack)
        let quoted = PacketBuilder.ipv6(src: Lab.vip6, dst: Lab.client6, nextHeader: 6, payload: reply)
        let routerAddr = IPAddress("2001:db8:ffff::1")!
        let icmp = PacketBuilder.icmpv6(src: routerAddr, dst: Lab.vip6, type: 2, code: 0, rest: be32(1280), body: quoted)
        let f = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x86dd,
                                       payload: PacketBuilder.ipv6(src: routerAddr, dst: Lab.vip6, nextHeader: 58, payload: icmp))
        let r = try bed.run(f)
        #expect(r.action == .tx)
        #expect(r.output == Frames.encapsulated(f, backend: owner, flowHash: FlowHash.hash(flow6, sourceOnly: false, seed: Lab.seed)))
    }

    @Test("ICMP error quoting a non-VIP flow passes")
    func icmpErrorOther() throws {
        let bed = try TestBed()
        let reply = PacketBuilder.tcp(src: Lab.vip4, dst: Lab.client4, sport: 22, dport: 40000, flags: .ack)
        let quoted = Array(PacketBuilder.ipv4(src: Lab.vip4, dst: Lab.client4, proto: 6, payload: reply).prefix(28))
        let icmp = PacketBuilder.icmpv4(type: 3, code: 3, body: quoted)
        let f = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800,
                                       payload: PacketBuilder.ipv4(src: IPAddress("198.51.100.1")!, dst: Lab.vip4, proto: 1, payload: icmp))
        let r = try bed.run(f)
        #expect(r.action == .pass && r.output == f)
    }
}
