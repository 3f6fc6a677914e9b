extension MaglevTable {
    /// Checks that `backends` and `size` make a valid table without building it:
    /// the errors ``init(backends:size:)`` throws, in the same order.
    /// - Returns: whether any backend would be in the ring (weight > 0).
    @discardableResult
    public static func check(backends: [MaglevBackend], size: Int) throws(MaglevError) -> Bool {
        guard sizeRange.contains(size) else {
            throw .ringSizeOutOfRange(size: size)
        }
        guard isPrime(size) else {
            throw .ringSizeNotPrime(size: size, suggestion: nextPrime(after: size))
        }
        guard backends.count <= maxBackends else {
            throw .tooManyBackends(count: backends.count)
        }
        let ids = IdentityBytes(backends)
        try validate(backends, order: ids.sortedOrder(), ids: ids)
        return backends.contains { $0.weight > 0 }
    }
}
