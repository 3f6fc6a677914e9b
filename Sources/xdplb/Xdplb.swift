import ArgumentParser

/// The `xdplb` command: agent, inspection and offline tools of the xdplb balancer.
@main
struct Xdplb: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xdplb",
        abstract: "XDP Maglev load balancer with GRE encapsulation for direct server return.",
        subcommands: [MaglevCommand.self, PickCommand.self, ReplayCommand.self, ConfigCommand.self]
    )
}
