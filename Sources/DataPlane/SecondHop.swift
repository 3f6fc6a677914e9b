import CXdplb
import NetAddress

/// The second hop's GRE key (bpf/xdplb_abi.h, section 4b), as the data plane
/// writes it: an IPv4 backend's address, or 0x00 and the 24-bit hop id of an
/// IPv6 backend. The same function as bpf/hop.h and tools/gre-decap.
public enum SecondHop {
    /// The hop id of an IPv6 address (1...0xffffff).
    public static func hopID(v6 address: IPAddress) -> UInt32 {
        let b = address.bytes
        func word(_ i: Int) -> UInt32 {
            UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
        }
        var h = word(0) &* 0x9E37_79B1 ^ word(4) &* 0x85EB_CA77 ^ word(8) &* 0xC2B2_AE3D ^ word(12) &* 0x27D4_EB2F
        h ^= h >> 15
        h ^= h >> 7
        h &= UInt32(XDPLB_HOP_V6_MASK)
        return h == 0 ? 1 : h
    }

    /// The key naming `address` as the second hop, in host order (its wire bytes big-endian).
    public static func key(for address: IPAddress) -> UInt32 {
        if address.isV6 { return hopID(v6: address) }
        let b = address.bytes
        return UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
    }

    /// What a key names, for people: an IPv4 address, an IPv6 hop id, or the handed-on flag.
    public static func describe(key: UInt32, among backends: [IPAddress] = []) -> String {
        if key == XDPLB_HOP_HANDED_ON { return "handed on (no further hop)" }
        if key >> 24 == 0 {
            let id = key & UInt32(XDPLB_HOP_V6_MASK)
            if let a = backends.first(where: { $0.isV6 && hopID(v6: $0) == id }) { return "\(a) (hop id 0x\(String(id, radix: 16)))" }
            return "IPv6 hop id 0x\(String(id, radix: 16))"
        }
        return "\(key >> 24).\(key >> 16 & 0xff).\(key >> 8 & 0xff).\(key & 0xff)"
    }
}
