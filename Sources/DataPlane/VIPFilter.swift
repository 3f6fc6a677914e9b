import CXdplb
import NetAddress

/// The Swift twin of the data plane's VIP address prefilter (bpf/xdplb_abi.h,
/// `vip_filter_bit` in bpf/backend.h): a bitmap with one bit per hash of
/// every VIP address. A clear bit lets the program pass non-VIP traffic
/// without a hash-map lookup.
public enum VIPFilter {
    /// Number of bits.
    public static let bits = Int(XDPLB_VIP_FILTER_BITS)

    /// The bit of `address`: XOR of its four 16-byte-key words read
    /// little-endian, times 0x9E3779B1, shifted right by XDPLB_VIP_FILTER_SHIFT.
    public static func bit(_ address: IPAddress) -> Int {
        let b = address.paddedBytes
        var h: UInt32 = 0
        for w in 0..<4 {
            h ^= UInt32(b[4 * w]) | UInt32(b[4 * w + 1]) << 8 | UInt32(b[4 * w + 2]) << 16 | UInt32(b[4 * w + 3]) << 24
        }
        return Int((h &* 0x9E37_79B1) >> UInt32(XDPLB_VIP_FILTER_SHIFT))
    }

    /// The map value with the bits of `addresses` set and the filter enabled.
    public static func value(for addresses: some Sequence<IPAddress>) -> xdplb_vip_filter {
        var f = xdplb_vip_filter()
        f.enabled = 1
        withUnsafeMutableBytes(of: &f.words) { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for a in addresses {
                let b = bit(a)
                words[b >> 6] |= 1 << UInt64(b & 63)
            }
        }
        return f
    }
}
