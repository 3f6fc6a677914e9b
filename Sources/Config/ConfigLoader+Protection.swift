import NetAddress
import Yams

/// What the protection sections leave for the checks that need all of them.
struct ProtectionReading {
    /// The VIP entry being read: its section (set by `vip`, taken by `vipList`).
    var current: (ProtectionRules, String)?
    /// The global section's key path (`protection`), when there is one.
    var globalPath: String?
    /// Each kept VIP's section with its name and key path (`vips[2].protection`), in file order.
    var perVIP: [(name: String, rules: ProtectionRules, path: String)] = []
    /// Every deny/allow list read, in file order: its key path and how many entries it has.
    var lists: [(path: String, count: Int)] = []
}

extension Reader {
    static let protectionKeys = ["new_flows_per_second", "new_flow_burst", "packets_per_second", "packet_burst",
                                 "source_prefix_v4", "source_prefix_v6", "flood_alert_new_flows_per_second", "deny", "allow"]

    /// A `protection:` section (global or a VIP's), with the checks that need only itself.
    mutating func protectionRules(_ e: (Node, String)) -> ProtectionRules? {
        guard let m = mapping(e.0, e.1, allowed: Self.protectionKeys) else { return nil }
        var r = ProtectionRules()
        let rates = 0...ProtectionConfig.maxRate, bursts = 1...ProtectionConfig.maxRate
        r.newFlowsPerSecond = integer(m["new_flows_per_second"], rates)
        r.newFlowBurst = integer(m["new_flow_burst"], bursts)
        r.packetsPerSecond = integer(m["packets_per_second"], rates)
        r.packetBurst = integer(m["packet_burst"], bursts)
        r.sourcePrefixV4 = integer(m["source_prefix_v4"], ProtectionConfig.sourcePrefixV4Range)
        r.sourcePrefixV6 = integer(m["source_prefix_v6"], ProtectionConfig.sourcePrefixV6Range)
        r.floodAlertNewFlowsPerSecond = integer(m["flood_alert_new_flows_per_second"], rates)
        let deny = prefixList(m["deny"])
        let allow = prefixList(m["allow"])
        r.deny = deny.map(\.0)
        r.allow = allow.map(\.0)
        let denied = Dictionary(deny.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        for (p, path) in allow {
            if let at = denied[p] { fail(path, "\(p) is also in deny (\(at)); a source is either denied or allowed here") }
        }
        return r
    }

    /// A deny or allow list: each entry a prefix, none twice.
    mutating func prefixList(_ e: (Node, String)?) -> [(IPPrefix, String)] {
        guard let items = sequence(e) else { return [] }
        protection.lists.append((e!.1, items.count))
        var out: [(IPPrefix, String)] = []
        var seen: [IPPrefix: String] = [:]
        for item in items {
            guard let (s, path) = scalar(item) else { continue }
            switch IPPrefix.parse(s) {
            case .failure(let why):
                fail(path, why.description)
            case .success(let p):
                if let first = seen[p] {
                    fail(path, "duplicate prefix \(p) (also \(first))")
                } else {
                    seen[p] = path
                    out.append((p, path))
                }
            }
        }
        return out
    }

    /// A VIP entry's `protection:` (`vip` calls it; `vipList` keeps it for the VIPs it keeps).
    mutating func vipProtection(_ e: (Node, String)?) {
        protection.current = nil
        guard let e else { return }
        if let r = protectionRules(e) { protection.current = (r, e.1) }
    }

    /// The global section and the VIPs' sections together, checked as each VIP resolves them:
    /// a burst needs its rate, and all lists together fit the data plane.
    mutating func protectionConfig(global: ProtectionRules?) -> ProtectionConfig {
        var c = ProtectionConfig()
        if let global { c.defaults = global }
        let pairs = [("new_flow_burst", "new_flows_per_second", \ProtectionRules.newFlowBurst, \ProtectionRules.newFlowsPerSecond),
                     ("packet_burst", "packets_per_second", \.packetBurst, \.packetsPerSecond)]
        if let global, let path = protection.globalPath {
            for (burst, rate, b, r) in pairs where global[keyPath: b] != nil && (global[keyPath: r] ?? 0) == 0 {
                fail("\(path).\(burst)", "\(burst) needs \(rate) (0 or unset in this section)")
            }
        }
        for (name, rules, path) in protection.perVIP {
            c.perVIP[name] = rules
            for (burst, rate, b, r) in pairs where rules[keyPath: b] != nil && (rules[keyPath: r] ?? c.defaults[keyPath: r] ?? 0) == 0 {
                fail("\(path).\(burst)", "\(burst) needs \(rate) (0 or unset for this VIP, here and in the global protection section)")
            }
        }
        var total = 0
        var crossedAt: String?
        for (path, count) in protection.lists {
            total += count
            if total > ProtectionConfig.maxPrefixes && crossedAt == nil { crossedAt = path }
        }
        if let crossedAt {
            fail(crossedAt, "\(total) prefixes in the deny and allow lists together; at most \(ProtectionConfig.maxPrefixes) (the data plane's prefix table)")
        }
        return c
    }
}
