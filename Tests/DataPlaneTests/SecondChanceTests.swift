import BPF
import Config
import CXdplb
import DataPlane
import Foundation
import Maglev
import NetAddress
import Packets
import Testing

/// Second chance through the real program: the previous ring, the GRE key
/// naming the second hop (bpf/xdplb_abi.h 4b), conntrack keeping it.
@Suite("second chance: previous ring and GRE key", .serialized)
struct SecondChanceTests {
    static let added4 = IPAddress("10.0.4.9")!
    static let added6 = IPAddress("fd00:4::9")!

    /// The lab config without the two added backends (before), and with them (after).
    static func configs(secondChanceMs: Int = VIPConfig.defaultSecondChanceMs) -> (before: XdplbConfig, after: XdplbConfig) {
        var after = Lab.config()
        for i in after.vips.indices where after.vips[i].address == Lab.vip4 || after.vips[i].address == Lab.vip6 && after.vips[i].port == 443 {
            after.vips[i].backends += [BackendConfig(address: added4), BackendConfig(address: added6)]
            after.vips[i].secondChanceMs = secondChanceMs
        }
        var before = Lab.config()
        for i in before.vips.indices { before.vips[i].secondChanceMs = secondChanceMs }
        return (before, after)
    }

    /// A test bed that ran `before`, then `after` (the change).
    static func changed(secondChanceMs: Int = VIPConfig.defaultSecondChanceMs) throws -> (bed: TestBed, before: XdplbConfig) {
        let (before, after) = configs(secondChanceMs: secondChanceMs)
        let bed = try TestBed(config: before)
        // Next hops for the added backends too (TestBed made them for `before`'s).
        for a in [added4, added6] { bed.nextHops[a] = NextHop(ifindex: Lab.loopbackIfindex, destinationMAC: Lab.gatewayMAC, sourceMAC: Lab.nodeMAC) }
        try bed.apply(after)
        return (bed, before)
    }

    /// The exact frame for `frame` sent to `backend` with the second hop `hop` in the GRE key.
    static func keyed(_ frame: [UInt8], backend: IPAddress, flowHash: UInt32, hop: IPAddress) -> [UInt8] {
        let plain = Frames.encapsulated(frame, backend: backend, flowHash: flowHash)
        let l2 = Frames.l2Length(frame)
        let inner = Array(frame[l2...])
        let innerV6 = inner[0] >> 4 == 6
        let tos = innerV6 ? UInt8((UInt16(inner[0]) << 8 | UInt16(inner[1])) >> 4 & 0xff) : inner[1]
        let k = SecondHop.key(for: hop)
        let gre: [UInt8] = [0x20, 0x00] + (innerV6 ? [0x86, 0xdd] : [0x08, 0x00])
            + [UInt8(k >> 24), UInt8(k >> 16 & 0xff), UInt8(k >> 8 & 0xff), UInt8(k & 0xff)]
        let outer = backend.isV6
            ? PacketBuilder.ipv6(src: Lab.encapV6, dst: backend, nextHeader: 47, payload: gre + inner, trafficClass: tos,
                                 flowLabel: flowHash & 0xfffff, hopLimit: 64)
            : PacketBuilder.ipv4(src: Lab.encapV4, dst: backend, proto: 47, payload: gre + inner, tos: tos, ttl: 64, id: 0,
                                 flagsAndOffset: 0x4000)
        let out = PacketBuilder.ethernet(dst: Lab.gatewayMAC, src: Lab.nodeMAC, etherType: PacketBuilder.etherType(for: backend), payload: outer)
        precondition(out.count == plain.count + 4)
        return out
    }

    struct Moved { var sport: UInt16; var now: IPAddress; var was: IPAddress }

    /// Flows of `client` to the VIP whose backend the change moved (now != was), by sport.
    static func moved(_ client: IPAddress, _ before: XdplbConfig, _ after: XdplbConfig, range: Range<UInt16> = 20000..<24000) -> [Moved] {
        let vip = client.isV6 ? Lab.vip6 : Lab.vip4, port: UInt16 = client.isV6 ? 443 : 80
        let probe = FlowTuple(src: client, dst: vip, sport: 1, dport: port, proto: 6)
        guard let va = FlowPicker.vip(for: probe, in: after), let vb = FlowPicker.vip(for: probe, in: before),
              let ta = try? MaglevTable(backends: va.maglevBackends(), size: va.ringSize),
              let tb = try? MaglevTable(backends: vb.maglevBackends(), size: vb.ringSize) else { return [] }
        return range.compactMap { sp in
            let f = FlowTuple(src: client, dst: vip, sport: sp, dport: port, proto: 6)
            guard let n = FlowPicker.backend(for: f, vip: va, table: ta, seed: Lab.seed).flatMap({ IPAddress($0.identity) }),
                  let w = FlowPicker.backend(for: f, vip: vb, table: tb, seed: Lab.seed).flatMap({ IPAddress($0.identity) }),
                  n != w else { return nil }
            return Moved(sport: sp, now: n, was: w)
        }
    }

