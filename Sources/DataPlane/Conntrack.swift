import BPF
import CXdplb

/// The conntrack flow table as user space sees it: an array map of buckets of
/// `XDPLB_CT_WAYS` flows, a flow in bucket `hash & (buckets - 1)` where hash is
/// the key's bucket hash with the node's seed (``bucketHash(_:seed:)``;
/// layout and rules: xdplb_abi.h).
/// The program owns the table; the agent only sizes it. Reading and writing it
/// here serves tests, `xdplb bench` and diagnostics.
public struct Conntrack: Sendable {
    /// The `xdplb_ct` array map.
    public let map: BPFMap
    /// The node's hash_seed (the program's `xdplb_node_cfg.hash_seed`).
    public let seed: UInt32

    public init(map: BPFMap, seed: UInt32) {
        self.map = map
        self.seed = seed
    }

    /// Ways per bucket.
    public static let ways = Int(XDPLB_CT_WAYS)

    /// Buckets for a capacity of `flows` (the config's lru_size): the smallest
    /// power of two that holds them all.
    public static func buckets(forFlows flows: Int) -> Int {
        var n = 1
        while n * ways < flows { n <<= 1 }
        return n
    }

    /// Buckets in the map.
    public var buckets: Int { Int(map.info.maxEntries) }

    /// The bucket hash of a key: the program's `ct_hash` (bpf/conntrack.h), bit
    /// for bit (the formula: xdplb_abi.h, "Conntrack"). ABI 6 and later.
    public static func bucketHash(_ key: xdplb_flow_key, seed: UInt32) -> UInt32 {
        let k: (UInt64, UInt64, UInt64, UInt64, UInt64) = (
            XDPLB_CT_HASH_K0, XDPLB_CT_HASH_K1, XDPLB_CT_HASH_K2, XDPLB_CT_HASH_K3, XDPLB_CT_HASH_K4)
        return withUnsafeBytes(of: key) { raw in
            @inline(__always) func word(_ i: Int) -> UInt64 {
                UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
            }
            let s = UInt64(seed) &* XDPLB_CT_HASH_SEED_MUL
            var h = (word(0) ^ s) &* k.0 ^ (word(1) ^ s) &* k.1 ^ (word(2) ^ s) &* k.2
            h ^= (word(3) ^ s) &* k.3 ^ (word(4) ^ s) &* k.4
            h = (h ^ (h >> 32)) &* XDPLB_CT_HASH_FINAL
            return UInt32(truncatingIfNeeded: h >> 32)
        }
    }

    /// The bucket a key lives in.
    public func bucket(of key: xdplb_flow_key) -> UInt32 {
        Self.bucketHash(key, seed: seed) & UInt32(buckets - 1)
    }

    /// The entry of `key`, if the table holds it.
    public func lookup(_ key: xdplb_flow_key) throws(BPFError) -> xdplb_ct_entry? {
        guard let b = try map.lookup(bucket(of: key), as: xdplb_ct_bucket.self) else { return nil }
        return Self.entry(in: b, for: key)
    }

    /// The entry of `key` in bucket `b` (a used way with the same key).
    public static func entry(in b: xdplb_ct_bucket, for key: xdplb_flow_key) -> xdplb_ct_entry? {
        for w in ways(of: b) where w.flags & XDPLB_CT_F_USED != 0 && ABI.bytesEqual(w.key, key) {
            return w.entry
        }
        return nil
    }

    /// The four ways of a bucket, in order.
    public static func ways(of b: xdplb_ct_bucket) -> [xdplb_ct_way] {
        [b.ways.0, b.ways.1, b.ways.2, b.ways.3]
    }

    /// How the table's ways are used (bpf/xdplb_abi.h, "Floods"): counted in
    /// up to `sampleBuckets` buckets spread evenly over the table (flows land
    /// in buckets by hash, so the sample stands for the whole) and scaled to
    /// it; every bucket when the table has no more (exact up to lru_size
    /// 65,536). 16,384 buckets read in ~15 ms, so `xdplb stats` and a scrape
    /// can ask every time.
    public func occupancy(sampleBuckets: Int = 16384) throws(BPFError) -> ConntrackOccupancy {
        let total = buckets
        let n = max(1, min(total, sampleBuckets))
        var est = 0, emb = 0
        for j in 0..<n {
            let i = UInt32(j * total / n)
            guard let b = try map.lookup(i, as: xdplb_ct_bucket.self) else { continue }
            for w in Self.ways(of: b) where w.flags & XDPLB_CT_F_USED != 0 {
                if w.flags & XDPLB_CT_F_EST != 0 { est += 1 } else { emb += 1 }
            }
        }
        let ways = total * Self.ways
        let scale = { (k: Int) in Int((Double(k) * Double(total) / Double(n)).rounded()) }
        let e = scale(est), m = scale(emb)
        return ConntrackOccupancy(ways: ways, established: e, embryonic: m, free: max(0, ways - e - m), sampledBuckets: n)
    }

