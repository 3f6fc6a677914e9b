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
///
/// The table is stored compactly: ``slotIndexes`` holds 2 bytes a slot
/// (128 KiB at the default M = 65537). Build many tables at once with
/// ``build(_:maxConcurrency:)``.
public struct MaglevTable: Equatable, Sendable {
    /// Allowed ring sizes: 3 ... `XDPLB_RING_MAX` (655373). The size must also be prime.
    public static let sizeRange: ClosedRange<Int> = 3 ... 655_373
    /// The default ring size, `XDPLB_RING_DEFAULT` (a prime).
    public static let defaultSize = 65_537
    /// The most backends one table can hold (`XDPLB_MAX_BACKENDS` − 1).
    public static let maxBackends = 4095
    /// The largest weight.
    public static let maxWeight: UInt32 = 1000
    /// The value of an empty slot in ``slotIndexes`` (a table without backends):
    /// above any index into ``backends``, which has at most ``maxBackends`` entries.
    public static let emptySlot: UInt16 = 0xFFFF

    /// The ring size M (a prime).
    public let size: Int
    /// The backends in the ring: weight > 0, sorted by the UTF-8 bytes of their identity.
    public let backends: [MaglevBackend]
    /// For each of the M slots, an index into ``backends``, or ``emptySlot``
    /// when there are no backends (then every slot is empty). 2 bytes a slot.
    public let slotIndexes: [UInt16]
    /// The slots of down backends handed over to up ones (``withDown(_:)``);
    /// empty for a table of all its backends.
    public let overlay: MaglevOverlay

    /// The slots as `Int32`: an index into ``backends``, or −1 for an empty slot.
    ///
    /// A new array converted from ``slotIndexes`` on every access (O(M) time,
    /// 4 bytes a slot), kept for tests and tools; hot paths read
    /// ``slotIndexes``.
    public var slots: [Int32] {
        slotIndexes.map { $0 == Self.emptySlot ? -1 : Int32($0) }
    }

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
        let ids = IdentityBytes(backends)
        let order = ids.sortedOrder()
        try Self.validate(backends, order: order, ids: ids)

