/// `GET /status`: what the agent runs, per VIP and backend. Also `xdplb status --json`.
public struct AgentStatus: Codable, Sendable {
    /// Node summary.
    public var node: Node
    /// VIPs in config order.
    public var vips: [VIP]

    /// Node summary.
    public struct Node: Codable, Sendable {
        public var interface: String
        public var xdpMode: String
        public var bpffs: String
        public var programId: UInt32
        public var programTag: String
        public var upMode: String
        public var configFile: String
        public var configLoadedAt: String
        public var lastReconcileMs: Double
        public var reconciles: Int
        public var hashSeed: UInt32
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
        public var backends: [Backend]
    }

    /// One backend of a VIP.
    public struct Backend: Codable, Sendable {
        public var address: String
        public var configuredWeight: UInt32
        public var weight: UInt32
        public var drained: Bool
        public var healthy: Bool
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
