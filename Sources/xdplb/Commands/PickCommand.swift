import ArgumentParser
import Config
import DataPlane
import Maglev

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
        print("\(b.identity)  (vip \(vip.name), hash 0x\(String(h, radix: 16)), slot \(FlowHash.ringSlot(hash: h, ringSize: vip.ringSize)) of \(vip.ringSize))")
    }
}
