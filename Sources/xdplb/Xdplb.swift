import Agent
import ArgumentParser

/// The `xdplb` command: agent, inspection and offline tools of the xdplb balancer.
@main
struct Xdplb: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xdplb",
        abstract: "XDP Maglev load balancer with GRE encapsulation for direct server return.",
        version: XdplbVersion.string,
        subcommands: [RunCommand.self, StatusCommand.self, StatsCommand.self, ReloadCommand.self, DrainCommand.self,
                      UndrainCommand.self, WeightCommand.self, DownCommand.self, MaglevCommand.self, PickCommand.self,
                      ReplayCommand.self, ConfigCommand.self, BenchCommand.self, NodeCommand.self, BGPCommand.self,
                      ClusterCommand.self, DenyCommand.self]
    )
}
