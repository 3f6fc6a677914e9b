import Config

/// The cluster's health rule: every node computes the effective health of each probe target
/// from every live node's published observations, the same way, so all nodes agree on the
/// healthy set and build the same tables even when one node's view of a backend differs.
public enum HealthConsensus {
    /// The effective health of each target any live node observed.
    ///
    /// - `majority`: down when more than half of the nodes that observed it see it down (a tie is up).
    /// - `any`: down when one node sees it down.
    /// - `all`: down only when every node that observed it sees it down.
    /// - `local`: not computed here (each node uses its own probes); returns an empty view.
    /// - Parameter observations: node name → (target → healthy).
    /// - Returns: target → healthy; a target no node observed is absent (callers treat it as up).
    public static func effective(_ rule: ClusterConfig.HealthRule, observations: [String: [String: Bool]]) -> [String: Bool] {
        if rule == .local { return [:] }
        var up: [String: Int] = [:], down: [String: Int] = [:]
        for (_, seen) in observations {
            for (target, healthy) in seen {
                if healthy { up[target, default: 0] += 1 } else { down[target, default: 0] += 1 }
            }
        }
        var out: [String: Bool] = [:]
        for target in Set(up.keys).union(down.keys) {
            let u = up[target] ?? 0, d = down[target] ?? 0
            switch rule {
            case .majority: out[target] = !(d > u)
            case .any: out[target] = d == 0
            case .all: out[target] = u > 0
            case .local: break
            }
        }
        return out
    }
}
