import BPF
import CXdplb

/// Moves what matters out of pinned maps of an older layout (another
/// XDPLB_ABI_VERSION) into the maps of a newly loaded balancer, so `xdplb run`
/// of a new release takes over instead of refusing: backend ids and
/// generations (conntrack entries keep pointing at the right backend), VIP
/// slots, and the counters. Rings, the VIP table, the prefilter and the VIP
/// address set are not copied: the first apply writes them in the new layout
/// before the new program is attached; conntrack of an older bucket hash is
/// moved into its new buckets at the end (``rehomeConntrack(from:into:)``). A
/// map of the same layout (config; conntrack from ABI 6 on) is reused as is
/// and never reaches this.
public enum PinMigration {
    /// Maps whose layout or meaning changed since `pinnedABI`: their pins are
    /// never reused, even where the map would fit. ABI 5 packed ring slots in
    /// 2 bytes; ABI 6 moved every flow to another conntrack bucket (a new
    /// bucket hash), so older conntrack is rehomed (``rehomeConntrack(from:into:)``).
    public static func layoutChanged(pinnedABI: UInt32) -> Set<String> {
        var changed: Set<String> = []
        if pinnedABI < 5 { changed.formUnion([XDPLB_MAP_RINGS, XDPLB_MAP_RINGS_PREV]) }
        if pinnedABI < 6 { changed.insert(XDPLB_MAP_CT) }
        return changed
    }

    /// What ``rehomeConntrack(from:into:)`` did.
    public struct Rehomed: Sendable, Equatable {
        /// Flows written into their bucket of the new table.
        public var flows = 0
        /// Flows left out: their new bucket already held `XDPLB_CT_WAYS` of the moved ones.
        public var dropped = 0

        public init(flows: Int = 0, dropped: Int = 0) {
            self.flows = flows
            self.dropped = dropped
        }
    }

    /// Moves every flow of an older conntrack table (`old`, any number of
    /// buckets) into `new`, which must be empty: each used way goes, key,
    /// entry and flags as they are, into the first free way of the bucket its
    /// key has in `new` (``Conntrack/bucket(of:)``, the seed `new` was made
    /// with). Ways being written (odd seq) are skipped; a bucket that fills up
    /// keeps the flows that came first, and the rest are counted as dropped
    /// (their next packet goes by the ring, as after an eviction).
    public static func rehomeConntrack(from old: BPFMap, into new: Conntrack) throws(BPFError) -> Rehomed {
        var image = ConntrackImage(new)
        var result = Rehomed()
        try old.forEachArrayChunk(as: xdplb_ct_bucket.self) { (_, buckets) throws(BPFError) in
            for b in buckets {
                for w in Conntrack.ways(of: b) where w.flags & XDPLB_CT_F_USED != 0 && w.seq & 1 == 0 {
                    if image.insert(w.key, w.entry, flags: w.flags) != nil { result.flows += 1 } else { result.dropped += 1 }
                }
            }
        }
        try image.write(buckets: image.usedBuckets)
        return result
    }

    /// Copies the contents of `old` (pinned maps by name, not reused) into `maps`:
    /// backend entries (ids and generations), VIP entries (slots), the global,
    /// per-VIP and per-backend counters; other maps are left to the first apply.
    /// - Returns: entries copied per map name; maps left to the first apply are absent.
    /// - Throws: `BPFError` when an old map can't be read or a new one written.
    @discardableResult
    public static func copy(from old: [String: BPFMap], into maps: BalancerMaps) throws(BPFError) -> [String: Int] {
        var copied: [String: Int] = [:]
        for (name, src) in old {
            switch name {
            case XDPLB_MAP_COUNTERS: copied[name] = try copyPerCPU(src, into: maps.counters)
            case XDPLB_MAP_VIP_STATS: copied[name] = try copyPerCPU(src, into: maps.vipStats)
            case XDPLB_MAP_BACKEND_STATS: copied[name] = try copyPerCPU(src, into: maps.backendStats)
            case XDPLB_MAP_BACKENDS: copied[name] = try copyBackends(src, into: maps.backends)
            case XDPLB_MAP_VIPS: copied[name] = try copyVIPs(src, into: maps.vips)
            default: continue
            }
        }
        return copied
    }

    /// Per-CPU counter arrays: every index both have.
    static func copyPerCPU(_ src: BPFMap, into dst: BPFMap) throws(BPFError) -> Int {
        guard src.info.valueSize == UInt32(MemoryLayout<xdplb_counter>.size) else { return 0 }
        var n = 0
        for i in 0..<min(src.info.maxEntries, dst.info.maxEntries) {
            let values = try src.lookupPerCPU(i, as: xdplb_counter.self)
            guard values.contains(where: { $0.packets != 0 || $0.bytes != 0 }) else { continue }
            try dst.updatePerCPU(i, values: values)
            n += 1
        }
        return n
    }

    /// Backend entries (the struct is the same in ABI 4 and 5): every live id both have.
    static func copyBackends(_ src: BPFMap, into dst: BPFMap) throws(BPFError) -> Int {
        guard src.info.valueSize == UInt32(MemoryLayout<xdplb_backend>.size) else { return 0 }
        var n = 0
        for id in 1..<min(src.info.maxEntries, dst.info.maxEntries) {
            guard let e = try src.lookup(id, as: xdplb_backend.self), e.gen != 0 else { continue }
            try dst.update(id, e)
            n += 1
        }
        return n
    }

    /// VIP entries with their slots; the ring size and tag are cleared (no ring of
    /// the new layout exists yet; the first apply writes both).
    static func copyVIPs(_ src: BPFMap, into dst: BPFMap) throws(BPFError) -> Int {
        guard src.info.keySize == UInt32(MemoryLayout<xdplb_vip_key>.size),
              src.info.valueSize == UInt32(MemoryLayout<xdplb_vip_meta>.size) else { return 0 }
        var n = 0
        for key in try src.keys(as: xdplb_vip_key.self) {
            guard var meta = try src.lookup(key, as: xdplb_vip_meta.self), meta.vip_index < UInt32(XDPLB_MAX_VIPS) else { continue }
            meta.ring_size = 0
            meta.ring_tag = 0
            try dst.update(key, meta)
            n += 1
        }
        return n
    }
}
