import BPF
import Config
import CXdplb
import Foundation
import Maglev
import NetAddress

/// What one `apply` changed and how long it took.
public struct ApplyReport: Sendable {
    /// VIPs whose ring was rebuilt and swapped in.
    public var ringsReplaced: [String] = []
    /// How many of those got a table from a Maglev build of their own.
    public var ringsBuilt = 0
    /// How many of those were made from the VIP's current ring by handing a
    /// down backend's slots over (or back), with no Maglev build.
    public var ringsHandedOver = 0
    /// How many were given the table built for another VIP of the same apply
    /// with the same backends, weights, ring size and down set (no build of their own).
    public var ringsSharingTable = 0
    /// VIPs removed.
    public var vipsRemoved: [String] = []
    /// Backends written (new or changed entry).
    public var backendsWritten = 0
    /// Backends removed from the data plane.
    public var backendsRemoved = 0
    /// What the protection write changed (``DataPlaneController/applyProtection(_:)``).
    public var protection = ProtectionReport()
    /// Wall time of the whole apply, in milliseconds.
    public var milliseconds = 0.0
    /// Where that time went, in milliseconds: the plan and checks, the backend
    /// entries, building and filling rings (every core), swapping them in
    /// with the VIP entries, and the rest (VIP table, address set, backends
    /// cleared).
    public var phases = ApplyPhases()
}

/// The parts of one apply's wall time, in milliseconds.
public struct ApplyPhases: Sendable {
    public var plan = 0.0
    public var backends = 0.0
    public var ringBuild = 0.0
    public var ringSwap = 0.0
    public var finish = 0.0

    /// `plan 1.2 backends 0.3 ...` (milliseconds, one decimal).
    public var description: String {
        [("plan", plan), ("backends", backends), ("build", ringBuild), ("swap", ringSwap), ("finish", finish)]
            .map { "\($0.0) \(String(format: "%.1f", $0.1))" }.joined(separator: " ")
    }
}

/// The state the controller wrote for one VIP.
public struct VIPState: Sendable {
    /// The VIP's configuration as applied.
    public var config: VIPConfig
    /// Its slot in the ring table and per-VIP stats.
    public var index: UInt32
    /// What is kept of the Maglev table in the ring (nil: no backend in the ring).
    public var ring: RingSummary?
    /// The tag of that ring (xdplb_abi.h), written into the VIP's meta.
    public var ringTag: UInt32
    /// Backends left out of the ring because they're down.
    public var down: Set<IPAddress>
    /// Until when the ring of before the last change stays (second chance); nil: none.
    public var previousRingUntil: Date?
}

/// Keeps the balancer's maps equal to a desired state: node settings, VIPs,
/// backends and Maglev rings. Rings are built aside in a new inner map and
/// swapped in with one map update, so no packet sees a half-written ring.
public final class DataPlaneController: @unchecked Sendable {
    /// The maps being managed.
    public let maps: BalancerMaps
    /// VIP state by VIP name (`addr:port/proto`).
    public private(set) var vips: [String: VIPState] = [:]
    /// The VIPs whose state has a backend down (a health change looks at these and the newly down ones only).
    var namesWithDown: Set<String> = []
    /// Node-local backend ids by address.
    public private(set) var backendIDs: [IPAddress: UInt32] = [:]
    private var backendEntries: [UInt32: xdplb_backend] = [:]
    /// Generation of each id's current owner; a new owner gets a new one, so stale LRU entries miss.
    private var backendGens: [UInt32: UInt32] = [:]
    private var generation: UInt32 = 1
    private var nextGeneration: UInt32 { generation &+= 1; return generation }

    /// The VIP table, mapped on first use.
    private var vipTable: VIPTable?
    /// What the last protection write left in the maps (nil: not known yet).
    var protectionWritten: ProtectionWritten?
    /// `xdplb_node_cfg.flags` (XDPLB_NODE_F_*), kept by `applyNode` and set by the protection write.
    var nodeFlags: UInt32 = 0

    /// A controller for `maps` (empty maps, or maps to be adopted with `adopt`).
    public init(maps: BalancerMaps) { self.maps = maps }

    deinit { settleSwaps() }

