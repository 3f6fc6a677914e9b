import Config
import CXdplb
import DataPlane
import Foundation
import NetAddress

/// `GET /deny`: every deny and allow prefix in force, where it comes from.
public struct PrefixListing: Codable, Sendable, Equatable {
    /// One prefix of a list.
    public struct Entry: Codable, Sendable, Equatable {
        /// The prefix, canonical (`198.51.100.0/24`).
        public var prefix: String
        /// "*" for every VIP, else the VIP's name.
        public var vip: String
        /// "deny" or "allow".
        public var action: String
        /// "config" (the file) or "runtime" (`xdplb deny add`).
        public var source: String
    }
    public var entries: [Entry]
}

/// The protection part of `GET /status`.
public struct ProtectionStatus: Codable, Sendable, Equatable {
    /// The data plane checks protection (some VIP has a list or a limit).
    public var active: Bool
    /// Prefixes in force: denied (runtime ones included), allowed, denied at run time.
    public var denyPrefixes: Int
    public var allowPrefixes: Int
    public var runtimeDenyPrefixes: Int
    /// Per VIP with a limit on: its resolved limits.
    public var limits: [String: SourceLimits]
    /// New flows per second per VIP (the flood signal), over the last sampling second.
    public var newFlowsPerSecond: [String: Double]
    /// VIPs whose new-flow rate is above their flood alert now.
    public var floodAlerts: [String]
}

extension SourceLimits: Codable {
    enum CodingKeys: String, CodingKey {
        case newFlowsPerSecond, newFlowBurst, packetsPerSecond, packetBurst, sourcePrefixV4, sourcePrefixV6, floodAlertNewFlowsPerSecond
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        newFlowsPerSecond = try c.decode(Int.self, forKey: .newFlowsPerSecond)
        newFlowBurst = try c.decode(Int.self, forKey: .newFlowBurst)
        packetsPerSecond = try c.decode(Int.self, forKey: .packetsPerSecond)
        packetBurst = try c.decode(Int.self, forKey: .packetBurst)
        sourcePrefixV4 = try c.decode(Int.self, forKey: .sourcePrefixV4)
        sourcePrefixV6 = try c.decode(Int.self, forKey: .sourcePrefixV6)
        floodAlertNewFlowsPerSecond = try c.decode(Int.self, forKey: .floodAlertNewFlowsPerSecond)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(newFlowsPerSecond, forKey: .newFlowsPerSecond)
        try c.encode(newFlowBurst, forKey: .newFlowBurst)
        try c.encode(packetsPerSecond, forKey: .packetsPerSecond)
        try c.encode(packetBurst, forKey: .packetBurst)
        try c.encode(sourcePrefixV4, forKey: .sourcePrefixV4)
        try c.encode(sourcePrefixV6, forKey: .sourcePrefixV6)
        try c.encode(floodAlertNewFlowsPerSecond, forKey: .floodAlertNewFlowsPerSecond)
    }
}

extension Agent {
    /// The scope key of the runtime deny list for `vip` (nil: every VIP).
    static func denyScope(_ vip: String?) -> String { vip ?? "*" }

    /// `p` with the runtime denies added to their scopes' deny lists.
    func withRuntimeDenies(_ p: ProtectionConfig) -> ProtectionConfig {
        guard !runtimeDeny.isEmpty else { return p }
        var out = p
        for (scope, list) in runtimeDeny {
            if scope == "*" { out.defaults.deny += list } else { out.perVIP[scope, default: ProtectionRules()].deny += list }
        }
        return out
    }

    /// The file the runtime denies are kept in (survives agent restarts, not reboots: state_dir is /run).
    var runtimeDenyPath: String { "\(config.node.stateDir)/runtime-deny.json" }

