import Foundation

/// The slots of a table whose backend is down, handed over to backends that
/// are up, with the owner each had in the table of every configured backend
/// (the base). What the base was can be put back from this alone.
public struct MaglevOverlay: Sendable, Equatable {
    /// The slots handed over, ascending.
    public private(set) var slots: [UInt32] = []
    /// For each of ``slots``, its owner in the base: an index into ``MaglevTable/backends``.
    public private(set) var owners: [UInt16] = []

    /// No slot handed over: the table is its base.
    public var isEmpty: Bool { slots.isEmpty }

    /// An overlay that hands over nothing.
    public init() {}

    mutating func append(slot: Int, owner: UInt16) {
        slots.append(UInt32(truncatingIfNeeded: slot))
        owners.append(owner)
    }
}

/// Down backends: Maglev is not built again.
///
/// A health change does not rebuild the table. The table is built once from
/// every configured backend (weight > 0), the base. Each slot whose owner is
/// down goes to the up backend with the highest rendezvous score for that
/// slot; every other slot keeps its owner. So:
/// - flows on up backends never move when another backend goes down or
///   comes back (a Maglev rebuild moves a few of those too);
/// - a down backend's ~M/N slots spread evenly over the up backends (in
///   proportion to weight), each slot independently of the others;
/// - a second backend going down moves only the slots that backend holds,
///   and one coming back takes back every slot it had in the base, plus its
///   rendezvous share of the slots of backends still down;
/// - the result depends only on the configured backends, the down set and
///   M, never on the order of events, so every node that agrees on the down
///   set has the same table (and digest).
///
/// Cost: O(M) plus O(N) per slot handed over (~0.2 ms for one of 100
/// backends at M = 65,537), against ~1 ms for a build: a backend in 100 of
/// 4,096 VIPs going down reaches the data plane in 37-38 ms instead of 73-98
/// (BENCHMARKS.md).
///
/// The rendezvous score of backend b for slot s: with h_s =
/// `mix64(s·0x9E3779B97F4A7C15)`, `k1_b = mix64(h1 ^ h2)` and `k2_b =
/// mix64(h2 + 0x9E3779B97F4A7C15)` of b's identity hashes
/// (``identityHashes(_:)``), the 128-bit product `(k1_b ^ h_s) · k2_b` with
/// its two halves xored; fixed forever like the hashes. With equal weights
/// among the up backends the highest score wins (ties: the lower index).
/// Otherwise the score, as u = (score >> 11 + ½)/2⁵³ in (0, 1), is weighted
/// as `w / −ln(u)` (weighted rendezvous hashing: each backend wins a share
/// w/Σw) and the highest wins (ties: the lower index); only the best score
/// of each weight is weighed, so a slot costs one log per distinct weight.
extension MaglevTable {
    /// The table of `backends` with those whose identity is in `down` out of
    /// the ring: the table of every backend (with weight > 0), then the slots of
    /// the down ones handed over to the others (see ``MaglevOverlay``). Down
    /// backends stay in ``backends``, with no slot. With every backend down the
    /// table is empty (as with no backends).
    /// - Throws: what ``init(backends:size:)`` throws for `backends`.
    public init(backends: [MaglevBackend], size: Int, down: Set<String>) throws(MaglevError) {
        let base = try MaglevTable(backends: backends, size: size)
        self = base.withDown(down)
    }

    /// A table from slots read back from a data plane ring: `backends` must be
    /// the ``backends`` of the table the ring was written from (sorted, weight > 0)
    /// and `overlay` its ``overlay``. Nil when a slot or an overlay entry
    /// names no backend of the list.
    package init?(ringSlots slotIndexes: [UInt16], size: Int, backends: [MaglevBackend], overlay: MaglevOverlay) {
        guard slotIndexes.count == size, size > 0, !backends.isEmpty else { return nil }
        let n = backends.count
        guard Int(slotIndexes.max()!) < n, Int(overlay.owners.max() ?? 0) < n,
              !overlay.slots.contains(where: { Int($0) >= size }) else { return nil }
        self.init(size: size, backends: backends, slotIndexes: slotIndexes, overlay: overlay)
    }

