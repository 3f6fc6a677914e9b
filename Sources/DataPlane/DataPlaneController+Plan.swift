import BPF
import Config
import CXdplb
import Maglev
import NetAddress

/// What an `apply` will write, computed and checked before the first write:
/// a config the data plane can't hold is refused with nothing changed.
struct ApplyPlan {
    /// The config's VIPs with their backends' weights and memberships.
    var index: ConfigIndex
    /// VIPs whose ring or entry changes, with their new down set, the ring's
    /// backends: every configured one, down ones included (checked; empty: no
    /// backend with weight > 0 is up, so no ring), and their
    /// ``RingWriter/fingerprint(_:)``.
    var changed: [String: (down: Set<IPAddress>, ring: [MaglevBackend], fingerprint: Int)]
}

/// The backends down for each VIP of an apply: the same set for every VIP, or a set per VIP name.
enum DownSets {
    case everywhere(Set<IPAddress>)
    case perVIP([String: Set<IPAddress>])

    /// The set given for the VIP named `name` (nil or empty: none).
    @inline(__always)
    func given(for name: String) -> Set<IPAddress>? {
        switch self {
        case .everywhere(let d): return d
        case .perVIP(let byName): return byName[name]
        }
    }
}

extension DataPlaneController {
    /// Checks capacity (backend ids, VIP slots) and every changed Maglev table's inputs, writing nothing.
    /// - Throws: `BPFError` (ENOSPC, EINVAL) naming the limit or the VIP.
    func plan(_ config: XdplbConfig, down: DownSets) throws(BPFError) -> ApplyPlan {
        let index: ConfigIndex
        index = ConfigIndex.make(config.vips, from: configIndex)
        configIndex = index
        let weights = index.weights

        // Ids of backends leaving are freed only after the new rings stop naming them.
        let limit = Int(XDPLB_MAX_BACKENDS) - 1
        // The index the last apply wrote has an id for every backend.
        let fresh = appliedIndex === index ? 0 : weights.keys.filter { backendIDs[$0] == nil }.count
        if backendIDs.count + fresh > limit {
            let leaving = backendIDs.keys.filter { weights[$0] == nil }.count
            throw BPFError("refused: \(fresh) new backends need ids but only \(limit - backendIDs.count) of \(limit) are free", errno: ENOSPC,
                           hint: leaving > 0 ? "the \(leaving) backends this change removes free their ids only once it is applied: apply it in two steps (remove, then add)"
                               : "at most \(limit) distinct backends across VIPs")
        }
        if config.vips.count > Int(XDPLB_MAX_VIPS) {
            throw BPFError("refused: \(config.vips.count) VIPs", errno: ENOSPC, hint: "at most \(XDPLB_MAX_VIPS) VIPs")
        }

        // Every VIP state was written from this index's VIPs: their configs are equal.
        let sameVIPs = appliedIndex === index
        var changed: [String: (down: Set<IPAddress>, ring: [MaglevBackend], fingerprint: Int)] = [:]
        // The backend lists checked so far, by fingerprint: VIPs with the same list
        // and ring size (several ports of one service) are checked once.
        var checked: [Int: [(size: Int, backends: [MaglevBackend])]] = [:]
        // The same few backends down everywhere: only the VIPs they are in have a down set.
        var downOf: [Int: Set<IPAddress>]?
        if case .everywhere(let d) = down, d.count <= 16 {
            var byVIP: [Int: Set<IPAddress>] = [:]
            for a in d { for i in index.vipsOf[a] ?? [] { byVIP[i, default: []].insert(a) } }
            downOf = byVIP
        }
        func consider(_ i: Int) throws(BPFError) {
            let v = index.vips[i], name = index.names[i]
            var vipDown: Set<IPAddress> = []
            if let downOf {
                vipDown = downOf[i] ?? []
            } else if let d = down.given(for: name), !d.isEmpty {
                vipDown = d.count <= 16 ? d.filter { index.contains(vip: i, address: $0) } : d.intersection(v.backends.lazy.map(\.address))
            }
            if let cur = vips[name], sameVIPs || cur.config == v, cur.down == vipDown { return }
            // The ring is the table of every configured backend with the down ones' slots handed over.
            let ringBackends = index.maglevBackends(i, excluding: [])
            let fingerprint = RingWriter.fingerprint(ringBackends)
            do {
                if !(checked[fingerprint]?.contains { $0.size == v.ringSize && $0.backends == ringBackends } ?? false) {
                    try MaglevTable.check(backends: ringBackends, size: v.ringSize)
                    checked[fingerprint, default: []].append((v.ringSize, ringBackends))
                }
                let hasRing = v.backends.contains { $0.weight > 0 && !vipDown.contains($0.address) }
                changed[name] = hasRing ? (vipDown, ringBackends, fingerprint) : (vipDown, [], RingWriter.fingerprint([]))
            } catch {
                throw BPFError("refused: build Maglev table for \(name): \(error)", errno: EINVAL)
            }
        }
        if sameVIPs, let downOf {
            // A health change on the VIPs already applied: only VIPs with a backend down now
            // or before can change (a plan over 4,096 VIPs was 5-6 ms of a 40 ms change).
            var candidates = Set(downOf.keys)
            for name in namesWithDown { if let i = index.positions[name] { candidates.insert(i) } }
            for i in candidates.sorted() { try consider(i) }
        } else {
            for i in index.vips.indices { try consider(i) }
        }
        return ApplyPlan(index: index, changed: changed)
    }
}

