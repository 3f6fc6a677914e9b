/// Where a cluster's data lives under its etcd prefix.
///
/// - `config`: the shared config as YAML (what `xdplb cluster push` wrote; `etcdctl put` works too).
/// - `config-meta`: JSON about that push (who, from where, when, the YAML's SHA-256).
/// - `nodes/NAME`: each agent's report (revision it runs, table digests), under its lease.
/// - `health/NAME`: each agent's own probe results, under the same lease.
/// - `members/NAME`: each agent's last start (no lease: shows a node whose lease expired).
public struct ClusterKeys: Sendable, Equatable {
    /// The prefix, ending in `/`.
    public let prefix: String

    /// Keys under `prefix`.
    public init(prefix: String) { self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/" }

    public var config: String { prefix + "config" }
    public var configMeta: String { prefix + "config-meta" }
    public var nodes: String { prefix + "nodes/" }
    public var health: String { prefix + "health/" }
    public var members: String { prefix + "members/" }
    public func node(_ name: String) -> String { nodes + name }
    public func health(_ name: String) -> String { health + name }
    public func member(_ name: String) -> String { members + name }

    /// The node name in a `nodes/`, `health/` or `members/` key, or nil.
    public func name(in key: String, under dir: String) -> String? {
        guard key.hasPrefix(dir) else { return nil }
        let n = String(key.dropFirst(dir.count))
        return n.isEmpty || n.contains("/") ? nil : n
    }
}
