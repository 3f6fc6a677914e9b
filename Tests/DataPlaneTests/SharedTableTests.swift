import Config
import CXdplb
@testable import DataPlane
import Maglev
import NetAddress
import Testing

/// VIPs of one apply with the same backends (in any order), weights, ring size
/// and down set share one Maglev build: each still gets its own ring map,
/// holding exactly the table built from scratch for it.
@Suite("VIPs with the same backend list share one Maglev build per apply", .serialized)
struct SharedTableTests {
    static let pool = (0..<10).map { IPAddress("10.0.9.\($0 + 2)")! }

    static func backends(_ members: [Int], weight: (Int) -> UInt32 = { 100 * UInt32(1 + $0 % 3) }) -> [BackendConfig] {
        members.map { BackendConfig(address: pool[$0], weight: weight($0)) }
    }

    /// web:80 and web:443 (the same list, given in another order), web:8080
    /// (the same backends, other weights), api:80 (the same list, another ring
    /// size) and db:5432 (another list).
    static func config() -> XdplbConfig {
        var c = Lab.config()
        let web = IPAddress("10.100.3.1")!, api = IPAddress("10.100.3.2")!, db = IPAddress("10.100.3.3")!
        c.vips = [
            VIPConfig(address: web, port: 80, proto: .tcp, ringSize: 4099, backends: backends(Array(0..<8))),
            VIPConfig(address: web, port: 443, proto: .tcp, ringSize: 4099, backends: backends(Array((0..<8).reversed()))),
            VIPConfig(address: web, port: 8080, proto: .tcp, ringSize: 4099, backends: backends(Array(0..<8), weight: { _ in 100 })),
            VIPConfig(address: api, port: 80, proto: .tcp, ringSize: 4111, backends: backends(Array(0..<8))),
            VIPConfig(address: db, port: 5432, proto: .tcp, ringSize: 4099, backends: backends(Array(2..<10))),
        ]
        return c
    }

    /// A new controller on the bed's maps, as an agent after a restart: it has
    /// no ring summaries, so its first apply builds every ring.
    static func restarted(_ bed: TestBed) throws -> DataPlaneController {
        let controller = DataPlaneController(maps: bed.balancer.maps)
        try controller.adopt()
        return controller
    }

    /// Every VIP's ring map holds the table built from scratch for its backends and down set.
    static func expectFreshRings(_ bed: TestBed, _ controller: DataPlaneController, _ c: XdplbConfig,
                                 down: Set<IPAddress>, _ what: String) throws {
        for v in c.vips {
            let state = try #require(controller.vips[v.name])
            let vipDown = Set(down.intersection(v.backends.map(\.address)).map(\.description))
            let fresh = try MaglevTable(backends: v.maglevBackends(), size: v.ringSize, down: vipDown)
            #expect(state.ring?.digest == fresh.digest, "\(what), \(v.name): digest")
            let ring = try #require(try RingContents.read(bed.balancer.maps.rings, index: state.index))
            try expectRingParity(ring, fresh, ids: controller.backendIDs)
        }
    }

    @Test("first apply: one build for web:80 and web:443, one each for the rest; later changes share it the same way")
    func sameListBuildsOnce() throws {
        let c = Self.config()
        let bed = try TestBed(config: c)
        // The bed applied the config once; a new controller on the same maps (as an agent after a
        // restart) has no summaries, so its apply builds every ring: a first apply.
        let controller = try Self.restarted(bed)
        let first = try controller.apply(c, nextHops: bed.nextHops)
        #expect(first.ringsReplaced.count == 5 && first.ringsSharingTable == 1 && first.ringsHandedOver == 0 && first.ringsBuilt == 4,
                "first apply: \(first.ringsReplaced.count) replaced, \(first.ringsSharingTable) shared")
        let web80 = try #require(controller.vips[c.vips[0].name]?.ring), web443 = try #require(controller.vips[c.vips[1].name]?.ring)
        #expect(web80.digest == web443.digest && web80.slotCounts == web443.slotCounts)
        #expect(controller.vips[c.vips[2].name]?.ring?.digest != web80.digest, "other weights: another table")
        #expect(controller.vips[c.vips[3].name]?.ring?.digest != web80.digest, "another ring size: another table")
        try Self.expectFreshRings(bed, controller, c, down: [], "first apply")

