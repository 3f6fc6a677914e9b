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
    /// Most distinct backend addresses across all VIPs: one backend id each, ids are
    /// 1 ..< `XDPLB_MAX_BACKENDS` (bpf/xdplb_abi.h; a DataPlane test keeps them equal).
    public static let maxBackends = 16_383
    /// Most VIPs on a node: `XDPLB_MAX_VIPS` (bpf/xdplb_abi.h; a DataPlane test keeps them equal).
    public static let maxVIPs = 4096
    /// Deepest nesting of YAML collections accepted (a valid config needs about 7).
    public static let maxNesting = 64
    /// Largest configuration file accepted, in bytes.
    public static let maxFileBytes = 16 << 20
    /// Longest bpffs directory path accepted (pin names are appended to it).
    public static let maxBPFFSPathBytes = 200
    /// Smallest IPv6 packet every IPv6 link must carry (RFC 8200).
    public static let ipv6MinimumMTU = 1280
    /// Outer header bytes GRE adds (`XDPLB_GRE_OVERHEAD_V4`/`_V6` in bpf/xdplb_abi.h).
    public static let greOverheadV4 = 24, greOverheadV6 = 44

    /// Why `path` cannot be the bpffs directory of the pins, or nil if it can: it must be a
    /// directory strictly under /sys/fs/bpf/ (not the mount itself), with plain components
    /// (no `.`, `..`, empty ones or control characters) and at most ``maxBPFFSPathBytes`` bytes.
    public static func bpffsProblem(_ path: String) -> String? {
        let shown = Echo.quoted(path)
        guard path.hasPrefix("/sys/fs/bpf/") else { return "\(shown) must be a directory under /sys/fs/bpf/" }
        guard path.utf8.count <= maxBPFFSPathBytes else {
            return "\(shown) is \(path.utf8.count) bytes; at most \(maxBPFFSPathBytes) (pin names are appended to it)"
        }
        var rest = path.dropFirst("/sys/fs/bpf/".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty else { return "\(shown) is the bpffs mount itself; name a directory under it, e.g. /sys/fs/bpf/xdplb" }
        for c in rest.split(separator: "/", omittingEmptySubsequences: false) {
            if c.isEmpty || c == "." || c == ".." {
                return "\(shown) has an empty, '.' or '..' component; write a plain path under /sys/fs/bpf/"
            }
        }
        if Echo.hasControlOrSpace(String(rest)) { return "\(shown) contains a space or a control character" }
        return nil
    }

    /// Loads and validates the file at `path`.
    /// - Throws: `ConfigError` listing every problem found.
    public static func load(path: String) throws(ConfigError) -> XdplbConfig {
        try parse(read(path: path), file: path)
    }

    /// The bytes of a configuration file, or the error `load` gives for it.
    public static func read(path: String) throws(ConfigError) -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(issues: [ConfigIssue(file: path, keyPath: "", reason: "cannot read the file (missing or not readable)")])
        }
        return data
    }

    /// Parses and validates a file's bytes (UTF-8); `file` names it in errors.
    public static func parse(_ data: Data, file: String) throws(ConfigError) -> XdplbConfig {
        try parse(String(decoding: data, as: UTF8.self), file: file)
    }

    /// 128 bits over a file's bytes (two FNV-1a 64 from different offset bases,
    /// each finished with SplitMix64's mix): equal for equal files, so a reload
    /// of an unchanged file can skip parsing it. Not a defence against a
    /// crafted collision: whoever can write the config controls the node anyway.
    public static func fingerprint(_ data: Data) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325, b: UInt64 = 0x6c62_272e_07bb_0142
        data.withUnsafeBytes { raw in
            for byte in raw {
                a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
                b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            }
        }
        func mix(_ x: UInt64) -> UInt64 {
            var z = x
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        return String(mix(a ^ UInt64(data.count)), radix: 16) + "-" + String(mix(b), radix: 16)
    }

    /// Parses and validates YAML text; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> XdplbConfig {
        let root = try compose(text, file: file)
        var r = Reader(file: file)
        let config = r.document(root)
        if !r.issues.isEmpty || config == nil {
            throw ConfigError(issues: r.issues.isEmpty ? [ConfigIssue(file: file, keyPath: "", reason: "empty configuration")] : r.issues)
        }
        return config!
    }

    /// The YAML tree of `text`, with its size and nesting bounded first.
    static func compose(_ text: String, file: String) throws(ConfigError) -> Node? {
        if text.utf8.count > maxFileBytes {
            throw ConfigError(issues: [ConfigIssue(file: file, keyPath: "", reason: "\(text.utf8.count) bytes; at most \(maxFileBytes) are accepted")])
        }
        // Yams builds its tree recursively: bound the depth before it sees the text.
        if let line = YAMLDepth.firstLineDeeper(than: maxNesting, in: text) {
            throw ConfigError(issues: [ConfigIssue(file: file, keyPath: "", reason:
                "line \(line): nested deeper than \(maxNesting) levels (lists and mappings inside each other); a config needs fewer than 10")])
        }
        do {
            return try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(issues: [ConfigIssue(file: file, keyPath: "", reason: "not valid YAML: \(Echo.clip(Echo.escaped("\(error)".replacingOccurrences(of: "\n", with: "; ")), 300))")])
        }
    }

    /// Parses and validates a shared (cluster) config: `vips` and optionally `hash_seed`, the part
    /// `xdplb cluster push` writes to etcd. The VIPs get every check `config check` makes; the
    /// checks that depend on a node (encap families, path MTU) use `node`, or pass when it is nil
    /// (each agent checks them again against its own node settings).
    public static func parseShared(_ text: String, file: String, node: NodeConfig? = nil) throws(ConfigError) -> SharedConfig {
        let root = try compose(text, file: file)
        var r = Reader(file: file)
        let shared = r.sharedDocument(root, node: node)
        if !r.issues.isEmpty || shared == nil {
            throw ConfigError(issues: r.issues.isEmpty ? [ConfigIssue(file: file, keyPath: "", reason: "empty shared configuration (expected vips: and optionally hash_seed: and protection:)")] : r.issues)
        }
        return shared!
    }
}