extension DataPlaneController {
    /// Refuses, writing nothing, a config the data plane can't hold (backend ids,
    /// VIP slots, Maglev tables): the check `apply` makes before its first write.
    public func validate(_ config: XdplbConfig, downByVIP: [String: Set<IPAddress>] = [:]) throws(BPFError) {
        _ = try plan(config, down: .perVIP(downByVIP))
    }
}

/// What an apply needs of a config's VIPs beyond the VIPs themselves, kept
/// between applies while the VIPs stay the same (a health change, a no-op
/// reload): the VIPs' names, every backend's largest weight and identity,
/// and the VIPs each backend is in.
final class ConfigIndex: @unchecked Sendable {
    let vips: [VIPConfig]
    /// ``VIPConfig/name`` of each VIP, made once.
    let names: [String]
    /// One backend entry per address: the largest weight it has on any VIP.
    let weights: [IPAddress: UInt32]
    /// Each backend's Maglev identity (its canonical address text), made once.
    let identities: [IPAddress: String]
    /// Indexes into ``vips`` of the VIPs a backend is in, ascending.
    let vipsOf: [IPAddress: [Int]]
    /// For an index derived from another (``make(_:from:)``): that index, and
    /// the backends whose weight or VIPs may differ from it.
    private(set) var base: ObjectIdentifier?
    private(set) var touched: Set<IPAddress> = []
    /// The position in ``vips`` of each VIP name, made on first use.
    lazy var positions: [String: Int] = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
    /// The names as a set, and the VIPs' map keys.
    let nameSet: Set<String>
    let keySet: Set<xdplb_vip_key>

