import ArgumentParser
import Cluster
import Config
import Foundation
import Logging

/// `xdplb cluster push|get|diff|history|status`: the shared config in etcd.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "The cluster's shared config and health view in etcd.",
        discussion: """
            The VIPs, their backends and the hash seed of every node whose config has a cluster \
            section live in etcd under the cluster prefix. 'push' validates a file exactly as \
            'config check' does and writes it in one transaction; each agent applies it within a \
            moment and reports the revision and table digests it runs, which 'status' shows side by side.
            """,
        subcommands: [ClusterPushCommand.self, ClusterGetCommand.self, ClusterDiffCommand.self,
                      ClusterHistoryCommand.self, ClusterStatusCommand.self]
    )
}

/// Where etcd is: a node config's cluster section, or endpoints given here.
struct ClusterOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A node config whose cluster section names etcd (endpoints, prefix, TLS, auth).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("etcd client URLs, comma-separated (instead of --config).", valueName: "url,…"))
    var endpoints: String?

    @Option(help: ArgumentHelp("The cluster's key prefix (with --endpoints).", valueName: "prefix"))
    var prefix: String = "/xdplb/"

    @Option(help: ArgumentHelp("Timeout of each etcd request, in seconds.", valueName: "seconds"))
    var timeout: Double = 3

    func validate() throws {
        guard timeout.isFinite, timeout >= 0.1, timeout <= 60 else { throw ValidationError("--timeout must be 0.1 to 60 seconds") }
        if config != nil && endpoints != nil { throw ValidationError("give --config or --endpoints, not both") }
        if config == nil && endpoints == nil { throw ValidationError("say where etcd is: --config NODE_FILE (its cluster section) or --endpoints URL,…") }
        if let endpoints {
            for u in endpoints.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                if let why = ClusterConfig.endpointProblem(u) { throw ValidationError("--endpoints: \(Echo.quoted(u)) \(why)") }
            }
        }
        if !prefix.hasPrefix("/") || !prefix.hasSuffix("/") || prefix.count < 2 || Echo.hasControlOrSpace(prefix) {
            throw ValidationError("--prefix \(Echo.quoted(prefix)) must start and end with '/'")
        }
    }

    /// The cluster settings to use.
    func cluster() throws -> ClusterConfig {
        var c: ClusterConfig
        if let config {
            let cfg: XdplbConfig
            do { cfg = try ConfigLoader.load(path: config) } catch {
                printError(error.description)
                throw ExitCode(2)
            }
            guard let cl = cfg.cluster else {
                printError("\(config): cluster: missing (endpoints, prefix, node_name: this node is not in a cluster)")
                throw ExitCode(2)
            }
            c = cl
        } else {
            c = ClusterConfig(endpoints: endpoints!.split(separator: ",").map { $0.hasSuffix("/") ? String($0.dropLast()) : String($0) }, nodeName: "cli")
            c.prefix = prefix
        }
        c.requestTimeoutMs = Int(timeout * 1000)
        return c
    }

    /// A store for these options; `body` runs with it and the client is shut down after.
    func withStore<T>(_ body: (ClusterStore) async throws -> T) async throws -> T {
        let c = try cluster()
        let client: EtcdClient
        do { client = try EtcdClient(c, logger: Logger(label: "xdplb.cluster")) } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        let store = ClusterStore(etcd: client, prefix: c.prefix)
        do {
            let r = try await body(store)
            await client.shutdown()
            return r
        } catch let e as EtcdError {
            await client.shutdown()
            printError(e.description)
            throw ExitCode(1)
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

/// Reads and validates a shared config file (exit 2 with every problem if invalid).
func loadShared(_ path: String) throws -> (String, SharedConfig) {
    guard let data = FileManager.default.contents(atPath: path) else {
        printError("\(path): cannot read the file (missing or not readable)")
        throw ExitCode(2)
    }
    let text = String(decoding: data, as: UTF8.self)
    do { return (text, try ConfigLoader.parseShared(text, file: path)) } catch {
        printError(error.description)
        printError("nothing was written")
        throw ExitCode(2)
    }
}

func describe(_ s: ClusterStore.Stored) -> String {
    if let m = s.meta { return "revision \(s.revision), pushed by \(m.pushedBy) at \(m.at) from \(m.source)" }
    return "revision \(s.revision), written outside 'xdplb cluster push'"
}

/// `xdplb cluster push FILE`.
struct ClusterPushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Validate a shared config (vips, hash_seed, protection) and write it to etcd in one transaction.",
        discussion: "An invalid file is refused with every problem and nothing is written (exit 2). With --if-revision N the push is refused (exit 1) if the config was written after revision N. With --wait, waits until every live node runs the new revision (or refused it) and prints how long that took.")

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "The shared config: a YAML file with vips: (as in a node file) and optionally hash_seed: and protection:.")
    var file: String

    @Option(help: ArgumentHelp("Refuse if the config was written after this revision (0: only if none exists).", valueName: "N"))
    var ifRevision: Int64?

    @Option(help: ArgumentHelp("Wait up to this many seconds for every live node to run the pushed revision.", valueName: "seconds"))
    var wait: Double?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if let r = ifRevision, r < 0 { throw ValidationError("--if-revision must be 0 or more") }
        if let w = wait, !(w.isFinite && w > 0 && w <= 600) { throw ValidationError("--wait must be more than 0 and at most 600 seconds") }
    }

    func run() async throws {
        let (text, shared) = try loadShared(file)
        let user = ProcessInfo.processInfo.environment["SUDO_USER"] ?? ProcessInfo.processInfo.environment["USER"] ?? "root"
        let meta = PushMeta(pushedBy: "\(user)@\(ProcessInfo.processInfo.hostName)", at: ISO8601DateFormatter().string(from: Date()),
                            sha256: sha256Hex(text), vips: shared.vips.count,
                            backends: Set(shared.vips.flatMap { $0.backends.map(\.address) }).count, source: file)
        try await cluster.withStore { store in
            let started = Date()
            switch try await store.push(yaml: text, meta: meta, ifRevision: ifRevision) {
            case .conflict(let current):
                printError("refused: the config was written after revision \(ifRevision!)"
                           + (current.map { " (now \(describe($0)))" } ?? " (it was deleted)") + "; see 'xdplb cluster diff \(file)', then push again")
                throw ExitCode(1)
            case .written(let revision):
                var out: [String: Any] = ["revision": revision, "vips": meta.vips, "backends": meta.backends, "sha256": meta.sha256]
                if !json { print("pushed revision \(revision): \(meta.vips) VIPs, \(meta.backends) backends (sha256 \(meta.sha256.prefix(12)))") }
                guard let wait else {
                    if json { printJSON(out) }
                    return
                }
                let (ok, lines, nodes) = try await waitForNodes(store, revision: revision, seconds: wait, started: started)
                let ms = Date().timeIntervalSince(started) * 1000
                out["converged"] = ok
                out["converge_ms"] = ms
                out["nodes"] = nodes
                if json { printJSON(out) } else {
                    lines.forEach { print("  \($0)") }
                    print(ok ? String(format: "every live node runs revision %lld with equal digests after %.0f ms", revision, ms)
                             : String(format: "not converged after %.0f ms", ms))
                }
                if !ok { throw ExitCode(1) }
            }
        }
    }

    /// Polls the node reports until every live node runs `revision` with equal digests, or one refused it.
    func waitForNodes(_ store: ClusterStore, revision: Int64, seconds: Double, started: Date) async throws -> (Bool, [String], [String]) {
        let deadline = started.addingTimeInterval(seconds)
        while true {
            let nodes = try await store.nodes()
            let cmp = ClusterComparison(configRevision: revision, nodes: nodes)
            let live = cmp.rows.filter { $0.lease == "live" }
            let refused = live.filter { $0.refused?.revision == revision }
            let lines = cmp.rows.map { r in "\(r.node): " + (r.problems.isEmpty ? "revision \(r.revision ?? 0), digests agree" : r.problems.joined(separator: "; ")) }
            if !live.isEmpty && live.allSatisfy({ $0.revision == revision }) && cmp.agreed { return (true, lines, live.map(\.node)) }
            if !refused.isEmpty || Date() >= deadline { return (false, lines, live.map(\.node)) }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
    }
}

