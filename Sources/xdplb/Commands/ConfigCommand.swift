import ArgumentParser
import Config

/// `xdplb config`: configuration tools.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Configuration tools.",
        subcommands: [Check.self]
    )

    /// `xdplb config check FILE`.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file; print every problem with its key path."
        )

        @Argument(help: "The YAML configuration file.")
        var file: String

        func run() throws {
            do {
                let c = try ConfigLoader.load(path: file)
                let backends = c.vips.reduce(0) { $0 + $1.backends.count }
                print("\(file): OK (\(c.vips.count) VIPs, \(backends) backends, interface \(c.node.interface))")
            } catch {
                printError(error.description)
                throw ExitCode(2)
            }
        }
    }
}

/// Writes a line to standard error.
func printError(_ s: String) {
    var e = StandardError()
    print(s, to: &e)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}

import Foundation
