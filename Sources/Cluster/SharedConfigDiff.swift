import Config

/// The differences between two shared configs, as lines a person reads: `+`, `-`, `~` per VIP,
/// backends indented below their VIP.
public enum SharedConfigDiff {
    public static func lines(from old: SharedConfig, to new: SharedConfig) -> [String] {
        var out: [String] = []
        if old.hashSeed != new.hashSeed {
            out.append("~ hash_seed \(old.hashSeed.map { "0x" + String($0, radix: 16) } ?? "(node's)") → \(new.hashSeed.map { "0x" + String($0, radix: 16) } ?? "(node's)")")
        }
        func lists(_ r: ProtectionRules) -> String { "\(r.deny.count) deny, \(r.allow.count) allow prefixes" }
        if old.hasGlobalProtection != new.hasGlobalProtection || old.protection.defaults != new.protection.defaults {
            out.append(new.hasGlobalProtection ? "~ protection (every VIP): \(lists(new.protection.defaults))"
                                               : "~ protection (every VIP): removed (each node file's section applies)")
        }
        let a = Dictionary(old.vips.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let b = Dictionary(new.vips.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        for name in Set(a.keys).union(b.keys).sorted() {
            switch (a[name], b[name]) {
            case (nil, let v?): out.append("+ vip \(name) (\(v.backends.count) backends)")
            case (let v?, nil): out.append("- vip \(name) (\(v.backends.count) backends)")
            case (let x?, let y?) where x != y || old.protection.perVIP[name] != new.protection.perVIP[name]:
                var what: [String] = []
                if x.ringSize != y.ringSize { what.append("ring_size \(x.ringSize) → \(y.ringSize)") }
                if x.hash != y.hash { what.append("hash \(x.hash.rawValue) → \(y.hash.rawValue)") }
                if x.health != y.health { what.append("health check changed") }
                if x.secondChanceMs != y.secondChanceMs { what.append("second_chance \(x.secondChanceMs)ms → \(y.secondChanceMs)ms") }
                if old.protection.perVIP[name] != new.protection.perVIP[name] { what.append(new.protection.perVIP[name].map { "protection: \(lists($0))" } ?? "protection section removed") }
                out.append("~ vip \(name)" + (what.isEmpty ? "" : ": " + what.joined(separator: ", ")))
                let xb = Dictionary(x.backends.map { ($0.address, $0) }, uniquingKeysWith: { p, _ in p })
                let yb = Dictionary(y.backends.map { ($0.address, $0) }, uniquingKeysWith: { p, _ in p })
                for addr in Set(xb.keys).union(yb.keys).sorted() {
                    switch (xb[addr], yb[addr]) {
                    case (nil, let n?): out.append("    + backend \(addr) weight \(n.weight)")
                    case (_?, nil): out.append("    - backend \(addr)")
                    case (let o?, let n?) where o != n:
                        out.append("    ~ backend \(addr)" + (o.weight != n.weight ? " weight \(o.weight) → \(n.weight)" : ": health check changed"))
                    default: break
                    }
                }
            default: break
            }
        }
        return out
    }
}
