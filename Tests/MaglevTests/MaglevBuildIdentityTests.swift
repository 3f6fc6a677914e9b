import Maglev
import Testing

/// The table build must give exactly the slots of the old build
/// (``LegacyMaglevBuild``) for every input: nodes running different versions
/// must agree on every table.
@Suite("MaglevTable build identity")
struct MaglevBuildIdentityTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let n: Int, family: IdentityFamily, weights: WeightMode, size: Int
        var testDescription: String { "N=\(n) \(family) \(weights) M=\(size)" }
    }

    static let backendCounts = [1, 2, 10, 100, 1000, 4095]

    /// Every count with both small sizes, both weight modes and all identity
    /// families; every count at M = 65537 with both weight modes; two cases at
    /// the largest size (debug builds are slow there).
    static let cases: [Case] = {
        var out: [Case] = []
        for (k, n) in backendCounts.enumerated() {
            for size in [3, 251] {
                for w in WeightMode.allCases {
                    for f in IdentityFamily.allCases { out.append(Case(n: n, family: f, weights: w, size: size)) }
                }
            }
            for w in WeightMode.allCases {
                let f = IdentityFamily.allCases[(k + (w == .equal ? 0 : 1)) % IdentityFamily.allCases.count]
                out.append(Case(n: n, family: f, weights: w, size: 65537))
            }
        }
        out.append(Case(n: 100, family: .v4, weights: .equal, size: 655_373))
        out.append(Case(n: 1000, family: .v6, weights: .mixed, size: 655_373))
        return out
    }()

    @Test("slots equal the old build", arguments: cases)
    func matchesLegacy(_ c: Case) throws {
        let input = generatedBackends(c.n, family: c.family, weights: c.weights)
        let t = try MaglevTable(backends: input, size: c.size)
        let old = LegacyMaglevBuild.build(input, size: c.size)
        #expect(t.backends == old.backends)
        #expect(t.slots == old.slots)
    }

    @Test("random weights (seeded) equal the old build")
    func randomWeights() throws {
        var rng = SplitMix64(seed: 0x4d61_676c)
        let shapes: [(n: Int, weights: ClosedRange<UInt32>, size: Int)] = [
            (7, 1 ... 3, 65537), (50, 1 ... 1000, 65537), (300, 0 ... 1000, 4099),
            (4095, 1 ... 2, 65537), (33, 999 ... 1000, 1009), (5, 1 ... 1000, 11),
        ]
        for s in shapes {
            for family in IdentityFamily.allCases {
                let input = (0 ..< s.n).map { i in
                    MaglevBackend(identity: generatedIdentity(i, family: family),
                                  weight: UInt32.random(in: s.weights, using: &rng))
                }.shuffled(using: &rng)
                let t = try MaglevTable(backends: input, size: s.size)
                #expect(t.slots == LegacyMaglevBuild.build(input, size: s.size).slots,
                        "N=\(s.n) weights \(s.weights) \(family) M=\(s.size)")
            }
        }
    }

    @Test("one heavy backend among many light ones (rounds ≈ M) equals the old build")
    func heavyAndLight() throws {
        for (n, size) in [(2, 65537), (40, 65537), (4095, 65537), (3, 251)] {
            let input = (0 ..< n).map { i in
                MaglevBackend(identity: generatedIdentity(i, family: .v4), weight: i == n / 2 ? 1000 : 1)
            }
            let t = try MaglevTable(backends: input, size: size)
            #expect(t.slots == LegacyMaglevBuild.build(input, size: size).slots, "N=\(n) M=\(size)")
        }
    }

    @Test("identities that sort by bytes, not by Unicode rules, equal the old build")
    func byteOrder() throws {
        // Prefixes, a NUL byte, non-ASCII text and identities longer than 16 bytes.
        let ids = ["a", "a\u{0}", "ab", "B", "é", "\u{212A}", "zzzzzzzzzzzzzzzz", "zzzzzzzzzzzzzzzzz",
                   "zzzzzzzzzzzzzzzza", "zzzzzzzzzzzzzzzzb", "2001:db8:ffff:ffff:ffff:ffff:ffff:fff1",
                   "2001:db8:ffff:ffff:ffff:ffff:ffff:fff0", "10.0.0.1", "10.0.0.10", "10.0.0.1 "]
        let input = ids.enumerated().map { MaglevBackend(identity: $1, weight: UInt32($0 % 4 + 1)) }
        for size in [3, 251, 65537] {
            let t = try MaglevTable(backends: input.reversed(), size: size)
            let old = LegacyMaglevBuild.build(input, size: size)
            #expect(t.backends.map(\.identity).map { Array($0.utf8) } == old.backends.map(\.identity).map { Array($0.utf8) })
            #expect(t.slots == old.slots, "M=\(size)")
        }
    }

    /// The first problem in byte order is reported, as before; canonically
    /// equivalent identities (String ==) count as duplicates, as before.
    @Test("errors are those of the old build")
    func errors() {
        let w = MaglevTable.maxWeight
        let cases: [([MaglevBackend], MaglevError)] = [
            ([.init(identity: "b"), .init(identity: "a", weight: w + 1), .init(identity: "a")],
             .weightOutOfRange(identity: "a", weight: w + 1)),
            ([.init(identity: "b"), .init(identity: "a"), .init(identity: "a", weight: w + 1)],
             .duplicateBackend(identity: "a")),
            ([.init(identity: "c", weight: w + 1), .init(identity: ""), .init(identity: "a")], .emptyIdentity),
            ([.init(identity: "e\u{301}"), .init(identity: "é", weight: 0)], .duplicateBackend(identity: "é")),
            ([.init(identity: "K"), .init(identity: "\u{212A}")], .duplicateBackend(identity: "K")),
            ([.init(identity: "z", weight: w + 1), .init(identity: "y", weight: w + 2)],
             .weightOutOfRange(identity: "y", weight: w + 2)),
        ]
        for (input, want) in cases {
            #expect(throws: want) { try MaglevTable(backends: input, size: 7) }
        }
        #expect(throws: MaglevError.ringSizeNotPrime(size: 9, suggestion: 11)) {
            try MaglevTable(backends: [.init(identity: ""), .init(identity: "")], size: 9)
        }
    }

    /// 0.9's digest (FNV-1a 64 over M as 8 little-endian bytes, then every
    /// slot's identity bytes and a 0), kept here to compare whole tables with
    /// the values that build printed.
    static func digest09(_ t: MaglevTable) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var m = UInt64(t.size)
        for _ in 0 ..< 8 { h = (h ^ (m & 0xff)) &* 0x100_0000_01b3; m >>= 8 }
        let ids = t.backends.map { Array($0.identity.utf8) }
        for s in t.slotIndexes {
            if s != MaglevTable.emptySlot { for b in ids[Int(s)] { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 } }
            h = h &* 0x100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Printed (as 0.9's digest) by the build before the compact storage (the
    /// code frozen in ``LegacyMaglevBuild``); they must never change.
    @Test("larger tables are those of the old build (0.9's digests)")
    func pinnedDigests() throws {
        let pins: [(Int, IdentityFamily, WeightMode, Int, String)] = [
            (1000, .v4, .equal, 65537, "c3d6f42af2c888c6"),
            (100, .v6, .mixed, 655_373, "158a573bda7352a2"),
            (4095, .mixed, .mixed, 65537, "0268df6b9120b5ce"),
            (10, .mixed, .equal, 251, "ef650152a12039f4"),
            (2, .v4, .mixed, 3, "f284a9c874379769"),
        ]
        for (n, family, weights, size, want) in pins {
            let t = try MaglevTable(backends: generatedBackends(n, family: family, weights: weights), size: size)
            #expect(Self.digest09(t) == want, "N=\(n) \(family) \(weights) M=\(size)")
        }
    }
}
