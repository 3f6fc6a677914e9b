import BPF
import Config
import CXdplb
import DataPlane
import Foundation
import Maglev
import NetAddress

/// One config the control-plane benchmark applies: VIPs × backends per VIP drawn
/// from a pool, plus one "hot" backend shared by the first `hotVIPs` VIPs (the
/// backend whose health change is timed). With `vipsPerList` > 1, that many
/// VIPs in a row (ports 80, 81, ... of one address, as the ports of one
/// service) have the same backend list.
public struct ApplyScenario: Sendable {
    public var vips: Int
    public var backendsPerVIP: Int
    public var backendPool: Int
    public var hotVIPs: Int
    /// VIPs in a row with one backend list, at least 1 (the initializer raises 0 or less to 1).
    public let vipsPerList: Int

    public init(vips: Int, backendsPerVIP: Int, backendPool: Int, hotVIPs: Int, vipsPerList: Int = 1) {
        self.vips = vips
        self.backendsPerVIP = backendsPerVIP
        self.backendPool = backendPool
        self.hotVIPs = hotVIPs
        self.vipsPerList = max(1, vipsPerList)
    }
}

/// Settings of the control-plane benchmark.
public struct ControlPlaneBenchOptions: Sendable {
    /// Maglev ring sizes and backend counts to build.
    public var maglevSizes = [65_537, 655_373]
    public var maglevBackends = [10, 100, 1000]
    /// Builds per (size, backends); the median is reported.
    public var maglevRepeats = 3
    /// The applies: 512 × 100 (the old limit) and the fleet-scale 4,096 × 100 over 10,000 backends.
    public var scenarios = [ApplyScenario(vips: 512, backendsPerVIP: 100, backendPool: 4000, hotVIPs: 100),
                            ApplyScenario(vips: 4096, backendsPerVIP: 100, backendPool: 10_000, hotVIPs: 100)]
    public var ringSize = 65_537
    public var lruSize = 1_000_000

    public init() {}

    /// A few-second version for the test suite.
    public static var smoke: ControlPlaneBenchOptions {
        var o = ControlPlaneBenchOptions()
        o.maglevSizes = [65_537]
        o.maglevBackends = [10]
        o.maglevRepeats = 1
        o.scenarios = [ApplyScenario(vips: 8, backendsPerVIP: 10, backendPool: 40, hotVIPs: 4),
                       ApplyScenario(vips: 8, backendsPerVIP: 10, backendPool: 40, hotVIPs: 4, vipsPerList: 2)]
        o.ringSize = 251
        o.lruSize = 4096
        return o
    }
}

/// `xdplb bench --control-plane`: Maglev builds and a full controller apply.
public enum ControlPlaneBench {
    static func ms(_ from: UInt64) -> Double { Double(monotonicNs() - from) / 1e6 }

    /// Times MaglevTable.init for every (size, backends) pair.
    public static func maglev(_ o: ControlPlaneBenchOptions, log: (String) -> Void = { _ in }) throws -> [MaglevBuildResult] {
        var results: [MaglevBuildResult] = []
        for size in o.maglevSizes {
            for n in o.maglevBackends {
                let backends = (0..<n).map { MaglevBackend(identity: "10.\(4 + $0 / 65536).\(($0 / 256) % 256).\($0 % 256)", weight: 100) }
                var times: [Double] = []
                for _ in 0..<max(1, o.maglevRepeats) {
                    let t = monotonicNs()
                    let table = try MaglevTable(backends: backends, size: size)
                    times.append(ms(t))
                    precondition(table.size == size)
                }
                log("maglev M=\(size) backends=\(n): \(String(format: "%.2f", median(times))) ms")
                results.append(MaglevBuildResult(size: size, backends: n, repeats: times.count, msMedian: median(times),
                                                 msMin: times.min()!, msMax: times.max()!))
            }
        }
        return results
    }

