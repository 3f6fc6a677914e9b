import ArgumentParser
import BPF
import Config
import DataPlane
import Foundation
import Packets

/// `xdplb replay`: run a capture through the real program and write what it transmits.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run every packet of a capture through the real XDP program (BPF_PROG_TEST_RUN).",
        discussion: """
            Loads the balancer privately (nothing is attached or pinned), fills its maps from the \
            config with every backend healthy, runs each input packet in order and writes the packets \
            it would transmit (XDP_TX or XDP_REDIRECT) to OUT.pcap. Passed and dropped packets are not \
            written. One verdict line per input packet goes to stdout. Next hops come from this \
            network namespace's route and neighbour tables; without one the program's FIB lookup decides. \
            Frames shorter than an Ethernet header, or longer than a test run passes whole (one page \
            less headroom and tailroom: 3520 bytes on 4 KiB pages, where the program would see only \
            the first part), are reported by number, counted as 'skipped' and not run.
            """
    )

    @Option(help: "The configuration file.")
    var config: String

    @Argument(help: "Input capture (Ethernet pcap).")
    var input: String

    @Argument(help: "Output capture for transmitted packets.")
    var output: String

    @Option(help: "A config applied before --config: its rings become the previous ones, so packets that miss conntrack show their second hop (GRE key).")
    var previous: String?

    @Option(help: "Ingress ifindex the program sees (default: this namespace's index of node.interface, else loopback).")
    var ingressIfindex: UInt32?

    @Flag(help: "Ignore next hops resolved from this namespace's tables: the program's bpf_fib_lookup decides.")
    var fib = false

    func validate() throws {
        if let ingressIfindex, ingressIfindex == 0 { throw ValidationError("--ingress-ifindex must be 1 or more (an interface index)") }
        if Self.sameFile(input, output) { throw ValidationError("OUT.pcap '\(output)' is the input capture; choose another file (it would be overwritten)") }
        if Self.sameFile(config, output) { throw ValidationError("OUT.pcap '\(output)' is the config file; choose another file (it would be overwritten)") }
    }

    /// True if both paths name one existing file (same device and inode), or are the same text.
    static func sameFile(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    func run() throws {
        let cfg: XdplbConfig
        do { cfg = try ConfigLoader.load(path: config) } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        var before: XdplbConfig?
        if let previous {
            do { before = try ConfigLoader.load(path: previous) } catch {
                printError(error.description)
                throw ExitCode(2)
            }
        }
        let packets: [CapturedPacket]
        do { packets = try readPcap(input) } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        let balancer = try Balancer(lruSize: min(cfg.node.lruSize, 1 << 20))
        let controller = DataPlaneController(maps: balancer.maps)
        let addrs = Set((cfg.vips + (before?.vips ?? [])).flatMap { $0.backends.map(\.address) })
        let hops = fib ? [:] : KernelNextHopResolver.resolve(Array(addrs.sorted()))
        if var before {
            // The previous config's backends stay configured (drained) if the new one drops them.
            before.node = cfg.node
            try controller.apply(before, nextHops: hops)
        }
        try controller.apply(cfg, nextHops: hops)
        var ifindex = ingressIfindex ?? UInt32(if_nametoindex(cfg.node.interface))
        if ifindex == 0 { ifindex = 1 }
        var out: [CapturedPacket] = []
        var tally: [String: Int] = [:]
        let linearLimit = BPFProgram.testRunLinearLimit
        for (i, p) in packets.enumerated() {
            let why: String? = p.bytes.count < 14 ? "shorter than an Ethernet header (\(p.bytes.count) of 14 bytes)"
                : p.bytes.count > linearLimit
                ? "longer than a test run passes whole (\(p.bytes.count) bytes, at most \(linearLimit): BPF_PROG_TEST_RUN would split it and the program see only the first part)"
                : nil
            if let why {
                tally["skipped", default: 0] += 1
                printError("packet \(i + 1): \(why); skipped")
                print("\(i + 1) skipped: \(why)")
                continue
            }
            let r: TestRunResult
            do { r = try balancer.program.testRun(p.bytes, ingressIfindex: ifindex) } catch {
                tally["error", default: 0] += 1
                printError("packet \(i + 1): \(error); skipped")
                print("\(i + 1) error: \(error)")
                continue
            }
            let verdict = r.action?.description ?? "ret\(r.returnValue)"
            tally[verdict, default: 0] += 1
            var line = "\(i + 1) \(verdict) in: \(PacketSummary.describe(p.bytes))"
            if r.action == .tx || r.action == .redirect {
                out.append(CapturedPacket(seconds: p.seconds, microseconds: p.microseconds, bytes: r.output))
                line += " out: \(PacketSummary.describe(r.output))"
            }
            print(line)
        }
        do { try writePcap(output, out) } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        let summary = tally.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("\(packets.count) packets: \(summary); \(out.count) written to \(output)")
        let counters = try CounterReader.global(balancer.maps).filter { $0.value.packets > 0 && $0.key != "rx" }
        print("counters: " + counters.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.packets)" }.joined(separator: ", "))
    }
}
