import Agent
import ArgumentParser
import BPF
import Config
import DataPlane
import Foundation
import Hummingbird
import Logging
import ServiceNotify

/// `xdplb run`: the agent.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent: load or adopt the pinned balancer, attach it, keep it equal to config ∩ health.",
        discussion: """
            SIGHUP or 'xdplb reload' re-reads the config (an invalid file is refused and the running \
            config keeps forwarding). SIGTERM/SIGINT withdraw this node's BGP announcements (node.bgp), \
            wait until VIP traffic stops or node.bgp.drain_timeout passes, and stop the agent. SIGUSR2 stops \
            it at once and keeps the announcements (restarts, upgrades; node.bgp.grace_time bounds them). \
            The data plane keeps forwarding from its pins either way; 'xdplb down' detaches and unpins.
            """
    )

    @Option(help: "The YAML configuration file.")
    var config: String

    @Flag(help: "Debug logging, including libbpf's.")
    var verbose = false

    @Option(help: ArgumentHelp("Run this balancer ELF object instead of the embedded one (an upgrade swaps it in atomically).",
                               valueName: "file.bpf.o"))
    var object: String?

    @Option(help: "Seconds between next-hop refreshes from the kernel's route and neighbour tables.")
    var nexthopRefresh: Double = 5

    func validate() throws {
        guard nexthopRefresh.isFinite, (0.1...3600).contains(nexthopRefresh) else {
            throw ValidationError("--nexthop-refresh must be a number of seconds from 0.1 to 3600 (got \(nexthopRefresh))")
        }
    }

    func run() async throws {
        var log = Logger(label: "xdplb")
        log.logLevel = verbose ? .debug : .info
        let logger = log
        configureLibbpfLogging(verbose: verbose)
        // Signals first: a SIGHUP or SIGTERM during a long start is queued, never fatal.
        let signals = SignalQueue([SIGHUP, SIGTERM, SIGINT, SIGUSR2])
        let notifier = ServiceNotifier()
        let agent: Agent
        let listener: AdminListener
        do {
            // The admin socket, group and token are checked before anything touches the kernel.
            listener = try AdminListener(node: try ConfigLoader.load(path: config).node)
            agent = try await Agent(configPath: config, objectPath: object, logger: logger)
        } catch {
            printError("xdplb run: \(error)")
            throw ExitCode(1)
        }
        let status = await agent.status()
        logger.notice("agent running", metadata: [
            "interface": "\(status.node.interface)", "prog.id": "\(status.node.programId)", "up": "\(status.node.upMode)",
            "admin": "\(listener.endpoint)",
        ])
        let refresher = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(nexthopRefresh * 1e9))
                await agent.refreshNextHops()
            }
        }
        let cluster = Task { await agent.runCluster() }
        let ticker = Task {
            while !Task.isCancelled {
                await agent.checkAttachment()
                await agent.periodicTick()
                notifier.watchdog()
                try? await Task.sleep(nanoseconds: 250_000_000)
            }
        }
        let app = AdminServer.application(agent: agent, metrics: Metrics(), listener: listener, logger: logger) {
            do {
                try listener.socket?.publish()
                notifier.ready(status: await Self.serviceStatus(agent))
            } catch {
                printError("xdplb run: admin API: \(error)")
                signals.post(0)
            }
        }
        let server = Task {
            do { try await app.runService(gracefulShutdownSignals: []) } catch {
                printError("xdplb run: admin API: \(error)")
            }
            signals.post(0)   // the server ended: stop
        }
        for await sig in signals.stream {
            if sig == SIGHUP {
                logger.info("SIGHUP: reloading")
                notifier.reloading()
                _ = try? await agent.reload()
                notifier.ready(status: await Self.serviceStatus(agent))
                continue
            }
            notifier.stopping(status: sig == SIGUSR2 ? "exiting for a restart; announcements stay" : "withdrawing, then exiting")
            if sig == SIGUSR2 {
                logger.notice("SIGUSR2: exiting for a restart; announcements stay (bgp.grace_time bounds them)")
            } else if sig != 0 {
                let (secs, stopped) = await agent.withdrawForShutdown()
                logger.notice("withdrawn for shutdown", metadata: [
                    "signal": "\(sig)", "waited_s": "\(String(format: "%.2f", secs))",
                    "traffic": "\(stopped ? "stopped" : "still arriving (drain_timeout passed)")",
                ])
            }
            break
        }
        ticker.cancel()
        server.cancel()
        _ = await server.value
        listener.socket?.remove()
        refresher.cancel()
        cluster.cancel()
        _ = await cluster.value
        await agent.stop()
        logger.notice("agent stopped; the data plane keeps forwarding from its pins")
    }

    /// The one line `systemctl status` shows: what the node forwards, or why it doesn't.
    static func serviceStatus(_ agent: Agent) async -> String {
        let s = await agent.status()
        if let why = s.node.detached { return "DATA PLANE DETACHED: \(why)" }
        let failOpen = s.vips.filter(\.failOpen).count
        return "forwarding \(s.vips.count) VIPs on \(s.node.interface) (\(s.node.upMode))" + (failOpen > 0 ? ", \(failOpen) failing open" : "")
    }
}

