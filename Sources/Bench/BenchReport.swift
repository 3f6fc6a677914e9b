import Foundation

/// One measured case (or floor) of the data-plane benchmark. Times are ns per
/// packet as the kernel measured each BPF_PROG_TEST_RUN (repeat = 1).
public struct CaseResult: Sendable, Codable {
    /// Case name, e.g. `v4_tcp_ack`; floors start with `floor_`.
    public var name: String
    /// `case` or `floor`.
    public var kind: String
    /// What the packet is and which path it takes.
    public var description: String
    /// The program run (`xdplb_balancer`, `xdplb_bench_tx`, `xdplb_bench_parse`).
    public var program: String
    /// The XDP action every run must return.
    public var verdict: String
    /// Frame length fed to the program.
    public var frameBytes: Int
    /// Timed packets (rounds × packets per round).
    public var packets: Int
    /// Headline: median over rounds of each round's 10 % trimmed mean ns/packet.
    public var nsMedian: Double
    /// Smallest and largest of the round values.
    public var nsRoundMin: Double
    public var nsRoundMax: Double
    /// Median over rounds of each round's mean (outliers included).
    public var nsMean: Double
    /// Percentiles over every timed packet.
    public var p10: Double
    public var p50: Double
    public var p90: Double
    public var p99: Double
    /// Each round's 10 % trimmed mean, in round order.
    public var nsRounds: [Double]
    /// The floor subtracted for `netNs` (nil for the XDP_TX floor itself).
    public var netOver: String?
    /// That floor as measured in this case's own blocks (one floor run after every case run).
    public var floorInBlockNs: Double?
    /// Median over rounds of (this case − the interleaved floor), per round: what the program itself costs.
    public var netNs: Double?
    /// 1000 / nsMedian: packets per µs on one core, timing overhead included (conservative).
    public var mpps: Double
    /// 1000 / netNs: the program alone (no driver, no timer), on one core.
    public var mppsNet: Double?
    /// Median over rounds of the wall-clock time per BPF_PROG_TEST_RUN syscall (user space included).
    public var wallNsPerCall: Double
    /// Median over rounds of wallNsPerCall minus the interleaved floor's.
    public var netWallNs: Double?
    /// The restoring loop (BenchLoop): median over rounds of the kernel's ns per
    /// run with repeat = N, each run on the original frame, caches warm
    /// (nil: not measured that way, e.g. a path that also moves the tail).
    public var loopNs: Double?
    /// Median over rounds of (loop case − loop floor), the floor on the same frames: the program alone, warm.
    public var loopNetNs: Double?
    /// With `--loop-cpus`: per CPU (in that order), median over rounds of the loop's ns per run
    /// with every listed CPU running it at once on its own flows (the maps shared).
    public var parallelLoopNs: [Double]?
    /// The same minus the floor run the same way: each CPU's net cost while the others run too.
    public var parallelLoopNetNs: [Double]?
    /// The smallest share of a parallel call's runs (first to last run on each CPU, the loop's clock) when every CPU was running (1: fully at once).
    public var parallelOverlap: Double?
    /// The loop net on the first of those CPUs alone, with the same repeat count, in the same blocks.
    public var parallelAloneNetNs: Double?
    /// With `--compare`: median over rounds of (compared − main) in the loop.
    public var loopCompareDeltaNs: Double?
    /// With `--compare`: the other build on the same packets (nil otherwise).
    public var compare: CompareResult?
    /// True when every run returned `verdict` and the counters moved as the path requires.
    public var checkPassed: Bool
    /// The counter deltas checked, or what went wrong.
    public var check: String
}

/// A second balancer build measured on the same frames as the main one (alternately before and after it).
public struct CompareResult: Sendable, Codable {
    /// The compared object file.
    public var object: String
    /// Its ns/pkt, computed like the main build's.
    public var nsMedian: Double
    /// Median over rounds of (compared − main), both measured in the same block: negative = the compared build is faster.
    public var deltaNs: Double
    public var deltaRounds: [Double]
    /// deltaNs as a percentage of the main build's ns/pkt.
    public var deltaPercent: Double
    /// The main build's net cost plus deltaNs.
    public var netNs: Double?
}

/// Size facts of a loaded program.
public struct ProgramStats: Sendable, Codable {
    /// Program name.
    public var name: String
    /// Instructions the verifier processed (all paths).
    public var verifiedInsns: Int
    /// Instructions after verification (xlated bytes / 8).
    public var xlatedInsns: Int
    /// JIT-compiled size in bytes.
    public var jitedBytes: Int
}

