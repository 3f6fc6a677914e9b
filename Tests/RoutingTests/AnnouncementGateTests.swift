import Config
import Foundation
import Logging
import NetAddress
@testable import Routing
import Testing

/// A table in memory: the gate's logic without the kernel (the shell suite Tests/bgp
/// checks the real table and the router's routes).
final class MemoryGateTable: GateRouteTable, @unchecked Sendable {
    let lock = NSLock()
    var routes: Set<IPAddress> = []
    var writes: [String] = []
    init(_ r: Set<IPAddress> = []) { routes = r }
    func announced() throws -> Set<IPAddress> { lock.withLock { routes } }
    func announce(_ a: IPAddress) throws { lock.withLock { routes.insert(a); writes.append("+\(a)") } }
    func withdraw(_ a: IPAddress) throws { lock.withLock { routes.remove(a); writes.append("-\(a)") } }
}

@Suite("announcement gate")
struct AnnouncementGateTests {
    static let v4 = IPAddress("10.100.0.1")!
    static let v6 = IPAddress("fd00:100::1")!
    static func vip(_ name: String, _ a: IPAddress = v4, ring: Bool = true, failOpen: Bool = false) -> VIPGateInput {
        VIPGateInput(name: name, address: a, ringUsable: ring, failOpen: failOpen)
    }

    @Test("each condition withdraws, in order, with its reason")
    func reasons() {
        let v = Self.vip("10.100.0.1:80/tcp")
        let cases: [(NodeGateInput, VIPGateInput, BGPConfig.FailOpenPolicy, String)] = [
            (NodeGateInput(), v, .announce, "announced"),
            (NodeGateInput(stopping: true, attached: false, drained: true), v, .announce, "withdrawn: agent stopping"),
            (NodeGateInput(attached: false, drained: true), v, .announce, "withdrawn: program not attached"),
            (NodeGateInput(drained: true, converged: false), v, .announce, "withdrawn: node drained"),
            (NodeGateInput(converged: false, reconcileError: "x"), v, .announce, "withdrawn: health checks not converged"),
            (NodeGateInput(reconcileError: "map full"), Self.vip("a", ring: false), .announce, "withdrawn: last reconcile failed (map full)"),
            (NodeGateInput(), Self.vip("a", ring: false, failOpen: true), .withdraw, "withdrawn: no usable ring"),
            (NodeGateInput(), Self.vip("a", failOpen: true), .withdraw, "withdrawn: all backends down (fail_open: withdraw)"),
            (NodeGateInput(), Self.vip("a", failOpen: true), .announce, "announced"),
        ]
        for (n, v, p, want) in cases {
            #expect(AnnouncementGate.decide(v, node: n, failOpenPolicy: p).description == want)
        }
    }

    @Test("an address is announced while one of its VIPs is")
    func addressesAny() {
        let got = AnnouncementGate.addresses([(Self.v4, .announced), (Self.v4, .withdrawn(.noUsableRing)),
                                              (Self.v6, .withdrawn(.noUsableRing))])
        #expect(got == [Self.v4])
    }