/// Signals as an async stream: installed before anything else starts, so none is
/// lost or fatal while the agent comes up.
final class SignalQueue: @unchecked Sendable {
    let stream: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation
    private var sources: [DispatchSourceSignal] = []

    init(_ signals: [Int32]) {
        (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        for s in signals {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s)
            let c = continuation
            src.setEventHandler { c.yield(s) }
            src.resume()
            sources.append(src)
        }
    }

    /// Queues a value as if it were a signal (0: the server ended).
    func post(_ v: Int32) { continuation.yield(v) }
}

/// `xdplb status`.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "VIPs and backends: health, weight, slots, last check, ring digest."
    )

    @OptionGroup var admin: AdminOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        if json {
            print(try AdminClient.request("GET", "/status", via: admin).body)
            return
        }
        let s = try AdminClient.get("/status", via: admin, as: AgentStatus.self)
        print("node \(s.node.interface) (\(s.node.xdpMode)), program \(s.node.programId) tag \(s.node.programTag) [\(s.node.upMode)], bpffs \(s.node.bpffs ?? "(hidden)")")
        print("config \(s.node.configFile ?? "(hidden)") loaded \(s.node.configLoadedAt), \(s.node.reconciles) reconciles, last \(String(format: "%.2f", s.node.lastReconcileMs)) ms, seed \(s.node.hashSeed.map { "0x" + String($0, radix: 16) } ?? "(hidden: TCP without the admin token)")")
        if let t = s.node.ringTables {
            print("ring tables written: \(t.maglevBuild) built, \(t.handOver) handed over, \(t.sharedBuild) shared with a VIP of the same backends")
        }
        if let e = s.node.lastReconcileError { print("LAST RECONCILE FAILED: \(e)") }
        if let d = s.node.detached { print("DATA PLANE DETACHED: \(d)") }
        if let a = s.announcements { printAnnouncements(a) }
        if let p = s.protection { printProtection(p) }
        if let c = s.cluster {
            print("cluster node \(c.nodeName), prefix \(c.prefix), shared config revision \(c.revision == 0 ? "none" : String(c.revision))"
                  + (c.etcdReachable ? ", etcd reachable" : ", ETCD UNREACHABLE since \(c.unreachableSince ?? "?")")
                  + (c.staleSince.map { ", STALE since \($0) (running the cached config)" } ?? ""))
            print("  health: \(c.health)\(c.liveNodes.isEmpty ? "" : "; nodes " + c.liveNodes.joined(separator: ", "))")
            if let r = c.refusedRevision { print("  REFUSED revision \(r): \(c.refusedError ?? "")") }
            if let e = c.lastError, !c.etcdReachable { print("  last etcd error: \(e)") }
        }
        for v in s.vips {
            print("\nVIP \(v.name)  hash \(v.hash)  ring \(v.ringSize)  digest \(v.digest.isEmpty ? "-" : v.digest)\(v.failOpen ? "  FAIL-OPEN (all backends down)" : "")\(v.announcement.map { "  [\($0)]" } ?? "")")
            if let until = v.previousRingUntil { print("  second chance: the ring of before the last change stays until \(until)") }
            print("  " + "backend".padding(toLength: 28, withPad: " ", startingAt: 0) + "health  weight   slots  last check")
            for b in v.backends {
                let w = b.drained ? "drain" : (b.weight == b.configuredWeight ? "\(b.weight)" : "\(b.weight)*")
                print("  " + b.address.padding(toLength: 28, withPad: " ", startingAt: 0)
                      + ((b.agreedHealthy ?? b.healthy) ? (b.healthy ? "up    " : "up*   ") : (b.healthy ? "DOWN* " : "DOWN  ")) + w.leftPad(7) + String(b.slots).leftPad(8)
                      + "  \(b.lastResult) \(String(format: "%.1f", b.lastLatencyMs))ms (\(b.check))")
            }
        }
        if s.vips.contains(where: { $0.backends.contains { $0.agreedHealthy != nil && $0.agreedHealthy != $0.healthy } }) {
            print("\n* the cluster's agreed health differs from this node's own probe")
        }
    }
}