    @Test("a non-SYN packet that misses conntrack carries the previous ring's backend in the GRE key: exact bytes, 4in4 to 6in6, v4 address and v6 hop id keys")
    func keyedBytes() throws {
        let (bed, before) = try Self.changed()
        var kinds: Set<String> = []
        for client in [Lab.client4, Lab.client6] {
            let vip = client.isV6 ? Lab.vip6 : Lab.vip4, port: UInt16 = client.isV6 ? 443 : 80
            // One flow per (outer family, key family) combination.
            var seen: Set<String> = []
            for m in Self.moved(client, before, bed.config) {
                let kind = "\(client.isV6 ? 6 : 4)in\(m.now.isV6 ? 6 : 4) key \(m.was.isV6 ? "v6 id" : "v4")"
                guard !seen.contains(kind) else { continue }
                seen.insert(kind)
                let frame = Frames.tcp(client, m.sport, vip, port, flags: .ack)
                let c0 = try bed.counters()
                let r = try bed.run(frame)
                let flow = FlowTuple(src: client, dst: vip, sport: m.sport, dport: port, proto: 6)
                let want = Self.keyed(frame, backend: m.now, flowHash: FlowHash.hash(flow, sourceOnly: false, seed: Lab.seed), hop: m.was)
                #expect(r.action == .tx)
                #expect(r.output == want, "\(kind): \(hexDiff(r.output, want))")
                let d = delta(c0, try bed.counters())
                #expect(d["ct_miss"] == 1 && d["new_flow"] == 1 && d["second_hop"] == 1, "\(kind): \(d)")
                kinds.insert(kind)
            }
        }
        #expect(kinds.isSuperset(of: ["4in4 key v4", "4in4 key v6 id", "6in6 key v4", "6in6 key v6 id", "4in6 key v4", "6in4 key v6 id"]), "\(kinds.sorted())")
    }

    @Test("the v6 hop id is the ABI's function: known answers")
    func hopIDKnownAnswers() {
        // h = w0*0x9E3779B1 ^ w1*0x85EBCA77 ^ w2*0xC2B2AE3D ^ w3*0x27D4EB2F; h ^= h>>15; h ^= h>>7; & 0xffffff
        func model(_ a: IPAddress) -> UInt32 {
            let b: [UInt64] = a.bytes.map(UInt64.init)
            var w: [UInt64] = []
            for i in 0..<4 {
                let hi: UInt64 = b[i * 4] << 24 | b[i * 4 + 1] << 16
                w.append(hi | b[i * 4 + 2] << 8 | b[i * 4 + 3])
            }
            let m: [UInt64] = [0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F]
            var h: UInt64 = 0
            for i in 0..<4 { h ^= (w[i] * m[i]) & 0xffff_ffff }
            h ^= h >> 15
            h ^= h >> 7
            h &= 0xffffff
            return UInt32(h == 0 ? 1 : h)
        }
        for a in ["fd00:4::2", "fd00:4::9", "2001:db8::1", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"].map({ IPAddress($0)! }) {
            #expect(SecondHop.hopID(v6: a) == model(a), "\(a)")
            #expect(SecondHop.key(for: a) >> 24 == 0)
        }
        #expect(SecondHop.key(for: IPAddress("10.0.4.2")!) == 0x0a00_0402)
        #expect(SecondHop.describe(key: 0xffff_ffff) == "handed on (no further hop)")
    }

    @Test("conntrack keeps the second hop: the next packet of the flow hits and carries the same key")
    func conntrackKeepsHop() throws {
        let (bed, before) = try Self.changed()
        let m = try #require(Self.moved(Lab.client4, before, bed.config).first)
        let frame = Frames.tcp(Lab.client4, m.sport, Lab.vip4, 80, flags: .ack)
        let first = try bed.run(frame)
        let entry = try #require(try bed.conntrack.lookup(ctKey(Lab.client4, m.sport, Lab.vip4, 80)))
        #expect(entry.backend_id & UInt32(XDPLB_CT_ID_MASK) == bed.controller.backendIDs[m.now])
        #expect(entry.backend_id >> UInt32(XDPLB_CT_HOP_SHIFT) == bed.controller.backendIDs[m.was])
        let c0 = try bed.counters()
        let second = try bed.run(frame)
        #expect(second.output == first.output)
        let d = delta(c0, try bed.counters())
        #expect(d["ct_hit"] == 1 && d["second_hop"] == 1 && d["new_flow"] == nil, "\(d)")
    }

