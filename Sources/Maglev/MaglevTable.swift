/// One backend as Maglev sees it: a stable identity and a weight.
public struct MaglevBackend: Hashable, Sendable {
    /// The backend's stable name: its canonical address text (`10.0.4.2`,
    /// `fd00:4::2`). The table depends on this text, never on node-local ids.
    public var identity: String
    /// Relative share of the ring, 0 ... ``MaglevTable/maxWeight``; 0 drains
    /// the backend (it gets no slots).
    public var weight: UInt32

    /// Creates a backend.
    /// - Parameters:
    ///   - identity: The canonical address text.
    ///   - weight: Relative share of the ring; 0 keeps it out of the ring.
    public init(identity: String, weight: UInt32 = 1) {
        self.identity = identity
        self.weight = weight
    }
}

/// A Maglev lookup table (Eisenbud et al., NSDI 2016, §3.4) with integer weights.
///
/// The table depends only on the backend set (identities and weights) and the
/// size M — never on input order, node or process — so every balancer node
/// builds the same one.
///
/// For each backend, `offset = h1(identity) mod M` and
/// `skip = h2(identity) mod (M − 1) + 1`; its preference list is
/// `(offset + j·skip) mod M`. Backends, sorted by the UTF-8 bytes of their
/// identities, take turns; on its turn a backend claims its next preferred
/// slot that is still free, until all M slots are taken.
///
/// Weights set turn frequency by integer credit: every round each backend adds
/// its weight to its credit, and a backend whose credit reaches the largest
/// weight takes a turn (in sorted order) and pays the largest weight. With
/// equal weights every backend takes exactly one turn per round, so each gets
/// ⌊M/N⌋ or ⌈M/N⌉ slots.
public struct MaglevTable: Equatable, Sendable {
    /// Allowed ring sizes: 3 ... `XDPLB_RING_MAX` (655373). The size must also be prime.
    public static let sizeRange: ClosedRange<Int> = 3 ... 655_373
    /// The default ring size, `XDPLB_RING_DEFAULT` (a prime).
    public static let defaultSize = 65_537
    /// The most backends one table can hold (`XDPLB_MAX_BACKENDS` − 1).
    public static let maxBackends = 4095
    /// The largest weight.
    public static let maxWeight: UInt32 = 1000

    /// The ring size M (a prime).
    public let size: Int
    /// The backends in the ring: weight > 0, sorted by the UTF-8 bytes of their identity.
    public let backends: [MaglevBackend]
    /// For each of the M slots, an index into ``backends``, or −1 when there are no backends.
    public let slots: [Int32]

    /// Builds the table.
    /// - Parameters:
    ///   - backends: The backends, in any order. Weight-0 backends are checked
    ///     but left out of the ring.
    ///   - size: The ring size M: a prime in ``sizeRange``.
    /// - Throws: ``MaglevError`` for a size that is out of range or not prime,
    ///   more than ``maxBackends`` backends, an empty or duplicate identity, or
    ///   a weight above ``maxWeight``. Problems are reported in sorted order, so
    ///   the error does not depend on input order either.
    public init(backends: [MaglevBackend], size: Int) throws(MaglevError) {
        guard Self.sizeRange.contains(size) else {
            throw .ringSizeOutOfRange(size: size)
        }
        guard isPrime(size) else {
            throw .ringSizeNotPrime(size: size, suggestion: nextPrime(after: size))
        }
        guard backends.count <= Self.maxBackends else {
            throw .tooManyBackends(count: backends.count)
        }
        let sorted = backends.sorted { $0.identity.utf8.lexicographicallyPrecedes($1.identity.utf8) }
        var seen = Set<String>(minimumCapacity: sorted.count)
        for b in sorted {
            if b.identity.isEmpty { throw .emptyIdentity }
            if !seen.insert(b.identity).inserted { throw .duplicateBackend(identity: b.identity) }
            if b.weight > Self.maxWeight { throw .weightOutOfRange(identity: b.identity, weight: b.weight) }
        }
        let active = sorted.filter { $0.weight > 0 }
        self.size = size
        self.backends = active
        self.slots = Self.populate(active, size: size)
    }

