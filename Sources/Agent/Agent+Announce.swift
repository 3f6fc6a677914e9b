import Config
import DataPlane
import Foundation
import Health
import Logging
import NetAddress
import Routing

/// Test-only fault injection: with `XDPLB_FAULT_FILE` set, a reconcile fails while
/// that file names one of the config's VIPs (`addr:port/proto`, one per line). The
/// tests use it to prove that a failed reconcile withdraws the announcements.
enum FaultInjection {
    static let file = ProcessInfo.processInfo.environment["XDPLB_FAULT_FILE"]

    static func check(_ c: XdplbConfig) throws {
        guard let file, let d = FileManager.default.contents(atPath: file) else { return }
        let names = Set(String(decoding: d.prefix(4096), as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init))
        if let v = c.vips.first(where: { names.contains($0.name) }) {
            throw AgentError("injected reconcile fault for VIP \(v.name) (XDPLB_FAULT_FILE=\(file))")
        }
    }
}

extension Agent {
    static func makeAnnouncer(_ node: NodeConfig, logger: Logger) throws -> Announcer? {
        guard let bgp = node.bgp else { return nil }
        do {
            return try Announcer(bgp: bgp, stateDir: node.stateDir, table: KernelGateTable(table: bgp.table), logger: logger)
        } catch {
            throw AgentError("node.bgp: announcement table \(bgp.table) or state_dir \(node.stateDir): \(error)")
        }
    }

    /// Runs the announcement gate over every VIP and applies the result.
    func updateAnnouncements() {
        guard let announcer else { return }
        let node = NodeGateInput(stopping: stopping, attached: dataPlane.isAttached(), converged: healthConverged,
                                 reconcileError: lastReconcileError)
        let inputs = effectiveConfig().vips.map { v in
            // The controller keeps a table only when some backend with weight > 0 is in the ring.
            let usable = controller.vips[v.name]?.ring != nil
            return VIPGateInput(name: v.name, address: v.address, ringUsable: usable, failOpen: failingOpen().contains(v.name))
        }
        announcer.update(vips: inputs, node: node)
    }

    /// The agent's periodic work (every 250 ms from `xdplb run`): the gate's
    /// heartbeat and traffic observation, reconcile retries, health convergence.
    /// Runs on every node, with or without `node.bgp`: the hold after isolation
    /// is released here, so it must not depend on announcing anything.
    public func periodicTick() async {
        announcer?.heartbeat()
        sampleNewFlows()
        // A failed reconcile is retried every 2 s (the gate, if any, re-announces once it succeeds).
        if lastReconcileError != nil, Date().timeIntervalSince(lastRetry) >= 2 {
            lastRetry = Date()
            try? await reconcileWithHealth(reason: "retry")
        }
        if let announcer, let total = try? controller.vips.values.reduce(UInt64(0), { $0 &+ (try CounterReader.sum(dataPlane.maps.vipStats, index: $1.index)).packets }) {
            announcer.observeTraffic(vipPackets: total)
        }
        do {
            let dropped = try controller.expirePreviousRings()
            if !dropped.isEmpty { logger.info("second chance over: previous rings dropped", metadata: ["vips": "\(dropped.joined(separator: ","))"]) }
        } catch {
            logger.error("dropping previous rings failed", metadata: ["error": "\(error)"])
        }
        let wasHolding = convergence.holding
        refreshConvergence(await health.states)
        if wasHolding && !convergence.holding {
            // Settled after isolation: now apply the real view (this also re-announces).
            try? await reconcileWithHealth(reason: "health converged")
        }
        if announcer != nil { updateAnnouncements() }
    }

    /// Feeds the probe states to the convergence tracker and logs what changed.
    func refreshConvergence(_ states: [ProbeTarget: ProbeState]) {
        let inputs = Set(probeTargets().values.flatMap { $0.values }).filter { $0.check.type != .none }.map {
            HealthConvergence<ProbeTarget>.Input(target: $0, state: states[$0], rise: $0.check.rise, fall: $0.check.fall)
        }
        let change = convergence.update(inputs)
        if !convergence.converged { healthConvergedAt = nil } else if healthConvergedAt == nil { healthConvergedAt = Date() }
        switch change {
        case .none: break
        case .converged: logger.info("health checks converged: the gate may announce")
        case .isolated: logger.warning("every backend is down from this node (cut off?): the fail-open policy decides what is announced")
        case .reconverging:
            logger.warning("a backend is back after every one was down: withdrawn, and the data plane keeps failing open, until every backend is re-probed (a partial view would send moved flows elsewhere)")
            updateAnnouncements()
        }
    }

    /// `xdplb node drain|undrain`: withdraw or restore every VIP of this node.
    public func setNodeDrained(_ on: Bool) throws -> String {
        guard let announcer else { throw AgentError("this node has no node.bgp section: it announces nothing to drain") }
        do { try announcer.setDrained(on) } catch { throw AgentError("drain flag in \(config.node.stateDir): \(error.localizedDescription)") }
        updateAnnouncements()
        if let e = announcer.routeError { throw AgentError("route table \(announcer.bgp.table): \(e)") }
        return on ? "node drained: every VIP withdrawn; forwarding continues for what still arrives ('xdplb status' shows when traffic stopped)"
            : "node undrained: \(announcer.announced.count) addresses announced"
    }

    /// SIGTERM: withdraws every VIP, then waits until no VIP packet arrived for
    /// `bgp.quiet_time` or `bgp.drain_timeout` passed.
    /// - Returns: seconds waited and whether traffic stopped.
    public func withdrawForShutdown() async -> (seconds: Double, stopped: Bool) {
        guard let announcer else { return (0, true) }
        stopping = true
        updateAnnouncements()
        let start = Date()
        let deadline = start.addingTimeInterval(Double(announcer.bgp.drainTimeoutMs) / 1000)
        while Date() < deadline {
            await periodicTick()
            if announcer.trafficStoppedSince() != nil { return (Date().timeIntervalSince(start), true) }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        return (Date().timeIntervalSince(start), false)
    }

    /// The announcement part of `xdplb status`.
    func announcementStatus() -> AgentStatus.Announcements? {
        guard let announcer else { return nil }
        let bird = BirdControl(socketPath: announcer.bgp.controlSocket)
        var sessions: [AgentStatus.Session] = []
        var daemon = "running"
        do {
            let bfd = (try? bird.bfdSessions()) ?? []
            for p in try bird.protocols() where p.proto == "BGP" {
                let peer = announcer.bgp.peers.first { $0.name == p.name }
                let b = peer.flatMap { pr in bfd.first { $0.address == pr.address.description } }
                sessions.append(.init(name: p.name, peer: peer?.address.description ?? "", state: p.state, since: p.since,
                                      info: p.info, bfd: b?.state ?? (peer?.bfd == true ? "no session" : "off")))
            }
        } catch { daemon = error.description }
        let stopped = announcer.trafficStoppedSince()
        return .init(table: announcer.bgp.table, drained: announcer.drained,
                     announced: announcer.announced.map(\.description).sorted(), daemon: daemon, sessions: sessions,
                     routeError: announcer.routeError, healthConverged: healthConverged,
                     healthConvergedAt: healthConvergedAt?.timeIntervalSince1970,
                     trafficStopped: stopped != nil, secondsSinceVipTraffic: announcer.secondsSinceTraffic(),
                     graceTimeSeconds: Double(announcer.bgp.graceTimeMs) / 1000, failOpenPolicy: announcer.bgp.failOpen.rawValue)
    }
}
