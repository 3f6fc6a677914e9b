import Agent
import ArgumentParser
import Foundation

/// `xdplb deny add|del|list`: source prefixes dropped in XDP, changed at run time.
struct DenyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deny",
        abstract: "Deny source prefixes at run time (dropped in XDP, counted as drop_deny).",
        discussion: """
            A runtime deny is kept by the agent across its restarts (in node.state_dir) but is not \
            written to the config file; denies in the file stay until the file changes. A VIP's own \
            list decides before the global one; within a list the longest prefix wins, so a deny \
            inside an allowed prefix works (and the other way round).
            """,
        subcommands: [Add.self, Del.self, List.self])

    /// `xdplb deny add PREFIX [--vip V]`.
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Deny a prefix (every VIP, or --vip).")
        @OptionGroup var admin: AdminOptions
        @Argument(help: "A prefix (198.51.100.0/24, 2001:db8:bad::/48) or one address.") var prefix: String
        @Option(help: "Only for this VIP (addr:port/proto, as in 'xdplb status').") var vip: String?
        func run() throws { try AdminClient.operate(denyPath("add", prefix, vip: vip), via: admin) }
    }

    /// `xdplb deny del PREFIX [--vip V]`.
    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "del", abstract: "Remove a runtime deny.")
        @OptionGroup var admin: AdminOptions
        @Argument(help: "The prefix as added.") var prefix: String
        @Option(help: "The VIP it was added for.") var vip: String?
        func run() throws { try AdminClient.operate(denyPath("del", prefix, vip: vip), via: admin) }
    }

    /// `xdplb deny list [--vip V] [--json]`.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every deny and allow prefix in force.")
        @OptionGroup var admin: AdminOptions
        @Option(help: "Only this VIP's own entries ('*' for the global ones).") var vip: String?
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            var listing = try AdminClient.get("/deny", via: admin, as: PrefixListing.self)
            if let vip { listing.entries = listing.entries.filter { $0.vip == vip } }
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                print(String(decoding: try enc.encode(listing), as: UTF8.self))
                return
            }
            if listing.entries.isEmpty { print("no deny or allow prefixes"); return }
            print("prefix".padding(toLength: 44, withPad: " ", startingAt: 0) + "action".padding(toLength: 8, withPad: " ", startingAt: 0)
                + "source".padding(toLength: 9, withPad: " ", startingAt: 0) + "vip")
            for e in listing.entries {
                print(e.prefix.padding(toLength: 44, withPad: " ", startingAt: 0) + e.action.padding(toLength: 8, withPad: " ", startingAt: 0)
                    + e.source.padding(toLength: 9, withPad: " ", startingAt: 0) + (e.vip == "*" ? "every VIP" : e.vip))
            }
        }
    }
}

/// `/deny/OP?prefix=P[&vip=V]`.
func denyPath(_ op: String, _ prefix: String, vip: String?) -> String {
    adminPath("/deny/\(op)", "prefix", prefix, vip: vip)
}
