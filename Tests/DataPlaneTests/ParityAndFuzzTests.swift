import BPF
import Config
import CXdplb
import DataPlane
import Maglev
import NetAddress
import Packets
import Testing

/// A small deterministic generator (SplitMix64) so failures reproduce.
struct Rand: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e3779b97f4a7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58476d1ce4e5b9
        z = (z ^ (z >> 27)) &* 0x94d049bb133111eb
        return z ^ (z >> 31)
    }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

@Suite("parity with the Swift model, and malformed input", .serialized)
struct ParityAndFuzzTests {
    @Test("10,000 random flows: the program's backend equals the Swift model's")
    func parity() throws {
        let bed = try TestBed()
        var rng = Rand(state: 42)
        let vips: [(IPAddress, UInt16, UInt8)] = [(Lab.vip4, 80, 6), (Lab.vip4udp, 0, 17), (Lab.vip4src, 80, 6), (Lab.vip6, 443, 6), (Lab.vip6, 53, 17)]
        var mismatches = 0
        var perBackend: [IPAddress: Int] = [:]
        for i in 0..<10_000 {
            let (vip, port, proto) = vips[i % vips.count]
            let src: IPAddress = vip.isV6 ? .v6([0x20, 0x01, 0x0d, 0xb8] + rng.bytes(12)) : .v4([198, 18] + rng.bytes(2))
            let sport = UInt16(truncatingIfNeeded: rng.next() | 1024)
            let dport = port == 0 ? UInt16(truncatingIfNeeded: rng.next() | 1) : port
            let frame = proto == 6 ? Frames.tcp(src, sport, vip, dport) : Frames.udp(src, sport, vip, dport)
            let r = try bed.run(frame)
            let got = Frames.outerDestination(r.output)
            let want = bed.expectedBackend(FlowTuple(src: src, dst: vip, sport: sport, dport: dport, proto: proto))
            if got == nil || got != want {
                mismatches += 1
                if mismatches < 5 { Issue.record("flow \(i) \(src):\(sport) -> \(vip):\(dport)/\(proto): program \(String(describing: got)), swift \(String(describing: want))") }
            }
            if let got { perBackend[got, default: 0] += 1 }
        }
        #expect(mismatches == 0)
        #expect(perBackend.count == Lab.backends4.count + Lab.backends6.count)
    }

    /// Outputs that leave the program must be well formed: check the encapsulation.
    func checkOutput(_ r: TestRunResult, input: [UInt8]) {
        switch r.action {
        case .pass?:
            #expect(r.output == input, "pass changed the packet: \(PacketSummary.describe(input))")
        case .drop?:
            break
        case .tx?, .redirect?:
            // Either GRE toward a lab backend with the input's IP packet inside, or an ICMP too-big reply.
            if let dst = Frames.outerDestination(r.output) {
                #expect((Lab.backends4 + Lab.backends6).contains(dst))
                let l2 = Frames.l2Length(input)
                #expect(r.output.suffix(input.count - l2).elementsEqual(input[l2...]), "inner packet changed")
            } else {
                let s = PacketSummary.describe(r.output)
                #expect(s.contains("icmp"), "unexpected output \(s)")
            }
        default:
            Issue.record("unexpected verdict \(r.returnValue) for \(PacketSummary.describe(input))")
        }
    }

    func outcomesBalance(_ bed: TestBed) throws {
        let c = try bed.counters()
        // rx is derived from the outcomes; a packet that ended without one shows as no_outcome.
        #expect((c["no_outcome"]?.packets ?? 0) == 0, "every packet must end with an outcome: \(c.filter { $0.value.packets > 0 })")
        #expect((c["rx"]?.packets ?? 0) > 0)
    }

