import NetAddress

/// What a node announces over BGP, and how (`node.bgp`). The agent decides what
/// to announce by writing VIP routes into a dedicated kernel routing table; a
/// BGP daemon (bird2) exports that table to the peers. The agent speaks no BGP.
public struct BGPConfig: Sendable, Equatable {
    /// What to do with a VIP whose backends are all down (it then fails open to all of them).
    public enum FailOpenPolicy: String, Sendable, Equatable, CaseIterable {
        /// Keep announcing: the VIP forwards to every backend (health may be what is broken).
        case announce
        /// Withdraw: routers send the VIP to other nodes (anycast sites that can serve it).
        case withdraw
    }

    /// One BGP neighbour (a router or ToR switch).
    public struct Peer: Sendable, Equatable {
        /// The neighbour's address (directly connected).
        public var address: IPAddress
        /// The neighbour's AS number.
        public var asn: UInt32
        /// Run BFD on this session (fast failure detection).
        public var bfd: Bool = true
        /// A name for the session in the daemon and in `xdplb status` (default: peer + index).
        public var name: String

        /// A peer.
        public init(address: IPAddress, asn: UInt32, bfd: Bool = true, name: String) {
            self.address = address
            self.asn = asn
            self.bfd = bfd
            self.name = name
        }
    }

    /// Our AS number.
    public var localASN: UInt32
    /// BGP router id (an IPv4 address of this node).
    public var routerID: IPAddress
    /// The sessions.
    public var peers: [Peer]
    /// BFD transmit/receive interval, milliseconds.
    public var bfdIntervalMs: Int = 100
    /// BFD detection multiplier: a peer is down after this many missed intervals.
    public var bfdMultiplier: Int = 3
    /// BGP hold time, seconds (keepalive = hold / 3); BFD detects failures much sooner.
    public var holdTimeSeconds: Int = 9
    /// Standard communities attached to every VIP route, `(asn, value)`.
    public var communities: [BGPCommunity] = []
    /// MED attached to every VIP route (nil: none).
    public var med: UInt32?
    /// Kernel routing table the agent writes VIP routes into and the daemon exports.
    public var table: UInt32 = 100
    /// Fail-open VIPs: keep announcing or withdraw.
    public var failOpen: FailOpenPolicy = .announce
    /// How long SIGTERM waits, after withdrawing, for VIP traffic to stop before exiting (ms).
    public var drainTimeoutMs: Int = 30_000
    /// Quiet time that counts as "traffic has stopped" (no VIP packet for this long, ms).
    public var quietMs: Int = 1_000
    /// An agent silent for this long (no heartbeat) has its announcements withdrawn by
    /// `xdplb bgp run`, the daemon's supervisor (ms).
    public var graceTimeMs: Int = 30_000
    /// The bird2 executable.
    public var daemonBinary: String = "bird"
    /// bird's control socket (also read by the agent for session states).
    public var controlSocket: String = "/run/xdplb/bird.ctl"
    /// Where `xdplb bgp run` writes the generated bird config.
    public var daemonConfig: String = "/run/xdplb/bird.conf"

    /// A BGP section with defaults for everything but the identity and peers.
    public init(localASN: UInt32, routerID: IPAddress, peers: [Peer]) {
        self.localASN = localASN
        self.routerID = routerID
        self.peers = peers
    }
}

/// A standard BGP community (RFC 1997), written `ASN:VALUE`.
public struct BGPCommunity: Sendable, Equatable, CustomStringConvertible {
    /// High 16 bits.
    public var asn: UInt16
    /// Low 16 bits.
    public var value: UInt16

    /// Parses `65001:100`.
    public init?(_ text: String) {
        let p = text.split(separator: ":", omittingEmptySubsequences: false)
        guard p.count == 2, let a = UInt16(p[0]), let v = UInt16(p[1]) else { return nil }
        asn = a
        value = v
    }

    public var description: String { "\(asn):\(value)" }
}
