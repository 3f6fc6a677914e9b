import BPF
import Config
import DataPlane
import Maglev
import NetAddress
import Packets
import Testing

/// Exact output bytes of the forwarding paths, through the real program.
@Suite("GRE encapsulation through the real program", .serialized)
struct EncapTests {
    struct Case: CustomStringConvertible, Sendable {
        var description: String
        var frame: [UInt8]
        var flow: FlowTuple
        var sourceOnly = false
    }

    static let cases: [Case] = [
        Case(description: "v4 TCP SYN to a v4 VIP", frame: Frames.tcp(Lab.client4, 40000, Lab.vip4, 80),
             flow: FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, proto: 6)),
        Case(description: "v4 TCP SYN with DSCP/ECN", frame: Frames.tcp(Lab.client4, 40001, Lab.vip4, 80, tos: 0xb9),
             flow: FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: 40001, dport: 80, proto: 6)),
        Case(description: "v4 TCP SYN with a VLAN tag", frame: Frames.tcp(Lab.client4, 40002, Lab.vip4, 80, vlan: 42),
             flow: FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: 40002, dport: 80, proto: 6)),
        Case(description: "v4 TCP SYN with payload", frame: Frames.tcp(Lab.client4, 40003, Lab.vip4, 80, payload: Array(0..<200)),
             flow: FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: 40003, dport: 80, proto: 6)),
        Case(description: "v4 UDP to a port-0 VIP", frame: Frames.udp(Lab.client4, 5353, Lab.vip4udp, 9999),
             flow: FlowTuple(src: Lab.client4, dst: Lab.vip4udp, sport: 5353, dport: 9999, proto: 17)),
        Case(description: "v6 TCP SYN to a v6 VIP", frame: Frames.tcp(Lab.client6, 40000, Lab.vip6, 443, tos: 0x2a),
             flow: FlowTuple(src: Lab.client6, dst: Lab.vip6, sport: 40000, dport: 443, proto: 6)),
        Case(description: "v6 UDP to a v6 VIP", frame: Frames.udp(Lab.client6, 5000, Lab.vip6, 53),
             flow: FlowTuple(src: Lab.client6, dst: Lab.vip6, sport: 5000, dport: 53, proto: 17)),
        Case(description: "source-ip VIP", frame: Frames.tcp(Lab.client4, 40004, Lab.vip4src, 80),
             flow: FlowTuple(src: Lab.client4, dst: Lab.vip4src, sport: 40004, dport: 80, proto: 6), sourceOnly: true),
    ]

    @Test("forwarded packets are exactly outer IP + GRE + the untouched inner packet", arguments: cases)
    func exactBytes(_ c: Case) throws {
        let bed = try TestBed()
        let before = try bed.counters()
        let r = try bed.run(c.frame)
        #expect(r.action == .tx)
        let backend = try #require(bed.expectedBackend(c.flow))
        let hash = FlowHash.hash(c.flow, sourceOnly: c.sourceOnly, seed: Lab.seed)
        let want = Frames.encapsulated(c.frame, backend: backend, flowHash: hash)
        #expect(r.output == want, "\(hexDiff(r.output, want))")
        let d = delta(before, try bed.counters())
        #expect(d["rx"] == 1 && d["fwd_tx"] == 1 && d["new_flow"] == 1)
        #expect(d[backend.isV6 ? "gre_v6" : "gre_v4"] == 1)
    }

    @Test("v4 and v6 VIPs reach both backend families (4in6 and 6in4)")
    func mixedFamilies() throws {
        let bed = try TestBed()
        var families: Set<String> = []
        for client in [Lab.client4, Lab.client6] {
            let vip = client.isV6 ? Lab.vip6 : Lab.vip4
            let port: UInt16 = client.isV6 ? 443 : 80
            for sport in UInt16(1000)..<1200 {
                let f = Frames.tcp(client, sport, vip, port)
                let r = try bed.run(f)
                let outer = try #require(Frames.outerDestination(r.output))
                families.insert("\(client.isV6 ? 6 : 4)in\(outer.isV6 ? 6 : 4)")
            }
        }
        #expect(families == ["4in4", "4in6", "6in4", "6in6"])
    }

    @Test("next hop on another interface gives XDP_REDIRECT with the same bytes")
    func redirect() throws {
        let bed = try TestBed(nextHopIfindex: 999)
        let before = try bed.counters()
        let f = Frames.tcp(Lab.client4, 40000, Lab.vip4, 80)
        let r = try bed.run(f)
        #expect(r.action == .redirect)
        let flow = FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, proto: 6)
        let backend = try #require(bed.expectedBackend(flow))
        #expect(r.output == Frames.encapsulated(f, backend: backend, flowHash: FlowHash.hash(flow, sourceOnly: false, seed: Lab.seed)))
        #expect(delta(before, try bed.counters())["fwd_redirect"] == 1)
    }

    @Test("per-VIP and per-backend stats count packets and original bytes")
    func perVIPAndBackendStats() throws {
        let bed = try TestBed()
        let f = Frames.tcp(Lab.client4, 40000, Lab.vip4, 80)
        for _ in 0..<3 { _ = try bed.run(f) }
        let flow = FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, proto: 6)
        let backend = try #require(bed.expectedBackend(flow))
        let vipIndex = try #require(bed.controller.vips["10.100.0.1:80/tcp"]?.index)
        let id = try #require(bed.controller.backendIDs[backend])
        #expect(try CounterReader.sum(bed.balancer.maps.vipStats, index: vipIndex) == CounterValue(packets: 3, bytes: UInt64(3 * f.count)))
        #expect(try CounterReader.sum(bed.balancer.maps.backendStats, index: id) == CounterValue(packets: 3, bytes: UInt64(3 * f.count)))
    }
}
