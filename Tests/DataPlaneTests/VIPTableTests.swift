import BPF
import Config
import CXdplb
import DataPlane
import Maglev
import NetAddress
import Packets
import Testing

/// The VIP key of a configured VIP.
func vipKey(_ v: VIPConfig) -> xdplb_vip_key {
    xdplb_vip_key(address: v.address, port: v.port, proto: v.proto.number)
}

@Suite("the VIP table", .serialized)
struct VIPTableTests {
    func table(_ bed: TestBed) throws -> VIPTable { try VIPTable(map: bed.balancer.maps.vipTable) }

    /// Every configured VIP is in the table once, within its probe window, with the hash map's meta.
    func expectTableMatches(_ bed: TestBed, _ config: XdplbConfig) throws {
        let contents = try table(bed).contents()
        #expect(contents.count == config.vips.count)
        for v in config.vips {
            let key = vipKey(v)
            let found = contents.filter { ABI.bytesEqual($0.key, key) }
            #expect(found.count == 1, "\(v.name) once in the table")
            guard let slot = found.first else { continue }
            let distance = (slot.slot - VIPTable.home(key) + VIPTable.slots) % VIPTable.slots
            #expect(distance < VIPTable.probes, "\(v.name) sits \(distance) slots past its home")
            let meta = try #require(try bed.balancer.maps.vips.lookup(key, as: xdplb_vip_meta.self))
            #expect(ABI.bytesEqual(slot.meta, meta))
        }
    }

    @Test("every VIP is in the table within its probe window, with the hash map's meta")
    func roundTrip() throws {
        let bed = try TestBed()
        try expectTableMatches(bed, Lab.config())
    }

    @Test("removed VIPs leave the table; the others keep their slots")
    func removal() throws {
        let bed = try TestBed()
        let before = try table(bed).contents()
        var c = Lab.config()
        c.vips.removeAll { $0.address == Lab.vip6 }
        c.vips[0].backends.removeAll { $0.address.isV6 }
        try bed.apply(c)
        try expectTableMatches(bed, c)
        for s in try table(bed).contents() {
            #expect(before.contains { $0.slot == s.slot && ABI.bytesEqual($0.key, s.key) }, "a kept VIP moved")
        }
        // A removed VIP is no VIP any more: its packets pass.
        let r = try bed.run(Frames.tcp(Lab.client6, 40000, Lab.vip6, 443))
        #expect(r.action == .pass)
    }

    @Test("a ring change with the same VIPs rewrites only those VIPs' slots in place; an unknown key is refused")
    func inPlaceUpdate() throws {
        let bed = try TestBed()
        let config = Lab.config()
        let before = try table(bed).contents()
        // A backend down everywhere: the rings of its VIPs change (new tags), the VIP set does not.
        let down = try #require(config.vips.first { $0.backends.count > 1 }?.backends.first?.address)
        try bed.apply(config, down: [down])
        try expectTableMatches(bed, config)
        let after = try table(bed).contents()
        var rewritten = 0
        for s in after {
            let old = try #require(before.first { ABI.bytesEqual($0.key, s.key) }, "a VIP appeared")
            #expect(old.slot == s.slot, "a VIP moved")
            if !ABI.bytesEqual(old.meta, s.meta) { rewritten += 1 }
        }
        let changed = config.vips.filter { $0.backends.contains { $0.address == down } }.count
        #expect(rewritten == changed, "the VIPs with the down backend got a new ring tag, the others kept their meta")
        // A key the table does not hold: nothing is written, the caller syncs instead.
        let t = try table(bed)
        let stranger = xdplb_vip_key(address: IPAddress("203.0.113.77")!, port: 1, proto: 6)
        var meta = xdplb_vip_meta()
        meta.vip_index = 7
        let known = try #require(after.first)
        var bumped = known.meta
        bumped.ring_tag ^= 1
        #expect(t.update([known.key: bumped, stranger: meta]) == false)
        #expect(ABI.bytesEqual(t.slot(known.slot).meta, known.meta), "refused, yet written")
        #expect(t.update([known.key: bumped]) == true)
        #expect(ABI.bytesEqual(t.slot(known.slot).meta, bumped))
    }