func printJSON(_ v: Any) {
    if let d = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .prettyPrinted]) { print(String(decoding: d, as: UTF8.self)) }
}

/// `xdplb cluster get`.
struct ClusterGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Print the shared config in etcd (YAML, with its revision).")
    @OptionGroup var cluster: ClusterOptions
    @Option(help: ArgumentHelp("The config as of this etcd revision.", valueName: "N")) var revision: Int64?
    @Flag(help: "Only the YAML, without the comment line naming the revision.") var raw = false

    func validate() throws { if let r = revision, r < 1 { throw ValidationError("--revision must be 1 or more") } }

    func run() async throws {
        try await cluster.withStore { store in
            guard let s = try await store.config(at: revision) else {
                printError(revision == nil ? "no shared config in etcd under the prefix yet; push one with 'xdplb cluster push FILE'" : "no shared config at revision \(revision!)")
                throw ExitCode(1)
            }
            if !raw { print("# \(describe(s))") }
            print(s.yaml, terminator: s.yaml.hasSuffix("\n") ? "" : "\n")
        }
    }
}

/// `xdplb cluster diff FILE`.
struct ClusterDiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff", abstract: "What pushing FILE would change: VIPs and backends added, removed or changed.",
        discussion: "Exit 0: no change; 1: FILE differs from the config in etcd; 2: FILE is invalid.")
    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "The shared config file.") var file: String

    func run() async throws {
        let (_, new) = try loadShared(file)
        try await cluster.withStore { store in
            let current = try await store.config()
            var old = SharedConfig(hashSeed: nil, vips: [])
            if let current {
                do { old = try ConfigLoader.parseShared(current.yaml, file: "etcd revision \(current.revision)") } catch {
                    print("! the config in etcd (\(describe(current))) is invalid; every agent refuses it:")
                    print("\(error)".split(separator: "\n").map { "!   \($0)" }.joined(separator: "\n"))
                }
                print("# against \(describe(current))")
            } else {
                print("# etcd holds no shared config yet")
            }
            let lines = SharedConfigDiff.lines(from: old, to: new)
            lines.forEach { print($0) }
            if lines.isEmpty { print("no change") } else { throw ExitCode(1) }
        }
    }
}

