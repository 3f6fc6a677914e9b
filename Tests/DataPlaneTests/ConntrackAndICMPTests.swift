import BPF
import CXdplb
import Config
import DataPlane
import Maglev
import NetAddress
import Packets
import Testing

@Suite("conntrack, MTU and ICMP through the real program", .serialized)
struct ConntrackAndICMPTests {
    let flow = FlowTuple(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, proto: 6)

    @Test("an established flow keeps its backend while that backend drains; new flows avoid it")
    func drainKeepsLRUFlows() throws {
        let bed = try TestBed()
        let syn = Frames.tcp(Lab.client4, 40000, Lab.vip4, 80)
        let r1 = try bed.run(syn)
        let owner = try #require(Frames.outerDestination(r1.output))
        try bed.apply(Lab.config(backendWeights: [owner: 0]))
        let before = try bed.counters()
        let ack = Frames.tcp(Lab.client4, 40000, Lab.vip4, 80, flags: .ack, payload: [1, 2, 3])
        let r2 = try bed.run(ack)
        #expect(Frames.outerDestination(r2.output) == owner)
        #expect(delta(before, try bed.counters())["ct_hit"] == 1)
        // The ring no longer has it: a SYN (and the Swift model) picks another backend.
        let r3 = try bed.run(syn)
        let newOwner = try #require(Frames.outerDestination(r3.output))
        #expect(newOwner != owner)
        #expect(newOwner == bed.expectedBackend(flow))
    }

