import CXdplb
import Foundation
import NetAddress
import Packets

/// A numbered set of client flows: flow k has source address `base + k / 64000`
/// (in the address's last 32 bits) and source port `1024 + k % 64000`.
struct FlowSpace {
    static let portsPerAddress = 64000
    let base: IPAddress
    private let baseLow: UInt32

    init(_ base: IPAddress) {
        self.base = base
        let b = base.bytes
        baseLow = UInt32(b[b.count - 4]) << 24 | UInt32(b[b.count - 3]) << 16 | UInt32(b[b.count - 2]) << 8 | UInt32(b[b.count - 1])
    }

    /// The low 32 bits of flow k's source address.
    @inline(__always)
    func sourceLow(_ k: Int) -> UInt32 { baseLow &+ UInt32(truncatingIfNeeded: k / Self.portsPerAddress) }

    func source(_ k: Int) -> IPAddress {
        var b = base.bytes
        let low = sourceLow(k)
        b[b.count - 4] = UInt8(low >> 24)
        b[b.count - 3] = UInt8((low >> 16) & 0xff)
        b[b.count - 2] = UInt8((low >> 8) & 0xff)
        b[b.count - 1] = UInt8(low & 0xff)
        return b.count == 16 ? .v6(b) : .v4(b)
    }

    @inline(__always)
    func sport(_ k: Int) -> UInt16 { UInt16(1024 + k % Self.portsPerAddress) }
}

/// How a case's frames change between runs.
enum FlowOrder {
    /// The same frame every run.
    case fixed
    /// A new flow every run: flow numbers next, next + 1, …
    case distinct(next: Int)
    /// Flows of a pool in this order, round and round.
    case cycle(order: [Int32], position: Int)
    /// As `cycle`, but an entry below 0 (``FlowOrder/newFlow``) is a new flow: next, next + 1, …
    case mix(order: [Int32], next: Int)

    /// The `mix` entry for "a flow never sent before" (XDPLB_BENCH_MIX_NEW).
    static let newFlow = Int32(bitPattern: XDPLB_BENCH_MIX_NEW)
}

/// Rewrites a frame in place to another flow of its FlowSpace: source address
/// (low 32 bits) and source port, with the IPv4 header and TCP/UDP checksums
/// updated incrementally (RFC 1624), so every frame stays valid.
struct FramePatch {
    let space: FlowSpace
    let srcLowOffset: Int
    let sportOffset: Int
    let ipChecksumOffset: Int?
    let l4ChecksumOffset: Int
    let udp: Bool

    /// For a frame built by `BenchFrames` (Ethernet, no VLAN).
    init(space: FlowSpace, proto: UInt8) {
        self.space = space
        let v6 = space.base.isV6
        let l4 = 14 + (v6 ? 40 : 20)
        srcLowOffset = v6 ? 14 + 8 + 12 : 14 + 12
        sportOffset = l4
        ipChecksumOffset = v6 ? nil : 14 + 10
        udp = proto == PacketBuilder.udpProto
        l4ChecksumOffset = l4 + (udp ? 6 : 16)
    }

    @inline(__always)
    static func load16(_ p: UnsafeMutableRawPointer, _ off: Int) -> UInt16 {
        UInt16(p.load(fromByteOffset: off, as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: off + 1, as: UInt8.self))
    }

    @inline(__always)
    static func store16(_ p: UnsafeMutableRawPointer, _ off: Int, _ v: UInt16) {
        p.storeBytes(of: UInt8(v >> 8), toByteOffset: off, as: UInt8.self)
        p.storeBytes(of: UInt8(v & 0xff), toByteOffset: off + 1, as: UInt8.self)
    }

    /// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
    @inline(__always)
    static func update(_ hc: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        var s = UInt32(~hc) + UInt32(~old) + UInt32(new)
        s = (s & 0xffff) + (s >> 16)
        s = (s & 0xffff) + (s >> 16)
        return ~UInt16(s)
    }