    /// The hot backend: in the first `hotVIPs` VIPs, outside the pool.
    static let hotBackend = IPAddress("10.63.255.254")!

    /// The config of a scenario: VIP i is list l = i / vipsPerList's port
    /// 80 + i mod vipsPerList (IPv4, 10.200.x.y, tcp), with backends
    /// pool[(l·(perVIP + 1) + j) mod pool], j < perVIP, so every pool address
    /// serves several lists and no two lists are the same (with one VIP per
    /// list, every build is real work); the first `hotVIPs` VIPs have the hot
    /// backend in place of their last one.
    static func bigConfig(_ s: ApplyScenario, ringSize: Int, lruSize: Int) -> XdplbConfig {
        var node = NodeConfig(interface: "lo")
        node.encapSourceV4 = IPAddress("10.0.2.2")!
        node.encapSourceV6 = IPAddress("fd00:2::2")!
        node.lruSize = lruSize
        let pool = (0..<s.backendPool).map { IPAddress("10.\(64 + $0 / 65536).\(($0 / 256) % 256).\($0 % 256)")! }
        let perList = s.vipsPerList
        let vips = (0..<s.vips).map { i in
            let l = i / perList
            var backends = (0..<s.backendsPerVIP).map { BackendConfig(address: pool[(l * (s.backendsPerVIP + 1) + $0) % pool.count]) }
            if i < s.hotVIPs { backends[backends.count - 1] = BackendConfig(address: hotBackend) }
            return VIPConfig(address: IPAddress("10.200.\(l / 256).\(l % 256)")!, port: UInt16(80 + i % perList), proto: .tcp,
                             ringSize: ringSize, backends: backends)
        }
        return XdplbConfig(node: node, vips: vips)
    }

