/// Whether this node's view of its backends is settled enough to announce.
///
/// - At start, new targets are healthy by default: the view has converged
///   once every target is either down or has been probed `fall` times.
/// - A node that lost every backend at once is most likely cut off itself (its
///   link, its route), not looking at N dead backends. While every backend is
///   down the fail-open policy decides. When the first one comes back, the view
///   is partial (some backends back, the others not re-probed yet), and a node
///   announcing then would send the flows ECMP moves to it to a smaller ring
///   than every other node's: those connections would break. So convergence is
///   lost until every target is settled again: up with no failure pending, or
///   still down after `rise + fall` probes since the first came back.
public struct HealthConvergence<Target: Hashable>: Sendable where Target: Sendable {
    /// One target: its state and its check's rise/fall counts.
    public struct Input: Sendable {
        public var target: Target
        public var state: ProbeState?
        public var rise: Int
        public var fall: Int
        public init(target: Target, state: ProbeState?, rise: Int, fall: Int) {
            self.target = target
            self.state = state
            self.rise = rise
            self.fall = fall
        }
    }

    /// What the last update changed, for the log.
    public enum Change: Equatable, Sendable {
        case none
        case converged
        case isolated
        case reconverging
    }

    /// The view is settled: the gate may announce.
    public private(set) var converged = false
    /// Every probed target is down (the node is probably cut off).
    public private(set) var isolated = false
    /// Probes done per target when the node came back from isolation.
    private var baseline: [Target: Int]?
    /// Back from isolation and not settled yet: the agent keeps the data plane's
    /// health view of before (every backend down: fail open, the same ring as
    /// every other node) and withdraws, until every backend is re-probed.
    public var holding: Bool { baseline != nil }

    public init() {}

    /// Skips the start-up wait (announcements adopted from a previous agent).
    public mutating func assumeConverged() { converged = true }

    /// Feeds the current probe states (targets without a health check left out).
    public mutating func update(_ inputs: [Input]) -> Change {
        let allDown = !inputs.isEmpty && inputs.allSatisfy { $0.state?.healthy == false }
        if allDown {
            let was = isolated
            isolated = true
            baseline = nil
            converged = true   // a settled view: the fail-open policy decides
            return was ? .none : .isolated
        }
        if isolated {
            isolated = false
            baseline = Dictionary(inputs.map { ($0.target, $0.state?.probes ?? 0) }, uniquingKeysWith: { a, _ in a })
            let was = converged
            converged = false
            return was ? .reconverging : .none
        }
        guard !converged else { return .none }
        let settled: Bool
        if let baseline {
            settled = inputs.allSatisfy { i in
                guard let s = i.state else { return false }
                return s.healthy ? s.streak == 0 : s.probes - (baseline[i.target] ?? 0) >= i.rise + i.fall
            }
        } else {
            settled = inputs.allSatisfy { i in i.state.map { !$0.healthy || $0.probes >= i.fall } ?? false }
        }
        guard settled else { return .none }
        converged = true
        baseline = nil
        return .converged
    }
}