/// The BGP part of `xdplb status`.
/// The protection lines of `xdplb status`.
func printProtection(_ p: ProtectionStatus) {
    guard p.active || p.denyPrefixes + p.allowPrefixes > 0 || !p.floodAlerts.isEmpty else {
        print("protection: off (no deny/allow prefixes, no per-source limits)")
        return
    }
    print("protection: \(p.active ? "on" : "OFF in the data plane"), \(p.denyPrefixes) deny prefixes (\(p.runtimeDenyPrefixes) at run time), \(p.allowPrefixes) allow prefixes")
    for (name, l) in p.limits.sorted(by: { $0.key < $1.key }) {
        var parts: [String] = []
        if l.newFlowsPerSecond > 0 { parts.append("\(l.newFlowsPerSecond) new flows/s (burst \(l.newFlowBurst))") }
        if l.packetsPerSecond > 0 { parts.append("\(l.packetsPerSecond) packets/s (burst \(l.packetBurst))") }
        print("  \(name): per source /\(l.sourcePrefixV4) and /\(l.sourcePrefixV6): " + parts.joined(separator: ", "))
    }
    for name in p.floodAlerts { print("  FLOOD ALERT \(name): \(Int(p.newFlowsPerSecond[name] ?? 0)) new flows/s") }
}

