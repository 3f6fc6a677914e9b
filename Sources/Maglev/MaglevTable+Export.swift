extension MaglevTable {
    /// What ``exportSlots(values:into:)`` gives besides the slots: what
    /// ``slotCounts()`` and ``digest`` give, from the same pass.
    public struct SlotExport: Sendable, Equatable {
        /// Slots per backend identity, as ``MaglevTable/slotCounts()``.
        public var slotCounts: [String: Int]
        /// ``MaglevTable/digest``.
        public var digest: String

        public init(slotCounts: [String: Int], digest: String) {
            self.slotCounts = slotCounts
            self.digest = digest
        }
    }

    /// Writes the table into `words` the way a ring map holds it, and counts
    /// and digests it from the same reads (one pass over the slots instead of
    /// three).
    ///
    /// Slot s is written as `values[i]` for backend i (`values[backends.count]`
    /// for an empty slot) into bits 16·(s mod 4) of `words[s / 4]`; the unused
    /// slots of the last word are 0.
    /// - Parameters:
    ///   - values: One value per backend of ``backends``, in that order, then an empty slot's.
    ///   - words: Room for ⌈M/4⌉ words.
    public func exportSlots(values: [UInt16], into words: UnsafeMutablePointer<UInt64>) -> SlotExport {
        precondition(values.count == backends.count + 1, "one value per backend, then one for an empty slot")
        let m = size
        let whole = m / 4, rest = m % 4
        var counts = [Int](repeating: 0, count: backends.count)
        var hs = Self.fnvOffsetBasis
        slotIndexes.withUnsafeBufferPointer { table in
            values.withUnsafeBufferPointer { v in
                counts.withUnsafeMutableBufferPointer { c in
                    guard !c.isEmpty else {
                        // No backends: every slot is empty.
                        let e = UInt64(v[0])
                        for q in 0 ..< whole { words[q] = e | e << 16 | e << 32 | e << 48 }
                        if rest > 0 { words[whole] = (0 ..< rest).reduce(0) { $0 | e << UInt64(16 * $1) } }
                        hs = Self.slotsHash(table)
                        return
                    }
                    // With backends every slot has one (``populate``), so no empty test here.
                    let raw = UnsafeRawPointer(table.baseAddress!)
                    for q in 0 ..< whole {
                        let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: q &* 8, as: UInt64.self))
                        hs = (hs ^ w) &* Self.fnvPrime
                        let s0 = Int(w & 0xFFFF), s1 = Int(w &>> 16 & 0xFFFF)
                        let s2 = Int(w &>> 32 & 0xFFFF), s3 = Int(w &>> 48)
                        words[q] = UInt64(v[s0]) | UInt64(v[s1]) &<< 16 | UInt64(v[s2]) &<< 32 | UInt64(v[s3]) &<< 48
                        c[s0] &+= 1
                        c[s1] &+= 1
                        c[s2] &+= 1
                        c[s3] &+= 1
                    }
                    if rest > 0 {
                        var w: UInt64 = 0, out: UInt64 = 0
                        for k in 0 ..< 4 {
                            let s = whole &* 4 &+ k < m ? table[whole &* 4 &+ k] : Self.emptySlot
                            w |= UInt64(s) &<< UInt64(16 * k)
                            if s != Self.emptySlot {
                                out |= UInt64(v[Int(s)]) &<< UInt64(16 * k)
                                c[Int(s)] &+= 1
                            }
                        }
                        hs = (hs ^ w) &* Self.fnvPrime
                        words[whole] = out
                    }
                }
            }
        }
        return SlotExport(slotCounts: countsByIdentity(counts), digest: Self.digestText(backendsHash: backendsHash, slotsHash: hs, size: m))
    }
}
