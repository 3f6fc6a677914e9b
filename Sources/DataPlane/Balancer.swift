import BPF
import BPFObjects
import CXdplb

/// The balancer's maps, by role.
public struct BalancerMaps: Sendable {
    /// VIP key → meta (index, flags).
    public let vips: BPFMap
    /// The VIP table: the VIPs again, in an mmap'able array the program reads without a call.
    public let vipTable: BPFMap
    /// VIP address → which port-0 VIPs it has.
    public let vipAddrs: BPFMap
    /// The VIP address prefilter (one bitmap entry).
    public let vipFilter: BPFMap
    /// VIP index → Maglev ring (map in map).
    public let rings: BPFMap
    /// VIP index → the ring it had before its last change (second chance; map in map).
    public let ringsPrev: BPFMap
    /// Backend id → backend.
    public let backends: BPFMap
    /// Conntrack: the flow table (buckets of flow → backend id; see ``Conntrack``).
    public let conntrack: BPFMap
    /// Node config (one entry).
    public let config: BPFMap
    /// Global per-CPU counters.
    public let counters: BPFMap
    /// Per-VIP per-CPU counters.
    public let vipStats: BPFMap
    /// Per-backend per-CPU counters.
    public let backendStats: BPFMap
    /// Protection settings per VIP index (`struct xdplb_vip_protect`).
    public let protect: BPFMap
    /// Deny and allow prefixes, global and per VIP (LPM trie).
    public let prefixes: BPFMap
    /// Per (VIP, source prefix) limit state, written by the program (LRU hash).
    public let sourceState: BPFMap
    /// Per-VIP per-CPU new flows and protection drops (`struct xdplb_vip_flows`).
    public let vipFlows: BPFMap

    /// Every map name with its handle (for pinning and listing).
    public var all: [(name: String, map: BPFMap)] {
        [(XDPLB_MAP_VIPS, vips), (XDPLB_MAP_VIP_TABLE, vipTable), (XDPLB_MAP_VIP_ADDRS, vipAddrs), (XDPLB_MAP_VIP_FILTER, vipFilter), (XDPLB_MAP_RINGS, rings), (XDPLB_MAP_RINGS_PREV, ringsPrev), (XDPLB_MAP_BACKENDS, backends),
         (XDPLB_MAP_CT, conntrack), (XDPLB_MAP_CONFIG, config), (XDPLB_MAP_COUNTERS, counters),
         (XDPLB_MAP_VIP_STATS, vipStats), (XDPLB_MAP_BACKEND_STATS, backendStats),
         (XDPLB_MAP_PROTECT, protect), (XDPLB_MAP_PREFIXES, prefixes), (XDPLB_MAP_SRC_STATE, sourceState), (XDPLB_MAP_VIP_FLOWS, vipFlows)]
    }

    /// Every map name the balancer object defines.
    public static let names = [XDPLB_MAP_VIPS, XDPLB_MAP_VIP_TABLE, XDPLB_MAP_VIP_ADDRS, XDPLB_MAP_VIP_FILTER, XDPLB_MAP_RINGS, XDPLB_MAP_RINGS_PREV, XDPLB_MAP_BACKENDS, XDPLB_MAP_CT,
                               XDPLB_MAP_CONFIG, XDPLB_MAP_COUNTERS, XDPLB_MAP_VIP_STATS, XDPLB_MAP_BACKEND_STATS,
                               XDPLB_MAP_PROTECT, XDPLB_MAP_PREFIXES, XDPLB_MAP_SRC_STATE, XDPLB_MAP_VIP_FLOWS]

    /// The maps of a loaded balancer object.
    public init(object: BPFObject) throws(BPFError) {
        try self.init { (name: String) throws(BPFError) in try object.map(name) }
    }

    /// The maps pinned in `directory` by a running (or previous) agent.
    public init(pinnedAt directory: String) throws(BPFError) {
        try self.init { (name: String) throws(BPFError) in try BPFMap.openPinned("\(directory)/\(name)", name: name) }
    }

    private init(_ open: (String) throws(BPFError) -> BPFMap) throws(BPFError) {
        vips = try open(XDPLB_MAP_VIPS)
        vipTable = try open(XDPLB_MAP_VIP_TABLE)
        vipAddrs = try open(XDPLB_MAP_VIP_ADDRS)
        vipFilter = try open(XDPLB_MAP_VIP_FILTER)
        rings = try open(XDPLB_MAP_RINGS)
        ringsPrev = try open(XDPLB_MAP_RINGS_PREV)
        backends = try open(XDPLB_MAP_BACKENDS)
        conntrack = try open(XDPLB_MAP_CT)
        config = try open(XDPLB_MAP_CONFIG)
        counters = try open(XDPLB_MAP_COUNTERS)
        vipStats = try open(XDPLB_MAP_VIP_STATS)
        backendStats = try open(XDPLB_MAP_BACKEND_STATS)
        protect = try open(XDPLB_MAP_PROTECT)
        prefixes = try open(XDPLB_MAP_PREFIXES)
        sourceState = try open(XDPLB_MAP_SRC_STATE)
        vipFlows = try open(XDPLB_MAP_VIP_FLOWS)
    }
}

/// The XDP balancer program loaded into the kernel with its maps.
public final class Balancer: @unchecked Sendable {
    /// The libbpf object (keeps program and maps alive).
    public let object: BPFObject
    /// The XDP program.
    public let program: BPFProgram
    /// Its maps.
    public let maps: BalancerMaps

    /// Maps offered for reuse that this object defines differently (another
    /// ABI's pins), by name: created new instead, their contents left to migrate.
    public let notReused: [String: BPFMap]

    /// Loads the embedded balancer object.
    /// - Parameters:
    ///   - lruSize: conntrack capacity in flows (rounded up to a power-of-two number of buckets).
    ///   - reusing: maps to take over instead of creating (e.g. pinned by an earlier agent), by name.
    ///   - elf: a balancer object to load instead of the embedded one (e.g. `xdplb run --object`).
    ///   - migrating: with true, a map of `reusing` that doesn't fit this object's
    ///     definition (or is named in `neverReuse`) is created new and listed in
    ///     ``notReused``; with false such a map is an error.
    ///   - neverReuse: maps to create new even when they fit (their inner layout changed).
    /// - Throws: `BPFError` (verifier rejection, no permission, bad size).
    public init(lruSize: Int = 65536, reusing: [String: BPFMap] = [:], elf: [UInt8]? = nil,
                migrating: Bool = false, neverReuse: Set<String> = []) throws(BPFError) {
        let obj = try BPFObject(elf: elf ?? BPFObjects.balancer, name: "xdplb")
        try obj.setMaxEntries(map: XDPLB_MAP_CT, UInt32(Conntrack.buckets(forFlows: lruSize)))
        var skipped: [String: BPFMap] = [:]
        for (name, map) in reusing {
            if migrating && (neverReuse.contains(name) || !obj.fits(map: name, map)) {
                skipped[name] = map
                continue
            }
            try obj.reuse(map: name, map)
        }
        try obj.load()
        object = obj
        program = try obj.program(XDPLB_PROG_BALANCER)
        maps = try BalancerMaps(object: obj)
        notReused = skipped
    }
}
