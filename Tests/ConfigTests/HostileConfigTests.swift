import Config
import Foundation
import NetAddress
import Testing

/// Hostile configs from issue #11: each is refused with a bounded, precise message,
/// never a trap, a stack overflow or unbounded work.
@Suite("hostile configs (issue #11)")
struct HostileConfigTests {
    static let node = "node: { interface: eth0, encap_source: { ipv4: 10.0.2.2, ipv6: 'fd00:2::2' } }\n"

    static func vip(_ fields: String) -> String { node + "vips: [ { address: 10.100.0.1, port: 80, \(fields) } ]" }

    /// The issues of a refused config (records an issue if it was accepted).
    static func issues(_ yaml: String) -> [String] {
        do throws(ConfigError) {
            _ = try ConfigLoader.parse(yaml, file: "f.yaml")
            Issue.record("accepted: \(yaml.prefix(200))")
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    struct Case: CustomStringConvertible, Sendable {
        var description: String
        var yaml: String
        var error: String
    }

    // Finding 1: durations beyond Int (the trap was "Double value cannot be converted to Int").
    static let durations: [Case] = ["infs", "1e300s", "1e16s", "9.3e18ms", "9223372036854775807ms", "1e308m", "nans", "-inf s"]
        .flatMap { d in
            ["interval", "timeout"].map { key in
                let range = key == "interval" ? "100ms...600000ms" : "10ms...60000ms"
                let finite = !d.contains("inf") && !d.contains("nan")
                return Case(description: "\(key) \(d)", yaml: vip("health: { \(key): '\(d)' }, backends: []"),
                            error: finite ? "f.yaml: vips[0].health.\(key): \(d) is out of range \(range)"
                                          : "f.yaml: vips[0].health.\(key): '\(d)' is not a duration")
            }
        }

    @Test("an overflowing duration is a range error, not a trap (finding 1)", arguments: durations)
    func duration(_ c: Case) {
        let got = Self.issues(c.yaml)
        #expect(got.contains { $0.hasPrefix(c.error) }, "got: \(got)")
    }

    // Finding 2: Yams composes recursively; 5,000 levels overflowed the stack.
    @Test("deep nesting is a nesting-limit error (finding 2)", arguments: [
        "vips: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000),
        "vips: " + String(repeating: "{a: ", count: 3000) + "1" + String(repeating: "}", count: 3000),
        "vips:\n" + String(repeating: "- ", count: 5000) + "x",
        "vips:\n" + (0..<3000).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n"),
        "vips: [it's, " + String(repeating: "[", count: 5000) + "]",
    ])
    func deep(_ body: String) {
        let got = Self.issues(Self.node + body)
        #expect(got.count == 1 && got[0].contains("nested deeper than 64 levels"), "got: \(got.prefix(3))")
    }

    @Test("nesting up to the limit still parses, on a thread with a small (256 KiB) stack")
    func nestingAtTheLimitOnASmallStack() {
        // 60 flow levels count 120 in the pre-scan bound: use 30 (bound 61) to stay under 64.
        let yaml = Self.node + "vips: []\n# " + String(repeating: "[", count: 200) + "\n"
            + "x: " + String(repeating: "[", count: 30) + String(repeating: "]", count: 30)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var got: [String] = []
        let t = Thread {
            got = Self.issues(yaml)
            done.signal()
        }
        t.stackSize = 256 << 10
        t.start()
        done.wait()
        #expect(got == ["f.yaml: x: unknown key (allowed here: node, vips, cluster, protection)"])
    }

    @Test("brackets in quotes, comments and block scalars do not count as nesting")
    func notNesting() throws {
        let deep = String(repeating: "[", count: 500)
        let yaml = """
            # \(deep)
            node:
              interface: eth0
              encap_source: { ipv4: 10.0.2.2 }
            vips:
              - address: 10.100.0.1
                port: 80
                health: { type: http, path: "/\(deep)", host: 'a\(deep.prefix(100))' }
                backends: [ { address: 10.0.4.2 } ]   # \(deep)
            """
        let c = try ConfigLoader.parse(yaml, file: "f.yaml")
        #expect(c.vips[0].health.path == "/" + deep)
    }

    // Finding 3: the unknown-key message rendered a billion-laughs key in full.
    @Test("more VIPs than the data plane holds are refused with the limit named")
    func tooManyVIPs() {
        let vips = (0..<4097).map { "{ address: 10.100.0.1, port: \(1000 + $0), backends: [ { address: 10.0.9.2 } ] }" }
        let got = Self.issues(Self.node + "vips: [ " + vips.joined(separator: ", ") + " ]")
        #expect(got.contains("f.yaml: vips: 4097 VIPs; at most 4096 are supported"), "got: \(got.prefix(3))")
        let fits = Self.node + "vips: [ " + vips.dropLast().joined(separator: ", ") + " ]"
        #expect((try? ConfigLoader.parse(fits, file: "f.yaml"))?.vips.count == 4096)
    }

    @Test("an alias bomb as a key is refused at once with a short key rendering (finding 3)")
    func aliasBombKey() {
        var lines = [Self.node.dropLast().description, "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        for i in 1...8 { lines.append("x\(i): &x\(i) [" + Array(repeating: "*x\(i - 1)", count: 9).joined(separator: ", ") + "]") }
        lines.append("vips: [ { address: 10.100.0.1, port: 80, backends: [], *x8 : 1, { a: 1 }: 2 } ]")
        let got = Self.issues(lines.joined(separator: "\n"))
        #expect(got.contains("f.yaml: vips[0].<a list>: a key must be a plain name, not a list or mapping (allowed here: address, port, protocol, hash, ring_size, health, second_chance, backends, protection)"))
        #expect(got.contains { $0.hasPrefix("f.yaml: vips[0].<a mapping>: a key must be a plain name") })
        #expect(got.allSatisfy { $0.count < 300 }, "got: \(got.map { $0.prefix(100) })")
    }

    @Test("an echoed value is clipped to 64 characters and its control characters escaped (finding 3)")
    func echoedValuesBounded() {
        let long = String(repeating: "e", count: 100_000)
        // A plain key may be at most 1024 characters (YAML's simple keys).
        let got = Self.issues("node: { interface: \(long), encap_source: { ipv4: 10.0.2.2 } }\nvips: []\n\(long.prefix(1000)): 1")
        #expect(got.contains("f.yaml: node.interface: '\(String(repeating: "e", count: 64))…' is not a valid interface name: it is longer than 15 bytes (IFNAMSIZ - 1)"))
        #expect(got.contains("f.yaml: \(String(repeating: "e", count: 64))…: unknown key (allowed here: node, vips, cluster, protection)"))
        let yamlError = Self.issues(Self.node + "vips: []\n\(long): 1")
        #expect(yamlError.count == 1 && yamlError[0].count < 400 && !yamlError[0].contains("\n"), "got: \(yamlError)")
        let ctl = Self.issues(Self.vip("protocol: \"tc\\np\\u001b\", backends: []"))
        #expect(ctl.contains("f.yaml: vips[0].protocol: 'tc\\np\\u{1b}' is not one of tcp, udp"), "got: \(ctl)")
    }

    @Test("the list of problems is capped; the file's size is bounded")
    func boundedOutput() {
        let many = Self.node + "vips: [" + (0..<500).map { _ in "{ bogus: 1 }" }.joined(separator: ", ") + "]"
        let got = Self.issues(many)
        #expect(got.count == 101 && got.last == "f.yaml: more problems not listed (fix the ones above first)")
        let big = Self.issues(Self.node + "vips: []\n#" + String(repeating: "x", count: 17 << 20))
        #expect(big == ["f.yaml: \(17 << 20 + Self.node.utf8.count + 10) bytes; at most \(16 << 20) are accepted"])
    }

    // Finding 9: more distinct backends than backend ids.
    @Test("more distinct backends than backend ids is refused, naming the limit (finding 9)")
    func tooManyBackends() {
        func backends(_ range: Range<Int>) -> String {
            range.map { "{ address: 10.\(1 + $0 / 65536).\($0 / 256 % 256).\($0 % 256) }" }.joined(separator: ", ")
        }
        // Five VIPs of at most 4,000 backends each: 16,384 distinct is one more than the ids.
        func config(_ total: Int) -> String {
            let vips = stride(from: 0, to: total, by: 4000).enumerated().map { i, lo in
                "{ address: 10.100.0.\(i + 1), port: 80, backends: [\(backends(lo..<min(lo + 4000, total)))] }"
            }
            return Self.node + "vips: [ " + vips.joined(separator: ", ") + " ]"
        }
        #expect(Self.issues(config(16384)) == ["f.yaml: vips: 16384 distinct backends across VIPs; at most 16383 (one backend id each) are supported"])
        let ok = config(16383)
        #expect((try? ConfigLoader.parse(ok, file: "f.yaml"))?.vips.count == 5)
    }

    // Finding 15: ICMPv6 Packet Too Big with an MTU below 1280 is ignored by hosts.
    @Test("a path_mtu too small for a 1280-byte IPv6 packet plus GRE is refused (finding 15)")
    func pathMTU() {
        func cfg(_ mtu: Int, vip: String, backend: String) -> String {
            "node: { interface: eth0, path_mtu: \(mtu), encap_source: { ipv4: 10.0.2.2, ipv6: 'fd00:2::2' } }\n"
                + "vips: [ { address: '\(vip)', port: 80, backends: [ { address: '\(backend)' } ] } ]"
        }
        #expect(Self.issues(cfg(1280, vip: "fd00:100::1", backend: "fd00:4::2"))
                == ["f.yaml: node.path_mtu: 1280 cannot carry a 1280-byte IPv6 packet plus GRE (IPv6 VIP [fd00:100::1]:80/tcp with IPv6 backend fd00:4::2); use at least 1324"])
        #expect(Self.issues(cfg(1323, vip: "fd00:100::1", backend: "fd00:4::2")).count == 1)
        #expect(Self.issues(cfg(1303, vip: "fd00:100::1", backend: "10.0.4.2"))
                == ["f.yaml: node.path_mtu: 1303 cannot carry a 1280-byte IPv6 packet plus GRE (IPv6 VIP [fd00:100::1]:80/tcp with IPv4 backend 10.0.4.2); use at least 1304"])
        #expect((try? ConfigLoader.parse(cfg(1324, vip: "fd00:100::1", backend: "fd00:4::2"), file: "f.yaml")) != nil)
        #expect((try? ConfigLoader.parse(cfg(1304, vip: "fd00:100::1", backend: "10.0.4.2"), file: "f.yaml")) != nil)
        #expect((try? ConfigLoader.parse(cfg(1280, vip: "10.100.0.1", backend: "fd00:4::2"), file: "f.yaml")) != nil)
    }

    // Finding 16: addresses that are not unicast hosts.
    static let addresses: [Case] = [
        ("::", "the unspecified address"), ("0.0.0.0", "the unspecified address"),
        ("::ffff:10.0.9.2", "an IPv4-mapped IPv6 address (write it as the IPv4 address 10.0.9.2)"),
        ("224.0.0.5", "a multicast address (224.0.0.0/4)"), ("ff02::1", "a multicast address (ff00::/8)"),
        ("255.255.255.255", "the broadcast address"), ("127.0.0.1", "a loopback address (127.0.0.0/8)"),
        ("::1", "the loopback address"),
    ].flatMap { a, why in
        let shown = IPAddress(a)!.description
        return [
            Case(description: "backend \(a)", yaml: vip("backends: [ { address: '\(a)' } ]"),
                 error: "f.yaml: vips[0].backends[0].address: \(shown) is \(why); a backend must be a unicast address"),
            Case(description: "VIP \(a)", yaml: node + "vips: [ { address: '\(a)', port: 80, backends: [] } ]",
                 error: "f.yaml: vips[0].address: \(shown) is \(why); a VIP must be a unicast address"),
        ]
    } + [
        Case(description: "encap_source 0.0.0.0", yaml: "node: { interface: eth0, encap_source: { ipv4: 0.0.0.0 } }\nvips: []",
             error: "f.yaml: node.encap_source.ipv4: 0.0.0.0 is the unspecified address; a GRE source must be a unicast address"),
        Case(description: "encap_source ::", yaml: "node: { interface: eth0, encap_source: { ipv6: '::' } }\nvips: []",
             error: "f.yaml: node.encap_source.ipv6: :: is the unspecified address; a GRE source must be a unicast address"),
        Case(description: "backend equal to a VIP",
             yaml: node + "vips: [ { address: 10.100.0.1, port: 80, backends: [] }, { address: 10.100.0.2, port: 80, backends: [ { address: 10.100.0.1 } ] } ]",
             error: "f.yaml: vips[1].backends[0].address: 10.100.0.1 is a VIP address (vips[0]); a backend must be another host"),
    ]

    @Test("non-unicast addresses and a backend equal to a VIP are refused with the reason (finding 16)", arguments: addresses)
    func address(_ c: Case) {
        let got = Self.issues(c.yaml)
        #expect(got.contains(c.error), "got: \(got)")
    }

    // Finding 19 (second half) and 21: values that are accepted today.
    static let values: [Case] = [
        Case(description: "path with CR LF", yaml: vip("health: { type: http, path: \"/x\\r\\nX-Evil: 1\" }, backends: []"),
             error: "f.yaml: vips[0].health.path: '/x\\r\\nX-Evil: 1' contains a space or a control character (CR, LF, ...); percent-encode it"),
        Case(description: "path with a tab", yaml: vip("health: { type: http, path: \"/a\\tb\" }, backends: []"),
             error: "f.yaml: vips[0].health.path: '/a\\tb' contains a space or a control character"),
        Case(description: "host with LF", yaml: vip("health: { type: http, host: \"a\\nb\" }, backends: []"),
             error: "f.yaml: vips[0].health.host: 'a\\nb' is not a host name (1 to 255 bytes, no spaces or control characters such as CR, LF)"),
        Case(description: "backend health host with NUL", yaml: vip("backends: [ { address: 10.0.4.2, health: { type: http, host: \"a\\0b\" } } ]"),
             error: "f.yaml: vips[0].backends[0].health.host: 'a\\u{0}b' is not a host name"),
        Case(description: "expect_status -200", yaml: vip("health: { expect_status: '-200' }, backends: []"),
             error: "f.yaml: vips[0].health.expect_status: '-200' is not a status or range like 200-399"),
        Case(description: "expect_status 200-", yaml: vip("health: { expect_status: '200-' }, backends: []"),
             error: "f.yaml: vips[0].health.expect_status: '200-' is not a status or range like 200-399"),
        Case(description: "expect_status +200", yaml: vip("health: { expect_status: '+200' }, backends: []"),
             error: "f.yaml: vips[0].health.expect_status: '+200' is not a status or range like 200-399"),
        Case(description: "interface ..", yaml: "node: { interface: '..', encap_source: { ipv4: 10.0.2.2 } }\nvips: []",
             error: "f.yaml: node.interface: '..' is not a valid interface name: it is not allowed as a name"),
        Case(description: "interface a\\nb", yaml: "node: { interface: \"a\\nb\", encap_source: { ipv4: 10.0.2.2 } }\nvips: []",
             error: "f.yaml: node.interface: 'a\\nb' is not a valid interface name: it contains '/', ':', a space or a control character"),
        Case(description: "interface eth0:1", yaml: "node: { interface: 'eth0:1', encap_source: { ipv4: 10.0.2.2 } }\nvips: []",
             error: "f.yaml: node.interface: 'eth0:1' is not a valid interface name: it contains '/', ':', a space or a control character"),
        Case(description: "interface of 16 bytes", yaml: "node: { interface: abcdefghijklmnop, encap_source: { ipv4: 10.0.2.2 } }\nvips: []",
             error: "f.yaml: node.interface: 'abcdefghijklmnop' is not a valid interface name: it is longer than 15 bytes (IFNAMSIZ - 1)"),
        Case(description: "bpffs mount itself", yaml: "node: { interface: eth0, bpffs: /sys/fs/bpf/, encap_source: { ipv4: 10.0.2.2 } }\nvips: []",
             error: "f.yaml: node.bpffs: '/sys/fs/bpf/' is the bpffs mount itself; name a directory under it, e.g. /sys/fs/bpf/xdplb"),
        Case(description: "bpffs of 5,000 characters",
             yaml: "node: { interface: eth0, bpffs: /sys/fs/bpf/\(String(repeating: "a", count: 4988)), encap_source: { ipv4: 10.0.2.2 } }\nvips: []",
             error: "f.yaml: node.bpffs: '/sys/fs/bpf/\(String(repeating: "a", count: 52))…' is 5000 bytes; at most 200 (pin names are appended to it)"),
        Case(description: "bpffs with ..", yaml: "node: { interface: eth0, bpffs: /sys/fs/bpf/a/../b, encap_source: { ipv4: 10.0.2.2 } }\nvips: []",
             error: "f.yaml: node.bpffs: '/sys/fs/bpf/a/../b' has an empty, '.' or '..' component"),
        Case(description: "ring_size 0x10001 is read as hex like other integers", yaml: vip("ring_size: 0x10000, backends: []"),
             error: "f.yaml: vips[0].ring_size: 65536 is not prime (try 65537)"),
        Case(description: "hex with a sign", yaml: vip("ring_size: 0x-5, backends: []"),
             error: "f.yaml: vips[0].ring_size: '0x-5' is not an integer (decimal, or hex like 0x1f)"),
        Case(description: "port-0 VIP without health.port",
             yaml: node + "vips: [ { address: 10.100.0.1, port: 0, backends: [ { address: 10.0.4.2 } ] } ]",
             error: "f.yaml: vips[0].health.port: missing: VIP 10.100.0.1 serves every port (port 0), so its tcp check needs a port"),
        Case(description: "port-0 VIP, a backend's own check without a port",
             yaml: node + "vips: [ { address: 10.100.0.1, port: 0, health: { type: none }, backends: [ { address: 10.0.4.2, health: { type: http } } ] } ]",
             error: "f.yaml: vips[0].backends[0].health.port: missing: the VIP serves every port (port 0), so the check needs a port"),
        Case(description: "address with a NUL and junk", yaml: vip("backends: [ { address: \"10.0.9.2\\0junk\" } ]"),
             error: "f.yaml: vips[0].backends[0].address: '10.0.9.2\\u{0}junk' is not an IPv4 or IPv6 address"),
    ]

    @Test("values accepted before are refused with the reason (findings 19, 21)", arguments: values)
    func value(_ c: Case) {
        let got = Self.issues(c.yaml)
        #expect(got.contains { $0.hasPrefix(c.error) }, "got: \(got)")
    }

    @Test("hex and decimal integers are read alike by every key; port-0 VIPs with a health port load")
    func accepted() throws {
        let yaml = Self.node + """
            vips:
              - { address: 10.100.0.1, port: 0x50, ring_size: 0x10001, backends: [ { address: 10.0.4.2, weight: 0x64 } ] }
              - { address: 10.100.0.2, port: 0, health: { port: 8080 }, backends: [ { address: 10.0.4.2 } ] }
              - { address: 10.100.0.3, port: 0, health: { type: none }, backends: [ { address: 10.0.4.2 } ] }
            """
        let c = try ConfigLoader.parse(yaml, file: "f.yaml")
        #expect(c.vips[0].port == 80 && c.vips[0].ringSize == 65537 && c.vips[0].backends[0].weight == 100)
        #expect(c.vips[1].health.port == 8080 && c.vips[1].backends[0].health == nil)
    }

    @Test("IPAddress takes only a whole address (the admin API's backend=10.0.9.2%00junk)")
    func addressParser() {
        #expect(IPAddress("10.0.9.2\u{0}junk") == nil)
        #expect(IPAddress("fd00::1\u{0}") == nil)
        #expect(IPAddress("10.0.9.2 ") == nil)
        #expect(IPAddress("10.0.9.2")?.description == "10.0.9.2")
        #expect(IPAddress("[fd00::1]")?.description == "fd00::1")
    }
}
