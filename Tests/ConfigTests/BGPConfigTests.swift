import Config
import NetAddress
import Testing

@Suite("node.bgp validation")
struct BGPConfigTests {
    static func yaml(_ bgp: String) -> String {
        "node:\n  interface: eth0\n  encap_source: { ipv4: 10.0.2.2 }\n  bgp:\n" + bgp + "vips: []\n"
    }
    static let good = """
            local_asn: 65001
            router_id: 10.0.2.2
            peers: [ { address: 10.0.2.1, asn: 65000 } ]

        """

    @Test("a full section is read with every key")
    func full() throws {
        let c = try ConfigLoader.parse(Self.yaml("""
                local_asn: 4200000001
                router_id: 10.0.2.2
                peers:
                  - { address: 10.0.2.1, asn: 65000, name: tor_a }
                  - { address: "fd00:2::1", asn: 65000, bfd: false }
                bfd: { interval: 50ms, multiplier: 4 }
                hold_time: 6
                communities: ["65001:100", "65001:200"]
                med: 10
                table: 123
                fail_open: withdraw
                drain_timeout: 20s
                quiet_time: 2s
                grace_time: 1m
                daemon: { binary: /usr/sbin/bird, control_socket: /run/xdplb/b.ctl, config: /run/xdplb/b.conf }

            """), file: "f.yaml")
        let b = try #require(c.node.bgp)
        #expect(b.localASN == 4_200_000_001 && b.routerID == IPAddress("10.0.2.2"))
        #expect(b.peers.map(\.name) == ["tor_a", "peer2"] && b.peers[1].bfd == false && b.peers[0].bfd)
        #expect(b.bfdIntervalMs == 50 && b.bfdMultiplier == 4 && b.holdTimeSeconds == 6)
        #expect(b.communities.map(\.description) == ["65001:100", "65001:200"] && b.med == 10 && b.table == 123)
        #expect(b.failOpen == .withdraw && b.drainTimeoutMs == 20_000 && b.quietMs == 2000 && b.graceTimeMs == 60_000)
        #expect(b.daemonBinary == "/usr/sbin/bird" && b.controlSocket == "/run/xdplb/b.ctl" && b.daemonConfig == "/run/xdplb/b.conf")
    }

    @Test("defaults: BFD 100 ms x 3, table 100, fail-open announces, grace 30 s")
    func defaults() throws {
        let b = try #require(try ConfigLoader.parse(Self.yaml(Self.good), file: "f.yaml").node.bgp)
        #expect(b.bfdIntervalMs == 100 && b.bfdMultiplier == 3 && b.table == 100 && b.failOpen == .announce && b.graceTimeMs == 30_000)
        #expect(b.peers == [BGPConfig.Peer(address: IPAddress("10.0.2.1")!, asn: 65000, bfd: true, name: "peer1")])
    }

    static let bad: [(String, String)] = [
        ("    router_id: 10.0.2.2\n    peers: [ { address: 10.0.2.1, asn: 65000 } ]\n", "f.yaml: node.bgp.local_asn: missing (this node's AS number)"),
        ("    local_asn: 0\n    router_id: 10.0.2.2\n    peers: [ { address: 10.0.2.1, asn: 65000 } ]\n", "f.yaml: node.bgp.local_asn: 0 is out of range 1...4294967295"),
        ("    local_asn: 65001\n    router_id: 'fd00::1'\n    peers: [ { address: 10.0.2.1, asn: 65000 } ]\n",
         "f.yaml: node.bgp.router_id: fd00::1 is IPv6; a BGP router id is an IPv4 address"),
        ("    local_asn: 65001\n    router_id: 10.0.2.2\n    peers: []\n", "f.yaml: node.bgp.peers: missing or empty (a list of {address, asn})"),
        ("    local_asn: 65001\n    router_id: 10.0.2.2\n    peers: [ { address: 10.0.2.1 } ]\n", "f.yaml: node.bgp.peers[0].asn: missing (the peer's AS number)"),
        ("    local_asn: 65001\n    router_id: 10.0.2.2\n    peers: [ { address: 10.0.2.1, asn: 65000 }, { address: 10.0.2.1, asn: 65002 } ]\n",
         "f.yaml: node.bgp.peers[1]: duplicate peer 10.0.2.1 (also node.bgp.peers[0])"),
        ("    local_asn: 65001\n    router_id: 10.0.2.2\n    peers: [ { address: 10.0.2.1, asn: 65000, name: \"a b\" } ]\n",
         "f.yaml: node.bgp.peers[0].name: 'a b' is not a session name (a letter, then letters, digits or _, at most 32)"),
        (good + "    bfd: { interval: 1ms }\n", "f.yaml: node.bgp.bfd.interval: 1ms is out of range 10ms...10000ms"),
        (good + "    bfd: { multiplier: 1 }\n", "f.yaml: node.bgp.bfd.multiplier: 1 is out of range 2...255"),
        (good + "    hold_time: 2\n", "f.yaml: node.bgp.hold_time: '2' is not a BGP hold time (0 or 3...65535 seconds)"),
        (good + "    bfd: { interval: 2s, multiplier: 5 }\n", "f.yaml: node.bgp.hold_time: 9s is not longer than BFD's detection time (10000ms)"),
        (good + "    communities: [\"65001:70000\"]\n", "f.yaml: node.bgp.communities[0]: '65001:70000' is not a community like 65001:100"),
        (good + "    table: 254\n", "f.yaml: node.bgp.table: 254 is out of range 1...252"),
        (good + "    fail_open: maybe\n", "f.yaml: node.bgp.fail_open: 'maybe' is not one of announce, withdraw"),
        (good + "    grace_time: 10ms\n", "f.yaml: node.bgp.grace_time: 10ms is out of range 1000ms...86400000ms"),
        (good + "    daemon: { config: relative.conf }\n", "f.yaml: node.bgp.daemon.config: 'relative.conf' must be an absolute path"),
        (good + "    asn: 1\n", "f.yaml: node.bgp.asn: unknown key"),
    ]

    @Test("a bad bgp section is refused with file, key and reason", arguments: 0..<bad.count)
    func refused(_ i: Int) {
        let (bgp, want) = Self.bad[i]
        do {
            _ = try ConfigLoader.parse(Self.yaml(bgp), file: "f.yaml")
            Issue.record("accepted: \(bgp)")
        } catch {
            #expect(error.description.contains(want), "\(error.description)")
        }
    }
}
