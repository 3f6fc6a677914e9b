import Config
import NetAddress
import Testing

@Suite("config loading and validation")
struct ConfigLoaderTests {
    static let node = "node: { interface: eth0, encap_source: { ipv4: 10.0.2.2, ipv6: 'fd00:2::2' } }\n"

    struct BadCase: CustomStringConvertible, Sendable {
        var description: String
        var yaml: String
        var error: String
    }

    static let bad: [BadCase] = [
        BadCase(description: "not YAML", yaml: "node: [", error: "f.yaml: not valid YAML"),
        BadCase(description: "unknown top-level key", yaml: node + "vipz: []",
                error: "f.yaml: vipz: unknown key (allowed here: node, vips, cluster, protection)"),
        BadCase(description: "missing node", yaml: "vips: []", error: "f.yaml: node: missing (the node section: interface, encap_source, ...)"),
        BadCase(description: "bad xdp mode", yaml: "node: { interface: eth0, xdp_mode: turbo, encap_source: { ipv4: 10.0.2.2 } }\nvips: []",
                error: "f.yaml: node.xdp_mode: 'turbo' is not one of native, generic"),
        BadCase(description: "encap v4 given a v6 address", yaml: "node: { interface: eth0, encap_source: { ipv4: 'fd00::1' } }\nvips: []",
                error: "f.yaml: node.encap_source.ipv4: fd00::1 is IPv6; expected an IPv4 address"),
        BadCase(description: "path MTU too small", yaml: "node: { interface: eth0, path_mtu: 576, encap_source: { ipv4: 10.0.2.2 } }\nvips: []",
                error: "f.yaml: node.path_mtu: 576 is out of range 1280...9000"),
        BadCase(description: "bpffs outside /sys/fs/bpf", yaml: "node: { interface: eth0, bpffs: /tmp/x, encap_source: { ipv4: 10.0.2.2 } }\nvips: []",
                error: "f.yaml: node.bpffs: '/tmp/x' must be a directory under /sys/fs/bpf/"),
        BadCase(description: "ring size not prime", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, ring_size: 1000, backends: [] } ]",
                error: "f.yaml: vips[0].ring_size: 1000 is not prime (try 1009)"),
        BadCase(description: "second chance not a duration", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, second_chance: soon, backends: [] } ]",
                error: "f.yaml: vips[0].second_chance: 'soon' is not a duration (like 500ms, 1s, 2m)"),
        BadCase(description: "second chance beyond a day", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, second_chance: 1441m, backends: [] } ]",
                error: "f.yaml: vips[0].second_chance: 1441m is out of range 0ms...86400000ms"),
        BadCase(description: "second chance a list", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, second_chance: [1s], backends: [] } ]",
                error: "f.yaml: vips[0].second_chance: expected a single value"),
        BadCase(description: "ring size too big", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, ring_size: 1000003, backends: [] } ]",
                error: "f.yaml: vips[0].ring_size: 1000003 is out of range 3...655373"),
        BadCase(description: "port out of range", yaml: node + "vips: [ { address: 10.100.0.1, port: 70000, backends: [] } ]",
                error: "f.yaml: vips[0].port: 70000 is out of range 0...65535"),
        BadCase(description: "bad protocol", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, protocol: sctp, backends: [] } ]",
                error: "f.yaml: vips[0].protocol: 'sctp' is not one of tcp, udp"),
        BadCase(description: "bad hash mode", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, hash: random, backends: [] } ]",
                error: "f.yaml: vips[0].hash: 'random' is not one of 5tuple, source-ip"),
        BadCase(description: "duplicate backend", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2 }, { address: 10.0.4.2 } ] } ]",
                error: "f.yaml: vips[0].backends[1]: duplicate backend 10.0.4.2 (also vips[0].backends[0])"),
        BadCase(description: "negative weight", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2, weight: -1 } ] } ]",
                error: "f.yaml: vips[0].backends[0].weight: -1 is out of range 0...1000"),
        BadCase(description: "timeout above interval", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, health: { interval: 1s, timeout: 2s }, backends: [] } ]",
                error: "f.yaml: vips[0].health: timeout (2000ms) must not exceed interval (1000ms)"),
        BadCase(description: "bad expected status", yaml: node + "vips: [ { address: 10.100.0.1, port: 80, health: { expect_status: 200-100 }, backends: [] } ]",
                error: "f.yaml: vips[0].health.expect_status: '200-100' is not a status or range like 200-399"),
    ]

    @Test("each bad config is refused with file, key path and reason", arguments: bad)
    func refused(_ c: BadCase) {
        do throws(ConfigError) {
            _ = try ConfigLoader.parse(c.yaml, file: "f.yaml")
            Issue.record("accepted a bad config")
        } catch {
            #expect(error.description.split(separator: "\n").contains { $0.hasPrefix(c.error) }, "got: \(error.description)")
        }
    }

    @Test("every problem is reported, not only the first")
    func allProblems() {
        let yaml = Self.node + "vips: [ { address: 10.100.0.300, port: 80, ring_size: 4, backends: [ { address: x } ] } ]"
        do throws(ConfigError) {
            _ = try ConfigLoader.parse(yaml, file: "f.yaml")
            Issue.record("accepted")
        } catch {
            #expect(error.issues.map(\.keyPath) == ["vips[0].address", "vips[0].ring_size", "vips[0].backends[0].address"])
        }
    }

    @Test("a full config parses with every value and default")
    func valid() throws {
        let yaml = """
            node:
              interface: eth1
              xdp_mode: generic
              encap_source: { ipv4: 10.0.2.2, ipv6: "fd00:2::2" }
              path_mtu: 1600
              hash_seed: 0x5eed
              lru_size: 200000
              bpffs: /sys/fs/bpf/xdplb2
              admin: 127.0.0.1:9190
            vips:
              - address: 10.100.0.1
                port: 80
                protocol: tcp
                hash: source-ip
                ring_size: 251
                second_chance: 2m
                health: { type: http, path: /healthz, interval: 1s, timeout: 500ms, rise: 2, fall: 3, expect_status: 200-299 }
                backends:
                  - { address: 10.0.4.2, weight: 100 }
                  - { address: "fd00:4::2", weight: 0, health: { type: tcp, port: 8080 } }
              - address: "fd00:100::1"
                protocol: udp
                second_chance: off
                health: { type: none }
                backends: []
            """
        let c = try ConfigLoader.parse(yaml, file: "f.yaml")
        #expect(c.node.interface == "eth1" && c.node.xdpMode == .generic && c.node.pathMTU == 1600)
        #expect(c.node.hashSeed == 0x5eed && c.node.lruSize == 200_000 && c.node.bpffs == "/sys/fs/bpf/xdplb2")
        #expect(c.vips.count == 2)
        #expect(c.vips[0].name == "10.100.0.1:80/tcp" && c.vips[0].hash == .sourceIP && c.vips[0].ringSize == 251)
        #expect(c.vips[0].health.type == .http && c.vips[0].health.expectStatus == 200...299 && c.vips[0].health.timeoutMs == 500)
        #expect(c.vips[0].backends[1].weight == 0 && c.vips[0].backends[1].health?.type == .tcp && c.vips[0].backends[1].health?.port == 8080)
        #expect(c.vips[0].backends[1].health?.path == "/healthz")   // inherits the VIP's check
        #expect(c.vips[1].name == "[fd00:100::1]:0/udp" && c.vips[1].ringSize == 65537)
        #expect(c.vips[0].secondChanceMs == 120_000 && c.vips[1].secondChanceMs == 0)
    }
}