    /// Reads the runtime denies a previous agent left; entries that no longer fit are logged and left out.
    func loadRuntimeDenies() {
        guard let data = FileManager.default.contents(atPath: runtimeDenyPath) else { return }
        guard let saved = try? JSONDecoder().decode([String: [String]].self, from: data) else {
            logger.error("runtime deny list unreadable: ignored", metadata: ["file": "\(runtimeDenyPath)"])
            return
        }
        let names = Set(config.vips.map(\.name))
        var kept: [String: [IPPrefix]] = [:]
        for (scope, texts) in saved {
            guard scope == "*" || names.contains(scope) else {
                logger.warning("runtime denies of a VIP no longer configured: dropped", metadata: ["vip": "\(scope)", "prefixes": "\(texts.count)"])
                continue
            }
            for t in texts {
                switch IPPrefix.parse(t) {
                case .success(let p): kept[scope, default: []].append(p)
                case .failure(let e): logger.warning("runtime deny entry refused: dropped", metadata: ["entry": "\(t)", "reason": "\(e)"])
                }
            }
        }
        runtimeDeny = kept
        if !kept.isEmpty { logger.notice("runtime denies restored", metadata: ["prefixes": "\(kept.values.reduce(0) { $0 + $1.count })"]) }
    }

    private func saveRuntimeDenies() throws {
        let out = runtimeDeny.mapValues { $0.map(\.description) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try enc.encode(out)
        try FileManager.default.createDirectory(atPath: config.node.stateDir, withIntermediateDirectories: true)
        let tmp = runtimeDenyPath + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data) else { throw AgentError("cannot write \(tmp)") }
        if rename(tmp, runtimeDenyPath) != 0 { throw AgentError("cannot rename \(tmp): \(String(cString: strerror(errno)))") }
    }

    /// `xdplb deny add|del PREFIX [--vip V]`: a deny of the running agent, kept
    /// across agent restarts (in state_dir) but not in the config file.
    /// - Returns: a one-line summary. - Throws: `AgentError` saying why not (nothing changes).
    public func deny(_ add: Bool, prefix text: String, vip: String?) async throws -> String {
        let prefix: IPPrefix
        switch IPPrefix.parse(text) {
        case .success(let p): prefix = p
        case .failure(let e): throw AgentError("\(Echo.quoted(text)): \(e)")
        }
        if let vip, !config.vips.contains(where: { $0.name == vip }) {
            throw AgentError("no VIP \(Echo.quoted(vip)) (VIPs: \(config.vips.map(\.name).joined(separator: ", ")))")
        }
        let scope = Self.denyScope(vip), whereText = vip.map { "VIP \($0)" } ?? "every VIP"
        let file = vip.map { config.protection.perVIP[$0] ?? ProtectionRules() } ?? config.protection.defaults
        var list = runtimeDeny[scope] ?? []
        if add {
            if list.contains(prefix) { return "\(prefix): already denied for \(whereText) (at run time)" }
            if file.deny.contains(prefix) { return "\(prefix): already denied for \(whereText) by the config" }
            if file.allow.contains(prefix) {
                throw AgentError("\(prefix) is on the allow list of \(whereText) in the config; a prefix is denied or allowed, not both (a longer deny prefix inside it works)")
            }
            let p = withRuntimeDenies(config.protection)
            let total = ([p.defaults] + Array(p.perVIP.values)).reduce(0) { $0 + $1.deny.count + $1.allow.count }
            guard total < ProtectionConfig.maxPrefixes else {
                throw AgentError("\(total) prefixes in force; at most \(ProtectionConfig.maxPrefixes)")
            }
            list.append(prefix)
        } else {
            guard let i = list.firstIndex(of: prefix) else {
                if file.deny.contains(prefix) { throw AgentError("\(prefix) is denied for \(whereText) by the config file: remove it there and reload") }
                throw AgentError("\(prefix) is not denied for \(whereText) at run time (see 'xdplb deny list')")
            }
            list.remove(at: i)
        }
        try requireAttached()
        let saved = runtimeDeny
        runtimeDeny[scope] = list.isEmpty ? nil : list
        do {
            try await reconcileWithHealth(reason: add ? "deny" : "undeny")
            try saveRuntimeDenies()
        } catch {
            runtimeDeny = saved
            try? await reconcileWithHealth(reason: "rollback")
            throw AgentError("\(prefix): not changed: \(error)")
        }
        logger.notice(add ? "prefix denied" : "prefix deny removed", metadata: ["prefix": "\(prefix)", "vip": "\(scope)"])
        return add ? "\(prefix): denied for \(whereText) (at run time: kept across agent restarts, not in the config file)"
            : "\(prefix): no longer denied for \(whereText)"
    }