    /// Every flow the table holds, with its entry (reads every bucket).
    public func entries() throws(BPFError) -> [(key: xdplb_flow_key, entry: xdplb_ct_entry)] {
        var out: [(key: xdplb_flow_key, entry: xdplb_ct_entry)] = []
        for i in 0..<UInt32(buckets) {
            guard let b = try map.lookup(i, as: xdplb_ct_bucket.self) else { continue }
            for w in Self.ways(of: b) where w.flags & XDPLB_CT_F_USED != 0 { out.append((w.key, w.entry)) }
        }
        return out
    }
}

/// The use of conntrack's ways: established flows (hit since written),
/// embryonic ones (one packet seen; a SYN flood's only kind) and free ways.
/// An estimate from a sample of buckets unless `sampledBuckets` is all of them.
public struct ConntrackOccupancy: Codable, Sendable, Equatable {
    /// Ways in the table (buckets × ways per bucket).
    public var ways: Int
    /// Ways holding an established flow.
    public var established: Int
    /// Ways holding a flow that has sent one packet so far.
    public var embryonic: Int
    /// Empty ways.
    public var free: Int
    /// Buckets read for the estimate.
    public var sampledBuckets: Int

    public init(ways: Int, established: Int, embryonic: Int, free: Int, sampledBuckets: Int) {
        self.ways = ways
        self.established = established
        self.embryonic = embryonic
        self.free = free
        self.sampledBuckets = sampledBuckets
    }
}

/// A whole conntrack table built in memory (for `xdplb bench` and tests) and
/// written to the map in one batch, or bucket by bucket.
public struct ConntrackImage {
    public let conntrack: Conntrack
    /// Every bucket, as it will be written.
    public private(set) var buckets: [xdplb_ct_bucket]
    /// Used ways per bucket.
    private var used: [UInt8]

    /// An empty table the size of `conntrack`'s map.
    public init(_ conntrack: Conntrack) {
        self.conntrack = conntrack
        buckets = Array(repeating: xdplb_ct_bucket(), count: conntrack.buckets)
        used = Array(repeating: 0, count: conntrack.buckets)
    }

    /// Ways in use in the whole table.
    public var count: Int { used.reduce(0) { $0 + Int($1) } }

    /// Buckets holding at least one flow, in index order.
    public var usedBuckets: [UInt32] {
        used.indices.compactMap { used[$0] > 0 ? UInt32($0) : nil }
    }

    /// Puts `key` into the next free way of its own bucket with `flags`: by
    /// default an established flow (used, referenced and established, as after
    /// its second packet). Returns the bucket, or nil when the bucket is full.
    @discardableResult
    public mutating func insert(_ key: xdplb_flow_key, _ entry: xdplb_ct_entry,
                                flags: UInt32 = XDPLB_CT_F_USED | XDPLB_CT_F_REF | XDPLB_CT_F_EST) -> UInt32? {
        let b = conntrack.bucket(of: key)
        let i = Int(b)
        let n = Int(used[i])
        guard n < Conntrack.ways else { return nil }
        var way = xdplb_ct_way()
        way.key = key
        way.entry = entry
        way.flags = flags | XDPLB_CT_F_USED
        withUnsafeMutableBytes(of: &buckets[i].ways) { raw in
            raw.storeBytes(of: way, toByteOffset: n * MemoryLayout<xdplb_ct_way>.stride, as: xdplb_ct_way.self)
        }
        used[i] += 1
        return b
    }

    /// Writes every bucket to the map.
    public func write() throws(BPFError) {
        try conntrack.map.updateBatch(keys: (0..<UInt32(buckets.count)).map { $0 }, values: buckets)
    }

    /// Writes only these buckets (e.g. to put some flows back after others evicted them).
    public func write(buckets indexes: [UInt32]) throws(BPFError) {
        let unique = Array(Set(indexes)).sorted()
        try conntrack.map.updateBatch(keys: unique, values: unique.map { buckets[Int($0)] })
    }
}
