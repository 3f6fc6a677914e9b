import BPF
import CXdplb
@testable import DataPlane
import Foundation
import Maglev
import Testing

/// The build's mappings in one region (``RingArena``) and the ring-table
/// batches that return before the kernel's wait (``RingTableBatch``), on real maps.
@Suite("ring mappings in one region, ring swaps that end their wait later", .serialized)
struct RingSwapTests {
    /// Whether any mapping of this process covers `address` (/proc/self/maps).
    static func isMapped(_ address: UnsafeMutableRawPointer) throws -> Bool {
        let a = UInt(bitPattern: address)
        // /proc files report size 0: read to the end instead of by size.
        let data = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps")).readToEnd() ?? Data()
        let text = String(decoding: data, as: UTF8.self)
        #expect(!text.isEmpty)
        return text.split(separator: "\n").contains { line in
            let range = line.split(separator: " ")[0].split(separator: "-")
            guard range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16) else { return false }
            return lo <= a && a < hi
        }
    }

    static func backends(_ names: [String]) -> [MaglevBackend] { names.map { MaglevBackend(identity: $0) } }

    @Test("new rings written through one region read back as their tables; releasing it unmaps them all, the rings stay")
    func arenaWritesAndReleases() throws {
        let ids: [String: UInt32] = ["a": 1, "b": 2, "c": 3, "d": 4]
        let requests = [
            RingRequest(name: "v1", backends: Self.backends(["a", "b", "c"]), size: 65537, tag: 1),
            RingRequest(name: "v2", backends: Self.backends(["b", "d"]), size: 251, tag: 2),
            RingRequest(name: "v3", backends: Self.backends(["a", "b", "c", "d"]), size: 4099, tag: 3, down: ["c"]),
        ]
        let arena = RingArena(requests)
        let places = requests.indices.map { arena.place($0, .new, of: requests[$0]) }
        // Placed one after another, each on a page boundary, none reused.
        let addresses = places.map { UInt(bitPattern: $0!) }
        #expect(Set(addresses).count == 3)
        #expect(addresses.allSatisfy { $0 % UInt(sysconf(Int32(_SC_PAGESIZE))) == 0 })
        #expect(arena.place(0, .current, of: requests[0]) == nil, "a request with no current ring maps none")

        let built = RingWriter.build(requests, arena: arena) { ids[$0] ?? 0 }
        for (r, p) in zip(requests, places) {
            #expect(try Self.isMapped(p!))
            // The ring map itself is mapped there: its head reads back through the place.
            let head = p!.load(as: xdplb_ring_head.self)
            #expect(head.size == UInt32(r.size) && head.tag == r.tag)
        }
        arena.release()
        for p in places { #expect(try !Self.isMapped(p!), "the region is gone after one release") }
        arena.release()   // a second release does nothing

        for (r, result) in zip(requests, built) {
            let ring = try result.get()
            let contents = try RingContents.read(try #require(ring.map))
            let table = try MaglevTable(backends: r.backends, size: r.size, down: r.down)
            #expect(contents.size == UInt32(r.size) && contents.tag == r.tag)
            let want = table.slotIndexes.map { ids[table.backends[Int($0)].identity]! }
            #expect((0..<r.size).map { contents.backendID($0) } == want, "\(r.name): every slot as the table")
            #expect(ring.summary.digest == table.digest)
        }
    }

    @Test("a ring-table batch: once stored every slot reads back its new ring; wait() then ends the grace period")
    func batchStoresThenWaits() throws {
        let balancer = try Balancer(lruSize: 4096)
        var rings: [(index: UInt32, ring: BPFMap)] = []
        for k in 0..<UInt32(64) {
            let fd = xdplb_ring_map_create(RingWriter.elements(size: 251), "xdplb_ring")
            #expect(fd >= 0)
            rings.append((k * 3 + 1, try BPFMap(owning: fd, name: "ring \(k)")))
        }
        let batch = RingTableBatch(balancer.maps.rings, rings)
        try batch.waitStored()
        for (index, ring) in rings {
            #expect(try balancer.maps.rings.lookup(index, as: UInt32.self) == ring.info.id)
        }
        try batch.wait()
        try batch.wait()   // joined once; waiting again returns at once
    }

    @Test("a batch whose last index already holds its ring: waitStored waits for the whole batch")
    func batchLastAlreadyIn() throws {
        let balancer = try Balancer(lruSize: 4096)
        func ring(_ name: String) throws -> BPFMap {
            try BPFMap(owning: xdplb_ring_map_create(RingWriter.elements(size: 251), "xdplb_ring"), name: name)
        }
        let kept = try ring("kept"), first = try ring("first")
        try RingTableBatch(balancer.maps.rings, [(9, kept)]).wait()
        let batch = RingTableBatch(balancer.maps.rings, [(3, first), (9, kept)])
        try batch.waitStored()
        #expect(try balancer.maps.rings.lookup(UInt32(3), as: UInt32.self) == first.info.id)
        try batch.wait()
    }

    @Test("a batch the kernel refuses part-way throws from waitStored, and again from wait")
    func batchErrorIsThrown() throws {
        let balancer = try Balancer(lruSize: 4096)
        let fd = xdplb_ring_map_create(RingWriter.elements(size: 251), "xdplb_ring")
        let good = try BPFMap(owning: fd, name: "good ring")
        // The backends map is not of the ring table's inner map type: the kernel refuses it.
        let batch = RingTableBatch(balancer.maps.rings, [(5, good), (6, balancer.maps.backends)])
        #expect(throws: BPFError.self) { try batch.waitStored() }
        #expect(throws: BPFError.self) { try batch.wait() }
        #expect(try balancer.maps.rings.lookup(UInt32(5), as: UInt32.self) == good.info.id, "the elements before the refused one are in")
        #expect(try balancer.maps.rings.lookup(UInt32(6), as: UInt32.self) == nil)
    }
}
