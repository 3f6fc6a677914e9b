import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension MaglevTable {
    /// One table to build with ``build(_:maxConcurrency:)``: the arguments of
    /// ``init(backends:size:)``.
    public struct Request: Hashable, Sendable {
        /// The backends, in any order (weight-0 backends are checked but left out).
        public var backends: [MaglevBackend]
        /// The ring size M: a prime in ``MaglevTable/sizeRange``.
        public var size: Int

        /// Creates a request.
        /// - Parameters:
        ///   - backends: The backends, in any order.
        ///   - size: The ring size M.
        public init(backends: [MaglevBackend], size: Int) {
            self.backends = backends
            self.size = size
        }
    }

    /// Builds many tables, several at a time.
    ///
    /// Each result is exactly what ``init(backends:size:)`` gives (or throws)
    /// for that request. The requests are split into at most `maxConcurrency`
    /// chunks of about equal work (largest first onto the least loaded chunk,
    /// the work of a table taken as about M·log₂M plus its backend count),
    /// and the chunks run on `DispatchQueue.concurrentPerform`. The call
    /// returns when every table is built.
    /// - Parameters:
    ///   - requests: The tables to build.
    ///   - maxConcurrency: The most tables built at the same time; 1 or less
    ///     builds them one after another on the calling thread.
    /// - Returns: One result per request, in request order.
    public static func build(
        _ requests: [Request],
        maxConcurrency: Int = ProcessInfo.processInfo.activeProcessorCount
    ) -> [Result<MaglevTable, MaglevError>] {
        parallelMap(requests, maxConcurrency: maxConcurrency) { result(requests[$0]) }
    }

    /// Runs `body` once for each index of `requests`, several at a time, in the
    /// chunks ``build(_:maxConcurrency:)`` uses (about equal estimated work):
    /// for work that builds a table and does more with it (the data plane
    /// writes each into a ring map). `body` must only read shared state.
    /// - Parameters:
    ///   - requests: The tables the work builds (only their sizes are read here).
    ///   - maxConcurrency: The most bodies running at the same time; 1 or less
    ///     runs them one after another on the calling thread.
    /// - Returns: One result per request, in request order.
    public static func parallelMap<T>(
        _ requests: [Request],
        maxConcurrency: Int = ProcessInfo.processInfo.activeProcessorCount,
        _ body: @Sendable (Int) -> T
    ) -> [T] {
        let chunks = min(max(1, maxConcurrency), requests.count)
        guard chunks > 1 else { return requests.indices.map(body) }
        let plan = Self.chunks(requests, count: chunks)
        return [T](unsafeUninitializedCapacity: requests.count) { buffer, initialized in
            let out = ResultSlots(buffer)
            DispatchQueue.concurrentPerform(iterations: plan.count) { chunk in
                for i in plan[chunk] {
                    out.initialize(i, to: body(i))
                }
            }
            // Every index is in exactly one chunk, so every element is initialized.
            initialized = requests.count
        }
    }

    /// The result of ``init(backends:size:)`` for one request.
    static func result(_ r: Request) -> Result<MaglevTable, MaglevError> {
        do throws(MaglevError) {
            return .success(try MaglevTable(backends: r.backends, size: r.size))
        } catch {
            return .failure(error)
        }
    }

    /// Splits request indexes into `count` chunks of about equal estimated
    /// work: largest first, each onto the chunk with the least work so far
    /// (ties to the lower chunk, so the plan is deterministic).
    static func chunks(_ requests: [Request], count: Int) -> [[Int]] {
        func work(_ r: Request) -> Int {
            let m = max(1, r.size)
            return m * (Int.bitWidth - m.leadingZeroBitCount) + r.backends.count
        }
        let order = requests.indices.sorted { a, b in
            let wa = work(requests[a]), wb = work(requests[b])
            return wa != wb ? wa > wb : a < b
        }
        var plan = [[Int]](repeating: [], count: count)
        var load = [Int](repeating: 0, count: count)
        for i in order {
            var least = 0
            for c in 1 ..< count where load[c] < load[least] { least = c }
            plan[least].append(i)
            load[least] += work(requests[i])
        }
        return plan
    }

    /// The results being built: each index is written by exactly one task, once,
    /// and read only after all tasks have finished, so sharing the buffer is safe.
    struct ResultSlots<T>: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<T>

        init(_ buffer: UnsafeMutableBufferPointer<T>) {
            self.buffer = buffer
        }

        /// Initializes the (uninitialized) element `i`.
        func initialize(_ i: Int, to value: T) {
            precondition(i >= 0 && i < buffer.count, "result index out of range")
            (buffer.baseAddress! + i).initialize(to: value)
        }
    }
}
