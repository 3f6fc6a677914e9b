import BPF
import Config
import CXdplb
import Maglev
import NetAddress

/// What an `apply` will write, computed and checked before the first write:
/// a config the data plane can't hold is refused with nothing changed.
struct ApplyPlan {
    /// The config's VIPs with their backends' weights and memberships.
    var index: ConfigIndex
    /// VIPs whose ring or entry changes, with their new down set and the ring's
    /// backends (checked; empty: no ring).
    var changed: [String: (down: Set<IPAddress>, ring: [MaglevBackend])]
}

extension DataPlaneController {
    /// Checks capacity (backend ids, VIP slots) and every changed Maglev table's inputs, writing nothing.
    /// - Throws: `BPFError` (ENOSPC, EINVAL) naming the limit or the VIP.
    func plan(_ config: XdplbConfig, downByVIP: [String: Set<IPAddress>]) throws(BPFError) -> ApplyPlan {
        let index: ConfigIndex
        if let cached = configIndex, cached.vips == config.vips { index = cached } else { index = ConfigIndex(config.vips) }
        configIndex = index
        let weights = index.weights

        // Ids of backends leaving are freed only after the new rings stop naming them.
        let limit = Int(XDPLB_MAX_BACKENDS) - 1
        let fresh = weights.keys.filter { backendIDs[$0] == nil }.count
        if backendIDs.count + fresh > limit {
            let leaving = backendIDs.keys.filter { weights[$0] == nil }.count
            throw BPFError("refused: \(fresh) new backends need ids but only \(limit - backendIDs.count) of \(limit) are free", errno: ENOSPC,
                           hint: leaving > 0 ? "the \(leaving) backends this change removes free their ids only once it is applied: apply it in two steps (remove, then add)"
                               : "at most \(limit) distinct backends across VIPs")
        }
        if config.vips.count > Int(XDPLB_MAX_VIPS) {
            throw BPFError("refused: \(config.vips.count) VIPs", errno: ENOSPC, hint: "at most \(XDPLB_MAX_VIPS) VIPs")
        }

        var changed: [String: (down: Set<IPAddress>, ring: [MaglevBackend])] = [:]
        for v in config.vips {
            let vipDown: Set<IPAddress>
            if let d = downByVIP[v.name], !d.isEmpty { vipDown = d.intersection(v.backends.lazy.map(\.address)) } else { vipDown = [] }
            if let cur = vips[v.name], cur.config == v, cur.down == vipDown { continue }
            let ringBackends = v.maglevBackends(excluding: vipDown)
            do {
                let hasRing = try MaglevTable.check(backends: ringBackends, size: v.ringSize)
                changed[v.name] = (vipDown, hasRing ? ringBackends : [])
            } catch {
                throw BPFError("refused: build Maglev table for \(v.name): \(error)", errno: EINVAL)
            }
        }
        return ApplyPlan(index: index, changed: changed)
    }
}

extension DataPlaneController {
    /// Refuses, writing nothing, a config the data plane can't hold (backend ids,
    /// VIP slots, Maglev tables): the check `apply` makes before its first write.
    public func validate(_ config: XdplbConfig, downByVIP: [String: Set<IPAddress>] = [:]) throws(BPFError) {
        _ = try plan(config, downByVIP: downByVIP)
    }
}

/// What an apply needs of a config's VIPs beyond the VIPs themselves, kept
/// between applies while the VIPs stay the same (a health change, a no-op
/// reload): every backend's largest weight, and the VIPs each backend is in.
final class ConfigIndex: @unchecked Sendable {
    let vips: [VIPConfig]
    /// One backend entry per address: the largest weight it has on any VIP.
    let weights: [IPAddress: UInt32]
    /// Indexes into ``vips`` of the VIPs a backend is in.
    let vipsOf: [IPAddress: [Int]]

    init(_ vips: [VIPConfig]) {
        self.vips = vips
        var weights: [IPAddress: UInt32] = [:]
        var vipsOf: [IPAddress: [Int]] = [:]
        for (i, v) in vips.enumerated() {
            for b in v.backends {
                weights[b.address] = max(weights[b.address] ?? 0, b.weight)
                vipsOf[b.address, default: []].append(i)
            }
        }
        self.weights = weights
        self.vipsOf = vipsOf
    }
}