    /// Takes over the state a previous agent left in pinned maps: backend ids
    /// and generations, and VIP slots, so established flows keep their
    /// backend ids. Rings are rewritten by the next `apply` (atomically).
    /// - Returns: how many backends and VIPs were found.
    @discardableResult
    public func adopt() throws(BPFError) -> (backends: Int, vips: Int) {
        settleSwaps()
        var found = 0
        for id in 1..<UInt32(XDPLB_MAX_BACKENDS) {
            guard let e = try maps.backends.lookup(id, as: xdplb_backend.self), e.gen != 0 else { continue }
            let addr = ABI.address(e.addr, family: e.flags & UInt32(XDPLB_BACKEND_F_IPV6) != 0 ? 6 : 4)
            backendIDs[addr] = id
            backendIDsVersion += 1
            backendGens[id] = e.gen
            backendEntries[id] = e
            generation = max(generation, e.gen)
            found += 1
        }
        for key in try maps.vips.keys(as: xdplb_vip_key.self) {
            guard let meta = try maps.vips.lookup(key, as: xdplb_vip_meta.self) else { continue }
            adoptedVIPIndexes[key] = meta.vip_index
            usedVIPIndexes[meta.vip_index] = true
            // A previous ring a former agent left keeps a whole second-chance time from now.
            if try liveRingID(maps.ringsPrev, meta.vip_index) != nil { adoptedPreviousRings.insert(meta.vip_index) }
            // The next ring of the slot gets the tag after the one in place.
            if let head = try Self.ringHead(maps.rings, index: meta.vip_index) { ringTags[meta.vip_index] = head.tag }
        }
        return (found, adoptedVIPIndexes.count)
    }

    /// VIP slots found by `adopt`, used when a VIP is first written again.
    private var adoptedVIPIndexes: [xdplb_vip_key: UInt32] = [:]
    /// VIP slots that had a previous ring when adopted.
    private var adoptedPreviousRings: Set<UInt32> = []
    /// The tag of the last ring written to each VIP slot (kept when a VIP leaves, so the
    /// slot's next VIP gets another tag).
    private var ringTags: [UInt32: UInt32] = [:]

    /// The head of the ring in slot `index` of `rings`, if there is one.
    static func ringHead(_ rings: BPFMap, index: UInt32) throws(BPFError) -> xdplb_ring_head? {
        guard let id = try rings.lookup(index, as: UInt32.self) else { return nil }
        let ring = try BPFMap.open(id: id, name: "ring \(index)")
        return try ring.lookup(UInt32(0), as: xdplb_ring_head.self)
    }

    /// Writes the node settings (encap sources, seed, MTU) into the config map.
    public func applyNode(_ node: NodeConfig) throws(BPFError) {
        var cfg = xdplb_node_cfg()
        if let v4 = node.encapSourceV4 { cfg.encap_src_v4 = ABI.addr(v4).0 }
        if let v6 = node.encapSourceV6 { cfg.encap_src_v6 = ABI.addr(v6) }
        cfg.hash_seed = node.hashSeed
        cfg.path_mtu = UInt16(node.pathMTU)
        cfg.abi_version = UInt32(XDPLB_ABI_VERSION)
        cfg.ct_mask = maps.conntrack.info.maxEntries - 1
        cfg.flags = nodeFlags
        try maps.config.update(UInt32(0), cfg)
    }

    /// Makes the maps equal to `config` minus the backends in `down`.
    ///
    /// On return every ring and VIP entry is in the data plane. The kernel may
    /// still be waiting for programs that read a replaced ring (an RCU grace
    /// period); the controller's next write waits for that first.
    /// - Parameters:
    ///   - config: the desired configuration.
    ///   - down: backends that are unhealthy (left out of rings; their LRU flows are re-hashed).
    ///   - nextHops: resolved next hops per backend (missing: the program uses the FIB).
    /// - Returns: what changed and how long it took.
    @discardableResult
    public func apply(_ config: XdplbConfig, down: Set<IPAddress> = [], nextHops: [IPAddress: NextHop] = [:]) throws(BPFError) -> ApplyReport {
        try apply(config, down: .everywhere(down), nextHops: nextHops)
    }

    /// Makes the maps equal to `config` minus, per VIP (by name), the backends down for it.
    /// A backend's entry stays present (LRU flows keep it) while it is up for at least one VIP.
    @discardableResult
    public func apply(_ config: XdplbConfig, downByVIP: [String: Set<IPAddress>], nextHops: [IPAddress: NextHop] = [:]) throws(BPFError) -> ApplyReport {
        try apply(config, down: .perVIP(downByVIP), nextHops: nextHops)
    }

