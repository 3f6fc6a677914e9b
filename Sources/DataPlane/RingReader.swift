import BPF
import CXdplb

/// Reads a ring map back from the kernel (xdplb_abi.h layout), for tests and
/// tools: what the program sees, slot by slot.
public struct RingContents: Sendable, Equatable {
    /// The head: M and the ring's tag.
    public var size: UInt32
    public var tag: UInt32
    /// Every slot's raw value (backend id | tag << XDPLB_RING_ID_BITS).
    public var slots: [UInt16]

    /// The backend id of slot `s` (0: empty).
    public func backendID(_ s: Int) -> UInt32 { UInt32(slots[s]) & ((1 << UInt32(XDPLB_RING_ID_BITS)) - 1) }

    /// Reads the ring of VIP slot `index` in `rings` (nil: none).
    public static func read(_ rings: BPFMap, index: UInt32) throws(BPFError) -> RingContents? {
        guard let id = try rings.lookup(index, as: UInt32.self) else { return nil }
        return try read(try BPFMap.open(id: id, name: "ring \(index)"))
    }

    /// Reads one ring map: the head, then each element's four slots.
    public static func read(_ ring: BPFMap) throws(BPFError) -> RingContents {
        guard let head = try ring.lookup(UInt32(0), as: xdplb_ring_head.self) else {
            throw BPFError("read ring head", errno: ENOENT)
        }
        var slots: [UInt16] = []
        slots.reserveCapacity(Int(head.size))
        let perElem = Int(XDPLB_RING_SLOTS_PER_ELEM)
        var key: UInt32 = 1
        while slots.count < Int(head.size) {
            guard let e = try ring.lookup(key, as: UInt64.self) else { throw BPFError("read ring element \(key)", errno: ENOENT) }
            for k in 0..<perElem where slots.count < Int(head.size) {
                slots.append(UInt16(truncatingIfNeeded: e >> UInt64(16 * k)))
            }
            key += 1
        }
        return RingContents(size: head.size, tag: head.tag, slots: slots)
    }
}
