import Cluster
import Config
import Foundation
import Testing

@Suite("health consensus rules")
struct HealthConsensusTests {
    /// Three nodes; lb1 alone sees b down, lb1 and lb2 see c down, everyone sees d down.
    static let seen: [String: [String: Bool]] = [
        "lb1": ["a": true, "b": false, "c": false, "d": false],
        "lb2": ["a": true, "b": true, "c": false, "d": false],
        "lb3": ["a": true, "b": true, "c": true, "d": false],
    ]

    @Test("majority: one node's view cannot take a backend out; two of three can")
    func majority() {
        #expect(HealthConsensus.effective(.majority, observations: Self.seen) == ["a": true, "b": true, "c": false, "d": false])
    }

    @Test("majority: a tie keeps the backend (two nodes, one each way)")
    func tie() {
        #expect(HealthConsensus.effective(.majority, observations: ["x": ["t": true], "y": ["t": false]]) == ["t": true])
    }

    @Test("any: one node seeing it down is enough")
    func any() {
        #expect(HealthConsensus.effective(.any, observations: Self.seen) == ["a": true, "b": false, "c": false, "d": false])
    }

    @Test("all: down only when every observer sees it down")
    func all() {
        #expect(HealthConsensus.effective(.all, observations: Self.seen) == ["a": true, "b": true, "c": true, "d": false])
    }

    @Test("a target only some nodes probed is judged by those that did")
    func partial() {
        let obs: [String: [String: Bool]] = ["lb1": ["t": false], "lb2": [:], "lb3": [:]]
        #expect(HealthConsensus.effective(.majority, observations: obs) == ["t": false])
    }

    @Test("local: no shared view")
    func local() {
        #expect(HealthConsensus.effective(.local, observations: Self.seen).isEmpty)
    }
}

@Suite("cluster status comparison")
struct ClusterComparisonTests {
    static func report(_ node: String, revision: Int64 = 7, digest: String = "aaaa", stale: String? = nil,
                       refused: NodeReport.Refusal? = nil) -> NodeReport {
        NodeReport(node: node, revision: revision, configSHA256: "s", hashSeed: 1, digests: ["10.100.0.1:80/tcp": digest],
                   health: "consensus", staleSince: stale, refused: refused, updated: "t")
    }
    static func nodes(_ reports: [NodeReport], members: [String] = []) -> ClusterStore.Nodes {
        var m: [String: MemberRecord] = [:]
        for n in members + reports.map(\.node) { m[n] = MemberRecord(node: n, started: "2026-12-03T08:00:00Z") }
        return ClusterStore.Nodes(reports: Dictionary(uniqueKeysWithValues: reports.map { ($0.node, $0) }), health: [:], members: m, revision: 9)
    }

    @Test("equal revisions and digests agree")
    func agree() {
        let c = ClusterComparison(configRevision: 7, nodes: Self.nodes([Self.report("a"), Self.report("b"), Self.report("c")]))
        #expect(c.agreed)
        #expect(c.rows.map(\.node) == ["a", "b", "c"])
        #expect(c.rows.allSatisfy { $0.problems.isEmpty && $0.lease == "live" })
    }

    @Test("a differing digest flags the odd node out, not the majority")
    func digest() {
        let c = ClusterComparison(configRevision: 7, nodes: Self.nodes([Self.report("a"), Self.report("b", digest: "bbbb"), Self.report("c")]))
        #expect(!c.agreed)
        #expect(c.rows.filter { !$0.problems.isEmpty }.map(\.node) == ["b"])
        #expect(c.rows[1].problems == ["10.100.0.1:80/tcp digest bbbb differs from aaaa"])
    }