    private func apply(_ config: XdplbConfig, down: DownSets, nextHops: [IPAddress: NextHop]) throws(BPFError) -> ApplyReport {
        let start = DispatchTime.now().uptimeNanoseconds
        var report = ApplyReport()
        // Everything that can be refused is decided before the first write.
        let plan = try self.plan(config, down: down)
        // The last apply wrote every VIP and backend of this very index: the same VIP
        // names and backend addresses, each with its id, none left to remove.
        let sameIndex = appliedIndex === plan.index
        appliedIndex = nil   // set again once this apply has written every VIP
        // The last apply's swaps end their wait (overlapped with this plan) before anything is written.
        settleSwaps()
        // A failed apply leaves no swap in flight.
        var succeeded = false
        defer { if !succeeded { settleSwaps() } }
        var mark = DispatchTime.now().uptimeNanoseconds
        /// Milliseconds since the last call (or the plan's end).
        func lap() -> Double {
            let now = DispatchTime.now().uptimeNanoseconds
            defer { mark = now }
            return Double(now - mark) / 1e6
        }
        report.phases.plan = Double(mark - start) / 1e6
        pendingRings = []
        pendingVIPs = []
        pendingPrevious = []
        try applyNode(config.node)
        let index = plan.index
        // Backends down for every VIP they are in (the rest are up somewhere).
        var downEverywhere: Set<IPAddress> = []
        switch down {
        case .everywhere(let d):
            downEverywhere = d.filter { index.weights[$0] != nil }
        case .perVIP(let byName):
            var upSomewhere: Set<IPAddress> = []
            for (name, d) in byName where !d.isEmpty {
                for a in d where !downEverywhere.contains(a) && !upSomewhere.contains(a) {
                    guard let vipIndexes = index.vipsOf[a], vipIndexes.contains(where: { index.names[$0] == name }) else { continue }
                    if vipIndexes.allSatisfy({ byName[index.names[$0]]?.contains(a) ?? false }) { downEverywhere.insert(a) } else { upSomewhere.insert(a) }
                }
            }
        }

        // 1. Backends: one entry per address across all VIPs; draining = weight 0 everywhere.
        // A backend now down everywhere stays present until the rings without it are in (a
        // packet still hashed to it meanwhile is sent on, not dropped), then loses the flag.
        // Nothing to do when the backend set, who is down everywhere and the next hops are
        // those of the last apply.
        var clearPresentAfterRings: [(id: UInt32, entry: xdplb_backend)] = []
        let weights = index.weights
        // With the backend set and next hops of the last apply, only backends whose
        // down-everywhere state changed need a look.
        // An index derived from the last one adds the backends of the VIPs that changed.
        var visit = weights
        if let last = lastBackendInputs, last.nextHops == nextHops,
           last.index === index || index.base == ObjectIdentifier(last.index) {
            visit = [:]
            for a in downEverywhere.symmetricDifference(last.downEverywhere) { visit[a] = weights[a] }
            if last.index !== index { for a in index.touched { visit[a] = weights[a] } }
        }
        lastBackendInputs = nil   // set again once this apply has written everything
        // New backends take ids in address order (the same ids on every run of the same config).
        if !sameIndex {
            // Their per-backend counters are zeroed in one batch, not one syscall each.
            var fresh: [UInt32] = []
            for addr in weights.keys.filter({ backendIDs[$0] == nil }).sorted() { fresh.append(try backendID(for: addr, zeroStats: false)) }
            try maps.backendStats.updatePerCPUBatch(keys: fresh, value: xdplb_counter())
        }
        var writeIDs: [UInt32] = [], writeEntries: [xdplb_backend] = []
        for (addr, w) in visit {
            let id = try backendID(for: addr)
            var e = backendEntries[id] ?? xdplb_backend()
            let old = e
            e.addr = ABI.addr(addr)
            e.gen = backendGens[id] ?? 0
            e.flags = addr.isV6 ? UInt32(XDPLB_BACKEND_F_IPV6) : 0
            if !downEverywhere.contains(addr) { e.flags |= UInt32(XDPLB_BACKEND_F_PRESENT) }
            if w == 0 { e.flags |= UInt32(XDPLB_BACKEND_F_DRAINING) }
            if let nh = nextHops[addr] {
                e.flags |= UInt32(XDPLB_BACKEND_F_NEXTHOP)
                e.nh_ifindex = nh.ifindex
                withUnsafeMutableBytes(of: &e.nh_dmac) { $0.copyBytes(from: nh.destinationMAC) }
                withUnsafeMutableBytes(of: &e.nh_smac) { $0.copyBytes(from: nh.sourceMAC) }
            } else {
                e.nh_ifindex = 0
                e.nh_dmac = (0, 0, 0, 0, 0, 0)
                e.nh_smac = (0, 0, 0, 0, 0, 0)
            }
            var written = e
            let present = UInt32(XDPLB_BACKEND_F_PRESENT)
            if let prev = backendEntries[id], prev.flags & present != 0, e.flags & present == 0 {
                written.flags |= present
                clearPresentAfterRings.append((id, e))
            }
            if backendEntries[id] == nil || !ABI.bytesEqual(old, written) {
                writeIDs.append(id)
                writeEntries.append(written)
            }
        }
        // One batch: a first apply of 10,000 backends was 10,000 syscalls (34-57 ms).
        if !writeIDs.isEmpty {
            try maps.backends.updateBatch(keys: writeIDs, values: writeEntries)
            for (id, e) in zip(writeIDs, writeEntries) { backendEntries[id] = e }
            report.backendsWritten += writeIDs.count
        }

        report.phases.backends = lap()

        // 2. VIPs and rings.
        var retired: [UInt32] = []
        for (name, state) in sameIndex ? [:] : vips where !index.nameSet.contains(name) {
            try removeVIP(state)
            retired.append(state.index)
            vips[name] = nil
            namesWithDown.remove(name)
            usedVIPIndexes[state.index] = nil
            freeVIPIndexes.released.append(state.index)
            report.vipsRemoved.append(name)
        }
        for (key, slot) in sameIndex ? [:] : adoptedVIPIndexes where !index.keySet.contains(key) {
            try maps.vips.delete(key)
            retired.append(slot)
            try maps.vipStats.updatePerCPU(slot, xdplb_counter())
            try maps.vipFlows.updatePerCPU(slot, xdplb_vip_flows())
            try maps.protect.update(slot, xdplb_vip_protect())
            adoptedVIPIndexes[key] = nil
            usedVIPIndexes[slot] = nil
            freeVIPIndexes.released.append(slot)
            report.vipsRemoved.append(ABI.address(key.addr, family: key.family).description)
        }
        try deleteRings(retired, from: [maps.rings, maps.ringsPrev])
        // Removed VIPs leave the table before anything else changes.
        if !report.vipsRemoved.isEmpty { try writeVIPTable() }
        // Rings are built on every core, a chunk at a time (each holds an open map until swapped in).
        var changedVIPs = plan.changed.isEmpty ? [] : index.vips.indices.filter { plan.changed[index.names[$0]] != nil }
        // Chunks are built apart, so VIPs that would share a table go in one chunk
        // (a stable sort by ring size and backend-list fingerprint), whatever the
        // config's order (every port-80 VIP first, then every port-443 one, say).
        // The plan's fingerprints serve the grouping too (RingRequest.fingerprint).
        if changedVIPs.count > Self.ringsPerFlush {
            let keys = changedVIPs.map { i in (index.vips[i].ringSize, plan.changed[index.names[i]]!.fingerprint) }
            changedVIPs = changedVIPs.indices.sorted { a, b in keys[a] != keys[b] ? keys[a] < keys[b] : a < b }.map { changedVIPs[$0] }
        }
        let addsVIPs = plan.changed.keys.contains { vips[$0] == nil }
        var idByIdentity: [String: UInt32]?
        for chunk in stride(from: 0, to: changedVIPs.count, by: Self.ringsPerFlush) {
            let part = changedVIPs[chunk..<min(chunk + Self.ringsPerFlush, changedVIPs.count)]
            var requests: [RingRequest] = []
            var requestOf: [Int: Int] = [:]
            for i in part {
                let v = index.vips[i], name = index.names[i]
                let (down, ring, fingerprint) = plan.changed[name]!
                guard !ring.isEmpty else { continue }
                requestOf[i] = requests.count
                let downIdentities = Set(down.map { index.identities[$0] ?? $0.description })
                if let target = try inPlaceRing(for: v, name: name) {
                    let current = CurrentRing(map: target.ring.current, tag: target.tag, summary: target.ring.summary)
                    requests.append(RingRequest(name: name, backends: ring, size: v.ringSize, tag: target.tag,
                                                down: downIdentities, inPlace: target.ring, current: current, fingerprint: fingerprint))
                } else {
                    let current = try currentRing(for: v, name: name)
                    requests.append(RingRequest(name: name, backends: ring, size: v.ringSize, tag: try nextRingTag(for: v, name: name),
                                                down: downIdentities, current: current, fingerprint: fingerprint))
                }
            }
            // Identities are the canonical address text: map them to ids once, not per ring.
            if idByIdentity == nil { idByIdentity = identityIDs(index) }
            let ids = idByIdentity!
            report.phases.ringSwap += lap()
            // Every mapping of the build in one region, unmapped while the swap waits.
            let arena = RingArena(requests)
            let built = RingWriter.build(requests, arena: arena) { identity in ids[identity] ?? 0 }
            report.phases.ringBuild += lap()
            // A ring that failed leaves its VIP as it was; the others (some already
            // rewritten in place) are recorded and swapped in before the error is thrown.
            var failure: BPFError?
            for i in part {
                let name = index.names[i]
                var ring: BuiltRing?
                if let r = requestOf[i] {
                    switch built[r] {
                    case .success(let b):
                        ring = b
                        switch b.source {
                        case .maglevBuild: report.ringsBuilt += 1
                        case .handOver: report.ringsHandedOver += 1
                        case .sharedBuild: report.ringsSharingTable += 1
                        }
                    case .failure(let e): failure = failure ?? e; continue
                    }
                }
                try writeVIP(index.vips[i], name: name, down: plan.changed[name]!.down, built: ring, tag: requestOf[i].map { requests[$0].tag })
                report.ringsReplaced.append(name)
            }
            try flushPending()
            // The munmap of the build's mappings (~5 ms for 512 rings) needs no waiting for.
            mappingReleases.enter()
            Thread.detachNewThread { [mappingReleases] in
                arena.release()
                mappingReleases.leave()
            }
            if let failure { throw failure }
        }
        report.phases.ringSwap += lap()
        // The VIP table and address set change only with the VIPs or their entries;
        // with the same VIP keys, only the changed VIPs' table slots are rewritten.
        if !report.vipsRemoved.isEmpty || addsVIPs || vipTable == nil || writtenVIPAddrs == nil {
            try writeVIPTable()
            try writeVIPAddrs()
        } else if !report.ringsReplaced.isEmpty {
            var changes: [xdplb_vip_key: xdplb_vip_meta] = [:]
            for name in report.ringsReplaced {
                guard let s = vips[name] else { continue }
                changes[xdplb_vip_key(address: s.config.address, port: s.config.port, proto: s.config.proto.number)] = Self.meta(s.config, index: s.index, ring: s.ring, tag: s.ringTag)
            }
            if !vipTable!.update(changes) { try writeVIPTable() }
        }
        // Backends are cleared only once no program can still read a ring swapped out.
        let unused = sameIndex ? [:] : backendIDs.filter { weights[$0.key] == nil }
        if !clearPresentAfterRings.isEmpty || !unused.isEmpty { settleSwaps() }
        for (id, e) in clearPresentAfterRings {
            try maps.backends.update(id, e)
            backendEntries[id] = e
        }

        // 3. Backends no VIP uses any more: clear them (LRU entries stop matching).
        for (addr, id) in unused {
            try maps.backends.update(id, xdplb_backend())
            backendEntries[id] = nil
            backendGens[id] = nil
            backendIDs[addr] = nil
            backendIDsVersion += 1
            freeBackendIDs.released.append(id)
            report.backendsRemoved += 1
        }
        // Every entry now is what these inputs give (the PRESENT flags cleared above too).
        lastBackendInputs = (index, downEverywhere, nextHops)
        appliedIndex = index
        report.protection = try applyProtection(config.protection)
        report.phases.finish = lap()
        report.milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        succeeded = true
        return report
    }

