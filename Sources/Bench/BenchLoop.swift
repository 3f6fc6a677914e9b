import BPF
import CXdplb
import Foundation

/// What one loop block of a case measured: per-call averages of each program.
struct LoopTiming {
    /// 10 % trimmed mean over calls of the kernel's ns per run, for the case.
    var case_: Double
    /// The same for the floor (nil: none), run after every case call.
    var floor: Double?
    /// The same for the compared build (nil: no comparison).
    var compared: Double?
    /// Balancer runs made (every build's): they move the counters.
    var balancerRuns: Int
    var wrongVerdicts: Int
}

/// The restoring loop (bpf/bench.bpf.c `xdplb_bench_loop`, xdplb_abi.h section 8):
/// one BPF_PROG_TEST_RUN with repeat = N runs a program N times, each on the
/// original frame, with the CPU caches as warm as in a driver's NAPI loop.
/// Floors run through the same loop, so their restore cost cancels out.
final class BenchLoop {
    /// Slots of the program array: the floors, then the balancer builds.
    static let txSlot: UInt32 = 0
    static let parseSlot: UInt32 = 1
    static let firstBuildSlot: UInt32 = 2

    let program: BPFProgram
    let state: BPFMap
    private let flows: BPFMap
    private let progs: BPFMap
    /// The case whose flow order is in the flows map.
    private var flowsOf: ObjectIdentifier?
    /// Blocks timed so far: the compared build goes first in every other one.
    private var blocks = 0
    /// The CPU the bench thread is pinned to (nil: not pinned, so every CPU's state entry is written).
    var cpu: Int?

    /// Takes the loop program and its maps from the loaded bench object and
    /// puts the floors and `builds` (main first) into its program array.
    init(object: BPFObject, tx: BPFProgram, parse: BPFProgram, builds: [BPFProgram]) throws {
        guard builds.count <= Int(XDPLB_BENCH_SLOTS) - Int(Self.firstBuildSlot) else {
            throw BenchError("the bench loop has room for \(Int(XDPLB_BENCH_SLOTS) - Int(Self.firstBuildSlot)) balancer builds")
        }
        program = try object.program(XDPLB_PROG_BENCH_LOOP)
        state = try object.map(XDPLB_MAP_BENCH_STATE)
        flows = try object.map(XDPLB_MAP_BENCH_FLOWS)
        progs = try object.map(XDPLB_MAP_BENCH_PROGS)
        try progs.update(Self.txSlot, tx.fd)
        try progs.update(Self.parseSlot, parse.fd)
        for (i, b) in builds.enumerated() { try progs.update(Self.firstBuildSlot + UInt32(i), b.fd) }
    }

    /// The program array slot of balancer build `i` (0: main).
    static func buildSlot(_ i: Int) -> UInt32 { firstBuildSlot + UInt32(i) }

    /// Loop state that sends `c`'s frame (and its next flows) to `slot`.
    /// `lane` > 0 (another CPU of a parallel call, of `lanes`) starts elsewhere
    /// in the case's flows: new flows 2^27 · lane further, a cycle lanes-th of the way round.
    func loopState(_ c: BenchCase, slot: UInt32, lane: Int = 0, lanes: Int = 1) -> xdplb_bench_state {
        var st = xdplb_bench_state()
        st.target = slot
        st.frame_len = UInt32(c.frameLength)
        st.prefix_len = UInt32(min(c.frameLength, Int(XDPLB_BENCH_PREFIX_MAX)))
        withUnsafeMutableBytes(of: &st.prefix) { $0.copyMemory(from: UnsafeRawBufferPointer(start: c.frame, count: Int(st.prefix_len))) }
        let flow = c.loopFlow
        st.mode = flow.mode
        st.next = flow.next &+ UInt32(lane) << 27
        st.nflows = UInt32(max(1, c.flows.count))
        st.pos = UInt32((Int(flow.position) + lane * Int(st.nflows) / max(1, lanes)) % Int(st.nflows))
        if let p = c.patch {
            st.src_low_off = UInt32(p.srcLowOffset)
            st.sport_off = UInt32(p.sportOffset)
            st.base_low = p.space.sourceLow(0)
        }
        return st
    }

    /// Puts `c`'s flow order into the flows map (once per case in a row).
    func loadFlows(_ c: BenchCase) throws {
        let id = ObjectIdentifier(c)
        guard flowsOf != id, !c.flows.isEmpty else { return }
        let n = c.flows.count
        guard n <= Int(XDPLB_BENCH_FLOWS_MAX) else { throw BenchError("\(c.name): \(n) flows, the bench loop holds \(XDPLB_BENCH_FLOWS_MAX)") }
        try flows.updateBatch(keys: (0..<UInt32(n)).map { $0 }, values: c.flows.map { UInt32(bitPattern: $0) })
        flowsOf = id
    }

