import BPF
import CXdplb
#if canImport(Glibc)
import Glibc
#endif

/// The VIP table (xdplb_abi.h): every VIP key with its meta in an mmap'ed
/// array the program reads without a helper call. Keys stay in the slot they
/// were given (within `probes` of their home) until removed, so a change only
/// writes the slots of VIPs that came, went or changed; each slot is written
/// with the seqlock protocol, so the program never uses half a slot.
public final class VIPTable: @unchecked Sendable {
    /// Slots in the table.
    public static let slots = Int(XDPLB_VIP_TABLE_SLOTS)
    /// How far past its home a key may sit.
    public static let probes = Int(XDPLB_VIP_TABLE_PROBES)

    /// The home slot of a key (the C twin is `vip_table_home` in bpf/backend.h).
    public static func home(_ key: xdplb_vip_key) -> Int {
        withUnsafeBytes(of: key) { raw -> Int in
            @inline(__always) func w(_ i: Int) -> UInt32 { raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self) }
            var h = w(0) &* 0x9E37_79B1 ^ w(1) &* 0x85EB_CA77 ^ w(2) &* 0xC2B2_AE3D ^ w(3) &* 0x27D4_EB2F
            h ^= w(4) &* 0x1656_67B1
            h ^= h >> 15
            return Int((h &* 0x2C1B_3C6D) >> UInt32(32 - XDPLB_VIP_TABLE_BITS))
        }
    }

    private let map: BPFMap
    private let base: UnsafeMutableRawPointer
    private let length: Int

    /// Maps the table's values into this process.
    public init(map: BPFMap) throws(BPFError) {
        guard Int(map.info.maxEntries) == Self.slots, Int(map.info.valueSize) == MemoryLayout<xdplb_vip_slot>.stride else {
            throw BPFError("map '\(map.name)' is not a VIP table of \(Self.slots) slots", errno: EINVAL,
                           hint: "pins from an older xdplb: run 'xdplb down' first")
        }
        self.map = map
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        length = (Self.slots * MemoryLayout<xdplb_vip_slot>.stride + page - 1) / page * page
        guard let p = xdplb_map_mmap(map.fd, length) else {
            throw BPFError("mmap the VIP table '\(map.name)'", errno: errno)
        }
        base = p
    }

    deinit { xdplb_map_munmap(base, length) }

    /// Slot `i` as it is now.
    public func slot(_ i: Int) -> xdplb_vip_slot {
        base.load(fromByteOffset: i * MemoryLayout<xdplb_vip_slot>.stride, as: xdplb_vip_slot.self)
    }

    /// Every key the table holds, with its slot and meta.
    public func contents() -> [(slot: Int, key: xdplb_vip_key, meta: xdplb_vip_meta)] {
        (0..<Self.slots).compactMap { i in
            let s = slot(i)
            return s.key.family == 0 ? nil : (i, s.key, s.meta)
        }
    }

    private func write(_ i: Int, key: xdplb_vip_key, meta: xdplb_vip_meta) {
        var v = xdplb_vip_slot()
        v.key = key
        v.meta = meta
        xdplb_vip_slot_write(base, UInt32(i), &v)
    }

    /// Keys of the last `sync` that found their window full: they live only in
    /// the hash map, which the program asks for a key missing from a full window.
    public private(set) var unplaced: [xdplb_vip_key] = []

    /// Makes the table hold exactly `want` (and whatever it holds for the keys
    /// in `keep`): changed metas rewritten in place, new keys put in the first
    /// free slot of their probe window (a removed key's slot counts as free and
    /// is overwritten in one write, so a window never shows a free slot while a
    /// key that could go there is missing), then the remaining removed keys'
    /// slots cleared. A new key whose window is full is not placed (see
    /// ``unplaced``); the program then reads it from the hash map. Never fails
    /// for lack of space. Returns the number of slots written.
    @discardableResult
    public func sync(_ want: [xdplb_vip_key: xdplb_vip_meta], keep: Set<xdplb_vip_key> = []) throws(BPFError) -> Int {
        var have: [xdplb_vip_key: (slot: Int, meta: xdplb_vip_meta)] = [:]
        for c in contents() { have[c.key] = (c.slot, c.meta) }
        var written = 0
        var freed = Set(have.filter { want[$0.key] == nil && !keep.contains($0.key) }.map(\.value.slot))
        unplaced = []
        // Each key's home once, not once per comparison of the sort.
        for (key, meta, h) in want.map({ ($0.key, $0.value, Self.home($0.key)) }).sorted(by: { $0.2 < $1.2 }) {
            if let cur = have[key] {
                if !ABI.bytesEqual(cur.meta, meta) {
                    write(cur.slot, key: key, meta: meta)
                    written += 1
                }
                continue
            }
            guard let free = (0..<Self.probes).lazy.map({ (h + $0) % Self.slots })
                .first(where: { freed.contains($0) || slot($0).key.family == 0 }) else {
                unplaced.append(key)
                continue
            }
            freed.remove(free)
            write(free, key: key, meta: meta)
            written += 1
        }
        for i in freed.sorted() {
            write(i, key: xdplb_vip_key(), meta: xdplb_vip_meta())
            written += 1
        }
        return written
    }

    /// Rewrites in place the metas of keys the table already holds (each
    /// slot with the seqlock protocol, unchanged ones not at all): the VIP
    /// set is the same, only rings or flags changed.
    /// - Returns: false, having written nothing, when a key is neither in its
    ///   probe window nor among the ``unplaced`` (then ``sync(_:keep:)`` it).
    public func update(_ changes: [xdplb_vip_key: xdplb_vip_meta]) -> Bool {
        var writes: [(slot: Int, key: xdplb_vip_key, meta: xdplb_vip_meta)] = []
        writes.reserveCapacity(changes.count)
        let outside = Set(unplaced)
        for (key, meta) in changes {
            let h = Self.home(key)
            if let i = (0..<Self.probes).lazy.map({ (h + $0) % Self.slots }).first(where: { self.slot($0).key == key }) {
                writes.append((i, key, meta))
            } else if !outside.contains(key) {
                return false
            }
        }
        for w in writes where !ABI.bytesEqual(slot(w.slot).meta, w.meta) { write(w.slot, key: w.key, meta: w.meta) }
        return true
    }
}