func printAnnouncements(_ a: AgentStatus.Announcements) {
    let traffic = a.trafficStopped ? "traffic to this node has stopped (no VIP packet for \(String(format: "%.1f", a.secondsSinceVipTraffic)) s)"
        : "last VIP packet \(String(format: "%.1f", a.secondsSinceVipTraffic)) s ago"
    print("bgp: \(a.drained ? "NODE DRAINED, " : "")announcing \(a.announced.isEmpty ? "nothing" : a.announced.joined(separator: ", ")) (table \(a.table)); \(traffic)")
    if !a.healthConverged { print("bgp: waiting for health checks to converge before the first announcement") }
    if let e = a.routeError { print("bgp: ROUTE TABLE WRITE FAILED: \(e)") }
    if a.daemon != "running" { print("bgp: daemon \(a.daemon)") }
    for s in a.sessions {
        print("bgp: session \(s.name) peer \(s.peer): \(s.state) \(s.info) since \(s.since), bfd \(s.bfd)")
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

/// `xdplb stats`.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Packets, bytes and rates per outcome, VIP and backend."
    )

    @OptionGroup var admin: AdminOptions
    @Flag(help: "Refresh in place until interrupted.") var watch = false
    @Flag(help: "Print JSON (counters and rates over --interval).") var json = false
    @Flag(help: "Include per-CPU values of the global counters.") var perCpu = false
    @Option(help: "Seconds between the two samples rates are computed from.") var interval: Double = 1

    func validate() throws {
        guard interval > 0 && interval <= 3600 else { throw ValidationError("--interval must be in (0, 3600] seconds") }
    }

    func sample() throws -> AgentStats {
        try AdminClient.get(perCpu ? "/stats?per_cpu=1" : "/stats", via: admin, as: AgentStats.self)
    }

    func run() throws {
        var prev = try sample()
        Thread.sleep(forTimeInterval: interval)
        var cur = try sample()
        if json {
            print(try renderJSON(prev, cur))
            return
        }
        while true {
            if watch { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            print(renderTable(prev, cur))
            guard watch else { return }
            Thread.sleep(forTimeInterval: interval)
            prev = cur
            cur = try sample()
        }
    }

    func rate(_ a: AgentStats.Value?, _ b: AgentStats.Value, _ dt: Double) -> (Double, Double) {
        let p = Double(b.packets &- (a?.packets ?? 0)) / dt, by = Double(b.bytes &- (a?.bytes ?? 0)) / dt
        return (max(0, p), max(0, by))
    }

    func renderTable(_ a: AgentStats, _ b: AgentStats) -> String {
        let dt = max(b.time - a.time, 0.001)
        var out = "xdplb stats  (rates over \(String(format: "%.1f", dt)) s)\n"
        func section(_ title: String, _ m: [String: AgentStats.Value], _ prev: [String: AgentStats.Value], skipZero: Bool) {
            out += "\n" + title.padding(toLength: 34, withPad: " ", startingAt: 0) + "packets".leftPad(14) + "bytes".leftPad(16) + "pps".leftPad(12) + "bit/s".leftPad(14) + "\n"
            for (k, v) in m.sorted(by: { $0.key < $1.key }) where !(skipZero && v.packets == 0) {
                let (pps, bps) = rate(prev[k], v, dt)
                out += "  " + k.padding(toLength: 32, withPad: " ", startingAt: 0) + "\(v.packets)".leftPad(14) + "\(v.bytes)".leftPad(16)
                    + String(format: "%.0f", pps).leftPad(12) + String(format: "%.0f", bps * 8).leftPad(14) + "\n"
            }
        }
        section("counter", b.counters, a.counters, skipZero: true)
        section("VIP", b.vips, a.vips, skipZero: false)
        section("backend", b.backends, a.backends, skipZero: false)
        if let t = b.tunnelProbes { section("through-tunnel probe packets", t, a.tunnelProbes ?? [:], skipZero: false) }
        if let flows = b.vipFlows, !flows.isEmpty {
            let prev = a.vipFlows ?? [:]
            out += "\n" + "VIP flows".padding(toLength: 34, withPad: " ", startingAt: 0) + "new flows/s".leftPad(12) + "new flows".leftPad(14)
                + "drop_deny".leftPad(12) + "drop_rate_src_syn".leftPad(19) + "drop_rate_src_pps".leftPad(19) + "\n"
            for (k, v) in flows.sorted(by: { $0.key < $1.key }) {
                let rate = max(0, Double(v.newFlows &- (prev[k]?.newFlows ?? v.newFlows)) / dt)
                out += "  " + k.padding(toLength: 32, withPad: " ", startingAt: 0) + String(format: "%.0f", rate).leftPad(12) + "\(v.newFlows)".leftPad(14)
                    + "\(v.dropDeny)".leftPad(12) + "\(v.dropRateSourceSYN)".leftPad(19) + "\(v.dropRateSourcePPS)".leftPad(19) + "\n"
            }
        }
        if let ct = b.conntrack {
            let exact = ct.sampledBuckets * Conntrack.ways >= ct.ways
            out += "\nconntrack: \(ct.established) established, \(ct.embryonic) embryonic, \(ct.free) free of \(ct.ways) ways"
                + (exact ? "\n" : " (estimated from \(ct.sampledBuckets) buckets)\n")
        }
        if let cpu = b.perCpu?["rx"] {
            out += "\nrx per CPU: " + cpu.enumerated().map { "cpu\($0.offset) \($0.element.packets)" }.joined(separator: "  ") + "\n"
        }
        return out
    }

    func renderJSON(_ a: AgentStats, _ b: AgentStats) throws -> String {
        let dt = max(b.time - a.time, 0.001)
        func rows(_ m: [String: AgentStats.Value], _ prev: [String: AgentStats.Value]) -> [String: [String: Double]] {
            var r: [String: [String: Double]] = [:]
            for (k, v) in m {
                let (pps, bps) = rate(prev[k], v, dt)
                r[k] = ["packets": Double(v.packets), "bytes": Double(v.bytes), "pps": pps, "bytes_per_second": bps]
            }
            return r
        }
        var obj: [String: Any] = ["interval_seconds": dt, "counters": rows(b.counters, a.counters), "vips": rows(b.vips, a.vips),
                                  "backends": rows(b.backends, a.backends)]
        if let t = b.tunnelProbes { obj["tunnel_probes"] = rows(t, a.tunnelProbes ?? [:]) }
        if let flows = b.vipFlows {
            let prev = a.vipFlows ?? [:]
            var rows: [String: [String: Any]] = [:]
            for (k, v) in flows {
                rows[k] = ["new_flows": v.newFlows, "drop_deny": v.dropDeny, "drop_rate_src_syn": v.dropRateSourceSYN,
                           "drop_rate_src_pps": v.dropRateSourcePPS,
                           "new_flows_per_second": max(0, Double(v.newFlows &- (prev[k]?.newFlows ?? v.newFlows)) / dt)]
            }
            obj["vip_flows"] = rows
        }
        if let ct = b.conntrack {
            obj["conntrack"] = ["ways": ct.ways, "established": ct.established, "embryonic": ct.embryonic, "free": ct.free,
                                "sampled_buckets": ct.sampledBuckets]
        }
        if let cpu = b.perCpu { obj["per_cpu"] = cpu.mapValues { $0.map { ["packets": $0.packets, "bytes": $0.bytes] } } }
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])
        return String(decoding: data, as: UTF8.self)
    }
}