/// `xdplb cluster history`.
struct ClusterHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Earlier versions of the shared config (from etcd's revisions, newest first).",
        discussion: "etcd keeps old revisions until they are compacted; 'xdplb cluster get --revision N' prints one.")
    @OptionGroup var cluster: ClusterOptions
    @Option(help: "At most this many versions.") var limit: Int = 20
    @Flag(help: "Print JSON.") var json = false

    func validate() throws { if !(1...1000).contains(limit) { throw ValidationError("--limit must be 1 to 1000") } }

    func run() async throws {
        try await cluster.withStore { store in
            let (entries, compacted) = try await store.history(limit: limit)
            if json {
                printJSON(entries.map { e -> [String: Any] in
                    var d: [String: Any] = ["revision": e.revision, "sha256": sha256Hex(e.yaml)]
                    if let m = e.meta { d["pushed_by"] = m.pushedBy; d["at"] = m.at; d["vips"] = m.vips; d["backends"] = m.backends; d["source"] = m.source }
                    return d
                })
                return
            }
            if entries.isEmpty { print("no shared config in etcd yet") }
            for (i, e) in entries.enumerated() {
                let what = e.meta.map { "\($0.at)  \($0.pushedBy)  \($0.vips) VIPs, \($0.backends) backends  \($0.source)" } ?? "written outside 'xdplb cluster push'"
                var line = "\(e.revision)  \(what)"
                if i + 1 < entries.count,
                   let a = try? ConfigLoader.parseShared(entries[i + 1].yaml, file: "r"), let b = try? ConfigLoader.parseShared(e.yaml, file: "r") {
                    let d = SharedConfigDiff.lines(from: a, to: b)
                    line += d.isEmpty ? "  (no change)" : "  (\(d.filter { !$0.hasPrefix("    ") }.count) VIP-level changes)"
                }
                print(line)
            }
            if compacted { print("(older revisions were compacted by etcd)") }
        }
    }
}

/// `xdplb cluster status`.
struct ClusterStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Every node side by side: the revision it runs, its table digests, its lease.",
        discussion: "A node is flagged when its revision or a digest differs from the others, it refused the config, runs a cached one, or its lease expired. Exit 0: all agree; 1: something is flagged.")
    @OptionGroup var cluster: ClusterOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await cluster.withStore { store in
            let current = try await store.config()
            let nodes = try await store.nodes()
            let cmp = ClusterComparison(configRevision: current?.revision ?? 0, nodes: nodes)
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.sortedKeys, .prettyPrinted]
                e.keyEncodingStrategy = .convertToSnakeCase   // as every other JSON output
                print(String(decoding: try e.encode(cmp), as: UTF8.self))
            } else {
                print("config: " + (current.map(describe) ?? "none pushed yet"))
                if cmp.rows.isEmpty { print("no node has reported (agents publish under the prefix while they run)") }
                let nameW = max(4, cmp.rows.map(\.node.count).max() ?? 4)
                func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
                var header = pad("node", nameW) + "  lease    revision"
                for v in cmp.vips { header += "  " + v }
                print(header)
                for r in cmp.rows {
                    var line = pad(r.node, nameW) + "  " + pad(r.lease, 7) + "  " + pad(r.revision.map(String.init) ?? "-", 8)
                    for v in cmp.vips { line += "  " + pad(r.digests[v] ?? "-", v.count) }
                    print(line + (r.problems.isEmpty ? "" : "  !"))
                }
                for r in cmp.rows where !r.problems.isEmpty { for p in r.problems { print("! \(r.node): \(p)") } }
                for r in cmp.rows where r.lease == "live" { print("  \(r.node): health \(r.health ?? "?")") }
                print(cmp.agreed ? "every node agrees" : "NOT in agreement")
            }
            if !cmp.agreed { throw ExitCode(1) }
        }
    }
}