    /// What step 1 of the last apply wrote the backend entries from.
    private var lastBackendInputs: (index: ConfigIndex, downEverywhere: Set<IPAddress>, nextHops: [IPAddress: NextHop])?
    /// The index of the last config planned (rebuilt only when its VIPs change).
    var configIndex: ConfigIndex?
    /// The index whose VIPs the last apply wrote completely (nil after one that threw).
    var appliedIndex: ConfigIndex?

    /// Backend ids by Maglev identity, kept while the ids stay the same.
    private func identityIDs(_ index: ConfigIndex) -> [String: UInt32] {
        if let cached = cachedIdentityIDs, cached.version == backendIDsVersion { return cached.ids }
        var ids = [String: UInt32](minimumCapacity: backendIDs.count)
        for (a, id) in backendIDs { ids[index.identities[a] ?? a.description] = id }
        cachedIdentityIDs = (backendIDsVersion, ids)
        return ids
    }
    private var cachedIdentityIDs: (version: Int, ids: [String: UInt32])?
    /// Bumped on every change of ``backendIDs``.
    private var backendIDsVersion = 0

    /// Takes the address's id, allocating one for a new backend; a (re)assigned
    /// id starts with zeroed per-backend counters (they belonged to its last
    /// owner), zeroed here unless `zeroStats` is false (the caller zeroes them).
    private func backendID(for addr: IPAddress, zeroStats: Bool = true) throws(BPFError) -> UInt32 {
        if let id = backendIDs[addr] { return id }
        // Fresh ids first, then the longest released: a previous ring (second chance)
        // still naming a removed backend's id should not name its successor soon.
        guard let id = takeFree(&freeBackendIDs, range: 1..<UInt32(XDPLB_MAX_BACKENDS), used: backendGens, preferFresh: true) else {
            throw BPFError("allocate a backend id for \(addr)", errno: ENOSPC, hint: "at most \(XDPLB_MAX_BACKENDS - 1) backends")
        }
        if zeroStats { try maps.backendStats.updatePerCPU(id, xdplb_counter()) }
        backendIDs[addr] = id
        backendIDsVersion += 1
        backendGens[id] = nextGeneration
        return id
    }

