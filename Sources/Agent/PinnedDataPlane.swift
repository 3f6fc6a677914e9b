import BPF
import Config
import CXdplb
import DataPlane
import Foundation
import Logging

/// The balancer as it lives on a node: program attached through a pinned
/// bpf_link, maps pinned next to it. Surviving the agent is the point: a new
/// agent re-uses the pinned maps, and either keeps the attached program (same
/// tag) or replaces it atomically with `bpf_link_update` (an upgrade).
public final class PinnedDataPlane: @unchecked Sendable {
    /// The pinned maps.
    public let maps: BalancerMaps
    /// The attachment.
    public let link: BPFLink
    /// The program attached now.
    public let programInfo: BPFProgram.Info
    /// How the data plane was brought up.
    public private(set) var mode: UpMode
    /// Pins of another layout found by `up`, to be replaced by ``finishMigration(logger:)``
    /// (by name: the new map); empty when nothing is pending.
    public private(set) var pendingPins: [String: BPFMap] = [:]
    /// The new program, attached by ``finishMigration(logger:)``.
    private var pendingProgram: BPFProgram?
    /// Keeps the new object (maps and program) alive until the kernel holds them.
    private var balancer: Balancer?
    /// The bpffs directory.
    public let directory: String

    /// What `up` found and did.
    public enum UpMode: String, Sendable {
        /// Nothing was pinned: loaded, pinned and attached.
        case fresh
        /// An attached program with the same tag was found and kept.
        case adopted
        /// An attached program with another tag was replaced atomically.
        case upgraded
        /// Pins of an older layout (another ABI) were found: their contents were
        /// copied into new maps; the first apply fills the rest, then
        /// ``PinnedDataPlane/finishMigration(logger:)`` replaces pins and program.
        case migrating
        /// A migration finished: new maps pinned, new program attached.
        case migrated
    }

    /// True while a migration waits for ``finishMigration(logger:)``.
    public var migrationPending: Bool { mode == .migrating }

    /// Ends a migration after the first apply filled the new maps: each old pin is
    /// replaced by the new map, then the attached program is swapped for the new
    /// one through the link (one atomic step for the traffic). A crash between
    /// the two leaves new pins and the old program: the next start adopts the pins
    /// and swaps the program as an ordinary upgrade.
    public func finishMigration(logger: Logger) throws(BPFError) {
        guard mode == .migrating, let program = pendingProgram else { return }
        // Conntrack last, so it holds what the old program wrote until now, with the
        // seed the first apply wrote. A table that can't be read is not fatal: its
        // flows take the ring, which gives them the same backends while the rings
        // are unchanged.
        if let old = balancer?.notReused[XDPLB_MAP_CT], pendingPins[XDPLB_MAP_CT] != nil {
            do throws(BPFError) {
                let seed = try maps.config.lookup(UInt32(0), as: xdplb_node_cfg.self)?.hash_seed ?? 0
                let moved = try PinMigration.rehomeConntrack(from: old, into: Conntrack(map: maps.conntrack, seed: seed))
                logger.notice("conntrack rehomed into the new bucket hash", metadata: [
                    "flows": "\(moved.flows)", "dropped": "\(moved.dropped)",
                    "buckets.old": "\(old.info.maxEntries)", "buckets.new": "\(maps.conntrack.info.maxEntries)",
                ])
            } catch {
                logger.error("conntrack not rehomed: established flows take the ring", metadata: ["error": "\(error)"])
            }
        }
        for (name, map) in pendingPins.sorted(by: { $0.key < $1.key }) {
            let path = "\(directory)/\(name)"
            if BPFFS.exists(path) { try BPFFS.unpin(path) }
            try map.pin(at: path)
        }
        try link.update(program: program)
        let info = try program.info()
        logger.notice("migration finished: new maps pinned, new program attached", metadata: [
            "maps": "\(pendingPins.keys.sorted().joined(separator: ","))", "prog.new": "\(info.id) \(info.tag)",
        ])
        pendingPins = [:]
        pendingProgram = nil
        mode = .migrated
    }

