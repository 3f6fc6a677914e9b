import NetAddress

/// One-line, tcpdump-like descriptions of frames (for replay output and test messages).
public enum PacketSummary {
    /// E.g. `ipv4 tcp 10.0.0.1:1234 > 10.100.0.1:80 [S] len 60`, or `gre ipv4 10.0.2.2 > 10.0.4.2 (ipv4 tcp …)`.
    public static func describe(_ f: [UInt8]) -> String {
        guard f.count >= 14 else { return "truncated ethernet (\(f.count) bytes)" }
        var off = 12
        var type = UInt16(f[off]) << 8 | UInt16(f[off + 1])
        var vlan = ""
        if type == 0x8100 || type == 0x88a8 {
            guard f.count >= 18 else { return "truncated vlan" }
            vlan = "vlan \(UInt16(f[14] & 0x0f) << 8 | UInt16(f[15])) "
            off += 4
            type = UInt16(f[off]) << 8 | UInt16(f[off + 1])
        }
        return vlan + describeIP(Array(f[(off + 2)...]), etherType: type) + " len \(f.count)"
    }

    static func describeIP(_ p: [UInt8], etherType: UInt16) -> String {
        let src: IPAddress, dst: IPAddress, proto: UInt8, l4: [UInt8], fam: String
        switch etherType {
        case 0x0800:
            guard p.count >= 20 else { return "ipv4 truncated" }
            let ihl = Int(p[0] & 0x0f) * 4
            guard ihl >= 20, p.count >= ihl else { return "ipv4 bad ihl" }
            src = .v4(Array(p[12..<16])); dst = .v4(Array(p[16..<20])); proto = p[9]
            l4 = Array(p[ihl...]); fam = "ipv4"
            if (UInt16(p[6]) << 8 | UInt16(p[7])) & 0x3fff != 0 { return "ipv4 fragment \(src) > \(dst) proto \(proto)" }
        case 0x86dd:
            guard p.count >= 40 else { return "ipv6 truncated" }
            src = .v6(Array(p[8..<24])); dst = .v6(Array(p[24..<40])); proto = p[6]
            l4 = Array(p[40...]); fam = "ipv6"
        default:
            return "ethertype 0x" + String(etherType, radix: 16)
        }
        func ep(_ a: IPAddress, _ port: Int) -> String { a.isV6 ? "[\(a)]:\(port)" : "\(a):\(port)" }
        switch proto {
        case 6, 17:
            guard l4.count >= 4 else { return "\(fam) \(proto == 6 ? "tcp" : "udp") truncated \(src) > \(dst)" }
            let sp = Int(l4[0]) << 8 | Int(l4[1]), dp = Int(l4[2]) << 8 | Int(l4[3])
            var flags = ""
            if proto == 6, l4.count >= 14 {
                let b = l4[13]
                flags = " [" + [(0x02, "S"), (0x10, "."), (0x01, "F"), (0x04, "R"), (0x08, "P")]
                    .filter { b & UInt8($0.0) != 0 }.map(\.1).joined() + "]"
            }
            return "\(fam) \(proto == 6 ? "tcp" : "udp") \(ep(src, sp)) > \(ep(dst, dp))\(flags)"
        case 1, 58:
            let t = l4.count >= 2 ? "type \(l4[0]) code \(l4[1])" : "truncated"
            return "\(fam) \(proto == 1 ? "icmp" : "icmp6") \(src) > \(dst) \(t)"
        case 47:
            guard l4.count >= 4 else { return "\(fam) gre truncated" }
            let inner = UInt16(l4[2]) << 8 | UInt16(l4[3])
            // RFC 2890 key (K bit): xdplb's second hop (bpf/xdplb_abi.h 4b).
            if l4[0] & 0x20 != 0 {
                guard l4.count >= 8 else { return "\(fam) gre key truncated" }
                let k = Array(l4[4..<8])
                let hop = k == [255, 255, 255, 255] ? "handed on"
                    : k[0] == 0 ? "second hop IPv6 id 0x" + String(UInt32(k[1]) << 16 | UInt32(k[2]) << 8 | UInt32(k[3]), radix: 16)
                    : "second hop \(k[0]).\(k[1]).\(k[2]).\(k[3])"
                return "\(fam) gre \(src) > \(dst) key \(hop) (\(describeIP(Array(l4[8...]), etherType: inner)))"
            }
            return "\(fam) gre \(src) > \(dst) (\(describeIP(Array(l4[4...]), etherType: inner)))"
        default:
            return "\(fam) proto \(proto) \(src) > \(dst)"
        }
    }
}
