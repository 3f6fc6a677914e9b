import Crypto
import Foundation

/// What `xdplb cluster push` records next to the config: who pushed it, when, and the YAML's hash.
public struct PushMeta: Codable, Sendable, Equatable {
    /// `user@host` of the push.
    public var pushedBy: String
    /// ISO 8601 time of the push.
    public var at: String
    /// SHA-256 (hex) of the pushed YAML: tells a push from a write that bypassed `cluster push`.
    public var sha256: String
    /// VIPs and distinct backends in it.
    public var vips: Int
    public var backends: Int
    /// The file it came from, as given.
    public var source: String

    enum CodingKeys: String, CodingKey {
        case pushedBy = "pushed_by", at, sha256, vips, backends, source
    }

    public init(pushedBy: String, at: String, sha256: String, vips: Int, backends: Int, source: String) {
        self.pushedBy = pushedBy; self.at = at; self.sha256 = sha256; self.vips = vips; self.backends = backends; self.source = source
    }
}

/// One agent's report under its lease: what it runs.
public struct NodeReport: Codable, Sendable, Equatable {
    /// A config revision this agent refused, and why.
    public struct Refusal: Codable, Sendable, Equatable {
        public var revision: Int64
        public var error: String
        public init(revision: Int64, error: String) { self.revision = revision; self.error = error }
    }

    /// The node's name.
    public var node: String
    /// The etcd revision of the shared config it runs (0: none yet).
    public var revision: Int64
    /// SHA-256 of the shared config text it runs.
    public var configSHA256: String
    /// The flow-hash seed it runs.
    public var hashSeed: UInt32
    /// VIP name → Maglev table digest, as the data plane holds it.
    public var digests: [String: String]
    /// Where its health view comes from: `consensus (majority of N nodes)` or `local (…)`.
    public var health: String
    /// Set while it runs a cached config because etcd was unreachable at start (ISO 8601).
    public var staleSince: String?
    /// The newest revision it refused, if newer than the one it runs.
    public var refused: Refusal?
    /// When it wrote this report (ISO 8601).
    public var updated: String

    enum CodingKeys: String, CodingKey {
        case node, revision, configSHA256 = "config_sha256", hashSeed = "hash_seed", digests, health
        case staleSince = "stale_since", refused, updated
    }

    public init(node: String, revision: Int64, configSHA256: String, hashSeed: UInt32, digests: [String: String],
                health: String, staleSince: String?, refused: Refusal?, updated: String) {
        self.node = node; self.revision = revision; self.configSHA256 = configSHA256; self.hashSeed = hashSeed
        self.digests = digests; self.health = health; self.staleSince = staleSince; self.refused = refused; self.updated = updated
    }

    /// The report without its timestamp (for "did anything change").
    public var content: NodeReport { var c = self; c.updated = ""; return c }
}

/// One agent's own probe results, under its lease.
public struct HealthReport: Codable, Sendable, Equatable {
    /// The node's name.
    public var node: String
    /// Probe target (`http 10.0.4.2:80/healthz`) → healthy, for every target it has probed.
    public var observations: [String: Bool]

    public init(node: String, observations: [String: Bool]) { self.node = node; self.observations = observations }
}

/// `members/NAME`: a node that took part (kept after its lease expires).
public struct MemberRecord: Codable, Sendable, Equatable {
    public var node: String
    /// When its agent last started (ISO 8601).
    public var started: String

    public init(node: String, started: String) { self.node = node; self.started = started }
}

/// SHA-256 of text, in hex.
public func sha256Hex(_ text: String) -> String {
    SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
}

/// JSON for etcd values: sorted keys, so equal content is equal bytes.
public func clusterJSON(_ value: some Encodable) -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return (try? e.encode(value)) ?? Data("{}".utf8)
}