    /// Every deny and allow prefix in force, with its scope and source.
    public func prefixListing() -> PrefixListing {
        var out: [PrefixListing.Entry] = []
        func add(_ rules: ProtectionRules, _ scope: String) {
            out += rules.deny.map { .init(prefix: $0.description, vip: scope, action: "deny", source: "config") }
            out += rules.allow.map { .init(prefix: $0.description, vip: scope, action: "allow", source: "config") }
        }
        add(config.protection.defaults, "*")
        for (name, r) in config.protection.perVIP { add(r, name) }
        for (scope, list) in runtimeDeny { out += list.map { .init(prefix: $0.description, vip: scope, action: "deny", source: "runtime") } }
        out.sort { ($0.vip, $0.action, $0.prefix) < ($1.vip, $1.action, $1.prefix) }
        return PrefixListing(entries: out)
    }

    /// The protection part of the status.
    func protectionStatus() -> ProtectionStatus {
        let p = withRuntimeDenies(config.protection)
        var limits: [String: SourceLimits] = [:]
        // Rates are sampled once a second: a VIP removed since must not linger in status or /metrics.
        let names = Set(config.vips.map(\.name))
        for v in config.vips {
            let l = p.limits(forVIP: v.name)
            if !l.isOff { limits[v.name] = l }
        }
        let all = [p.defaults] + Array(p.perVIP.values)
        return ProtectionStatus(active: dataPlaneProtectionActive(), denyPrefixes: all.reduce(0) { $0 + $1.deny.count },
                                allowPrefixes: all.reduce(0) { $0 + $1.allow.count },
                                runtimeDenyPrefixes: runtimeDeny.values.reduce(0) { $0 + $1.count },
                                limits: limits, newFlowsPerSecond: newFlowRates.filter { names.contains($0.key) },
                                floodAlerts: floodAlerts.filter { names.contains($0) }.sorted())
    }

    /// Whether the node config map has the protection flag on.
    func dataPlaneProtectionActive() -> Bool {
        let cfg = try? dataPlane.maps.config.lookup(UInt32(0), as: xdplb_node_cfg.self)
        return (cfg?.flags ?? 0) & UInt32(XDPLB_NODE_F_PROTECT) != 0
    }

    /// Samples every VIP's new-flow count (at most once a second): rates for
    /// status and metrics, and a log line when a VIP crosses its flood alert.
    func sampleNewFlows() {
        let now = Date().timeIntervalSince1970
        if let last = flowSample, now - last.time < 1 { return }
        guard let counts = try? controller.vipFlowCounts().mapValues(\.newFlows) else { return }
        defer { flowSample = (now, counts) }
        guard let last = flowSample else { return }
        let dt = now - last.time
        var rates: [String: Double] = [:]
        for (name, n) in counts { rates[name] = Double(n &- (last.counts[name] ?? n)) / dt }
        newFlowRates = rates
        // Runtime denies change no limit: the config's own section is enough here.
        let p = config.protection
        for (name, rate) in rates {
            let alert = p.limits(forVIP: name).floodAlertNewFlowsPerSecond
            let above = alert > 0 && rate > Double(alert)
            if above && !floodAlerts.contains(name) {
                floodAlerts.insert(name)
                events["flood_alert", default: 0] += 1
                logger.warning("flood alert: new-flow rate above its alert", metadata: [
                    "vip": "\(name)", "new_flows_per_second": "\(Int(rate))", "alert": "\(alert)",
                ])
            } else if !above && floodAlerts.contains(name) {
                floodAlerts.remove(name)
                logger.notice("flood alert over", metadata: ["vip": "\(name)", "new_flows_per_second": "\(Int(rate))"])
            }
        }
        floodAlerts = floodAlerts.filter { rates[$0] != nil }
    }
}
