#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address held as its network-order bytes.
public enum IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// An IPv4 address: exactly 4 bytes in network order.
    case v4([UInt8])
    /// An IPv6 address: exactly 16 bytes in network order.
    case v6([UInt8])

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (brackets allowed); nil if neither.
    /// The whole text must be the address: a NUL byte (e.g. a decoded `%00`) or anything
    /// after the address makes it nil, never a prefix that happens to parse.
    public init?(_ text: String) {
        // inet_pton reads a C string, which ends at the first NUL: "10.0.9.2\0junk" would pass.
        guard !text.utf8.contains(0), text.utf8.count <= 64 else { return nil }
        var s = text
        if s.hasPrefix("["), s.hasSuffix("]") { s = String(s.dropFirst().dropLast()) }
        var v4 = in_addr()
        if s.withCString({ inet_pton(AF_INET, $0, &v4) }) == 1 {
            self = .v4(withUnsafeBytes(of: v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        if s.withCString({ inet_pton(AF_INET6, $0, &v6) }) == 1 {
            self = .v6(withUnsafeBytes(of: v6) { Array($0) })
            return
        }
        return nil
    }

    /// The address bytes in network order (4 or 16).
    public var bytes: [UInt8] {
        switch self {
        case .v4(let b), .v6(let b): return b
        }
    }

    /// True for IPv6.
    public var isV6: Bool {
        if case .v6 = self { return true }
        return false
    }

    /// 4 or 6.
    public var family: UInt8 { isV6 ? 6 : 4 }

    /// The 16-byte form used in BPF keys: IPv4 in the first 4 bytes, the rest zero.
    public var paddedBytes: [UInt8] {
        switch self {
        case .v4(let b): return b + [UInt8](repeating: 0, count: 12)
        case .v6(let b): return b
        }
    }

    /// Canonical text (inet_ntop), e.g. `10.0.0.1` or `fd00::1`.
    public var description: String {
        if case .v4(let b) = self, b.count == 4 { return Self.dottedQuad(b) }
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch self {
        case .v4(let b):
            _ = b.withUnsafeBytes { inet_ntop(AF_INET, $0.baseAddress, &buf, socklen_t(buf.count)) }
        case .v6(let b):
            _ = b.withUnsafeBytes { inet_ntop(AF_INET6, $0.baseAddress, &buf, socklen_t(buf.count)) }
        }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// inet_ntop's text of 4 bytes, written without a C call or a heap buffer:
    /// a config's backends are named by it thousands of times an apply
    /// (4,001 addresses took 1.9 ms through inet_ntop).
    private static func dottedQuad(_ b: [UInt8]) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 15) { out in
            var n = 0
            for (i, byte) in b.enumerated() {
                if i > 0 { out[n] = UInt8(ascii: "."); n += 1 }
                var x = Int(byte)
                if x >= 100 { out[n] = UInt8(48 + x / 100); n += 1; x %= 100; out[n] = UInt8(48 + x / 10); n += 1; x %= 10 }
                else if x >= 10 { out[n] = UInt8(48 + x / 10); n += 1; x %= 10 }
                out[n] = UInt8(48 + x); n += 1
            }
            return String(decoding: UnsafeBufferPointer(rebasing: out[..<n]), as: UTF8.self)
        }
    }

    /// Why this address cannot be a unicast service or tunnel endpoint, or nil if it can:
    /// unspecified (`0.0.0.0`, `::`), loopback, multicast, the IPv4 limited broadcast,
    /// or IPv4-mapped IPv6 (`::ffff:a.b.c.d`, which is the IPv4 address in disguise).
    public var notUnicastReason: String? {
        let b = bytes
        switch self {
        case .v4:
            if b == [0, 0, 0, 0] { return "the unspecified address" }
            if b[0] == 0 { return "in 0.0.0.0/8 (\"this network\", not routable)" }
            if b[0] == 127 { return "a loopback address (127.0.0.0/8)" }
            if b[0] >= 224 && b[0] <= 239 { return "a multicast address (224.0.0.0/4)" }
            if b == [255, 255, 255, 255] { return "the broadcast address" }
            if b[0] >= 240 { return "in the reserved range 240.0.0.0/4" }
            return nil
        case .v6:
            if b.allSatisfy({ $0 == 0 }) { return "the unspecified address" }
            if b.prefix(15).allSatisfy({ $0 == 0 }) && b[15] == 1 { return "the loopback address" }
            if b[0] == 0xff { return "a multicast address (ff00::/8)" }
            if b.prefix(10).allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff {
                return "an IPv4-mapped IPv6 address (write it as the IPv4 address \(b[12]).\(b[13]).\(b[14]).\(b[15]))"
            }
            return nil
        }
    }

    /// Hashes the family and the bytes as one or two words (a 4- or 16-byte
    /// address; any other length byte by byte): backend maps of a large config
    /// hash addresses hundreds of thousands of times an apply.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .v4(let b): Self.hash(b, family: 4, into: &hasher)
        case .v6(let b): Self.hash(b, family: 6, into: &hasher)
        }
    }

    private static func hash(_ b: [UInt8], family: UInt64, into hasher: inout Hasher) {
        b.withUnsafeBytes { raw in
            switch raw.count {
            case 4:
                hasher.combine(UInt64(raw.loadUnaligned(as: UInt32.self)) << 8 | family)
            case 16:
                hasher.combine(raw.loadUnaligned(as: UInt64.self))
                hasher.combine(raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self) ^ family)
            default:
                hasher.combine(family)
                hasher.combine(bytes: raw)
            }
        }
    }

    /// IPv4 sorts before IPv6; within a family, by bytes. Inlinable, so a sort
    /// in another module compares without a call per pair.
    @inlinable
    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)) where a.count == 4 && b.count == 4:
            // Byte order is the order of the big-endian words (a sort of 4,001 backends: ~1 ms less).
            return bigEndianWord(a, 0, UInt32.self) < bigEndianWord(b, 0, UInt32.self)
        case (.v6(let a), .v6(let b)) where a.count == 16 && b.count == 16:
            let a0 = bigEndianWord(a, 0, UInt64.self), b0 = bigEndianWord(b, 0, UInt64.self)
            return a0 != b0 ? a0 < b0 : bigEndianWord(a, 8, UInt64.self) < bigEndianWord(b, 8, UInt64.self)
        default:
            if lhs.family != rhs.family { return lhs.family < rhs.family }
            return lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
        }
    }

    /// The bytes at `offset` as a big-endian integer.
    @inlinable @inline(__always)
    static func bigEndianWord<T: FixedWidthInteger>(_ b: [UInt8], _ offset: Int, _: T.Type) -> T {
        b.withUnsafeBytes { T(bigEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}
