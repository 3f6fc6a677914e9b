import Foundation
import NetAddress
import Yams

extension Reader {
    /// A shared config document: `vips` (required) and `hash_seed`.
    mutating func sharedDocument(_ root: Node?, node: NodeConfig?) -> SharedConfig? {
        guard let top = mapping(root, "", allowed: ["vips", "hash_seed", "protection"]) else { return nil }
        guard top["vips"] != nil else {
            fail("vips", "missing (the shared config is the VIP list, and optionally hash_seed and protection; node settings stay in each node's file)")
            return nil
        }
        var seed: UInt32?
        if let v = integer(top["hash_seed"], 0...Int(UInt32.max)) { seed = UInt32(v) }
        protection.globalPath = top["protection"]?.1
        let global = top["protection"].flatMap { protectionRules($0) }
        let vips = vipList(top["vips"])
        let protectionConfig = protectionConfig(global: global)
        // Without a node: accept both families and any path MTU here; each agent checks its own.
        var n = node ?? NodeConfig(interface: "any")
        if node == nil {
            n.encapSourceV4 = IPAddress("192.0.2.1")
            n.encapSourceV6 = IPAddress("2001:db8::1")
            n.pathMTU = 9000
        }
        vipChecks(n, vips, prefix: "")
        return SharedConfig(hashSeed: seed, vips: vips, protection: protectionConfig, hasGlobalProtection: top["protection"] != nil)
    }

    /// The `cluster` section of a node file.
    mutating func clusterSection(_ e: (Node, String)) -> ClusterConfig? {
        guard let m = mapping(e.0, e.1, allowed: ["endpoints", "prefix", "node_name", "ca_file", "cert_file", "key_file",
                                                   "username", "password_file", "lease_ttl", "health_rule", "fallback_after",
                                                   "request_timeout", "cache_file"]) else { return nil }
        let path = e.1
        var endpoints: [String] = []
        let list = sequence(m["endpoints"]) ?? []
        if m["endpoints"] == nil || list.isEmpty { fail("\(path).endpoints", "missing or empty (etcd client URLs, like http://10.0.9.1:2379)") }
        if list.count > 16 { fail("\(path).endpoints", "\(list.count) endpoints; at most 16") }
        for (n, p) in list.prefix(16) {
            guard let (u, _) = scalar((n, p)) else { continue }
            if let why = ClusterConfig.endpointProblem(u) { fail(p, "\(Echo.quoted(u)) \(why)") } else {
                endpoints.append(u.hasSuffix("/") ? String(u.dropLast()) : u)
            }
        }
        var name = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        if let (v, p) = scalar(m["node_name"]) {
            if let why = ClusterConfig.nodeNameProblem(v) { fail(p, "\(Echo.quoted(v)) is not a node name: it \(why)") } else { name = v }
        } else if let why = ClusterConfig.nodeNameProblem(name) {
            fail("\(path).node_name", "missing, and the host name \(Echo.quoted(name)) can't be one (it \(why))")
        }
        var c = ClusterConfig(endpoints: endpoints, nodeName: name)
        if let (v, p) = scalar(m["prefix"]) {
            if !v.hasPrefix("/") || !v.hasSuffix("/") || v.utf8.count < 2 || v.utf8.count > 128 || Echo.hasControlOrSpace(v) || v.contains("//") {
                fail(p, "\(Echo.quoted(v)) must start and end with '/', be 2 to 128 bytes, with no spaces, control characters or '//'")
            } else { c.prefix = v }
        }
        func file(_ key: String) -> String? {
            guard let (v, p) = scalar(m[key]) else { return nil }
            if !v.hasPrefix("/") || v.utf8.count > 4096 || Echo.hasControlOrSpace(v) {
                fail(p, "\(Echo.quoted(v)) must be an absolute path without spaces or control characters")
                return nil
            }
            return v
        }
        c.caFile = file("ca_file")
        c.certFile = file("cert_file")
        c.keyFile = file("key_file")
        c.passwordFile = file("password_file")
        if (m["cert_file"] == nil) != (m["key_file"] == nil) {
            fail(path, "cert_file and key_file go together (the client certificate and its key)")
        }
        if let (v, p) = scalar(m["username"]) {
            if v.isEmpty || v.utf8.count > 64 || Echo.hasControlOrSpace(v) { fail(p, "\(Echo.quoted(v)) is not an etcd user name") } else { c.username = v }
        }
        if (m["username"] == nil) != (m["password_file"] == nil) {
            fail(path, "username and password_file go together (etcd's role-based auth)")
        }
        let tlsKeys = ["ca_file", "cert_file", "key_file"].filter { m[$0] != nil }
        if !tlsKeys.isEmpty, !endpoints.isEmpty, !endpoints.allSatisfy({ $0.hasPrefix("https://") }) {
            fail("\(path).endpoints", "\(tlsKeys.joined(separator: ", ")) set, so every endpoint must be https://")
        }
        if let v = duration(m["lease_ttl"], 2_000...300_000) { c.leaseTTLMs = v }
        if let v = choice(m["health_rule"], ClusterConfig.HealthRule.self) { c.healthRule = v }
        if let v = duration(m["fallback_after"], 1_000...3_600_000) { c.fallbackAfterMs = v }
        if let v = duration(m["request_timeout"], 100...60_000) { c.requestTimeoutMs = v }
        if let f = file("cache_file") { c.cacheFile = f }
        return c
    }
}
