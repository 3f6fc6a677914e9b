import Foundation
import Maglev
import NetAddress
import Yams

/// Reads and validates configuration files. Every problem is reported with
/// the file, the key path and the reason; nothing half-valid is returned.
public enum ConfigLoader {
    /// Largest accepted LRU size.
    public static let maxLRUSize = 100_000_000
    /// Largest backend weight.
    public static let maxWeight: UInt32 = 1000

    /// Loads and validates the file at `path`.
    /// - Throws: `ConfigError` listing every problem found.
    public static func load(path: String) throws(ConfigError) -> XdplbConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(issues: [ConfigIssue(file: path, keyPath: "", reason: "cannot read the file (missing or not readable)")])
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    /// Parses and validates YAML text; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> XdplbConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(issues: [ConfigIssue(file: file, keyPath: "", reason: "not valid YAML: \(error)")])
        }
        var r = Reader(file: file)
        let config = r.document(root)
        if !r.issues.isEmpty || config == nil {
            throw ConfigError(issues: r.issues.isEmpty ? [ConfigIssue(file: file, keyPath: "", reason: "empty configuration")] : r.issues)
        }
        return config!
    }
}

/// Walks the YAML tree, collecting issues instead of stopping at the first.
struct Reader {
    let file: String
    var issues: [ConfigIssue] = []

    init(file: String) { self.file = file }

    mutating func fail(_ path: String, _ reason: String) {
        issues.append(ConfigIssue(file: file, keyPath: path, reason: reason))
    }

    /// The mapping at `path` as ordered (key, value) pairs, reporting unknown keys.
    mutating func mapping(_ node: Node?, _ path: String, allowed: [String]) -> [String: (Node, String)]? {
        guard let node else { return nil }
        guard case .mapping(let m) = node else {
            fail(path, "expected a mapping (key: value lines)")
            return nil
        }
        var out: [String: (Node, String)] = [:]
        for (k, v) in m {
            let key = k.string ?? "\(k)"
            let sub = path.isEmpty ? key : "\(path).\(key)"
            if !allowed.contains(key) {
                fail(sub, "unknown key (allowed here: \(allowed.joined(separator: ", ")))")
                continue
            }
            if out[key] != nil { fail(sub, "duplicate key") }
            out[key] = (v, sub)
        }
        return out
    }

    mutating func scalar(_ e: (Node, String)?) -> (String, String)? {
        guard let (node, path) = e else { return nil }
        guard case .scalar(let s) = node else {
            fail(path, "expected a single value")
            return nil
        }
        return (s.string, path)
    }

    mutating func string(_ e: (Node, String)?) -> String? { scalar(e)?.0 }

