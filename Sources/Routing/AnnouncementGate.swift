import Config
import NetAddress

/// Whether a VIP is announced, and if not, why.
public enum AnnouncementState: Sendable, Equatable, CustomStringConvertible {
    /// The node announces the VIP's address.
    case announced
    /// The node does not announce it, for this reason.
    case withdrawn(WithdrawReason)

    public var description: String {
        switch self {
        case .announced: return "announced"
        case .withdrawn(let r): return "withdrawn: \(r)"
        }
    }

    /// True for `.announced`.
    public var isAnnounced: Bool { self == .announced }
}

/// Why a VIP is not announced, in the order the gate checks them.
public enum WithdrawReason: Sendable, Equatable, CustomStringConvertible {
    /// The agent is shutting down (SIGTERM).
    case stopping
    /// The balancer program is not attached to the interface.
    case notAttached
    /// The operator drained the node (`xdplb node drain`).
    case drained
    /// The agent started and its health checks have not converged yet.
    case healthNotConverged
    /// The agent's last reconcile failed; the data plane may not hold what the config says.
    case reconcileFailed(String)
    /// The VIP has no ring with at least one backend slot (every backend drained or none configured).
    case noUsableRing
    /// Every backend is down and `bgp.fail_open: withdraw`.
    case failOpen

    public var description: String {
        switch self {
        case .stopping: return "agent stopping"
        case .notAttached: return "program not attached"
        case .drained: return "node drained"
        case .healthNotConverged: return "health checks not converged"
        case .reconcileFailed(let e): return "last reconcile failed (\(e.prefix(200)))"
        case .noUsableRing: return "no usable ring"
        case .failOpen: return "all backends down (fail_open: withdraw)"
        }
    }
}

/// What the gate knows about one VIP.
public struct VIPGateInput: Sendable, Equatable {
    /// `addr:port/proto`.
    public var name: String
    /// The VIP address (what routers route).
    public var address: IPAddress
    /// The VIP's ring is in the data plane and holds at least one backend.
    public var ringUsable: Bool
    /// Every backend is down and the VIP fails open to all of them.
    public var failOpen: Bool

    /// One VIP's facts.
    public init(name: String, address: IPAddress, ringUsable: Bool, failOpen: Bool) {
        self.name = name
        self.address = address
        self.ringUsable = ringUsable
        self.failOpen = failOpen
    }
}

/// Node-wide facts the gate needs.
public struct NodeGateInput: Sendable, Equatable {
    /// SIGTERM received: withdraw everything.
    public var stopping = false
    /// The balancer is attached (pinned link present and the interface runs our program).
    public var attached = true
    /// `xdplb node drain` is in effect.
    public var drained = false
    /// Health checks have converged (or the agent adopted announcements of a previous run).
    public var converged = true
    /// The last reconcile's error, nil when it succeeded.
    public var reconcileError: String?

    /// The facts.
    public init(stopping: Bool = false, attached: Bool = true, drained: Bool = false, converged: Bool = true, reconcileError: String? = nil) {
        self.stopping = stopping
        self.attached = attached
        self.drained = drained
        self.converged = converged
        self.reconcileError = reconcileError
    }
}

/// The announcement gate: a VIP is announced only while the program is attached,
/// the last reconcile succeeded, the VIP has a usable ring and the node is not
/// drained (and, with `fail_open: withdraw`, while some backend is up).
public enum AnnouncementGate {
    /// The state of one VIP.
    public static func decide(_ vip: VIPGateInput, node: NodeGateInput, failOpenPolicy: BGPConfig.FailOpenPolicy) -> AnnouncementState {
        if node.stopping { return .withdrawn(.stopping) }
        if !node.attached { return .withdrawn(.notAttached) }
        if node.drained { return .withdrawn(.drained) }
        if !node.converged { return .withdrawn(.healthNotConverged) }
        if let e = node.reconcileError { return .withdrawn(.reconcileFailed(e)) }
        if !vip.ringUsable { return .withdrawn(.noUsableRing) }
        if vip.failOpen && failOpenPolicy == .withdraw { return .withdrawn(.failOpen) }
        return .announced
    }

    /// Addresses to announce: routers route addresses, not ports, so an address is
    /// announced while at least one of its VIPs is. (Node-wide reasons withdraw
    /// every VIP at once; per-VIP reasons are the same on every node, so
    /// withdrawing a shared address for one port would only black-hole the others.)
    public static func addresses(_ states: [(address: IPAddress, state: AnnouncementState)]) -> Set<IPAddress> {
        Set(states.filter { $0.state.isAnnounced }.map(\.address))
    }
}
