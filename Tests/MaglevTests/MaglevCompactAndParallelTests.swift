import Maglev
import Testing

@Suite("MaglevTable compact storage and parallel build")
struct MaglevCompactAndParallelTests {
    // MARK: compact storage

    @Test("slots is slotIndexes as Int32, emptySlot as -1")
    func slotsMirrorsIndexes() throws {
        for (n, m) in [(1, 3), (7, 251), (100, 65537), (4095, 65537)] {
            let t = try MaglevTable(backends: generatedBackends(n, family: .mixed, weights: .mixed), size: m)
            #expect(t.slotIndexes.count == m)
            #expect(t.slots == t.slotIndexes.map { $0 == MaglevTable.emptySlot ? -1 : Int32($0) })
            if t.backends.isEmpty {
                #expect(t.slotIndexes.allSatisfy { $0 == MaglevTable.emptySlot })
            } else {
                #expect(t.slotIndexes.allSatisfy { Int($0) < t.backends.count })
            }
        }
        let empty = try MaglevTable(backends: [], size: 11)
        #expect(empty.slotIndexes == [UInt16](repeating: MaglevTable.emptySlot, count: 11))
        #expect(empty.slots == [Int32](repeating: -1, count: 11))
        #expect(MaglevTable.emptySlot == 0xFFFF && Int(MaglevTable.emptySlot) > MaglevTable.maxBackends)
    }

    @Test("backend(forHash:) and slotCounts() read the compact table")
    func lookupsUseIndexes() throws {
        let t = try MaglevTable(backends: generatedBackends(300, family: .v6, weights: .mixed), size: 65537)
        var rng = SplitMix64(seed: 99)
        for _ in 0 ..< 2000 {
            let h = UInt32(truncatingIfNeeded: rng.next())
            let i = t.slotIndexes[Int(h % 65537)]
            #expect(t.backend(forHash: h) == t.backends[Int(i)])
        }
        var want = [String: Int]()
        for b in t.backends { want[b.identity] = 0 }
        for s in t.slotIndexes { want[t.backends[Int(s)].identity]! += 1 }
        #expect(t.slotCounts() == want)
    }

    @Test("exportSlots writes every slot's value packed 4 a word and gives slotCounts() and digest")
    func exportSlotsMatchesSeparatePasses() throws {
        // M mod 4 = 0, 1, 2, 3 and 1 (65537, 655373); no backends; one; weighted; many.
        for (n, m) in [(0, 11), (1, 3), (3, 7), (7, 251), (5, 13), (100, 65537), (4095, 65537), (50, 655_373)] {
            let t = try MaglevTable(backends: generatedBackends(n, family: .mixed, weights: .mixed), size: m)
            var rng = SplitMix64(seed: UInt64(n * 1000 + m))
            let values = (0 ... t.backends.count).map { _ in UInt16(truncatingIfNeeded: rng.next()) | 1 }
            let words = (m + 3) / 4
            let buffer = UnsafeMutablePointer<UInt64>.allocate(capacity: words)
            defer { buffer.deallocate() }
            buffer.initialize(repeating: 0xDEAD_BEEF_DEAD_BEEF, count: words)
            let export = t.exportSlots(values: values, into: buffer)
            #expect(export.slotCounts == t.slotCounts(), "n \(n) M \(m)")
            #expect(export.digest == t.digest, "n \(n) M \(m)")
            var mismatches = 0
            for q in 0 ..< words {
                var want: UInt64 = 0
                for k in 0 ..< 4 where q * 4 + k < m {
                    let s = t.slotIndexes[q * 4 + k]
                    want |= UInt64(s == MaglevTable.emptySlot ? values[t.backends.count] : values[Int(s)]) << UInt64(16 * k)
                }
                if buffer[q] != want { mismatches += 1 }
            }
            #expect(mismatches == 0, "n \(n) M \(m): \(mismatches) of \(words) words differ")
        }
    }