/// Walks the YAML tree, collecting issues instead of stopping at the first.
struct Reader {
    let file: String
    var issues: [ConfigIssue] = []

    init(file: String) { self.file = file }

    /// The protection sections read so far (ConfigLoader+Protection.swift).
    var protection = ProtectionReading()

    /// Issues kept in full; past this only the count grows (bounded output for any file).
    static let maxIssues = 100
    var dropped = 0

    mutating func fail(_ path: String, _ reason: String) {
        if issues.count < Self.maxIssues {
            issues.append(ConfigIssue(file: file, keyPath: path, reason: reason))
        } else if issues.count == Self.maxIssues && dropped == 0 {
            dropped = 1
            issues.append(ConfigIssue(file: file, keyPath: "", reason: "more problems not listed (fix the ones above first)"))
        }
    }

    /// A mapping key as text: a scalar's value (clipped), or a short word for a list or mapping used as a key.
    static func keyText(_ k: Node) -> String {
        switch k {
        case .scalar(let s): return Echo.clip(Echo.escaped(s.string), 64)
        case .mapping: return "<a mapping>"
        case .sequence: return "<a list>"
        }
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
            guard case .scalar(let ks) = k else {
                let sub = path.isEmpty ? Self.keyText(k) : "\(path).\(Self.keyText(k))"
                fail(sub, "a key must be a plain name, not a list or mapping (allowed here: \(allowed.joined(separator: ", ")))")
                continue
            }
            let key = ks.string
            guard allowed.contains(key) else {
                let shown = Self.keyText(k)
                fail(path.isEmpty ? shown : "\(path).\(shown)", "unknown key (allowed here: \(allowed.joined(separator: ", ")))")
                continue
            }
            let sub = path.isEmpty ? key : "\(path).\(key)"
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

    /// An integer written in decimal (`-12`, `65_537`) or hex (`0x5eed`), the same for every key.
    static func parseInteger(_ s: String) -> Int? {
        let t = s.replacingOccurrences(of: "_", with: "")
        let lower = t.lowercased()
        if lower.hasPrefix("0x") {
            let digits = t.dropFirst(2)
            guard !digits.isEmpty, digits.allSatisfy(\.isHexDigit) else { return nil }
            return Int(digits, radix: 16)
        }
        let body = t.hasPrefix("-") || t.hasPrefix("+") ? t.dropFirst() : Substring(t)
        guard !body.isEmpty, body.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(t)
    }

    mutating func integer(_ e: (Node, String)?, _ range: ClosedRange<Int>) -> Int? {
        guard let (s, path) = scalar(e) else { return nil }
        guard let v = Self.parseInteger(s) else {
            fail(path, "\(Echo.quoted(s)) is not an integer (decimal, or hex like 0x1f)")
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
            fail(path, "\(Echo.quoted(s)) is not true or false")
            return nil
        }
    }

    mutating func address(_ e: (Node, String)?) -> IPAddress? {
        guard let (s, path) = scalar(e) else { return nil }
        guard let a = IPAddress(s) else {
            fail(path, "\(Echo.quoted(s)) is not an IPv4 or IPv6 address")
            return nil
        }
        return a
    }

    /// An address that must be unicast (a VIP, a backend, an encap source).
    mutating func unicast(_ e: (Node, String)?, what: String) -> IPAddress? {
        guard let a = address(e) else { return nil }
        if let why = a.notUnicastReason {
            fail(e!.1, "\(a) is \(why); a \(what) must be a unicast address")
            return nil
        }
        return a
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ e: (Node, String)?, _: T.Type) -> T? where T.RawValue == String {
        guard let (s, path) = scalar(e) else { return nil }
        guard let v = T(rawValue: s) else {
            fail(path, "\(Echo.quoted(s)) is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return v
    }

    /// Durations like `1s`, `500ms`, `2m`; returns milliseconds.
    mutating func duration(_ e: (Node, String)?, _ range: ClosedRange<Int>) -> Int? {
        guard let (s, path) = scalar(e) else { return nil }
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000)]
        var value: Double?
        for (suffix, factor) in units where s.hasSuffix(suffix) {
            let number = s.dropLast(suffix.count)
            // Digits, one point, an exponent: no "inf", "nan" or hex floats.
            if !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || ".eE+-".contains($0)) }),
               let n = Double(number), n.isFinite, n >= 0 {
                value = n * factor
            }
            break
        }
        guard let value else {
            fail(path, "\(Echo.quoted(s)) is not a duration (like 500ms, 1s, 2m)")
            return nil
        }
        // Compare as Double first: Int(value) traps when value is beyond Int.
        guard value.isFinite, value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
            fail(path, "\(Echo.clip(s, 64)) is out of range \(range.lowerBound)ms...\(range.upperBound)ms")
            return nil
        }
        return Int(value.rounded())
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
        guard let top = mapping(root, "", allowed: ["node", "vips", "cluster", "protection"]) else { return nil }
        guard top["node"] != nil else {
            fail("node", "missing (the node section: interface, encap_source, ...)")
            return nil
        }
        let node = nodeSection(top["node"]!)
        let cluster = top["cluster"].flatMap { clusterSection($0) }
        if top["cluster"] != nil, let (_, path) = top["vips"] {
            fail(path, "not allowed with a cluster section: the VIPs come from etcd ('xdplb cluster push FILE'); keep only node-local settings here")
        }
        protection.globalPath = top["protection"]?.1
        let global = top["protection"].flatMap { protectionRules($0) }
        let vips = vipList(top["vips"])
        let protectionConfig = protectionConfig(global: global)
        guard let node else { return nil }
        vipChecks(node, vips, prefix: "")
        return XdplbConfig(node: node, vips: vips, cluster: cluster, protection: protectionConfig)
    }

    /// The VIP list at `e`, each VIP read and duplicates refused.
    mutating func vipList(_ e: (Node, String)?) -> [VIPConfig] {
        var vips: [VIPConfig] = []
        var seen: [String: String] = [:]
        for (n, path) in sequence(e) ?? [] {
            guard let v = vip(n, path) else { continue }
            let key = v.name
            if let first = seen[key] {
                fail(path, "duplicate VIP \(key) (also \(first))")
            } else {
                seen[key] = path
                vips.append(v)
                if let (rules, at) = protection.current { protection.perVIP.append((key, rules, at)) }
            }
        }
        return vips
    }

    /// The checks that need the node and every VIP: encap families, limits, VIPs used as backends, the path MTU.
    mutating func vipChecks(_ node: NodeConfig, _ vips: [VIPConfig], prefix: String) {
        for (i, v) in vips.enumerated() {
            for (j, b) in v.backends.enumerated() {
                if b.address.isV6 && node.encapSourceV6 == nil {
                    fail("\(prefix)vips[\(i)].backends[\(j)].address", "IPv6 backend needs node.encap_source.ipv6")
                } else if !b.address.isV6 && node.encapSourceV4 == nil {
                    fail("\(prefix)vips[\(i)].backends[\(j)].address", "IPv4 backend needs node.encap_source.ipv4")
                }
            }
        }
        if vips.count > ConfigLoader.maxVIPs { fail("\(prefix)vips", "\(vips.count) VIPs; at most \(ConfigLoader.maxVIPs) are supported") }
        let distinct = Set(vips.flatMap { $0.backends.map(\.address) })
        if distinct.count > ConfigLoader.maxBackends {
            fail("\(prefix)vips", "\(distinct.count) distinct backends across VIPs; at most \(ConfigLoader.maxBackends) (one backend id each) are supported")
        }
        // A VIP's address must not be a backend: GRE to it would come back to the balancer.
        var vipPaths: [IPAddress: String] = [:]
        for (i, v) in vips.enumerated() where vipPaths[v.address] == nil { vipPaths[v.address] = "\(prefix)vips[\(i)]" }
        for (i, v) in vips.enumerated() {
            for (j, b) in v.backends.enumerated() {
                if let at = vipPaths[b.address] {
                    fail("\(prefix)vips[\(i)].backends[\(j)].address", "\(b.address) is a VIP address (\(at)); a backend must be another host")
                }
            }
        }
        pathMTUFits(node, vips)
    }

    /// Where node.path_mtu is (for errors found once the VIPs are known).
    var pathMTUKey = "node.path_mtu"

    /// Refuses a path MTU that cannot carry a minimum-size (1280-byte) IPv6 packet plus the
    /// GRE overhead towards an IPv6 VIP's backends: the ICMPv6 Packet Too Big the program
    /// would send would name an MTU below IPv6's minimum, which hosts ignore (a blackhole).
    mutating func pathMTUFits(_ node: NodeConfig, _ vips: [VIPConfig]) {
        var need = 0, because = ""
        for v in vips where v.address.isV6 {
            for b in v.backends {
                let n = ConfigLoader.ipv6MinimumMTU + (b.address.isV6 ? ConfigLoader.greOverheadV6 : ConfigLoader.greOverheadV4)
                if n > need { need = n; because = "IPv6 VIP \(v.name) with \(b.address.isV6 ? "IPv6" : "IPv4") backend \(b.address)" }
            }
        }
        if node.pathMTU < need {
            fail(pathMTUKey, "\(node.pathMTU) cannot carry a 1280-byte IPv6 packet plus GRE (\(because)); use at least \(need)")
        }
    }

    /// Why `name` is not a Linux interface name (the kernel's dev_valid_name, plus no control characters), or nil.
    static func interfaceNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > 15 { return "is longer than 15 bytes (IFNAMSIZ - 1)" }
        if name == "." || name == ".." { return "is not allowed as a name" }
        if name.unicodeScalars.contains(where: { $0 == "/" || $0 == ":" || $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7f }) {
            return "contains '/', ':', a space or a control character"
        }
        return nil
    }

    mutating func nodeSection(_ e: (Node, String)) -> NodeConfig? {
        guard let m = mapping(e.0, e.1, allowed: ["interface", "xdp_mode", "encap_source", "path_mtu", "hash_seed",
                                                   "lru_size", "bpffs", "admin", "admin_allow_remote", "admin_group",
                                                   "admin_token_file", "state_dir", "bgp"]) else { return nil }
        guard let ifname = string(m["interface"]) else {
            if m["interface"] == nil { fail("\(e.1).interface", "missing (the interface to attach to)") }
            return nil
        }
        if let why = Self.interfaceNameProblem(ifname) {
            fail("\(e.1).interface", "\(Echo.quoted(ifname)) is not a valid interface name: it \(why)")
        }
        var n = NodeConfig(interface: ifname)
        if let v = choice(m["xdp_mode"], XDPModeSetting.self) { n.xdpMode = v }
        if let es = mapping(m["encap_source"]?.0, m["encap_source"]?.1 ?? "", allowed: ["ipv4", "ipv6"]) {
            if let a = unicast(es["ipv4"], what: "GRE source") {
                if a.isV6 { fail(es["ipv4"]!.1, "\(a) is IPv6; expected an IPv4 address") } else { n.encapSourceV4 = a }
            }
            if let a = unicast(es["ipv6"], what: "GRE source") {
                if !a.isV6 { fail(es["ipv6"]!.1, "\(a) is IPv4; expected an IPv6 address") } else { n.encapSourceV6 = a }
            }
        }
        if m["encap_source"] == nil { fail("\(e.1).encap_source", "missing (outer source addresses: ipv4 and/or ipv6)") }
        if let v = integer(m["path_mtu"], 1280...9000) { n.pathMTU = v }
        pathMTUKey = m["path_mtu"]?.1 ?? "\(e.1).path_mtu"
        if let v = integer(m["hash_seed"], 0...Int(UInt32.max)) { n.hashSeed = UInt32(v) }
        if let v = integer(m["lru_size"], 1024...ConfigLoader.maxLRUSize) { n.lruSize = v }
        if let v = string(m["bpffs"]) {
            if let why = ConfigLoader.bpffsProblem(v) { fail(m["bpffs"]!.1, why) } else { n.bpffs = v }
        }
        if let v = bool(m["admin_allow_remote"]) { n.adminAllowRemote = v }
        if let (v, p) = scalar(m["state_dir"]) {
            if v.hasPrefix("/") && !v.contains("..") && v.utf8.count <= 200 { n.stateDir = v } else {
                fail(p, "'\(v.prefix(60))' must be an absolute path of at most 200 bytes without '..'")
            }
        }
        if let b = m["bgp"] { n.bgp = bgpSection(b) }
        adminSection(m, &n)
        return n
    }

    mutating func vip(_ node: Node, _ path: String) -> VIPConfig? {
        guard let m = mapping(node, path, allowed: ["address", "port", "protocol", "hash", "ring_size", "health", "second_chance", "backends", "protection"]) else {
            protection.current = nil
            return nil
        }
        let addr = unicast(m["address"], what: "VIP")
        if m["address"] == nil { fail("\(path).address", "missing") }
        let port = m["port"] == nil ? 0 : integer(m["port"], 0...65535)
        let proto = m["protocol"] == nil ? L4Protocol.tcp : choice(m["protocol"], L4Protocol.self)
        var ring = 65537
        if let v = integer(m["ring_size"], MaglevTable.sizeRange) {
            if !isPrime(v) { fail(m["ring_size"]!.1, "\(v) is not prime (try \(nextPrime(after: v)))") } else { ring = v }
        }
        var health = HealthCheckConfig()
        if let h = m["health"], let hc = healthCheck(h, base: health) { health = hc }
        var backends: [BackendConfig] = []
        var seen: [IPAddress: String] = [:]
        let list = sequence(m["backends"]) ?? []
        if m["backends"] == nil { fail("\(path).backends", "missing (a list of {address, weight})") }
        for (bn, bpath) in list {
            guard let bm = mapping(bn, bpath, allowed: ["address", "weight", "health"]) else { continue }
            guard let ba = unicast(bm["address"], what: "backend") else {
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
        vipProtection(m["protection"])
        guard let addr, let port, let proto else { return nil }
        // A port-0 VIP has no port to probe: the check must name one (unless it does not probe).
        if port == 0 {
            if health.type != .none && health.port == nil {
                fail("\(path).health.port", "missing: VIP \(addr) serves every port (port 0), so its \(health.type.rawValue) check needs a port")
            } else {
                for (j, b) in backends.enumerated() where b.health.map({ $0.type != .none && $0.port == nil }) == true {
                    fail("\(path).backends[\(j)].health.port", "missing: the VIP serves every port (port 0), so the check needs a port")
                }
            }
        }
        var v = VIPConfig(address: addr, port: UInt16(port), proto: proto, ringSize: ring, backends: backends)
        if let h = choice(m["hash"], HashMode.self) { v.hash = h }
        v.health = health
        if let e = m["second_chance"], let (s, _) = scalar(e) {
            if s == "off" {
                v.secondChanceMs = 0
            } else if let ms = duration(e, 0...VIPConfig.maxSecondChanceMs) {
                v.secondChanceMs = ms
            }
        }
        return v
    }

    mutating func healthCheck(_ e: (Node, String), base: HealthCheckConfig) -> HealthCheckConfig? {
        guard let m = mapping(e.0, e.1, allowed: ["type", "path", "method", "host", "expect_status", "interval", "timeout",
                                                   "rise", "fall", "port", "through_tunnel"]) else { return nil }
        var h = base
        if let v = choice(m["type"], HealthCheckConfig.Kind.self) { h.type = v }
        if let v = string(m["path"]) {
            if !v.hasPrefix("/") {
                fail(m["path"]!.1, "\(Echo.quoted(v)) must start with /")
            } else if Echo.hasControlOrSpace(v) {
                fail(m["path"]!.1, "\(Echo.quoted(v)) contains a space or a control character (CR, LF, ...); percent-encode it")
            } else if v.utf8.count > 1024 {
                fail(m["path"]!.1, "is \(v.utf8.count) bytes; at most 1024")
            } else {
                h.path = v
            }
        }
        if let v = string(m["method"]) {
            if ["GET", "HEAD", "POST", "OPTIONS"].contains(v) { h.method = v } else { fail(m["method"]!.1, "\(Echo.quoted(v)) is not one of GET, HEAD, POST, OPTIONS") }
        }
        if let v = string(m["host"]) {
            if v.isEmpty || Echo.hasControlOrSpace(v) || v.utf8.count > 255 {
                fail(m["host"]!.1, "\(Echo.quoted(v)) is not a host name (1 to 255 bytes, no spaces or control characters such as CR, LF)")
            } else {
                h.host = v
            }
        }
        if let (s, p) = scalar(m["expect_status"]) {
            // "200" or "200-399": digits only around one dash ("-200" and "200-" are refused).
            let parts = s.split(separator: "-", omittingEmptySubsequences: false).map { part -> Int? in
                let t = part.trimmingCharacters(in: .whitespaces)
                return !t.isEmpty && t.allSatisfy({ $0.isASCII && $0.isNumber }) ? Int(t) : nil
            }
            if parts.count == 1, let a = parts[0], (100...599).contains(a) {
                h.expectStatus = a...a
            } else if parts.count == 2, let a = parts[0], let b = parts[1], (100...599).contains(a), (a...599).contains(b) {
                h.expectStatus = a...b
            } else {
                fail(p, "\(Echo.quoted(s)) is not a status or range like 200-399")
            }
        }
        if let v = duration(m["interval"], 100...600_000) { h.intervalMs = v }
        if let v = duration(m["timeout"], 10...60_000) { h.timeoutMs = v }
        if let v = integer(m["rise"], 1...100) { h.rise = v }
        if let v = integer(m["fall"], 1...100) { h.fall = v }
        if let v = integer(m["port"], 1...65535) { h.port = UInt16(v) }
        if let v = bool(m["through_tunnel"]) { h.throughTunnel = v }
        if h.throughTunnel && h.type == .none {
            fail(e.1, "through_tunnel needs a probe: type tcp or http, not none")
        }
        if h.timeoutMs > h.intervalMs {
            fail(e.1, "timeout (\(h.timeoutMs)ms) must not exceed interval (\(h.intervalMs)ms)")
        }
        return h
    }
}
