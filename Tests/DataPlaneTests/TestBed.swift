import BPF
import Config
import CXdplb
import DataPlane
import Foundation
import Maglev
import NetAddress
import Packets
import Testing

/// Addresses and MACs of the packet tests.
enum Lab {
    static let encapV4 = IPAddress("10.0.2.2")!
    static let encapV6 = IPAddress("fd00:2::2")!
    static let client4 = IPAddress("192.0.2.10")!
    static let client6 = IPAddress("2001:db8::10")!
    static let vip4 = IPAddress("10.100.0.1")!
    static let vip4udp = IPAddress("10.100.0.2")!
    static let vip4src = IPAddress("10.100.0.3")!
    static let vip4empty = IPAddress("10.100.0.9")!
    static let vip6 = IPAddress("fd00:100::1")!
    static let backends4 = ["10.0.4.2", "10.0.4.3", "10.0.4.4"].map { IPAddress($0)! }
    static let backends6 = ["fd00:4::2", "fd00:4::3"].map { IPAddress($0)! }
    static let nodeMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0xa1]     // the LB node's NIC
    static let routerMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]   // where client packets come from
    static let gatewayMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0xb1]  // next hop toward backends
    static let seed: UInt32 = 0x5eed
    static let pathMTU = 1500
    /// BPF_PROG_TEST_RUN's default ingress is loopback (ifindex 1): next hops there mean XDP_TX.
    static let loopbackIfindex: UInt32 = 1

    static func config(backendWeights: [IPAddress: UInt32] = [:], pathMTU: Int = Lab.pathMTU) -> XdplbConfig {
        var node = NodeConfig(interface: "lo")
        node.encapSourceV4 = encapV4
        node.encapSourceV6 = encapV6
        node.hashSeed = seed
        node.pathMTU = pathMTU
        func bs(_ a: [IPAddress]) -> [BackendConfig] { a.map { BackendConfig(address: $0, weight: backendWeights[$0] ?? 100) } }
        let mixed = bs(backends4 + backends6)
        return XdplbConfig(node: node, vips: [
            VIPConfig(address: vip4, port: 80, proto: .tcp, ringSize: 65537, backends: mixed),
            VIPConfig(address: vip4udp, port: 0, proto: .udp, ringSize: 4099, backends: bs(backends4)),
            VIPConfig(address: vip4src, port: 80, proto: .tcp, hash: .sourceIP, ringSize: 251, backends: bs(backends4)),
            VIPConfig(address: vip4empty, port: 80, proto: .tcp, ringSize: 251, backends: []),
            VIPConfig(address: vip6, port: 443, proto: .tcp, ringSize: 65537, backends: mixed),
            VIPConfig(address: vip6, port: 53, proto: .udp, ringSize: 251, backends: bs(backends6)),
        ])
    }
}

/// A privately loaded balancer (not attached, not pinned) filled from `Lab.config()`.
final class TestBed {
    let balancer: Balancer
    let controller: DataPlaneController
    var config: XdplbConfig
    var nextHops: [IPAddress: NextHop]

    init(config: XdplbConfig = Lab.config(), nextHopIfindex: UInt32 = Lab.loopbackIfindex) throws {
        balancer = try Balancer(lruSize: 4096)
        controller = DataPlaneController(maps: balancer.maps)
        self.config = config
        let all = config.vips.flatMap { $0.backends.map(\.address) }
        nextHops = Dictionary(all.map { ($0, NextHop(ifindex: nextHopIfindex, destinationMAC: Lab.gatewayMAC, sourceMAC: Lab.nodeMAC)) },
                              uniquingKeysWith: { a, _ in a })
        try controller.apply(config, nextHops: nextHops)
    }

    @discardableResult
    func apply(_ c: XdplbConfig, down: Set<IPAddress> = []) throws -> ApplyReport {
        config = c
        return try controller.apply(c, down: down, nextHops: nextHops)
    }

    func run(_ frame: [UInt8]) throws -> TestRunResult {
        try balancer.program.testRun(frame)
    }

    func counters() throws -> [String: CounterValue] { try CounterReader.global(balancer.maps) }

    /// The conntrack table, with the config's seed.
    var conntrack: Conntrack { Conntrack(map: balancer.maps.conntrack, seed: config.node.hashSeed) }

    /// Tables rebuilt from the controller's state, by VIP name and ring digest.
    private var tables: [String: (digest: String, table: MaglevTable)] = [:]

    /// The Maglev table in the ring of VIP `name` now (nil: no ring).
    func table(_ name: String) -> MaglevTable? {
        guard let state = controller.vips[name], let ring = state.ring else { return nil }
        if let t = tables[name], t.digest == ring.digest { return t.table }
        guard let t = state.rebuiltTable() else { return nil }
        tables[name] = (ring.digest, t)
        return t
    }