    func announcer(_ table: MemoryGateTable, dir: String, failOpen: BGPConfig.FailOpenPolicy = .announce) throws -> Announcer {
        var b = BGPConfig(localASN: 65001, routerID: IPAddress("10.0.0.1")!, peers: [])
        b.failOpen = failOpen
        return try Announcer(bgp: b, stateDir: dir, table: table, logger: Logger(label: "test"))
    }

    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "xdplb-gate-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test("the announcer writes only differences, and drain persists across a restart")
    func announcerDiffsAndDrain() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = MemoryGateTable()
        let a = try announcer(t, dir: dir)
        #expect(!a.adoptedAtStart)
        let vips = [Self.vip("10.100.0.1:80/tcp"), Self.vip("10.100.0.1:7/tcp"), Self.vip("[fd00:100::1]:80/tcp", Self.v6)]
        a.update(vips: vips, node: NodeGateInput())
        a.update(vips: vips, node: NodeGateInput())
        #expect(t.routes == [Self.v4, Self.v6])
        #expect(t.writes.count == 2)
        try a.setDrained(true)
        a.update(vips: vips, node: NodeGateInput())
        #expect(t.routes.isEmpty)
        #expect(a.states["10.100.0.1:80/tcp"] == .withdrawn(.drained))
        // A new agent (restart): adopts nothing (drained), keeps the flag.
        let b = try announcer(t, dir: dir)
        #expect(b.drained)
        b.update(vips: vips, node: NodeGateInput())
        #expect(t.routes.isEmpty)
        try b.setDrained(false)
        b.update(vips: vips, node: NodeGateInput())
        #expect(t.routes == [Self.v4, Self.v6])
        // Restart with routes present: adopted, no write needed.
        let writes = t.writes.count
        let c = try announcer(t, dir: dir)
        #expect(c.adoptedAtStart)
        c.update(vips: vips, node: NodeGateInput())
        #expect(t.writes.count == writes)
    }

    @Test("the grace guard withdraws only after the heartbeat is older than the grace time")
    func graceGuard() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = MemoryGateTable([Self.v4, Self.v6])
        let a = try announcer(t, dir: dir)
        let now = Date()
        a.heartbeat(now: now)
        let g = GraceGuard(table: t, stateDir: dir, graceMs: 5000, logger: Logger(label: "test"), now: now)
        #expect(g.check(now: now.addingTimeInterval(4.9)).isEmpty)
        #expect(t.routes.count == 2)
        #expect(Set(g.check(now: now.addingTimeInterval(5.1))) == [Self.v4, Self.v6])
        #expect(t.routes.isEmpty)
        // A fresh heartbeat: the guard leaves the agent's new routes alone.
        t.routes = [Self.v4]
        a.heartbeat(now: now.addingTimeInterval(6))
        #expect(g.check(now: now.addingTimeInterval(7)).isEmpty)
        #expect(t.routes == [Self.v4])
        // A garbage heartbeat counts as none: stale from the guard's start.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: Announcer.heartbeatFile(dir)))
        #expect(g.check(now: now.addingTimeInterval(5.5)) == [Self.v4])
    }

    @Test("traffic stops only when nothing is announced and the counters are quiet")
    func trafficStopped() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = MemoryGateTable()
        let a = try announcer(t, dir: dir)
        let vips = [Self.vip("10.100.0.1:80/tcp")]
        a.update(vips: vips, node: NodeGateInput())
        let t0 = Date()
        a.observeTraffic(vipPackets: 10, now: t0)
        a.observeTraffic(vipPackets: 20, now: t0.addingTimeInterval(0.1))
        #expect(a.trafficStoppedSince(now: t0.addingTimeInterval(5)) == nil)   // still announced
        a.update(vips: vips, node: NodeGateInput(drained: true))
        a.observeTraffic(vipPackets: 20, now: t0.addingTimeInterval(0.6))
        #expect(a.trafficStoppedSince(now: t0.addingTimeInterval(0.9)) == nil)   // quiet 0.8 s < 1 s
        #expect(a.trafficStoppedSince(now: t0.addingTimeInterval(1.2)) != nil)
    }
}

@Suite("bird config and control protocol")
struct BirdTests {
    @Test("the generated config has one session per peer with BFD timers, the export filter and the table")
    func render() {
        var b = BGPConfig(localASN: 65001, routerID: IPAddress("10.97.1.2")!,
                          peers: [.init(address: IPAddress("10.97.1.1")!, asn: 65000, name: "rtr4"),
                                  .init(address: IPAddress("fd00:97:1::1")!, asn: 65000, bfd: false, name: "rtr6")])
        b.bfdIntervalMs = 50
        b.bfdMultiplier = 4
        b.communities = [BGPCommunity("65001:100")!]
        b.med = 10
        b.table = 123
        let text = BirdConfig.render(b, source: "node.yaml")
        for want in ["router id 10.97.1.2;", "kernel table 123;", "min rx interval 50 ms;", "multiplier 4;",
                     "protocol bgp rtr4 {", "neighbor 10.97.1.1 as 65000;", "local as 65001;", "bfd on;",
                     "ipv4 { import none; export filter xdplb_export; next hop self; };",
                     "protocol bgp rtr6 {", "neighbor fd00:97:1::1 as 65000;", "bfd off;",
                     "ipv6 { import none; export filter xdplb_export; next hop self; };",
                     "bgp_community.add((65001, 100));", "bgp_med = 10;", "hold time 9;", "keepalive time 3;"] {
            #expect(text.contains(want), "missing: \(want)")
        }
    }

    @Test("control-socket lines: codes, continuations and protocol rows")
    func parse() {
        #expect(BirdControl.split("0001 BIRD 2.0.12 ready.").code == "0001")
        #expect(BirdControl.split("1002-rtr4       BGP        ---        up     2026-12-02 08:00:01  Established").text.hasPrefix("rtr4"))
        #expect(BirdControl.split(" rtr6 BGP").code == nil)
        #expect(BirdControl.split("0000").code == "0000")
        let r = BirdControl.parseProtocol("rtr4       BGP        ---        up     2026-12-02 08:00:01  Established   ")
        #expect(r == .init(name: "rtr4", proto: "BGP", state: "up", since: "2026-12-02 08:00:01", info: "Established"))
        let s = BirdControl.parseProtocol("rtr6       BGP        ---        start  08:00:01.123  Active        Socket: Connection refused")
        #expect(s?.state == "start" && s?.since == "08:00:01.123" && s?.info == "Active Socket: Connection refused")
        #expect(BirdControl.parseProtocol("Name       Proto      Table      State  Since         Info") == nil)
    }

    @Test("a missing daemon is reported as not running, fast")
    func notRunning() {
        let c = BirdControl(socketPath: "/tmp/xdplb-no-such-bird-\(UUID().uuidString).ctl")
        #expect(throws: BirdControl.Failure.self) { try c.protocols() }
        do { _ = try c.protocols() } catch { #expect(error.description.hasPrefix("daemon not running")) }
    }
}