    @Test("the program takes a stable slot's meta, and asks the hash map about a slot being written")
    func stableSlotIsUsedOddSlotFallsBack() throws {
        let bed = try TestBed()
        let config = Lab.config()
        let a = try #require(config.vips.first { $0.address == Lab.vip4 && $0.port == 80 })
        let b = try #require(config.vips.first { $0.address == Lab.vip4src })
        let aKey = vipKey(a)
        let slot = try #require(try table(bed).contents().first { ABI.bytesEqual($0.key, aKey) })
        let bMeta = try #require(try bed.balancer.maps.vips.lookup(vipKey(b), as: xdplb_vip_meta.self))
        // A flow of A whose backend differs between A's ring and B's (source-ip) ring.
        let bTable = bed.controller.vips[b.name]?.rebuiltTable()
        var chosen: (FlowTuple, IPAddress, IPAddress)?
        for sport in UInt16(40000)..<UInt16(40200) {
            let f = FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: sport, dport: 80, proto: 6)
            guard let viaA = bed.expectedBackend(f),
                  let viaB = FlowPicker.backend(for: f, vip: b, table: bTable, seed: Lab.seed).flatMap({ IPAddress($0.identity) })
            else { continue }
            if viaA != viaB { chosen = (f, viaA, viaB); break }
        }
        let (flow, viaA, viaB) = try #require(chosen)
        let syn = Frames.tcp(Lab.client4, flow.sport, Lab.vip4, 80)
        func forge(seq: UInt32) throws {
            var s = xdplb_vip_slot()
            s.key = aKey
            s.meta = bMeta
            s.seq = seq
            try bed.balancer.maps.vipTable.update(UInt32(slot.slot), s)
        }
        try forge(seq: 2)
        #expect(Frames.outerDestination(try bed.run(syn).output) == viaB, "a stable slot is what the program believes")
        try forge(seq: 3)
        #expect(Frames.outerDestination(try bed.run(syn).output) == viaA, "a slot being written sends the program to the hash map")
    }

    @Test("a meta whose ring size or tag is not the ring's (another ring swapped in since) still picks from the ring as it is")
    func staleRingSizeReadsTheRing() throws {
        let bed = try TestBed()
        let a = try #require(Lab.config().vips.first { $0.address == Lab.vip4 && $0.port == 80 })
        let key = vipKey(a)
        let slot = try #require(try table(bed).contents().first { ABI.bytesEqual($0.key, key) })
        #expect(slot.meta.ring_size == UInt32(a.ringSize))
        // Another size with another tag (a stale meta of the ring before), the right size with
        // another tag (a same-size ring swapped in), and no size at all: each reads the ring's head.
        for (stale, tag) in [(UInt32(65521), (slot.meta.ring_tag + 3) & 3), (UInt32(a.ringSize), (slot.meta.ring_tag + 1) & 3), (0, slot.meta.ring_tag)] {
            var s = xdplb_vip_slot()
            s.key = key
            s.meta = slot.meta
            s.meta.ring_size = stale
            s.meta.ring_tag = tag
            try bed.balancer.maps.vipTable.update(UInt32(slot.slot), s)
            var wrong = 0
            for sport in UInt16(41000)..<UInt16(41200) {
                let flow = FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: sport, dport: 80, proto: 6)
                let got = Frames.outerDestination(try bed.run(Frames.tcp(Lab.client4, sport, Lab.vip4, 80)).output)
                if got == nil || got != bed.expectedBackend(flow) { wrong += 1 }
            }
            #expect(wrong == 0, "meta ring size \(stale) tag \(tag): \(wrong) of 200 new flows left the model")
        }
    }

    @Test("4,096 VIPs (v4, v6, port 0): every one placed and forwarded; half removed: those pass, the rest byte-identical and forwarding")
    func manyVIPs() throws {
        var c = Lab.config()
        let v4 = Lab.backends4.map { BackendConfig(address: $0, weight: 100) }
        let v6 = Lab.backends6.map { BackendConfig(address: $0, weight: 100) }
        c.vips = (0..<Int(XDPLB_MAX_VIPS)).map { i in
            let six = i % 4 == 3
            let address = six ? IPAddress("fd00:200::\(String(i, radix: 16))")! : IPAddress("10.200.\(i / 200).\(i % 200 + 1)")!
            return VIPConfig(address: address, port: i % 8 == 5 ? 0 : UInt16(80 + i % 3), proto: .tcp,
                             ringSize: 251, backends: six ? v6 : v4)
        }
        #expect(c.vips.filter { $0.port == 0 }.count == 512 && c.vips.filter { $0.address.isV6 }.count == 1024)
        let bed = try TestBed(config: c)
        try expectTableMatches(bed, c)
        func send(_ v: VIPConfig) throws -> TestRunResult {
            let client = v.address.isV6 ? Lab.client6 : Lab.client4
            return try bed.run(Frames.tcp(client, 40000, v.address, v.port == 0 ? 8443 : v.port))
        }
        for v in c.vips {
            let r = try send(v)
            #expect(r.action == .tx, "\(v.name)")
        }
        // What the program reads of a VIP: its entry and every slot of its ring.
        func image(_ v: VIPConfig) throws -> [UInt8] {
            let meta = try #require(try bed.balancer.maps.vips.lookup(vipKey(v), as: xdplb_vip_meta.self))
            let ring = try #require(try RingContents.read(bed.balancer.maps.rings, index: meta.vip_index))
            return withUnsafeBytes(of: meta) { Array($0) } + ring.slots.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        }
        let kept = Array(c.vips.enumerated().filter { $0.offset % 2 == 0 }.map(\.element))
        let gone = Array(c.vips.enumerated().filter { $0.offset % 2 == 1 }.map(\.element))
        let before = try kept.map(image)
        var half = c
        half.vips = kept
        try bed.apply(half)
        try expectTableMatches(bed, half)
        #expect(try kept.map(image) == before, "the VIPs kept are byte-identical (entry and ring)")
        #expect(try bed.balancer.maps.vips.keys(as: xdplb_vip_key.self).count == kept.count)
        for v in kept { #expect(try send(v).action == .tx, "\(v.name)") }
        for v in gone { #expect(try send(v).action == .pass, "\(v.name)") }
    }

    // Issue #11, finding 8: these nine ports of one address share a probe window; the ninth
    // used to fail the apply with ENOSPC ("place VIP ... No space left on device").
    @Test("nine VIPs whose home slots collide all forward: the one that overflows its window is read from the hash map")
    func collidingVIPs() throws {
        let ports: [UInt16] = [7149, 10595, 11110, 15810, 17524, 18465, 19039, 20573, 23024]  // all home 4503 of 8,192
        var c = Lab.config()
        let backends = Lab.backends4.map { BackendConfig(address: $0, weight: 100) }
        let vip = IPAddress("10.100.0.1")!   // the address (also Lab.vip4, on port 80)
        let colliding = ports.map { VIPConfig(address: vip, port: $0, proto: .tcp, ringSize: 251, backends: backends) }
        let homes = colliding.map { VIPTable.home(vipKey($0)) }
        let span = (homes.max()! - homes.min()!)
        // Nine keys whose homes lie within one window of 8 slots cannot all sit in their windows.
        try #require(span < VIPTable.probes, "homes \(homes) do not share a window")
        c.vips += colliding
        let bed = try TestBed(config: c)
        let inTable = try table(bed).contents().filter { s in colliding.contains { ABI.bytesEqual(vipKey($0), s.key) } }
        #expect(inTable.count < colliding.count, "all nine placed: they did not collide")
        for v in colliding + [c.vips[0]] {
            let r = try bed.run(Frames.tcp(Lab.client4, 40000, v.address, v.port))
            #expect(r.action == .tx, "\(v.name)")
        }
        // A placed one removed: the overflowed one takes its slot, and all still forward.
        let placed = try #require(colliding.first { v in inTable.contains { ABI.bytesEqual($0.key, vipKey(v)) } })
        var fewer = c
        fewer.vips.removeAll { $0 == placed }
        try bed.apply(fewer)
        try expectTableMatches(bed, fewer)
        for v in colliding where v != placed {
            #expect(try bed.run(Frames.tcp(Lab.client4, 40000, v.address, v.port)).action == .tx, "\(v.name)")
        }
        #expect(try bed.run(Frames.tcp(Lab.client4, 40000, placed.address, placed.port)).action == .pass)
    }
}