    @Test("every truncation of valid packets gets a counted verdict and no malformed output")
    func truncations() throws {
        let bed = try TestBed()
        let seeds: [[UInt8]] = [
            Frames.tcp(Lab.client4, 40000, Lab.vip4, 80, payload: [1, 2, 3]),
            Frames.tcp(Lab.client4, 40000, Lab.vip4, 80, vlan: 7),
            Frames.udp(Lab.client4, 1, Lab.vip4udp, 2),
            Frames.tcp(Lab.client6, 40000, Lab.vip6, 443),
            Frames.udp(Lab.client6, 1, Lab.vip6, 53),
        ]
        var runs = 0
        for s in seeds {
            for n in 1..<s.count {
                let f = Array(s.prefix(n))
                // Below 14 bytes BPF_PROG_TEST_RUN refuses the input itself (EINVAL).
                guard let r = try? bed.run(f) else { #expect(n < 14); continue }
                checkOutput(r, input: f)
                runs += 1
            }
        }
        #expect(runs > 200)
        try outcomesBalance(bed)
    }

    @Test("bogus lengths, IHL < 5, bad versions, zero-length payloads")
    func bogusHeaders() throws {
        let bed = try TestBed()
        let good = Frames.tcp(Lab.client4, 40000, Lab.vip4, 80, payload: Array(repeating: 1, count: 40))
        var cases: [[UInt8]] = []
        for ihl: UInt8 in [0, 1, 4, 6, 15] { var f = good; f[14] = 0x40 | ihl; cases.append(f) }
        for tot: UInt16 in [0, 19, 20, 39, 40, 1000, 65535] { var f = good; f[16] = UInt8(tot >> 8); f[17] = UInt8(tot & 0xff); cases.append(f) }
        for v: UInt8 in [0x00, 0x65, 0xf5] { var f = good; f[14] = v; cases.append(f) }
        var doff = good; doff[14 + 20 + 12] = 0x10; cases.append(doff)   // TCP data offset 1
        var bigDoff = good; bigDoff[14 + 20 + 12] = 0xf0; cases.append(bigDoff)
        var v6 = Frames.tcp(Lab.client6, 1, Lab.vip6, 443); v6[18] = 0xff; v6[19] = 0xff; cases.append(v6)  // payload length too big
        cases.append(Frames.udp(Lab.client4, 1, Lab.vip4udp, 2, payload: []))
        cases.append(Frames.tcp(Lab.client4, 1, Lab.vip4, 80, flags: []))
        for f in cases {
            let r = try bed.run(f)
            checkOutput(r, input: f)
        }
        try outcomesBalance(bed)
    }

    @Test("random bytes and random mutations never produce malformed output")
    func randomInput() throws {
        let bed = try TestBed()
        var rng = Rand(state: 7)
        let seeds = [Frames.tcp(Lab.client4, 40000, Lab.vip4, 80), Frames.tcp(Lab.client6, 40000, Lab.vip6, 443), Frames.udp(Lab.client4, 1, Lab.vip4udp, 2)]
        for i in 0..<3000 {
            var f: [UInt8]
            if i % 3 == 0 {
                f = rng.bytes(14 + rng.below(120))
                if i % 2 == 0 { f[12] = 0x08; f[13] = 0x00 } else { f[12] = 0x86; f[13] = 0xdd }
            } else {
                f = seeds[i % seeds.count]
                for _ in 0..<(1 + rng.below(4)) { f[14 + rng.below(f.count - 14)] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            checkOutput(try bed.run(f), input: f)
        }
        try outcomesBalance(bed)
    }

    @Test("the counter name table covers every counter id once")
    func counterNames() {
        #expect(CounterNames.all.count == CounterNames.count)
        #expect(CounterNames.all.map(\.id) == Array(0..<CounterNames.count))
        #expect(Set(CounterNames.all.map(\.name)).count == CounterNames.count)
    }
}

@Suite("packed rings (2 bytes a slot) against the Swift table", .serialized)
struct PackedRingTests {
    @Test("rings of 65,537 and 655,373 slots with ids past 8,192: every slot equals the Swift table; the program picks as the model")
    func packedRingParity() throws {
        // 9,000 distinct backends over three VIPs: ids reach the 14th bit.
        func pool(_ base: Int, _ n: Int) -> [BackendConfig] {
            (0..<n).map { i in BackendConfig(address: IPAddress("10.\(32 + (base + i) / 65536).\(((base + i) / 256) % 256).\((base + i) % 256)")!) }
        }
        var c = Lab.config()
        let big = VIPConfig(address: IPAddress("10.100.1.1")!, port: 80, proto: .tcp, ringSize: 655_373, backends: pool(6000, 3000))
        c.vips = [VIPConfig(address: IPAddress("10.100.1.2")!, port: 80, proto: .tcp, ringSize: 65_537, backends: pool(0, 3000)),
                  VIPConfig(address: IPAddress("10.100.1.3")!, port: 80, proto: .tcp, ringSize: 65_537, backends: pool(3000, 3000)),
                  big]
        let bed = try TestBed(config: c)
        #expect(bed.controller.backendIDs.values.max()! > 8192, "ids use the ring's 14 id bits")
        for v in c.vips {
            let state = try #require(bed.controller.vips[v.name])
            let ring = try #require(try RingContents.read(bed.balancer.maps.rings, index: state.index))
            #expect(ring.size == UInt32(v.ringSize))
            try expectRingParity(ring, try #require(state.rebuiltTable()), ids: bed.controller.backendIDs)
        }
        var rng = Rand(state: 7)
        var wrong = 0
        for _ in 0..<2000 {
            let src = IPAddress.v4([198, 18] + rng.bytes(2))
            let sport = UInt16(truncatingIfNeeded: rng.next() | 1024)
            let got = Frames.outerDestination(try bed.run(Frames.tcp(src, sport, big.address, 80)).output)
            if got == nil || got != bed.expectedBackend(FlowTuple(src: src, dst: big.address, sport: sport, dport: 80, proto: 6)) { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) of 2,000 flows to the 655,373 ring left the model")
    }

    @Test("a ring swapped into its slot gets the next tag (mod 4) in its head, slots and the VIP's meta; one rewritten in place keeps its map and tag")
    func tagsAdvance() throws {
        let bed = try TestBed()
        var c = Lab.config()
        let name = c.vips[0].name
        // In place needs a ring of the same size and (second chance on) a previous ring of that size too.
        let sizes = [65537, 65537, 65537, 4099, 4099, 65537, 65537, 65537]
        let swapped = [true, false, false, true, true, true, true, false]
        func current() throws -> (id: UInt32, tag: UInt32) {
            let state = try #require(bed.controller.vips[name])
            let id = try #require(try bed.balancer.maps.rings.lookup(state.index, as: UInt32.self))
            let ring = try #require(try RingContents.read(bed.balancer.maps.rings, index: state.index))
            let meta = try #require(try bed.balancer.maps.vips.lookup(vipKey(state.config), as: xdplb_vip_meta.self))
            #expect(ring.tag == meta.ring_tag && state.ringTag == ring.tag && meta.ring_size == ring.size)
            try expectRingParity(ring, try #require(state.rebuiltTable()), ids: bed.controller.backendIDs)
            return (id, ring.tag)
        }
        var last = try current()
        for (k, size) in sizes.enumerated() {
            c.vips[0].backends[0].weight = UInt32(50 + k)   // another table each time
            c.vips[0].ringSize = size
            try bed.apply(c)
            let now = try current()
            if swapped[k] {
                #expect(now.id != last.id && (last.tag + 1) & 3 == now.tag, "change \(k) (M \(size)): \(last) -> \(now)")
            } else {
                #expect(now.id == last.id && now.tag == last.tag, "change \(k) (M \(size)): \(last) -> \(now)")
            }
            last = now
        }
    }
}