    /// One call: `repeatCount` runs of the program in `slot` on `c`'s frame.
    /// Returns the kernel's ns per run and the last run's verdict.
    private func call(_ c: BenchCase, slot: UInt32, repeatCount: UInt32, out: UnsafeMutableRawPointer, cap: UInt32) throws -> (ns: Double, ret: UInt32) {
        let st = loopState(c, slot: slot)
        if let cpu {
            try state.update(UInt32(cpu), st)
        } else {
            let n = UInt32(XDPLB_BENCH_CPUS)
            try state.updateBatch(keys: Array(0..<n), values: Array(repeating: st, count: Int(n)))
        }
        var outLen: UInt32 = 0, ret: UInt32 = 0, dur: UInt32 = 0
        let rc = xdplb_test_run_xdp(program.fd, c.frame, UInt32(c.frameLength), out, cap, &outLen, repeatCount, 0, &ret, &dur)
        if rc != 0 { throw BPFError("test run of \(XDPLB_PROG_BENCH_LOOP) → slot \(slot) (\(c.name), repeat \(repeatCount))", errno: rc) }
        c.advanceLoop(by: Int(repeatCount))
        return (Double(dur), ret)
    }

    /// `calls` loop calls of `c` on every build in `buildSlots` (the compared
    /// build alternately before and after the main one), each followed by a
    /// call of the floor in `floor.slot` on the same frame and flows, so the
    /// floor pays exactly the case's restore work; it must return `floor.verdict`.
    func time(_ c: BenchCase, buildSlots: [UInt32], floor: (slot: UInt32, verdict: XDPAction)?, calls: Int,
              repeatCount: UInt32, out: UnsafeMutableRawPointer, cap: UInt32, trim: Double) throws -> LoopTiming {
        try loadFlows(c)
        var main: [Double] = [], other: [Double] = [], floors: [Double] = []
        var wrong = 0
        let want = c.verdict.rawValue
        blocks += 1
        for i in 0..<calls {
            let order = buildSlots.count > 1 && (i + blocks) & 1 == 1 ? buildSlots.reversed() : buildSlots
            for slot in order {
                let r = try call(c, slot: slot, repeatCount: repeatCount, out: out, cap: cap)
                if r.ret != want { wrong += 1 }
                if slot == buildSlots[0] { main.append(r.ns) } else { other.append(r.ns) }
            }
            if let floor {
                let r = try call(c, slot: floor.slot, repeatCount: repeatCount, out: out, cap: cap)
                if r.ret != floor.verdict.rawValue { wrong += 1 }
                floors.append(r.ns)
            }
        }
        let isBalancer = buildSlots[0] >= Self.firstBuildSlot
        return LoopTiming(case_: trimmedMean(main, trim), floor: floor == nil ? nil : trimmedMean(floors, trim),
                          compared: other.isEmpty ? nil : trimmedMean(other, trim),
                          balancerRuns: isBalancer ? calls * buildSlots.count * Int(repeatCount) : 0,
                          wrongVerdicts: wrong)
    }
}

/// What one parallel loop block measured: per CPU, trimmed means over calls.
struct ParallelLoopTiming {
    /// ns per run of the case, and of the floor, on the first CPU alone (same repeat count, same block).
    var alone: Double
    var aloneFloor: Double?
    /// ns per run of the case on each CPU (in the order given), all CPUs running at once.
    var case_: [Double]
    /// The floor the same way (empty: none).
    var floor: [Double]
    var balancerRuns: Int
    var wrongVerdicts: Int
    /// The smallest overlap of any call: the time all CPUs ran at once over the longest one's run time
    /// (from the loop's own clock on each CPU: its first and last run).
    var overlap: Double
}

