import ArgumentParser
import Config
import Foundation
import Logging
import Routing

/// `xdplb node drain|undrain`: this node's BGP announcements.
struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Withdraw or restore every VIP this node announces (node.bgp).",
        subcommands: [NodeDrainCommand.self, NodeUndrainCommand.self]
    )
}

/// `xdplb node drain`.
struct NodeDrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Withdraw every VIP of this node; forwarding continues for whatever still arrives.",
        discussion: "The flag is kept in node.state_dir, so an agent restart keeps the node drained. 'xdplb status' shows when VIP traffic to the node has stopped."
    )
    @OptionGroup var admin: AdminOptions
    func run() throws { try AdminClient.operate("/node/drain", via: admin) }
}

/// `xdplb node undrain`.
struct NodeUndrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "undrain", abstract: "Announce again what the gate allows (undo 'xdplb node drain').")
    @OptionGroup var admin: AdminOptions
    func run() throws { try AdminClient.operate("/node/undrain", via: admin) }
}

/// `xdplb bgp config|run`: the BGP daemon (bird2) next to the agent.
struct BGPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bgp",
        abstract: "The node's BGP daemon (bird2): its generated config, and a supervisor that runs it.",
        subcommands: [BGPConfigCommand.self, BGPRunCommand.self]
    )
}

/// Loads a node config that must have a `node.bgp` section.
func loadBGP(_ path: String) throws -> (XdplbConfig, BGPConfig) {
    let cfg: XdplbConfig
    do { cfg = try ConfigLoader.load(path: path) } catch {
        printError(error.description)
        throw ExitCode(2)
    }
    guard let bgp = cfg.node.bgp else {
        printError("\(path): node.bgp: missing (local_asn, router_id, peers: the node announces nothing without it)")
        throw ExitCode(2)
    }
    return (cfg, bgp)
}

/// `xdplb bgp config`.
struct BGPConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Print the bird2 config generated from node.bgp.")
    @Option(help: "The node's YAML configuration file.") var config: String
    func run() throws {
        let (_, bgp) = try loadBGP(config)
        print(BirdConfig.render(bgp, source: config), terminator: "")
    }
}

/// `xdplb bgp run`.
struct BGPRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run bird2 with the generated config and enforce the agent's grace time.",
        discussion: """
            Writes node.bgp.daemon.config, checks it with 'bird -p', runs 'bird -f' as a child and, every \
            0.5 s, removes every VIP route from the announcement table when the agent's heartbeat is older \
            than node.bgp.grace_time (an agent that died and stayed dead). SIGHUP rewrites the config and \
            reconfigures bird; SIGTERM stops bird (its sessions close, the peers withdraw at once). \
            Run it beside 'xdplb run', not from it: agent restarts leave the sessions alone.
            """
    )
    @Option(help: "The node's YAML configuration file.") var config: String
    func run() throws {
        let (cfg, bgp) = try loadBGP(config)
        var log = Logger(label: "xdplb-bgp")
        log.logLevel = .info
        let sup = BirdSupervisor(bgp: bgp, source: config, table: KernelGateTable(table: bgp.table), stateDir: cfg.node.stateDir, logger: log)
        do { try sup.run() } catch {
            printError("xdplb bgp run: \(error)")
            throw ExitCode(1)
        }
    }
}