    init(maps: BalancerMaps, link: BPFLink, programInfo: BPFProgram.Info, mode: UpMode, directory: String) {
        self.maps = maps
        self.link = link
        self.programInfo = programInfo
        self.mode = mode
        self.directory = directory
    }

    /// Loads or adopts the pinned balancer for `node` and makes sure it is attached.
    /// - Throws: `BPFError` (verifier, attach, or a pinned link on another interface).
    /// - Parameter objectPath: load the balancer from this ELF file instead of the embedded one.
    /// A start that fails leaves nothing behind: the pins it made are removed (pins it found stay).
    public static func up(node: NodeConfig, objectPath: String? = nil, logger: Logger) throws(BPFError) -> PinnedDataPlane {
        var created: [String] = []
        do {
            return try up(node: node, objectPath: objectPath, logger: logger, created: &created)
        } catch {
            for path in created.reversed() { try? BPFFS.unpin(path) }
            if !created.isEmpty {
                logger.notice("start failed: removed the pins it had made", metadata: ["pins": "\(created.count)"])
            }
            throw error
        }
    }

    private static func up(node: NodeConfig, objectPath: String?, logger: Logger,
                           created: inout [String]) throws(BPFError) -> PinnedDataPlane {
        let dir = node.bpffs
        try BPFFS.ensureMounted()
        try BPFFS.makeDirectory(dir)
        var reusing: [String: BPFMap] = [:]
        for name in BalancerMaps.names where BPFFS.exists("\(dir)/\(name)") {
            reusing[name] = try BPFMap.openPinned("\(dir)/\(name)", name: name)
        }
        // The ABI of the agent that wrote the pins: another one means a migration (e.g. ABI 3's
        // smaller counter array, ABI 4's 4-byte ring slots, ABI 5's conntrack buckets), handled by PinMigration.
        let pinnedABI = try reusing[XDPLB_MAP_CONFIG]?.lookup(UInt32(0), as: xdplb_node_cfg.self)?.abi_version ?? UInt32(XDPLB_ABI_VERSION)
        let migrating = !reusing.isEmpty && pinnedABI != UInt32(XDPLB_ABI_VERSION)
        let neverReuse = migrating ? PinMigration.layoutChanged(pinnedABI: pinnedABI) : []
        var lruSize = node.lruSize
        // Conntrack of an older bucket hash is rehomed into a new table of the configured size.
        if let ct = reusing[XDPLB_MAP_CT], !neverReuse.contains(XDPLB_MAP_CT),
           Int(ct.info.maxEntries) != Conntrack.buckets(forFlows: lruSize) {
            let pinned = Int(ct.info.maxEntries) * Conntrack.ways
            logger.warning("pinned conntrack keeps its size; run 'xdplb down' and restart to resize", metadata: [
                "lru.pinned": "\(pinned)", "lru.config": "\(lruSize)",
            ])
            lruSize = pinned
        }
        var elf: [UInt8]?
        if let objectPath {
            guard let data = FileManager.default.contents(atPath: objectPath) else {
                throw BPFError("read balancer object \(objectPath)", errno: ENOENT)
            }
            elf = [UInt8](data)
        }
        let balancer = try Balancer(lruSize: lruSize, reusing: reusing, elf: elf, migrating: migrating,
                                    neverReuse: neverReuse)
        if migrating {
            let copied = try PinMigration.copy(from: balancer.notReused, into: balancer.maps)
            logger.notice("pins of another layout found: migrating", metadata: [
                "abi.pinned": "\(pinnedABI)", "abi.now": "\(XDPLB_ABI_VERSION)",
                "maps.new": "\(balancer.notReused.keys.sorted().joined(separator: ","))",
                "copied": "\(copied.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
            ])
        }
        var pending: [String: BPFMap] = [:]
        for (name, map) in balancer.maps.all where reusing[name] == nil || balancer.notReused[name] != nil {
            if reusing[name] != nil {
                pending[name] = map  // an old pin, replaced when the migration finishes
                continue
            }
            try map.pin(at: "\(dir)/\(name)")
            created.append("\(dir)/\(name)")
        }
        let newInfo = try balancer.program.info()
        let linkPath = "\(dir)/\(XDPLB_PIN_LINK)"
        let ifindex = if_nametoindex(node.interface)
        guard ifindex != 0 else {
            throw BPFError("attach to '\(node.interface)': no such interface", errno: ENODEV)
        }
        if BPFFS.exists(linkPath) {
            let link = try BPFLink.openPinned(linkPath)
            let li = try link.info()
            if li.ifindex != 0 && li.ifindex != ifindex {
                throw BPFError("pinned link at \(linkPath) is attached to ifindex \(li.ifindex), not '\(node.interface)'", errno: EEXIST,
                               hint: "run 'xdplb down --bpffs \(dir)' first")
            }
            if li.ifindex != 0 {
                let current = try BPFProgram.open(id: li.programID).info()
                if !pending.isEmpty {
                    logger.notice("old program keeps forwarding until the new maps are filled", metadata: ["prog.id": "\(current.id)"])
                    let up = PinnedDataPlane(maps: balancer.maps, link: link, programInfo: newInfo, mode: .migrating, directory: dir)
                    up.pendingPins = pending
                    up.pendingProgram = balancer.program
                    up.balancer = balancer
                    return up
                }
                if current.tag == newInfo.tag {
                    logger.info("adopted attached program", metadata: ["prog.id": "\(current.id)", "prog.tag": "\(current.tag)"])
                    return PinnedDataPlane(maps: balancer.maps, link: link, programInfo: current, mode: .adopted, directory: dir)
                }
                try link.update(program: balancer.program)
                logger.notice("replaced attached program", metadata: [
                    "prog.old": "\(current.id) \(current.tag)", "prog.new": "\(newInfo.id) \(newInfo.tag)",
                ])
                return PinnedDataPlane(maps: balancer.maps, link: link, programInfo: newInfo, mode: .upgraded, directory: dir)
            }
            // A pinned link whose interface went away: replace it.
            try BPFFS.unpin(linkPath)
        }
        // Nothing attached: old pins of another layout are replaced right away.
        for (name, map) in pending.sorted(by: { $0.key < $1.key }) {
            try BPFFS.unpin("\(dir)/\(name)")
            try map.pin(at: "\(dir)/\(name)")
        }
        let mode: XDPMode = node.xdpMode == .generic ? .generic : .native
        let link = try BPFLink.attachXDP(balancer.program, interface: node.interface, mode: mode)
        try link.pin(at: linkPath)
        created.append(linkPath)
        logger.notice("attached program", metadata: [
            "interface": "\(node.interface)", "xdp.mode": "\(mode.rawValue)", "prog.id": "\(newInfo.id)",
        ])
        return PinnedDataPlane(maps: balancer.maps, link: link, programInfo: newInfo, mode: .fresh, directory: dir)
    }

