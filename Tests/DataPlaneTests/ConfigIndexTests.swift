import Config
@testable import DataPlane
import NetAddress
import Testing

/// A config index derived from the last one (an edit of a few VIPs) must be
/// the index a fresh build of the same VIPs gives, field for field.
@Suite("config index: derived from the last one equals built anew")
struct ConfigIndexTests {
    /// Backend `i` of a shared pool of 300 (v4 and v6 mixed).
    static func pool(_ i: Int) -> IPAddress {
        i % 3 == 0 ? IPAddress("fd00::b:\(String(i, radix: 16))")! : IPAddress("10.9.\(i / 200).\(i % 200 + 1)")!
    }

    /// `n` distinct pool backends with random weights.
    static func backends(_ n: Int, _ rng: inout Rand) -> [BackendConfig] {
        var picked = Set<Int>()
        while picked.count < n { picked.insert(Int.random(in: 0..<300, using: &rng)) }
        return picked.sorted().map { BackendConfig(address: pool($0), weight: UInt32.random(in: 1...200, using: &rng)) }
    }

    static func config(_ vips: Int, _ rng: inout Rand) -> [VIPConfig] {
        (0..<vips).map { i in
            VIPConfig(address: IPAddress("192.0.2.\(i + 1)")!, port: UInt16(80 + i % 3), proto: i % 2 == 0 ? .tcp : .udp,
                      backends: backends(Int.random(in: 1...12, using: &rng), &rng))
        }
    }

    /// One random edit of VIP `i`: add, remove, reweigh, replace or readdress.
    static func edit(_ v: inout VIPConfig, _ rng: inout Rand) {
        switch Int.random(in: 0..<5, using: &rng) {
        case 0:
            let have = Set(v.backends.map(\.address))
            if let a = (0..<300).map(pool).shuffled(using: &rng).first(where: { !have.contains($0) }) {
                v.backends.append(BackendConfig(address: a, weight: 7))
            }
        case 1: if v.backends.count > 1 { v.backends.remove(at: Int.random(in: 0..<v.backends.count, using: &rng)) }
        case 2: v.backends[Int.random(in: 0..<v.backends.count, using: &rng)].weight = UInt32.random(in: 1...500, using: &rng)
        case 3: v.backends = backends(Int.random(in: 1...12, using: &rng), &rng)
        default: v.port = v.port &+ 1000
        }
    }

    static func expectSame(_ a: ConfigIndex, _ b: ConfigIndex) {
        #expect(a.vips == b.vips)
        #expect(a.names == b.names)
        #expect(a.weights == b.weights)
        #expect(a.identities == b.identities)
        #expect(a.vipsOf == b.vipsOf)
        #expect(a.nameSet == b.nameSet)
        #expect(a.keySet == b.keySet)
    }

    @Test("200 rounds of edits to 1–8 VIPs of 40: every derived index equals a fresh one")
    func derivedEqualsFresh() {
        var rng = Rand(state: 0x1dec)
        var vips = Self.config(40, &rng)
        var index = ConfigIndex(vips)
        for _ in 0..<200 {
            let old = index
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                Self.edit(&vips[Int.random(in: 0..<vips.count, using: &rng)], &rng)
            }
            index = ConfigIndex.make(vips, from: old)
            let fresh = ConfigIndex(vips)
            Self.expectSame(index, fresh)
            if index !== old {
                #expect(index.base == ObjectIdentifier(old), "a few edits derive from the last index")
                // Every backend whose weight or VIP list changed is in `touched`.
                for a in Set(old.weights.keys).union(fresh.weights.keys)
                where old.weights[a] != fresh.weights[a] || old.vipsOf[a] != fresh.vipsOf[a] {
                    #expect(index.touched.contains(a), "\(a) changed but is not in touched")
                }
            }
        }
    }

    @Test("the same VIPs give the same index; more than 64 edits or another VIP count build anew")
    func sameOrFresh() {
        var rng = Rand(state: 7)
        let vips = Self.config(100, &rng)
        let index = ConfigIndex(vips)
        #expect(ConfigIndex.make(vips, from: index) === index)
        var many = vips
        for i in 0..<(ConfigIndex.incrementalLimit + 1) { many[i].backends[0].weight += 1 }
        let rebuilt = ConfigIndex.make(many, from: index)
        #expect(rebuilt.base == nil)
        Self.expectSame(rebuilt, ConfigIndex(many))
        let shorter = ConfigIndex.make(Array(vips.dropLast()), from: index)
        #expect(shorter.base == nil)
        Self.expectSame(shorter, ConfigIndex(Array(vips.dropLast())))
        #expect(ConfigIndex.make(vips, from: nil).base == nil)
    }
}
