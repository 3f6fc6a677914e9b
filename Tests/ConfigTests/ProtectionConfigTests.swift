import Config
import NetAddress
import Testing

@Suite("protection: per-source limits, deny and allow lists")
struct ProtectionConfigTests {
    static let node = "node: { interface: eth0, encap_source: { ipv4: 10.0.2.2, ipv6: 'fd00:2::2' } }\n"
    /// A file with `global` as the top-level protection section (nil: none) and VIPs 10.100.0.1:80, 10.100.0.2:53/udp
    /// and [fd00::1]:443 with the given sections.
    static func yaml(global: String?, _ vipSections: [String?] = [nil, nil, nil]) -> String {
        let heads = ["address: 10.100.0.1, port: 80", "address: 10.100.0.2, port: 53, protocol: udp", "address: 'fd00::1', port: 443"]
        var s = node
        if let global { s += "protection: \(global)\n" }
        s += "vips:\n"
        for (head, section) in zip(heads, vipSections) {
            s += "  - { \(head), backends: [ { address: 10.0.4.2 } ]" + (section.map { ", protection: \($0)" } ?? "") + " }\n"
        }
        return s
    }
    static func p(_ s: String) -> IPPrefix { IPPrefix(s)! }

    static func issues(_ yaml: String) -> [String] {
        do throws(ConfigError) {
            _ = try ConfigLoader.parse(yaml, file: "f.yaml")
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test("a full example: the global section and two VIPs' overrides resolve field by field")
    func full() throws {
        let text = Self.node + """
            protection:
              new_flows_per_second: 1000
              new_flow_burst: 5000
              packets_per_second: 100_000
              source_prefix_v4: 24
              source_prefix_v6: 56
              flood_alert_new_flows_per_second: 50000
              deny: [ 192.0.2.0/24, "2001:db8:bad::/48", 198.51.100.7 ]
              allow: [ 10.0.0.0/8 ]
            vips:
              - address: 10.100.0.1
                port: 80
                backends: [ { address: 10.0.4.2 } ]
                protection:
                  new_flows_per_second: 200
                  packet_burst: 300000
                  source_prefix_v4: 32
                  deny: [ 203.0.113.0/24 ]
                  allow: [ 192.0.2.128/25 ]
              - address: 'fd00::1'
                port: 443
                backends: [ { address: 10.0.4.2 } ]
                protection: { packets_per_second: 0, new_flow_burst: 10, flood_alert_new_flows_per_second: 0, source_prefix_v6: 128 }
              - address: 10.100.0.3
                port: 80
                backends: [ { address: 10.0.4.2 } ]

            """
        let c = try ConfigLoader.parse(text, file: "f.yaml")
        let pr = c.protection
        #expect(!pr.isEmpty)
        #expect(Set(pr.perVIP.keys) == ["10.100.0.1:80/tcp", "[fd00::1]:443/tcp"])
        #expect(pr.defaults.deny == [Self.p("192.0.2.0/24"), Self.p("2001:db8:bad::/48"), Self.p("198.51.100.7/32")])
        #expect(pr.defaults.allow == [Self.p("10.0.0.0/8")])
        #expect(pr.defaults.newFlowsPerSecond == 1000 && pr.defaults.newFlowBurst == 5000 && pr.defaults.packetsPerSecond == 100_000)
        #expect(pr.defaults.packetBurst == nil && pr.defaults.sourcePrefixV4 == 24 && pr.defaults.sourcePrefixV6 == 56)
        #expect(pr.defaults.floodAlertNewFlowsPerSecond == 50_000)
        let first = try #require(pr.perVIP["10.100.0.1:80/tcp"])
        #expect(first.deny == [Self.p("203.0.113.0/24")] && first.allow == [Self.p("192.0.2.128/25")])
        #expect(first.newFlowsPerSecond == 200 && first.newFlowBurst == nil && first.packetsPerSecond == nil && first.packetBurst == 300_000)
        #expect(pr.perVIP["[fd00::1]:443/tcp"]?.deny == [] && pr.perVIP["[fd00::1]:443/tcp"]?.allow == [])

        var want = SourceLimits()
        want.newFlowsPerSecond = 200; want.newFlowBurst = 5000          // the VIP's rate, the global burst
        want.packetsPerSecond = 100_000; want.packetBurst = 300_000     // the global rate, the VIP's burst
        want.sourcePrefixV4 = 32; want.sourcePrefixV6 = 56; want.floodAlertNewFlowsPerSecond = 50_000
        #expect(pr.limits(forVIP: "10.100.0.1:80/tcp") == want)

        want = SourceLimits()
        want.newFlowsPerSecond = 1000; want.newFlowBurst = 10           // the global rate, the VIP's burst
        want.packetsPerSecond = 0; want.packetBurst = 0                 // turned off here
        want.sourcePrefixV4 = 24; want.sourcePrefixV6 = 128; want.floodAlertNewFlowsPerSecond = 0
        #expect(pr.limits(forVIP: "[fd00::1]:443/tcp") == want)

        want = SourceLimits()                                            // no section: the global one
        want.newFlowsPerSecond = 1000; want.newFlowBurst = 5000
        want.packetsPerSecond = 100_000; want.packetBurst = 100_000     // an unset burst is the rate
        want.sourcePrefixV4 = 24; want.sourcePrefixV6 = 56; want.floodAlertNewFlowsPerSecond = 50_000
        #expect(pr.limits(forVIP: "10.100.0.3:80/tcp") == want)
        #expect(pr.limits(forVIP: "no such VIP") == want)
        #expect(!want.isOff)
        // A VIP's protection is not part of the VIP (its ring): the VIP equals one without it.
        #expect(c.vips[0] == VIPConfig(address: IPAddress("10.100.0.1")!, port: 80, proto: .tcp, backends: [BackendConfig(address: IPAddress("10.0.4.2")!)]))
    }

    @Test("absent: empty, every limit off, sources grouped by /32 and /64")
    func defaults() throws {
        let c = try ConfigLoader.parse(Self.yaml(global: nil), file: "f.yaml")
        #expect(c.protection == ProtectionConfig() && c.protection.isEmpty)
        let l = c.protection.limits(forVIP: "10.100.0.1:80/tcp")
        #expect(l == SourceLimits() && l.isOff)
        #expect(l.newFlowsPerSecond == 0 && l.newFlowBurst == 0 && l.packetsPerSecond == 0 && l.packetBurst == 0)
        #expect(l.sourcePrefixV4 == 32 && l.sourcePrefixV6 == 64 && l.floodAlertNewFlowsPerSecond == 0)
        // Sections that turn nothing on are empty too; a rate, the alert or a list entry is not.
        let quiet = try ConfigLoader.parse(Self.yaml(global: "{ source_prefix_v4: 24, new_flows_per_second: 0 }", ["{}", nil, nil]), file: "f.yaml")
        #expect(quiet.protection.isEmpty && quiet.protection.perVIP.keys.sorted() == ["10.100.0.1:80/tcp"])
        #expect(quiet.protection.limits(forVIP: "10.100.0.1:80/tcp").sourcePrefixV4 == 24)
        for on in ["{ packets_per_second: 1 }", "{ flood_alert_new_flows_per_second: 5 }", "{ deny: [ 192.0.2.1 ] }", "{ allow: [ '::/0' ] }"] {
            let g = try ConfigLoader.parse(Self.yaml(global: on), file: "f.yaml")
            #expect(!g.protection.isEmpty, "\(on)")
            let v = try ConfigLoader.parse(Self.yaml(global: nil, [nil, nil, on]), file: "f.yaml")
            #expect(!v.protection.isEmpty, "\(on)")
        }
        // Limits at the edges of their ranges.
        let edge = try ConfigLoader.parse(Self.yaml(global: "{ new_flows_per_second: 10000000, new_flow_burst: 1, packets_per_second: 1, packet_burst: 10000000, source_prefix_v4: 16, source_prefix_v6: 48 }"), file: "f.yaml")
        var want = SourceLimits()
        want.newFlowsPerSecond = 10_000_000; want.newFlowBurst = 1; want.packetsPerSecond = 1; want.packetBurst = 10_000_000
        want.sourcePrefixV4 = 16; want.sourcePrefixV6 = 48
        #expect(edge.protection.limits(forVIP: "10.100.0.2:53/udp") == want)
    }

    @Test("the constants the data plane sizes by")
    func constants() {
        #expect(ProtectionConfig.maxPrefixes == 65_536 && ProtectionConfig.maxRate == 10_000_000)
    }

    static let bad: [(String, String)] = [
        (yaml(global: "{ new_flows_per_second: 10000001 }"), "f.yaml: protection.new_flows_per_second: 10000001 is out of range 0...10000000"),
        (yaml(global: "{ packets_per_second: -1 }"), "f.yaml: protection.packets_per_second: -1 is out of range 0...10000000"),
        (yaml(global: "{ new_flows_per_second: 10, new_flow_burst: 0 }"), "f.yaml: protection.new_flow_burst: 0 is out of range 1...10000000"),
        (yaml(global: "{ packets_per_second: 10, packet_burst: 10000001 }"), "f.yaml: protection.packet_burst: 10000001 is out of range 1...10000000"),
        (yaml(global: "{ flood_alert_new_flows_per_second: 10000001 }"), "f.yaml: protection.flood_alert_new_flows_per_second: 10000001 is out of range 0...10000000"),
        (yaml(global: "{ new_flows_per_second: lots }"), "f.yaml: protection.new_flows_per_second: 'lots' is not an integer (decimal, or hex like 0x1f)"),
        (yaml(global: "{ source_prefix_v4: 15 }"), "f.yaml: protection.source_prefix_v4: 15 is out of range 16...32"),
        (yaml(global: "{ source_prefix_v4: 33 }"), "f.yaml: protection.source_prefix_v4: 33 is out of range 16...32"),
        (yaml(global: nil, [nil, "{ source_prefix_v6: 47 }", nil]), "f.yaml: vips[1].protection.source_prefix_v6: 47 is out of range 48...128"),
        (yaml(global: "{ source_prefix_v6: 129 }"), "f.yaml: protection.source_prefix_v6: 129 is out of range 48...128"),
        (yaml(global: "{ rate: 5 }"),
         "f.yaml: protection.rate: unknown key (allowed here: new_flows_per_second, new_flow_burst, packets_per_second, packet_burst, source_prefix_v4, source_prefix_v6, flood_alert_new_flows_per_second, deny, allow)"),
        (yaml(global: nil, [nil, nil, "{ denied: [] }"]),
         "f.yaml: vips[2].protection.denied: unknown key (allowed here: new_flows_per_second, new_flow_burst, packets_per_second, packet_burst, source_prefix_v4, source_prefix_v6, flood_alert_new_flows_per_second, deny, allow)"),
        (yaml(global: "[ 1 ]"), "f.yaml: protection: expected a mapping (key: value lines)"),
        (yaml(global: "{ deny: 10.0.0.0/8 }"), "f.yaml: protection.deny: expected a list"),
        (yaml(global: "{ deny: [ [ 10.0.0.0/8 ] ] }"), "f.yaml: protection.deny[0]: expected a single value"),
        // Bad prefixes, with IPPrefix's reason.
        (yaml(global: "{ deny: [ 10.0.0.0/8, 10.1.0.0/8 ] }"), "f.yaml: protection.deny[1]: host bits set: 10.1.0.0/8 (the /8 prefix is 10.0.0.0/8)"),
        (yaml(global: nil, [nil, nil, "{ deny: [ 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 10.0.0.0/33 ] }"]),
         "f.yaml: vips[2].protection.deny[3]: length 33 is out of range 0–32 for IPv4"),
        (yaml(global: "{ allow: [ '2001:db8::/129' ] }"), "f.yaml: protection.allow[0]: length 129 is out of range 0–128 for IPv6"),
        (yaml(global: "{ allow: [ example.com ] }"),
         "f.yaml: protection.allow[0]: not an address: 'example.com' (write an IPv4 or IPv6 address, optionally with /length, like 10.0.0.0/8 or 2001:db8::/32)"),
        // A burst needs its rate, in the section's resolved view.
        (yaml(global: "{ new_flow_burst: 100 }"), "f.yaml: protection.new_flow_burst: new_flow_burst needs new_flows_per_second (0 or unset in this section)"),
        (yaml(global: "{ packets_per_second: 0, packet_burst: 100 }"), "f.yaml: protection.packet_burst: packet_burst needs packets_per_second (0 or unset in this section)"),
        (yaml(global: nil, [nil, "{ new_flow_burst: 100 }", nil]),
         "f.yaml: vips[1].protection.new_flow_burst: new_flow_burst needs new_flows_per_second (0 or unset for this VIP, here and in the global protection section)"),
        (yaml(global: "{ packets_per_second: 1000 }", ["{ packets_per_second: 0, packet_burst: 5 }", nil, nil]),
         "f.yaml: vips[0].protection.packet_burst: packet_burst needs packets_per_second (0 or unset for this VIP, here and in the global protection section)"),
        // Duplicates in one list (the same prefix however written), and one prefix both denied and allowed.
        (yaml(global: "{ deny: [ 192.0.2.1, 10.0.0.0/8, 192.0.2.1/32 ] }"), "f.yaml: protection.deny[2]: duplicate prefix 192.0.2.1/32 (also protection.deny[0])"),
        (yaml(global: nil, [nil, nil, "{ allow: [ 'fd00::/8', 'FD00::/8' ] }"]), "f.yaml: vips[2].protection.allow[1]: duplicate prefix fd00::/8 (also vips[2].protection.allow[0])"),
        (yaml(global: "{ deny: [ 192.0.2.0/24, 10.0.0.0/8 ], allow: [ 172.16.0.0/12, 10.0.0.0/8 ] }"),
         "f.yaml: protection.allow[1]: 10.0.0.0/8 is also in deny (protection.deny[1]); a source is either denied or allowed here"),
        (yaml(global: nil, ["{ deny: [ '2001:db8::/32' ], allow: [ '2001:db8:0::/32' ] }", nil, nil]),
         "f.yaml: vips[0].protection.allow[0]: 2001:db8::/32 is also in deny (vips[0].protection.deny[0]); a source is either denied or allowed here"),
        // Protection inside a VIP entry is a VIP key now.
        (yaml(global: nil, [nil, "5", nil]), "f.yaml: vips[1].protection: expected a mapping (key: value lines)"),
    ]

    @Test("each bad protection section is refused with file, key path and reason", arguments: 0..<bad.count)
    func refused(_ i: Int) {
        let (text, want) = Self.bad[i]
        let got = Self.issues(text)
        #expect(got.contains(want), "got: \(got)")
    }

    @Test("a prefix in the global deny list and in a VIP's allow list is fine (the VIP exempts it)")
    func acrossSections() throws {
        let c = try ConfigLoader.parse(Self.yaml(global: "{ deny: [ 10.0.0.0/8 ] }", ["{ allow: [ 10.0.0.0/8 ] }", nil, nil]), file: "f.yaml")
        #expect(c.protection.defaults.deny == [Self.p("10.0.0.0/8")])
        #expect(c.protection.perVIP["10.100.0.1:80/tcp"]?.allow == [Self.p("10.0.0.0/8")])
    }

    @Test("more than 65,536 prefixes over all lists are refused naming the limit; 65,536 fit")
    func tooManyPrefixes() throws {
        func prefixes(_ first: Int, _ range: Range<Int>) -> String {
            "[ " + range.map { "\(first).\($0 >> 8 & 255).\($0 & 255).0/24" }.joined(separator: ", ") + " ]"
        }
        // 40,000 globally denied and 25,536 allowed by one VIP: exactly the limit.
        let fits = Self.yaml(global: "{ deny: \(prefixes(11, 0..<40_000)) }", ["{ allow: \(prefixes(10, 0..<25_536)) }", nil, nil])
        let c = try ConfigLoader.parse(fits, file: "f.yaml")
        #expect(c.protection.defaults.deny.count == 40_000 && c.protection.perVIP["10.100.0.1:80/tcp"]?.allow.count == 25_536)
        let over = Self.yaml(global: "{ deny: \(prefixes(11, 0..<40_000)) }",
                             ["{ allow: \(prefixes(10, 0..<25_536)) }", nil, "{ deny: [ 192.0.2.1 ] }"])
        #expect(Self.issues(over) == ["f.yaml: vips[2].protection.deny: 65537 prefixes in the deny and allow lists together; at most 65536 (the data plane's prefix table)"])
    }

    @Test("the shared (cluster) config carries VIP sections and a global one, validated the same way")
    func shared() throws {
        let text = """
            protection: { deny: [ 192.0.2.0/24 ], packets_per_second: 500 }
            vips:
              - { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2 } ], protection: { new_flows_per_second: 10, allow: [ 192.0.2.7 ] } }
              - { address: 10.100.0.2, port: 80, backends: [ { address: 10.0.4.2 } ] }

            """
        let s = try ConfigLoader.parseShared(text, file: "s.yaml")
        #expect(s.hasGlobalProtection)
        #expect(s.protection.defaults.deny == [Self.p("192.0.2.0/24")] && s.protection.defaults.packetsPerSecond == 500)
        #expect(Array(s.protection.perVIP.keys) == ["10.100.0.1:80/tcp"])
        #expect(s.protection.perVIP["10.100.0.1:80/tcp"]?.allow == [Self.p("192.0.2.7/32")])
        #expect(s.protection.limits(forVIP: "10.100.0.1:80/tcp").newFlowsPerSecond == 10)
        #expect(s.protection.limits(forVIP: "10.100.0.2:80/tcp").newFlowsPerSecond == 0)
        let none = try ConfigLoader.parseShared("vips: [ { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2 } ] } ]\n", file: "s.yaml")
        #expect(!none.hasGlobalProtection && none.protection == ProtectionConfig())
        // The same errors as in a node file, with the shared file's key paths.
        let bad = "protection: { source_prefix_v4: 8 }\nvips: [ { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2 } ], protection: { new_flow_burst: 3, deny: [ 10.0.0.1/8 ] } } ]\n"
        do throws(ConfigError) {
            _ = try ConfigLoader.parseShared(bad, file: "s.yaml")
            Issue.record("accepted")
        } catch {
            #expect(error.issues.map(\.description) == [
                "s.yaml: protection.source_prefix_v4: 8 is out of range 16...32",
                "s.yaml: vips[0].protection.deny[0]: host bits set: 10.0.0.1/8 (the /8 prefix is 10.0.0.0/8)",
                "s.yaml: vips[0].protection.new_flow_burst: new_flow_burst needs new_flows_per_second (0 or unset for this VIP, here and in the global protection section)",
            ])
        }
    }

