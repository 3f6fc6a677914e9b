import ArgumentParser
import Foundation
import Maglev

/// `xdplb maglev`: build a Maglev table offline and show how it splits.
struct MaglevCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maglev",
        abstract: "Build a Maglev table offline: slots per backend, balance and digest."
    )

    @Option(help: "Comma-separated backend identities (addresses), e.g. 10.0.4.2,10.0.4.3.")
    var backends: String

    @Option(help: "Comma-separated weights, one per backend (default: all 1).")
    var weights: String?

    @Option(help: "Comma-separated backends of --backends that are down: the table of all of them, with the down ones' slots handed over to the others, as the data plane has it.")
    var down: String?

    @Option(help: "Ring size M, a prime.")
    var size: Int = MaglevTable.defaultSize

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        guard MaglevTable.sizeRange.contains(size) else { throw ValidationError("--size: \(MaglevError.ringSizeOutOfRange(size: size))") }
        guard isPrime(size) else {
            throw ValidationError("--size: \(MaglevError.ringSizeNotPrime(size: size, suggestion: nextPrime(after: size)))")
        }
        guard backendList.count <= MaglevTable.maxBackends else {
            throw ValidationError("--backends: \(MaglevError.tooManyBackends(count: backendList.count))")
        }
        let names = backendList
        guard !names.isEmpty else { throw ValidationError("--backends needs at least one backend") }
        for d in downList where !names.contains(d) {
            throw ValidationError("--down: '\(d)' is not one of --backends")
        }
        if let weights {
            let w = weights.split(separator: ",", omittingEmptySubsequences: false)
            guard w.count == names.count else {
                throw ValidationError("--weights has \(w.count) values for \(names.count) backends")
            }
            for x in w where UInt32(x.trimmingCharacters(in: .whitespaces)).map({ $0 <= MaglevTable.maxWeight }) != true {
                throw ValidationError("--weights: '\(x)' is not an integer in 0...\(MaglevTable.maxWeight)")
            }
        }
    }

    var backendList: [String] {
        backends.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    var downList: [String] {
        (down ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() throws {
        let names = backendList
        let w = weights?.split(separator: ",").map { UInt32($0.trimmingCharacters(in: .whitespaces))! }
            ?? Array(repeating: 1, count: names.count)
        // Every backend in the ring down: the agent fails the VIP open to all of them.
        let inRing = Set(zip(names, w).filter { $0.1 > 0 }.map(\.0))
        let failOpen = !downList.isEmpty && inRing.isSubset(of: Set(downList))
        if failOpen && !json {
            print("every backend is down: the VIP fails open to all of them, this table")
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let table: MaglevTable
        do {
            table = try MaglevTable(backends: zip(names, w).map { MaglevBackend(identity: $0, weight: $1) }, size: size,
                                    down: failOpen ? [] : Set(downList))
        } catch {
            throw ValidationError("\(error)")
        }
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let counts = table.slotCounts()
        // Balance: slots per unit of weight, largest over smallest (1.0 = perfect).
        let downSet = failOpen ? [] : Set(downList)
        // Down backends have no share: weights count for the up ones only.
        let upWeights = zip(names, w).map { downSet.contains($0.0) ? 0 : $0.1 }
        let perWeight = zip(names, upWeights).filter { $0.1 > 0 }.map { Double(counts[$0.0] ?? 0) / Double($0.1) }
        let ratio = perWeight.isEmpty ? 0 : perWeight.max()! / max(perWeight.min()!, 1e-9)
        let totalWeight = Double(upWeights.reduce(0, +))
        if json {
            let rows: [[String: Any]] = zip(names, w).map { n, wt in
                ["backend": n, "weight": Int(wt), "slots": counts[n] ?? 0, "down": downSet.contains(n),
                 "share": Double(counts[n] ?? 0) / Double(size)]
            }
            let obj: [String: Any] = ["size": size, "digest": table.digest, "max_min_ratio": ratio, "fail_open": failOpen,
                                      "build_ms": ms, "backends": rows]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("ring size \(size), \(names.count) backends, digest \(table.digest), built in \(String(format: "%.2f", ms)) ms")
        print("backend".padding(toLength: 40, withPad: " ", startingAt: 0) + "weight    slots    share   ideal")
        for (n, (wt, upW)) in zip(names, zip(w, upWeights)) {
            let c = counts[n] ?? 0
            let ideal = totalWeight > 0 ? Double(upW) / totalWeight : 0
            print(n.padding(toLength: 40, withPad: " ", startingAt: 0)
                  + String(format: "%6u %8d %7.3f%% %6.3f%%", wt, c, 100 * Double(c) / Double(size), 100 * ideal)
                  + (downSet.contains(n) ? "  down" : ""))
        }
        print(String(format: "max/min slots per unit weight: %.4f", ratio))
    }
}
