import BPF
import CXdplb
import DataPlane
import NetAddress
import Packets
import Testing

/// Floods against conntrack through the real program (bpf/xdplb_abi.h,
/// "Floods"): a table of established flows, then many times its size in
/// one-packet flows from spoofed sources (198.18.0.0/15, never sent anywhere:
/// BPF_PROG_TEST_RUN only).
@Suite("conntrack under a flood: SYNs never evict an established flow", .serialized)
struct ConntrackFloodTests {
    /// The i-th spoofed source (distinct for i < 2^17).
    static func spoofed(_ i: Int) -> IPAddress { IPAddress("198.\(18 + (i >> 16) & 1).\((i >> 8) & 255).\(i & 255)")! }

    /// A client flow to vip4:80 and its conntrack key.
    struct Flow {
        let src: IPAddress
        let sport: UInt16
        var key: xdplb_flow_key { ctKey(src, sport, Lab.vip4, 80) }
    }

    /// Established flows to vip4:80, exactly `perBucket` in each bucket, as
    /// conntrack holds them after their second packet, written to the map.
    static func establish(_ bed: TestBed, perBucket: Int) throws -> [Flow] {
        let ct = bed.conntrack
        var image = ConntrackImage(ct)
        let backend = try #require(bed.controller.backendIDs[Lab.backends4[0]])
        let gen = try #require(try bed.balancer.maps.backends.lookup(backend, as: xdplb_backend.self)).gen
        var entry = xdplb_ct_entry()
        entry.backend_id = backend
        entry.gen = gen
        var count = [Int](repeating: 0, count: ct.buckets)
        var keys: [Flow] = []
        var filled = 0
        var i = 0
        while filled < ct.buckets, i < 1 << 20 {
            let flow = Flow(src: IPAddress("192.0.\(2 + (i >> 16) & 7).\((i >> 8) & 255)")!, sport: UInt16(1024 + i & 255))
            i += 1
            let b = Int(ct.bucket(of: flow.key))
            guard count[b] < perBucket else { continue }
            image.insert(flow.key, entry)
            keys.append(flow)
            count[b] += 1
            if count[b] == perBucket { filled += 1 }
        }
        try #require(filled == ct.buckets, "every bucket got \(perBucket) flows")
        try image.write()
        return keys
    }

    /// Every bucket of the table, as bytes.
    static func buckets(_ ct: Conntrack) throws -> [[UInt8]] {
        try (0..<UInt32(ct.buckets)).map { i in
            let b = try #require(try ct.map.lookup(i, as: xdplb_ct_bucket.self))
            return withUnsafeBytes(of: b) { Array($0) }
        }
    }

    /// One ACK per flow; the number that hit conntrack.
    static func hits(_ bed: TestBed, _ flows: [Flow]) throws -> UInt64 {
        let before = try bed.counters()
        for f in flows { _ = try bed.run(Frames.tcp(f.src, f.sport, Lab.vip4, 80, flags: .ack)) }
        return delta(before, try bed.counters())["ct_hit"] ?? 0
    }

    /// `n` one-packet flows from distinct spoofed sources; checks that every one was forwarded.
    static func flood(_ bed: TestBed, _ n: Int, flags: TCPFlags) throws {
        let before = try bed.counters()
        for i in 0..<n { _ = try bed.run(Frames.tcp(spoofed(i), 40000, Lab.vip4, 80, flags: flags)) }
        let d = delta(before, try bed.counters())
        #expect(d["new_flow"] == UInt64(n) && d["fwd_tx"] == UInt64(n), "\(d)")
    }

    @Test("a full table of established flows, then a SYN flood of 4× its size: every bucket byte-identical, every flow hits")
    func synFloodOnFullTable() throws {
        let bed = try TestBed()
        let ct = bed.conntrack
        let keys = try Self.establish(bed, perBucket: Conntrack.ways)
        #expect(keys.count == ct.buckets * Conntrack.ways)
        let before = try Self.buckets(ct)
        try Self.flood(bed, 4 * keys.count, flags: .syn)
        #expect(try Self.buckets(ct) == before, "no SYN was written over an established flow")
        #expect(try Self.hits(bed, keys) == UInt64(keys.count))
    }

    @Test("a half-full table: the SYN flood takes only the free ways, every established flow stays and hits")
    func synFloodOnHalfTable() throws {
        let bed = try TestBed()
        let ct = bed.conntrack
        let keys = try Self.establish(bed, perBucket: 2)
        try Self.flood(bed, 4 * ct.buckets * Conntrack.ways, flags: .syn)
        var embryonic = 0
        for i in 0..<UInt32(ct.buckets) {
            let b = try #require(try ct.map.lookup(i, as: xdplb_ct_bucket.self))
            embryonic += Conntrack.ways(of: b).filter { $0.flags & XDPLB_CT_F_USED != 0 && $0.flags & XDPLB_CT_F_EST == 0 }.count
        }
        #expect(embryonic > ct.buckets, "the flood's SYNs were written into the free ways (\(embryonic))")
        #expect(embryonic <= 2 * ct.buckets)
        // What `xdplb stats` and xdplb_conntrack_ways report: every bucket read, and a sample.
        let ways = ct.buckets * Conntrack.ways
        #expect(try ct.occupancy() == ConntrackOccupancy(ways: ways, established: keys.count, embryonic: embryonic,
                                                          free: ways - keys.count - embryonic, sampledBuckets: ct.buckets))
        let sampled = try ct.occupancy(sampleBuckets: 256)
        #expect(sampled.sampledBuckets == 256 && sampled.established == keys.count,
                "2 established flows in every bucket: the estimate from a quarter of them is exact")
        #expect(try keys.allSatisfy { try ct.lookup($0.key) != nil })
        #expect(try Self.hits(bed, keys) == UInt64(keys.count))
    }

    @Test("an ACK flood of one-packet flows takes at most one established way per bucket, and the flood's flows replace each other")
    func ackFloodTakesOneWayPerBucket() throws {
        let bed = try TestBed()
        let ct = bed.conntrack
        let keys = try Self.establish(bed, perBucket: Conntrack.ways)
        try Self.flood(bed, 2 * keys.count, flags: .ack)
        var lostPerBucket = [Int](repeating: 0, count: ct.buckets)
        var survivors: [Flow] = []
        for f in keys {
            if try ct.lookup(f.key) != nil { survivors.append(f) } else { lostPerBucket[Int(ct.bucket(of: f.key))] += 1 }
        }
        #expect(lostPerBucket.max() ?? 0 <= 1, "at most one established flow of a bucket is gone")
        #expect(survivors.count < keys.count, "the flood did take idle ways of full buckets")
        #expect(survivors.count >= keys.count * 3 / 4)
        #expect(try Self.hits(bed, survivors) == UInt64(survivors.count))
    }
}
