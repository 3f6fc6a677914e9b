import DataPlane

/// `GET /status`: what the agent runs, per VIP and backend. Also `xdplb status --json`.
public struct AgentStatus: Codable, Sendable {
    /// Node summary.
    public var node: Node
    /// VIPs in config order.
    public var vips: [VIP]
    /// BGP announcements (absent without `node.bgp`).
    public var announcements: Announcements?
    /// The cluster (absent without a cluster section).
    public var cluster: Cluster?
    /// Prefix lists, per-source limits and the new-flow rates (absent from an older agent).
    public var protection: ProtectionStatus?
    /// How late health probes started (absent from older agents).
    public var probeLateness: ProbeLateness? = nil

    /// Health probes against their schedule: how much later than its deadline each started,
    /// over the last `windowSeconds`, from the health checker's own record.
    public struct ProbeLateness: Codable, Sendable {
        public var windowSeconds: Double
        /// Probes started within the window.
        public var probes: Int
        public var p50Ms: Double
        public var p99Ms: Double
        public var maxMs: Double
        /// Probes started since the agent started.
        public var started: Int
        /// Probes not run since the agent started: the target's previous probe still running
        /// or waiting for a slot, or more than one interval late.
        public var skipped: Int
    }

    /// This node in its cluster: the shared config it runs and where its health view comes from.
    public struct Cluster: Codable, Sendable {
        public var nodeName: String
        public var endpoints: [String]
        public var prefix: String
        /// The etcd revision of the shared config it runs (0: none).
        public var revision: Int64
        public var etcdReachable: Bool
        public var unreachableSince: String?
        /// Set while it runs its cached config (etcd was unreachable at start): `stale since …`.
        public var staleSince: String?
        public var lastError: String?
        /// The newest revision it refused, and why (the running config keeps forwarding).
        public var refusedRevision: Int64?
        public var refusedError: String?
        public var healthRule: String
        /// `consensus (majority of 3 live nodes)` or `local (…)`.
        public var health: String
        public var healthConsensus: Bool
        /// Nodes whose observations count now.
        public var liveNodes: [String]
        /// Shared configs applied since start, and how long the last one took.
        public var applied: Int
        public var lastApplyMs: Double
    }

    /// What this node announces, and the daemon's sessions.
    public struct Announcements: Codable, Sendable {
        /// The kernel table the agent writes and the daemon exports.
        public var table: UInt32
        /// `xdplb node drain` in effect.
        public var drained: Bool
        /// Addresses announced now.
        public var announced: [String]
        /// `running`, or why the daemon cannot be asked (not running, timeout …).
        public var daemon: String
        /// The daemon's BGP sessions as it reports them.
        public var sessions: [Session]
        /// The last route-table write error.
        public var routeError: String?
        /// Health checks converged since start (a fresh node announces only after).
        public var healthConverged: Bool
        /// When the health view last converged (Unix seconds; nil while not converged).
        public var healthConvergedAt: Double?
        /// Nothing announced and no VIP packet for `bgp.quiet_time`.
        public var trafficStopped: Bool
        /// Seconds since the last VIP packet reached this node.
        public var secondsSinceVipTraffic: Double
        /// An agent silent for this long is withdrawn by `xdplb bgp run`.
        public var graceTimeSeconds: Double
        /// `announce` or `withdraw` for VIPs failing open.
        public var failOpenPolicy: String
    }

    /// One BGP session.
    public struct Session: Codable, Sendable {
        public var name: String
        public var peer: String
        /// bird's protocol state (`up`, `start` …).
        public var state: String
        public var since: String
        /// `Established`, `Active`, `Connect` … with bird's details.
        public var info: String
        /// The BFD session state (`Up`, `Down`, `Init`), `off`, or `no session`.
        public var bfd: String
    }

    /// Node summary.
    public struct Node: Codable, Sendable {
        public var interface: String
        public var xdpMode: String
        /// The bpffs directory (absent in redacted output: TCP without the token).
        public var bpffs: String?
        public var programId: UInt32
        public var programTag: String
        public var upMode: String
        /// The config file path (absent in redacted output).
        public var configFile: String?
        public var configLoadedAt: String
        public var lastReconcileMs: Double
        public var reconciles: Int
        /// The cluster-wide flow-hash seed (absent in redacted output: it predicts backends and buckets).
        public var hashSeed: UInt32?
        /// The last reconcile's error (nil: it succeeded).
        public var lastReconcileError: String?
        /// True when seed, paths and error details were left out (TCP reader without the admin token).
        public var redacted: Bool?
        /// False once the program is no longer attached (e.g. `xdplb down --force`); see `detached`. Absent from older agents.
        public var attached: Bool?
        /// Why the data plane is not serving (nil while attached).
        public var detached: String?
        /// How the ring tables written since the agent started were made. Absent from older agents.
        public var ringTables: RingTables?
    }

    /// Ring tables the agent's reconciles wrote, by how each was made.
    public struct RingTables: Codable, Sendable, Equatable {
        /// A Maglev build of the VIP's own.
        public var maglevBuild = 0
        /// From the VIP's current ring, only the down set changed (no build).
        public var handOver = 0
        /// Another VIP's build of the same backend list in the same reconcile.
        public var sharedBuild = 0

        public init() {}
    }

    /// One VIP.
    public struct VIP: Codable, Sendable {
        public var name: String
        public var hash: String
        public var ringSize: Int
        /// Digest of the ring in the data plane (equal on two nodes = same table); empty if no ring.
        public var digest: String
        /// True when every backend is down and the VIP fails open to all of them.
        public var failOpen: Bool
        /// `announced`, `withdrawn: <reason>` (absent without `node.bgp`).
        public var announcement: String?
        /// Second chance: until when the ring of before the last change stays (absent: none).
        public var previousRingUntil: String?
        public var backends: [Backend]
    }

    /// One backend of a VIP.
    public struct Backend: Codable, Sendable {
        public var address: String
        public var configuredWeight: UInt32
        public var weight: UInt32
        public var drained: Bool
        /// This node's own health check (rise/fall) says healthy.
        public var healthy: Bool
        /// In a cluster: the health every node agreed on (the consensus rule), which decides the
        /// ring; may differ from `healthy`. Nil outside a cluster.
        public var agreedHealthy: Bool?
        public var slots: Int
        public var check: String
        public var lastResult: String
        public var lastLatencyMs: Double
        public var lastCheck: String?
    }
}

/// `GET /stats`: counters summed over CPUs, with names. Also `xdplb stats --json`.
public struct AgentStats: Codable, Sendable {
    /// Seconds since the epoch when read.
    public var time: Double
    /// Global counters by name.
    public var counters: [String: Value]
    /// Per VIP by name.
    public var vips: [String: Value]
    /// Per backend by address.
    public var backends: [String: Value]
    /// `rx` per CPU (only with `?per_cpu=1`).
    public var perCpu: [String: [Value]]?
    /// The through-tunnel probe program's counters by outcome (absent while it is not attached).
    public var tunnelProbes: [String: Value]?
    /// Conntrack's ways by use (established, embryonic, free), estimated from a
    /// sample of buckets (absent from an older agent).
    public var conntrack: ConntrackOccupancy?
    /// Per VIP by name: flows its ring decided (the flood signal) and its protection
    /// drops by reason (absent from an older agent).
    public var vipFlows: [String: VIPFlowCounts]?

    /// Packets and bytes.
    public struct Value: Codable, Sendable, Equatable {
        public var packets: UInt64
        public var bytes: UInt64

        public init(packets: UInt64, bytes: UInt64) {
            self.packets = packets
            self.bytes = bytes
        }
    }
}
