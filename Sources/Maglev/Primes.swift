/// True if `n` is prime (deterministic trial division; fast for ring sizes).
/// - Parameter n: Any integer; values below 2 are not prime.
public func isPrime(_ n: Int) -> Bool {
    if n < 2 { return false }
    if n < 4 { return true }
    if n % 2 == 0 || n % 3 == 0 { return false }
    var d = 5
    while d <= n / d {
        if n % d == 0 || n % (d + 2) == 0 { return false }
        d += 6
    }
    return true
}

/// The smallest prime strictly greater than `n` (2 for any `n` below 2).
/// - Parameter n: The starting point.
public func nextPrime(after n: Int) -> Int {
    if n < 2 { return 2 }
    var c = n + 1
    while !isPrime(c) { c += 1 }
    return c
}