    /// This table with the backends named in `down` (identities; others are
    /// ignored) out of the ring: its base (``overlay`` put back), then every
    /// slot whose base owner is down handed over to the up backend with the
    /// highest rendezvous score. O(M) plus O(N) per slot handed over.
    public func withDown(_ down: Set<String>) -> MaglevTable {
        guard !backends.isEmpty, !(down.isEmpty && overlay.isEmpty) else { return self }
        let isDown = backends.map { down.contains($0.identity) }
        let upCount = isDown.lazy.filter { !$0 }.count
        if upCount == 0 { return try! MaglevTable(backends: [], size: size) }
        if upCount == backends.count && overlay.isEmpty { return self }
        var slots = slotIndexes
        for (s, o) in zip(overlay.slots, overlay.owners) { slots[Int(s)] = o }
        var handed = MaglevOverlay()
        if upCount < backends.count {
            let pick = Rendezvous(backends, isDown: isDown)
            slots.withUnsafeMutableBufferPointer { table in
                for s in 0 ..< table.count where isDown[Int(table[s])] {
                    handed.append(slot: s, owner: table[s])
                    table[s] = pick.owner(of: s)
                }
            }
        }
        return MaglevTable(size: size, backends: backends, slotIndexes: slots, overlay: handed)
    }

    /// The rendezvous pick among a table's up backends.
    struct Rendezvous {
        /// k1_b, k2_b and the index of each up backend, in ``MaglevTable/backends`` order.
        let k1: [UInt64]
        let k2: [UInt64]
        let indexes: [UInt16]
        /// With weights that differ: each up backend's weight group, and the
        /// groups' weights (nil: all equal).
        let group: [Int]?
        let groupWeights: [Double]

        init(_ backends: [MaglevBackend], isDown: [Bool]) {
            var k1: [UInt64] = [], k2: [UInt64] = [], indexes: [UInt16] = [], w: [UInt32] = []
            for (i, b) in backends.enumerated() where !isDown[i] {
                let h = Array(b.identity.utf8).withUnsafeBufferPointer { MaglevTable.identityHashes($0) }
                k1.append(MaglevTable.mix64(h.h1 ^ h.h2))
                k2.append(MaglevTable.mix64(h.h2 &+ 0x9E37_79B9_7F4A_7C15))
                indexes.append(UInt16(truncatingIfNeeded: i))
                w.append(b.weight)
            }
            self.k1 = k1
            self.k2 = k2
            self.indexes = indexes
            if w.allSatisfy({ $0 == w[0] }) {
                group = nil
                groupWeights = []
            } else {
                let distinct = Array(Set(w)).sorted()
                let position = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, $0) })
                group = w.map { position[$0]! }
                groupWeights = distinct.map(Double.init)
            }
        }

        /// The slot's own hash h_s: ``mix64(_:)`` of s·0x9E3779B97F4A7C15.
        @inline(__always)
        static func slotHash(_ s: Int) -> UInt64 {
            MaglevTable.mix64(UInt64(truncatingIfNeeded: s) &* 0x9E37_79B9_7F4A_7C15)
        }

        /// The score of backend (k1, k2) for a slot of hash `hs`: the 128-bit
        /// product of k1 ^ hs and k2, its halves xored (one multiply).
        @inline(__always)
        static func score(_ k1: UInt64, _ k2: UInt64, _ hs: UInt64) -> UInt64 {
            let p = (k1 ^ hs).multipliedFullWidth(by: k2)
            return p.high ^ p.low
        }

        /// The up backend (its index into the table's backends) that takes slot `s`.
        func owner(of s: Int) -> UInt16 {
            let hs = Self.slotHash(s)
            var best = 0
            k1.withUnsafeBufferPointer { k1 in
                k2.withUnsafeBufferPointer { k2 in
                    if let group {
                        // The best of each weight group is its highest score (−ln u falls
                        // as u grows); only those are weighed, with one log each.
                        var top = [UInt64](repeating: 0, count: groupWeights.count)
                        var at = [Int](repeating: -1, count: groupWeights.count)
                        for j in k1.indices {
                            let v = Self.score(k1[j], k2[j], hs), g = group[j]
                            if at[g] < 0 || v > top[g] { top[g] = v; at[g] = j }
                        }
                        var bestValue = -Double.infinity
                        best = -1
                        for g in top.indices where at[g] >= 0 {
                            let u = (Double(top[g] >> 11) + 0.5) * 0x1p-53
                            let v = groupWeights[g] / -log(u)
                            if v > bestValue || (v == bestValue && at[g] < best) { bestValue = v; best = at[g] }
                        }
                    } else {
                        var top: UInt64 = 0
                        for j in k1.indices {
                            let v = Self.score(k1[j], k2[j], hs)
                            if v > top || j == 0 { top = v; best = j }
                        }
                    }
                }
            }
            return indexes[best]
        }
    }
}
