import BPF
import Cluster
import Config
import CXdplb
import DataPlane
import Foundation
import Health
import Logging
import Maglev
import NetAddress
import Routing

/// An error from an agent operation, in words an operator can act on.
public struct AgentError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The agent: keeps the pinned data plane equal to config ∩ health.
///
/// Everything that changes state goes through this actor: health transitions,
/// reloads, admin changes (drain, weight) and next-hop refreshes each trigger a
/// reconcile, which rewrites only the VIPs that changed (each ring swapped
/// atomically) and reports how long it took.
public actor Agent {
    let logger: Logger
    let configPath: String
    private(set) var config: XdplbConfig
    private var configLoadedAt = Date()
    /// The node file as loaded (in a cluster its VIPs are empty: they come from `shared`).
    private(set) var fileConfig: XdplbConfig
    /// ``ConfigLoader/fingerprint(_:)`` of the config file as last loaded (a reload of
    /// the same bytes changes nothing and is answered without parsing).
    private var fileFingerprint = ""
    /// The shared config from etcd this node runs (nil outside a cluster, or before any push).
    var shared: SharedConfig?
    /// This node's part in the cluster (nil without a cluster section).
    let member: ClusterMember?
    let dataPlane: PinnedDataPlane
    /// This agent's hold on `node.bpffs` (released when the process ends).
    let pinLock: PinDirectoryLock
    let controller: DataPlaneController
    var health: HealthChecker!
    /// Admin weight overrides: (VIP name or "*" for every VIP, backend) → weight.
    /// A VIP's own override wins over the "*" one (see `setWeight`).
    private var weightOverrides: [String: [IPAddress: WeightOverride]] = [:]
    private var nextHops: [IPAddress: NextHop] = [:]
    /// Prefixes denied at run time (`xdplb deny add`), by scope: "*" for every VIP, else a VIP name.
    var runtimeDeny: [String: [IPPrefix]] = [:]
    /// The last sample of each VIP's new-flow count, and the rates computed from the two last samples.
    var flowSample: (time: Double, counts: [String: UInt64])?
    var newFlowRates: [String: Double] = [:]
    /// VIPs above their flood alert now.
    var floodAlerts: Set<String> = []
    private var failOpen: Set<String> = []
    /// Reconciles done and the last one's duration.
    public private(set) var reconciles = 0
    public private(set) var lastReconcileMs = 0.0
    /// Ring tables written since start, by how each was made.
    public private(set) var ringTables = AgentStatus.RingTables()
    /// Counters of agent events (for metrics).
    public internal(set) var events: [String: Int] = [:]
    private var pendingReconcile = false
    /// BGP announcements (nil without `node.bgp`).
    let announcer: Announcer?
    /// The last reconcile's error (nil: it succeeded); the announcement gate reads it.
    var lastReconcileError: String?
    /// SIGTERM received: everything is withdrawn.
    var stopping = false
    /// Whether the health view is settled enough to announce (start-up, and after losing every backend).
    var convergence = HealthConvergence<ProbeTarget>()
    /// Health checks have converged (or announcements were adopted).
    var healthConverged: Bool { convergence.converged }
    /// When `healthConverged` last became true.
    var healthConvergedAt: Date?
    /// When a failed reconcile was last retried.
    var lastRetry = Date.distantPast
    /// Why the data plane is not serving (nil while attached); see `checkAttachment`.
    var detached: String?
    /// Through-tunnel probes: what the checker's tasks read at probe time (Agent+Tunnel.swift).
    let tunnelState = TunnelProbeState()
    /// The probe program, once a VIP asked for through-tunnel checks.
    var probeEncapsulator: ProbeEncapsulator?

    /// Brings up the data plane for the config at `configPath` (load or adopt) and fills it.
    /// - Parameter objectPath: a balancer ELF object to run instead of the embedded one (upgrades, tests).
    public init(configPath: String, objectPath: String? = nil, logger: Logger) async throws {
        self.logger = logger
        self.configPath = configPath
        var cfg: XdplbConfig
        do {
            let data = try ConfigLoader.read(path: configPath)
            cfg = try ConfigLoader.parse(data, file: configPath)
            fileFingerprint = ConfigLoader.fingerprint(data)
        } catch { throw AgentError(error.description) }
        fileConfig = cfg
        if let cl = cfg.cluster {
            let m: ClusterMember
            do { m = try ClusterMember(cl, logger: logger) } catch { throw AgentError(error.description) }
            let start = await m.start(node: cfg.node)
            logger.notice("cluster: \(start.note)", metadata: ["node": "\(cl.nodeName)", "prefix": "\(cl.prefix)"])
            member = m
            shared = start.shared
            cfg = cfg.running(start.shared ?? SharedConfig(hashSeed: nil, vips: []))
            config = cfg
        } else {
            member = nil
            config = cfg
        }
        // One agent per pin directory, decided before anything is opened or written.
        let directoryExisted = BPFFS.exists(cfg.node.bpffs)
        do {
            try BPFFS.ensureMounted()
            try BPFFS.makeDirectory(cfg.node.bpffs)
            pinLock = try PinDirectoryLock.acquire(cfg.node.bpffs)
        } catch let e as PinDirectoryLock.Failure {
            throw AgentError(e.description)
        }
        let up: PinnedDataPlane
        do { up = try PinnedDataPlane.up(node: cfg.node, objectPath: objectPath, logger: logger) } catch {
            if !directoryExisted { try? BPFFS.removeDirectory(cfg.node.bpffs) }   // made by this start, empty again
            throw error
        }
        dataPlane = up
        controller = DataPlaneController(maps: up.maps)
        do { announcer = try Self.makeAnnouncer(cfg.node, logger: logger) } catch { Self.undoFreshStart(up, logger: logger); throw error }
        let adopted: (backends: Int, vips: Int)
        do { adopted = try controller.adopt() } catch { Self.undoFreshStart(up, logger: logger); throw error }
        if adopted.backends > 0 || adopted.vips > 0 {
            logger.info("adopted pinned state", metadata: ["backends": "\(adopted.backends)", "vips": "\(adopted.vips)"])
        }
        nextHops = KernelNextHopResolver.resolve(Self.backendAddresses(cfg))
        let tunnel = tunnelState
        health = HealthChecker(logger: logger, tunnel: { tunnel.route($0) }) { [weak self] _, _ in
            guard let self else { return }
            Task { await self.healthChanged() }
        }
        prepareTunnelProbes()
        await health.setTargets(Set(probeTargets().values.flatMap { $0.values }))
        loadRuntimeDenies()
        do { try reconcile(reason: "start") } catch { Self.undoFreshStart(up, logger: logger); throw error }
        // Pins of an older layout: the new maps are full now, so pins and program change over.
        if up.migrationPending { try up.finishMigration(logger: logger) }
    }

    /// After a failed start: a fresh data plane (nothing was pinned before) is detached and
    /// unpinned again; an adopted or upgraded one keeps forwarding as it was.
    static func undoFreshStart(_ up: PinnedDataPlane, logger: Logger) {
        guard up.mode == .fresh else { return }
        if let removed = try? PinnedDataPlane.down(directory: up.directory) {
            logger.notice("start failed: detached and removed the pins it had made", metadata: ["pins": "\(removed.count)"])
        }
    }

    static func backendAddresses(_ c: XdplbConfig) -> [IPAddress] {
        Array(Set(c.vips.flatMap { $0.backends.map(\.address) })).sorted()
    }

    /// Probe target of every (VIP, backend).
    func probeTargets() -> [String: [IPAddress: ProbeTarget]] {
        var out: [String: [IPAddress: ProbeTarget]] = [:]
        for v in config.vips {
            var m: [IPAddress: ProbeTarget] = [:]
            for b in v.backends {
                let check = b.health ?? v.health
                let port = check.port ?? (v.port == 0 ? 80 : v.port)
                m[b.address] = ProbeTarget(address: b.address, port: port, check: check, via: check.throughTunnel ? v.address : nil)
            }
            out[v.name] = m
        }
        return out
    }

    /// The config (the running one unless given) with admin weight overrides applied.
    func effectiveConfig(of base: XdplbConfig? = nil) -> XdplbConfig {
        var c = base ?? config
        c.protection = withRuntimeDenies(c.protection)
        for i in c.vips.indices {
            let name = c.vips[i].name
            for j in c.vips[i].backends.indices {
                let a = c.vips[i].backends[j].address
                if case let .weight(w)? = weightOverrides[name]?[a] ?? weightOverrides["*"]?[a] { c.vips[i].backends[j].weight = w }
            }
        }
        return c
    }

    private func healthChanged() async {
        // Coalesce bursts of transitions into one reconcile.
        if pendingReconcile { return }
        pendingReconcile = true
        try? await Task.sleep(nanoseconds: 20_000_000)
        pendingReconcile = false
        await publishOwnHealth()
        do { try await reconcileWithHealth(reason: "health") } catch {
            logger.error("reconcile failed", metadata: ["error": "\(error)"])
        }
    }

    func reconcileWithHealth(reason: String) async throws {
        let targets = probeTargets()
        // One hop to the checker for every state, not one per target (1,000 backends = 1,000 awaits).
        let probed = await health.states
        refreshConvergence(probed)
        // Back from isolation, not settled: keep the view of before (see HealthConvergence).
        if convergence.holding { return try reconcile(reason: reason) }
        var states: [ProbeTarget: Bool] = [:]
        let agreed = await agreedHealth()
        for t in targets.values.flatMap({ $0.values }) { states[t] = agreed?[t.description] ?? probed[t]?.healthy ?? true }
        try reconcile(reason: reason, healthy: states)
    }

    private var lastHealthy: [ProbeTarget: Bool] = [:]

    /// Computes down sets (with the fail-open policy) and applies.
    func reconcile(reason: String, healthy: [ProbeTarget: Bool]? = nil) throws {
        if let healthy { lastHealthy = healthy }
        let c = effectiveConfig()
        let targets = probeTargets()
        var down: [String: Set<IPAddress>] = [:]
        var nowFailOpen: Set<String> = []
        for v in c.vips {
            let vt = targets[v.name] ?? [:]
            let d = Set(v.backends.filter { b in vt[b.address].map { lastHealthy[$0] == false } ?? false }.map(\.address))
            if !v.backends.isEmpty && d.count == v.backends.count {
                // Policy: every backend down → fail open to all (health may be what is broken).
                nowFailOpen.insert(v.name)
                down[v.name] = []
            } else {
                down[v.name] = d
            }
        }
        for name in nowFailOpen.subtracting(failOpen) {
            logger.warning("all backends down: failing open to every backend", metadata: ["vip": "\(name)"])
            events["all_down", default: 0] += 1
        }
        for name in failOpen.subtracting(nowFailOpen) {
            logger.notice("backends healthy again: fail-open ended", metadata: ["vip": "\(name)"])
        }
        failOpen = nowFailOpen
        let report: ApplyReport
        do {
            try FaultInjection.check(c)
            report = try controller.apply(c, downByVIP: down, nextHops: nextHops)
            tunnelState.set(ids: controller.backendIDs)
            lastReconcileError = nil
        } catch {
            lastReconcileError = "\(error)"
            events["reconcile_failed", default: 0] += 1
            updateAnnouncements()
            throw error
        }
        defer { updateAnnouncements() }
        if let member { Task { try? await member.publish(force: false) } }
        reconciles += 1
        lastReconcileMs = report.milliseconds
        ringTables.maglevBuild += report.ringsBuilt
        ringTables.handOver += report.ringsHandedOver
        ringTables.sharedBuild += report.ringsSharingTable
        events["reconcile", default: 0] += 1
        if !report.ringsReplaced.isEmpty || !report.vipsRemoved.isEmpty || report.backendsWritten > 0 || report.backendsRemoved > 0 {
            logger.info("reconciled", metadata: [
                "reason": "\(reason)", "ms": "\(String(format: "%.2f", report.milliseconds))",
                "rings.replaced": "\(report.ringsReplaced.joined(separator: ","))",
                "rings.built": "\(report.ringsBuilt)", "rings.handed_over": "\(report.ringsHandedOver)",
                "rings.sharing_table": "\(report.ringsSharingTable)",
                "vips.removed": "\(report.vipsRemoved.joined(separator: ","))",
                "backends.written": "\(report.backendsWritten)", "backends.removed": "\(report.backendsRemoved)",
            ])
        }
    }

    // MARK: operations

    /// Re-reads the config file; an invalid file is refused and nothing changes.
    /// - Returns: a one-line summary.
    public func reload() async throws -> String {
        func refused(_ error: ConfigError) -> AgentError {
            events["reload_failed", default: 0] += 1
            logger.error("reload refused: invalid config, keeping the running one", metadata: ["error": "\(error.description)"])
            return AgentError(error.description)
        }
        let data: Data
        do { data = try ConfigLoader.read(path: configPath) } catch { throw refused(error) }
        // The same bytes as the running file: not parsed again, still a reconcile (cheap when
        // nothing changed), so a reload retries one that failed.
        let fingerprint = ConfigLoader.fingerprint(data)
        if fingerprint == fileFingerprint {
            events["reload_unchanged", default: 0] += 1
            logger.info("reload: the config file is unchanged", metadata: ["file": "\(configPath)"])
            try await reconcileWithHealth(reason: "reload (file unchanged)")
            return "unchanged \(configPath): \(config.vips.count) VIPs, reconciled"
        }
        var new: XdplbConfig
        do { new = try ConfigLoader.parse(data, file: configPath) } catch { throw refused(error) }
        let o = config.node, n = new.node
        var fixed: [String] = []
        if o.interface != n.interface { fixed.append("node.interface") }
        if o.xdpMode != n.xdpMode { fixed.append("node.xdp_mode") }
        if o.bpffs != n.bpffs { fixed.append("node.bpffs") }
        if o.lruSize != n.lruSize { fixed.append("node.lru_size") }
        if o.admin != n.admin { fixed.append("node.admin") }
        if o.adminGroup != n.adminGroup || o.adminTokenFile != n.adminTokenFile { fixed.append("node.admin_group/admin_token_file") }
        if o.bgp != n.bgp { fixed.append("node.bgp") }
        if o.stateDir != n.stateDir { fixed.append("node.state_dir") }
        if fileConfig.cluster != new.cluster { fixed.append("cluster") }
        if !fixed.isEmpty {
            events["reload_failed", default: 0] += 1
            let msg = "\(configPath): \(fixed.joined(separator: ", ")) can't change on reload; restart the agent (state is kept)"
            logger.error("reload refused", metadata: ["error": "\(msg)"])
            throw AgentError(msg)
        }
        let file = new
        if new.cluster != nil {
            // The node file's settings with the shared VIPs: checked again against the new node settings.
            if let yaml = await member?.runningYAML {
                do { new = new.running(try ConfigLoader.parseShared(yaml, file: "the running shared config", node: new.node)) } catch {
                    events["reload_failed", default: 0] += 1
                    let msg = "\(configPath): the running shared config does not fit these node settings: \(error.description)"
                    logger.error("reload refused", metadata: ["error": "\(msg)"])
                    throw AgentError(msg)
                }
            }
        }
        try await install(new, source: configPath)
        fileConfig = file
        fileFingerprint = fingerprint
        return "reloaded \(configPath): \(new.vips.count) VIPs"
    }

    /// Makes `new` the running config, all or nothing: checked against the data plane first,
    /// applied, and on any failure the previous config is put back and applied again.
    func install(_ new: XdplbConfig, source: String) async throws {
        try requireAttached()
        // Capacity and tables first: a config the data plane can't hold changes nothing.
        do { try controller.validate(effectiveConfig(of: new)) } catch {
            events["reload_failed", default: 0] += 1
            let msg = "\(source): the data plane can't hold this config, keeping the running one: \(error)"
            logger.error("reload refused", metadata: ["error": "\(msg)"])
            throw AgentError(msg)
        }
        let old = (config: config, loadedAt: configLoadedAt, nextHops: nextHops)
        config = new
        configLoadedAt = Date()
        nextHops = KernelNextHopResolver.resolve(Self.backendAddresses(new))
        prepareTunnelProbes()
        await health.setTargets(Set(probeTargets().values.flatMap { $0.values }))
        do {
            try await reconcileWithHealth(reason: "reload")
        } catch {
            // All or nothing: put the previous config back and make the maps equal to it again.
            config = old.config
            configLoadedAt = old.loadedAt
            nextHops = old.nextHops
            await health.setTargets(Set(probeTargets().values.flatMap { $0.values }))
            var msg = "\(source): applying the new config failed, the previous one is back in force: \(error)"
            do { try await reconcileWithHealth(reason: "rollback") } catch {
                msg += "; rolling back failed too: \(error)"
            }
            events["reload_failed", default: 0] += 1
            logger.error("reload failed and was rolled back", metadata: ["error": "\(msg)"])
            throw AgentError(msg)
        }
        events["reload", default: 0] += 1
        logger.notice("config reloaded", metadata: ["source": "\(source)", "vips": "\(new.vips.count)"])
    }

    /// Sets a backend's weight (0 = drain; nil = back to the config's) on one VIP or all.
    ///
    /// The rule: a setting for one VIP (`--vip V`) wins over a setting for every
    /// VIP, and a setting for every VIP replaces the backend's per-VIP ones. So
    /// `drain A` then `undrain A --vip V` gives A its config weight on V and
    /// keeps it drained elsewhere (the answer names where); `undrain A` undoes
    /// every drain and weight of A.
    public func setWeight(backend text: String, vip: String?, weight: UInt32?) async throws -> String {
        guard let addr = IPAddress(text) else { throw AgentError("\(Echo.quoted(text)) is not an IP address") }
        if let w = weight, w > ConfigLoader.maxWeight { throw AgentError("weight \(w) is out of range 0...\(ConfigLoader.maxWeight)") }
        let vips = config.vips.filter { v in (vip == nil || v.name == vip) && v.backends.contains { $0.address == addr } }
        guard !vips.isEmpty else {
            throw AgentError(vip == nil ? "backend \(addr) is in no VIP" : "backend \(addr) is not in VIP \(vip!)")
        }
        try requireAttached()
        let saved = weightOverrides
        if let vip {
            // Back to the config's weight on V: explicit while a setting for every VIP would still apply.
            weightOverrides[vip, default: [:]][addr] = weight.map(WeightOverride.weight) ?? (weightOverrides["*"]?[addr] != nil ? .configured : nil)
        } else {
            for name in weightOverrides.keys { weightOverrides[name]?[addr] = nil }
            weightOverrides["*", default: [:]][addr] = weight.map(WeightOverride.weight)
        }
        do { try await reconcileWithHealth(reason: weight == 0 ? "drain" : "weight") } catch {
            weightOverrides = saved
            try? await reconcileWithHealth(reason: "rollback")
            throw AgentError("\(addr): not changed, applying it failed: \(error)")
        }
        let what = weight.map { $0 == 0 ? "drained" : "weight \($0)" } ?? "config weight restored"
        logger.notice("backend weight changed", metadata: ["backend.address": "\(addr)", "vip": "\(vip ?? "all")", "weight": "\(weight.map(String.init) ?? "config")"])
        var answer = "\(addr): \(what) on \(vips.map(\.name).joined(separator: ", "))"
        if vip != nil, case let .weight(g)? = weightOverrides["*"]?[addr] {
            let others = config.vips.filter { v in v.backends.contains { $0.address == addr } && weightOverrides[v.name]?[addr] == nil }.map(\.name)
            if !others.isEmpty {
                answer += "; still \(g == 0 ? "drained" : "weight \(g)") on \(others.joined(separator: ", ")) by the setting for every VIP ('xdplb undrain \(addr)' undoes it everywhere)"
            }
        }
        return answer
    }

    /// Re-resolves next hops and reconciles if any changed.
    public func refreshNextHops() async {
        let vips = tunnelVIPs()
        if !vips.isEmpty { checkTunnelRoutes(vips) }
        let n = KernelNextHopResolver.resolve(Self.backendAddresses(config))
        guard n != nextHops else { return }
        nextHops = n
        logger.info("next hops changed", metadata: ["resolved": "\(n.count)"])
        try? await reconcileWithHealth(reason: "next-hop")
    }

    /// Stops health checks (the data plane keeps running from its pins).
    public func stop() async {
        await health.stop()
        await member?.leave()
    }

    // MARK: views

    /// The status report.
    public func status() async -> AgentStatus {
        let c = effectiveConfig()
        let targets = probeTargets()
        let states = await health.states
        let clusterInfo = await clusterStatus()
        let effective = lastHealthy, inCluster = member != nil
        let iso = ISO8601DateFormatter()
        var vips: [AgentStatus.VIP] = []
        for v in c.vips {
            let state = controller.vips[v.name]
            let counts = state?.ring?.slotCounts ?? [:]
            let configured = Dictionary(config.vips.first { $0.name == v.name }?.backends.map { ($0.address, $0.weight) } ?? [], uniquingKeysWith: { a, _ in a })
            let backends = v.backends.map { b -> AgentStatus.Backend in
                let t = targets[v.name]?[b.address]
                let s = t.flatMap { states[$0] }
                return AgentStatus.Backend(address: b.address.description, configuredWeight: configured[b.address] ?? b.weight, weight: b.weight,
                                           drained: b.weight == 0, healthy: s?.healthy ?? true,
                                           agreedHealthy: !inCluster ? nil : (t.flatMap { effective[$0] } ?? s?.healthy ?? true), slots: counts[b.address.description] ?? 0,
                                           check: t?.description ?? "", lastResult: s?.lastResult ?? "",
                                           lastLatencyMs: s?.lastLatencyMs ?? 0, lastCheck: s?.lastCheck.map { iso.string(from: $0) })
            }
            vips.append(AgentStatus.VIP(name: v.name, hash: v.hash.rawValue, ringSize: v.ringSize, digest: state?.ring?.digest ?? "",
                                        failOpen: failOpen.contains(v.name), announcement: announcer?.states[v.name]?.description,
                                        previousRingUntil: state?.previousRingUntil.map { iso.string(from: $0) }, backends: backends))
        }
        let node = AgentStatus.Node(interface: c.node.interface, xdpMode: c.node.xdpMode.rawValue, bpffs: c.node.bpffs,
                                    programId: dataPlane.programInfo.id, programTag: dataPlane.programInfo.tag,
                                    upMode: dataPlane.mode.rawValue, configFile: configPath,
                                    configLoadedAt: iso.string(from: configLoadedAt), lastReconcileMs: lastReconcileMs,
                                    reconciles: reconciles, hashSeed: c.node.hashSeed, lastReconcileError: lastReconcileError,
                                    attached: detached == nil, detached: detached, ringTables: ringTables)
        let l = await health.probeLateness()
        let lateness = AgentStatus.ProbeLateness(windowSeconds: l.windowSeconds, probes: l.probes, p50Ms: l.p50 * 1000, p99Ms: l.p99 * 1000,
                                                 maxMs: l.max * 1000, started: l.started, skipped: l.skipped)
        var status = AgentStatus(node: node, vips: vips, announcements: announcementStatus(), cluster: clusterInfo, probeLateness: lateness)
        status.protection = protectionStatus()
        return status
    }

    /// Counters read from the maps, with names.
    public func stats(perCPU: Bool = false) throws -> AgentStats {
        let maps = dataPlane.maps
        var counters: [String: AgentStats.Value] = [:]
        for (name, v) in try CounterReader.global(maps) { counters[name] = .init(packets: v.packets, bytes: v.bytes) }
        var vips: [String: AgentStats.Value] = [:]
        for (name, s) in controller.vips {
            let v = try CounterReader.sum(maps.vipStats, index: s.index)
            vips[name] = .init(packets: v.packets, bytes: v.bytes)
        }
        var backends: [String: AgentStats.Value] = [:]
        for (addr, id) in controller.backendIDs {
            let v = try CounterReader.sum(maps.backendStats, index: id)
            backends[addr.description] = .init(packets: v.packets, bytes: v.bytes)
        }
        var cpu: [String: [AgentStats.Value]]?
        if perCPU {
            cpu = try CounterReader.globalPerCPU(maps).mapValues { $0.map { .init(packets: $0.packets, bytes: $0.bytes) } }
        }
        var stats = AgentStats(time: Date().timeIntervalSince1970, counters: counters, vips: vips, backends: backends, perCpu: cpu)
        stats.conntrack = try Conntrack(map: maps.conntrack, seed: 0).occupancy()
        stats.vipFlows = try controller.vipFlowCounts()
        if probeEncapsulator != nil {
            stats.tunnelProbes = tunnelProbeCounters().mapValues { AgentStats.Value(packets: $0.packets, bytes: $0.bytes) }
        }
        return stats
    }

    /// Agent-side event counts for metrics.
    public func eventCounts() -> [String: Int] { events }
    /// VIPs failing open now.
    public func failingOpen() -> Set<String> { failOpen }
}
