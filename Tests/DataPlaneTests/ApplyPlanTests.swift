import BPF
import Config
import CXdplb
import DataPlane
import Foundation
import NetAddress
import Testing

@Suite("apply: refused before any write, counters of a reused id", .serialized)
struct ApplyPlanTests {
    /// Every backend entry, VIP entry and ring id as bytes, read from the kernel.
    func snapshot(_ bed: TestBed) throws -> [[UInt8]] {
        let maps = bed.balancer.maps
        var out: [[UInt8]] = []
        for id in 1..<UInt32(XDPLB_MAX_BACKENDS) {
            let b = try maps.backends.lookup(id, as: xdplb_backend.self) ?? xdplb_backend()
            out.append(withUnsafeBytes(of: b) { Array($0) })
        }
        var vips: [[UInt8]] = []
        for k in try maps.vips.keys(as: xdplb_vip_key.self) {
            let m = try #require(try maps.vips.lookup(k, as: xdplb_vip_meta.self))
            let ring = try maps.rings.lookup(m.vip_index, as: UInt32.self) ?? 0
            vips.append(withUnsafeBytes(of: k) { Array($0) } + withUnsafeBytes(of: m) { Array($0) } + withUnsafeBytes(of: ring) { Array($0) })
        }
        return out + vips.sorted { $0.lexicographicallyPrecedes($1) }
    }

    @Test("more new backends than free ids: refused with the numbers, the maps unchanged")
    func backendIdsRefused() throws {
        let bed = try TestBed()
        let running = bed.controller.backendIDs.count   // 5 in the lab config
        let limit = Int(XDPLB_MAX_BACKENDS) - 1
        let before = try snapshot(bed)
        // A valid config on its own (16,379 ≤ 16,383), but the running backends hold their ids until it is applied.
        let fresh = (0..<(Int(XDPLB_MAX_BACKENDS) - running)).map { i in
            BackendConfig(address: IPAddress("10.1.\(i / 250).\(i % 250 + 1)")!)
        }
        var c = Lab.config()
        c.vips = [VIPConfig(address: Lab.vip4, port: 80, proto: .tcp, ringSize: 65537, backends: fresh)]
        do {
            try bed.controller.apply(c)
            Issue.record("an apply needing \(fresh.count) new ids with \(limit - running) free succeeded")
        } catch {
            #expect(error.errno == ENOSPC)
            #expect(error.description.contains("refused: \(fresh.count) new backends need ids but only \(limit - running) of \(limit) are free"), "\(error)")
        }
        #expect(try snapshot(bed) == before, "nothing was written")
        #expect(bed.controller.backendIDs.count == running)
    }

    @Test("a backend given a freed id starts at zero packets, not its predecessor's")
    func reusedIdCountersZeroed() throws {
        let bed = try TestBed()
        let maps = bed.balancer.maps
        let gone = Lab.backends4[2]
        let id = try #require(bed.controller.backendIDs[gone])
        // As if `gone` had forwarded 92 packets.
        var traffic = xdplb_counter()
        traffic.packets = 92
        traffic.bytes = 9200
        try maps.backendStats.updatePerCPU(id, traffic)
        #expect(try CounterReader.sum(maps.backendStats, index: id).packets > 0)
        var c = Lab.config()
        for i in c.vips.indices { c.vips[i].backends.removeAll { $0.address == gone } }
        try bed.apply(c)
        let newcomer = IPAddress("10.0.4.9")!
        c.vips[0].backends.append(BackendConfig(address: newcomer))
        try bed.apply(c)
        // Fresh ids go first (a previous ring may still name the freed one); the freed
        // id is taken only once no fresh one is left.
        let got = try #require(bed.controller.backendIDs[newcomer])
        #expect(got != id, "the newcomer took a fresh id, not the one just freed")
        // Whichever id a backend gets starts at zero: dirty every id not in use, then add one more.
        let inUse = Set(bed.controller.backendIDs.values)
        for i in UInt32(1)..<UInt32(XDPLB_MAX_BACKENDS) where !inUse.contains(i) { try maps.backendStats.updatePerCPU(i, traffic) }
        let another = IPAddress("10.0.4.10")!
        c.vips[0].backends.append(BackendConfig(address: another))
        try bed.apply(c)
        let v = try CounterReader.sum(maps.backendStats, index: try #require(bed.controller.backendIDs[another]))
        #expect(v.packets == 0 && v.bytes == 0, "\(v)")
    }
    @Test("the same config again writes nothing; a down change on the same config still reaches the rings, and back")
    func sameConfigFastPath() throws {
        let bed = try TestBed()
        let c = bed.config
        let before = try snapshot(bed)
        let ids = bed.controller.backendIDs
        let report = try bed.controller.apply(c, nextHops: bed.nextHops)
        #expect(report.vipsRemoved.isEmpty && report.ringsReplaced.isEmpty && report.backendsWritten == 0, "\(report)")
        #expect(try snapshot(bed) == before, "a no-op apply wrote nothing")
        #expect(bed.controller.backendIDs == ids)

        // The same config with one backend down: the VIPs that use it get new rings without it.
        let gone = Lab.backends4[1]
        try bed.apply(c, down: [gone])
        #expect(try snapshot(bed) != before)
        #expect(bed.controller.backendIDs == ids, "a down backend keeps its id")
        let goneID = try #require(ids[gone])
        /// The backend ids the kernel ring of `vip` names, read from the kernel.
        func ringIDs(_ vip: VIPConfig) throws -> Set<UInt32> {
            let state = try #require(bed.controller.vips[vip.name])
            let ring = try #require(try RingContents.read(bed.balancer.maps.rings, index: state.index))
            return Set(ring.slots.indices.map { ring.backendID($0) })
        }
        let users = c.vips.filter { $0.backends.contains { $0.address == gone } }
        #expect(!users.isEmpty)
        for vip in users { #expect(try !ringIDs(vip).contains(goneID), "\(vip.name) still picks \(gone)") }
        // Down everywhere: once its rings are in, its entry is no longer PRESENT.
        let downEntry = try #require(try bed.balancer.maps.backends.lookup(goneID, as: xdplb_backend.self))
        #expect(downEntry.flags & UInt32(XDPLB_BACKEND_F_PRESENT) == 0, "\(downEntry.flags)")
        // And up again: every VIP picks from the same backends as at the start; only
        // that backend's entry is written again.
        let up = try bed.apply(c)
        #expect(up.backendsWritten == 1, "\(up)")
        #expect(bed.controller.backendIDs == ids)
        for vip in users { #expect(try ringIDs(vip).contains(goneID), "\(vip.name) picks \(gone) again") }
        #expect(try snapshot(bed).prefix(Int(XDPLB_MAX_BACKENDS) - 1) == before.prefix(Int(XDPLB_MAX_BACKENDS) - 1), "backend entries as at the start")
    }
}