    /// Free ids below the high-water mark, and the mark itself: allocation is O(1).
    private var freeBackendIDs = FreeList()
    private var freeVIPIndexes = FreeList()

    struct FreeList {
        var released: [UInt32] = []
        var next: UInt32?
    }

    /// Takes a released id, else the next never-used one in `range` not in `used`
    /// (with `preferFresh`: a never-used one, else the one released longest ago).
    private func takeFree<V>(_ list: inout FreeList, range: Range<UInt32>, used: [UInt32: V], preferFresh: Bool = false) -> UInt32? {
        if !preferFresh {
            while let id = list.released.popLast() {
                if used[id] == nil { return id }
            }
        }
        var n = list.next ?? range.lowerBound
        while n < range.upperBound && used[n] != nil { n += 1 }
        if n < range.upperBound {
            list.next = n + 1
            return n
        }
        list.next = n
        while !list.released.isEmpty {
            let id = list.released.removeFirst()
            if used[id] == nil { return id }
        }
        return nil
    }

    /// Rings swapped in per batch: bounds the open ring maps (file descriptors) of one apply.
    static let ringsPerFlush = 512

    /// The tag the next ring of `v`'s slot gets (its current slot, or the one it will take).
    private func nextRingTag(for v: VIPConfig, name: String) throws(BPFError) -> UInt32 {
        let index = try slotIndex(for: v, name: name)
        return ((ringTags[index] ?? 0) &+ 1) & XDPLB_RING_TAG_MASK
    }