/// The data-plane half of `xdplb bench`.
public struct DataPlaneReport: Sendable, Codable {
    /// How each packet was timed.
    public var timing: String
    /// What was loaded and how the maps were filled.
    public var setup: String
    /// Rounds and packets per case per round.
    public var rounds: Int
    public var packetsPerRound: Int
    /// Conntrack LRU capacity and how many entries were written before timing.
    public var lruSize: Int
    public var lruPrefilled: Int
    /// The CPU the benchmark thread was pinned to (nil: not pinned).
    public var cpu: Int?
    /// `--loop-cpus`: the CPUs the loop also ran on at once (nil: not measured), and the runs per such call.
    public var parallelCPUs: [Int]?
    public var parallelRepeat: Int?
    /// The build compared with the main one (`--compare`), if any.
    public var compareObject: String?
    /// Case names in the order they ran each round.
    public var order: [String]
    /// Results by case name (floors included).
    public var cases: [String: CaseResult]
    /// Verifier and JIT facts per program.
    public var programs: [String: ProgramStats]
    /// True when every case's check passed.
    public var allChecksPassed: Bool
}

/// One Maglev table build measurement.
public struct MaglevBuildResult: Sendable, Codable {
    public var size: Int
    public var backends: Int
    public var repeats: Int
    public var msMedian: Double
    public var msMin: Double
    public var msMax: Double
}

/// A full DataPlaneController.apply of a large config.
public struct ApplyResult: Sendable, Codable {
    public var vips: Int
    public var backendsPerVip: Int
    public var distinctBackends: Int
    /// VIPs in a row with the same backend list (1: every list is different).
    public var vipsPerList: Int
    /// Rings of the first apply that shared another VIP's Maglev build (ApplyReport.ringsSharingTable).
    public var ringsSharingTable: Int
    public var ringSize: Int
    public var lruSize: Int
    /// First apply into empty maps: Maglev builds + every map write (ApplyReport.milliseconds).
    public var applyMs: Double
    /// Building the same Maglev tables alone (no map writes).
    public var maglevComputeMs: Double
    /// The same tables built on every core (``MaglevTable/build(_:maxConcurrency:)``).
    public var maglevParallelMs: Double
    /// applyMs − maglevParallelMs: what the apply costs beyond building the
    /// same tables on every core, as it does (map writes, bookkeeping; 0 when
    /// the two runs' noise makes the difference negative). It was applyMs −
    /// maglevComputeMs, always 0 once the apply built on every core.
    public var mapWriteMs: Double
    /// Another apply of the same config (nothing changes), median of 5.
    public var noopApplyMs: Double
    /// The same config built again (equal values in new arrays, as a reload of
    /// an unchanged file gives), median of 5.
    public var noopReloadApplyMs: Double
    /// An apply where one VIP lost one backend (one ring rebuilt and swapped), median of 5.
    public var oneVipApplyMs: Double
    /// VIPs the hot backend is in, and an apply that takes it out of all of them (down), median of 5.
    public var hotBackendVIPs: Int
    public var hotBackendDownMs: Double
    /// Every other VIP removed, then added back.
    public var halfRemovedMs: Double
    public var halfAddedMs: Double
    /// VmRSS of this process before loading, after loading and after applying; VmHWM at the end.
    public var rssBeforeLoadBytes: Int
    public var rssBeforeApplyBytes: Int
    public var rssAfterApplyBytes: Int
    public var rssPeakBytes: Int
    /// Kernel memory charged to the maps (fdinfo memlock), by map; rings are the sum of every inner ring map.
    public var mapMemlockBytes: [String: Int]
    public var mapMemlockTotalBytes: Int
}

/// The control-plane half of `xdplb bench --control-plane`.
public struct ControlPlaneReport: Sendable, Codable {
    public var maglev: [MaglevBuildResult]
    /// One per scenario (512 × 100, 4,096 × 100).
    public var applies: [ApplyResult]
}

/// Everything `xdplb bench --json` prints.
public struct BenchReport: Sendable, Codable {
    public var machine: MachineInfo
    public var dataPlane: DataPlaneReport?
    public var controlPlane: ControlPlaneReport?

    public init(machine: MachineInfo, dataPlane: DataPlaneReport?, controlPlane: ControlPlaneReport?) {
        self.machine = machine
        self.dataPlane = dataPlane
        self.controlPlane = controlPlane
    }