    @Test("an old revision, a refusal, a cached config and an expired lease are each flagged")
    func flags() {
        let c = ClusterComparison(configRevision: 7, nodes: Self.nodes([
            Self.report("a"), Self.report("b", revision: 5),
            Self.report("c", stale: "2026-12-03T08:00:00Z"),
            Self.report("d", refused: .init(revision: 8, error: "ring_size")),
        ], members: ["e"]))
        #expect(!c.agreed)
        let p = Dictionary(uniqueKeysWithValues: c.rows.map { ($0.node, $0.problems) })
        #expect(p["a"] == [])
        #expect(p["b"] == ["runs revision 5, not 7"])
        #expect(p["c"] == ["running a cached config (etcd unreachable at start)"])
        #expect(p["d"] == ["refused revision 8: ring_size"])
        #expect(p["e"] == ["lease expired (agent last started 2026-12-03T08:00:00Z)"])
        #expect(c.rows.first { $0.node == "e" }?.lease == "expired")
    }

    @Test("no node reporting is not agreement")
    func empty() {
        #expect(!ClusterComparison(configRevision: 7, nodes: Self.nodes([])).agreed)
    }
}

@Suite("shared config diff and parsing")
struct SharedConfigDiffTests {
    static func yaml(_ backends: String, ring: Int = 1009, seed: String = "") -> String {
        seed + "vips:\n  - { address: 10.100.0.1, port: 80, ring_size: \(ring), backends: [\(backends)] }\n"
    }

    @Test("no change, a weight, an added and a removed backend, a ring size, the seed")
    func lines() throws {
        let a = try ConfigLoader.parseShared(Self.yaml("{ address: 10.0.4.2 }, { address: 10.0.4.3 }"), file: "a")
        #expect(SharedConfigDiff.lines(from: a, to: a).isEmpty)
        let b = try ConfigLoader.parseShared(Self.yaml("{ address: 10.0.4.2, weight: 50 }, { address: 10.0.4.4 }", ring: 251, seed: "hash_seed: 0x10\n"), file: "b")
        #expect(SharedConfigDiff.lines(from: a, to: b) == [
            "~ hash_seed (node's) → 0x10",
            "~ vip 10.100.0.1:80/tcp: ring_size 1009 → 251",
            "    ~ backend 10.0.4.2 weight 100 → 50",
            "    - backend 10.0.4.3",
            "    + backend 10.0.4.4 weight 100",
        ])
    }

    @Test("protection changes: the global section, a VIP's section added and removed")
    func protection() throws {
        let vip = "vips:\n  - { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2 } ]%@ }\n"
        func shared(_ global: String, _ own: String) throws -> SharedConfig {
            try ConfigLoader.parseShared(global + vip.replacingOccurrences(of: "%@", with: own), file: "s")
        }
        let a = try shared("", "")
        let b = try shared("protection: { deny: [ 192.0.2.0/24, 198.51.100.0/24 ] }\n", ", protection: { allow: [ 192.0.2.9 ] }")
        #expect(SharedConfigDiff.lines(from: a, to: b) == [
            "~ protection (every VIP): 2 deny, 0 allow prefixes",
            "~ vip 10.100.0.1:80/tcp: protection: 0 deny, 1 allow prefixes",
        ])
        #expect(SharedConfigDiff.lines(from: b, to: a) == [
            "~ protection (every VIP): removed (each node file's section applies)",
            "~ vip 10.100.0.1:80/tcp: protection section removed",
        ])
    }

    @Test("a shared config refuses node settings and needs vips")
    func refusals() {
        #expect(throws: ConfigError.self) { try ConfigLoader.parseShared("node: { interface: eth0 }\nvips: []\n", file: "s") }
        do throws(ConfigError) {
            _ = try ConfigLoader.parseShared("hash_seed: 1\n", file: "s")
            Issue.record("accepted a config without vips")
        } catch {
            #expect(error.description.contains("s: vips: missing"))
        }
    }

    @Test("a node that has no IPv6 encap source refuses an IPv6 backend the permissive check accepts")
    func perNode() throws {
        let text = "vips:\n  - { address: 10.100.0.1, port: 80, backends: [ { address: 'fd00::2' } ] }\n"
        _ = try ConfigLoader.parseShared(text, file: "s")
        var node = NodeConfig(interface: "eth0")
        node.encapSourceV4 = .init("10.0.9.1")
        #expect(throws: ConfigError.self) { try ConfigLoader.parseShared(text, file: "s", node: node) }
    }
}