    /// The backend the Swift model picks for a new flow.
    func expectedBackend(_ flow: FlowTuple) -> IPAddress? {
        guard let vip = FlowPicker.vip(for: flow, in: config) else { return nil }
        let table = table(vip.name)
        return FlowPicker.backend(for: flow, vip: vip, table: table, seed: config.node.hashSeed).flatMap { IPAddress($0.identity) }
    }
}

/// Packets as clients send them to the LB node.
enum Frames {
    static func tcp(_ src: IPAddress, _ sport: UInt16, _ dst: IPAddress, _ dport: UInt16, flags: TCPFlags = .syn,
                    payload: [UInt8] = [], tos: UInt8 = 0, vlan: UInt16? = nil) -> [UInt8] {
        let seg = PacketBuilder.tcp(src: src, dst: dst, sport: sport, dport: dport, flags: flags, payload: payload)
        let ip = PacketBuilder.ip(src: src, dst: dst, proto: 6, payload: seg, tos: tos)
        return PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: PacketBuilder.etherType(for: src), vlan: vlan, payload: ip)
    }

    static func udp(_ src: IPAddress, _ sport: UInt16, _ dst: IPAddress, _ dport: UInt16, payload: [UInt8] = [1, 2, 3, 4]) -> [UInt8] {
        let dg = PacketBuilder.udp(src: src, dst: dst, sport: sport, dport: dport, payload: payload)
        let ip = PacketBuilder.ip(src: src, dst: dst, proto: 17, payload: dg)
        return PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: PacketBuilder.etherType(for: src), payload: ip)
    }

    /// The L2 header length of a frame this file built (14, or 18 with a VLAN tag).
    static func l2Length(_ f: [UInt8]) -> Int { f[12] == 0x81 && f[13] == 0x00 ? 18 : 14 }

    /// What the balancer must transmit for `frame` sent to `backend`: exact bytes.
    static func encapsulated(_ frame: [UInt8], backend: IPAddress, flowHash: UInt32) -> [UInt8] {
        let l2 = l2Length(frame)
        let inner = Array(frame[l2...])
        let innerV6 = inner[0] >> 4 == 6
        let tos = innerV6 ? UInt8((UInt16(inner[0]) << 8 | UInt16(inner[1])) >> 4 & 0xff) : inner[1]
        let gre = PacketBuilder.gre(innerEtherType: innerV6 ? 0x86dd : 0x0800)
        let outer = backend.isV6
            ? PacketBuilder.ipv6(src: Lab.encapV6, dst: backend, nextHeader: 47, payload: gre + inner, trafficClass: tos,
                                 flowLabel: flowHash & 0xfffff, hopLimit: 64)
            : PacketBuilder.ipv4(src: Lab.encapV4, dst: backend, proto: 47, payload: gre + inner, tos: tos, ttl: 64, id: 0,
                                 flagsAndOffset: 0x4000)
        let vlan: UInt16? = l2 == 18 ? UInt16(frame[14]) << 8 | UInt16(frame[15]) : nil
        return PacketBuilder.ethernet(dst: Lab.gatewayMAC, src: Lab.nodeMAC, etherType: PacketBuilder.etherType(for: backend),
                                      vlan: vlan, payload: outer)
    }

    /// The outer destination of an encapsulated frame (nil if it isn't GRE).
    static func outerDestination(_ f: [UInt8]) -> IPAddress? {
        let l2 = l2Length(f)
        guard f.count > l2 + 40 else { return nil }
        if f[l2] >> 4 == 4, f[l2 + 9] == 47 { return .v4(Array(f[(l2 + 16)..<(l2 + 20)])) }
        if f[l2] >> 4 == 6, f[l2 + 6] == 47 { return .v6(Array(f[(l2 + 24)..<(l2 + 40)])) }
        return nil
    }
}

/// Counter deltas between two readings, only the ones that moved.
func delta(_ before: [String: CounterValue], _ after: [String: CounterValue]) -> [String: UInt64] {
    var d: [String: UInt64] = [:]
    for (k, v) in after where v.packets != before[k]?.packets ?? 0 { d[k] = v.packets - (before[k]?.packets ?? 0) }
    return d
}

/// Hex dump diff for failure messages.
func hexDiff(_ got: [UInt8], _ want: [UInt8]) -> String {
    let first = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, want.count)
    return "lengths \(got.count)/\(want.count), first difference at byte \(first): got \(got.dropFirst(first).prefix(16).map { String(format: "%02x", $0) }.joined()) want \(want.dropFirst(first).prefix(16).map { String(format: "%02x", $0) }.joined())"
}
