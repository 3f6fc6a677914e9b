import BPF
import CXdplb
import Foundation
import Maglev
import NetAddress

/// One ring to build: the VIP, its table's inputs, and the ring's tag.
struct RingRequest: Sendable {
    var name: String
    var backends: [MaglevBackend]
    var size: Int
    var tag: UInt32
    /// The identities of `backends` that are down: their slots are handed over
    /// (``MaglevTable/withDown(_:)``).
    var down: Set<String> = []
    /// The ring in place to rewrite instead of a new map to swap in (nil: a new map).
    var inPlace: InPlaceRing? = nil
    /// The VIP's ring now, to hand slots over from when only the down set
    /// changed (nil: build the table).
    var current: CurrentRing? = nil
    /// ``RingWriter/fingerprint(_:)`` of `backends`, when the caller has it already (nil: computed when grouping).
    var fingerprint: Int? = nil
}

/// A VIP's ring in the data plane now, with what the controller kept of it.
struct CurrentRing: @unchecked Sendable {
    var map: BPFMap
    /// The tag in its head.
    var tag: UInt32
    var summary: RingSummary
}

/// A ring map's mapping (its head, then the slots), made once for every read,
/// copy and rewrite of one ring in an apply, in the build's ``RingArena``
/// (unmapped with it) or, without one, anywhere (unmapped by ``unmap()``).
struct MappedRing {
    let words: UnsafeMutablePointer<UInt64>
    let length: Int
    /// In an arena: ``unmap()`` leaves it to the arena.
    let placed: Bool

    /// Maps the ring map `map` of a ring of `size` slots at `at` (a place in a
    /// ``RingArena``) or anywhere (nil).
    init(_ map: BPFMap, size: Int, name: String, at: UnsafeMutableRawPointer? = nil) throws(BPFError) {
        var length = 0
        guard let words = xdplb_ring_map_mmap(map.fd, UInt32(size), at, &length) else {
            throw BPFError("map the ring map of \(name)", errno: errno)
        }
        self.words = words
        self.length = length
        self.placed = at != nil
    }

    func unmap() { if !placed { munmap(words, length) } }
}

/// A VIP's ring in place, of the same size and tag as the one being built,
/// rewritten through its mapping: no map to swap in, so no wait for running
/// programs (an RCU grace period). A program reading a slot meanwhile gets
/// its old value or its new one, as it would on either side of a swap.
struct InPlaceRing: @unchecked Sendable {
    /// The VIP's current ring (its slots carry the request's tag).
    var current: BPFMap
    /// The VIP's previous ring (second chance, same size), given the current
    /// ring's slots before those change; nil when second chance is off.
    var previous: BPFMap?
    /// What the ring in place holds now: a table equal to it is not written.
    var summary: RingSummary
}

/// A ring built: in its own inner map, not yet swapped in, or (``map`` nil)
/// written into the VIP's ring in place.
struct BuiltRing: @unchecked Sendable {
    /// Where a ring's table came from.
    enum Source {
        /// A Maglev build of the VIP's own.
        case maglevBuild
        /// The VIP's current ring with slots handed over, without a Maglev build.
        case handOver
        /// The build for another VIP of the same apply with the same backends,
        /// weights, ring size and down set (one build for both).
        case sharedBuild
    }

    var map: BPFMap?
    var summary: RingSummary
    var source = Source.maglevBuild
}

/// Builds Maglev tables and writes them into fresh ring maps (xdplb_abi.h
/// layout: a head, then 2 bytes per slot) or into the VIP's ring in place
/// (``InPlaceRing``), on every core at once. Each worker
/// holds one table at a time, so memory stays at a few tables whatever the
/// number of VIPs.
enum RingWriter {
    /// The ring's value for each backend of a table, in ``MaglevTable/backends``
    /// order, then an empty slot's: backend id | tag << XDPLB_RING_ID_BITS (id 0: empty).
    static func ringValues(ids: [UInt32], tag: UInt32) -> [UInt16] {
        let tagBits = UInt16(truncatingIfNeeded: tag << UInt32(XDPLB_RING_ID_BITS))
        var values = ids.map { UInt16(truncatingIfNeeded: $0) | tagBits }
        values.append(tagBits)
        return values
    }

    /// The elements of the ring map of a ring of `size` slots: the head, then 4 slots per element.
    static func elements(size: Int) -> UInt32 {
        UInt32(1 + (size + Int(XDPLB_RING_SLOTS_PER_ELEM) - 1) / Int(XDPLB_RING_SLOTS_PER_ELEM))
    }

