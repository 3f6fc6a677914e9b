import DataPlane
import Foundation
import Prometheus

/// Prometheus exposition of the data-plane counters and the agent's state.
/// Map counters are monotonic values read from BPF maps; each scrape brings
/// the registry's counters up to them.
public final class Metrics: @unchecked Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let lock = NSLock()
    private var counters: [String: (Counter, Double)] = [:]
    private var gauges: [String: Gauge] = [:]
    /// Series set during the current render; the others (removed VIPs, backends, sessions) are dropped after it.
    private var seen: Set<String> = []

    /// Agent events exported from the first scrape on, even before they happen.
    static let knownEvents = ["reconcile", "reconcile_failed", "reload", "reload_failed", "reload_unchanged", "all_down", "detached",
                              "cluster_applied", "cluster_refused"]

    /// An empty registry.
    public init() {}

    private func key(_ name: String, _ labels: [(String, String)]) -> String {
        name + "{" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}"
    }

    /// Raises counter `name{labels}` to `value` (resets if the source restarted lower).
    func setCounter(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
        let k = key(name, labels)
        seen.insert(k)
        if counters[k] == nil {
            let c = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "total", helpText: help), labels: labels)
            counters[k] = (c, 0)
        }
        let (c, last) = counters[k]!
        if value < last { c.reset(); c.increment(by: value) } else if value > last { c.increment(by: value - last) }
        counters[k] = (c, value)
    }

    func setGauge(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
        let k = key(name, labels)
        seen.insert(k)
        if gauges[k] == nil {
            gauges[k] = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
        }
        gauges[k]!.set(value)
    }

    /// Reads everything from the agent and renders the text exposition format.
    public func render(agent: Agent) async throws -> String {
        let stats = try await agent.stats(perCPU: true)
        let status = await agent.status()
        let events = await agent.eventCounts()
        return lock.withLock { update(stats: stats, status: status, events: events) }
    }

    /// Unregisters every series the last render did not set: a removed VIP or backend leaves no stale series.
    private func dropUnseen() {
        for (k, (c, _)) in counters where !seen.contains(k) {
            registry.unregisterCounter(c)
            counters[k] = nil
        }
        for (k, g) in gauges where !seen.contains(k) {
            registry.unregisterGauge(g)
            gauges[k] = nil
        }
        seen = []
    }

    private func update(stats: AgentStats, status: AgentStatus, events: [String: Int]) -> String {
        seen = []
        for (name, v) in stats.counters {
            let kind = CounterNames.isOutcome(name) || name == "rx" ? "outcome" : "path"
            setCounter("xdplb_packets", "Packets by data-plane outcome or path step (per-CPU counters summed).", [("counter", name), ("kind", kind)], Double(v.packets))
            setCounter("xdplb_bytes", "Bytes by data-plane outcome or path step.", [("counter", name), ("kind", kind)], Double(v.bytes))
        }
        if let ct = stats.conntrack {
            for (state, n) in [("established", ct.established), ("embryonic", ct.embryonic), ("free", ct.free)] {
                setGauge("xdplb_conntrack_ways", "Conntrack ways by use: established flows, embryonic (one packet seen, as a SYN flood's), free; estimated from a sample of buckets.",
                         [("state", state)], Double(n))
            }
        }
        for (outcome, v) in stats.tunnelProbes ?? [:] {
            setCounter("xdplb_tunnel_probe_packets", "Through-tunnel health probe packets by outcome of the probe program (rx = all marked).",
                       [("outcome", outcome)], Double(v.packets))
        }
        for (cpu, v) in (stats.perCpu?["rx"] ?? []).enumerated() {
            setCounter("xdplb_cpu_rx_packets", "Packets seen by the XDP program, per CPU.", [("cpu", "\(cpu)")], Double(v.packets))
        }
        for (vip, v) in stats.vips {
            setCounter("xdplb_vip_packets", "Packets forwarded per VIP.", [("vip", vip)], Double(v.packets))
            setCounter("xdplb_vip_bytes", "Bytes forwarded per VIP.", [("vip", vip)], Double(v.bytes))
        }
        for (vip, f) in stats.vipFlows ?? [:] {
            setCounter("xdplb_vip_new_flows", "Flows the VIP's Maglev ring decided (SYNs and conntrack misses).", [("vip", vip)], Double(f.newFlows))
            for (reason, n) in [("deny", f.dropDeny), ("rate_src_syn", f.dropRateSourceSYN), ("rate_src_pps", f.dropRateSourcePPS)] {
                setCounter("xdplb_vip_protection_drops", "Packets dropped per VIP by protection: deny prefix, source over its new-flow or packet limit.",
                           [("vip", vip), ("reason", reason)], Double(n))
            }
        }
        if let p = status.protection {
            for (vip, rate) in p.newFlowsPerSecond {
                setGauge("xdplb_vip_new_flows_per_second", "New flows per second per VIP over the agent's last sampling second (the flood signal).",
                         [("vip", vip)], rate)
            }
            setGauge("xdplb_protection_active", "1 while the data plane checks prefix lists or per-source limits.", [], p.active ? 1 : 0)
            setGauge("xdplb_protection_prefixes", "Deny and allow prefixes in force.", [("action", "deny")], Double(p.denyPrefixes))
            setGauge("xdplb_protection_prefixes", "Deny and allow prefixes in force.", [("action", "allow")], Double(p.allowPrefixes))
        }
        for (b, v) in stats.backends {
            setCounter("xdplb_backend_packets", "Packets forwarded per backend.", [("backend", b)], Double(v.packets))
            setCounter("xdplb_backend_bytes", "Bytes forwarded per backend.", [("backend", b)], Double(v.bytes))
        }
        for v in status.vips {
            if let a = v.announcement {
                setGauge("xdplb_vip_announced", "1 while this node announces the VIP's address for it (BGP gate).", [("vip", v.name)], a == "announced" ? 1 : 0)
            }
            // The digest's first 12 hex digits (48 bits: exact as a float): equal on nodes that run the same table.
            if let d = UInt64(v.digest.prefix(12), radix: 16) {
                setGauge("xdplb_vip_table_digest", "The VIP's Maglev ring digest (first 48 bits); nodes with the same table show the same value.",
                         [("vip", v.name)], Double(d))
            }
            setGauge("xdplb_vip_fail_open", "1 when every backend of the VIP is down and it fails open.", [("vip", v.name)], v.failOpen ? 1 : 0)
            for b in v.backends {
                let l = [("vip", v.name), ("backend", b.address)]
                setGauge("xdplb_backend_healthy", "1 when the backend passes this node's health check.", l, b.healthy ? 1 : 0)
                if let a = b.agreedHealthy {
                    setGauge("xdplb_backend_agreed_healthy", "In a cluster: 1 when the nodes agree the backend is healthy (this decides the ring).", l, a ? 1 : 0)
                }
                setGauge("xdplb_backend_weight", "Effective Maglev weight (0 = drained).", l, Double(b.weight))
                setGauge("xdplb_backend_slots", "Slots the backend holds in the VIP's Maglev ring.", l, Double(b.slots))
                setGauge("xdplb_backend_check_latency_seconds", "Latency of the last health check.", l, b.lastLatencyMs / 1000)
            }
        }
        if let c = status.cluster {
            setGauge("xdplb_cluster_revision", "The etcd revision of the shared config this node runs (0: none).", [], Double(c.revision))
            setGauge("xdplb_cluster_etcd_reachable", "1 while etcd answers this node.", [], c.etcdReachable ? 1 : 0)
            setGauge("xdplb_cluster_stale", "1 while the node runs its cached config (etcd unreachable at start).", [], c.staleSince == nil ? 0 : 1)
            setGauge("xdplb_cluster_health_consensus", "1 while health comes from the cluster's consensus; 0 while the node uses its own probes.", [],
                     c.healthConsensus ? 1 : 0)
            setGauge("xdplb_cluster_live_nodes", "Nodes whose health observations count now.", [], Double(c.liveNodes.count))
            setGauge("xdplb_cluster_refused_revision", "The newest shared-config revision this node refused (0: none).", [], Double(c.refusedRevision ?? 0))
        }
        if let a = status.announcements {
            setGauge("xdplb_node_drained", "1 while 'xdplb node drain' is in effect.", [], a.drained ? 1 : 0)
            for s in a.sessions {
                setGauge("xdplb_bgp_session_established", "1 while the daemon reports the BGP session Established.", [("session", s.name), ("peer", s.peer)],
                         s.info.hasPrefix("Established") ? 1 : 0)
            }
            setGauge("xdplb_bgp_daemon_up", "1 while the BGP daemon answers on its control socket.", [], a.daemon == "running" ? 1 : 0)
        }
        setGauge("xdplb_attached", "1 while the balancer program is attached and pinned; 0 after 'xdplb down --force' (see /healthz).", [],
                 status.node.attached == false ? 0 : 1)
        setGauge("xdplb_reconcile_last_seconds", "Duration of the last reconcile.", [], status.node.lastReconcileMs / 1000)
        if let t = status.node.ringTables {
            for (source, n) in [("maglev_build", t.maglevBuild), ("hand_over", t.handOver), ("shared_build", t.sharedBuild)] {
                setCounter("xdplb_ring_tables", "Ring tables written since the agent started, by source: maglev_build (a build of the VIP's own), hand_over (from its current ring, only the down set changed), shared_build (another VIP's build of the same backend list).",
                           [("source", source)], Double(n))
            }
        }
        if let l = status.probeLateness {
            // A gauge per statistic (a "quantile" label is reserved for summaries).
            for (stat, ms) in [("p50", l.p50Ms), ("p99", l.p99Ms), ("max", l.maxMs)] {
                setGauge("xdplb_health_probe_lateness_seconds",
                         "How much later than scheduled health probes started, over the last 10 s: stat p50, p99 and max.",
                         [("stat", stat)], ms / 1000)
            }
        }
        setGauge("xdplb_build_info", "Always 1; the labels name the running release.", [("version", XdplbVersion.string)], 1)
        // Every known event exists from the start (at 0), so rate() and alerts see its first occurrence.
        for (e, n) in events.merging(Metrics.knownEvents.map { ($0, 0) }, uniquingKeysWith: { a, _ in a }) {
            setCounter("xdplb_agent_events", "Agent events: reconcile, reconcile_failed, reload, reload_failed, reload_unchanged, all_down, detached, cluster_applied, cluster_refused, flood_alert.", [("event", e)], Double(n))
        }
        dropUnseen()
        return registry.emitToString()
    }
}
