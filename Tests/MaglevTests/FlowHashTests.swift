import Maglev
import NetAddress
import Testing

/// Known answers for the flow hash.
///
/// Every expected value below was printed by bpf/flow_hash.h itself: a small C
/// driver (`#include "flow_hash.h"`, addresses via inet_pton into the `__u32[4]`
/// key words, ports memcpy'd from the wire bytes [sport_hi, sport_lo, dport_hi,
/// dport_lo]) compiled with `gcc -O2` (Debian 12.2.0) on x86_64 and run once.
/// The test itself needs no C compiler. If these fail, the Swift twin and the
/// C hash disagree: fix whichever changed, never the numbers.
@Suite("FlowHash")
struct FlowHashTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let src: String, dst: String
        let sport: UInt16, dport: UInt16, proto: UInt8, seed: UInt32
        let fiveTuple: UInt32, sourceOnly: UInt32, slot65537: Int
        var testDescription: String { "\(src):\(sport) -> \(dst):\(dport)/\(proto) seed \(seed)" }
    }

    // Printed by the C driver (see above).
    static let vectors: [Vector] = [
        .init(src: "192.0.2.1", dst: "10.100.0.1", sport: 40000, dport: 80, proto: 6, seed: 0x5eed,
              fiveTuple: 0xdcbc_a1f5, sourceOnly: 0x77ad_af9c, slot65537: 50490),
        .init(src: "192.0.2.1", dst: "10.100.0.1", sport: 40000, dport: 80, proto: 17, seed: 0x5eed,
              fiveTuple: 0x79b7_78f6, sourceOnly: 0x77ad_af9c, slot65537: 65344),
        .init(src: "192.0.2.1", dst: "10.100.0.1", sport: 40000, dport: 80, proto: 6, seed: 0,
              fiveTuple: 0xd720_8062, sourceOnly: 0x6466_fd5a, slot65537: 43331),
        .init(src: "198.51.100.7", dst: "10.100.0.1", sport: 1, dport: 65535, proto: 6, seed: 0xdead_beef,
              fiveTuple: 0x3ce3_2357, sourceOnly: 0xcad1_42bc, slot65537: 58997),
        .init(src: "2001:db8::1", dst: "fd00:100::1", sport: 40000, dport: 443, proto: 6, seed: 0x5eed,
              fiveTuple: 0x7528_e22b, sourceOnly: 0xd0ca_190d, slot65537: 27907),
        .init(src: "2001:db8:ffff:1234:5678:9abc:def0:1", dst: "fd00:100::1", sport: 55555, dport: 53,
              proto: 17, seed: 0xffff_ffff,
              fiveTuple: 0x1b9a_1470, sourceOnly: 0x0b24_e934, slot65537: 63703),
        .init(src: "::ffff:192.0.2.1", dst: "::1", sport: 0, dport: 0, proto: 58, seed: 0,
              fiveTuple: 0xdec3_c9de, sourceOnly: 0x6b71_3f1b, slot65537: 60188),
    ]

    static func flow(_ v: Vector) -> FlowTuple {
        FlowTuple(src: IPAddress(v.src)!, dst: IPAddress(v.dst)!, sport: v.sport, dport: v.dport, proto: v.proto)
    }

    @Test("5-tuple hash matches the C known answers", arguments: vectors)
    func fiveTupleKnownAnswer(_ v: Vector) {
        let h = FlowHash.hash(Self.flow(v), sourceOnly: false, seed: v.seed)
        #expect(h == v.fiveTuple)
        #expect(FlowHash.ringSlot(hash: h, ringSize: 65537) == v.slot65537)
    }

    @Test("source-only hash matches the C known answers", arguments: vectors)
    func sourceOnlyKnownAnswer(_ v: Vector) {
        #expect(FlowHash.hash(Self.flow(v), sourceOnly: true, seed: v.seed) == v.sourceOnly)
    }

    @Test("word steps match the C helpers")
    func wordSteps() {
        // rotl32(0x80000001,1), hash_word(0x1234abcd,0), hash_final(0,1) from the same driver.
        #expect(FlowHash.rotl32(0x8000_0001, 1) == 0x0000_0003)
        #expect(FlowHash.hashWord(0x1234_abcd, 0) == 0xd1b4_96c2)
        #expect(FlowHash.finalize(0, wordCount: 1) == 0x249c_b285)
        // Wire bytes 01 bb 00 50 loaded little-endian.
        #expect(FlowHash.portsWord(sport: 443, dport: 80) == 0x5000_bb01)
        #expect(FlowHash.word([0x0a, 0x00, 0x04, 0x02], at: 0) == 0x0204_000a)
    }

    /// 10,000 pseudo-random flows from SplitMix64(42), generated identically by
    /// the C driver (see the type comment): v6 = bit 0, source-only = bit 1,
    /// sport = bits 16..31, dport = bits 32..47, proto = bits 48..55,
    /// seed = u32(r >> 8) ^ u32(r >> 40); address bytes are the little-endian
    /// bytes of the next two draws (src, dst), repeated for the second half of
    /// an IPv6 address. acc = acc × 31 + hash (mod 2^64).
    @Test("10,000 random flows agree with the C hash (aggregate)")
    func randomFlowsAggregate() {
        var rng = SplitMix64(seed: 42)
        var acc: UInt64 = 0
        var first: [UInt32] = []
        for _ in 0 ..< 10_000 {
            let r = rng.next()
            let v6 = r & 1 == 1
            let sourceOnly = (r >> 1) & 1 == 1
            let sport = UInt16(truncatingIfNeeded: r >> 16)
            let dport = UInt16(truncatingIfNeeded: r >> 32)
            let proto = UInt8(truncatingIfNeeded: r >> 48)
            let seed = UInt32(truncatingIfNeeded: r >> 8) ^ UInt32(truncatingIfNeeded: r >> 40)
            let nb = v6 ? 16 : 4
            var s = [UInt8](repeating: 0, count: nb)
            var d = [UInt8](repeating: 0, count: nb)
            for k in stride(from: 0, to: nb, by: 8) {
                let a = rng.next(), b = rng.next()
                for j in 0 ..< 8 where k + j < nb {
                    s[k + j] = UInt8(truncatingIfNeeded: a >> (8 * UInt64(j)))
                    d[k + j] = UInt8(truncatingIfNeeded: b >> (8 * UInt64(j)))
                }
            }
            let flow = FlowTuple(src: v6 ? .v6(s) : .v4(s), dst: v6 ? .v6(d) : .v4(d),
                                 sport: sport, dport: dport, proto: proto)
            let h = FlowHash.hash(flow, sourceOnly: sourceOnly, seed: seed)
            if first.count < 3 { first.append(h) }
            acc = acc &* 31 &+ UInt64(h)
        }
        #expect(first == [0x5e5f_8114, 0xca2e_ab0d, 0x435d_9d0a])
        #expect(acc == 0x2cd7_b726_199c_8333)
    }

    @Test("source-only ignores ports, destination and protocol")
    func sourceOnlyIgnoresRest() {
        for src in ["192.0.2.1", "2001:db8::7"] {
            let a = FlowTuple(src: IPAddress(src)!, dst: IPAddress(src.contains(":") ? "fd00::1" : "10.0.0.1")!,
                              sport: 1234, dport: 80, proto: 6)
            var b = a
            b.dst = IPAddress(src.contains(":") ? "fd00::2" : "10.9.9.9")!
            b.sport = 4321
            b.dport = 443
            b.proto = 17
            #expect(FlowHash.hash(a, sourceOnly: true, seed: 7) == FlowHash.hash(b, sourceOnly: true, seed: 7))
            #expect(FlowHash.hash(a, sourceOnly: false, seed: 7) != FlowHash.hash(b, sourceOnly: false, seed: 7))
            var c = a
            c.src = IPAddress(src.contains(":") ? "2001:db8::8" : "192.0.2.2")!
            #expect(FlowHash.hash(a, sourceOnly: true, seed: 7) != FlowHash.hash(c, sourceOnly: true, seed: 7))
        }
    }

    @Test("5-tuple hash depends on each field and the seed")
    func fiveTupleSensitivity() {
        let a = FlowTuple(src: IPAddress("192.0.2.1")!, dst: IPAddress("10.100.0.1")!, sport: 40000, dport: 80, proto: 6)
        let h = FlowHash.hash(a, sourceOnly: false, seed: 0x5eed)
        var swapped = a
        swapped.sport = 80
        swapped.dport = 40000
        #expect(FlowHash.hash(swapped, sourceOnly: false, seed: 0x5eed) != h)
        #expect(FlowHash.hash(a, sourceOnly: false, seed: 0x5eee) != h)
    }

    @Test("ring slot is hash mod M")
    func ringSlot() {
        #expect(FlowHash.ringSlot(hash: 0, ringSize: 65537) == 0)
        #expect(FlowHash.ringSlot(hash: 65537, ringSize: 65537) == 0)
        #expect(FlowHash.ringSlot(hash: UInt32.max, ringSize: 65537) == Int(UInt32.max % 65537))
        #expect(FlowHash.ringSlot(hash: 12, ringSize: 7) == 5)
    }
}
