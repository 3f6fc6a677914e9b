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
    public let mode: UpMode
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
        // ABI 3 sized the counter array to its counters; ABI 4 leaves room (XDPLB_CNT_SLOTS).
        // Such a pinned array is migrated: its counts are copied into the new one, which
        // replaces the pin once the new program is loaded.
        var migrateCounters: BPFMap?
        if let c = reusing[XDPLB_MAP_COUNTERS], c.info.maxEntries != UInt32(XDPLB_CNT_SLOTS) {
            migrateCounters = c
            reusing[XDPLB_MAP_COUNTERS] = nil
        }
        var lruSize = node.lruSize
        if let ct = reusing[XDPLB_MAP_CT], Int(ct.info.maxEntries) != Conntrack.buckets(forFlows: lruSize) {
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
        let balancer = try Balancer(lruSize: lruSize, reusing: reusing, elf: elf)
        if let old = migrateCounters {
            for id in 0..<min(old.info.maxEntries, UInt32(XDPLB_CNT_SLOTS)) {
                let values = try old.lookupPerCPU(id, as: xdplb_counter.self)
                if !values.isEmpty { try balancer.maps.counters.updatePerCPU(id, values: values) }
            }
            try BPFFS.unpin("\(dir)/\(XDPLB_MAP_COUNTERS)")
            logger.notice("pinned counter array migrated to the new layout", metadata: [
                "slots.pinned": "\(old.info.maxEntries)", "slots.now": "\(XDPLB_CNT_SLOTS)",
            ])
        }
        for (name, map) in balancer.maps.all where reusing[name] == nil {
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
        return String(cString: buf)
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
