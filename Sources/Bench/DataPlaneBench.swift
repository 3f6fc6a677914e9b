import BPF
import BPFObjects
import Config
import CXdplb
import DataPlane
import Foundation
import Maglev
import NetAddress
import Packets
#if canImport(Glibc)
import Glibc
#endif

/// Settings of the data-plane benchmark.
public struct DataPlaneBenchOptions: Sendable {
    /// Rounds; every case runs `packets` times per round.
    public var rounds = 5
    /// Timed runs per case per round.
    public var packets = 200_000
    /// Untimed runs per case before the first round.
    public var warmup = 20_000
    /// Conntrack capacity in flows, lru_size (the config default, as in production).
    public var lruSize = 1_000_000
    /// CPU to pin the benchmark thread to (nil: the CPU it starts on; -1: don't pin).
    public var cpu: Int? = nil
    /// A balancer ELF object to run instead of the embedded one (nil: embedded).
    public var objectPath: String? = nil
    /// A second balancer ELF object run on the same packets, interleaved with the
    /// first and sharing its maps, for a paired before/after comparison of a
    /// data-plane change (its maps must be compatible, as for an upgrade).
    public var comparePath: String? = nil
    /// Cases to run (nil: all); the floors always run.
    public var only: Set<String>? = nil
    /// Runs per call of the restoring loop (0: no loop measurement). Each call
    /// with repeat > 1 costs ~20 ms of wall time here (the kernel swaps the XDP
    /// dispatcher's target around it), and its first runs are cache-cold, so
    /// few long calls: by default one call of `packets` runs per case per round.
    public var loopRepeat = 200_000
    /// Also run the restoring loop on all these CPUs at once (each its own flows,
    /// the maps shared) and report each CPU's cost next to one CPU alone (nil: don't).
    public var parallelCPUs: [Int]? = nil

    public init() {}

    /// Established flows per hot case (ACK, UDP, too-big): warm in the CPU caches.
    var hotFlows: Int { min(16_384, lruSize / 16) }
    /// Established flows of the cold ACK case: spread over much more memory than the caches hold.
    var coldFlows: Int { min(262_144, lruSize / 4) }
}

/// Something the benchmark could not set up or run.
public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// One benchmarked packet kind and how to check it took its path.
final class BenchCase {
    let name: String
    let isFloor: Bool
    let description: String
    /// The program(s) run on each frame: a floor's, or one per balancer build (main, then compared).
    let programs: [BPFProgram]
    var program: BPFProgram { programs[0] }
    let verdict: XDPAction
    /// The frame fed to every run (patched in place between runs).
    let frame: UnsafeMutableRawPointer
    let frameLength: Int
    let patch: FramePatch?
    /// 0 fixed, 1 distinct (flow `next`, then next + 1, …), 2 cycle through `flows`
    /// (the XDPLB_BENCH_* modes of the bench loop).
    private let mode: Int
    private var next = 0
    /// Flow numbers of a cycling case, in order (empty otherwise).
    let flows: [Int32]
    private var position = 0
    /// The floor whose time is subtracted for the net cost.
    let netOver: String?
    /// Counters that must grow by exactly the number of runs.
    let perPacket: [String]
    /// Counters that must not move.
    let never: [String]
    /// Groups of counters whose sum must grow by exactly the number of runs (a mix of paths).
    let sums: [[String]]
    /// Output length of a correct run (nil: not checked).
    let outputLength: Int?
    /// Measured in the restoring loop too (BenchLoop); false when the program
    /// also moves the frame's tail, which the loop can't put back.
    let loops: Bool
    /// Untimed work before each block (e.g. re-establish the pool's conntrack entries).
    var prepare: () throws -> Void
    /// The compared build gets the next flow, not the main build's (a conntrack miss must stay one).
    let flowPerRun: Bool

    init(name: String, isFloor: Bool = false, description: String, programs: [BPFProgram], verdict: XDPAction,
         frame bytes: [UInt8], patch: FramePatch? = nil, order: FlowOrder = .fixed, netOver: String?,
         perPacket: [String] = [], never: [String] = [], sums: [[String]] = [], outputLength: Int? = nil, loops: Bool = true,
         flowPerRun: Bool = false, prepare: @escaping () throws -> Void = {}) {
        self.flowPerRun = flowPerRun
        self.name = name
        self.isFloor = isFloor
        self.description = description
        self.programs = programs
        self.verdict = verdict
        frameLength = bytes.count
        frame = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 16)
        frame.copyMemory(from: bytes, byteCount: bytes.count)
        self.patch = patch
        switch order {
        case .fixed: mode = 0; flows = []
        case .distinct(let n): mode = 1; next = n; flows = []
        case .cycle(let o, let p): mode = 2; flows = o; position = p
        case .mix(let o, let n): mode = 3; flows = o; next = n
        }
        self.netOver = netOver
        self.perPacket = perPacket
        self.never = never
        self.sums = sums
        self.outputLength = outputLength
        self.loops = loops
        self.prepare = prepare
    }

    deinit { frame.deallocate() }

    /// Moves the frame to the next flow of its order.
    @inline(__always)
    func advance() {
        guard let patch else { return }
        switch mode {
        case 0:
            return
        case 1:
            patch.apply(frame, flow: next)
            next += 1
        case 2:
            patch.apply(frame, flow: Int(flows[position]))
            position = position + 1 == flows.count ? 0 : position + 1
        default:
            let k = flows[position]
            if k < 0 {
                patch.apply(frame, flow: next)
                next += 1
            } else {
                patch.apply(frame, flow: Int(k))
            }
            position = position + 1 == flows.count ? 0 : position + 1
        }
    }

    /// Where the bench loop starts: its mode and the next flow (distinct) or position (cycle).
    var loopFlow: (mode: UInt32, next: UInt32, position: UInt32) {
        (UInt32(mode), UInt32(truncatingIfNeeded: next), UInt32(position))
    }

    /// Moves past `n` flows the bench loop sent, so every later run (either
    /// method) carries the flows that follow: SYN flows stay new.
    func advanceLoop(by n: Int) {
        switch mode {
        case 1: next += n
        case 2: position = (position + n) % flows.count
        case 3:
            // The new flows the loop sent: the markers among the n entries from `position` on.
            var left = n
            while left > 0 {
                let take = min(left, flows.count - position)
                next += flows[position..<(position + take)].reduce(0) { $0 + ($1 < 0 ? 1 : 0) }
                position = (position + take) % flows.count
                left -= take
            }
        default: return
        }
    }

    var currentFrame: [UInt8] { Array(UnsafeRawBufferPointer(start: frame, count: frameLength)) }
}

