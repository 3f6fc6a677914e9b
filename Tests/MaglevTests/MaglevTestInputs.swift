import Maglev

/// How the identities of generated backends look.
enum IdentityFamily: String, Sendable, CaseIterable {
    /// `10.1.x.y`
    case v4
    /// `fd00:4::x` (hex)
    case v6
    /// Alternating IPv4 and IPv6 text.
    case mixed
}

/// How the weights of generated backends are chosen.
enum WeightMode: String, Sendable, CaseIterable {
    /// Every backend weight 100 (the equal-weight round robin).
    case equal
    /// 1 ... 1000 spread out, every 11th backend (from the 6th) drained to 0
    /// and every 13th (from the 8th) at 1000: the heap/credit path.
    case mixed
}

/// Backend `i` of a generated set: distinct identities for i in 0 ..< 65536.
func generatedIdentity(_ i: Int, family: IdentityFamily) -> String {
    switch family {
    case .v4: return "10.1.\(i / 256).\(i % 256)"
    case .v6: return "fd00:4::\(String(i + 1, radix: 16))"
    case .mixed: return i % 2 == 0 ? "10.2.\(i / 512).\(i / 2 % 256)" : "fd00:5::\(String(i, radix: 16))"
    }
}

/// The weight of backend `i` in a generated set.
func generatedWeight(_ i: Int, mode: WeightMode) -> UInt32 {
    switch mode {
    case .equal: return 100
    case .mixed:
        if i % 11 == 5 { return 0 }
        if i % 13 == 7 { return 1000 }
        return UInt32(i * 7919 % 997 + 1)
    }
}

/// `n` generated backends, in a scrambled (not sorted) order.
func generatedBackends(_ n: Int, family: IdentityFamily, weights: WeightMode) -> [MaglevBackend] {
    let all = (0 ..< n).map { i in
        MaglevBackend(identity: generatedIdentity(i, family: family), weight: generatedWeight(i, mode: weights))
    }
    // A fixed permutation (stride coprime to n): input order must not matter.
    guard n > 1 else { return all }
    var stride = 7
    while gcdOf(stride, n) != 1 { stride += 2 }
    return (0 ..< n).map { all[$0 * stride % n] }
}

private func gcdOf(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcdOf(b, a % b) }