    /// Writes `table` into `words` (⌈M/4⌉ words) as the slots of a ring of
    /// tag `tag` (``ringValues(ids:tag:)``); returns the export's counts and digest.
    static func export(_ table: MaglevTable, tag: UInt32, ids: (String) -> UInt32,
                       into words: UnsafeMutablePointer<UInt64>) -> MaglevTable.SlotExport {
        table.exportSlots(values: ringValues(ids: table.backends.map { ids($0.identity) }, tag: tag), into: words)
    }

    /// Copies ring slots (`size` of them, 4 a word, any tag) from `source`
    /// into `words` with tag `tag`: the same backend id in every slot. The
    /// unused slots of the last word are 0, as ``MaglevTable/exportSlots(values:into:)`` leaves them.
    static func retag(_ source: UnsafePointer<UInt64>, into words: UnsafeMutablePointer<UInt64>, size: Int, tag: UInt32) {
        let id: UInt64 = (1 << UInt64(XDPLB_RING_ID_BITS)) - 1
        let t = UInt64(UInt16(truncatingIfNeeded: tag << UInt32(XDPLB_RING_ID_BITS)))
        let ids = id | id << 16 | id << 32 | id << 48, tags = t | t << 16 | t << 32 | t << 48
        let whole = size / 4, rest = size % 4
        for q in 0 ..< whole { words[q] = source[q] & ids | tags }
        if rest > 0 { words[whole] = (source[whole] & ids | tags) & (1 &<< UInt64(16 * rest) &- 1) }
    }

    /// One group's table (``sameTableGroups(_:)``), shared by its members on
    /// one worker: handed over by an earlier member, or built by the first
    /// member that needs a build. The first export of it is kept (when
    /// members follow) for the others to copy with their own tag
    /// (``retag(_:into:size:tag:)``) instead of exporting the table again.
    final class GroupBuild {
        /// The group's table, once a member built it or handed it over.
        var table: MaglevTable?
        /// Members of the group after the one being written.
        var laterMembers = 0
        private var kept: (words: UnsafeMutablePointer<UInt64>, export: MaglevTable.SlotExport)?

        deinit { kept?.words.deallocate() }

        /// Writes the group's table (``table``, set) into `words` as a ring
        /// of tag `tag` (⌈M/4⌉ words): exported (``export(_:tag:ids:into:)``)
        /// the first time, copied and retagged after. Returns the export's counts and digest.
        func writeSlots(tag: UInt32, ids: (String) -> UInt32, into words: UnsafeMutablePointer<UInt64>) -> MaglevTable.SlotExport {
            let table = table!
            if let kept {
                retag(kept.words, into: words, size: table.size, tag: tag)
                return kept.export
            }
            let export = RingWriter.export(table, tag: tag, ids: ids, into: words)
            if laterMembers > 0 {
                let count = Int(elements(size: table.size)) - 1
                let copy = UnsafeMutablePointer<UInt64>.allocate(capacity: count)
                copy.initialize(from: words, count: count)
                kept = (copy, export)
            }
            return export
        }
    }

    /// Creates the ring map of one table and writes it through its mapping:
    /// the head, then the slots (`fill` writes them and gives the export's
    /// counts and digest for the summary).
    static func write(_ table: MaglevTable, fill: (UnsafeMutablePointer<UInt64>) -> MaglevTable.SlotExport, tag: UInt32, name: String,
                      at: UnsafeMutableRawPointer? = nil) throws(BPFError) -> BuiltRing {
        let fd = xdplb_ring_map_create(elements(size: table.size), "xdplb_ring")
        guard fd >= 0 else { throw BPFError("create ring map for \(name)", errno: -fd) }
        let ring = try BPFMap(owning: fd, name: "ring \(name)")
        let mapped = try MappedRing(ring, size: table.size, name: name, at: at)
        defer { mapped.unmap() }
        let words = mapped.words
        var head = xdplb_ring_head()
        head.size = UInt32(table.size)
        head.tag = tag
        withUnsafeBytes(of: &head) { UnsafeMutableRawPointer(words).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return BuiltRing(map: ring, summary: RingSummary(table, export: fill(words + 1)))
    }

    /// Writes `table` into the ring in place `target`, mapped as `current`:
    /// first the current slots into the previous ring (when there is one), then
    /// the new slots into the current ring; nothing when the table equals the
    /// ring in place. `fill` writes the new slots, as in ``write(_:fill:tag:name:at:)``.
    /// Returns the table's summary.
    static func rewrite(_ target: InPlaceRing, mapped current: MappedRing, _ table: MaglevTable,
                        fill: (UnsafeMutablePointer<UInt64>) -> MaglevTable.SlotExport, tag: UInt32,
                        name: String, previousAt: UnsafeMutableRawPointer? = nil) throws(BPFError) -> RingSummary {
        let count = UInt32(table.size)
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(elements(size: table.size)) - 1)
        defer { words.deallocate() }
        let summary = RingSummary(table, export: fill(words))
        guard !target.summary.sameRing(as: summary) else { return summary }
        if let previous = target.previous {
            let prev = try MappedRing(previous, size: table.size, name: "previous ring \(name)", at: previousAt)
            defer { prev.unmap() }
            let err = xdplb_ring_copy(prev.words, current.words, count, tag)
            guard err >= 0 else { throw BPFError("copy the ring of \(name) into its previous ring", errno: -err) }
        }
        // The words hold the slots packed 2 bytes each, little-endian: the C side's layout.
        let err = UnsafeRawPointer(words).withMemoryRebound(to: UInt16.self, capacity: Int(count)) {
            xdplb_ring_store(current.words, tag, $0, count)
        }
        guard err >= 0 else { throw BPFError("rewrite the ring of \(name) in place", errno: -err) }
        return summary
    }