/// `xdplb reload`.
struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reload", abstract: "Make the agent re-read its config file.")
    @OptionGroup var admin: AdminOptions
    func run() throws { try AdminClient.operate("/reload", via: admin) }
}

/// `PATH?KEY=VALUE[extra][&vip=V]`, the values percent-encoded: an admin API operation on one thing.
func adminPath(_ path: String, _ key: String, _ value: String, vip: String?, extra: String = "") -> String {
    var out = "\(path)?\(key)=\(percentEncode(value))" + extra
    if let vip { out += "&vip=\(percentEncode(vip))" }
    return out
}

/// `/OP?backend=B[extra][&vip=V]` for the admin API's backend operations.
func backendPath(_ op: String, _ backend: String, vip: String?, extra: String = "") -> String {
    adminPath("/\(op)", "backend", backend, vip: vip, extra: extra)
}

/// `xdplb drain`.
struct DrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain", abstract: "Weight 0 for a backend: out of the ring, established flows keep going to it.")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "Backend address.") var backend: String
    @Option(help: "Only on this VIP (addr:port/proto, as in 'xdplb status').") var vip: String?
    func run() throws { try AdminClient.operate(backendPath("drain", backend, vip: vip), via: admin) }
}

/// `xdplb undrain`.
struct UndrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "undrain", abstract: "Give a drained backend its configured weight back.",
        discussion: """
            A setting for one VIP (--vip) wins over one for every VIP; one for every VIP replaces the \
            per-VIP ones. So after 'drain A', 'undrain A --vip V' restores A on V only (the answer names \
            the VIPs where it stays drained), and 'undrain A' restores it everywhere.
            """)
    @OptionGroup var admin: AdminOptions
    @Argument(help: "Backend address.") var backend: String
    @Option(help: "Only on this VIP.") var vip: String?
    func run() throws { try AdminClient.operate(backendPath("undrain", backend, vip: vip), via: admin) }
}

/// `xdplb weight`.
struct WeightCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "weight", abstract: "Set a backend's weight at run time (0...1000).")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "Backend address.") var backend: String
    @Argument(help: "Weight, 0...1000.") var weight: UInt32
    @Option(help: "Only on this VIP.") var vip: String?
    func validate() throws {
        guard weight <= 1000 else { throw ValidationError("weight \(weight) is out of range 0...1000") }
    }
    func run() throws {
        try AdminClient.operate(backendPath("weight", backend, vip: vip, extra: "&weight=\(weight)"), via: admin)
    }
}

/// `xdplb down`.
struct DownCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Detach the balancer and remove its pins (the only command that stops forwarding).",
        discussion: """
            Refuses while an agent owns the bpffs directory (it holds a lock on it): stop the agent \
            first. --force detaches anyway; the running agent then reports itself detached \
            (/healthz 503, status, metric xdplb_attached 0) and refuses changes.
            """
    )
    @Option(help: "The bpffs directory (node.bpffs).") var bpffs: String = "/sys/fs/bpf/xdplb"
    @Option(help: "Take node.bpffs from this config file instead.") var config: String?
    @Flag(help: "Detach and unpin even while an agent owns the directory.") var force = false

    func validate() throws {
        if config == nil, let why = ConfigLoader.bpffsProblem(bpffs) { throw ValidationError("--bpffs \(why)") }
    }

    func run() throws {
        configureLibbpfLogging()   // libbpf's warnings (e.g. no clsact qdisc to query) only in errors
        let dir = try config.map { try ConfigLoader.load(path: $0).node.bpffs } ?? bpffs
        guard dir.hasPrefix("/sys/fs/bpf/") else { throw ValidationError("--bpffs must be under /sys/fs/bpf/") }
        // Held until we exit: no agent can start on the directory while it is taken apart.
        var lock: PinDirectoryLock?
        if FileManager.default.fileExists(atPath: dir) {
            do { lock = try PinDirectoryLock.acquire(dir) } catch {
                guard force else {
                    printError("xdplb down: \(error); or use --force")
                    throw ExitCode(1)
                }
                printError("xdplb down: \(error); detaching anyway (--force)")
            }
        }
        let removed = try withExtendedLifetime(lock) { try PinnedDataPlane.down(directory: dir) }
        let pins = removed.filter { $0.hasPrefix("/") }
        print(removed.isEmpty ? "nothing pinned under \(dir)" : "detached and unpinned \(pins.count) objects under \(dir)")
        for r in removed where !r.hasPrefix("/") { print("removed \(r)") }
    }
}