    /// True while our link is attached to an interface (false after `xdplb down` detached it).
    public func isAttached() -> Bool {
        guard let li = try? link.info() else { return false }
        return li.ifindex != 0
    }

    static func interfaceName(_ ifindex: UInt32) -> String {
        var buf = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(ifindex, &buf) != nil else { return "ifindex \(ifindex)" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Detaches the program and removes every pin under `directory`.
    /// - Returns: the pins removed.
    @discardableResult
    public static func down(directory: String) throws(BPFError) -> [String] {
        var removed: [String] = []
        let linkPath = "\(directory)/\(XDPLB_PIN_LINK)"
        if BPFFS.exists(linkPath) {
            let link = try BPFLink.openPinned(linkPath)
            // The through-tunnel probe program on the same interface's egress goes too.
            if let li = try? link.info(), ProbeEncapsulator.detach(ifindex: li.ifindex) {
                removed.append("tc egress filter \(XDPLB_PROG_PROBE) (through-tunnel probes) on \(Self.interfaceName(li.ifindex))")
            }
            try? link.detach()
            try BPFFS.unpin(linkPath)
            removed.append(linkPath)
        }
        for name in BalancerMaps.names where BPFFS.exists("\(directory)/\(name)") {
            try BPFFS.unpin("\(directory)/\(name)")
            removed.append("\(directory)/\(name)")
        }
        try BPFFS.removeDirectory(directory)
        return removed
    }
}