    mutating func integer(_ e: (Node, String)?, _ range: ClosedRange<Int>) -> Int? {
        guard let (s, path) = scalar(e) else { return nil }
        let t = s.replacingOccurrences(of: "_", with: "")
        let v = t.lowercased().hasPrefix("0x") ? Int(t.dropFirst(2), radix: 16) : Int(t)
        guard let v else {
            fail(path, "'\(s)' is not an integer")
            return nil
        }
        guard range.contains(v) else {
            fail(path, "\(v) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return v
    }

    mutating func bool(_ e: (Node, String)?) -> Bool? {
        guard let (s, path) = scalar(e) else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            fail(path, "'\(s)' is not true or false")
            return nil
        }
    }

    mutating func address(_ e: (Node, String)?) -> IPAddress? {
        guard let (s, path) = scalar(e) else { return nil }
        guard let a = IPAddress(s) else {
            fail(path, "'\(s)' is not an IPv4 or IPv6 address")
            return nil
        }
        return a
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ e: (Node, String)?, _: T.Type) -> T? where T.RawValue == String {
        guard let (s, path) = scalar(e) else { return nil }
        guard let v = T(rawValue: s) else {
            fail(path, "'\(s)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return v
    }

    /// Durations like `1s`, `500ms`, `2m`; returns milliseconds.
    mutating func duration(_ e: (Node, String)?, _ range: ClosedRange<Int>) -> Int? {
        guard let (s, path) = scalar(e) else { return nil }
        let units: [(String, Int)] = [("ms", 1), ("s", 1000), ("m", 60_000)]
        var ms: Int?
        for (suffix, factor) in units where s.hasSuffix(suffix) {
            if let n = Double(s.dropLast(suffix.count)), n >= 0 { ms = Int((n * Double(factor)).rounded()) }
            break
        }
        guard let ms else {
            fail(path, "'\(s)' is not a duration (like 500ms, 1s, 2m)")
            return nil
        }
        guard range.contains(ms) else {
            fail(path, "\(s) is out of range \(range.lowerBound)ms...\(range.upperBound)ms")
            return nil
        }
        return ms
    }

    mutating func sequence(_ e: (Node, String)?) -> [(Node, String)]? {
        guard let (node, path) = e else { return nil }
        guard case .sequence(let seq) = node else {
            fail(path, "expected a list")
            return nil
        }
        return seq.enumerated().map { ($0.element, "\(path)[\($0.offset)]") }
    }

    // MARK: document

    mutating func document(_ root: Node?) -> XdplbConfig? {
        guard let top = mapping(root, "", allowed: ["node", "vips"]) else { return nil }
        guard top["node"] != nil else {
            fail("node", "missing (the node section: interface, encap_source, ...)")
            return nil
        }
        let node = nodeSection(top["node"]!)
        var vips: [VIPConfig] = []
        var seen: [String: String] = [:]
        for (n, path) in sequence(top["vips"]) ?? [] {
            guard let v = vip(n, path) else { continue }
            let key = v.name
            if let first = seen[key] {
                fail(path, "duplicate VIP \(key) (also \(first))")
            } else {
                seen[key] = path
                vips.append(v)
            }
        }
        guard let node else { return nil }
        for (i, v) in vips.enumerated() {
            for (j, b) in v.backends.enumerated() {
                if b.address.isV6 && node.encapSourceV6 == nil {
                    fail("vips[\(i)].backends[\(j)].address", "IPv6 backend needs node.encap_source.ipv6")
                } else if !b.address.isV6 && node.encapSourceV4 == nil {
                    fail("vips[\(i)].backends[\(j)].address", "IPv4 backend needs node.encap_source.ipv4")
                }
            }
        }
        if vips.count > 512 { fail("vips", "\(vips.count) VIPs; at most 512 are supported") }
        return XdplbConfig(node: node, vips: vips)
    }

    mutating func nodeSection(_ e: (Node, String)) -> NodeConfig? {
        guard let m = mapping(e.0, e.1, allowed: ["interface", "xdp_mode", "encap_source", "path_mtu", "hash_seed",
                                                   "lru_size", "bpffs", "admin", "admin_allow_remote", "state_dir", "bgp"]) else { return nil }
        guard let ifname = string(m["interface"]) else {
            if m["interface"] == nil { fail("\(e.1).interface", "missing (the interface to attach to)") }
            return nil
        }
        if ifname.isEmpty || ifname.utf8.count > 15 || ifname.contains("/") || ifname.contains(" ") {
            fail("\(e.1).interface", "'\(ifname)' is not a valid interface name")
        }
        var n = NodeConfig(interface: ifname)
        if let v = choice(m["xdp_mode"], XDPModeSetting.self) { n.xdpMode = v }
        if let es = mapping(m["encap_source"]?.0, m["encap_source"]?.1 ?? "", allowed: ["ipv4", "ipv6"]) {
            if let a = address(es["ipv4"]) {
                if a.isV6 { fail(es["ipv4"]!.1, "\(a) is IPv6; expected an IPv4 address") } else { n.encapSourceV4 = a }
            }
            if let a = address(es["ipv6"]) {
                if !a.isV6 { fail(es["ipv6"]!.1, "\(a) is IPv4; expected an IPv6 address") } else { n.encapSourceV6 = a }
            }
        }
        if m["encap_source"] == nil { fail("\(e.1).encap_source", "missing (outer source addresses: ipv4 and/or ipv6)") }
        if let v = integer(m["path_mtu"], 1280...9000) { n.pathMTU = v }
        if let v = integer(m["hash_seed"], 0...Int(UInt32.max)) { n.hashSeed = UInt32(v) }
        if let v = integer(m["lru_size"], 1024...ConfigLoader.maxLRUSize) { n.lruSize = v }
        if let v = string(m["bpffs"]) {
            if v.hasPrefix("/sys/fs/bpf/") && !v.contains("..") { n.bpffs = v } else {
                fail(m["bpffs"]!.1, "'\(v)' must be a directory under /sys/fs/bpf/")
            }
        }
        if let v = bool(m["admin_allow_remote"]) { n.adminAllowRemote = v }
        if let (v, p) = scalar(m["state_dir"]) {
            if v.hasPrefix("/") && !v.contains("..") && v.utf8.count <= 200 { n.stateDir = v } else {
                fail(p, "'\(v.prefix(60))' must be an absolute path of at most 200 bytes without '..'")
            }
        }
        if let b = m["bgp"] { n.bgp = bgpSection(b) }
        if let v = string(m["admin"]) {
            n.admin = v
            if let host = adminHost(v) {
                let loopback = host == "localhost" || host.hasPrefix("127.") || host == "::1"
                if !loopback && !n.adminAllowRemote {
                    fail(m["admin"]!.1, "'\(v)' is not a loopback address; set node.admin_allow_remote: true to allow it")
                }
            } else {
                fail(m["admin"]!.1, "'\(v)' is not host:port")
            }
        }
        return n
    }

    func adminHost(_ s: String) -> String? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" { return host }
        return IPAddress(host) == nil ? nil : host
    }

    mutating func vip(_ node: Node, _ path: String) -> VIPConfig? {
        guard let m = mapping(node, path, allowed: ["address", "port", "protocol", "hash", "ring_size", "health", "backends"]) else { return nil }
        let addr = address(m["address"])
        if m["address"] == nil { fail("\(path).address", "missing") }
        let port = m["port"] == nil ? 0 : integer(m["port"], 0...65535)
        let proto = m["protocol"] == nil ? L4Protocol.tcp : choice(m["protocol"], L4Protocol.self)
        var ring = 65537
        if let (s, p) = scalar(m["ring_size"]) {
            if let v = Int(s.replacingOccurrences(of: "_", with: "")) {
                if v < 3 || v > 655_373 {
                    fail(p, "\(v) is out of range 3...655373")
                } else if !isPrime(v) {
                    fail(p, "\(v) is not prime (try \(nextPrime(after: v)))")
                } else {
                    ring = v
                }
            } else {
                fail(p, "'\(s)' is not an integer")
            }
        }
        var health = HealthCheckConfig()
        if let h = m["health"], let hc = healthCheck(h, base: health) { health = hc }
        var backends: [BackendConfig] = []
        var seen: [IPAddress: String] = [:]
        let list = sequence(m["backends"]) ?? []
        if m["backends"] == nil { fail("\(path).backends", "missing (a list of {address, weight})") }
        for (bn, bpath) in list {
            guard let bm = mapping(bn, bpath, allowed: ["address", "weight", "health"]) else { continue }
            guard let ba = address(bm["address"]) else {
                if bm["address"] == nil { fail("\(bpath).address", "missing") }
                continue
            }
            let w = bm["weight"] == nil ? 100 : integer(bm["weight"], 0...Int(ConfigLoader.maxWeight))
            var bh: HealthCheckConfig?
            if let h = bm["health"] { bh = healthCheck(h, base: health) }
            if let first = seen[ba] {
                fail(bpath, "duplicate backend \(ba) (also \(first))")
                continue
            }
            seen[ba] = bpath
            if let w { backends.append(BackendConfig(address: ba, weight: UInt32(w), health: bh)) }
        }
        if list.count > 4000 { fail("\(path).backends", "\(list.count) backends; at most 4000 per VIP") }
        guard let addr, let port, let proto else { return nil }
        var v = VIPConfig(address: addr, port: UInt16(port), proto: proto, ringSize: ring, backends: backends)
        if let h = choice(m["hash"], HashMode.self) { v.hash = h }
        v.health = health
        return v
    }

    mutating func healthCheck(_ e: (Node, String), base: HealthCheckConfig) -> HealthCheckConfig? {
        guard let m = mapping(e.0, e.1, allowed: ["type", "path", "method", "host", "expect_status", "interval", "timeout",
                                                   "rise", "fall", "port"]) else { return nil }
        var h = base
        if let v = choice(m["type"], HealthCheckConfig.Kind.self) { h.type = v }
        if let v = string(m["path"]) {
            if v.hasPrefix("/") { h.path = v } else { fail(m["path"]!.1, "'\(v)' must start with /") }
        }
        if let v = string(m["method"]) {
            if ["GET", "HEAD", "POST", "OPTIONS"].contains(v) { h.method = v } else { fail(m["method"]!.1, "'\(v)' is not one of GET, HEAD, POST, OPTIONS") }
        }
        if let v = string(m["host"]) { h.host = v }
        if let (s, p) = scalar(m["expect_status"]) {
            let parts = s.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            if parts.count == 1, let a = parts[0], (100...599).contains(a) {
                h.expectStatus = a...a
            } else if parts.count == 2, let a = parts[0], let b = parts[1], (100...599).contains(a), (a...599).contains(b) {
                h.expectStatus = a...b
            } else {
                fail(p, "'\(s)' is not a status or range like 200-399")
            }
        }
        if let v = duration(m["interval"], 100...600_000) { h.intervalMs = v }
        if let v = duration(m["timeout"], 10...60_000) { h.timeoutMs = v }
        if let v = integer(m["rise"], 1...100) { h.rise = v }
        if let v = integer(m["fall"], 1...100) { h.fall = v }
        if let v = integer(m["port"], 1...65535) { h.port = UInt16(v) }
        if h.timeoutMs > h.intervalMs {
            fail(e.1, "timeout (\(h.timeoutMs)ms) must not exceed interval (\(h.intervalMs)ms)")
        }
        return h
    }
}