/// A balancer build loaded for the benchmark (the embedded one, or another build
/// of bpf/balancer.bpf.c). A compared build reuses the main build's maps, as an
/// upgrade does: both then read and write the same memory, so a difference in
/// time is the code's, not where the kernel happened to place each build's maps
/// (which alone moves LRU paths by tens of ns here).
final class BalancerBuild {
    /// `embedded` or the object file's path.
    let label: String
    let object: BPFObject
    let program: BPFProgram
    let maps: BalancerMaps
    let controller: DataPlaneController

    init(elf: [UInt8], label: String, lruSize: Int, reusing other: BalancerBuild? = nil) throws {
        self.label = label
        object = try BPFObject(elf: elf, name: "xdplb")
        try object.setMaxEntries(map: XDPLB_MAP_CT, UInt32(Conntrack.buckets(forFlows: lruSize)))
        if let other {
            // An older build may lack maps this one has (e.g. xdplb_rings_prev): it shares the rest.
            for (name, map) in other.maps.all where object.hasMap(name) { try object.reuse(map: name, map) }
        }
        try object.load()
        program = try object.program(XDPLB_PROG_BALANCER)
        maps = try other?.maps ?? BalancerMaps(object: object)
        controller = other?.controller ?? DataPlaneController(maps: maps)
    }

    /// Backend id and generation the controller gave `addr`.
    func backendEntry(_ addr: IPAddress) throws -> xdplb_ct_entry {
        guard let id = controller.backendIDs[addr],
              let be = try maps.backends.lookup(id, as: xdplb_backend.self) else {
            throw BenchError("backend \(addr) has no id in the data plane")
        }
        var e = xdplb_ct_entry()
        e.backend_id = id
        e.gen = be.gen
        return e
    }
}

/// What one block of runs of a case measured.
struct BlockTiming {
    /// 10 % trimmed mean of the block's per-packet times: the per-round statistic.
    var trimmedMean: Double
    /// The same for the compared build's runs (nil: no comparison).
    var compareTrimmedMean: Double?
    /// The same for the floor runs interleaved with the case's (nil: none).
    var floorTrimmedMean: Double?
    var median: Double
    var mean: Double
    /// Wall-clock ns per BPF_PROG_TEST_RUN syscall (the case's, and the interleaved floor's).
    var wallPerCall: Double
    var floorWallPerCall: Double?
    var wrongVerdicts: Int
}

/// `xdplb bench`, data-plane part: the real balancer on a packet mix, each
/// packet timed by the kernel in its own BPF_PROG_TEST_RUN (repeat = 1), so
/// every timed run sees the original packet.
public final class DataPlaneBench {
    public let options: DataPlaneBenchOptions
    /// The build measured (index 0) and, with `comparePath`, the one compared with it.
    let builds: [BalancerBuild]
    var balancer: BalancerBuild { builds[0] }
    let benchObject: BPFObject
    let txProgram: BPFProgram
    let parseProgram: BPFProgram
    /// The restoring loop (nil with loopRepeat 0).
    let loop: BenchLoop?
    private(set) var config: XdplbConfig
    var cases: [BenchCase] = []
    private(set) var prefilled = 0
    /// The CPU every setup step and timed run is pinned to (nil: not pinned).
    private(set) var pinned: Int? = nil
    private let out: UnsafeMutableRawPointer
    private let outCapacity = 4096 + 512

    /// Fraction cut from each end of a block's per-packet times for its trimmed mean.
    static let trim = 0.10
    static let encapV4 = IPAddress("10.0.2.2")!
    static let encapV6 = IPAddress("fd00:2::2")!
    static let vip4 = IPAddress("10.100.0.1")!
    static let vip6 = IPAddress("fd00:100::1")!
    static let notVIP = IPAddress("10.100.0.200")!
    /// A VIP whose ring changed (second chance): its previous ring holds only `backendsAlt`.
    static let vipHop = IPAddress("10.100.0.4")!
    /// A VIP that keeps `backendsAlt` configured (a second hop must be PRESENT).
    static let vipAlt = IPAddress("10.100.0.5")!
    static let backendsAlt = (1...16).map { IPAddress("10.0.5.\($0)")! }
    static let backends4 = (1...16).map { IPAddress("10.0.4.\($0)")! }
    static let backends6 = (1...16).map { IPAddress("fd00:4::\(String($0, radix: 16))")! }

    /// Loads the balancer(s) and the floor programs and fills the maps.
    /// - Parameter log: progress lines (setup takes seconds with 1M flows).
    public init(options: DataPlaneBenchOptions, log: (String) -> Void = { _ in }) throws {
        self.options = options
        out = UnsafeMutableRawPointer.allocate(byteCount: outCapacity, alignment: 16)
        // Pin before anything touches the maps: setup and timed runs share one CPU's caches.
        if options.cpu != -1 {
            let cpu = options.cpu ?? currentCPU()
            if pinToCPU(cpu) { pinned = cpu } else { log("could not pin to CPU \(cpu); running unpinned") }
        }

        var node = NodeConfig(interface: "lo")
        node.encapSourceV4 = Self.encapV4
        node.encapSourceV6 = Self.encapV6
        node.hashSeed = 0x5eed
        node.pathMTU = 1500
        node.lruSize = options.lruSize
        let b4 = Self.backends4.map { BackendConfig(address: $0, weight: 100) }
        let b6 = Self.backends6.map { BackendConfig(address: $0, weight: 100) }
        let bAlt = Self.backendsAlt.map { BackendConfig(address: $0, weight: 100) }
        config = XdplbConfig(node: node, vips: [
            VIPConfig(address: Self.vip4, port: 80, proto: .tcp, ringSize: 65537, backends: b4),
            VIPConfig(address: Self.vip4, port: 53, proto: .udp, ringSize: 65537, backends: b4),
            VIPConfig(address: Self.vip6, port: 443, proto: .tcp, ringSize: 65537, backends: b6),
            VIPConfig(address: Self.vipHop, port: 80, proto: .tcp, ringSize: 65537, backends: b4),
            VIPConfig(address: Self.vipAlt, port: 80, proto: .tcp, ringSize: 65537, backends: bAlt),
        ])
        config.protection = Self.benchProtection(config.vips)
        // Before the change: vipHop had the other backends, so every flow's previous pick differs.
        var before = config
        before.vips[3].backends = bAlt

        func read(_ path: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("cannot read BPF object \(path)") }
            return [UInt8](data)
        }
        log("loading the balancer (conntrack for \(options.lruSize) flows) and the floor programs")
        var builds = [try BalancerBuild(elf: try options.objectPath.map(read) ?? BPFObjects.balancer,
                                        label: options.objectPath ?? "embedded", lruSize: options.lruSize)]
        if let path = options.comparePath {
            log("loading the compared balancer \(path) on the same maps")
            builds.append(try BalancerBuild(elf: try read(path), label: path, lruSize: options.lruSize, reusing: builds[0]))
        }
        self.builds = builds
        // Next hops on ifindex 1 (the test run's default ingress): XDP_TX, no FIB lookup.
        let hop = NextHop(ifindex: 1, destinationMAC: BenchFrames.gatewayMAC, sourceMAC: BenchFrames.nodeMAC)
        let hops = Dictionary(uniqueKeysWithValues: (Self.backends4 + Self.backends6 + Self.backendsAlt).map { ($0, hop) })
        try builds[0].controller.apply(before, nextHops: hops)
        try builds[0].controller.apply(config, nextHops: hops)