    @Test("a node running a shared config: VIP sections from it; the global one from it when it has one, else the node file's")
    func runningShared() throws {
        let node = try ConfigLoader.parse(Self.node + "cluster: { endpoints: [ 'http://10.0.9.1:2379' ], node_name: lb1 }\nprotection: { deny: [ 198.51.100.0/24 ], new_flows_per_second: 7 }\n", file: "f.yaml")
        let vips = "vips: [ { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2 } ], protection: { packets_per_second: 9 } } ]\n"
        let withoutGlobal = node.running(try ConfigLoader.parseShared(vips, file: "s.yaml"))
        #expect(withoutGlobal.protection.defaults == node.protection.defaults)
        var want = SourceLimits()
        want.newFlowsPerSecond = 7; want.newFlowBurst = 7; want.packetsPerSecond = 9; want.packetBurst = 9
        #expect(withoutGlobal.protection.limits(forVIP: "10.100.0.1:80/tcp") == want)
        let withGlobal = node.running(try ConfigLoader.parseShared("protection: { deny: [ 203.0.113.0/24 ] }\n" + vips, file: "s.yaml"))
        #expect(withGlobal.protection.defaults.deny == [Self.p("203.0.113.0/24")] && withGlobal.protection.defaults.newFlowsPerSecond == nil)
        want.newFlowsPerSecond = 0; want.newFlowBurst = 0
        #expect(withGlobal.protection.limits(forVIP: "10.100.0.1:80/tcp") == want)
        // A later shared config without VIP sections takes them away again.
        let later = withGlobal.running(try ConfigLoader.parseShared("vips: [ { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2 } ] } ]\n", file: "s.yaml"))
        #expect(later.protection.perVIP.isEmpty)
    }

    @Test("a node file with a cluster section keeps its global protection section")
    func clusterNode() throws {
        let text = Self.node + "cluster: { endpoints: [ 'http://10.0.9.1:2379' ], node_name: lb1 }\nprotection: { new_flows_per_second: 7 }\n"
        let c = try ConfigLoader.parse(text, file: "f.yaml")
        #expect(c.protection.limits(forVIP: "10.100.0.1:80/tcp").newFlowsPerSecond == 7)
        #expect(c.running(SharedConfig(hashSeed: nil, vips: [])).protection == c.protection)
    }
}