    /// Builds every request on every core (``MaglevTable/parallelMap(_:maxConcurrency:_:)``);
    /// results in request order. `ids` gives a backend identity's node-local id (0 when it has none).
    /// The rings' mappings go in `arena` (made from the same `requests`), which
    /// the caller releases when it likes (while the swap waits, say); nil: each
    /// is unmapped when its ring is done.
    ///
    /// A VIP whose current ring has the request's backends and weights changes
    /// only in who is down: its table is read back from that ring and its
    /// slots handed over again (``handOver(_:_:_:ids:)``), with no Maglev build,
    /// whether the result is written in place or into a new map. Requests that
    /// give the same table (``sameTableGroups(_:)``: several ports of one
    /// service, say) are built by one worker, with one Maglev build and one
    /// export of its slots, which the group's other rings copy with their own tag.
    static func build(_ requests: [RingRequest], arena: RingArena? = nil,
                      ids: @Sendable @escaping (String) -> UInt32) -> [Result<BuiltRing, BPFError>] {
        let groups = sameTableGroups(requests)
        let work = groups.map { MaglevTable.Request(backends: requests[$0[0]].backends, size: requests[$0[0]].size) }
        let done = MaglevTable.parallelMap(work) { g in
            let group = GroupBuild()
            return groups[g].enumerated().map { k, i in
                group.laterMembers = groups[g].count - 1 - k
                return (i, Result { () throws(BPFError) -> BuiltRing in
                    try ring(requests[i], place: arena.map { a in { a.place(i, $0, of: requests[i]) } }, ids: ids, group: group)
                })
            }
        }
        var results = [Result<BuiltRing, BPFError>?](repeating: nil, count: requests.count)
        for (i, result) in done.joined() { results[i] = result }
        return results.map { $0! }
    }

    /// The indexes of `requests` that give the same table, as groups in
    /// request order: the same ring size, down set and backends with their
    /// weights, in any order. Grouped by an order-free fingerprint
    /// (``fingerprint(_:)``), confirmed by comparing the sorted lists.
    static func sameTableGroups(_ requests: [RingRequest]) -> [[Int]] {
        struct Key: Hashable {
            var size: Int
            var count: Int
            var fingerprint: Int
            var down: Set<String>
        }
        func sorted(_ r: RingRequest) -> [MaglevBackend] {
            r.backends.sorted { $0.identity != $1.identity ? $0.identity < $1.identity : $0.weight < $1.weight }
        }
        var groups: [[Int]] = []
        var groupsByKey: [Key: [Int]] = [:]
        for (i, r) in requests.enumerated() {
            let key = Key(size: r.size, count: r.backends.count, fingerprint: r.fingerprint ?? fingerprint(r.backends), down: r.down)
            let candidates = groupsByKey[key, default: []]
            // The same list in the same order (the usual case) needs no sort.
            if let g = candidates.first(where: { requests[groups[$0][0]].backends == r.backends })
                ?? candidates.first(where: { sorted(requests[groups[$0][0]]) == sorted(r) }) {
                groups[g].append(i)
            } else {
                groupsByKey[key, default: []].append(groups.count)
                groups.append([i])
            }
        }
        return groups
    }

    /// An order-free fingerprint of a backend list: the wrapping sum of each
    /// backend's FNV-1a 64 of its identity's UTF-8 and its weight, mixed
    /// (cheaper than `hashValue`). Equal fingerprints are confirmed by
    /// comparing the lists, so a collision costs a comparison, never a wrong table.
    static func fingerprint(_ backends: [MaglevBackend]) -> Int {
        var sum: UInt64 = 0
        for b in backends {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in b.identity.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
            h = (h ^ UInt64(b.weight)) &* 0x9E37_79B9_7F4A_7C15
            sum &+= h ^ (h &>> 29)
        }
        return Int(truncatingIfNeeded: sum)
    }