    /// The ring of `v` to rewrite in place, with its tag: the VIP has a ring of
    /// the same size whose tag the controller knows, and, when second chance is
    /// on, a previous ring of that size too (for the current slots to go to).
    /// Nil: a new ring map is built and swapped in.
    private func inPlaceRing(for v: VIPConfig, name: String) throws(BPFError) -> (ring: InPlaceRing, tag: UInt32)? {
        guard let cur = vips[name], let summary = cur.ring, summary.size == v.ringSize,
              let tag = ringTags[cur.index] else { return nil }
        let elements = RingWriter.elements(size: v.ringSize)
        guard let id = try liveRingID(maps.rings, cur.index), ringSizes[id] == elements else { return nil }
        var previous: BPFMap?
        if v.secondChanceMs > 0 {
            guard cur.previousRingUntil != nil, let prev = try liveRingID(maps.ringsPrev, cur.index),
                  ringSizes[prev] == elements else { return nil }
            previous = try BPFMap.open(id: prev, name: "previous ring \(name)")
        }
        return (InPlaceRing(current: try BPFMap.open(id: id, name: "ring \(name)"), previous: previous, summary: summary), tag)
    }

    /// The VIP's ring in the data plane now, when it has the size of `v`'s and
    /// the controller knows its tag and summary: what a health change hands
    /// slots over from (``RingWriter/handOver(_:_:_:ids:)``).
    private func currentRing(for v: VIPConfig, name: String) throws(BPFError) -> CurrentRing? {
        guard let cur = vips[name], let summary = cur.ring, summary.size == v.ringSize,
              let tag = ringTags[cur.index], let id = try liveRingID(maps.rings, cur.index) else { return nil }
        return CurrentRing(map: try BPFMap.open(id: id, name: "ring \(name)"), tag: tag, summary: summary)
    }

    /// VIP slots given to new VIPs of the apply under way, before their entries are written.
    private var reservedVIPIndexes: [String: UInt32] = [:]
    /// Every VIP slot in use: VIPs written, adopted or reserved.
    private var usedVIPIndexes: [UInt32: Bool] = [:]

    /// `v`'s VIP slot: the one it has, the one adopted for its key, or a free one (reserved).
    private func slotIndex(for v: VIPConfig, name: String) throws(BPFError) -> UInt32 {
        if let cur = vips[name] { return cur.index }
        if let adopted = adoptedVIPIndexes[xdplb_vip_key(address: v.address, port: v.port, proto: v.proto.number)] { return adopted }
        if let reserved = reservedVIPIndexes[name] { return reserved }
        guard let free = takeFree(&freeVIPIndexes, range: 0..<UInt32(XDPLB_MAX_VIPS), used: usedVIPIndexes) else {
            throw BPFError("allocate a VIP slot for \(name)", errno: ENOSPC, hint: "at most \(XDPLB_MAX_VIPS) VIPs")
        }
        usedVIPIndexes[free] = true
        reservedVIPIndexes[name] = free
        return free
    }

    private func writeVIP(_ v: VIPConfig, name: String, down: Set<IPAddress>, built: BuiltRing?, tag wantedTag: UInt32?) throws(BPFError) {
        let index: UInt32
        let key = xdplb_vip_key(address: v.address, port: v.port, proto: v.proto.number)
        let before = vips[name]
        var previousUntil = before?.previousRingUntil
        index = try slotIndex(for: v, name: name)
        reservedVIPIndexes[name] = nil
        if before == nil, let adopted = adoptedVIPIndexes.removeValue(forKey: key) {
            if adoptedPreviousRings.remove(adopted) != nil, v.secondChanceMs > 0 {
                previousUntil = Date().addingTimeInterval(Double(v.secondChanceMs) / 1000)
            }
        }
        // Second chance: the ring in place becomes the previous one when the table really changes.
        if v.secondChanceMs == 0 {
            if previousUntil != nil || before == nil { try deleteRings([index], from: [maps.ringsPrev]) }
            previousUntil = nil
        } else if let old = before?.ring, !(built.map { old.sameRing(as: $0.summary) } ?? false),
                  let id = try liveRingID(maps.rings, index) {
            // A ring rewritten in place gave its slots to the previous ring itself.
            if built == nil || built?.map != nil {
                pendingPrevious.append((index, try BPFMap.open(id: id, name: "ring \(name)")))
            }
            previousUntil = Date().addingTimeInterval(Double(v.secondChanceMs) / 1000)
        }
        var tag: UInt32 = 0
        if let built {
            tag = wantedTag ?? 0
            ringTags[index] = tag
            if let map = built.map { pendingRings.append((index, map)) }
        } else {
            try deleteRings([index], from: [maps.rings])
        }
        pendingVIPs.append((key, Self.meta(v, index: index, ring: built?.summary, tag: tag)))
        vips[name] = VIPState(config: v, index: index, ring: built?.summary, ringTag: tag, down: down, previousRingUntil: previousUntil)
        if down.isEmpty { namesWithDown.remove(name) } else { namesWithDown.insert(name) }
    }