    /// Pretty, key-sorted JSON with snake_case keys.
    public func json() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }

    /// The human-readable report.
    public func text() -> String {
        var out: [String] = []
        let m = machine
        out.append("machine: \(m.cpus) CPUs, \(m.cpuModel), kernel \(m.kernel), clocksource \(m.clocksource)"
                   + (m.bpfStatsEnabled ? ", bpf_stats_enabled=1 (adds per-run accounting)" : ""))
        if let d = dataPlane { out.append(contentsOf: Self.text(d)) }
        if let c = controlPlane { out.append(contentsOf: Self.text(c)) }
        return out.joined(separator: "\n")
    }

    static func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    static func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
    static func mb(_ b: Int) -> String { f(Double(b) / 1_048_576, 1) + " MiB" }

    static func text(_ d: DataPlaneReport) -> [String] {
        var out: [String] = []
        out.append("")
        out.append("data plane: \(d.rounds) round(s) × \(d.packetsPerRound) packets per case"
                   + (d.cpu.map { ", pinned to CPU \($0)" } ?? ", not pinned"))
        out.append("timing: \(d.timing)")
        out.append("setup: \(d.setup)")
        out.append("")
        let header = [pad("case", 18), pad("verdict", 7), lpad("ns/pkt", 7), lpad("min", 6), lpad("max", 6),
                      lpad("p10", 5), lpad("p90", 5), lpad("p99", 6), lpad("mean", 7), lpad("net", 6), pad("  over", 18),
                      lpad("Mpps", 6), lpad("Mpps net", 9), lpad("wall ns", 8), lpad("loop", 6), lpad("loop net", 9)].joined(separator: " ")
        out.append(header)
        for name in d.order {
            guard let c = d.cases[name] else { continue }
            let row = [pad(c.name, 18), pad(c.verdict, 7), lpad(f(c.nsMedian), 7), lpad(f(c.nsRoundMin), 6),
                       lpad(f(c.nsRoundMax), 6), lpad(f(c.p10, 0), 5), lpad(f(c.p90, 0), 5), lpad(f(c.p99, 0), 6),
                       lpad(f(c.nsMean), 7), lpad(c.netNs.map { f($0) } ?? "-", 6),
                       pad("  " + (c.netOver ?? "-"), 18), lpad(f(c.mpps, 1), 6),
                       lpad(c.mppsNet.map { $0.isFinite ? f($0, 1) : "inf" } ?? "-", 9), lpad(f(c.wallNsPerCall, 0), 8),
                       lpad(c.loopNs.map { f($0) } ?? "-", 6), lpad(c.loopNetNs.map { f($0) } ?? "-", 9)]
            out.append(row.joined(separator: " "))
        }
        out.append("")
        out.append("ns/pkt = median over rounds of each round's 10% trimmed mean of per-packet kernel times; min/max = spread")
        out.append("of the round values; p10/p90/p99 over every timed packet; net = median over rounds of (case − floor), the")
        out.append("floor run interleaved with the case (one floor run after each case run); Mpps = 1000/ns/pkt,")
        out.append("Mpps net = 1000/net (program alone, one core, no driver cost); wall = user-space time per syscall;")
        out.append("loop = ns per run in the restoring loop (original frame every run, caches warm); loop net = loop case −")
        out.append("loop floor on the same frames (the restore cancels out): the program's cost as a NAPI loop sees it.")
        out.append("")
        for name in d.order {
            guard let c = d.cases[name] else { continue }
            out.append("  \(pad(c.name, 18)) \(c.frameBytes) B: \(c.description)")
        }
        if let cpus = d.parallelCPUs {
            out.append("")
            out.append("CPUs \(cpus.map(String.init).joined(separator: ", ")) at once: the restoring loop on every one of them at the same time, each with its own flows, the maps")
            out.append("(conntrack, counters, rings) shared; net = case − floor, both run that way; alone = the first CPU by itself, same")
            out.append("repeat count (\(d.parallelRepeat.map(String.init) ?? "?") runs per call), in the same blocks;")
            out.append("overlap = the smallest share of a call's runs (the loop's own clock: first to last run on each CPU) when all ran at once")
            out.append("  " + [pad("case", 18), lpad("alone", 7)].joined(separator: " ") + " " + cpus.map { lpad("cpu\($0) net", 9) }.joined(separator: " ") + "  worst vs alone  overlap")
            for name in d.order {
                guard let c = d.cases[name], let nets = c.parallelLoopNetNs, let alone = c.parallelAloneNetNs, !nets.isEmpty else { continue }
                let worst = nets.max()!
                out.append("  " + [pad(c.name, 18), lpad(f(alone), 7)].joined(separator: " ") + " " + nets.map { lpad(f($0), 9) }.joined(separator: " ")
                           + "  " + lpad(String(format: "%+.0f%%", alone > 0 ? (worst / alone - 1) * 100 : 0), 14)
                           + "  " + lpad(c.parallelOverlap.map { String(format: "%.0f%%", $0 * 100) } ?? "-", 7))
            }
        }
        if let other = d.compareObject {
            out.append("")
            out.append("compared with \(other): same maps, same frames, run alternately before and after the main build;")
            out.append("delta = compared − main, median over rounds (negative: the compared build is faster)")
            for name in d.order {
                guard let c = d.cases[name], let x = c.compare else { continue }
                let rounds = x.deltaRounds.map { String(format: "%+.0f", $0) }.joined(separator: " ")
                let loop = c.loopCompareDeltaNs.map { String(format: "; loop %+.1f ns", $0) } ?? ""
                out.append("  \(pad(c.name, 18)) \(lpad(f(c.nsMedian), 7)) -> \(lpad(f(x.nsMedian), 7)) ns: \(lpad(String(format: "%+.1f", x.deltaNs), 7)) ns (\(String(format: "%+.1f", x.deltaPercent))%)\(loop), rounds: \(rounds)")
            }
        }
        out.append("")
        out.append("programs:")
        for p in d.programs.values.sorted(by: { $0.name < $1.name }) {
            out.append("  \(pad(p.name, 18)) \(lpad(String(p.verifiedInsns), 6)) insns verified, \(lpad(String(p.xlatedInsns), 5)) xlated insns, \(lpad(String(p.jitedBytes), 6)) B JIT")
        }
        out.append("")
        out.append(d.allChecksPassed ? "checks: every run returned its verdict and the counters moved as expected:" : "checks: FAILED:")
        for name in d.order {
            guard let c = d.cases[name] else { continue }
            out.append("  \(pad(c.name, 18)) \(c.checkPassed ? "ok" : "FAILED"): \(c.check)")
        }
        return out
    }

    static func text(_ c: ControlPlaneReport) -> [String] {
        var out: [String] = ["", "control plane:", "  Maglev table build (MaglevTable.init, median of repeats):"]
        out.append("    " + [lpad("M", 7), lpad("backends", 9), lpad("ms", 9), lpad("min", 9), lpad("max", 9)].joined(separator: " "))
        for r in c.maglev {
            out.append("    " + [lpad(String(r.size), 7), lpad(String(r.backends), 9), lpad(f(r.msMedian, 2), 9),
                                 lpad(f(r.msMin, 2), 9), lpad(f(r.msMax, 2), 9)].joined(separator: " "))
        }
        for a in c.applies {
            let lists = a.vipsPerList > 1 ? ", \(a.vipsPerList) VIPs per backend list" : ""
            out.append("  DataPlaneController.apply: \(a.vips) VIPs × \(a.backendsPerVip) backends (\(a.distinctBackends) distinct\(lists)), ring \(a.ringSize), LRU \(a.lruSize):")
            let shared = a.ringsSharingTable > 0 ? "; \(a.ringsSharingTable) rings shared another VIP's build" : ""
            out.append("    first apply \(f(a.applyMs)) ms (every VIP's Maglev table built on one core: \(f(a.maglevComputeMs)) ms, on every core: \(f(a.maglevParallelMs)) ms\(shared))")
            out.append("    no-op apply \(f(a.noopApplyMs, 2)) ms (the config built again: \(f(a.noopReloadApplyMs, 2)) ms); one VIP loses a backend: \(f(a.oneVipApplyMs, 2)) ms; a backend in \(a.hotBackendVIPs) VIPs goes down: \(f(a.hotBackendDownMs, 2)) ms")
            out.append("    half the VIPs removed: \(f(a.halfRemovedMs)) ms; added back: \(f(a.halfAddedMs)) ms")
            out.append("    RSS: \(mb(a.rssBeforeLoadBytes)) before load, \(mb(a.rssBeforeApplyBytes)) loaded, \(mb(a.rssAfterApplyBytes)) after apply, peak \(mb(a.rssPeakBytes))")
            let maps = a.mapMemlockBytes.sorted { $0.value > $1.value }.map { "\($0.key) \(mb($0.value))" }.joined(separator: ", ")
            out.append("    map memory (memlock) \(mb(a.mapMemlockTotalBytes)): \(maps)")
        }
        return out
    }
}