        benchObject = try BPFObject(elf: BPFObjects.bench, name: "xdplb_bench")
        try benchObject.load()
        txProgram = try benchObject.program("xdplb_bench_tx")
        parseProgram = try benchObject.program("xdplb_bench_parse")
        loop = options.loopRepeat > 0
            ? try BenchLoop(object: benchObject, tx: txProgram, parse: parseProgram, builds: builds.map(\.program)) : nil
        loop?.cpu = pinned

        try buildCases(log: log)
    }

    deinit { out.deallocate() }

    // MARK: setup

    /// Established flows of one case: their flow numbers (in FlowSpace) and conntrack buckets.
    struct FlowPool {
        var flows: [Int32] = []
        var buckets: [UInt32] = []
    }

    /// Establishes `count` flows of `space` to `vip` in `image`, each with the
    /// backend the Maglev ring gives it (what its SYN would have written).
    /// Flows whose bucket is already full are skipped, so every pool flow is held.
    private func pool(_ image: inout ConntrackImage, _ b: BalancerBuild, _ space: FlowSpace, vip: VIPConfig,
                      count: Int) throws -> FlowPool {
        guard let state = b.controller.vips[vip.name], state.ring != nil else { throw BenchError("VIP \(vip.name) has no ring") }
        guard let table = state.rebuiltTable() else { throw BenchError("VIP \(vip.name): no Maglev table") }
        var byAddress: [String: xdplb_ct_entry] = [:]
        for be in vip.backends { byAddress[be.address.description] = try b.backendEntry(be.address) }
        var p = FlowPool()
        var k = 0
        while p.flows.count < count {
            guard k < 8 * count + 1024 else { throw BenchError("conntrack too small for \(count) flows of \(vip.name)") }
            let src = space.source(k)
            let flow = FlowTuple(src: src, dst: vip.address, sport: space.sport(k), dport: vip.port, proto: vip.proto.number)
            guard let be = FlowPicker.backend(for: flow, vip: vip, table: table, seed: config.node.hashSeed),
                  let entry = byAddress[be.identity] else { throw BenchError("no backend for a flow of \(vip.name)") }
            let key = xdplb_flow_key(src: src, dst: vip.address, sport: flow.sport, dport: vip.port, proto: flow.proto)
            if let bucket = image.insert(key, entry) {
                p.flows.append(Int32(k))
                p.buckets.append(bucket)
            }
            k += 1
        }
        return p
    }

    /// Fills every free way with established flows of both TCP VIPs, as a busy
    /// node's table is full (flows are only ever replaced, never expired).
    /// Stops when full or after 8 × capacity flows (a few ways may stay free).
    private func fillBackground(_ image: inout ConntrackImage, _ b: BalancerBuild) throws {
        let vips = [config.vips[0], config.vips[2]]
        var entries: [[xdplb_ct_entry]] = []
        for v in vips { entries.append(try v.backends.map { try b.backendEntry($0.address) }) }
        let spaces = [FlowSpace(IPAddress("10.128.0.0")!), FlowSpace(IPAddress("2001:db8:bb::")!)]
        let capacity = image.buckets.count * Conntrack.ways
        var held = image.count
        var i = 0
        while held < capacity && i < 8 * capacity {
            let which = i & 1, k = i >> 1
            let v = vips[which], s = spaces[which]
            let key = xdplb_flow_key(src: s.source(k), dst: v.address, sport: s.sport(k), dport: v.port, proto: v.proto.number)
            if image.insert(key, entries[which][k % entries[which].count]) != nil { held += 1 }
            i += 1
        }
    }

    private func buildCases(log: (String) -> Void) throws {
        let progs = builds.map(\.program)
        let vip4 = config.vips[0], vip4udp = config.vips[1], vip6 = config.vips[2]
        let hot = options.hotFlows, cold = options.coldFlows

        let syn4 = FlowSpace(IPAddress("198.18.0.0")!)
        let syn6 = FlowSpace(IPAddress("2001:db8:18::")!)
        let ack4 = FlowSpace(IPAddress("203.0.113.0")!)
        let ack6 = FlowSpace(IPAddress("2001:db8:113::")!)
        let udp4 = FlowSpace(IPAddress("192.0.2.0")!)
        let cold4 = FlowSpace(IPAddress("100.64.0.0")!)
        let miss4 = FlowSpace(IPAddress("198.19.0.0")!)
        let hop4 = FlowSpace(IPAddress("198.20.0.0")!)

        let b = balancer
        var image = ConntrackImage(Conntrack(map: b.maps.conntrack, seed: config.node.hashSeed))
        log("filling conntrack (\(image.buckets.count) buckets × \(Conntrack.ways) ways): \(3 * hot) hot and \(cold) cold established flows the ACK, UDP and too-big cases use, then background flows in every free way")
        // The pools first, so each of their flows finds a free way in its bucket.
        let ack4Pool = try pool(&image, b, ack4, vip: vip4, count: hot)
        let ack6Pool = try pool(&image, b, ack6, vip: vip6, count: hot)
        let udp4Pool = try pool(&image, b, udp4, vip: vip4udp, count: hot)
        let cold4Pool = try pool(&image, b, cold4, vip: vip4, count: cold)
        try fillBackground(&image, b)
        try image.write()
        prefilled = image.count
        let finalImage = image
        /// Puts a pool's buckets back as written (blocks of conntrack misses evict; SYNs of an older program too).
        func establish(_ p: FlowPool) -> () throws -> Void {
            { try finalImage.write(buckets: p.buckets) }
        }

        var rng = SplitMix64(state: 0x5eed)
        let shuffled = cold4Pool.flows.shuffled(using: &rng)

        let ackFrame = BenchFrames.tcp(ack4.source(0), ack4.sport(0), vip4.address, 80, flags: [.ack, .psh], payload: 64)
        let notVIPFrame = BenchFrames.tcp(ack4.source(0), ack4.sport(0), Self.notVIP, 80, flags: [.ack, .psh], payload: 64)
        let tcpPatch = { (s: FlowSpace) in FramePatch(space: s, proto: PacketBuilder.tcpProto) }
        let gre4 = Int(XDPLB_GRE_OVERHEAD_V4), gre6 = Int(XDPLB_GRE_OVERHEAD_V6)
        let fwd4 = ["fwd_tx", "gre_v4"], fwd6 = ["fwd_tx", "gre_v6"]

        cases = [
            BenchCase(name: "floor_xdp_tx", isFloor: true,
                      description: "xdplb_bench_tx returns XDP_TX: the cost of a timed run itself (timer reads, dispatch)",
                      programs: [txProgram], verdict: .tx, frame: ackFrame, netOver: nil),
            BenchCase(name: "floor_parse_pass", isFloor: true,
                      description: "xdplb_bench_parse: the balancer's parse path (eth, IPv4, TCP ports) then XDP_PASS, on the v4_not_vip frame",
                      programs: [parseProgram], verdict: .pass, frame: notVIPFrame, netOver: "floor_xdp_tx"),
            BenchCase(name: "v4_not_vip",
                      description: "IPv4 TCP to an address with no VIP: parse, one VIP-address lookup, XDP_PASS untouched",
                      programs: progs, verdict: .pass, frame: notVIPFrame, netOver: "floor_parse_pass",
                      perPacket: ["rx", "pass_not_vip"], never: ["fwd_tx"], outputLength: notVIPFrame.count,
                      loops: true),
            BenchCase(name: "v4_tcp_syn",
                      description: "IPv4 TCP SYN of a new flow (a different flow every run): Maglev ring, no conntrack write (every way of the full table holds an established flow, which a SYN never evicts), GRE v4, XDP_TX",
                      programs: progs, verdict: .tx,
                      frame: BenchFrames.tcp(syn4.source(0), syn4.sport(0), vip4.address, 80, flags: .syn, payload: 0),
                      patch: tcpPatch(syn4), order: .distinct(next: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "new_flow"] + fwd4, never: ["ct_hit", "ct_miss"], outputLength: 54 + gre4),
            BenchCase(name: "v6_tcp_syn",
                      description: "IPv6 TCP SYN of a new flow (a different flow every run): Maglev ring, no conntrack write (full table of established flows), GRE v6, XDP_TX",
                      programs: progs, verdict: .tx,
                      frame: BenchFrames.tcp(syn6.source(0), syn6.sport(0), vip6.address, 443, flags: .syn, payload: 0),
                      patch: tcpPatch(syn6), order: .distinct(next: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "new_flow"] + fwd6, never: ["ct_hit", "ct_miss"], outputLength: 74 + gre6),
            BenchCase(name: "v4_tcp_ack",
                      description: "IPv4 TCP ACK of an established flow (\(hot) flows in turn): conntrack hit, GRE v4, XDP_TX",
                      programs: progs, verdict: .tx, frame: ackFrame,
                      patch: tcpPatch(ack4), order: .cycle(order: ack4Pool.flows, position: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "ct_hit"] + fwd4, never: ["ct_miss", "new_flow"],
                      outputLength: ackFrame.count + gre4, prepare: establish(ack4Pool)),
            BenchCase(name: "v6_tcp_ack",
                      description: "IPv6 TCP ACK of an established flow (\(hot) flows in turn): conntrack hit, GRE v6, XDP_TX",
                      programs: progs, verdict: .tx,
                      frame: BenchFrames.tcp(ack6.source(0), ack6.sport(0), vip6.address, 443, flags: [.ack, .psh], payload: 64),
                      patch: tcpPatch(ack6), order: .cycle(order: ack6Pool.flows, position: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "ct_hit"] + fwd6, never: ["ct_miss", "new_flow"],
                      outputLength: 74 + 64 + gre6, prepare: establish(ack6Pool)),
            BenchCase(name: "v4_udp",
                      description: "IPv4 UDP datagram of an established flow (\(hot) flows in turn): conntrack hit, GRE v4, XDP_TX",
                      programs: progs, verdict: .tx,
                      frame: BenchFrames.udp(udp4.source(0), udp4.sport(0), vip4udp.address, 53, payload: 64),
                      patch: FramePatch(space: udp4, proto: PacketBuilder.udpProto), order: .cycle(order: udp4Pool.flows, position: 0),
                      netOver: "floor_xdp_tx", perPacket: ["rx", "ct_hit"] + fwd4, never: ["ct_miss", "new_flow"],
                      outputLength: 42 + 64 + gre4, prepare: establish(udp4Pool)),
            BenchCase(name: "v4_icmp_too_big",
                      description: "IPv4 DF TCP segment, 1500-byte IP packet, established flow: conntrack hit, 1524 > path MTU 1500, answered with ICMP frag-needed (XDP_TX)",
                      programs: progs, verdict: .tx,
                      frame: BenchFrames.tcp(ack4.source(0), ack4.sport(0), vip4.address, 80, flags: [.ack, .psh], payload: 1460),
                      patch: tcpPatch(ack4), order: .cycle(order: ack4Pool.flows, position: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "ct_hit", "tx_too_big"], never: ["fwd_tx", "drop_too_big"],
                      outputLength: 14 + 20 + 8 + Int(XDPLB_ICMP_QUOTE_LEN), loops: false, prepare: establish(ack4Pool)),
            BenchCase(name: "v4_tcp_ack_cold",
                      description: "IPv4 TCP ACK, conntrack hit, \(cold) established flows in random order: conntrack lookups miss the CPU caches",
                      programs: progs, verdict: .tx, frame: ackFrame,
                      patch: tcpPatch(cold4), order: .cycle(order: shuffled, position: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "ct_hit"] + fwd4, never: ["ct_miss", "new_flow"],
                      outputLength: ackFrame.count + gre4, prepare: establish(cold4Pool)),
            BenchCase(name: "v4_tcp_ack_miss",
                      description: "IPv4 TCP ACK of a flow conntrack has never seen (a different flow every run; e.g. moved here by ECMP): conntrack miss, Maglev ring, conntrack insert (evicts), GRE v4, XDP_TX",
                      programs: progs, verdict: .tx,
                      frame: BenchFrames.tcp(miss4.source(0), miss4.sport(0), vip4.address, 80, flags: [.ack, .psh], payload: 64),
                      patch: tcpPatch(miss4), order: .distinct(next: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "ct_miss", "new_flow"] + fwd4, never: ["ct_hit", "second_hop"],
                      outputLength: ackFrame.count + gre4, loops: false, flowPerRun: true),
            BenchCase(name: "v4_tcp_ack_miss_hop",
                      description: "The same to a VIP whose ring changed (second chance): conntrack miss, current and previous ring, the previous backend as second hop in the GRE key (8-byte GRE), conntrack insert with the hop, XDP_TX",
                      programs: progs, verdict: .tx,
                      frame: BenchFrames.tcp(hop4.source(0), hop4.sport(0), Self.vipHop, 80, flags: [.ack, .psh], payload: 64),
                      patch: tcpPatch(hop4), order: .distinct(next: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "ct_miss", "new_flow", "second_hop"] + fwd4, never: ["ct_hit"],
                      outputLength: ackFrame.count + gre4 + Int(XDPLB_GRE_KEY_LEN), loops: false, flowPerRun: true),
        ]
        // A realistic mix: ACKs of the cold pool's established flows by Zipf popularity, 5 % new flows.
        let mix = ZipfMix.order(pool: cold4Pool.flows, count: Int(XDPLB_BENCH_FLOWS_MAX), s: Self.mixZipfExponent,
                                newFraction: Self.mixNewFraction, rng: &rng)
        cases.append(
            BenchCase(name: "v4_tcp_mix",
                      description: "IPv4 TCP ACKs, a realistic mix: 95 % of \(cold) established flows by Zipf popularity (s = \(Self.mixZipfExponent); the top 1 % of flows get ~\(Int((Self.zipfShare(top: 0.01, of: cold, s: Self.mixZipfExponent) * 100).rounded())) % of these packets), 5 % flows never seen (conntrack miss, Maglev ring, insert): hits and misses by their real shares",
                      programs: progs, verdict: .tx, frame: ackFrame,
                      patch: tcpPatch(cold4), order: .mix(order: mix, next: Self.mixFirstNewFlow), netOver: "floor_xdp_tx",
                      perPacket: ["rx"] + fwd4, never: ["second_hop"], sums: [["ct_hit", "ct_miss"]],
                      outputLength: ackFrame.count + gre4, flowPerRun: true, prepare: establish(cold4Pool)))
        // The same SYN and ACK cases with protection on (`_protect`): the node flag set for their blocks only.
        let synP4 = FlowSpace(IPAddress("198.21.0.0")!), synP6 = FlowSpace(IPAddress("2001:db8:21::")!)
        let noDrop = ["drop_deny", "drop_rate_src_syn", "drop_rate_src_pps"]
        cases += [
            BenchCase(name: "v4_tcp_syn_protect",
                      description: "v4_tcp_syn with protection on: \(Self.benchDenyPrefixes) deny prefixes (one LPM lookup, no match), per-/32 limits on new flows and packets (never reached): clock read, source state (LRU), two GCRA charges",
                      programs: progs, verdict: .tx,
                      frame: BenchFrames.tcp(synP4.source(0), synP4.sport(0), vip4.address, 80, flags: .syn, payload: 0),
                      patch: tcpPatch(synP4), order: .distinct(next: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "new_flow"] + fwd4, never: ["ct_hit", "ct_miss"] + noDrop, outputLength: 54 + gre4),
            BenchCase(name: "v6_tcp_syn_protect",
                      description: "v6_tcp_syn with protection on (as v4_tcp_syn_protect)",
                      programs: progs, verdict: .tx,
                      frame: BenchFrames.tcp(synP6.source(0), synP6.sport(0), vip6.address, 443, flags: .syn, payload: 0),
                      patch: tcpPatch(synP6), order: .distinct(next: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "new_flow"] + fwd6, never: ["ct_hit", "ct_miss"] + noDrop, outputLength: 74 + gre6),
            BenchCase(name: "v4_tcp_ack_protect",
                      description: "v4_tcp_ack with protection on: deny lookup and the packet limit's charge (a conntrack hit is no new flow)",
                      programs: progs, verdict: .tx, frame: ackFrame,
                      patch: tcpPatch(ack4), order: .cycle(order: ack4Pool.flows, position: 0), netOver: "floor_xdp_tx",
                      perPacket: ["rx", "ct_hit"] + fwd4, never: ["ct_miss", "new_flow"] + noDrop,
                      outputLength: ackFrame.count + gre4, prepare: establish(ack4Pool)),
        ]
        if let only = options.only { cases = cases.filter { $0.isFloor || only.contains($0.name) } }
        let maps = balancer.maps
        for c in cases {
            let prepare = c.prepare, on = c.name.hasSuffix("_protect")
            c.prepare = {
                var cfg = try maps.config.lookup(UInt32(0), as: xdplb_node_cfg.self) ?? xdplb_node_cfg()
                let flags = on ? cfg.flags | UInt32(XDPLB_NODE_F_PROTECT) : cfg.flags & ~UInt32(XDPLB_NODE_F_PROTECT)
                if flags != cfg.flags {
                    cfg.flags = flags
                    try maps.config.update(UInt32(0), cfg)
                }
                try prepare()
            }
        }
    }

    /// The mix case's Zipf exponent and share of new flows.
    static let mixZipfExponent = 1.0, mixNewFraction = 0.05
    /// The mix case's first new flow number: past every flow a pool may hold.
    static let mixFirstNewFlow = 4_000_000

    /// The share of all draws the `top` fraction of `n` ranks gets under Zipf(s).
    static func zipfShare(top: Double, of n: Int, s: Double) -> Double {
        var head = 0.0, all = 0.0
        let cut = max(1, Int(Double(n) * top))
        for r in 0..<n {
            let w = 1 / pow(Double(r + 1), s)
            all += w
            if r < cut { head += w }
        }
        return head / all
    }

    /// Deny prefixes of the `_protect` cases (none holds a bench source).
    static let benchDenyPrefixes = 1024

    /// The protection of the `_protect` cases: `benchDenyPrefixes` deny prefixes
    /// (v4 /24s in 172.16/12, v6 /48s in 2001:db8:f000::/36) and limits per /32
    /// and /128 source that the bench never reaches.
    static func benchProtection(_ vips: [VIPConfig]) -> ProtectionConfig {
        var p = ProtectionConfig()
        p.defaults.deny = (0..<benchDenyPrefixes / 2).map { IPPrefix("172.\(16 + $0 / 256).\($0 % 256).0/24")! }
            + (0..<benchDenyPrefixes / 2).map { IPPrefix("2001:db8:f\(String(format: "%03x", $0))::/48")! }
        var limits = ProtectionRules()
        limits.newFlowsPerSecond = ProtectionConfig.maxRate
        limits.newFlowBurst = ProtectionConfig.maxRate
        limits.packetsPerSecond = ProtectionConfig.maxRate
        limits.packetBurst = ProtectionConfig.maxRate
        limits.sourcePrefixV4 = 32
        limits.sourcePrefixV6 = 128
        for v in vips where v.port == 80 || v.port == 443 { p.perVIP[v.name] = limits }
        return p
    }

    // MARK: running

    /// CPUs `parallelCPUs` may name: 0 ..< this (the bench loop's state entries).
    public static let maxLoopCPUs = Int(XDPLB_BENCH_CPUS)

    /// Every case name, in run order.
    public static let caseNames = ["floor_xdp_tx", "floor_parse_pass", "v4_not_vip", "v4_tcp_syn", "v6_tcp_syn",
                                   "v4_tcp_ack", "v6_tcp_ack", "v4_udp", "v4_icmp_too_big", "v4_tcp_ack_cold",
                                   "v4_tcp_ack_miss", "v4_tcp_ack_miss_hop", "v4_tcp_mix", "v4_tcp_syn_protect", "v6_tcp_syn_protect",
                                   "v4_tcp_ack_protect"]

    /// `n` runs of `c`, each a BPF_PROG_TEST_RUN with repeat = 1; the kernel's
    /// duration of each goes into `hist`. On each frame, every program of `c`
    /// runs (the compared build before or after the main one, alternately), then `floor` if
    /// given: all see the same machine, so differences are paired and robust
    /// to load from elsewhere.
    private func timeBlock(_ c: BenchCase, floor: BenchCase? = nil, runs n: Int,
                           hist: inout NanosecondHistogram) throws -> BlockTiming {
        let fd = c.programs[0].fd
        let cfd = c.programs.count > 1 ? c.programs[1].fd : -1
        let len = UInt32(c.frameLength)
        let want = c.verdict.rawValue
        let ffd = floor?.program.fd ?? -1
        let fframe = floor?.frame
        let flen = UInt32(floor?.frameLength ?? 0)
        let fwant = floor?.verdict.rawValue ?? 0
        let out = self.out
        let cap = UInt32(outCapacity)
        var block = NanosecondHistogram(), compareBlock = NanosecondHistogram(), floorBlock = NanosecondHistogram()
        var failure: Int32 = 0, failedFD: Int32 = fd
        var sum: UInt64 = 0, csum: UInt64 = 0, fsum: UInt64 = 0, wsum: UInt64 = 0, fwsum: UInt64 = 0, wrong = 0
        block.buckets.withUnsafeMutableBufferPointer { b in
            compareBlock.buckets.withUnsafeMutableBufferPointer { cb in
                floorBlock.buckets.withUnsafeMutableBufferPointer { fb in
                    var outLen: UInt32 = 0, ret: UInt32 = 0, dur: UInt32 = 0
                    let last = UInt32(b.count - 1)
                    for i in 0..<n {
                        c.advance()
                        // The compared build runs first on every other frame, so neither gains from going second.
                        if cfd >= 0 && i & 1 == 1 {
                            let rc = xdplb_test_run_xdp(cfd, c.frame, len, out, cap, &outLen, 1, 0, &ret, &dur)
                            if rc != 0 { failure = rc; failedFD = cfd; return }
                            if ret != want { wrong += 1 }
                            cb[Int(min(dur, last))] += 1
                            csum &+= UInt64(dur)
                            // A case that needs a flow conntrack never saw gives each build its own.
                            if c.flowPerRun { c.advance() }
                        }
                        let t0 = monotonicNs()
                        var rc = xdplb_test_run_xdp(fd, c.frame, len, out, cap, &outLen, 1, 0, &ret, &dur)
                        let t1 = monotonicNs()
                        wsum &+= t1 &- t0
                        if rc != 0 { failure = rc; return }
                        if ret != want { wrong += 1 }
                        b[Int(min(dur, last))] += 1
                        sum &+= UInt64(dur)
                        if cfd >= 0 && i & 1 == 0 {
                            if c.flowPerRun { c.advance() }
                            rc = xdplb_test_run_xdp(cfd, c.frame, len, out, cap, &outLen, 1, 0, &ret, &dur)
                            if rc != 0 { failure = rc; failedFD = cfd; return }
                            if ret != want { wrong += 1 }
                            cb[Int(min(dur, last))] += 1
                            csum &+= UInt64(dur)
                        }
                        if let fframe {
                            let t2 = monotonicNs()
                            rc = xdplb_test_run_xdp(ffd, fframe, flen, out, cap, &outLen, 1, 0, &ret, &dur)
                            fwsum &+= monotonicNs() &- t2
                            if rc != 0 { failure = rc; failedFD = ffd; return }
                            if ret != fwant { wrong += 1 }
                            fb[Int(min(dur, last))] += 1
                            fsum &+= UInt64(dur)
                        }
                    }
                }
            }
        }
        if failure != 0 {
            let name = failedFD == ffd ? floor!.program.name : failedFD == cfd ? "\(c.programs[1].name) (compared)" : c.program.name
            throw BPFError("test run of \(name) (\(c.name))", errno: failure)
        }
        block.added(count: n, sum: sum)
        hist.merge(block)
        var floorMean: Double? = nil, compareMean: Double? = nil
        if floor != nil {
            floorBlock.added(count: n, sum: fsum)
            floorMean = floorBlock.trimmedMean(Self.trim)
        }
        if cfd >= 0 {
            compareBlock.added(count: n, sum: csum)
            compareMean = compareBlock.trimmedMean(Self.trim)
        }
        return BlockTiming(trimmedMean: block.trimmedMean(Self.trim), compareTrimmedMean: compareMean,
                           floorTrimmedMean: floorMean, median: block.percentile(0.5), mean: block.mean,
                           wallPerCall: Double(wsum) / Double(max(n, 1)),
                           floorWallPerCall: floor == nil ? nil : Double(fwsum) / Double(max(n, 1)), wrongVerdicts: wrong)
    }

    /// Calls of the restoring loop per case per round: as many runs as the repeat = 1 blocks.
    var loopCalls: Int { max(1, options.packets / max(1, options.loopRepeat)) }
    /// Runs per parallel loop call: at least 1M, so the ~20 ms each test run spends
    /// around the runs (the kernel's XDP dispatcher update) is a small part of the overlap.
    var parallelRepeat: Int { max(options.loopRepeat, min(1_000_000, 5 * options.loopRepeat)) }

    /// The bench-loop slot(s) of a case's program(s).
    private func loopSlots(_ c: BenchCase) -> [UInt32] {
        if c.program === txProgram { return [BenchLoop.txSlot] }
        if c.program === parseProgram { return [BenchLoop.parseSlot] }
        return builds.indices.map { BenchLoop.buildSlot($0) }
    }

    /// One run of each program through BPFProgram.testRun to check the output before timing.
    private func sanityCheck(_ c: BenchCase) throws -> String? {
        try c.prepare()
        c.advance()
        for p in c.programs {
            let r = try p.testRun(c.currentFrame)
            if r.action != c.verdict { return "verdict \(r.action?.description ?? "ret \(r.returnValue)"), expected \(c.verdict)" }
            if let want = c.outputLength, r.output.count != want { return "output is \(r.output.count) bytes, expected \(want)" }
        }
        return nil
    }

    /// Runs every round and summarises. `log` gets a line per round.
    public func run(log: (String) -> Void = { _ in }) throws -> DataPlaneReport {
        var problems: [String: [String]] = [:]
        for c in cases {
            if let p = try sanityCheck(c) { problems[c.name, default: []].append("sanity run: \(p)") }
        }
        if options.warmup > 0 {
            log("warm-up: \(options.warmup) runs per case")
            var scratch = NanosecondHistogram()
            for c in cases {
                try c.prepare()
                _ = try timeBlock(c, runs: options.warmup, hist: &scratch)
            }
        }

        var totals = [String: NanosecondHistogram]()
        var values = [String: [Double]](), means = [String: [Double]](), walls = [String: [Double]]()
        var moved = [String: [String: UInt64]]()
        var loopValues = [String: [Double]](), loopNets = [String: [Double]](), loopDeltas = [String: [Double]]()
        var loopRuns = [String: Int]()
        var parallelCase = [String: [[Double]]](), parallelNet = [String: [[Double]]](), parallelOverlap = [String: Double]()
        var parallelAloneNet = [String: [Double]]()
        var nets = [String: [Double]](), netWalls = [String: [Double]](), floorsInBlock = [String: [Double]]()
        var compared = [String: [Double]](), deltas = [String: [Double]]()
        var wrong = [String: Int]()
        for round in 1...options.rounds {
            let t0 = monotonicNs()
            for c in cases {
                try c.prepare()
                let before = try CounterReader.global(balancer.maps)
                var h = totals[c.name] ?? NanosecondHistogram()
                let floor = c.netOver.flatMap { name in cases.first { $0.name == name } }
                let t = try timeBlock(c, floor: floor, runs: options.packets, hist: &h)
                totals[c.name] = h
                if let loop, c.loops {
                    let floorSlot = floor.map { loopSlots($0)[0] }
                    let lt = try loop.time(c, buildSlots: loopSlots(c), floor: floor.map { (floorSlot!, $0.verdict) },
                                           calls: loopCalls, repeatCount: UInt32(options.loopRepeat), out: out,
                                           cap: UInt32(outCapacity), trim: Self.trim)
                    loopValues[c.name, default: []].append(lt.case_)
                    if let f = lt.floor { loopNets[c.name, default: []].append(lt.case_ - f) }
                    if let x = lt.compared { loopDeltas[c.name, default: []].append(x - lt.case_) }
                    loopRuns[c.name, default: 0] += lt.balancerRuns
                    wrong[c.name, default: 0] += lt.wrongVerdicts
                    if let cpus = options.parallelCPUs {
                        let pt = try loop.timeParallel(c, slot: loopSlots(c)[0], floor: floor.map { (floorSlot!, $0.verdict) }, cpus: cpus,
                                                       calls: loopCalls, repeatCount: UInt32(parallelRepeat), trim: Self.trim)
                        parallelCase[c.name, default: []].append(pt.case_)
                        parallelOverlap[c.name] = min(parallelOverlap[c.name] ?? 1, pt.overlap)
                        if !pt.floor.isEmpty { parallelNet[c.name, default: []].append(zip(pt.case_, pt.floor).map { $0 - $1 }) }
                        if let af = pt.aloneFloor { parallelAloneNet[c.name, default: []].append(pt.alone - af) }
                        loopRuns[c.name, default: 0] += pt.balancerRuns
                        wrong[c.name, default: 0] += pt.wrongVerdicts
                    }
                }
                for (k, v) in try CounterReader.global(balancer.maps) {
                    moved[c.name, default: [:]][k, default: 0] += v.packets - (before[k]?.packets ?? 0)
                }
                values[c.name, default: []].append(t.trimmedMean)
                if let ft = t.floorTrimmedMean {
                    nets[c.name, default: []].append(t.trimmedMean - ft)
                    floorsInBlock[c.name, default: []].append(ft)
                }
                if let ct = t.compareTrimmedMean {
                    compared[c.name, default: []].append(ct)
                    deltas[c.name, default: []].append(ct - t.trimmedMean)
                }
                if let fw = t.floorWallPerCall { netWalls[c.name, default: []].append(t.wallPerCall - fw) }
                means[c.name, default: []].append(t.mean)
                walls[c.name, default: []].append(t.wallPerCall)
                wrong[c.name, default: 0] += t.wrongVerdicts
            }
            let secs = Double(monotonicNs() - t0) / 1e9
            log("round \(round)/\(options.rounds) done in \(String(format: "%.1f", secs)) s: "
                + cases.map { c in
                    "\(c.name) \(String(format: "%.0f", values[c.name]!.last!))"
                        + (deltas[c.name].map { String(format: " (compared %+.0f)", $0.last!) } ?? "")
                }.joined(separator: ", "))
        }

        // Counter checks: the path each case claims is the path its packets took (in every build).
        let runs = UInt64(options.rounds * options.packets)
        var results: [String: CaseResult] = [:]
        for c in cases {
            var p = problems[c.name] ?? []
            if let w = wrong[c.name], w > 0 { p.append("\(w) runs returned another verdict than \(c.verdict)") }
            var seen: [String] = []
            if !c.isFloor {
                // Shared maps: every build's runs count, so each frame counts once per build;
                // the loop's runs count too.
                let want = runs * UInt64(builds.count) + UInt64(loopRuns[c.name] ?? 0)
                let d = moved[c.name] ?? [:]
                for k in c.perPacket {
                    let got = d[k] ?? 0
                    seen.append("\(k) \(got)/\(want)")
                    if got != want { p.append("\(k) moved \(got), expected \(want)") }
                }
                for k in c.never where (d[k] ?? 0) != 0 { p.append("\(k) moved \(d[k]!), expected 0") }
                for group in c.sums {
                    let got = group.reduce(UInt64(0)) { $0 + (d[$1] ?? 0) }
                    seen.append(group.map { "\($0) \(d[$0] ?? 0)" }.joined(separator: " + ") + " = \(got)/\(want)")
                    if got != want { p.append("\(group.joined(separator: " + ")) moved \(got), expected \(want)") }
                }
            }
            if c.isFloor { seen.append("no balancer counters (not the balancer)") }
            let h = totals[c.name]!
            let v = values[c.name]!
            let med = median(v)
            var r = CaseResult(
                name: c.name, kind: c.isFloor ? "floor" : "case", description: c.description, program: c.program.name,
                verdict: c.verdict.description, frameBytes: c.frameLength, packets: Int(runs),
                nsMedian: med, nsRoundMin: v.min()!, nsRoundMax: v.max()!,
                nsMean: median(means[c.name]!), p10: h.percentile(0.10), p50: h.percentile(0.50),
                p90: h.percentile(0.90), p99: h.percentile(0.99), nsRounds: v,
                netOver: c.netOver, floorInBlockNs: floorsInBlock[c.name].map { median($0) }, netNs: nil,
                mpps: med > 0 ? 1000 / med : 0, mppsNet: nil,
                wallNsPerCall: median(walls[c.name]!), netWallNs: netWalls[c.name].map { median($0) },
                loopNs: loopValues[c.name].map { median($0) },
                loopNetNs: loopNets[c.name].map { median($0) },
                parallelLoopNs: parallelCase[c.name].map { rounds in (0..<rounds[0].count).map { cpu in median(rounds.map { $0[cpu] }) } },
                parallelLoopNetNs: parallelNet[c.name].map { rounds in (0..<rounds[0].count).map { cpu in median(rounds.map { $0[cpu] }) } },
                parallelOverlap: parallelOverlap[c.name],
                parallelAloneNetNs: parallelAloneNet[c.name].map { median($0) },
                loopCompareDeltaNs: loopDeltas[c.name].map { median($0) },
                compare: nil,
                checkPassed: p.isEmpty, check: p.isEmpty ? seen.joined(separator: ", ") : p.joined(separator: "; "))
            if let n = nets[c.name] {
                r.netNs = median(n)
                r.mppsNet = r.netNs! > 0 ? 1000 / r.netNs! : .infinity
            }
            if let cv = compared[c.name], let dv = deltas[c.name] {
                let delta = median(dv)
                r.compare = CompareResult(object: builds[1].label, nsMedian: median(cv), deltaNs: delta,
                                          deltaRounds: dv, deltaPercent: med > 0 ? 100 * delta / med : 0,
                                          netNs: r.netNs.map { $0 + delta })
            }
            results[c.name] = r
        }

        var programs: [String: ProgramStats] = [:]
        for (i, p) in ([balancer.program, txProgram, parseProgram] + builds.dropFirst().map(\.program)).enumerated() {
            let info = try p.info()
            let key = i >= 3 ? "\(p.name) (compared)" : p.name
            programs[key] = ProgramStats(name: key, verifiedInsns: Int(info.verifiedInstructions),
                                         xlatedInsns: Int(info.xlatedBytes / 8), jitedBytes: Int(info.jitedBytes))
        }

        let hot = options.hotFlows, cold = options.coldFlows
        return DataPlaneReport(
            timing: "each packet is its own BPF_PROG_TEST_RUN with repeat = 1 (repeat > 1 would re-run on the already encapsulated buffer), timed by the kernel's own duration (ktime_get_ns() around the program run, inside the kernel), not wall clock: the syscall, packet copy and page setup (~1.5-3 µs of noisy wall time per call here) stay outside it, and the floors are measured the same way and interleaved with each case, so case − floor is the program's own cost. Each run starts right after a syscall (caches, TLB and branch predictors disturbed), so these are upper bounds for a driver's NAPI loop. The loop columns time the same cases the other way: \(options.loopRepeat > 0 ? "one BPF_PROG_TEST_RUN with repeat = \(options.loopRepeat) of xdplb_bench_loop, which puts the original frame back before every run (head, first bytes, next flow) and tail-calls the program; floors go through the same loop, so loop net is the program's own cost with caches warm, as in a NAPI loop" : "off (--loop-repeat 0)").",
            setup: "balancer \(balancer.label); VIPs 10.100.0.1:80/tcp, 10.100.0.1:53/udp (16 IPv4 backends) and [fd00:100::1]:443/tcp (16 IPv6 backends), ring 65537, next hops set (ifindex 1 = test-run ingress → XDP_TX, no FIB lookup), path MTU 1500; conntrack for \(options.lruSize) flows (\(Conntrack.buckets(forFlows: options.lruSize)) buckets × \(Conntrack.ways) ways) filled: \(prefilled) flows held (\(3 * hot) hot and \(cold) cold established flows, the rest background), the pools' buckets re-written untimed before each block that uses them, since miss blocks (and an older program's SYN blocks) evict",
            rounds: options.rounds, packetsPerRound: options.packets, lruSize: options.lruSize, lruPrefilled: prefilled,
            cpu: pinned, parallelCPUs: options.parallelCPUs, parallelRepeat: options.parallelCPUs == nil ? nil : parallelRepeat, compareObject: builds.count > 1 ? builds[1].label : nil,
            order: cases.map(\.name), cases: results, programs: programs,
            allChecksPassed: results.values.allSatisfy(\.checkPassed))
    }
}