    /// One request's ring: its table handed over from the VIP's current ring,
    /// else `group`'s (built here if no member built or handed it over yet),
    /// then written into a new map or rewritten in place. `place` gives where
    /// in the arena each of its mappings goes (nil: anywhere).
    static func ring(_ r: RingRequest, place: ((RingArena.Role) -> UnsafeMutableRawPointer?)?,
                     ids: (String) -> UInt32, group: GroupBuild) throws(BPFError) -> BuiltRing {
        // The current ring, mapped once for the read, the copy and the rewrite.
        var mapped: MappedRing?
        let currentAt = place?(.current)
        if let target = r.inPlace {
            mapped = try MappedRing(target.current, size: r.size, name: r.name, at: currentAt)
        } else if let current = r.current {
            mapped = try? MappedRing(current.map, size: r.size, name: r.name, at: currentAt)
        }
        defer { mapped?.unmap() }
        var table: MaglevTable
        var source = BuiltRing.Source.maglevBuild
        if let current = r.current, let mapped, let t = handOver(current, mapped, r, ids: ids) {
            table = t
            source = .handOver
            // The table a build would give (its digest was checked): members with no ring to hand over take it.
            if group.table == nil { group.table = t }
        } else if let built = group.table {
            table = built
            source = .sharedBuild
        } else {
            do { table = try MaglevTable(backends: r.backends, size: r.size, down: r.down) } catch {
                throw BPFError("refused: build Maglev table for \(r.name): \(error)", errno: EINVAL)
            }
            group.table = table
        }
        func fill(_ words: UnsafeMutablePointer<UInt64>) -> MaglevTable.SlotExport {
            guard source == .handOver else { return group.writeSlots(tag: r.tag, ids: ids, into: words) }
            return export(table, tag: r.tag, ids: ids, into: words)
        }
        if let target = r.inPlace, let mapped {
            let summary = try rewrite(target, mapped: mapped, table, fill: fill, tag: r.tag, name: r.name,
                                      previousAt: place?(.previous))
            return BuiltRing(map: nil, summary: summary, source: source)
        }
        var ring = try write(table, fill: fill, tag: r.tag, name: r.name, at: place?(.new))
        ring.source = source
        return ring
    }

    /// The request's table made from the VIP's current ring, when only the down set
    /// differs: the ring's slots read back as indexes into its backends (the
    /// summary's), checked against its digest, then ``MaglevTable/withDown(_:)``.
    /// Nil (build instead) when the backends or weights differ, or the ring
    /// does not read back as the table its summary describes.
    static func handOver(_ current: CurrentRing, _ mapped: MappedRing, _ r: RingRequest, ids: (String) -> UInt32) -> MaglevTable? {
        let s = current.summary
        guard s.size == r.size, !s.backends.isEmpty else { return nil }
        var wanted: [String: UInt32] = [:]
        wanted.reserveCapacity(r.backends.count)
        for b in r.backends where b.weight > 0 { wanted[b.identity] = b.weight }
        guard wanted.count == s.backends.count,
              zip(s.backends, s.weights).allSatisfy({ wanted[$0.0] == $0.1 }) else { return nil }
        // Ring value → index into the summary's backends (0xFFFF: none).
        let idMask = UInt16((1 << UInt32(XDPLB_RING_ID_BITS)) - 1)
        var indexOf = [UInt16](repeating: MaglevTable.emptySlot, count: Int(idMask) + 1)
        for (k, identity) in s.backends.enumerated() {
            let id = ids(identity)
            guard id != 0, id <= UInt32(idMask), indexOf[Int(id)] == MaglevTable.emptySlot else { return nil }
            indexOf[Int(id)] = UInt16(k)
        }
        // The head says which ring this is; the slots are converted straight from the mapping.
        var head = xdplb_ring_head()
        withUnsafeMutableBytes(of: &head) { $0.copyMemory(from: UnsafeRawBufferPointer(start: mapped.words, count: $0.count)) }
        guard head.size == UInt32(r.size), head.tag == current.tag else { return nil }
        // An id of no backend becomes emptySlot, which init(ringSlots:) refuses.
        let ring = UnsafeRawPointer(mapped.words + 1).assumingMemoryBound(to: UInt16.self)
        let slots = [UInt16](unsafeUninitializedCapacity: r.size) { out, initialized in
            indexOf.withUnsafeBufferPointer { index in
                for q in 0 ..< r.size { out[q] = index[Int(ring[q] & idMask)] }
            }
            initialized = r.size
        }
        let backends = zip(s.backends, s.weights).map { MaglevBackend(identity: $0.0, weight: $0.1) }
        guard let current = MaglevTable(ringSlots: slots, size: r.size, backends: backends, overlay: s.overlay),
              current.digest == s.digest else { return nil }
        return current.withDown(r.down)
    }
}
