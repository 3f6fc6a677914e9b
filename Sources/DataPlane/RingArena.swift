import CXdplb
import Foundation

/// The address space for every ring mapping of one ``RingWriter/build(_:arena:ids:)``:
/// each request's mappings (its current ring, its previous ring, its new
/// ring) go at offsets fixed before the workers start, and all of them go
/// with one munmap in ``release()``. One munmap per ring would take the
/// process's address-space lock and send a TLB shootdown to the other cores
/// each time, interrupting the workers building rings there (on a VM each
/// interrupt is a VM exit): 512 of them in a first apply of 512 VIPs.
///
/// When the reservation fails, mappings are placed anywhere and each is
/// unmapped on its own, as before.
final class RingArena: @unchecked Sendable {
    /// Which of a request's rings a mapping is of.
    enum Role { case current, previous, new }

    private let base: UnsafeMutableRawPointer?
    private let length: Int
    /// Per request: the offset of its first mapping and the length of each.
    private let offsets: [(start: Int, each: Int)]
    private let lock = NSLock()
    private var released = false

    /// Reserves room for every mapping `requests` may make (none when they make none).
    init(_ requests: [RingRequest]) {
        var offsets: [(start: Int, each: Int)] = []
        offsets.reserveCapacity(requests.count)
        var total = 0
        for r in requests {
            let each = xdplb_ring_map_len(UInt32(r.size))
            offsets.append((total, each))
            total += Self.roles(r).count * each
        }
        self.offsets = offsets
        self.length = total
        self.base = total > 0 ? xdplb_region_reserve(total) : nil
    }

    /// The mappings a request makes, in their order in its part of the region.
    static func roles(_ r: RingRequest) -> [Role] {
        var roles: [Role] = []
        if r.inPlace != nil || r.current != nil { roles.append(.current) }
        if r.inPlace?.previous != nil { roles.append(.previous) }
        if r.inPlace == nil { roles.append(.new) }
        return roles
    }

    /// Where request `index`'s mapping of `role` goes (nil: anywhere, unmapped on its own).
    func place(_ index: Int, _ role: Role, of r: RingRequest) -> UnsafeMutableRawPointer? {
        guard let base, let k = Self.roles(r).firstIndex(of: role) else { return nil }
        let o = offsets[index]
        return base + o.start + k * o.each
    }

    /// Unmaps every mapping placed in the region (once; later calls do nothing).
    func release() {
        lock.lock()
        defer { lock.unlock() }
        guard !released, let base else { return }
        released = true
        munmap(base, length)
    }

    deinit { release() }
}