    @Test("a table holds 2 bytes a slot")
    func compactSize() throws {
        let t = try MaglevTable(backends: generatedBackends(10, family: .v4, weights: .equal), size: 65537)
        #expect(t.slotIndexes.count * MemoryLayout<UInt16>.stride == 131_074)
    }

    // MARK: parallel build

    /// Tables of all sizes and kinds, with failures in among them.
    static let requests: [MaglevTable.Request] = {
        var out: [MaglevTable.Request] = []
        var rng = SplitMix64(seed: 31)
        for (k, n) in [1, 2, 10, 100, 1000, 4095, 0, 37].enumerated() {
            for size in n >= 1000 ? [3, 251] : [3, 251, 65537] {
                let family = IdentityFamily.allCases[k % 3]
                let weights = WeightMode.allCases[(k + size) % 2]
                out.append(.init(backends: generatedBackends(n, family: family, weights: weights), size: size))
            }
        }
        out.append(.init(backends: generatedBackends(50, family: .v4, weights: .mixed), size: 655_373))
        out.append(.init(backends: (0 ..< 20).map {
            MaglevBackend(identity: generatedIdentity($0, family: .v6), weight: UInt32.random(in: 1 ... 1000, using: &rng))
        }, size: 4099))
        // Failures, in among the rest.
        out.insert(.init(backends: generatedBackends(3, family: .v4, weights: .equal), size: 65536), at: 2)
        out.insert(.init(backends: generatedBackends(3, family: .v4, weights: .equal), size: 2), at: 5)
        out.insert(.init(backends: [.init(identity: "10.0.0.1"), .init(identity: "10.0.0.1")], size: 7), at: 9)
        out.insert(.init(backends: generatedBackends(4096, family: .v4, weights: .equal), size: 65537), at: 11)
        out.insert(.init(backends: [.init(identity: "")], size: 7), at: 14)
        out.insert(.init(backends: [.init(identity: "a", weight: 1001)], size: 7), at: 20)
        return out
    }()

    /// ``requests`` built one by one with ``MaglevTable/init(backends:size:)``.
    static let serial: [Result<MaglevTable, MaglevError>] = requests.map { r in
        Result { () throws(MaglevError) in try MaglevTable(backends: r.backends, size: r.size) }
    }

    @Test("results equal the serial build, in request order", arguments: [2, 3, 64])
    func parallelEqualsSerial(maxConcurrency: Int) {
        let parallel = MaglevTable.build(Self.requests, maxConcurrency: maxConcurrency)
        #expect(parallel.count == Self.requests.count)
        #expect(parallel == Self.serial)
        #expect(Self.serial.filter { if case .failure = $0 { true } else { false } }.count == 6)
    }

    @Test("the default concurrency, one request, no requests, and concurrency below 1")
    func parallelEdges() throws {
        #expect(MaglevTable.build(Self.requests) == Self.serial)
        #expect(MaglevTable.build(Self.requests, maxConcurrency: 1) == Self.serial)
        #expect(MaglevTable.build([]).isEmpty)
        #expect(MaglevTable.build([], maxConcurrency: 4).isEmpty)
        let one = MaglevTable.Request(backends: generatedBackends(5, family: .v4, weights: .equal), size: 251)
        #expect(MaglevTable.build([one], maxConcurrency: 4) == [.success(try MaglevTable(backends: one.backends, size: 251))])
        let small = Array(Self.requests.prefix(12))
        #expect(MaglevTable.build(small, maxConcurrency: 0) == Array(Self.serial.prefix(12)))
        #expect(MaglevTable.build(small, maxConcurrency: -3) == Array(Self.serial.prefix(12)))
    }

    @Test("many equal requests (more than the concurrency) all come back")
    func manySmall() {
        let reqs = (0 ..< 100).map { k in
            MaglevTable.Request(backends: generatedBackends(k % 17 + 1, family: .mixed, weights: .mixed), size: 1009)
        }
        let parallel = MaglevTable.build(reqs, maxConcurrency: 4)
        for (k, r) in parallel.enumerated() {
            #expect(r == MaglevTable.build([reqs[k]], maxConcurrency: 1)[0], "request \(k)")
        }
    }
}