    /// Loads a private balancer, applies a scenario's config, and measures time, RSS and map memory.
    public static func apply(_ s: ApplyScenario, _ o: ControlPlaneBenchOptions, log: (String) -> Void = { _ in }) throws -> ApplyResult {
        let cfg = bigConfig(s, ringSize: o.ringSize, lruSize: o.lruSize)
        let distinct = Set(cfg.vips.flatMap { $0.backends.map(\.address) }).count
        let rssBeforeLoad = procStatusBytes("VmRSS")
        log("apply: loading a balancer (LRU \(o.lruSize)) for \(s.vips) VIPs × \(s.backendsPerVIP) backends, ring \(o.ringSize)")
        let balancer = try Balancer(lruSize: o.lruSize)
        let controller = DataPlaneController(maps: balancer.maps)
        let rssBeforeApply = procStatusBytes("VmRSS")

        let first = try controller.apply(cfg)
        // After the build's ring mappings are gone (they are unmapped in the background);
        // the peak (VmHWM) still shows them.
        controller.waitForMappingsReleased()
        let rssAfterApply = procStatusBytes("VmRSS")
        log("apply: first apply \(String(format: "%.1f", first.milliseconds)) ms (\(first.phases.description); \(first.ringsSharingTable) of \(first.ringsReplaced.count) rings share another VIP's table)")
        // The median of a few of each small change (the first of a kind may pay one-off costs).
        func timed(_ n: Int, _ body: () throws -> ApplyReport) rethrows -> Double {
            var t: [Double] = []
            for _ in 0..<n { t.append(try body().milliseconds) }
            return median(t)
        }
        let noop = try timed(5) { try controller.apply(cfg) }
        let noopReport = try controller.apply(cfg)
        // Equal values, new arrays: what a reload of the unchanged file hands the controller.
        let noopReload = try timed(5) { try controller.apply(bigConfig(s, ringSize: o.ringSize, lruSize: o.lruSize)) }
        let reloadReport = try controller.apply(bigConfig(s, ringSize: o.ringSize, lruSize: o.lruSize))
        log("apply: no-op, the config built again \(String(format: "%.1f", reloadReport.milliseconds)) ms (\(reloadReport.phases.description))")
        log("apply: no-op \(String(format: "%.1f", noopReport.milliseconds)) ms (\(noopReport.phases.description))")
        var changed = cfg
        changed.vips[0].backends.removeLast()
        let one = try timed(5) {
            let edit = try controller.apply(changed)
            log("apply: one VIP loses a backend \(String(format: "%.1f", edit.milliseconds)) ms (\(edit.phases.description))")
            return try controller.apply(cfg)
        }
        // The hot backend goes down and comes back: `hotVIPs` rings rebuilt each way.
        let hot = Self.hotBackend
        var downTimes: [Double] = []
        for _ in 0..<5 {
            let down = try controller.apply(cfg, down: [hot])
            downTimes.append(down.milliseconds)
            let up = try controller.apply(cfg)
            log("apply: hot backend down \(String(format: "%.1f", down.milliseconds)) ms (\(down.phases.description); \(down.ringsHandedOver) of \(down.ringsReplaced.count) rings handed over), up \(String(format: "%.1f", up.milliseconds)) ms (\(up.phases.description))")
        }
        let hotDown = median(downTimes)
        // Half the VIPs removed, then put back (the second a first apply of those).
        var half = cfg
        half.vips = cfg.vips.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        let halfRemoved = try controller.apply(half).milliseconds
        let halfBack = try controller.apply(cfg).milliseconds

        // Map memory: every map of the object, plus each VIP's inner ring map.
        var memlock: [String: Int] = [:]
        for (name, map) in balancer.maps.all { memlock[name] = mapMemlock(fd: map.fd) }
        var rings = 0
        for i in 0..<UInt32(XDPLB_MAX_VIPS) {
            guard let id = try balancer.maps.rings.lookup(i, as: UInt32.self) else { continue }
            let inner = try BPFMap.open(id: id, name: "ring \(i)")
            rings += mapMemlock(fd: inner.fd)
        }
        memlock["xdplb_rings (inner ring maps)"] = rings

        // The same Maglev tables alone, one core, for the compute share of the apply.
        let requests = cfg.vips.map { MaglevTable.Request(backends: $0.maglevBackends(), size: $0.ringSize) }
        let t = monotonicNs()
        for r in requests { _ = try MaglevTable(backends: r.backends, size: r.size) }
        let compute = ms(t)
        // And on every core, as the apply builds them.
        let tp = monotonicNs()
        _ = MaglevTable.build(requests)
        let computeParallel = ms(tp)

        return ApplyResult(
            vips: s.vips, backendsPerVip: s.backendsPerVIP, distinctBackends: distinct, vipsPerList: s.vipsPerList,
            ringsSharingTable: first.ringsSharingTable, ringSize: o.ringSize, lruSize: o.lruSize, applyMs: first.milliseconds, maglevComputeMs: compute, maglevParallelMs: computeParallel,
            mapWriteMs: max(0, first.milliseconds - computeParallel), noopApplyMs: noop, noopReloadApplyMs: noopReload, oneVipApplyMs: one,
            hotBackendVIPs: s.hotVIPs, hotBackendDownMs: hotDown, halfRemovedMs: halfRemoved, halfAddedMs: halfBack,
            rssBeforeLoadBytes: rssBeforeLoad, rssBeforeApplyBytes: rssBeforeApply, rssAfterApplyBytes: rssAfterApply,
            rssPeakBytes: procStatusBytes("VmHWM"), mapMemlockBytes: memlock,
            mapMemlockTotalBytes: memlock.values.reduce(0, +))
    }

    /// Both parts.
    public static func run(_ o: ControlPlaneBenchOptions, log: (String) -> Void = { _ in }) throws -> ControlPlaneReport {
        var applies: [ApplyResult] = []
        for sc in o.scenarios { applies.append(try apply(sc, o, log: log)) }
        return ControlPlaneReport(maglev: try maglev(o, log: log), applies: applies)
    }
}
