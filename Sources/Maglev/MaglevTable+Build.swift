import Dispatch
import Synchronization
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
    /// for that request. At most `maxConcurrency` workers on
    /// `DispatchQueue.concurrentPerform` take the requests one at a time,
    /// largest first (``parallelMap(_:maxConcurrency:_:)``). The call returns
    /// when every table is built.
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

    /// Runs `body` once for each index of `requests`, several at a time: for
    /// work that builds a table and does more with it (the data plane writes
    /// each into a ring map). `body` must only read shared state.
    ///
    /// Each of the `maxConcurrency` workers takes the next request, largest
    /// estimated work first (about M·log₂M plus the backend count), until none
    /// is left: a worker slowed down (a stolen vCPU, an interrupt) takes fewer,
    /// so the call ends when the work does, not when the slowest fixed share does.
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
        let workers = min(max(1, maxConcurrency), requests.count)
        guard workers > 1 else { return requests.indices.map(body) }
        let order = largestFirst(requests)
        let next = WorkCounter()
        return [T](unsafeUninitializedCapacity: requests.count) { buffer, initialized in
            let out = ResultSlots(buffer)
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let k = next.take()
                    guard k < order.count else { return }
                    out.initialize(order[k], to: body(order[k]))
                }
            }
            // Every index is taken exactly once, so every element is initialized.
            initialized = requests.count
        }
    }

    /// Request indexes by estimated work, largest first (ties by index, so the order is deterministic).
    static func largestFirst(_ requests: [Request]) -> [Int] {
        func work(_ r: Request) -> Int {
            let m = max(1, r.size)
            return m * (Int.bitWidth - m.leadingZeroBitCount) + r.backends.count
        }
        let works = requests.map(work)
        return requests.indices.sorted { a, b in works[a] != works[b] ? works[a] > works[b] : a < b }
    }

    /// The next request to take, shared by the workers of one ``parallelMap(_:maxConcurrency:_:)``.
    final class WorkCounter: Sendable {
        private let value = Atomic<Int>(0)

        /// A position no other call returned: 0, 1, 2, ...
        func take() -> Int {
            value.wrappingAdd(1, ordering: .relaxed).oldValue
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
