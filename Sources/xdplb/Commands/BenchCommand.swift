import ArgumentParser
import BPF
import Bench
import Config
import Foundation

/// `xdplb bench`: per-packet cost of the real XDP program on a packet mix.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Per-packet cost of the real XDP program on a packet mix (BPF_PROG_TEST_RUN).",
        discussion: """
            Loads the balancer privately (nothing is attached or pinned) with IPv4 and IPv6 VIPs of 16 \
            backends each (ring 65537, next hops set: XDP_TX), fills conntrack (1M flows) to capacity, and \
            times each case (SYN of a new flow, ACK/UDP of established flows, non-VIP pass, ICMP \
            too-big, ACK with cache-cold conntrack) one packet per BPF_PROG_TEST_RUN (repeat = 1), so \
            every timed run sees the original packet. Times are the kernel's own per-run duration; an \
            XDP_TX-only and a parse-only program (the floors) run interleaved with each case, and net = \
            case − floor. The same cases also run in the restoring loop: one BPF_PROG_TEST_RUN with \
            repeat = --loop-repeat of a harness that puts the original frame back before each run and \
            tail-calls the program (caches warm, as in a driver's NAPI loop; floors through the same \
            loop). Counters prove each case took its path; a failed check exits 1. Timings are never \
            asserted. See BENCHMARKS.md. Needs root.
            """
    )

    @Flag(help: "Print JSON (every case by name, floors included).")
    var json = false

    @Option(help: "Rounds, each running every case --packets times (default 5; --smoke: 1).")
    var rounds: Int?

    @Option(help: "Timed packets per case per round (default 200000; --smoke: 2000).")
    var packets: Int?

    @Option(help: "Untimed packets per case before the first round (default: min(20000, packets)).")
    var warmup: Int?

    @Option(help: "Runs per call of the restoring loop (default: --packets, one call per case per round; 0: don't measure that way).")
    var loopRepeat: Int?

    @Option(help: "Conntrack capacity in flows, as lru_size (the config default is 1000000; --smoke uses 65536).")
    var lruSize: Int?

    @Option(help: "Pin to this CPU (default: the CPU the command starts on; -1: don't pin).")
    var cpu: Int?

    @Option(help: ArgumentHelp("Also run the restoring loop on all these CPUs at the same time (comma-separated, e.g. 0,1; each its own flows, the maps shared) and report each CPU's net cost next to one CPU alone.", valueName: "list"))
    var loopCpus: String?

    @Option(help: "Only these cases (comma-separated names; the floors always run), e.g. for profiling one path.")
    var only: String?

    @Option(help: ArgumentHelp("Run this balancer ELF object instead of the embedded one (compare a build of bpf/balancer.bpf.c).", valueName: "file.bpf.o"))
    var object: String?

    @Option(help: ArgumentHelp("Also run this balancer ELF object on every frame, on the same maps, alternately before and after the main one, and report the paired difference (before/after of a data-plane change; map definitions must match).", valueName: "file.bpf.o"))
    var compare: String?

    @Flag(help: "Tiny run for tests: 1 round × 2000 packets, conntrack for 65536 flows (explicit options still win).")
    var smoke = false

    @Flag(help: "Also time Maglev builds (M 65537/655373 × 10/100/1000 backends) and full applies of 512 and 4,096 VIPs × 100 backends (no-op, one-VIP and one-backend changes, RSS, map memory).")
    var controlPlane = false

    @Flag(help: "Skip the data-plane part (with --control-plane).")
    var noDataPlane = false

    @Option(help: ArgumentHelp("Only these applies (with --control-plane), comma-separated VIPSxBACKENDS[/PORTS], e.g. 4096x100, or 4096x100/8 for 8 VIPs (ports of one address) per backend list; 'none' for only the Maglev builds (default: 512x100,4096x100).", valueName: "list"))
    var applies: String?

    /// The apply scenarios of `--applies`: `VIPSxBACKENDS` items, each with an
    /// optional `/PORTS` (VIPs per backend list; the pool and hot VIPs as the
    /// default scenarios choose them), or `none`.
    static func scenarios(_ list: String) throws -> [ApplyScenario] {
        if list == "none" { return [] }
        return try list.split(separator: ",", omittingEmptySubsequences: false).map { item in
            let slashed = item.split(separator: "/", omittingEmptySubsequences: false)
            let parts = slashed[0].split(separator: "x", omittingEmptySubsequences: false)
            guard slashed.count <= 2, parts.count == 2, let v = Int(parts[0]), let b = Int(parts[1]) else {
                throw ValidationError("--applies: '\(item)' is not VIPSxBACKENDS[/PORTS] (e.g. 4096x100 or 4096x100/8)")
            }
            guard (1...Int(ConfigLoader.maxVIPs)).contains(v), (1...1000).contains(b) else {
                throw ValidationError("--applies: '\(item)': VIPs must be 1...\(ConfigLoader.maxVIPs) and backends per VIP 1...1000")
            }
            var perList = 1
            if slashed.count == 2 {
                guard let p = Int(slashed[1]), (1...min(v, 1000)).contains(p) else {
                    throw ValidationError("--applies: '\(item)': PORTS (VIPs per backend list) must be 1...\(min(v, 1000))")
                }
                perList = p
            }
            return ApplyScenario(vips: v, backendsPerVIP: b, backendPool: v >= 1024 ? 10_000 : 4000, hotVIPs: min(100, v),
                                 vipsPerList: perList)
        }
    }

    func validate() throws {
        if let rounds, rounds < 1 || rounds > 1000 { throw ValidationError("--rounds must be between 1 and 1000 (got \(rounds))") }
        if let packets, packets < 1 || packets > 100_000_000 {
            throw ValidationError("--packets must be between 1 and 100000000 (got \(packets))")
        }
        if let warmup, warmup < 0 || warmup > 100_000_000 {
            throw ValidationError("--warmup must be between 0 and 100000000 (got \(warmup))")
        }
        if let loopRepeat, loopRepeat < 0 || loopRepeat > 1_000_000 {
            throw ValidationError("--loop-repeat must be between 0 and 1000000 (got \(loopRepeat))")
        }
        if let lruSize, lruSize < 4096 || lruSize > 100_000_000 {
            throw ValidationError("--lru-size must be between 4096 and 100000000 (got \(lruSize))")
        }
        if let cpu, cpu < -1 || cpu >= ProcessInfo.processInfo.processorCount {
            throw ValidationError("--cpu must be -1 or a CPU number below \(ProcessInfo.processInfo.processorCount) (got \(cpu))")
        }
        if let only {
            let unknown = onlyList(only).filter { !DataPlaneBench.caseNames.contains($0) }
            if !unknown.isEmpty || onlyList(only).isEmpty {
                throw ValidationError("--only: unknown case(s) \(unknown.joined(separator: ", ")); cases: \(DataPlaneBench.caseNames.joined(separator: ", "))")
            }
        }
        if let loopCpus { _ = try Self.cpuList(loopCpus, loopRepeat: loopRepeat) }
        if noDataPlane && !controlPlane { throw ValidationError("--no-data-plane needs --control-plane (nothing to run)") }
        if applies != nil && !controlPlane { throw ValidationError("--applies needs --control-plane") }
        if let applies { _ = try Self.scenarios(applies) }
    }

    /// The CPUs of `--loop-cpus`: 2 or more distinct CPU numbers of this machine, below XDPLB_BENCH_CPUS.
    static func cpuList(_ s: String, loopRepeat: Int?) throws -> [Int] {
        let items = s.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let n = min(ProcessInfo.processInfo.processorCount, DataPlaneBench.maxLoopCPUs)
        var cpus: [Int] = []
        for item in items {
            guard let c = Int(item), (0..<n).contains(c) else {
                throw ValidationError("--loop-cpus: '\(item)' is not a CPU number 0...\(n - 1)")
            }
            guard !cpus.contains(c) else { throw ValidationError("--loop-cpus: CPU \(c) is listed twice") }
            cpus.append(c)
        }
        guard cpus.count >= 2 else { throw ValidationError("--loop-cpus: give at least two CPUs (e.g. 0,1)") }
        if loopRepeat == 0 { throw ValidationError("--loop-cpus needs the restoring loop (not --loop-repeat 0)") }
        return cpus
    }

    func onlyList(_ s: String) -> [String] {
        s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() throws {
        var o = DataPlaneBenchOptions()
        o.rounds = rounds ?? (smoke ? 1 : 5)
        o.packets = packets ?? (smoke ? 2000 : 200_000)
        o.lruSize = lruSize ?? (smoke ? 65_536 : 1_000_000)
        o.warmup = warmup ?? min(20_000, o.packets)
        o.loopRepeat = loopRepeat ?? o.packets
        o.cpu = cpu
        o.objectPath = object
        o.comparePath = compare
        o.only = only.map { Set(onlyList($0)) }
        o.parallelCPUs = try loopCpus.map { try Self.cpuList($0, loopRepeat: loopRepeat) }
        let log: (String) -> Void = { line in
            FileHandle.standardError.write(Data("bench: \(line)\n".utf8))
        }

        do {
            // Control plane first: its RSS figures then don't include the data-plane part's buffers.
            var control: ControlPlaneReport? = nil
            if controlPlane {
                var co = smoke ? ControlPlaneBenchOptions.smoke : ControlPlaneBenchOptions()
                if !smoke { co.lruSize = lruSize ?? co.lruSize }
                if let applies { co.scenarios = try Self.scenarios(applies) }
                control = try ControlPlaneBench.run(co, log: log)
            }
            var data: DataPlaneReport? = nil
            if !noDataPlane {
                data = try DataPlaneBench(options: o, log: log).run(log: log)
            }
            let report = BenchReport(machine: .current(), dataPlane: data, controlPlane: control)
            print(json ? try report.json() : report.text())
            if let data, !data.allChecksPassed { throw ExitCode(1) }
        } catch let e as BPFError {
            printError(e.description)
            throw ExitCode(1)
        } catch let e as BenchError {
            printError(e.description)
            throw ExitCode(1)
        }
    }
}