    /// Drops the previous rings whose second-chance time is up (the agent calls
    /// this every few hundred milliseconds).
    /// - Returns: the VIPs whose previous ring was dropped.
    @discardableResult
    public func expirePreviousRings(now: Date = Date()) throws(BPFError) -> [String] {
        settleSwaps()
        var dropped: [String] = []
        var indexes: [UInt32] = []
        for (name, s) in vips {
            guard let until = s.previousRingUntil, until <= now else { continue }
            indexes.append(s.index)
            dropped.append(name)
        }
        try deleteRings(indexes, from: [maps.ringsPrev])
        for name in dropped { vips[name]?.previousRingUntil = nil }
        return dropped.sorted()
    }

    /// The map value of a VIP in slot `index` with `ring` (tag `tag`) in place.
    static func meta(_ v: VIPConfig, index: UInt32, ring: RingSummary?, tag: UInt32) -> xdplb_vip_meta {
        var meta = xdplb_vip_meta()
        meta.vip_index = index
        meta.ring_size = UInt32(ring?.size ?? 0)
        meta.ring_tag = ring == nil ? 0 : tag
        meta.flags = v.hash == .sourceIP ? UInt32(XDPLB_VIP_F_SRC_IP_HASH) : 0
        return meta
    }

    /// Rings built but not yet swapped in, and the VIP entries to write after them.
    private var pendingRings: [(index: UInt32, ring: BPFMap)] = []
    /// Rings in place now that become their VIP's previous ring (swapped in before the new ones).
    private var pendingPrevious: [(index: UInt32, ring: BPFMap)] = []
    private var pendingVIPs: [(key: xdplb_vip_key, meta: xdplb_vip_meta)] = []

    /// Ring-table batches whose rings are in but whose wait for running
    /// programs may not be over (``RingTableBatch``). An apply returns with
    /// them in flight: its rings and VIP entries are in, and only the kernel's
    /// wait for programs still reading the replaced rings (an RCU grace
    /// period, 8-25 ms here) goes on. They are joined before anything that
    /// needs that wait over: clearing a backend (an old ring may name it), the
    /// next write to a ring table (so a program is never two rings behind),
    /// the next apply's first write, adoption, and the controller's end.
    private var swapsInFlight: [RingTableBatch] = []

    /// The builds' ring mappings being unmapped in the background (``RingArena/release()``).
    private let mappingReleases = DispatchGroup()

    /// Waits until the ring mappings of every apply so far are unmapped (they
    /// go in the background, after the apply returns): until then the
    /// process's RSS still counts the new rings' pages. For measuring RSS.
    public func waitForMappingsReleased() {
        mappingReleases.wait()
    }

    /// Waits for every swap in flight. None can fail any more: ``flushPending()``
    /// took each batch's error in ``RingTableBatch/waitStored()``, which
    /// returns only once nothing of its batch is left to fail.
    private func settleSwaps() {
        for b in swapsInFlight { b.join() }
        swapsInFlight = []
    }

    /// Swaps every pending ring in with one batch update per ring table (the
    /// previous rings first), then writes the VIP entries that point at them.
    /// Each element of a batch is one atomic pointer swap, and the kernel
    /// waits for running programs (an RCU grace period) once per batch, not
    /// per ring. This returns once the rings are in and the VIP entries
    /// written, while the kernel may still wait (``swapsInFlight``), so the
    /// VIP table and the rest of the apply go on meanwhile. The previous
    /// rings' batch is seen stored before the current rings' starts, so a
    /// packet in between sees the new previous ring equal to the current one.
    private func flushPending() throws(BPFError) {
        let rings = pendingRings, metas = pendingVIPs, previous = pendingPrevious
        pendingRings = []
        pendingVIPs = []
        pendingPrevious = []
        for (table, batch) in [(maps.ringsPrev, previous), (maps.rings, rings)] where !batch.isEmpty {
            let b = RingTableBatch(table, batch)
            swapsInFlight.append(b)
            try b.waitStored()
        }
        try maps.vips.updateBatch(keys: metas.map(\.key), values: metas.map(\.meta))
    }

    /// Removes a VIP's entry and zeroes its counters; its rings go in ``deleteRings(_:from:)``.
    private func removeVIP(_ s: VIPState) throws(BPFError) {
        try maps.vips.delete(xdplb_vip_key(address: s.config.address, port: s.config.port, proto: s.config.proto.number))
        try maps.vipStats.updatePerCPU(s.index, xdplb_counter())
        try maps.vipFlows.updatePerCPU(s.index, xdplb_vip_flows())
        try clearProtection(slot: s.index)
    }

