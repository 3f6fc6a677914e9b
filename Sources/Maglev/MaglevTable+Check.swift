extension MaglevTable {
    /// Checks that `backends` and `size` make a valid table without building it:
    /// the errors ``init(backends:size:)`` throws, in the same order.
    /// - Returns: the backends that would be in the ring (weight > 0), sorted.
    @discardableResult
    public static func check(backends: [MaglevBackend], size: Int) throws(MaglevError) -> [MaglevBackend] {
        guard sizeRange.contains(size) else {
            throw .ringSizeOutOfRange(size: size)
        }
        guard isPrime(size) else {
            throw .ringSizeNotPrime(size: size, suggestion: nextPrime(after: size))
        }
        guard backends.count <= maxBackends else {
            throw .tooManyBackends(count: backends.count)
        }
        let sorted = backends.sorted { $0.identity.utf8.lexicographicallyPrecedes($1.identity.utf8) }
        var seen = Set<String>(minimumCapacity: sorted.count)
        for b in sorted {
            if b.identity.isEmpty { throw .emptyIdentity }
            if !seen.insert(b.identity).inserted { throw .duplicateBackend(identity: b.identity) }
            if b.weight > maxWeight { throw .weightOutOfRange(identity: b.identity, weight: b.weight) }
        }
        return sorted.filter { $0.weight > 0 }
    }
}