@Suite("cluster cache file")
struct ClusterCacheTests {
    @Test("round trip, mode 0600, and a corrupt file is refused with a reason")
    func roundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xdplb-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/sub/cache.json"
        guard case .success(nil) = ClusterCache.load(path) else { Issue.record("a missing cache is not nil"); return }
        let c = ClusterCache(revision: 42, yaml: "vips: []\n", saved: "now")
        try c.save(path)
        guard case .success(let got) = ClusterCache.load(path) else { Issue.record("cannot load"); return }
        #expect(got == c)
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        try Data("{\"revision\": \"x\"".utf8).write(to: URL(fileURLWithPath: path))
        guard case .failure(let e) = ClusterCache.load(path) else { Issue.record("accepted a corrupt cache"); return }
        #expect(e.description.hasPrefix(path + ": not a cluster cache"))
    }
}

@Suite("cluster section of a node file")
struct ClusterSectionTests {
    static let node = "node: { interface: eth0, encap_source: { ipv4: 10.0.2.2 } }\n"

    @Test("a full section parses, with defaults where silent")
    func parses() throws {
        let c = try ConfigLoader.parse(Self.node + "cluster: { endpoints: ['http://10.0.9.21:2379/', 'http://10.0.9.22:2379'], node_name: lb1, lease_ttl: 3s, health_rule: any }\n", file: "f")
        let cl = try #require(c.cluster)
        #expect(cl.endpoints == ["http://10.0.9.21:2379", "http://10.0.9.22:2379"])
        #expect(cl.nodeName == "lb1" && cl.prefix == "/xdplb/" && cl.leaseTTLMs == 3000 && cl.healthRule == .any)
        #expect(c.vips.isEmpty)
    }

    static let bad: [(String, String)] = [
        ("cluster: { endpoints: [] , node_name: a }", "f: cluster.endpoints: missing or empty"),
        ("cluster: { endpoints: ['ftp://x:1'], node_name: a }", "f: cluster.endpoints[0]: 'ftp://x:1'"),
        ("cluster: { endpoints: ['http://x:2379'], node_name: 'a b' }", "f: cluster.node_name: 'a b' is not a node name"),
        ("cluster: { endpoints: ['http://x:2379'], node_name: a, prefix: nope }", "f: cluster.prefix: 'nope' must start and end with '/'"),
        ("cluster: { endpoints: ['http://x:2379'], node_name: a, lease_ttl: 1s }", "f: cluster.lease_ttl:"),
        ("cluster: { endpoints: ['http://x:2379'], node_name: a, health_rule: vote }", "f: cluster.health_rule: 'vote' is not one of"),
        ("cluster: { endpoints: ['http://x:2379'], node_name: a, ca_file: /etc/ca.pem }", "f: cluster.endpoints: ca_file set, so every endpoint must be https://"),
        ("cluster: { endpoints: ['https://x:2379'], node_name: a, cert_file: /c.pem }", "f: cluster: cert_file and key_file go together"),
        ("cluster: { endpoints: ['http://x:2379'], node_name: a, username: u }", "f: cluster: username and password_file go together"),
        ("cluster: { endpoints: ['http://x:2379'], node_name: a, color: red }", "f: cluster.color: unknown key"),
        ("cluster: { endpoints: ['http://x:2379'], node_name: a }\nvips: []", "f: vips:"),
    ]

    @Test("bad sections are refused with key path and reason", arguments: 0..<bad.count)
    func refused(_ i: Int) {
        let (yaml, want) = Self.bad[i]
        do throws(ConfigError) {
            _ = try ConfigLoader.parse(Self.node + yaml + "\n", file: "f")
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.description.split(separator: "\n").contains { $0.hasPrefix(want) }, "got: \(error.description)")
        }
    }
}
