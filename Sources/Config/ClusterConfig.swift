import NetAddress

/// The `cluster` section of a node file: where the shared config lives (etcd) and how this node takes part.
///
/// With it, the node file keeps only node-local settings; the VIPs, their backends and the
/// hash seed come from etcd (`xdplb cluster push`), and health is agreed with the other nodes.
public struct ClusterConfig: Sendable, Equatable {
    /// How the effective health of a backend is computed from every live node's probes.
    public enum HealthRule: String, Sendable, Equatable, CaseIterable {
        /// Down when more than half of the live nodes that probe it see it down (ties: up).
        case majority
        /// Down when any live node sees it down.
        case any
        /// Down only when every live node that probes it sees it down.
        case all
        /// No consensus: each node trusts its own probes (tables can differ between nodes).
        case local
    }

    /// etcd client URLs (`http://host:2379` or `https://…`), tried in order.
    public var endpoints: [String]
    /// Key prefix of this cluster in etcd; starts and ends with `/`.
    public var prefix: String = "/xdplb/"
    /// This node's name in the cluster (default: the host name).
    public var nodeName: String
    /// CA bundle that signs the etcd servers' certificates (https endpoints).
    public var caFile: String?
    /// Client certificate and key for etcd's client-certificate authentication.
    public var certFile: String?
    public var keyFile: String?
    /// etcd user (role-based auth); the password is read from `passwordFile`.
    public var username: String?
    public var passwordFile: String?
    /// TTL of this node's lease (its published status and health disappear this long after it stops), ms.
    public var leaseTTLMs: Int = 10_000
    /// The health consensus rule.
    public var healthRule: HealthRule = .majority
    /// etcd unreachable this long → the node falls back to its own probes, ms.
    public var fallbackAfterMs: Int = 30_000
    /// Timeout of one etcd request, ms.
    public var requestTimeoutMs: Int = 2_000
    /// The last good shared config, kept for starting while etcd is unreachable.
    public var cacheFile: String = "/var/lib/xdplb/cluster-cache.json"

    /// A cluster section with defaults for everything but the endpoints and the node name.
    public init(endpoints: [String], nodeName: String) {
        self.endpoints = endpoints
        self.nodeName = nodeName
    }

    /// Why `name` is not a node name (letters, digits, `.`, `_`, `-`; 1 to 63), or nil.
    public static func nodeNameProblem(_ name: String) -> String? {
        if name.isEmpty || name.utf8.count > 63 { return "must be 1 to 63 characters" }
        if !name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }) {
            return "may hold only letters, digits, '.', '_' and '-'"
        }
        return nil
    }

    /// Why `url` is not an etcd endpoint URL, or nil.
    public static func endpointProblem(_ url: String) -> String? {
        let scheme: String
        if url.hasPrefix("http://") { scheme = "http://" } else if url.hasPrefix("https://") { scheme = "https://" } else {
            return "must start with http:// or https://"
        }
        var rest = url.dropFirst(scheme.count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.isEmpty || rest.contains("/") || rest.contains("@") || rest.contains("?") || rest.contains("#") {
            return "must be scheme://host:port with no path, user or query"
        }
        if rest.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7f }) { return "contains a space or a control character" }
        // host:port, [v6]:port
        let port: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), IPAddress(String(rest[rest.index(after: rest.startIndex)..<close]))?.isV6 == true else {
                return "has a bad [IPv6] host"
            }
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { return "needs a port (etcd's client port is usually 2379)" }
            port = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":") else { return "needs a port (etcd's client port is usually 2379)" }
            if rest[..<colon].isEmpty { return "has no host" }
            port = rest[rest.index(after: colon)...]
        }
        guard let p = Int(port), (1...65535).contains(p) else { return "has a bad port" }
        return nil
    }
}

/// The part of a config that is shared by every node of a cluster: what `xdplb cluster push` writes to etcd.
public struct SharedConfig: Sendable, Equatable {
    /// The cluster-wide flow-hash seed (nil: each node's `node.hash_seed`, which must then be equal).
    public var hashSeed: UInt32?
    /// The virtual services.
    public var vips: [VIPConfig]
    /// The shared `protection:` sections: the top-level one (for every VIP) and the VIPs' own.
    public var protection: ProtectionConfig
    /// True when the shared config has a top-level `protection:` section (it then replaces each node file's).
    public var hasGlobalProtection: Bool

    /// A shared config from parts (already validated).
    public init(hashSeed: UInt32?, vips: [VIPConfig], protection: ProtectionConfig = ProtectionConfig(), hasGlobalProtection: Bool = false) {
        self.hashSeed = hashSeed
        self.vips = vips
        self.protection = protection
        self.hasGlobalProtection = hasGlobalProtection
    }
}

extension XdplbConfig {
    /// This node's config running `shared`: its own node settings, the shared VIPs and seed.
    /// Protection: the VIPs' sections come from the shared config; the global section too when
    /// the shared config has one, else it is this node file's.
    public func running(_ shared: SharedConfig) -> XdplbConfig {
        var c = self
        c.vips = shared.vips
        if let s = shared.hashSeed { c.node.hashSeed = s }
        c.protection.perVIP = shared.protection.perVIP
        if shared.hasGlobalProtection { c.protection.defaults = shared.protection.defaults }
        return c
    }
}
