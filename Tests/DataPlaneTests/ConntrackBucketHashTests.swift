import BPF
import CXdplb
import DataPlane
import Maglev
import NetAddress
import Testing

@Suite("conntrack's bucket hash (ABI 6) and moving older tables into it", .serialized)
struct ConntrackBucketHashTests {
    @Test("the bucket hash is the formula of xdplb_abi.h (answers from an independent implementation)")
    func knownAnswers() {
        // Computed with Python from the formula in bpf/xdplb_abi.h, "Conntrack".
        let cases: [(xdplb_flow_key, UInt32, UInt32)] = [
            (xdplb_flow_key(src: IPAddress("192.0.2.10")!, dst: IPAddress("10.100.0.1")!, sport: 40000, dport: 80, proto: 6), 0, 0x7e42_b4bc),
            (xdplb_flow_key(src: IPAddress("192.0.2.10")!, dst: IPAddress("10.100.0.1")!, sport: 40000, dport: 80, proto: 6), 0x5eed_1234, 0xa03c_3f3d),
            (xdplb_flow_key(src: IPAddress("2001:db8::10")!, dst: IPAddress("fd00:100::1")!, sport: 51000, dport: 443, proto: 6), 0x5eed_1234, 0x5051_212a),
            (xdplb_flow_key(src: IPAddress("198.51.100.7")!, dst: IPAddress("10.100.0.2")!, sport: 5353, dport: 53, proto: 17), 0xffff_ffff, 0x65c7_aa1b),
        ]
        for (key, seed, want) in cases {
            #expect(Conntrack.bucketHash(key, seed: seed) == want)
        }
    }

    @Test("the program writes 300 flows (IPv4 and IPv6 TCP, IPv4 UDP) into the buckets the Swift twin computes")
    func programAgreesWithTwin() throws {
        let bed = try TestBed()
        var keys: [xdplb_flow_key] = []
        for p in UInt16(30000) ..< 30100 {
            _ = try bed.run(Frames.tcp(Lab.client4, p, Lab.vip4, 80))
            keys.append(xdplb_flow_key(src: Lab.client4, dst: Lab.vip4, sport: p, dport: 80, proto: 6))
            _ = try bed.run(Frames.tcp(Lab.client6, p, Lab.vip6, 443))
            keys.append(xdplb_flow_key(src: Lab.client6, dst: Lab.vip6, sport: p, dport: 443, proto: 6))
            _ = try bed.run(Frames.udp(Lab.client4, p, Lab.vip4udp, 53))
            keys.append(xdplb_flow_key(src: Lab.client4, dst: Lab.vip4udp, sport: p, dport: 53, proto: 17))
        }
        let ct = bed.conntrack
        #expect(try ct.entries().count == 300)
        let misplaced = try keys.filter { try ct.lookup($0) == nil }
        #expect(misplaced.isEmpty, "flows not in the bucket the twin computes: \(misplaced.count)")
        // The table spreads them: no bucket of 1,024 got more than 4 of 300.
        #expect(Set(keys.map { ct.bucket(of: $0) }).count > 250)
    }

    /// A used way of an older table.
    func way(_ key: xdplb_flow_key, id: UInt32, gen: UInt32, flags: UInt32, seq: UInt32 = 2) -> xdplb_ct_way {
        var w = xdplb_ct_way()
        w.key = key
        w.entry.backend_id = id
        w.entry.gen = gen
        w.flags = flags
        w.seq = seq
        return w
    }

    @Test("an older table's flows move to their new buckets: entries and flags kept, torn ways skipped, a full bucket's extra flow counted as dropped")
    func rehome() throws {
        let bed = try TestBed()
        let ct = bed.conntrack
        let est = XDPLB_CT_F_USED | XDPLB_CT_F_REF | XDPLB_CT_F_EST
        let embryonic = XDPLB_CT_F_USED | XDPLB_CT_F_REF

        // Five flows that share one bucket of the new table, and 100 that avoid it.
        var byBucket: [UInt32: [xdplb_flow_key]] = [:]
        var crowd: [xdplb_flow_key] = []
        for p in UInt16(20000) ... 60000 {
            let k = xdplb_flow_key(src: Lab.client4, dst: Lab.vip4, sport: p, dport: 80, proto: 6)
            byBucket[ct.bucket(of: k), default: []].append(k)
            if byBucket[ct.bucket(of: k)]!.count == 5 { crowd = byBucket[ct.bucket(of: k)]!; break }
        }
        try #require(crowd.count == 5)
        let crowded = ct.bucket(of: crowd[0])
        var others: [xdplb_flow_key] = []
        for p in UInt16(1000) ..< 2000 where others.count < 100 {
            let k = xdplb_flow_key(src: Lab.client4, dst: Lab.vip4, sport: p, dport: 80, proto: 6)
            if ct.bucket(of: k) != crowded { others.append(k) }
        }
        // A backend the ring does not give the first flow: conntrack must be what sends it there.
        let sport = UInt16(bigEndian: others[0].sport)
        let flow = FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: sport, dport: 80, proto: 6)
        let target = try #require(Lab.backends4.first { $0 != bed.expectedBackend(flow) })
        let id = try #require(bed.controller.backendIDs[target])
        let gen = try #require(try bed.balancer.maps.backends.lookup(id, as: xdplb_backend.self)).gen

        // The older table (256 buckets): flows anywhere, as an older hash placed them.
        let old = try Balancer(lruSize: 1024).maps.conntrack
        var buckets = [xdplb_ct_bucket](repeating: xdplb_ct_bucket(), count: 256)
        for (i, k) in others.enumerated() {
            buckets[i].ways.0 = way(k, id: id, gen: gen, flags: i % 2 == 0 ? est : embryonic)
        }
        // The crowd in bucket order 200...204, so the first four come first.
        for (j, k) in crowd.enumerated() { buckets[200 + j].ways.1 = way(k, id: id, gen: gen, flags: est) }
        // A way being written (odd seq) is not a flow to move.
        let torn = xdplb_flow_key(src: Lab.client6, dst: Lab.vip6, sport: 7, dport: 443, proto: 6)
        buckets[250].ways.3 = way(torn, id: id, gen: gen, flags: est, seq: 5)
        try old.updateBatch(keys: (0 ..< UInt32(256)).map { $0 }, values: buckets)

        let moved = try PinMigration.rehomeConntrack(from: old, into: ct)
        #expect(moved == PinMigration.Rehomed(flows: 104, dropped: 1))
        #expect(try ct.entries().count == 104)
        for (i, k) in others.enumerated() {
            let b = try #require(try ct.map.lookup(ct.bucket(of: k), as: xdplb_ct_bucket.self))
            let w = Conntrack.ways(of: b).first { $0.flags & XDPLB_CT_F_USED != 0 && ABI.bytesEqual($0.key, k) }
            #expect(w?.entry.backend_id == id && w?.entry.gen == gen && w?.flags == (i % 2 == 0 ? est : embryonic) && w?.seq == 0)
        }
        #expect(try crowd.prefix(4).allSatisfy { try ct.lookup($0) != nil })
        #expect(try ct.lookup(crowd[4]) == nil, "the fifth flow of a full bucket is dropped")
        #expect(try ct.lookup(torn) == nil)

        // The program finds a moved flow: a conntrack hit to the entry's backend.
        let before = try bed.counters()
        let r = try bed.run(Frames.tcp(Lab.client4, sport, Lab.vip4, 80, flags: .ack))
        #expect(Frames.outerDestination(r.output) == target)
        #expect(delta(before, try bed.counters())["ct_hit"] == 1)
    }
}
