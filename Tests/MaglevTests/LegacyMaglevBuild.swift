import Maglev

/// A frozen copy of the table build as it was before the compact (`UInt16`)
/// storage and the faster fill: `populate`, `claim` and `fillWeighted`
/// verbatim (with the identity hashes they use), plus the sort and weight-0
/// filter of `MaglevTable.init`. Tests compare the current build against it
/// slot for slot: cluster nodes running different versions must build the
/// same tables. Never "fix" this file; it is the old behaviour by definition.
enum LegacyMaglevBuild {
    static let fnvOffsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    static let fnvPrime: UInt64 = 0x0000_0100_0000_01b3
    static let fnvOffsetBasis2: UInt64 = 0x6c62_272e_07bb_0142

    /// The backends as the table holds them (sorted by UTF-8 bytes, weight > 0) and
    /// the slots the old build gave them (-1 for an empty table). Input must be valid.
    static func build(_ input: [MaglevBackend], size m: Int) -> (backends: [MaglevBackend], slots: [Int32]) {
        let sorted = input.sorted { $0.identity.utf8.lexicographicallyPrecedes($1.identity.utf8) }
        let active = sorted.filter { $0.weight > 0 }
        return (active, populate(active, size: m))
    }

    @inline(__always)
    static func mix64(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    static func identityHashes(_ identity: String) -> (h1: UInt64, h2: UInt64) {
        var a = fnvOffsetBasis
        var b = fnvOffsetBasis2
        for byte in identity.utf8 {
            a = (a ^ UInt64(byte)) &* fnvPrime
            b = (b ^ UInt64(byte)) &* fnvPrime
        }
        return (mix64(a), mix64(b))
    }

    static func permutation(_ identity: String, size m: Int) -> (offset: Int, skip: Int) {
        let (h1, h2) = identityHashes(identity)
        return (Int(h1 % UInt64(m)), Int(h2 % UInt64(m - 1)) + 1)
    }

    static func populate(_ backends: [MaglevBackend], size m: Int) -> [Int32] {
        var slots = [Int32](repeating: -1, count: m)
        let n = backends.count
        guard n > 0 else { return slots }

        var cursor = [Int](repeating: 0, count: n)
        var skip = [Int](repeating: 0, count: n)
        for i in 0 ..< n {
            (cursor[i], skip[i]) = permutation(backends[i].identity, size: m)
        }
        let maxW = UInt64(backends.lazy.map(\.weight).max()!)
        let equalWeights = backends.allSatisfy { UInt64($0.weight) == maxW }

        slots.withUnsafeMutableBufferPointer { table in
            cursor.withUnsafeMutableBufferPointer { cur in
                skip.withUnsafeBufferPointer { sk in
                    if equalWeights {
                        var filled = 0
                        outer: while true {
                            for i in 0 ..< n {
                                claim(i, table: table, cursor: cur, skip: sk, size: m)
                                filled += 1
                                if filled == m { break outer }
                            }
                        }
                    } else {
                        fillWeighted(backends, maxWeight: maxW, table: table, cursor: cur, skip: sk, size: m)
                    }
                }
            }
        }
        return slots
    }

    @inline(__always)
    static func claim(
        _ i: Int, table: UnsafeMutableBufferPointer<Int32>, cursor: UnsafeMutableBufferPointer<Int>,
        skip: UnsafeBufferPointer<Int>, size m: Int
    ) {
        var c = cursor[i]
        let s = skip[i]
        while table[c] >= 0 {
            c += s
            if c >= m { c -= m }
        }
        table[c] = Int32(truncatingIfNeeded: i)
        c += s
        if c >= m { c -= m }
        cursor[i] = c
    }

    static func fillWeighted(
        _ backends: [MaglevBackend], maxWeight maxW: UInt64, table: UnsafeMutableBufferPointer<Int32>,
        cursor: UnsafeMutableBufferPointer<Int>, skip: UnsafeBufferPointer<Int>, size m: Int
    ) {
        let n = backends.count
        let indexBits: UInt64 = 12
        let indexMask: UInt64 = (1 << indexBits) - 1
        var weight = [UInt64](repeating: 0, count: n)
        var turns = [UInt64](repeating: 0, count: n)
        var heap = [UInt64](repeating: 0, count: n)
        for i in 0 ..< n {
            let w = UInt64(backends[i].weight)
            weight[i] = w
            let round = (maxW + w - 1) / w
            heap[i] = round << indexBits | UInt64(i)
        }
        heap.sort()

        weight.withUnsafeBufferPointer { weight in
            turns.withUnsafeMutableBufferPointer { turns in
                heap.withUnsafeMutableBufferPointer { heap in
                    var filled = 0
                    while true {
                        let i = Int(heap[0] & indexMask)
                        claim(i, table: table, cursor: cursor, skip: skip, size: m)
                        filled += 1
                        if filled == m { return }
                        let t = turns[i] + 1
                        turns[i] = t
                        let w = weight[i]
                        let round = ((t + 1) * maxW + w - 1) / w
                        let key = round << indexBits | UInt64(i)
                        var pos = 0
                        while true {
                            var child = 2 * pos + 1
                            if child >= n { break }
                            if child + 1 < n && heap[child + 1] < heap[child] { child += 1 }
                            if heap[child] >= key { break }
                            heap[pos] = heap[child]
                            pos = child
                        }
                        heap[pos] = key
                    }
                }
            }
        }
    }
}
