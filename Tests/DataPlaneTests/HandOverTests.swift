import Config
import CXdplb
import DataPlane
import Maglev
import NetAddress
import Testing

/// Health changes through the controller: the ring in place gets the down
/// backends' slots handed over (no Maglev build), and what it holds equals the
/// table built from scratch for the same down set.
@Suite("health changes hand slots over in the ring in place", .serialized)
struct HandOverTests {
    /// One VIP of 40 IPv4 backends with weights 100-400 and second chance on.
    static func config() -> XdplbConfig {
        var c = Lab.config()
        let backends = (0..<40).map { i in BackendConfig(address: IPAddress("10.0.7.\(i + 2)")!, weight: UInt32(100 * (1 + i % 4))) }
        c.vips = [VIPConfig(address: Lab.vip4, port: 80, proto: .tcp, ringSize: 65537, backends: backends)]
        return c
    }

    /// Where each of `flows` goes now, as the XDP program sends it (outer destination of its SYN).
    static func destinations(_ bed: TestBed, _ flows: [(IPAddress, UInt16)]) throws -> [IPAddress?] {
        try flows.map { src, sport in Frames.outerDestination(try bed.run(Frames.tcp(src, sport, Lab.vip4, 80)).output) }
    }

    @Test("30 random down/up steps: each a hand-over; ring, packets and flows that stay all as the model says")
    func randomHealthSteps() throws {
        let c = Self.config()
        let bed = try TestBed(config: c)
        let name = c.vips[0].name
        let addrs = c.vips[0].backends.map(\.address)
        var rng = Rand(state: 11)
        let flows = (0..<300).map { _ in (IPAddress.v4([198, 18] + rng.bytes(2)), UInt16(truncatingIfNeeded: rng.next() | 1024)) }
        var down: Set<IPAddress> = []
        var before = try Self.destinations(bed, flows)
        for step in 0..<30 {
            let a = addrs[rng.below(addrs.count)]
            if down.contains(a) { down.remove(a) } else { down.insert(a) }
            let report = try bed.apply(c, down: down)
            #expect(report.ringsReplaced == [name] && report.ringsHandedOver == 1, "step \(step): \(report.ringsReplaced) replaced, \(report.ringsHandedOver) handed over, \(down.count) down")
            let state = try #require(bed.controller.vips[name])
            let ring = try #require(try RingContents.read(bed.balancer.maps.rings, index: state.index))
            try expectRingParity(ring, try #require(state.rebuiltTable()), ids: bed.controller.backendIDs)
            let fresh = try MaglevTable(backends: c.vips[0].maglevBackends(), size: 65537, down: Set(down.map(\.description)))
            #expect(state.ring?.digest == fresh.digest, "step \(step): the summary's digest is the table of the same down set")
            let now = try Self.destinations(bed, flows)
            for (k, (was, got)) in zip(before, now).enumerated() {
                let want = bed.expectedBackend(FlowTuple(src: flows[k].0, dst: Lab.vip4, sport: flows[k].1, dport: 80, proto: 6))
                #expect(got == want, "step \(step), flow \(k): \(String(describing: got)) not the model's \(String(describing: want))")
                // A flow whose backend stays up keeps it, unless the backend that came back takes it.
                if let was, !down.contains(was), got != was {
                    #expect(!down.contains(a) && got == a, "step \(step), flow \(k) moved off up backend \(was) to \(String(describing: got))")
                }
            }
            before = now
        }
    }

    @Test("three VIPs sharing backends: after every health change each VIP's down set, digest and ring are those of the backends down now")
    func sharedBackendsAcrossVIPs() throws {
        var c = Lab.config()
        let pool = (0..<12).map { IPAddress("10.0.8.\($0 + 2)")! }
        func vip(_ last: UInt8, _ members: [Int]) -> VIPConfig {
            VIPConfig(address: IPAddress("10.100.2.\(last)")!, port: 80, proto: .tcp, ringSize: 4099,
                      backends: members.map { BackendConfig(address: pool[$0], weight: 100) })
        }
        c.vips = [vip(1, Array(0..<8)), vip(2, Array(4..<12)), vip(3, [0, 2, 4, 6, 8, 10])]
        let bed = try TestBed(config: c)
        var rng = Rand(state: 5)
        var down: Set<IPAddress> = []
        for step in 0..<25 {
            let a = pool[rng.below(pool.count)]
            if down.contains(a) { down.remove(a) } else { down.insert(a) }
            try bed.apply(c, down: down)
            for v in c.vips {
                let state = try #require(bed.controller.vips[v.name])
                let want = down.intersection(v.backends.map(\.address))
                #expect(state.down == want, "step \(step), \(v.name): down \(state.down), want \(want)")
                if want.count == v.backends.count {
                    #expect(state.ring == nil, "step \(step), \(v.name): every backend down, no ring")
                    continue
                }
                let fresh = try MaglevTable(backends: v.maglevBackends(), size: v.ringSize, down: Set(want.map(\.description)))
                #expect(state.ring?.digest == fresh.digest, "step \(step), \(v.name)")
                let ring = try #require(try RingContents.read(bed.balancer.maps.rings, index: state.index))
                try expectRingParity(ring, fresh, ids: bed.controller.backendIDs)
            }
        }
    }

    @Test("a controller that starts over on the same maps builds the same ring for the same down set")
    func rebuildAfterRestartIsTheSame() throws {
        let c = Self.config()
        let bed = try TestBed(config: c)
        let down: Set<IPAddress> = [c.vips[0].backends[3].address, c.vips[0].backends[17].address]
        try bed.apply(c, down: down)
        let name = c.vips[0].name
        let handed = try #require(bed.controller.vips[name]?.ring)
        // A new controller adopts the maps (as an agent after a restart) and has no summary: it builds.
        let again = DataPlaneController(maps: bed.balancer.maps)
        try again.adopt()
        let report = try again.apply(c, down: down, nextHops: bed.nextHops)
        #expect(report.ringsHandedOver == 0)
        let built = try #require(again.vips[name]?.ring)
        #expect(built.digest == handed.digest && built.slotCounts == handed.slotCounts && built.overlay == handed.overlay)
        let slot = try #require(again.vips[name]).index
        let ring = try #require(try RingContents.read(bed.balancer.maps.rings, index: slot))
        try expectRingParity(ring, try #require(again.vips[name]?.rebuiltTable()), ids: again.backendIDs)
        // Every backend down: no ring; one back: a ring again (built, there was none in place).
        let all = Set(c.vips[0].backends.map(\.address))
        let none = try again.apply(c, down: all, nextHops: bed.nextHops)
        #expect(none.ringsReplaced == [name] && again.vips[name]?.ring == nil)
        let one = try again.apply(c, down: all.subtracting([c.vips[0].backends[5].address]), nextHops: bed.nextHops)
        #expect(one.ringsHandedOver == 0 && again.vips[name]?.ring?.slotCounts[c.vips[0].backends[5].address.description] == 65537)
    }

    @Test("a weight change is a new table, not a hand-over")
    func weightChangeBuilds() throws {
        var c = Self.config()
        let bed = try TestBed(config: c)
        try bed.apply(c, down: [c.vips[0].backends[0].address])
        c.vips[0].backends[1].weight = 1000
        let report = try bed.apply(c, down: [c.vips[0].backends[0].address])
        #expect(report.ringsReplaced.count == 1 && report.ringsHandedOver == 0)
        let state = try #require(bed.controller.vips[c.vips[0].name])
        try expectRingParity(try #require(try RingContents.read(bed.balancer.maps.rings, index: state.index)),
                             try #require(state.rebuiltTable()), ids: bed.controller.backendIDs)
    }
}