    @Test("no key: SYNs, flows the change did not move, no previous ring, second_chance off, after the time is up")
    func noKey() throws {
        let (bed, before) = try Self.changed()
        let m = try #require(Self.moved(Lab.client4, before, bed.config).first)
        let flowOf = { (sp: UInt16) in FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: sp, dport: 80, proto: 6) }
        func plain(_ bed: TestBed, _ frame: [UInt8], _ sp: UInt16, _ what: String) throws {
            let c0 = try bed.counters()
            let r = try bed.run(frame)
            let backend = try #require(bed.expectedBackend(flowOf(sp)))
            let want = Frames.encapsulated(frame, backend: backend, flowHash: FlowHash.hash(flowOf(sp), sourceOnly: false, seed: Lab.seed))
            #expect(r.output == want, "\(what): \(hexDiff(r.output, want))")
            #expect(delta(c0, try bed.counters())["second_hop"] == nil, "\(what)")
        }
        // A SYN of a moved flow.
        try plain(bed, Frames.tcp(Lab.client4, m.sport, Lab.vip4, 80, flags: .syn), m.sport, "SYN of a moved flow")
        // A flow the change did not move.
        let movedSports = Set(Self.moved(Lab.client4, before, bed.config, range: 30000..<30100).map(\.sport))
        let stay = try #require((UInt16(30000)..<30100).first { !movedSports.contains($0) })
        try plain(bed, Frames.tcp(Lab.client4, stay, Lab.vip4, 80, flags: .ack), stay, "ACK of a flow that stayed")
        // The time is up: the previous ring is dropped, a moved flow's ACK has no key.
        let m2 = try #require(Self.moved(Lab.client4, before, bed.config).dropFirst().first)
        #expect(bed.controller.vips[Lab.config().vips[0].name]?.previousRingUntil != nil)
        let dropped = try bed.controller.expirePreviousRings(now: Date().addingTimeInterval(601))
        #expect(dropped.contains("10.100.0.1:80/tcp"))
        #expect(try bed.controller.liveRingID(bed.balancer.maps.ringsPrev, bed.controller.vips["10.100.0.1:80/tcp"]!.index) == nil)
        try plain(bed, Frames.tcp(Lab.client4, m2.sport, Lab.vip4, 80, flags: .ack), m2.sport, "ACK after the time is up")

