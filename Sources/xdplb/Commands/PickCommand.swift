import ArgumentParser
import Config
import DataPlane
import Maglev
import NetAddress

/// `xdplb pick`: which backend a new flow goes to, computed like the data plane.
struct PickCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pick",
        abstract: "Print the backend a new flow goes to (the same answer as the data plane, all backends healthy)."
    )

    @Option(help: "The configuration file.")
    var config: String

    @Option(help: "The flow: 'SRC:SPORT -> VIP:PORT/tcp' (IPv6 in brackets).")
    var flow: String

    @Option(help: "The config before the last change: also print the second hop a packet of the flow that misses conntrack (not a SYN) carries.")
    var previous: String?

    func validate() throws {
        guard FlowPicker.parseFlow(flow) != nil else {
            throw ValidationError("--flow '\(flow)' is not 'SRC:SPORT -> VIP:PORT/tcp|udp' (IPv6 as [addr]:port, both sides one family)")
        }
    }

    func run() throws {
        let cfg: XdplbConfig
        do { cfg = try ConfigLoader.load(path: config) } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        let f = FlowPicker.parseFlow(flow)!
        guard let vip = FlowPicker.vip(for: f, in: cfg) else {
            printError("no VIP matches \(flow): the data plane passes it to the kernel")
            throw ExitCode(1)
        }
        let table = try? MaglevTable(backends: vip.maglevBackends(), size: vip.ringSize)
        guard let b = FlowPicker.backend(for: f, vip: vip, table: table, seed: cfg.node.hashSeed) else {
            printError("VIP \(vip.name) has no backend with weight > 0: the data plane drops the flow")
            throw ExitCode(1)
        }
        let h = FlowHash.hash(f, sourceOnly: vip.hash == .sourceIP, seed: cfg.node.hashSeed)
        var hop = ""
        if let previous {
            let before: XdplbConfig
            do { before = try ConfigLoader.load(path: previous) } catch {
                printError(error.description)
                throw ExitCode(2)
            }
            // The data plane's rule: the previous ring's pick, if it differs and that backend is still configured.
            if vip.secondChanceMs > 0, let old = before.vips.first(where: { $0.name == vip.name }),
               let oldTable = try? MaglevTable(backends: old.maglevBackends(), size: old.ringSize),
               let p = FlowPicker.backend(for: f, vip: old, table: oldTable, seed: cfg.node.hashSeed), p.identity != b.identity,
               let addr = IPAddress(p.identity), vip.backends.contains(where: { $0.address == addr }) || cfg.vips.contains(where: { $0.backends.contains { $0.address == addr } }) {
                hop = "  second hop \(addr) (GRE key \(SecondHop.describe(key: SecondHop.key(for: addr), among: [addr])), on a conntrack miss)"
            } else {
                hop = "  no second hop"
            }
        }
        print("\(b.identity)  (vip \(vip.name), hash 0x\(String(h, radix: 16)), slot \(FlowHash.ringSlot(hash: h, ringSize: vip.ringSize)) of \(vip.ringSize))\(hop)")
    }
}