        // The ring: weight > 0, in sorted order, with their preference walks.
        var active: [MaglevBackend] = []
        active.reserveCapacity(order.count)
        var weights: [UInt32] = []
        weights.reserveCapacity(order.count)
        var walks: [Walk] = []
        walks.reserveCapacity(order.count)
        ids.bytes.withUnsafeBufferPointer { bytes in
            for k in order {
                let b = backends[Int(k.index)]
                guard b.weight > 0 else { continue }
                active.append(b)
                weights.append(b.weight)
                let id = UnsafeBufferPointer(rebasing: bytes[Int(k.start) ..< Int(k.start) + Int(k.length)])
                walks.append(Self.walk(Self.identityHashes(id), size: size))
            }
        }
        self.size = size
        self.backends = active
        self.slotIndexes = Self.populate(walks: &walks, weights: weights, size: size)
        self.overlay = MaglevOverlay()
    }

    /// A table from its parts, as they are (``withDown(_:)``, ``init(ringSlots:size:backends:overlay:)``).
    init(size: Int, backends: [MaglevBackend], slotIndexes: [UInt16], overlay: MaglevOverlay) {
        self.size = size
        self.backends = backends
        self.slotIndexes = slotIndexes
        self.overlay = overlay
    }

    /// The backend a flow hash selects (slot `hash % M`), or nil for an empty table.
    /// - Parameter hash: A flow hash from ``FlowHash/hash(_:sourceOnly:seed:)``.
    public func backend(forHash hash: UInt32) -> MaglevBackend? {
        let i = slotIndexes[FlowHash.ringSlot(hash: hash, ringSize: size)]
        return i == Self.emptySlot ? nil : backends[Int(i)]
    }

    /// Slots per backend identity; every backend in ``backends`` appears, even with 0 slots.
    public func slotCounts() -> [String: Int] {
        var counts = [Int](repeating: 0, count: backends.count)
        counts.withUnsafeMutableBufferPointer { counts in
            slotIndexes.withUnsafeBufferPointer { table in
                for s in table where s != Self.emptySlot { counts[Int(s)] += 1 }
            }
        }
        return countsByIdentity(counts)
    }

    /// `counts` (one per backend, in ``backends`` order) by identity.
    func countsByIdentity(_ counts: [Int]) -> [String: Int] {
        var out = [String: Int](minimumCapacity: backends.count)
        for (i, b) in backends.enumerated() { out[b.identity] = counts[i] }
        return out
    }

    /// A fingerprint of the table: 16 lowercase hex digits.
    ///
    /// Two parts, then mixed: `hb` = FNV-1a 64 over the ring's backends in
    /// their sorted order, each identity's UTF-8 followed by a 0 byte; `hs` =
    /// over the slots, four at a time, each slot's index into that list as a
    /// little-endian u16 (0xFFFF: empty; the last word padded with 0xFFFF),
    /// the four as one little-endian u64 word w: hs = (hs ^ w) · FNV prime,
    /// from the FNV offset basis. digest = mix64(mix64(hb ^ M) ^ hs) with
    /// SplitMix64's finaliser. It depends only on the backends and which one
    /// owns which slot, so two nodes with the same backends and M print the
    /// same digest. (Since 0.10: the 0.9 digest hashed every slot's identity
    /// bytes, as costly as building the table.) Computed on each access (O(M/4)).
    public var digest: String {
        let hs = slotIndexes.withUnsafeBufferPointer { Self.slotsHash($0) }
        return Self.digestText(backendsHash: backendsHash, slotsHash: hs, size: size)
    }

    /// The digest's `hb`: FNV-1a 64 over the backends' identities, each followed by a 0 byte.
    var backendsHash: UInt64 {
        var hb = Self.fnvOffsetBasis
        for b in backends {
            for byte in b.identity.utf8 { hb = (hb ^ UInt64(byte)) &* Self.fnvPrime }
            hb = hb &* Self.fnvPrime  // the 0 terminator: h ^ 0 == h
        }
        return hb
    }

    /// The digest's `hs` over a table's slots, four at a time.
    static func slotsHash(_ table: UnsafeBufferPointer<UInt16>) -> UInt64 {
        var hs = fnvOffsetBasis
        let n = table.count
        var i = 0
        while i + 4 <= n {
            let w = UInt64(table[i]) | UInt64(table[i + 1]) << 16 | UInt64(table[i + 2]) << 32 | UInt64(table[i + 3]) << 48
            hs = (hs ^ w) &* fnvPrime
            i += 4
        }
        if i < n {
            var w: UInt64 = 0
            for k in 0 ..< 4 { w |= UInt64(i + k < n ? table[i + k] : emptySlot) << UInt64(16 * k) }
            hs = (hs ^ w) &* fnvPrime
        }
        return hs
    }

    /// The digest of `hb`, `hs` and M as 16 lowercase hex digits.
    static func digestText(backendsHash hb: UInt64, slotsHash hs: UInt64, size: Int) -> String {
        let h = mix64(mix64(hb ^ UInt64(size)) ^ hs)
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

// MARK: - Identities

extension MaglevTable {
    /// The identities of a backend list as UTF-8, back to back, with a sort
    /// key per backend: sorting, duplicate checks and hashing then read bytes,
    /// never `String`.
    struct IdentityBytes {
        /// Where one identity is, and its first 16 bytes as two big-endian
        /// words (zero-padded), which decide most comparisons.
        struct Key {
            var prefix0: UInt64
            var prefix1: UInt64
            var start: Int32
            var length: Int32
            /// Index of the backend in the input.
            var index: Int32
        }

        /// Every identity's UTF-8, in input order.
        var bytes: [UInt8] = []
        /// One key per backend, in input order.
        var keys: [Key] = []
        /// True when every byte is ASCII: then `String` equality (canonical
        /// equivalence) is byte equality.
        var isASCII = true

        init(_ backends: [MaglevBackend]) {
            let total = backends.reduce(0) { $0 + $1.identity.utf8.count }
            precondition(total <= Int(Int32.max), "identities too long")
            keys.reserveCapacity(backends.count)
            bytes.reserveCapacity(total)
            for (i, b) in backends.enumerated() {
                let start = bytes.count
                bytes.append(contentsOf: b.identity.utf8)
                keys.append(Key(prefix0: 0, prefix1: 0, start: Int32(start), length: Int32(bytes.count - start),
                                index: Int32(i)))
            }
            var any: UInt8 = 0
            bytes.withUnsafeBufferPointer { bytes in
                keys.withUnsafeMutableBufferPointer { keys in
                    for j in keys.indices {
                        let start = Int(keys[j].start), length = Int(keys[j].length)
                        var p0: UInt64 = 0, p1: UInt64 = 0
                        for k in 0 ..< min(length, 16) {
                            let b = UInt64(bytes[start + k])
                            if k < 8 { p0 |= b << (56 - 8 * k) } else { p1 |= b << (120 - 8 * k) }
                        }
                        keys[j].prefix0 = p0
                        keys[j].prefix1 = p1
                    }
                }
                for b in bytes { any |= b }
            }
            isASCII = any < 0x80
        }

        /// The keys sorted by identity bytes (shorter first when one is a
        /// prefix of the other), equal identities in input order: the order of
        /// the stable `sorted { $0.identity.utf8.lexicographicallyPrecedes($1.identity.utf8) }`.
        func sortedOrder() -> [Key] {
            var order = keys
            bytes.withUnsafeBufferPointer { bytes in
                order.sort { Self.precedes($0, $1, bytes) }
            }
            return order
        }

        /// Byte order, then input order.
        @inline(__always)
        static func precedes(_ a: Key, _ b: Key, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
            if a.prefix0 != b.prefix0 { return a.prefix0 < b.prefix0 }
            if a.prefix1 != b.prefix1 { return a.prefix1 < b.prefix1 }
            // The first 16 bytes agree; if either identity is that short, it is a
            // prefix of the other and the lengths decide.
            if a.length > 16 && b.length > 16 {
                let end = Int(min(a.length, b.length))
                let sa = Int(a.start), sb = Int(b.start)
                for k in 16 ..< end {
                    let x = bytes[sa + k], y = bytes[sb + k]
                    if x != y { return x < y }
                }
            }
            if a.length != b.length { return a.length < b.length }
            return a.index < b.index
        }

        /// True if the two identities have the same bytes.
        @inline(__always)
        static func sameBytes(_ a: Key, _ b: Key, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
            guard a.prefix0 == b.prefix0, a.prefix1 == b.prefix1, a.length == b.length else { return false }
            let sa = Int(a.start), sb = Int(b.start)
            for k in min(16, Int(a.length)) ..< Int(a.length) where bytes[sa + k] != bytes[sb + k] {
                return false
            }
            return true
        }
    }

    /// Checks the backends in sorted order; the first problem found is thrown.
    ///
    /// Per backend: an empty identity, then a duplicate (`String` equality, as
    /// a `Set<String>` sees it), then the weight.
    static func validate(_ backends: [MaglevBackend], order: [IdentityBytes.Key],
                         ids: IdentityBytes) throws(MaglevError) {
        func check(_ b: MaglevBackend) throws(MaglevError) {
            if b.identity.isEmpty { throw .emptyIdentity }
            if b.weight > maxWeight { throw .weightOutOfRange(identity: b.identity, weight: b.weight) }
        }
        if ids.isASCII {
            // ASCII: equal strings have equal bytes, so duplicates are neighbours.
            let duplicate: Int? = ids.bytes.withUnsafeBufferPointer { bytes in
                order.withUnsafeBufferPointer { order in
                    var j = 1
                    while j < order.count {
                        if IdentityBytes.sameBytes(order[j - 1], order[j], bytes) { return j }
                        j += 1
                    }
                    return nil
                }
            }
            let end = duplicate ?? order.count
            for j in 0 ..< end {
                try check(backends[Int(order[j].index)])
            }
            if let j = duplicate {
                // Not empty: its equal predecessor passed the check.
                throw .duplicateBackend(identity: backends[Int(order[j].index)].identity)
            }
        } else {
            var seen = Set<String>(minimumCapacity: order.count)
            for k in order {
                let b = backends[Int(k.index)]
                if b.identity.isEmpty { throw .emptyIdentity }
                if !seen.insert(b.identity).inserted { throw .duplicateBackend(identity: b.identity) }
                if b.weight > maxWeight { throw .weightOutOfRange(identity: b.identity, weight: b.weight) }
            }
        }
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

    /// h1 and h2 of an identity's UTF-8: FNV-1a 64 from two different offset
    /// bases, each followed by ``mix64(_:)``. Fixed forever: changing them
    /// changes every table in the cluster.
    static func identityHashes(_ utf8: UnsafeBufferPointer<UInt8>) -> (h1: UInt64, h2: UInt64) {
        var a = fnvOffsetBasis
        var b = fnvOffsetBasis2
        for byte in utf8 {
            a = (a ^ UInt64(byte)) &* fnvPrime
            b = (b ^ UInt64(byte)) &* fnvPrime
        }
        return (mix64(a), mix64(b))
    }

    /// One backend's walk through its preference list `(offset + j·skip) mod M`:
    /// the next slot to try (it starts at `offset`) and, for k = 1 ... 4, the
    /// step `(k·skip mod M) − M` (negative; see ``Filler/step(_:_:)``), so four
    /// candidates come from one cursor independently. All fit 32 bits (M ≤ 655373).
    struct Walk {
        var cursor: UInt32
        var back1: Int32
        var back2: Int32
        var back3: Int32
        var back4: Int32
    }

    /// The walk of an identity with hashes `h` for ring size `m`:
    /// `offset = h1 mod M`, `skip = h2 mod (M − 1) + 1`.
    static func walk(_ h: (h1: UInt64, h2: UInt64), size m: Int) -> Walk {
        let skip = Int(h.h2 % UInt64(m - 1)) + 1
        return Walk(cursor: UInt32(truncatingIfNeeded: h.h1 % UInt64(m)),
                    back1: Int32(truncatingIfNeeded: skip - m),
                    back2: Int32(truncatingIfNeeded: 2 * skip % m - m),
                    back3: Int32(truncatingIfNeeded: 3 * skip % m - m),
                    back4: Int32(truncatingIfNeeded: 4 * skip % m - m))
    }

    /// How many of the last turns ``Filler/claimFromFreeList(_:)`` takes
    /// instead of walking: about ¾·√M (192 at M = 65537, 606 at 655373).
    ///
    /// With F slots free a walk takes about M/F probes and the free-list scan
    /// F steps; the cost is about equal near F = √M (measured). This is speed
    /// only: both give the same slot.
    static func freeListTurns(size m: Int) -> Int {
        max(1, min(m, Int(Double(m).squareRoot()) * 3 / 4))
    }

    /// Fills the ring: for each slot the index of its backend. `walks` and
    /// `weights` are those of the sorted backends with weight > 0.
    ///
    /// Taken slots are kept in a bitmap (M bits: 8 KiB at M = 65537, so the
    /// probing stays in L1); the table is only written, each slot once, so it
    /// needs no initial fill. The turns are round robin for equal weights and
    /// come from ``WeightedTurns`` otherwise; unless one backend takes more
    /// than 1/8 of them, the first quarter try the cursor's own slot alone
    /// first and the last ``freeListTurns(size:)`` pick from the list of free
    /// slots.
    static func populate(walks: inout [Walk], weights: [UInt32], size m: Int) -> [UInt16] {
        let n = walks.count
        guard n > 0 else { return [UInt16](repeating: emptySlot, count: m) }
        // One backend's walk visits every slot once and never meets a taken one.
        guard n > 1 else { return [UInt16](repeating: 0, count: m) }
        let maxW = weights.max()!
        let equalWeights = weights.allSatisfy { $0 == maxW }
        // The heaviest backend takes a share W/Σw of the turns; above 1/8 its
        // turns often follow each other (see ``Filler/claim(_:branchless:)``),
        // and its walk stays short to the end (its skipped slots are the few
        // the others took), so the free list does not pay either (measured).
        let sumW = weights.reduce(0) { $0 + Int($1) }
        let branchless = sumW >= 8 * Int(maxW)
        let freeTurns = branchless ? freeListTurns(size: m) : 0
        let walkTurns = m - freeTurns
        // In the first quarter of the turns a backend's own cursor slot is free
        // at least 3 times in 4: trying it alone first, with a branch, costs less
        // than four probes at once (-4 % a table at M = 65537, N = 100, measured;
        // the same slot either way).
        let earlyTurns = branchless ? m / 4 : 0

        return [UInt16](unsafeUninitializedCapacity: m) { table, initialized in
            walks.withUnsafeMutableBufferPointer { walks in
                var fill = Filler(table: table, walks: walks, size: m)
                defer { fill.deallocate() }
                /// Turn k (0-based) for backend i.
                @inline(__always)
                func turn(_ k: Int, _ i: Int, branchless: Bool) {
                    if k < earlyTurns {
                        fill.claim(i, branchless: false)
                    } else if k < walkTurns {
                        fill.claim(i, branchless: branchless)
                    } else {
                        if k == walkTurns { fill.collectFreeSlots(count: freeTurns) }
                        fill.claimFromFreeList(i)
                    }
                }
                if equalWeights {
                    // One turn per backend per round, in sorted order, until M slots are taken.
                    @inline(__always)
                    func roundRobin(branchless: Bool) {
                        var i = 0
                        for k in 0 ..< m {
                            turn(k, i, branchless: branchless)
                            i &+= 1
                            if i == n { i = 0 }
                        }
                    }
                    if branchless { roundRobin(branchless: true) } else { roundRobin(branchless: false) }
                } else {
                    var turns = WeightedTurns(weights: weights, maxWeight: maxW)
                    defer { turns.deallocate() }
                    @inline(__always)
                    func weighted(branchless: Bool) {
                        var k = 0
                        while true {
                            for i in turns.nextWindow() {
                                turn(k, Int(i), branchless: branchless)
                                k &+= 1
                                if k == m { return }
                            }
                        }
                    }
                    if branchless { weighted(branchless: true) } else { weighted(branchless: false) }
                }
            }
            initialized = m
        }
    }

    /// The claiming steps over one build's buffers.
    struct Filler {
        let table: UnsafeMutableBufferPointer<UInt16>
        let walks: UnsafeMutableBufferPointer<Walk>
        let size: Int
        /// Bit p set: slot p is taken. Bits from M up are set too.
        let taken: UnsafeMutableBufferPointer<UInt64>
        /// The free slots (first `freeCount`), once ``collectFreeSlots(count:)`` ran.
        var free = UnsafeMutableBufferPointer<UInt32>(start: nil, count: 0)
        var freeCount = 0
        /// skip⁻¹ mod M per backend, 0 until needed.
        var inverses = UnsafeMutableBufferPointer<UInt32>(start: nil, count: 0)

        init(table: UnsafeMutableBufferPointer<UInt16>, walks: UnsafeMutableBufferPointer<Walk>, size m: Int) {
            self.table = table
            self.walks = walks
            self.size = m
            let words = (m + 63) >> 6
            taken = .allocate(capacity: words)
            taken.initialize(repeating: 0)
            if m & 63 != 0 { taken[words - 1] = ~0 &<< UInt64(m & 63) }
        }

        func deallocate() {
            taken.deallocate()
            free.deallocate()
            inverses.deallocate()
        }

        /// One step along a walk: `c + skip` mod M as `t = c + back` (back =
        /// skip − M), plus M if `t` is negative — no branch to mispredict (a
        /// wrap-around branch goes either way about half the time).
        @inline(__always)
        func step(_ c: Int, _ back: Int) -> Int {
            let t = c &+ back
            return t &+ (size & (t &>> 63))
        }

        /// 1 if slot `c` is taken, else 0.
        @inline(__always)
        func isTaken(_ c: Int) -> UInt64 {
            (taken[c &>> 6] &>> UInt64(c & 63)) & 1
        }

        /// Backend `i` claims its next free preferred slot. The table must not be full.
        ///
        /// Four candidates at a time: they depend only on the cursor, so their
        /// steps and bitmap reads overlap, the first free one is selected
        /// without branches, and there is one loop branch per four probes.
        /// That suits turns that go to different backends one after another.
        /// When one backend takes most turns (`branchless` false), its next
        /// claim would wait for this one's selection, so the cursor's own slot
        /// is tried first with a branch, which the CPU predicts past.
        @inline(__always)
        func claim(_ i: Int, branchless: Bool) {
            let w = walks[i]
            let b1 = Int(w.back1), b2 = Int(w.back2), b3 = Int(w.back3), b4 = Int(w.back4)
            var c = Int(w.cursor)
            var chosen: Int
            if !branchless && isTaken(c) == 0 {
                chosen = c
            } else {
                // M is prime and 1 ≤ skip < M, so the walk visits every slot: it ends.
                while true {
                    let c1 = step(c, b1), c2 = step(c, b2), c3 = step(c, b3)
                    let t0 = isTaken(c), t1 = isTaken(c1), t2 = isTaken(c2), t3 = isTaken(c3)
                    if t0 & t1 & t2 & t3 == 0 {
                        chosen = t2 == 0 ? c2 : c3
                        chosen = t1 == 0 ? c1 : chosen
                        chosen = t0 == 0 ? c : chosen
                        break
                    }
                    c = step(c, b4)
                }
            }
            taken[chosen &>> 6] |= 1 &<< UInt64(chosen & 63)
            table[chosen] = UInt16(truncatingIfNeeded: i)
            walks[i].cursor = UInt32(truncatingIfNeeded: step(chosen, b1))
        }

        /// Lists the free slots; there must be exactly `count`.
        mutating func collectFreeSlots(count: Int) {
            free = .allocate(capacity: count)
            var k = 0
            for w in taken.indices {
                var x = ~taken[w]
                while x != 0 {
                    precondition(k < count, "more free slots than turns left")
                    free[k] = UInt32(truncatingIfNeeded: w &<< 6 | x.trailingZeroBitCount)
                    k += 1
                    x &= x &- 1
                }
            }
            precondition(k == count, "fewer free slots than turns left")
            freeCount = count
            inverses = .allocate(capacity: walks.count)
            inverses.initialize(repeating: 0)
        }

        /// What ``claim(_:)`` does, for the last turns: instead of walking
        /// (about M/F probes with F slots free) it finds the free slot the walk
        /// would reach first. Free slot p is `(p − cursor)·skip⁻¹ mod M` steps
        /// ahead, so the answer is the free slot with the fewest steps.
        @inline(__always)
        mutating func claimFromFreeList(_ i: Int) {
            let m = size
            let c = Int(walks[i].cursor)
            let b1 = Int(walks[i].back1)
            var inv = inverses[i]
            if inv == 0 {
                inv = MaglevTable.inverse(b1 + m, modulo: m)
                inverses[i] = inv
            }
            let inv64 = UInt64(inv), m64 = UInt64(m)
            // Barrett reduction of x < M² < 2^40: the quotient estimate is
            // exact or one short, so one conditional subtraction finishes.
            let reciprocal = UInt64.max / m64
            let free = self.free
            @inline(__always) func steps(_ q: Int) -> UInt64 {
                let d = Int(free[q]) &- c
                let x = UInt64(truncatingIfNeeded: d &+ (m & (d &>> 63))) &* inv64
                let r = x &- x.multipliedFullWidth(by: reciprocal).high &* m64
                return r >= m64 ? r &- m64 : r
            }
            // Two running minima (even and odd positions) for more overlap.
            var best0 = UInt64.max, at0 = 0, best1 = UInt64.max, at1 = 0
            var q = 0
            while q &+ 1 < freeCount {
                let j0 = steps(q), j1 = steps(q &+ 1)
                if j0 < best0 { best0 = j0; at0 = q }
                if j1 < best1 { best1 = j1; at1 = q &+ 1 }
                q &+= 2
            }
            if q < freeCount {
                let j = steps(q)
                if j < best0 { best0 = j; at0 = q }
            }
            let at = best0 < best1 ? at0 : at1  // step counts are distinct
            let p = Int(free[at])
            freeCount -= 1
            free[at] = free[freeCount]
            taken[p &>> 6] |= 1 &<< UInt64(p & 63)
            table[p] = UInt16(truncatingIfNeeded: i)
            walks[i].cursor = UInt32(truncatingIfNeeded: step(p, b1))
        }
    }

    /// `s⁻¹ mod m` for a prime `m` and 0 < s < m (extended Euclid).
    static func inverse(_ s: Int, modulo m: Int) -> UInt32 {
        var r0 = UInt32(m), r1 = UInt32(s)
        var t0: Int32 = 0, t1: Int32 = 1
        while r1 != 0 {
            let q = r0 / r1
            (r0, r1) = (r1, r0 - q * r1)
            (t0, t1) = (t1, t0 - Int32(q) * t1)
        }
        precondition(r0 == 1, "skip must be invertible modulo the prime ring size")
        return UInt32(t0 < 0 ? t0 + Int32(m) : t0)
    }

    /// The weighted turn order, produced a window of rounds at a time into
    /// small reused buffers (no order array of M entries).
    ///
    /// Every round each backend adds its weight w to its credit; one whose
    /// credit reaches the largest weight W takes a turn (in sorted order) and
    /// pays W. With credit starting at 0, backend i has taken ⌊r·w/W⌋ turns
    /// after round r, so its t-th turn falls in round ⌈t·W/w⌉ (w ≤ W: at most
    /// one turn a round), and turns are taken in (round, sorted index) order.
    /// A window's turns are counting-sorted by round, visiting backends in
    /// index order so that ties stay in index order. This is the order of the
    /// former min-heap of `round << 12 | index` keys, in O(M + N·windows)
    /// instead of O(M log N), and it never visits idle backends round by round.
    struct WeightedTurns {
        let n: Int
        let weights: UnsafeMutableBufferPointer<UInt32>
        /// ⌊W/w⌋ and W mod w per backend.
        let step: UnsafeMutableBufferPointer<UInt32>
        let stepRem: UnsafeMutableBufferPointer<UInt32>
        /// Backend i's next turn t as t·W = quotient·w + remainder: its round
        /// is the quotient, plus 1 if the remainder is not 0.
        let quotient: UnsafeMutableBufferPointer<UInt32>
        let remainder: UnsafeMutableBufferPointer<UInt32>
        /// Rounds per window: a window holds at most `order.count` turns.
        let windowRounds: Int
        /// Per round of the window: its turn count, then where its turns go.
        let position: UnsafeMutableBufferPointer<UInt16>
        /// The current window's turns.
        let order: UnsafeMutableBufferPointer<UInt16>
        /// The first round of the next window.
        var nextRound = 1

        /// Turns per window (about; at most this plus N).
        static let windowTurns = 16384

        init(weights w: [UInt32], maxWeight maxW: UInt32) {
            n = w.count
            weights = .allocate(capacity: n)
            _ = weights.initialize(from: w)
            step = .allocate(capacity: n)
            stepRem = .allocate(capacity: n)
            quotient = .allocate(capacity: n)
            remainder = .allocate(capacity: n)
            for i in 0 ..< n {
                step[i] = maxW / w[i]
                stepRem[i] = maxW % w[i]
                quotient[i] = step[i]  // turn 1: 1·W
                remainder[i] = stepRem[i]
            }
            // L rounds hold at most Σ⌈L·w/W⌉ < L·Σw/W + N turns.
            let sumW = w.reduce(0) { $0 + Int($1) }
            windowRounds = max(1, Self.windowTurns * Int(maxW) / sumW)
            position = .allocate(capacity: windowRounds + 1)
            order = .allocate(capacity: Self.windowTurns + n)
        }

        func deallocate() {
            for b in [weights, step, stepRem, quotient, remainder] { b.deallocate() }
            position.deallocate()
            order.deallocate()
        }

        /// Fills ``order`` with the turns of the next window and returns them.
        mutating func nextWindow() -> UnsafeBufferPointer<UInt16> {
            let first = nextRound, end = nextRound + windowRounds
            nextRound = end
            position.initialize(repeating: 0)
            // Visits backend i's turns in rounds before `end`, advancing (q, rem).
            @inline(__always)
            func forEachTurn(_ i: Int, _ q: inout UInt32, _ rem: inout UInt32, _ body: (Int) -> Void) {
                let w = weights[i], s = step[i], sr = stepRem[i]
                while true {
                    let round = Int(q) + (rem == 0 ? 0 : 1)
                    if round >= end { return }
                    body(round &- first)
                    let r = rem &+ sr
                    let carry = r >= w
                    rem = carry ? r &- w : r
                    q &+= s &+ (carry ? 1 : 0)
                }
            }
            // Count per round (on copies of the state), then place in index order.
            for i in 0 ..< n {
                var q = quotient[i], rem = remainder[i]
                forEachTurn(i, &q, &rem) { r in position[r + 1] &+= 1 }
            }
            var sum: UInt16 = 0
            for r in 0 ... windowRounds {
                sum &+= position[r]
                position[r] = sum
            }
            for i in 0 ..< n {
                let index = UInt16(truncatingIfNeeded: i)
                forEachTurn(i, &quotient[i], &remainder[i]) { r in
                    order[Int(position[r])] = index
                    position[r] &+= 1
                }
            }
            return UnsafeBufferPointer(rebasing: order[0 ..< Int(sum)])
        }
    }
}