    /// Drops the current and previous rings of VIP slots. The kernel can't
    /// batch-delete from a map of maps, and every single delete waits for
    /// running programs (an RCU grace period, ~10 ms), so a slot is emptied by
    /// one batch update per ring table that points it at the retired ring
    /// (one element, a head of size 0: the program finds no backend in it and
    /// the agent counts it as no ring).
    func deleteRings(_ indexes: [UInt32], from tables: [BPFMap]) throws(BPFError) {
        guard !indexes.isEmpty else { return }
        settleSwaps()
        for table in tables {
            var present: [UInt32] = []
            for i in indexes where try liveRingID(table, i) != nil { present.append(i) }
            if present.isEmpty { continue }
            let retired = try retiredRing()
            try withExtendedLifetime(retired) { () throws(BPFError) in
                try table.updateBatch(keys: present, values: Array(repeating: retired.fd, count: present.count))
            }
        }
    }

    /// The shared retired ring (made on first use).
    private var retired: BPFMap?
    private func retiredRing() throws(BPFError) -> BPFMap {
        if let retired { return retired }
        let fd = xdplb_ring_map_create(1, "xdplb_ring_off")
        guard fd >= 0 else { throw BPFError("create the retired ring", errno: -fd) }
        let map = try BPFMap(owning: fd, name: "retired ring")
        retired = map
        return map
    }

    /// The id of the ring in slot `index` of `table` (xdplb_rings or xdplb_rings_prev),
    /// nil when there is none or it is a retired ring (one element).
    public func liveRingID(_ table: BPFMap, _ index: UInt32) throws(BPFError) -> UInt32? {
        guard let id = try table.lookup(index, as: UInt32.self) else { return nil }
        if let retired, id == retired.info.id { return nil }
        if let known = ringSizes[id] { return known > 1 ? id : nil }
        let elements = try BPFMap.open(id: id, name: "ring \(index)").info.maxEntries
        ringSizes[id] = elements
        return elements > 1 ? id : nil
    }
    /// Elements of ring maps seen by id (a ring never changes size).
    private var ringSizes: [UInt32: UInt32] = [:]

    /// Makes the VIP table hold exactly the VIPs written so far (their keys and metas).
    private func writeVIPTable() throws(BPFError) {
        if vipTable == nil { vipTable = try VIPTable(map: maps.vipTable) }
        var want: [xdplb_vip_key: xdplb_vip_meta] = [:]
        for s in vips.values {
            want[xdplb_vip_key(address: s.config.address, port: s.config.port, proto: s.config.proto.number)] = Self.meta(s.config, index: s.index, ring: s.ring, tag: s.ringTag)
        }
        // Adopted VIPs not rewritten yet keep their slots (a restart changes nothing for them).
        try vipTable!.sync(want, keep: Set(adoptedVIPIndexes.keys))
    }

    /// What the VIP address map holds (nil until first synced with the kernel).
    private var writtenVIPAddrs: [IPAddress: UInt32]?

    /// Makes the VIP address set (with the port-0 flags) match `vips`, writing only differences.
    private func writeVIPAddrs() throws(BPFError) {
        var want: [IPAddress: UInt32] = [:]
        for s in vips.values {
            var f = want[s.config.address] ?? 0
            if s.config.port == 0 {
                f |= s.config.proto == .tcp ? UInt32(XDPLB_VIP_ADDR_F_PORT0_TCP) : UInt32(XDPLB_VIP_ADDR_F_PORT0_UDP)
            }
            want[s.config.address] = f
        }
        var have = writtenVIPAddrs ?? [:]
        if writtenVIPAddrs == nil {
            for k in try maps.vipAddrs.keys(as: xdplb_vip_addr_key.self) {
                have[ABI.address(k.addr, family: k.family)] = try maps.vipAddrs.lookup(k, as: xdplb_vip_addr.self)?.flags
            }
        }
        // One batch (a first apply of 512 addresses was 512 syscalls, ~1.5 ms).
        var keys: [xdplb_vip_addr_key] = [], values: [xdplb_vip_addr] = []
        for (a, f) in want where have[a] != f {
            var v = xdplb_vip_addr()
            v.flags = f
            keys.append(xdplb_vip_addr_key(address: a))
            values.append(v)
        }
        try maps.vipAddrs.updateBatch(keys: keys, values: values)
        for a in have.keys where want[a] == nil { try maps.vipAddrs.delete(xdplb_vip_addr_key(address: a)) }
        // The prefilter last: a set bit without its address entry only costs a lookup.
        if writtenVIPAddrs == nil || Set(have.keys) != Set(want.keys) {
            try maps.vipFilter.update(UInt32(0), VIPFilter.value(for: want.keys))
        }
        writtenVIPAddrs = want
    }
}