        // No previous ring: the first apply.
        let fresh = try TestBed()
        try plain(fresh, Frames.tcp(Lab.client4, m.sport, Lab.vip4, 80, flags: .ack), m.sport, "ACK with no previous ring")
        // second_chance: off.
        let (off, _) = try Self.changed(secondChanceMs: 0)
        #expect(off.controller.vips["10.100.0.1:80/tcp"]?.previousRingUntil == nil)
        try plain(off, Frames.tcp(Lab.client4, m.sport, Lab.vip4, 80, flags: .ack), m.sport, "ACK with second_chance off")
    }

    @Test("the second hop must still be PRESENT (configured, healthy or draining): a backend that is not is never named")
    func absentHopNotNamed() throws {
        let (bed, before) = try Self.changed()
        let m = try #require(Self.moved(Lab.client4, before, bed.config).first { !$0.was.isV6 })
        // The previous ring still names it, but its entry lost PRESENT (as when it goes down everywhere).
        let id = try #require(bed.controller.backendIDs[m.was])
        var e = try #require(try bed.balancer.maps.backends.lookup(id, as: xdplb_backend.self))
        e.flags &= ~UInt32(XDPLB_BACKEND_F_PRESENT)
        try bed.balancer.maps.backends.update(id, e)
        let frame = Frames.tcp(Lab.client4, m.sport, Lab.vip4, 80, flags: .ack)
        let c0 = try bed.counters()
        let r = try bed.run(frame)
        let flow = FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: m.sport, dport: 80, proto: 6)
        let want = Frames.encapsulated(frame, backend: m.now, flowHash: FlowHash.hash(flow, sourceOnly: false, seed: Lab.seed))
        #expect(r.output == want, "\(hexDiff(r.output, want))")
        #expect(delta(c0, try bed.counters())["second_hop"] == nil)
        // ... and conntrack remembers no hop for it.
        let entry = try #require(try bed.conntrack.lookup(ctKey(Lab.client4, m.sport, Lab.vip4, 80)))
        #expect(entry.backend_id >> UInt32(XDPLB_CT_HOP_SHIFT) == 0)
    }

    @Test("a change that leaves the table as it was keeps the previous ring of the real change")
    func sameTableKeepsPrevious() throws {
        let (bed, before) = try Self.changed()
        let until = try #require(bed.controller.vips["10.100.0.1:80/tcp"]?.previousRingUntil)
        // Re-applying the same config (and a change elsewhere) must not replace the previous ring.
        var c = bed.config
        c.vips[1].backends.removeLast()
        try bed.apply(c)
        #expect(bed.controller.vips["10.100.0.1:80/tcp"]?.previousRingUntil == until)
        let m = try #require(Self.moved(Lab.client4, before, bed.config).first)
        let c0 = try bed.counters()
        _ = try bed.run(Frames.tcp(Lab.client4, m.sport, Lab.vip4, 80, flags: .ack))
        #expect(delta(c0, try bed.counters())["second_hop"] == 1)
    }

    @Test("a ring rewritten in place (the VIP has a previous ring of its size) first gives its slots to the previous ring: same maps, exact slots, and a moved flow's ACK carries the hop of the ring before")
    func inPlaceKeepsPrevious() throws {
        let (bed, _) = try Self.changed()
        let name = "10.100.0.1:80/tcp", maps = bed.balancer.maps
        let index = try #require(bed.controller.vips[name]).index
        let currentID = try #require(try maps.rings.lookup(index, as: UInt32.self))
        let previousID = try #require(try maps.ringsPrev.lookup(index, as: UInt32.self))
        let middle = bed.config
        let ringBefore = try #require(try RingContents.read(maps.rings, index: index))
        // Another table of the same size: a weight change.
        var third = middle
        let b = try #require(third.vips[0].backends.firstIndex { $0.address == Self.added4 })
        third.vips[0].backends[b].weight = 300
        try bed.apply(third)
        #expect(try maps.rings.lookup(index, as: UInt32.self) == currentID, "the ring map stays")
        #expect(try maps.ringsPrev.lookup(index, as: UInt32.self) == previousID, "the previous ring map stays")
        let previous = try #require(try RingContents.read(maps.ringsPrev, index: index))
        #expect(previous.slots == ringBefore.slots, "the previous ring holds the slots the current one had")
        let now = try #require(try RingContents.read(maps.rings, index: index))
        #expect(now.slots != ringBefore.slots && now.tag == ringBefore.tag)
        try expectRingParity(now, try #require(bed.controller.vips[name]?.rebuiltTable()), ids: bed.controller.backendIDs)
        // A flow the weight change moved: a non-SYN packet that misses conntrack names its backend before.
        let m = try #require(Self.moved(Lab.client4, middle, third).first)
        let frame = Frames.tcp(Lab.client4, m.sport, Lab.vip4, 80, flags: .ack)
        let flow = FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: m.sport, dport: 80, proto: 6)
        let r = try bed.run(frame)
        let want = Self.keyed(frame, backend: m.now, flowHash: FlowHash.hash(flow, sourceOnly: false, seed: Lab.seed), hop: m.was)
        #expect(r.output == want, "\(hexDiff(r.output, want))")
        // A backend going down (a health change) is rewritten in place too.
        let ringThird = now
        let report = try bed.apply(third, down: [Self.added4])
        #expect(report.ringsReplaced.contains(name) && report.ringsHandedOver == report.ringsReplaced.count,
                "the down backend's slots are handed over in each ring it is in, no Maglev build")
        #expect(try maps.rings.lookup(index, as: UInt32.self) == currentID)
        #expect(try RingContents.read(maps.ringsPrev, index: index)?.slots == ringThird.slots)
        let down = try #require(try RingContents.read(maps.rings, index: index))
        let downID = try #require(bed.controller.backendIDs[Self.added4])
        #expect(!(0..<down.slots.count).contains { down.backendID($0) == downID }, "the down backend is in no slot")
        try expectRingParity(down, try #require(bed.controller.vips[name]?.rebuiltTable()), ids: bed.controller.backendIDs)
    }

    @Test("second_chance off: a change of the same size rewrites the ring in place and no previous ring appears")
    func inPlaceWithoutSecondChance() throws {
        let (bed, _) = try Self.changed(secondChanceMs: 0)
        let name = "10.100.0.1:80/tcp", maps = bed.balancer.maps
        let index = try #require(bed.controller.vips[name]).index
        let currentID = try #require(try maps.rings.lookup(index, as: UInt32.self))
        try bed.apply(bed.config, down: [Self.added4])
        #expect(try maps.rings.lookup(index, as: UInt32.self) == currentID)
        #expect(try bed.controller.liveRingID(maps.ringsPrev, index) == nil)
        try expectRingParity(try #require(try RingContents.read(maps.rings, index: index)),
                             try #require(bed.controller.vips[name]?.rebuiltTable()), ids: bed.controller.backendIDs)
    }
}