    init(_ vips: [VIPConfig]) {
        self.vips = vips
        names = vips.map(\.name)
        nameSet = Set(names)
        keySet = Set(vips.map { xdplb_vip_key(address: $0.address, port: $0.port, proto: $0.proto.number) })
        // One lookup per backend reference: each address gets a position in
        // plain arrays, and the dictionaries are made once per distinct address.
        let references = vips.reduce(0) { $0 + $1.backends.count }
        var position = AddressPositions()
        var addresses: [IPAddress] = [], maxWeight: [UInt32] = [], memberCount: [Int32] = []
        var refs: [Int32] = []
        refs.reserveCapacity(references)
        var starts: [Int32] = [0]
        starts.reserveCapacity(vips.count + 1)
        for v in vips {
            for b in v.backends {
                let k = position.position(of: b.address, next: addresses.count)
                if k < addresses.count {
                    maxWeight[k] = max(maxWeight[k], b.weight)
                    memberCount[k] += 1
                } else {
                    addresses.append(b.address)
                    maxWeight.append(b.weight)
                    memberCount.append(1)
                }
                refs.append(Int32(k))
            }
            starts.append(Int32(refs.count))
        }
        // Each address's VIP list in one allocation: counted above, filled in VIP order.
        var memberStart = [Int](repeating: 0, count: addresses.count + 1)
        for k in addresses.indices { memberStart[k + 1] = memberStart[k] + Int(memberCount[k]) }
        var fill = memberStart
        var members = [Int32](repeating: 0, count: refs.count)
        for i in vips.indices {
            for r in Int(starts[i]) ..< Int(starts[i + 1]) {
                let k = Int(refs[r])
                members[fill[k]] = Int32(i)
                fill[k] += 1
            }
        }
        var weights = [IPAddress: UInt32](minimumCapacity: addresses.count)
        var identities = [IPAddress: String](minimumCapacity: addresses.count)
        var vipsOf = [IPAddress: [Int]](minimumCapacity: addresses.count)
        var identityList: [String] = []
        identityList.reserveCapacity(addresses.count)
        for (k, a) in addresses.enumerated() {
            let identity = a.description
            weights[a] = maxWeight[k]
            identities[a] = identity
            vipsOf[a] = members[memberStart[k] ..< memberStart[k + 1]].map(Int.init)
            identityList.append(identity)
        }
        self.weights = weights
        self.identities = identities
        self.vipsOf = vipsOf
        backendRefs = BackendRefs(identities: identityList, positions: refs, starts: starts)
    }

    /// For an index made from scratch: each VIP's backends as positions into
    /// one identity list, so a VIP's Maglev backends need no dictionary lookup.
    struct BackendRefs {
        /// The identity of each distinct backend address, by position.
        let identities: [String]
        /// The positions of VIP i's backends: `positions[starts[i] ..< starts[i + 1]]`.
        let positions: [Int32]
        let starts: [Int32]
    }
    private let backendRefs: BackendRefs?

    /// The index of `vips`: `old` itself when the VIPs are the same, derived
    /// from it when at most ``incrementalLimit`` VIPs differ at the same positions
    /// (an edit of a few VIPs in a large config), else built anew.
    static func make(_ vips: [VIPConfig], from old: ConfigIndex?) -> ConfigIndex {
        guard let old, old.vips.count == vips.count else { return ConfigIndex(vips) }
        if old.vips == vips { return old }   // O(1) when it is the same array
        var differ: [Int] = []
        for i in vips.indices where vips[i] != old.vips[i] {
            differ.append(i)
            if differ.count > incrementalLimit { return ConfigIndex(vips) }
        }
        return differ.isEmpty ? old : ConfigIndex(vips, changing: old, at: differ)
    }

    /// Above this many changed VIPs a new index is built from scratch.
    static let incrementalLimit = 64

    private init(vips: [VIPConfig], names: [String], weights: [IPAddress: UInt32], identities: [IPAddress: String], vipsOf: [IPAddress: [Int]]) {
        self.vips = vips
        self.names = names
        self.weights = weights
        self.identities = identities
        self.vipsOf = vipsOf
        backendRefs = nil
        nameSet = Set(names)
        keySet = Set(vips.map { xdplb_vip_key(address: $0.address, port: $0.port, proto: $0.proto.number) })
    }

