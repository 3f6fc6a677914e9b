import Maglev
import Testing

/// Down backends: their slots handed over in the table of every backend
/// (``MaglevTable/withDown(_:)``), no rebuild.
@Suite("Maglev overlay of down backends")
struct MaglevOverlayTests {
    /// Slots per identity, down ones included.
    static func counts(_ t: MaglevTable) -> [String: Int] { t.slotCounts() }

    @Test("only the down backends' slots move, and they have none left", arguments: [(10, 251), (100, 65537), (7, 65537)])
    func onlyDownSlotsMove(n: Int, m: Int) throws {
        let all = v4Backends(n)
        let base = try MaglevTable(backends: all, size: m)
        let down: Set<String> = [all[1].identity, all[n - 1].identity]
        let t = try MaglevTable(backends: all, size: m, down: down)
        #expect(t.backends == base.backends, "down backends stay in the list, with no slot")
        let was = owners(base), now = owners(t)
        var moved = 0
        for s in 0 ..< m {
            if down.contains(was[s]!) {
                moved += 1
                #expect(!down.contains(now[s]!), "slot \(s) still on a down backend")
            } else if was[s] != now[s] {
                Issue.record("slot \(s) of up backend \(was[s]!) moved to \(now[s]!)")
            }
        }
        #expect(moved == t.overlay.slots.count && moved > 0)
        for d in down { #expect(t.slotCounts()[d] == 0) }
        // The overlay names each handed slot's base owner.
        for (s, o) in zip(t.overlay.slots, t.overlay.owners) { #expect(base.slotIndexes[Int(s)] == o) }
        #expect(t.digest != base.digest)
        #expect(t.withDown([]) == base, "with nobody down the base comes back exactly")
    }

    @Test("the same table whatever the input order and however the down set was reached")
    func independentOfHistory() throws {
        let all = mixedBackends(40)
        let m = 4099
        var rng = SplitMix64(seed: 7)
        var current = try MaglevTable(backends: all, size: m)
        var down: Set<String> = []
        for step in 0 ..< 60 {
            let b = all[Int(rng.next() % UInt64(all.count))].identity
            if down.contains(b) { down.remove(b) } else { down.insert(b) }
            if down.count == all.count { down.remove(b) }
            current = current.withDown(down)
            let fresh = try MaglevTable(backends: all.shuffled(using: &rng), size: m, down: down)
            #expect(current == fresh, "step \(step): \(down.count) down")
            if current != fresh { return }
        }
    }

    @Test("a second backend going down moves only its slots; one coming back takes its own back and its share of those still down")
    func minimalDisruption() throws {
        let all = v4Backends(20)
        let m = 65537
        let base = try MaglevTable(backends: all, size: m)
        let a = all[3].identity, b = all[11].identity
        let one = base.withDown([a])
        let two = one.withDown([a, b])
        let o1 = owners(one), o2 = owners(two), o0 = owners(base)
        for s in 0 ..< m where o1[s] != o2[s] { #expect(o1[s] == b, "slot \(s) moved from \(o1[s]!) though only \(b) went down") }
        // b comes back: it takes every slot it had in the base, and of a's slots only some; nothing else moves.
        let back = two.withDown([a])
        #expect(back == one)
        let ob = owners(back)
        for s in 0 ..< m where o2[s] != ob[s] {
            #expect(ob[s] == b && (o0[s] == b || o0[s] == a), "slot \(s): \(o2[s]!) → \(ob[s]!)")
        }
    }

    @Test("a down backend's slots spread over the up ones in proportion to weight")
    func balanced() throws {
        // Equal weights: 10 backends, one down: ~6,554 slots over 9, ~728 each.
        let ten = v4Backends(10)
        let m = 65537
        let base = try MaglevTable(backends: ten, size: m)
        let t = base.withDown([ten[4].identity])
        let before = base.slotCounts(), after = t.slotCounts()
        let handed = before[ten[4].identity]!
        for b in ten where b.identity != ten[4].identity {
            let got = Double(after[b.identity]! - before[b.identity]!)
            #expect(abs(got - Double(handed) / 9) < 0.15 * Double(handed) / 9, "\(b.identity) got \(got) of \(handed)")
        }
        // Weights 1 ... 6 among the up ones; the down one had weight 6.
        let weighted = v4Backends(7) { UInt32(($0 % 6) + 1) * 100 }
        let wb = try MaglevTable(backends: weighted, size: m)
        let gone = weighted[5].identity
        let wt = wb.withDown([gone])
        let handedW = wb.slotCounts()[gone]!
        let upWeight = weighted.filter { $0.identity != gone }.reduce(0) { $0 + Double($1.weight) }
        for b in weighted where b.identity != gone {
            let got = Double(wt.slotCounts()[b.identity]! - wb.slotCounts()[b.identity]!)
            let want = Double(handedW) * Double(b.weight) / upWeight
            #expect(abs(got - want) < 0.2 * want, "\(b.identity) (weight \(b.weight)) got \(got), want ~\(want)")
        }
    }

    @Test("every backend down: the empty table; a table read back checks its slots")
    func edges() throws {
        let all = v4Backends(3)
        let t = try MaglevTable(backends: all, size: 11, down: Set(all.map(\.identity)))
        #expect(t == (try MaglevTable(backends: [], size: 11)))
        #expect(try MaglevTable(backends: all, size: 11, down: ["10.9.9.9"]) == (try MaglevTable(backends: all, size: 11)),
                "an identity not in the table is ignored")
        #expect(throws: MaglevError.self) { try MaglevTable(backends: all + [all[0]], size: 11, down: []) }
    }
}

