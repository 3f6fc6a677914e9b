import BPF
import Config
import CXdplb
import DataPlane
import Foundation
import Maglev
import NetAddress

/// Settings of the control-plane benchmark.
public struct ControlPlaneBenchOptions: Sendable {
    /// Maglev ring sizes and backend counts to build.
    public var maglevSizes = [65_537, 655_373]
    public var maglevBackends = [10, 100, 1000]
    /// Builds per (size, backends); the median is reported.
    public var maglevRepeats = 3
    /// The big apply: VIPs × backends per VIP, drawn from `backendPool` addresses.
    public var vips = 512
    public var backendsPerVIP = 100
    public var backendPool = 4000
    public var ringSize = 65_537
    public var lruSize = 1_000_000

    public init() {}

    /// A few-second version for the test suite.
    public static var smoke: ControlPlaneBenchOptions {
        var o = ControlPlaneBenchOptions()
        o.maglevSizes = [65_537]
        o.maglevBackends = [10]
        o.maglevRepeats = 1
        o.vips = 8
        o.backendsPerVIP = 10
        o.backendPool = 40
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

    /// The config of the big apply: VIP i is 10.200.x.y:80/tcp with backends
    /// pool[(i·perVIP + j) mod pool], so every pool address serves several VIPs.
    static func bigConfig(_ o: ControlPlaneBenchOptions) -> XdplbConfig {
        var node = NodeConfig(interface: "lo")
        node.encapSourceV4 = IPAddress("10.0.2.2")!
        node.encapSourceV6 = IPAddress("fd00:2::2")!
        node.lruSize = o.lruSize
        let pool = (0..<o.backendPool).map { IPAddress("10.\(64 + $0 / 65536).\(($0 / 256) % 256).\($0 % 256)")! }
        let vips = (0..<o.vips).map { i in
            VIPConfig(address: IPAddress("10.200.\(i / 256).\(i % 256)")!, port: 80, proto: .tcp, ringSize: o.ringSize,
                      backends: (0..<o.backendsPerVIP).map { BackendConfig(address: pool[(i * o.backendsPerVIP + $0) % pool.count]) })
        }
        return XdplbConfig(node: node, vips: vips)
    }

    /// Loads a private balancer, applies the big config, and measures time, RSS and map memory.
    public static func apply(_ o: ControlPlaneBenchOptions, log: (String) -> Void = { _ in }) throws -> ApplyResult {
        let cfg = bigConfig(o)
        let distinct = Set(cfg.vips.flatMap { $0.backends.map(\.address) }).count
        let rssBeforeLoad = procStatusBytes("VmRSS")
        log("apply: loading a balancer (LRU \(o.lruSize)) for \(o.vips) VIPs × \(o.backendsPerVIP) backends, ring \(o.ringSize)")
        let balancer = try Balancer(lruSize: o.lruSize)
        let controller = DataPlaneController(maps: balancer.maps)
        let rssBeforeApply = procStatusBytes("VmRSS")

        let first = try controller.apply(cfg)
        let rssAfterApply = procStatusBytes("VmRSS")
        log("apply: first apply \(String(format: "%.1f", first.milliseconds)) ms")
        let noop = try controller.apply(cfg)
        var changed = cfg
        changed.vips[0].backends.removeLast()
        let one = try controller.apply(changed)

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

        // The same Maglev tables alone, for the compute share of the apply.
        let t = monotonicNs()
        for v in cfg.vips { _ = try MaglevTable(backends: v.maglevBackends(), size: v.ringSize) }
        let compute = ms(t)

        return ApplyResult(
            vips: o.vips, backendsPerVip: o.backendsPerVIP, distinctBackends: distinct, ringSize: o.ringSize,
            lruSize: o.lruSize, applyMs: first.milliseconds, maglevComputeMs: compute,
            mapWriteMs: max(0, first.milliseconds - compute), noopApplyMs: noop.milliseconds, oneVipApplyMs: one.milliseconds,
            rssBeforeLoadBytes: rssBeforeLoad, rssBeforeApplyBytes: rssBeforeApply, rssAfterApplyBytes: rssAfterApply,
            rssPeakBytes: procStatusBytes("VmHWM"), mapMemlockBytes: memlock,
            mapMemlockTotalBytes: memlock.values.reduce(0, +))
    }

    /// Both parts.
    public static func run(_ o: ControlPlaneBenchOptions, log: (String) -> Void = { _ in }) throws -> ControlPlaneReport {
        let apply = try apply(o, log: log)
        return ControlPlaneReport(maglev: try maglev(o, log: log), apply: apply)
    }
}