    @Test("a flow whose backend is gone (down or removed) is re-hashed")
    func goneBackendRehashes() throws {
        let bed = try TestBed()
        let owner = try #require(Frames.outerDestination(try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80)).output))
        try bed.apply(Lab.config(), down: [owner])
        let before = try bed.counters()
        let r = try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80, flags: .ack))
        let now = try #require(Frames.outerDestination(r.output))
        #expect(now != owner && now == bed.expectedBackend(flow))
        let d = delta(before, try bed.counters())
        #expect(d["ct_miss"] == 1 && d["new_flow"] == 1)
    }

    @Test("a new flow is written to the bucket the Swift twin computes, and read back")
    func conntrackEntryWritten() throws {
        let bed = try TestBed()
        _ = try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80))
        let ct = bed.conntrack
        #expect(ct.buckets == 1024, "lru_size 4096 = 1024 buckets of 4")
        let all = try ct.entries()
        #expect(all.count == 1)
        let key = ctKey(Lab.client4, 40000, Lab.vip4, 80)
        #expect(ABI.bytesEqual(try #require(all.first).key, key))
        let entry = try #require(try ct.lookup(key))
        let backend = try #require(bed.expectedBackend(flow))
        #expect(entry.backend_id == bed.controller.backendIDs[backend])
        // The program put it in bucket hash & mask, as Conntrack.bucket(of:) says.
        let bucket = try #require(try ct.map.lookup(ct.bucket(of: key), as: xdplb_ct_bucket.self))
        #expect(Conntrack.entry(in: bucket, for: key) != nil)
    }

    /// Source ports of `n` flows Lab.client4 -> vip4:80 that share one conntrack bucket.
    func collidingPorts(_ ct: Conntrack, _ n: Int) -> [UInt16] {
        var byBucket: [UInt32: [UInt16]] = [:]
        for p in UInt16(20000)...UInt16(60000) {
            let b = ct.bucket(of: ctKey(Lab.client4, p, Lab.vip4, 80))
            byBucket[b, default: []].append(p)
            if byBucket[b]!.count == n { return byBucket[b]! }
        }
        return []
    }

    @Test("a full bucket: a SYN takes only an embryonic way, an ACK an embryonic way first, else the flow not used since the last sweep")
    func fullBucketEvictionOrder() throws {
        let bed = try TestBed()
        let ct = bed.conntrack
        let ports = collidingPorts(ct, 6)
        try #require(ports.count == 6)
        func send(_ p: UInt16, _ flags: TCPFlags) throws -> [String: UInt64] {
            let before = try bed.counters()
            let r = try bed.run(Frames.tcp(Lab.client4, p, Lab.vip4, 80, flags: flags))
            #expect(r.action == .tx, "every packet is forwarded, written to conntrack or not")
            return delta(before, try bed.counters())
        }
        func way(_ p: UInt16) throws -> xdplb_ct_way? {
            let key = ctKey(Lab.client4, p, Lab.vip4, 80)
            let b = try #require(try ct.map.lookup(ct.bucket(of: key), as: xdplb_ct_bucket.self))
            return Conntrack.ways(of: b).first { $0.flags & XDPLB_CT_F_USED != 0 && ABI.bytesEqual($0.key, key) }
        }
        func held(_ p: UInt16) throws -> Bool { try way(p) != nil }
        func established(_ p: UInt16) throws -> Bool { try (way(p)?.flags ?? 0) & XDPLB_CT_F_EST != 0 }
        // Four flows, each a SYN (writes an embryonic way) and an ACK (hits: established).
        for p in ports[0..<4] {
            _ = try send(p, .syn)
            #expect(try held(p) && !established(p), "a SYN writes an embryonic way")
            #expect(try send(p, .ack)["ct_hit"] == 1)
            #expect(try established(p), "its first hit marks the flow established")
        }
        // A fifth SYN finds only established ways: forwarded by the ring, not written.
        #expect(try send(ports[4], .syn)["new_flow"] == 1)
        #expect(try !held(ports[4]) && ports[0..<4].allSatisfy(held))
        // Its ACK misses and is written: the sweep clears every used mark and takes one way.
        #expect(try send(ports[4], .ack)["ct_miss"] == 1)
        #expect(try held(ports[4]) && !established(ports[4]))
        let survivors = try ports[0..<4].filter(held)
        #expect(survivors.count == 3)
        guard survivors.count == 3 else { return }
        // Two survivors are used again; the third is not.
        #expect(try send(survivors[0], .ack)["ct_hit"] == 1)
        #expect(try send(survivors[1], .ack)["ct_hit"] == 1)
        // A new SYN takes the embryonic way (ports[4]), not the idle established flow.
        _ = try send(ports[5], .syn)
        #expect(try held(ports[5]) && !held(ports[4]) && survivors.allSatisfy(held))
        #expect(try send(ports[5], .ack)["ct_hit"] == 1)
        // Now every way is established: ports[4]'s next packet takes the one not used since the sweep.
        #expect(try send(ports[4], .ack)["ct_miss"] == 1)
        #expect(try held(ports[4]) && held(ports[5]) && held(survivors[0]) && held(survivors[1]))
        #expect(try !held(survivors[2]))
        #expect(try send(survivors[2], .ack)["ct_miss"] == 1, "the evicted flow misses and is re-hashed")
    }

    @Test("a way in the middle of a write (odd seq) is a miss, and is not written over")
    func wayBeingWrittenIsAMiss() throws {
        let bed = try TestBed()
        let ct = bed.conntrack
        let key = ctKey(Lab.client4, 40000, Lab.vip4, 80)
        let backend = try #require(bed.expectedBackend(flow))
        var way = xdplb_ct_way()
        way.key = key
        way.entry.backend_id = try #require(bed.controller.backendIDs[backend])
        way.entry.gen = try #require(try bed.balancer.maps.backends.lookup(way.entry.backend_id, as: xdplb_backend.self)).gen
        way.flags = XDPLB_CT_F_USED | XDPLB_CT_F_REF
        way.seq = 7
        var bucket = xdplb_ct_bucket()
        bucket.ways.0 = way
        try ct.map.update(ct.bucket(of: key), bucket)
        let before = try bed.counters()
        let r = try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80, flags: .ack))
        #expect(r.action == .tx)
        let d = delta(before, try bed.counters())
        #expect(d["ct_miss"] == 1 && d["ct_hit"] == nil && d["new_flow"] == 1)
        let after = try #require(try ct.map.lookup(ct.bucket(of: key), as: xdplb_ct_bucket.self))
        #expect(ABI.bytesEqual(after, bucket), "the writer left the way being written alone")
        // Its seq even again (the write finished): now it is a hit.
        bucket.ways.0.seq = 8
        try ct.map.update(ct.bucket(of: key), bucket)
        let before2 = try bed.counters()
        _ = try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80, flags: .ack))
        #expect(delta(before2, try bed.counters())["ct_hit"] == 1)
    }

    // MARK: MTU

    func bigFrame(df: Bool) -> [UInt8] {
        let seg = PacketBuilder.tcp(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, flags: .ack, payload: Array(repeating: 0x5a, count: 1460))
        let ip = PacketBuilder.ipv4(src: Lab.client4, dst: Lab.vip4, proto: 6, payload: seg, id: 7, flagsAndOffset: df ? 0x4000 : 0)
        return PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800, payload: ip)
    }

    @Test("too big with DF: ICMP fragmentation-needed back to the client, exact bytes")
    func fragNeeded() throws {
        let bed = try TestBed()
        let f = bigFrame(df: true)
        let before = try bed.counters()
        let r = try bed.run(f)
        #expect(r.action == .tx)
        let quote = Array(f[14..<(14 + 128)])
        // Backend family decides the overhead; find which backend this flow has.
        let backend = try #require(bed.expectedBackend(flow))
        let mtu = UInt16(Lab.pathMTU - (backend.isV6 ? 44 : 24))
        let icmp = PacketBuilder.icmpv4(type: 3, code: 4, rest: [0, 0] + be16(mtu), body: quote)
        let ip = PacketBuilder.ipv4(src: Lab.vip4, dst: Lab.client4, proto: 1, payload: icmp, tos: 0, ttl: 64, id: 0, flagsAndOffset: 0)
        let want = PacketBuilder.ethernet(dst: Lab.routerMAC, src: Lab.nodeMAC, etherType: 0x0800, payload: ip)
        #expect(r.output == want, "\(hexDiff(r.output, want))")
        #expect(delta(before, try bed.counters())["tx_too_big"] == 1)
    }

    @Test("too big without DF: dropped and counted")
    func tooBigNoDF() throws {
        let bed = try TestBed()
        let before = try bed.counters()
        #expect(try bed.run(bigFrame(df: false)).action == .drop)
        #expect(delta(before, try bed.counters())["drop_too_big"] == 1)
    }

    @Test("too big from a source that can't take ICMP (multicast, broadcast, loopback, 0/8, ::, ff02::1): dropped, counted, no ICMP")
    func tooBigNonUnicastSource() throws {
        let bed = try TestBed()
        for src in ["224.0.0.1", "239.1.2.3", "255.255.255.255", "240.0.0.1", "127.0.0.1", "0.0.0.0", "0.1.2.3"] {
            let a = try #require(IPAddress(src))
            let seg = PacketBuilder.tcp(src: a, dst: Lab.vip4, sport: 40000, dport: 80, flags: .ack, payload: Array(repeating: 0x5a, count: 1460))
            let ip = PacketBuilder.ipv4(src: a, dst: Lab.vip4, proto: 6, payload: seg, id: 7, flagsAndOffset: 0x4000)
            let before = try bed.counters()
            let r = try bed.run(PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800, payload: ip))
            #expect(r.action == .drop, "\(src): \(String(describing: r.action))")
            let d = delta(before, try bed.counters())
            #expect(d["drop_too_big"] == 1 && d["tx_too_big"] == nil, "\(src): \(d)")
        }
        for src in ["ff02::1", "ff0e::1", "::", "::1", "::10.0.0.1"] {
            let a = try #require(IPAddress(src))
            let f = Frames.tcp(a, 40000, Lab.vip6, 443, flags: .ack, payload: Array(repeating: 0x33, count: 1440))
            let before = try bed.counters()
            #expect(try bed.run(f).action == .drop, "\(src)")
            let d = delta(before, try bed.counters())
            #expect(d["drop_too_big"] == 1 && d["tx_too_big"] == nil, "\(src): \(d)")
        }
        // A unicast source next to those edges still gets its ICMP.
        for src in ["1.0.0.1", "126.255.255.255", "128.0.0.1", "223.255.255.254"] {
            let a = try #require(IPAddress(src))
            let seg = PacketBuilder.tcp(src: a, dst: Lab.vip4, sport: 40000, dport: 80, flags: .ack, payload: Array(repeating: 0x5a, count: 1460))
            let ip = PacketBuilder.ipv4(src: a, dst: Lab.vip4, proto: 6, payload: seg, id: 7, flagsAndOffset: 0x4000)
            let before = try bed.counters()
            #expect(try bed.run(PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800, payload: ip)).action == .tx, "\(src)")
            #expect(delta(before, try bed.counters())["tx_too_big"] == 1, "\(src)")
        }
    }

    @Test("just fitting the path MTU is forwarded")
    func exactFit() throws {
        let bed = try TestBed()
        let backend = try #require(bed.expectedBackend(flow))
        let overhead = backend.isV6 ? 44 : 24
        let payload = Lab.pathMTU - overhead - 40
        let seg = PacketBuilder.tcp(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, flags: .ack, payload: Array(repeating: 1, count: payload))
        let f = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800,
                                       payload: PacketBuilder.ipv4(src: Lab.client4, dst: Lab.vip4, proto: 6, payload: seg))
        let r = try bed.run(f)
        #expect(r.action == .tx && r.output.count == f.count + overhead)
        let bigger = PacketBuilder.tcp(src: Lab.client4, dst: Lab.vip4, sport: 40000, dport: 80, flags: .ack, payload: Array(repeating: 1, count: payload + 1))
        let f2 = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800,
                                        payload: PacketBuilder.ipv4(src: Lab.client4, dst: Lab.vip4, proto: 6, payload: bigger))
        #expect(try bed.run(f2).action == .tx && (try bed.run(f2).output.count) < f2.count + overhead)  // the ICMP reply
    }

    @Test("too big IPv6: ICMPv6 packet-too-big back to the client, exact bytes")
    func packetTooBig() throws {
        let bed = try TestBed()
        let flow6 = FlowTuple(src: Lab.client6, dst: Lab.vip6, sport: 40000, dport: 443, proto: 6)
        let f = Frames.tcp(Lab.client6, 40000, Lab.vip6, 443, flags: .ack, payload: Array(repeating: 0x33, count: 1440))
        let r = try bed.run(f)
        #expect(r.action == .tx)
        let backend = try #require(bed.expectedBackend(flow6))
        let mtu = UInt32(Lab.pathMTU - (backend.isV6 ? 44 : 24))
        let icmp = PacketBuilder.icmpv6(src: Lab.vip6, dst: Lab.client6, type: 2, code: 0, rest: be32(mtu), body: Array(f[14..<(14 + 128)]))
        let ip = PacketBuilder.ipv6(src: Lab.vip6, dst: Lab.client6, nextHeader: 58, payload: icmp, trafficClass: 0, flowLabel: 0, hopLimit: 64)
        let want = PacketBuilder.ethernet(dst: Lab.routerMAC, src: Lab.nodeMAC, etherType: 0x86dd, payload: ip)
        #expect(r.output == want, "\(hexDiff(r.output, want))")
    }

    // MARK: ICMP errors about VIP flows

    @Test("ICMP frag-needed about a VIP flow goes to that flow's backend")
    func icmpErrorV4() throws {
        let bed = try TestBed()
        let owner = try #require(Frames.outerDestination(try bed.run(Frames.tcp(Lab.client4, 40000, Lab.vip4, 80)).output))
        // A router on the way back (VIP -> client, DSR) reports the reply too big.
        let reply = PacketBuilder.tcp(src: Lab.vip4, dst: Lab.client4, sport: 80, dport: 40000, flags: .ack, payload: Array(repeating: 9, count: 20))
        let quoted = Array(PacketBuilder.ipv4(src: Lab.vip4, dst: Lab.client4, proto: 6, payload: reply).prefix(28))
        let icmp = PacketBuilder.icmpv4(type: 3, code: 4, rest: [0, 0, 0x05, 0x00], body: quoted)
        let routerAddr = IPAddress("198.51.100.1")!
        let f = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800,
                                       payload: PacketBuilder.ipv4(src: routerAddr, dst: Lab.vip4, proto: 1, payload: icmp, tos: 0xc0))
        let before = try bed.counters()
        let r = try bed.run(f)
        #expect(r.action == .tx)
        #expect(r.output == Frames.encapsulated(f, backend: owner, flowHash: FlowHash.hash(flow, sourceOnly: false, seed: Lab.seed)))
        let d = delta(before, try bed.counters())
        #expect(d["icmp_fwd"] == 1 && d["fwd_tx"] == 1)
    }

    @Test("ICMPv6 packet-too-big about a VIP flow goes to that flow's backend")
    func icmpErrorV6() throws {
        let bed = try TestBed()
        let flow6 = FlowTuple(src: Lab.client6, dst: Lab.vip6, sport: 40000, dport: 443, proto: 6)
        let owner = try #require(bed.expectedBackend(flow6))
        let reply = PacketBuilder.tcp(src: Lab.vip6, dst: Lab.client6, sport: 443, dport: 40000, flags: .ack)
        let quoted = PacketBuilder.ipv6(src: Lab.vip6, dst: Lab.client6, nextHeader: 6, payload: reply)
        let routerAddr = IPAddress("2001:db8:ffff::1")!
        let icmp = PacketBuilder.icmpv6(src: routerAddr, dst: Lab.vip6, type: 2, code: 0, rest: be32(1280), body: quoted)
        let f = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x86dd,
                                       payload: PacketBuilder.ipv6(src: routerAddr, dst: Lab.vip6, nextHeader: 58, payload: icmp))
        let r = try bed.run(f)
        #expect(r.action == .tx)
        #expect(r.output == Frames.encapsulated(f, backend: owner, flowHash: FlowHash.hash(flow6, sourceOnly: false, seed: Lab.seed)))
    }

    @Test("ICMP error quoting a non-VIP flow passes")
    func icmpErrorOther() throws {
        let bed = try TestBed()
        let reply = PacketBuilder.tcp(src: Lab.vip4, dst: Lab.client4, sport: 22, dport: 40000, flags: .ack)
        let quoted = Array(PacketBuilder.ipv4(src: Lab.vip4, dst: Lab.client4, proto: 6, payload: reply).prefix(28))
        let icmp = PacketBuilder.icmpv4(type: 3, code: 3, body: quoted)
        let f = PacketBuilder.ethernet(dst: Lab.nodeMAC, src: Lab.routerMAC, etherType: 0x0800,
                                       payload: PacketBuilder.ipv4(src: IPAddress("198.51.100.1")!, dst: Lab.vip4, proto: 1, payload: icmp))
        let r = try bed.run(f)
        #expect(r.action == .pass && r.output == f)
    }
}

/// The conntrack key of a TCP flow.
func ctKey(_ src: IPAddress, _ sport: UInt16, _ dst: IPAddress, _ dport: UInt16) -> xdplb_flow_key {
    xdplb_flow_key(src: src, dst: dst, sport: sport, dport: dport, proto: 6)
}