    @inline(__always)
    func apply(_ frame: UnsafeMutableRawPointer, flow k: Int) {
        let low = space.sourceLow(k)
        var l4 = Self.load16(frame, l4ChecksumOffset)
        var ip = ipChecksumOffset.map { Self.load16(frame, $0) } ?? 0
        @inline(__always) func put(_ off: Int, _ new: UInt16, inIPHeader: Bool) {
            let old = Self.load16(frame, off)
            if old == new { return }
            l4 = Self.update(l4, old: old, new: new)
            if inIPHeader { ip = Self.update(ip, old: old, new: new) }
            Self.store16(frame, off, new)
        }
        put(srcLowOffset, UInt16(low >> 16), inIPHeader: true)
        put(srcLowOffset + 2, UInt16(low & 0xffff), inIPHeader: true)
        put(sportOffset, space.sport(k), inIPHeader: false)
        if udp && l4 == 0 { l4 = 0xffff }
        Self.store16(frame, l4ChecksumOffset, l4)
        if let o = ipChecksumOffset { Self.store16(frame, o, ip) }
    }
}

/// Frames as clients send them to the LB node (valid checksums, DF on IPv4).
enum BenchFrames {
    static let nodeMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0xa1]
    static let routerMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
    static let gatewayMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0xb1]

    static func tcp(_ src: IPAddress, _ sport: UInt16, _ dst: IPAddress, _ dport: UInt16, flags: TCPFlags, payload: Int) -> [UInt8] {
        let seg = PacketBuilder.tcp(src: src, dst: dst, sport: sport, dport: dport, flags: flags, seq: 0x1000,
                                    ack: flags.contains(.ack) ? 0x2000 : 0, payload: Array(repeating: 0x5a, count: payload))
        let ip = PacketBuilder.ip(src: src, dst: dst, proto: PacketBuilder.tcpProto, payload: seg)
        return PacketBuilder.ethernet(dst: nodeMAC, src: routerMAC, etherType: PacketBuilder.etherType(for: src), payload: ip)
    }

    static func udp(_ src: IPAddress, _ sport: UInt16, _ dst: IPAddress, _ dport: UInt16, payload: Int) -> [UInt8] {
        let dg = PacketBuilder.udp(src: src, dst: dst, sport: sport, dport: dport, payload: Array(repeating: 0x5a, count: payload))
        let ip = PacketBuilder.ip(src: src, dst: dst, proto: PacketBuilder.udpProto, payload: dg)
        return PacketBuilder.ethernet(dst: nodeMAC, src: routerMAC, etherType: PacketBuilder.etherType(for: src), payload: ip)
    }
}

/// SplitMix64, for a reproducible shuffle.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// A realistic packet mix: `count` entries, each with probability `newFraction`
/// a new flow (``FlowOrder/newFlow``), else a flow of `pool` drawn with Zipf
/// popularity of exponent `s` (rank r has weight 1 / (r + 1)^s). Ranks are
/// given to the pool's flows in a random order, so the popular flows sit in
/// random conntrack buckets.
enum ZipfMix {
    static func order(pool: [Int32], count: Int, s: Double, newFraction: Double, rng: inout SplitMix64) -> [Int32] {
        precondition(!pool.isEmpty && count > 0)
        let ranked = pool.shuffled(using: &rng)
        var cdf = [Double](repeating: 0, count: ranked.count)
        var total = 0.0
        for r in 0..<ranked.count {
            total += 1 / pow(Double(r + 1), s)
            cdf[r] = total
        }
        var out: [Int32] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            if Double.random(in: 0..<1, using: &rng) < newFraction {
                out.append(FlowOrder.newFlow)
                continue
            }
            let u = Double.random(in: 0..<total, using: &rng)
            // The first rank whose cumulative weight passes u.
            var lo = 0, hi = cdf.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if cdf[mid] > u { hi = mid } else { lo = mid + 1 }
            }
            out.append(ranked[lo])
        }
        return out
    }
}