        // A backend of both web lists added: those two rebuilt, by one build.
        var grown = c
        for k in 0..<2 { grown.vips[k].backends.append(BackendConfig(address: Self.pool[9], weight: 100)) }
        let add = try controller.apply(grown, nextHops: bed.nextHops)
        #expect(Set(add.ringsReplaced) == [c.vips[0].name, c.vips[1].name] && add.ringsSharingTable == 1 && add.ringsHandedOver == 0
                    && add.ringsBuilt == 1,
                "add: \(add.ringsReplaced), \(add.ringsSharingTable) shared")
        try Self.expectFreshRings(bed, controller, grown, down: [], "backend added")

        // A backend of every list down: hand-overs from the rings in place, no build to share.
        let down: Set<IPAddress> = [Self.pool[3]]
        let handed = try controller.apply(grown, down: down, nextHops: bed.nextHops)
        #expect(handed.ringsReplaced.count == 5 && handed.ringsHandedOver == 5 && handed.ringsSharingTable == 0 && handed.ringsBuilt == 0,
                "down: \(handed.ringsReplaced.count) replaced, \(handed.ringsHandedOver) handed over, \(handed.ringsSharingTable) shared")
        try Self.expectFreshRings(bed, controller, grown, down: down, "backend down")

        // Down only for web:443 (per-VIP health): its down set differs from web:80's, so no sharing.
        let perVIP = try controller.apply(grown, downByVIP: [grown.vips[1].name: [Self.pool[5]]], nextHops: bed.nextHops)
        #expect(perVIP.ringsSharingTable == 0, "per-VIP down: \(perVIP.ringsSharingTable) shared")
        for (k, v) in grown.vips.enumerated() {
            let want: Set<String> = k == 1 ? [Self.pool[5].description] : []
            let fresh = try MaglevTable(backends: v.maglevBackends(), size: v.ringSize, down: want)
            #expect(controller.vips[v.name]?.ring?.digest == fresh.digest, "per-VIP down, \(v.name)")
        }
    }

    @Test("a first apply with backends down: the same down set shares the build, another one does not")
    func downSetsInTheKey() throws {
        let c = Self.config()
        let bed = try TestBed(config: c)
        let web80 = c.vips[0].name, web443 = c.vips[1].name
        // Down everywhere: web:80 and web:443 have the same down set.
        var controller = try Self.restarted(bed)
        let same = try controller.apply(c, down: [Self.pool[4]], nextHops: bed.nextHops)
        #expect(same.ringsSharingTable == 1 && same.ringsHandedOver == 0, "same down set: \(same.ringsSharingTable) shared")
        try Self.expectFreshRings(bed, controller, c, down: [Self.pool[4]], "same down set")
        // Down for web:443 only (per-VIP health), again as a first apply: two builds.
        controller = try Self.restarted(bed)
        let differ = try controller.apply(c, downByVIP: [web443: [Self.pool[4]]], nextHops: bed.nextHops)
        #expect(differ.ringsSharingTable == 0 && differ.ringsHandedOver == 0, "other down sets: \(differ.ringsSharingTable) shared")
        for v in c.vips {
            let down: Set<String> = v.name == web443 ? [Self.pool[4].description] : []
            let fresh = try MaglevTable(backends: v.maglevBackends(), size: v.ringSize, down: down)
            #expect(controller.vips[v.name]?.ring?.digest == fresh.digest, "other down sets, \(v.name)")
            let state = try #require(controller.vips[v.name])
            let ring = try #require(try RingContents.read(bed.balancer.maps.rings, index: state.index))
            try expectRingParity(ring, fresh, ids: controller.backendIDs)
        }
        #expect(controller.vips[web80]?.ring?.digest != controller.vips[web443]?.ring?.digest)
    }

    @Test("more VIPs than one chunk of rings: the VIPs of one list share a build even when the config lists them far apart")
    func sharingAcrossChunks() throws {
        var c = Lab.config()
        // 300 lists of the same 4 backends, told apart by their weights; VIP l is
        // list l's port 80 and VIP 300 + l its port 443: more than one chunk
        // (DataPlaneController.ringsPerFlush) of rings apart for l ≥ 212.
        func list(_ l: Int) -> [BackendConfig] {
            [1 + l % 10, 1 + l / 10 % 10, 1 + l / 100, 1].enumerated().map { BackendConfig(address: Self.pool[$0.offset], weight: UInt32($0.element)) }
        }
        let lists = 300
        #expect(2 * lists > DataPlaneController.ringsPerFlush)
        c.vips = (0..<2 * lists).map { i in
            let l = i % lists
            return VIPConfig(address: IPAddress("10.101.\(l / 256).\(l % 256)")!, port: i < lists ? 80 : 443, proto: .tcp,
                             ringSize: 251, backends: list(l))
        }
        let bed = try TestBed(config: c)
        // A new controller on the same maps builds every ring (a first apply).
        let controller = try Self.restarted(bed)
        let first = try controller.apply(c, nextHops: bed.nextHops)
        #expect(first.ringsReplaced.count == 2 * lists && first.ringsSharingTable == lists,
                "\(first.ringsReplaced.count) replaced, \(first.ringsSharingTable) shared")
        try Self.expectFreshRings(bed, controller, c, down: [], "\(2 * lists) VIPs")
    }

    @Test("a new VIP takes the table its group's members hand over: a backend down and web:8443 added, no Maglev build")
    func newMemberTakesTheHandOver() throws {
        let c = Self.config()
        let bed = try TestBed(config: c)
        let controller = try Self.restarted(bed)
        _ = try controller.apply(c, nextHops: bed.nextHops)
        var more = c
        more.vips.append(VIPConfig(address: c.vips[0].address, port: 8443, proto: .tcp, ringSize: 4099, backends: c.vips[0].backends))
        let down: Set<IPAddress> = [Self.pool[3]]
        let report = try controller.apply(more, down: down, nextHops: bed.nextHops)
        #expect(report.ringsReplaced.count == 6 && report.ringsHandedOver == 5 && report.ringsSharingTable == 1 && report.ringsBuilt == 0,
                "\(report.ringsReplaced.count) replaced, \(report.ringsHandedOver) handed over, \(report.ringsSharingTable) shared, \(report.ringsBuilt) built")
        try Self.expectFreshRings(bed, controller, more, down: down, "web:8443 added with a backend down")
    }

    @Test("a group's later rings are its first ring's slots with their own tag, the last partial word included")
    func laterMembersRetagged() throws {
        let backends = (0..<8).map { MaglevBackend(identity: Self.pool[$0].description, weight: 100 * UInt32(1 + $0 % 3)) }
        let ids = Dictionary(uniqueKeysWithValues: (0..<8).map { (Self.pool[$0], UInt32(9 + 7 * $0)) })
        // 4099 slots: the last word holds 3. Tags 1, 2, 3, 0; the third member lists the backends the other way round.
        let size = 4099
        let requests = (0..<4).map { k in
            RingRequest(name: "vip\(k)", backends: k == 2 ? backends.reversed() : backends, size: size, tag: UInt32(k + 1) & 3)
        }
        let results = RingWriter.build(requests) { identity in IPAddress(identity).flatMap { ids[$0] } ?? 0 }
        let table = try MaglevTable(backends: backends, size: size)
        for (k, result) in results.enumerated() {
            let built = try result.get()
            #expect(built.source == (k == 0 ? .maglevBuild : .sharedBuild), "ring \(k): \(built.source)")
            #expect(built.summary.digest == table.digest && built.summary.slotCounts == table.slotCounts(), "ring \(k): summary")
            let ring = try RingContents.read(try #require(built.map))
            #expect(ring.tag == requests[k].tag, "ring \(k): head tag \(ring.tag)")
            try expectRingParity(ring, table, ids: ids)
        }
    }

    @Test("a backend list is checked once per ring size: the same list at a bad size is still refused, naming its VIP")
    func listCheckedOncePerSize() throws {
        let c = Self.config()
        let bed = try TestBed(config: c)
        let controller = try Self.restarted(bed)
        // web:80's list again on two more ports: one at another good size, one at a size that is not prime.
        var bad = c
        bad.vips.append(VIPConfig(address: c.vips[0].address, port: 81, proto: .tcp, ringSize: 4111, backends: c.vips[0].backends))
        bad.vips.append(VIPConfig(address: c.vips[0].address, port: 82, proto: .tcp, ringSize: 4100, backends: c.vips[0].backends))
        let name = bad.vips[6].name
        do {
            try controller.validate(bad)
            Issue.record("a ring size that is not prime was accepted")
        } catch {
            #expect("\(error)".contains("build Maglev table for \(name)") && "\(error)".contains("4100"), "\(error)")
        }
        bad.vips.removeLast()
        try controller.validate(bad)
    }

    @Test("groups: same size, down set and backends with weights in any order; nothing else")
    func grouping() {
        func request(_ members: [Int], size: Int = 4099, weight: UInt32 = 1, down: Set<String> = []) -> RingRequest {
            RingRequest(name: "vip", backends: members.map { MaglevBackend(identity: Self.pool[$0].description, weight: weight) },
                        size: size, tag: 0, down: down)
        }
        let groups = RingWriter.sameTableGroups([
            request([0, 1, 2]), request([2, 1, 0]), request([0, 1, 2], size: 4111), request([0, 1, 2], weight: 2),
            request([0, 1]), request([0, 1, 2], down: ["10.0.9.3"]), request([1, 0, 2]), request([0, 1, 2, 3]),
        ])
        #expect(groups == [[0, 1, 6], [2], [3], [4], [5], [7]])
    }
}
