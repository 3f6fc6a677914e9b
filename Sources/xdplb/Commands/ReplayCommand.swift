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
            network namespace's route and neighbour tables; without one the program's FIB lookup decides.
            """
    )

    @Option(help: "The configuration file.")
    var config: String

    @Argument(help: "Input capture (Ethernet pcap).")
    var input: String

    @Argument(help: "Output capture for transmitted packets.")
    var output: String

    @Option(help: "Ingress ifindex the program sees (default: this namespace's index of node.interface, else loopback).")
    var ingressIfindex: UInt32?

    @Flag(help: "Ignore next hops resolved from this namespace's tables: the program's bpf_fib_lookup decides.")
    var fib = false

    func run() throws {
        let cfg: XdplbConfig
        do { cfg = try ConfigLoader.load(path: config) } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        let packets: [CapturedPacket]
        do { packets = try readPcap(input) } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        let balancer = try Balancer(lruSize: min(cfg.node.lruSize, 1 << 20))
        let controller = DataPlaneController(maps: balancer.maps)
        let addrs = Set(cfg.vips.flatMap { $0.backends.map(\.address) })
        try controller.apply(cfg, nextHops: fib ? [:] : KernelNextHopResolver.resolve(Array(addrs.sorted())))
        var ifindex = ingressIfindex ?? UInt32(if_nametoindex(cfg.node.interface))
        if ifindex == 0 { ifindex = 1 }
        var out: [CapturedPacket] = []
        var tally: [String: Int] = [:]
        for (i, p) in packets.enumerated() {
            let r = try balancer.program.testRun(p.bytes, ingressIfindex: ifindex)
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