    /// `old` with the VIPs at `positions` replaced by those of `vips`: only
    /// the backends of those VIPs (before and after) are looked at again.
    private convenience init(_ vips: [VIPConfig], changing old: ConfigIndex, at positions: [Int]) {
        var names = old.names, weights = old.weights, identities = old.identities, vipsOf = old.vipsOf
        var touched: Set<IPAddress> = []
        for i in positions {
            names[i] = vips[i].name
            for b in old.vips[i].backends {
                touched.insert(b.address)
                vipsOf[b.address]?.removeAll { $0 == i }
            }
            for b in vips[i].backends {
                touched.insert(b.address)
                var list = vipsOf[b.address] ?? []
                list.insert(i, at: list.firstIndex { $0 > i } ?? list.count)
                vipsOf[b.address] = list
            }
        }
        for a in touched {
            guard let list = vipsOf[a], !list.isEmpty else {
                vipsOf[a] = nil
                weights[a] = nil
                identities[a] = nil
                continue
            }
            var w: UInt32 = 0
            for j in list { for b in vips[j].backends where b.address == a { w = max(w, b.weight) } }
            weights[a] = w
            if identities[a] == nil { identities[a] = a.description }
        }
        self.init(vips: vips, names: names, weights: weights, identities: identities, vipsOf: vipsOf)
        base = ObjectIdentifier(old)
        self.touched = touched
    }

    /// Whether VIP `i` has backend `address` (a binary search of ``vipsOf``).
    func contains(vip i: Int, address: IPAddress) -> Bool {
        guard let list = vipsOf[address] else { return false }
        var lo = 0, hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if list[mid] < i { lo = mid + 1 } else { hi = mid }
        }
        return lo < list.count && list[lo] == i
    }

    /// ``VIPConfig/maglevBackends(excluding:)`` of VIP `i`, with the identities made once.
    func maglevBackends(_ i: Int, excluding down: Set<IPAddress>) -> [MaglevBackend] {
        if let refs = backendRefs, down.isEmpty {
            let backends = vips[i].backends
            let start = Int(refs.starts[i])
            return [MaglevBackend](unsafeUninitializedCapacity: backends.count) { out, initialized in
                for (j, b) in backends.enumerated() {
                    (out.baseAddress! + j).initialize(to: MaglevBackend(identity: refs.identities[Int(refs.positions[start + j])], weight: b.weight))
                }
                initialized = backends.count
            }
        }
        return vips[i].backends.compactMap { b in
            down.contains(b.address) ? nil : MaglevBackend(identity: identities[b.address] ?? b.address.description, weight: b.weight)
        }
    }
}

/// Positions of addresses in first-seen order: IPv4 addresses in an open-
/// addressing table keyed by their 32 bits (a `Dictionary` lookup hashes and
/// compares the address's byte array: most of a 51,200-reference index), any
/// other address in a dictionary.
struct AddressPositions {
    private var keys: [UInt32]
    private var values: [Int32]
    private var mask: Int
    private var count = 0
    private var others: [IPAddress: Int] = [:]

    init() {
        keys = [UInt32](repeating: 0, count: 256)
        values = [Int32](repeating: -1, count: 256)
        mask = 255
    }

    @inline(__always)
    private static func home(_ key: UInt32, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// The position of `a`: its own if seen before, else `next`, which it keeps.
    mutating func position(of a: IPAddress, next: Int) -> Int {
        guard case .v4(let b) = a, b.count == 4 else {
            if let k = others[a] { return k }
            others[a] = next
            return next
        }
        let key = b.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        var slot = Self.home(key, mask)
        while true {
            let v = values[slot]
            if v < 0 { break }
            if keys[slot] == key { return Int(v) }
            slot = (slot + 1) & mask
        }
        keys[slot] = key
        values[slot] = Int32(next)
        count += 1
        if 2 * count > mask { grow() }
        return next
    }

    /// Twice the slots, every entry placed again: the table stays at most half full.
    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        mask = 2 * mask + 1
        keys = [UInt32](repeating: 0, count: mask + 1)
        values = [Int32](repeating: -1, count: mask + 1)
        for (k, v) in zip(oldKeys, oldValues) where v >= 0 {
            var slot = Self.home(k, mask)
            while values[slot] >= 0 { slot = (slot + 1) & mask }
            keys[slot] = k
            values[slot] = v
        }
    }
}
