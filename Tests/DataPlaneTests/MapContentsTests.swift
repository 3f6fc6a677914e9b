import BPF
import Config
import CXdplb
import DataPlane
import Maglev
import NetAddress
import Testing

@Suite("config round-trips into the maps", .serialized)
struct MapContentsTests {
    @Test("VIPs, backends, rings and node config read back from the kernel equal the config")
    func roundTrip() throws {
        let bed = try TestBed()
        let maps = bed.balancer.maps
        let cfg = try #require(try maps.config.lookup(UInt32(0), as: xdplb_node_cfg.self))
        #expect(cfg.hash_seed == Lab.seed && Int(cfg.path_mtu) == Lab.pathMTU && cfg.abi_version == UInt32(XDPLB_ABI_VERSION))
        #expect(cfg.ct_mask == maps.conntrack.info.maxEntries - 1, "ct_mask matches the conntrack map")
        // VIPs: one key per configured VIP, with the hash-mode flag.
        let keys = try maps.vips.keys(as: xdplb_vip_key.self)
        #expect(keys.count == Lab.config().vips.count)
        for v in Lab.config().vips {
            let k = vipKey(v)
            let meta = try #require(try maps.vips.lookup(k, as: xdplb_vip_meta.self), "\(v.name) missing")
            #expect((meta.flags & UInt32(XDPLB_VIP_F_SRC_IP_HASH) != 0) == (v.hash == .sourceIP))
            // The ring: the head (M, tag), then every slot's backend id equal to the Swift table's.
            let state = try #require(bed.controller.vips[v.name])
            #expect(state.index == meta.vip_index)
            #expect(meta.ring_size == UInt32(state.ring?.size ?? 0), "the meta carries the ring's size")
            guard let table = state.rebuiltTable() else {
                #expect(try maps.rings.lookup(meta.vip_index, as: UInt32.self) == nil, "empty VIP must have no ring")
                continue
            }
            let innerID = try #require(try maps.rings.lookup(meta.vip_index, as: UInt32.self))
            let ring = try BPFMap.open(id: innerID, name: "ring")
            #expect(ring.info.maxEntries == UInt32(1 + (v.ringSize + 3) / 4), "4 slots per 8-byte element")
            #expect(ring.info.valueSize == 8)
            let contents = try RingContents.read(ring)
            #expect(contents.size == UInt32(v.ringSize) && contents.tag == meta.ring_tag)
            try expectRingParity(contents, table, ids: bed.controller.backendIDs)
        }
        // Backends: address, family flag, present, next hop.
        for (addr, id) in bed.controller.backendIDs {
            let b = try #require(try maps.backends.lookup(id, as: xdplb_backend.self))
            let bytes = withUnsafeBytes(of: b.addr) { Array($0) }
            #expect(bytes == addr.paddedBytes)
            #expect((b.flags & UInt32(XDPLB_BACKEND_F_IPV6) != 0) == addr.isV6)
            #expect(b.flags & UInt32(XDPLB_BACKEND_F_PRESENT) != 0 && b.flags & UInt32(XDPLB_BACKEND_F_NEXTHOP) != 0)
            #expect(b.gen != 0 && b.nh_ifindex == Lab.loopbackIfindex)
        }
    }

    @Test("a VIP removed from the config leaves the maps; its backends too")
    func removal() throws {
        let bed = try TestBed()
        var c = Lab.config()
        c.vips.removeAll { $0.address == Lab.vip6 }
        c.vips[0].backends.removeAll { $0.address.isV6 }
        let oldIDs = Lab.backends6.compactMap { bed.controller.backendIDs[$0] }
        #expect(oldIDs.count == 2)
        try bed.apply(c)
        #expect(try bed.balancer.maps.vips.keys(as: xdplb_vip_key.self).count == c.vips.count)
        #expect(Set(bed.controller.backendIDs.keys) == Set(Lab.backends4))
        for id in oldIDs {
            let e = try #require(try bed.balancer.maps.backends.lookup(id, as: xdplb_backend.self))
            #expect(e.flags == 0 && e.gen == 0, "removed backend's entry is cleared")
        }
        let addrs = try bed.balancer.maps.vipAddrs.keys(as: xdplb_vip_addr_key.self)
        #expect(addrs.count == Set(c.vips.map(\.address)).count)
    }

    @Test("a controller adopting the maps keeps backend ids and VIP slots")
    func adopt() throws {
        let bed = try TestBed()
        let other = DataPlaneController(maps: bed.balancer.maps)
        let found = try other.adopt()
        #expect(found.backends == bed.controller.backendIDs.count && found.vips == Lab.config().vips.count)
        try other.apply(Lab.config(), nextHops: bed.nextHops)
        #expect(other.backendIDs == bed.controller.backendIDs)
        for (name, s) in bed.controller.vips { #expect(other.vips[name]?.index == s.index) }
    }

    @Test("maps of another layout (pins of an older xdplb) are refused with what differs, before anything loads")
    func incompatiblePinsRefused() throws {
        let bed = try TestBed()
        // The VIP hash map where the conntrack array belongs: type and sizes differ.
        do {
            _ = try Balancer(lruSize: 4096, reusing: [XDPLB_MAP_CT: bed.balancer.maps.vips])
            Issue.record("a conntrack map of the wrong layout was accepted")
        } catch {
            #expect(error.description.contains("reuse pinned map 'xdplb_ct'"))
            #expect(error.description.contains("xdplb down"))
        }
    }
}

/// Every slot of `ring` holds the id of the backend the Swift table puts there, tagged with the ring's tag.
func expectRingParity(_ ring: RingContents, _ table: MaglevTable, ids: [IPAddress: UInt32],
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(ring.slots.count == table.size, sourceLocation: sourceLocation)
    let want = table.backends.map { IPAddress($0.identity).flatMap { ids[$0] } ?? 0 }
    var bad = 0
    for (s, b) in table.slots.enumerated() {
        let id = b < 0 ? 0 : want[Int(b)]
        if ring.backendID(s) != id || UInt32(ring.slots[s]) >> UInt32(XDPLB_RING_ID_BITS) != ring.tag {
            bad += 1
            if bad <= 3 { Issue.record("slot \(s): ring \(ring.slots[s]), table id \(id) tag \(ring.tag)", sourceLocation: sourceLocation) }
        }
    }
    #expect(bad == 0, "\(bad) of \(table.size) slots differ", sourceLocation: sourceLocation)
}

@Test("the config's limits are the data plane's (bpf/xdplb_abi.h)")
func configLimitsMatchTheABI() {
    #expect(ConfigLoader.maxVIPs == Int(XDPLB_MAX_VIPS))
    #expect(ConfigLoader.maxBackends == Int(XDPLB_MAX_BACKENDS) - 1)
    #expect(MaglevTable.maxBackends <= ConfigLoader.maxBackends)
}
