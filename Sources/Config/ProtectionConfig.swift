import NetAddress

/// One level of protection settings: the global `protection:` section, or a VIP's `protection:` (whose set fields override the global ones).
public struct ProtectionRules: Sendable, Equatable {
    /// `new_flows_per_second`: new flows a source prefix may open per second (0 = off).
    public var newFlowsPerSecond: Int?
    /// `new_flow_burst`: the new-flow bucket's size (default: the rate).
    public var newFlowBurst: Int?
    /// `packets_per_second`: packets a source prefix may send per second (0 = off).
    public var packetsPerSecond: Int?
    /// `packet_burst`: the packet bucket's size (default: the rate).
    public var packetBurst: Int?
    /// `source_prefix_v4`: how IPv4 sources are grouped for the limits, 16...32 (default 32).
    public var sourcePrefixV4: Int?
    /// `source_prefix_v6`: how IPv6 sources are grouped for the limits, 48...128 (default 64).
    public var sourcePrefixV6: Int?
    /// `flood_alert_new_flows_per_second`: log a warning when a VIP's new-flow rate goes above it (0 = off).
    public var floodAlertNewFlowsPerSecond: Int?
    /// `deny`: sources dropped in XDP.
    public var deny: [IPPrefix] = []
    /// `allow`: sources exempt from deny and from the limits (longest prefix wins between allow and deny).
    public var allow: [IPPrefix] = []

    /// Nothing set.
    public init() {}

    /// True when this section turns something on: a rate, the alert, or a list entry.
    var turnsSomethingOn: Bool {
        (newFlowsPerSecond ?? 0) != 0 || (packetsPerSecond ?? 0) != 0 || (floodAlertNewFlowsPerSecond ?? 0) != 0
            || !deny.isEmpty || !allow.isEmpty
    }
}

/// What one VIP gets after overrides: every field resolved.
public struct SourceLimits: Sendable, Equatable {
    public var newFlowsPerSecond = 0, newFlowBurst = 0, packetsPerSecond = 0, packetBurst = 0
    public var sourcePrefixV4 = 32, sourcePrefixV6 = 64, floodAlertNewFlowsPerSecond = 0

    /// Everything off, sources grouped by /32 and /64.
    public init() {}

    /// No per-source limit is on.
    public var isOff: Bool { newFlowsPerSecond == 0 && packetsPerSecond == 0 }
}

/// The `protection` settings of a node: the global section and the VIPs' own (see README, "Config").
public struct ProtectionConfig: Sendable, Equatable {
    /// The global section (defaults for every VIP, and the global deny/allow lists).
    public var defaults = ProtectionRules()
    /// Per-VIP sections by VIPConfig.name (e.g. "10.100.0.1:80/tcp", "[fd00::1]:443/tcp").
    public var perVIP: [String: ProtectionRules] = [:]

    /// Nothing configured.
    public init() {}

    /// The most prefixes all deny and allow lists may hold together (the data plane's LPM trie): 65,536.
    public static let maxPrefixes = 65_536
    /// Largest rate or burst: 10,000,000.
    public static let maxRate = 10_000_000
    /// Accepted `source_prefix_v4` and `source_prefix_v6` lengths.
    public static let sourcePrefixV4Range = 16...32, sourcePrefixV6Range = 48...128

    /// The VIP's limits: each field from its own section if set, else the global one, else the default;
    /// a burst left unset is the rate. A rate of 0 (off) gives a burst of 0.
    public func limits(forVIP name: String) -> SourceLimits {
        let own = perVIP[name] ?? ProtectionRules()
        let global = defaults
        func pick(_ key: KeyPath<ProtectionRules, Int?>) -> Int? { own[keyPath: key] ?? global[keyPath: key] }
        var l = SourceLimits()
        l.newFlowsPerSecond = pick(\.newFlowsPerSecond) ?? 0
        l.newFlowBurst = l.newFlowsPerSecond == 0 ? 0 : pick(\.newFlowBurst) ?? l.newFlowsPerSecond
        l.packetsPerSecond = pick(\.packetsPerSecond) ?? 0
        l.packetBurst = l.packetsPerSecond == 0 ? 0 : pick(\.packetBurst) ?? l.packetsPerSecond
        l.sourcePrefixV4 = pick(\.sourcePrefixV4) ?? l.sourcePrefixV4
        l.sourcePrefixV6 = pick(\.sourcePrefixV6) ?? l.sourcePrefixV6
        l.floodAlertNewFlowsPerSecond = pick(\.floodAlertNewFlowsPerSecond) ?? 0
        return l
    }

    /// Nothing configured anywhere (no limits, no lists): no section sets a rate or the flood alert
    /// above 0, and every deny and allow list is empty. (Prefix lengths alone do nothing.)
    public var isEmpty: Bool {
        !defaults.turnsSomethingOn && !perVIP.values.contains { $0.turnsSomethingOn }
    }
}