    /// The backend a flow hash selects (slot `hash % M`), or nil for an empty table.
    /// - Parameter hash: A flow hash from ``FlowHash/hash(_:sourceOnly:seed:)``.
    public func backend(forHash hash: UInt32) -> MaglevBackend? {
        let i = slots[FlowHash.ringSlot(hash: hash, ringSize: size)]
        return i < 0 ? nil : backends[Int(i)]
    }

    /// Slots per backend identity; every backend in ``backends`` appears, even with 0 slots.
    public func slotCounts() -> [String: Int] {
        var counts = [Int](repeating: 0, count: backends.count)
        for s in slots where s >= 0 { counts[Int(s)] += 1 }
        var out = [String: Int](minimumCapacity: backends.count)
        for (i, b) in backends.enumerated() { out[b.identity] = counts[i] }
        return out
    }

    /// A fingerprint of the table: 16 lowercase hex digits.
    ///
    /// FNV-1a 64 over M as 8 little-endian bytes, then for each slot the UTF-8
    /// identity of its backend (nothing for an empty slot) followed by a 0
    /// byte. It depends only on which identity owns which slot, so two nodes
    /// with the same backends and M print the same digest. Computed on each
    /// access (O(M)).
    public var digest: String {
        // All identities back to back, with their start offsets.
        var bytes: [UInt8] = []
        var starts: [Int] = [0]
        for b in backends {
            bytes.append(contentsOf: b.identity.utf8)
            starts.append(bytes.count)
        }
        var h = Self.fnvOffsetBasis
        var m = UInt64(size)
        for _ in 0 ..< 8 {
            h = (h ^ (m & 0xff)) &* Self.fnvPrime
            m >>= 8
        }
        bytes.withUnsafeBufferPointer { ids in
            starts.withUnsafeBufferPointer { st in
                slots.withUnsafeBufferPointer { table in
                    for s in table {
                        if s >= 0 {
                            for k in st[Int(s)] ..< st[Int(s) + 1] {
                                h = (h ^ UInt64(ids[k])) &* Self.fnvPrime
                            }
                        }
                        h = h &* Self.fnvPrime  // the 0 terminator: h ^ 0 == h
                    }
                }
            }
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

// MARK: - Building

extension MaglevTable {
    static let fnvOffsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    static let fnvPrime: UInt64 = 0x0000_0100_0000_01b3
    /// Offset basis of the second identity hash: the upper half of the FNV-1a
    /// 128 offset basis, so h1 and h2 start from unrelated states.
    static let fnvOffsetBasis2: UInt64 = 0x6c62_272e_07bb_0142

    /// The SplitMix64 finaliser (Stafford's mix13): full avalanche on 64 bits.
    @inline(__always)
    static func mix64(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// h1 and h2 of an identity: FNV-1a 64 over its UTF-8 from two different
    /// offset bases, each followed by ``mix64(_:)``. Fixed forever: changing
    /// them changes every table in the cluster.
    static func identityHashes(_ identity: String) -> (h1: UInt64, h2: UInt64) {
        var a = fnvOffsetBasis
        var b = fnvOffsetBasis2
        for byte in identity.utf8 {
            a = (a ^ UInt64(byte)) &* fnvPrime
            b = (b ^ UInt64(byte)) &* fnvPrime
        }
        return (mix64(a), mix64(b))
    }

    /// offset and skip of an identity for ring size `m`.
    static func permutation(_ identity: String, size m: Int) -> (offset: Int, skip: Int) {
        let (h1, h2) = identityHashes(identity)
        return (Int(h1 % UInt64(m)), Int(h2 % UInt64(m - 1)) + 1)
    }

    /// Fills the ring. `backends` are sorted, weight > 0.
    static func populate(_ backends: [MaglevBackend], size m: Int) -> [Int32] {
        var slots = [Int32](repeating: -1, count: m)
        let n = backends.count
        guard n > 0 else { return slots }

        // cursor[i]: backend i's next preferred slot; skip[i]: its stride.
        var cursor = [Int](repeating: 0, count: n)
        var skip = [Int](repeating: 0, count: n)
        for i in 0 ..< n {
            (cursor[i], skip[i]) = permutation(backends[i].identity, size: m)
        }
        let maxW = UInt64(backends.lazy.map(\.weight).max()!)
        let equalWeights = backends.allSatisfy { UInt64($0.weight) == maxW }

        slots.withUnsafeMutableBufferPointer { table in
            cursor.withUnsafeMutableBufferPointer { cur in
                skip.withUnsafeBufferPointer { sk in
                    if equalWeights {
                        // One turn per backend per round, in sorted order.
                        var filled = 0
                        outer: while true {
                            for i in 0 ..< n {
                                claim(i, table: table, cursor: cur, skip: sk, size: m)
                                filled += 1
                                if filled == m { break outer }
                            }
                        }
                    } else {
                        fillWeighted(backends, maxWeight: maxW, table: table, cursor: cur, skip: sk, size: m)
                    }
                }
            }
        }
        return slots
    }

    /// Backend `i` claims its next free preferred slot. The table must not be full.
    @inline(__always)
    static func claim(
        _ i: Int, table: UnsafeMutableBufferPointer<Int32>, cursor: UnsafeMutableBufferPointer<Int>,
        skip: UnsafeBufferPointer<Int>, size m: Int
    ) {
        var c = cursor[i]
        let s = skip[i]
        // M is prime and 1 ≤ skip < M, so the walk visits every slot: it ends.
        while table[c] >= 0 {
            c += s
            if c >= m { c -= m }
        }
        table[c] = Int32(truncatingIfNeeded: i)
        c += s
        if c >= m { c -= m }
        cursor[i] = c
    }

    /// The weighted turn order without visiting idle backends each round.
    ///
    /// With credit starting at 0, backend i (weight w) has taken ⌊r·w/W⌋ turns
    /// after round r, so its t-th turn falls in round ⌈t·W/w⌉. Turns are taken
    /// in (round, sorted index) order, which a min-heap of
    /// `round << 12 | index` keys yields in O(log N) per turn.
    static func fillWeighted(
        _ backends: [MaglevBackend], maxWeight maxW: UInt64, table: UnsafeMutableBufferPointer<Int32>,
        cursor: UnsafeMutableBufferPointer<Int>, skip: UnsafeBufferPointer<Int>, size m: Int
    ) {
        let n = backends.count
        let indexBits: UInt64 = 12  // n ≤ maxBackends = 4095 < 2^12
        let indexMask: UInt64 = (1 << indexBits) - 1
        var weight = [UInt64](repeating: 0, count: n)
        var turns = [UInt64](repeating: 0, count: n)
        var heap = [UInt64](repeating: 0, count: n)
        for i in 0 ..< n {
            let w = UInt64(backends[i].weight)
            weight[i] = w
            let round = (maxW + w - 1) / w  // ⌈1·W/w⌉
            heap[i] = round << indexBits | UInt64(i)
        }
        heap.sort()  // a sorted array is a valid min-heap

        weight.withUnsafeBufferPointer { weight in
            turns.withUnsafeMutableBufferPointer { turns in
                heap.withUnsafeMutableBufferPointer { heap in
                    var filled = 0
                    while true {
                        let i = Int(heap[0] & indexMask)
                        claim(i, table: table, cursor: cursor, skip: skip, size: m)
                        filled += 1
                        if filled == m { return }
                        let t = turns[i] + 1
                        turns[i] = t
                        let w = weight[i]
                        let round = ((t + 1) * maxW + w - 1) / w
                        // Replace the top with backend i's next turn and sift down.
                        let key = round << indexBits | UInt64(i)
                        var pos = 0
                        while true {
                            var child = 2 * pos + 1
                            if child >= n { break }
                            if child + 1 < n && heap[child + 1] < heap[child] { child += 1 }
                            if heap[child] >= key { break }
                            heap[pos] = heap[child]
                            pos = child
                        }
                        heap[pos] = key
                    }
                }
            }
        }
    }
}
