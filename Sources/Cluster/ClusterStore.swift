import Foundation

/// The cluster's data in etcd, read and written the way every xdplb command does it.
public struct ClusterStore: Sendable {
    /// The client.
    public let etcd: EtcdClient
    /// The key layout.
    public let keys: ClusterKeys

    public init(etcd: EtcdClient, prefix: String) {
        self.etcd = etcd
        keys = ClusterKeys(prefix: prefix)
    }

    /// The shared config as stored: its YAML, the revision that wrote it, and its push record.
    public struct Stored: Sendable {
        public var yaml: String
        public var revision: Int64
        /// The push record, nil if absent or if it describes other text (a write that bypassed `cluster push`).
        public var meta: PushMeta?
    }

    /// The shared config at `revision` (default: now); nil if none was pushed.
    public func config(at revision: Int64? = nil) async throws(EtcdError) -> Stored? {
        let (_, kvs) = try await etcd.get(keys.config, revision: revision)
        guard let kv = kvs.first else { return nil }
        let yaml = String(decoding: kv.value, as: UTF8.self)
        // The record as of the same revision.
        let (_, metas) = try await etcd.get(keys.configMeta, revision: revision)
        var meta = metas.first.flatMap { try? JSONDecoder().decode(PushMeta.self, from: $0.value) }
        if meta?.sha256 != sha256Hex(yaml) { meta = nil }
        return Stored(yaml: yaml, revision: kv.modRevision, meta: meta)
    }

    /// What a push did.
    public enum PushOutcome: Sendable {
        /// Written at this revision.
        case written(revision: Int64)
        /// Refused: the config changed after the revision the caller named.
        case conflict(current: Stored?)
    }

    /// Writes `yaml` and its push record in one transaction; with `ifRevision`, only if the config
    /// was not written after that revision.
    public func push(yaml: String, meta: PushMeta, ifRevision: Int64?) async throws(EtcdError) -> PushOutcome {
        var guards: [String: Int64?] = [:]
        if let r = ifRevision { guards[keys.config] = r == 0 ? .some(nil) : .some(r) }
        let (written, revision) = try await etcd.putAll([(keys.config, Data(yaml.utf8)), (keys.configMeta, clusterJSON(meta))],
                                                       unchangedSince: guards)
        if written { return .written(revision: revision) }
        return .conflict(current: try await config())
    }

    /// One version of the shared config.
    public struct HistoryEntry: Sendable {
        public var revision: Int64
        public var yaml: String
        public var meta: PushMeta?
    }

    /// Versions of the shared config, newest first, back to `limit` or to what etcd compacted away.
    /// - Returns: the versions, and whether older ones were compacted.
    public func history(limit: Int) async throws(EtcdError) -> (entries: [HistoryEntry], compacted: Bool) {
        var out: [HistoryEntry] = []
        var at: Int64? = nil
        while out.count < limit {
            let s: Stored?
            do { s = try await config(at: at) } catch .compacted { return (out, true) }
            guard let s else { break }
            out.append(HistoryEntry(revision: s.revision, yaml: s.yaml, meta: s.meta))
            if s.revision <= 1 { break }
            at = s.revision - 1
        }
        return (out, false)
    }

    /// Every node's report, health and membership.
    public struct Nodes: Sendable {
        public var reports: [String: NodeReport]
        public var health: [String: HealthReport]
        public var members: [String: MemberRecord]
        /// The store's revision when read.
        public var revision: Int64

        public init(reports: [String: NodeReport], health: [String: HealthReport], members: [String: MemberRecord], revision: Int64) {
            self.reports = reports; self.health = health; self.members = members; self.revision = revision
        }
    }

    /// Reads `nodes/`, `health/` and `members/`.
    public func nodes() async throws(EtcdError) -> Nodes {
        let (rev, kvs) = try await etcd.get(keys.prefix, prefix: true)
        var n = Nodes(reports: [:], health: [:], members: [:], revision: rev)
        let d = JSONDecoder()
        for kv in kvs {
            if let name = keys.name(in: kv.key, under: keys.nodes) {
                if let r = try? d.decode(NodeReport.self, from: kv.value) { n.reports[name] = r }
            } else if let name = keys.name(in: kv.key, under: keys.health) {
                if let h = try? d.decode(HealthReport.self, from: kv.value) { n.health[name] = h }
            } else if let name = keys.name(in: kv.key, under: keys.members) {
                if let m = try? d.decode(MemberRecord.self, from: kv.value) { n.members[name] = m }
            }
        }
        return n
    }
}

/// The cluster side by side: every node's revision and digests, and what differs.
public struct ClusterComparison: Sendable, Codable {
    /// One node's row.
    public struct Row: Sendable, Codable {
        public var node: String
        /// live: its lease holds; expired: a member without a live report.
        public var lease: String
        public var revision: Int64?
        public var health: String?
        public var staleSince: String?
        public var refused: NodeReport.Refusal?
        public var digests: [String: String]
        /// What is wrong with this node (empty: in agreement).
        public var problems: [String]
    }

    /// The revision of the config in etcd (0: none).
    public var configRevision: Int64
    public var rows: [Row]
    /// Every VIP any node runs.
    public var vips: [String]
    /// True when every live node runs the current revision with equal digests and no lease expired.
    public var agreed: Bool

    /// Compares `nodes` against the config at `configRevision`.
    public init(configRevision: Int64, nodes: ClusterStore.Nodes) {
        self.configRevision = configRevision
        let names = Set(nodes.reports.keys).union(nodes.members.keys).sorted()
        let live = nodes.reports.values
        let vips = Set(live.flatMap { $0.digests.keys }).sorted()
        self.vips = vips
        // The digest most live nodes at the current revision hold, per VIP.
        var common: [String: String] = [:]
        for v in vips {
            var count: [String: Int] = [:]
            for r in live where r.revision == configRevision { if let d = r.digests[v] { count[d, default: 0] += 1 } }
            common[v] = count.max { a, b in a.value < b.value || (a.value == b.value && a.key > b.key) }?.key
        }
        let rows = names.map { name -> Row in
            guard let r = nodes.reports[name] else {
                return Row(node: name, lease: "expired", revision: nil, health: nil, staleSince: nil, refused: nil, digests: [:],
                           problems: ["lease expired (agent last started \(nodes.members[name]?.started ?? "?"))"])
            }
            var p: [String] = []
            if r.revision != configRevision { p.append(r.revision == 0 ? "runs no shared config" : "runs revision \(r.revision), not \(configRevision)") }
            if let f = r.refused { p.append("refused revision \(f.revision): \(f.error)") }
            if r.staleSince != nil { p.append("running a cached config (etcd unreachable at start)") }
            for v in vips {
                let d = r.digests[v]
                if d == nil { p.append("has no table for \(v)") } else if let c = common[v], d != c { p.append("\(v) digest \(d!) differs from \(c)") }
            }
            return Row(node: name, lease: "live", revision: r.revision, health: r.health, staleSince: r.staleSince, refused: r.refused,
                       digests: r.digests, problems: p)
        }
        self.rows = rows
        agreed = !rows.isEmpty && rows.allSatisfy { $0.problems.isEmpty }
    }
}
