import Maglev
import NetAddress

/// The whole configuration of one LB node (see README, "Config").
public struct XdplbConfig: Sendable, Equatable {
    /// Node-wide settings.
    public var node: NodeConfig
    /// The virtual services (from etcd when `cluster` is set).
    public var vips: [VIPConfig]
    /// Membership of a cluster sharing config and health through etcd (nil: this file is the whole config).
    public var cluster: ClusterConfig?
    /// Flood protection: per-source limits, deny and allow lists (`protection:`, globally and per VIP).
    public var protection = ProtectionConfig()

    /// A configuration from parts (already validated).
    public init(node: NodeConfig, vips: [VIPConfig], cluster: ClusterConfig? = nil, protection: ProtectionConfig = ProtectionConfig()) {
        self.node = node
        self.vips = vips
        self.cluster = cluster
        self.protection = protection
    }
}

/// How the XDP program is attached.
public enum XDPModeSetting: String, Sendable, Equatable, CaseIterable {
    case native, generic
}

/// Node-wide settings.
public struct NodeConfig: Sendable, Equatable {
    /// The interface the balancer attaches to.
    public var interface: String
    /// native (driver) or generic XDP.
    public var xdpMode: XDPModeSetting = .native
    /// Outer source address for IPv4 backends.
    public var encapSourceV4: IPAddress?
    /// Outer source address for IPv6 backends.
    public var encapSourceV6: IPAddress?
    /// Largest outer packet (IP header included) the path to backends carries.
    public var pathMTU: Int = 1500
    /// Cluster-wide flow-hash seed: must be equal on every LB node.
    public var hashSeed: UInt32 = 0x5eed
    /// Conntrack capacity in flows (`lru_size`; rounded up to a power-of-two number of 4-way buckets).
    public var lruSize: Int = 1_000_000
    /// bpffs directory holding the pinned program, link and maps.
    public var bpffs: String = "/sys/fs/bpf/xdplb"
    /// Admin API address: a unix socket path (default; `unix:/path` or `/path`) or TCP `host:port` (opt-in).
    public var admin: String = AdminEndpoint.defaultSocketPath
    /// Allow a non-loopback TCP admin address.
    public var adminAllowRemote: Bool = false
    /// The group that may use the admin socket besides root (nil: root only). Unix socket only.
    public var adminGroup: String?
    /// File holding the bearer token that TCP admin writes need (nil: TCP is read-only). TCP only.
    public var adminTokenFile: String?
    /// Node-local agent state (heartbeat, drain flag).
    public var stateDir: String = "/run/xdplb"
    /// BGP announcement of the VIPs (nil: this node announces nothing itself).
    public var bgp: BGPConfig?

    /// Settings with defaults for everything but the interface.
    public init(interface: String) { self.interface = interface }
}

/// TCP or UDP.
public enum L4Protocol: String, Sendable, Equatable, CaseIterable {
    case tcp, udp

    /// IANA protocol number.
    public var number: UInt8 { self == .tcp ? 6 : 17 }
}

/// What the flow hash covers.
public enum HashMode: String, Sendable, Equatable, CaseIterable {
    /// Source/destination address and port and protocol.
    case fiveTuple = "5tuple"
    /// Source address only (client affinity).
    case sourceIP = "source-ip"
}

/// A health check.
public struct HealthCheckConfig: Sendable, Equatable {
    /// The kind of probe.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// TCP connect.
        case tcp
        /// HTTP request; healthy when the status is in `expectStatus`.
        case http
        /// No probing: always healthy.
        case none
    }

    /// Probe kind.
    public var type: Kind = .tcp
    /// HTTP path.
    public var path: String = "/"
    /// HTTP method.
    public var method: String = "GET"
    /// HTTP Host header (default: the backend address).
    public var host: String?
    /// Healthy HTTP status codes.
    public var expectStatus: ClosedRange<Int> = 200...399
    /// Time between probes, in milliseconds.
    public var intervalMs: Int = 1000
    /// Probe timeout, in milliseconds.
    public var timeoutMs: Int = 500
    /// Consecutive successes to become healthy.
    public var rise: Int = 2
    /// Consecutive failures to become unhealthy.
    public var fall: Int = 3
    /// Port to probe (nil: the VIP port).
    public var port: UInt16?
    /// Probe the VIP through the tunnel: connect to the VIP address (and `port`), the packets
    /// GRE-encapsulated to the backend exactly as client traffic is; the backend answers by DSR.
    /// Passes only if the backend has the VIP, the decap and the service.
    public var throughTunnel = false

    /// The defaults.
    public init() {}
}

/// One backend of a VIP.
public struct BackendConfig: Sendable, Equatable {
    /// The backend's address (GRE outer destination).
    public var address: IPAddress
    /// Maglev weight, 0...1000; 0 drains the backend.
    public var weight: UInt32
    /// Per-backend health check override.
    public var health: HealthCheckConfig?

    /// A backend.
    public init(address: IPAddress, weight: UInt32 = 100, health: HealthCheckConfig? = nil) {
        self.address = address
        self.weight = weight
        self.health = health
    }
}

/// One virtual service.
public struct VIPConfig: Sendable, Equatable {
    /// The VIP address.
    public var address: IPAddress
    /// The port; 0 means every port of this address and protocol.
    public var port: UInt16
    /// tcp or udp.
    public var proto: L4Protocol
    /// Flow hash mode.
    public var hash: HashMode = .fiveTuple
    /// Maglev ring size (prime).
    public var ringSize: Int = 65537
    /// Health check for every backend (default: TCP connect).
    public var health: HealthCheckConfig = HealthCheckConfig()
    /// Second chance: how long the ring of before a change stays in the data
    /// plane, so a flow that misses conntrack carries its old backend as a
    /// second hop (milliseconds; 0 = off). `second_chance:` in the file.
    public var secondChanceMs: Int = VIPConfig.defaultSecondChanceMs
    /// Backends.
    public var backends: [BackendConfig]

    /// Ten minutes: longer than an LB node takes to leave and rejoin in a rolling
    /// restart (BGP grace 30 s, health convergence) and than a rolling backend
    /// deploy takes per backend, so the two overlapping is covered; a flow that
    /// got its second hop keeps it in that node's conntrack after the time is up.
    public static let defaultSecondChanceMs = 600_000
    /// The longest second-chance time (a day).
    public static let maxSecondChanceMs = 86_400_000

    /// A VIP.
    public init(address: IPAddress, port: UInt16, proto: L4Protocol, hash: HashMode = .fiveTuple,
                ringSize: Int = 65537, backends: [BackendConfig]) {
        self.address = address
        self.port = port
        self.proto = proto
        self.hash = hash
        self.ringSize = ringSize
        self.backends = backends
    }

    /// `address:port/proto`, with brackets around IPv6.
    public var name: String {
        let a = address.isV6 ? "[\(address)]" : "\(address)"
        return "\(a):\(port)/\(proto.rawValue)"
    }

    /// The Maglev input for this VIP's backends (identity = canonical address text).
    public func maglevBackends(excluding down: Set<IPAddress> = []) -> [MaglevBackend] {
        backends.filter { !down.contains($0.address) }
            .map { MaglevBackend(identity: $0.address.description, weight: $0.weight) }
    }
}