extension BenchLoop {
    /// `calls` parallel calls: on every CPU of `cpus` at the same time, one
    /// loop call of `repeatCount` runs of `slot` on `c`'s frame, each CPU
    /// with its own flows (its own state entry, see `loopState`), then the
    /// floor the same way. The maps (conntrack, counters) are shared, as two
    /// NAPI contexts share them.
    func timeParallel(_ c: BenchCase, slot: UInt32, floor: (slot: UInt32, verdict: XDPAction)?, cpus: [Int], calls: Int,
                      repeatCount: UInt32, trim: Double) throws -> ParallelLoopTiming {
        try loadFlows(c)
        // Lane 0 of `alone` is the first CPU by itself, with the same repeat count, in the same block.
        var alone: [Double] = [], aloneFloor: [Double] = []
        var cases = [[Double]](repeating: [], count: cpus.count), floors = [[Double]](repeating: [], count: cpus.count)
        var wrong = 0, runs = 0
        var overlap = 1.0
        for _ in 0..<calls {
            for group in [[cpus[0]], cpus] {
                for (which, s) in [(0, slot)] + (floor.map { [(1, $0.slot)] } ?? []) {
                    for (lane, cpu) in group.enumerated() {
                        var st = loopState(c, slot: s, lane: lane, lanes: group.count)
                        st.clock = 1
                        try state.update(UInt32(cpu), st)
                    }
                    let results = try runAtOnce(c, cpus: group, repeatCount: repeatCount)
                    if group.count > 1 {
                        // When each CPU really ran: the loop's first and last run on it.
                        var spans: [(UInt64, UInt64)] = []
                        for cpu in group {
                            guard let st = try state.lookup(UInt32(cpu), as: xdplb_bench_state.self) else {
                                throw BenchError("bench loop state of CPU \(cpu) missing")
                            }
                            spans.append((st.first_ns, st.last_ns))
                        }
                        overlap = min(overlap, Self.overlap(spans))
                    }
                    let want = which == 0 ? c.verdict.rawValue : floor!.verdict.rawValue
                    for (lane, r) in results.enumerated() {
                        if r.ret != want { wrong += 1 }
                        switch (group.count > 1, which) {
                        case (false, 0): alone.append(r.ns)
                        case (false, _): aloneFloor.append(r.ns)
                        case (true, 0): cases[lane].append(r.ns)
                        default: floors[lane].append(r.ns)
                        }
                    }
                    if which == 0 && slot >= Self.firstBuildSlot { runs += group.count * Int(repeatCount) }
                    c.advanceLoop(by: Int(repeatCount))
                }
            }
        }
        return ParallelLoopTiming(alone: trimmedMean(alone, trim), aloneFloor: floor == nil ? nil : trimmedMean(aloneFloor, trim),
                                  case_: cases.map { trimmedMean($0, trim) }, floor: floor == nil ? [] : floors.map { trimmedMean($0, trim) },
                                  balancerRuns: runs, wrongVerdicts: wrong, overlap: overlap)
    }

    /// (last start to first end) over the longest span: 1 when all ran at once throughout, 0 when never together.
    static func overlap(_ spans: [(UInt64, UInt64)]) -> Double {
        let start = spans.map(\.0).max()!, end = spans.map(\.1).min()!
        let longest = spans.map { $0.1 &- $0.0 }.max()!
        return end > start && longest > 0 ? Double(end - start) / Double(longest) : 0
    }

    /// One loop test run per CPU, started together (each thread pinned to its CPU).
    private func runAtOnce(_ c: BenchCase, cpus: [Int], repeatCount: UInt32) throws -> [(ns: Double, ret: UInt32)] {
        // The frame's address as a number: threads only read it (the kernel copies it in).
        let fd = program.fd, frameAddress = UInt(bitPattern: c.frame), len = UInt32(c.frameLength)
        let results = ParallelResults(count: cpus.count)
        let ready = DispatchSemaphore(value: 0), go = DispatchSemaphore(value: 0), done = DispatchGroup()
        for (lane, cpu) in cpus.enumerated() {
            done.enter()
            Thread.detachNewThread {
                let pinned = pinToCPU(cpu)
                let cap = 4096
                let out = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 16)
                defer { out.deallocate(); done.leave() }
                ready.signal()
                go.wait()
                var outLen: UInt32 = 0, ret: UInt32 = 0, dur: UInt32 = 0
                let frame = UnsafeMutableRawPointer(bitPattern: frameAddress)!
                let rc = pinned ? xdplb_test_run_xdp(fd, frame, len, out, UInt32(cap), &outLen, repeatCount, 0, &ret, &dur) : -1
                results.set(lane, rc: rc, ns: Double(dur), ret: ret)
            }
        }
        for _ in cpus { ready.wait() }
        for _ in cpus { go.signal() }
        done.wait()
        return try results.values(c.name, cpus: cpus)
    }
}

/// Results of the threads of one parallel call.
private final class ParallelResults: @unchecked Sendable {
    private let lock = NSLock()
    private var rows: [(rc: Int32, ns: Double, ret: UInt32)]
    init(count: Int) { rows = Array(repeating: (0, 0, 0), count: count) }
    func set(_ i: Int, rc: Int32, ns: Double, ret: UInt32) { lock.lock(); rows[i] = (rc, ns, ret); lock.unlock() }
    func values(_ name: String, cpus: [Int]) throws -> [(ns: Double, ret: UInt32)] {
        lock.lock(); defer { lock.unlock() }
        for (i, r) in rows.enumerated() where r.rc != 0 {
            throw BenchError("parallel loop run of \(name) on CPU \(cpus[i]) failed (\(r.rc == -1 ? "could not pin to that CPU" : "error \(r.rc)"))")
        }
        return rows.map { ($0.ns, $0.ret) }
    }
}

/// Mean of `xs` without the `trim` fraction at each end.
func trimmedMean(_ xs: [Double], _ trim: Double) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    let cut = Int(Double(s.count) * trim)
    let kept = s[cut..<(s.count - cut)]
    return kept.reduce(0, +) / Double(kept.count)
}
