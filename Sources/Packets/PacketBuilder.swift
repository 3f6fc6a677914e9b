import NetAddress

/// Internet checksum (RFC 1071) helpers.
public enum Checksum {
    /// Ones'-complement sum of `bytes` as big-endian 16-bit words, folded, not inverted.
    public static func sum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt32 {
        var s = initial
        var i = 0
        while i + 1 < bytes.count {
            s &+= UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { s &+= UInt32(bytes[i]) << 8 }
        while s > 0xffff { s = (s & 0xffff) + (s >> 16) }
        return s
    }

    /// The checksum field value for `bytes` (with the field itself zero).
    public static func internet(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
        ~UInt16(sum(bytes, initial: initial))
    }

    /// Sum of the TCP/UDP/ICMPv6 pseudo-header for `src`/`dst`.
    public static func pseudoHeader(src: IPAddress, dst: IPAddress, proto: UInt8, length: Int) -> UInt32 {
        var p = src.bytes + dst.bytes
        if src.isV6 {
            p += be32(UInt32(length)) + [0, 0, 0, proto]
        } else {
            p += [0, proto] + be16(UInt16(length))
        }
        return sum(p)
    }
}

/// Big-endian bytes of a 16-bit value.
public func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
/// Big-endian bytes of a 32-bit value.
public func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }

/// TCP header flags.
public struct TCPFlags: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
}

/// Builds packets byte by byte, with correct lengths and checksums.
public enum PacketBuilder {
    /// IP protocol numbers used here.
    public static let tcpProto: UInt8 = 6, udpProto: UInt8 = 17, icmpProto: UInt8 = 1, icmpv6Proto: UInt8 = 58, greProto: UInt8 = 47

    /// An Ethernet header (with one 802.1Q tag when `vlan` is set) followed by `payload`.
    public static func ethernet(dst: [UInt8], src: [UInt8], etherType: UInt16, vlan: UInt16? = nil, payload: [UInt8]) -> [UInt8] {
        var f = dst + src
        if let vlan { f += be16(0x8100) + be16(vlan) }
        return f + be16(etherType) + payload
    }

    /// The EtherType for an IP packet of `address`'s family.
    public static func etherType(for address: IPAddress) -> UInt16 { address.isV6 ? 0x86dd : 0x0800 }

    /// An IPv4 header (checksummed) plus payload. `flags` holds DF (0x4000) / MF (0x2000) and the offset.
    public static func ipv4(src: IPAddress, dst: IPAddress, proto: UInt8, payload: [UInt8], tos: UInt8 = 0,
                            ttl: UInt8 = 64, id: UInt16 = 0, flagsAndOffset: UInt16 = 0x4000,
                            options: [UInt8] = [], totalLengthOverride: UInt16? = nil) -> [UInt8] {
        precondition(options.count % 4 == 0, "IPv4 options must be padded to 4 bytes")
        let ihl = UInt8(5 + options.count / 4)
        let total = totalLengthOverride ?? UInt16(Int(ihl) * 4 + payload.count)
        var h: [UInt8] = [0x40 | ihl, tos] + be16(total) + be16(id) + be16(flagsAndOffset) + [ttl, proto, 0, 0]
        h += src.bytes + dst.bytes + options
        let c = Checksum.internet(h)
        h[10] = UInt8(c >> 8); h[11] = UInt8(c & 0xff)
        return h + payload
    }

    /// An IPv6 header plus payload.
    public static func ipv6(src: IPAddress, dst: IPAddress, nextHeader: UInt8, payload: [UInt8], trafficClass: UInt8 = 0,
                            flowLabel: UInt32 = 0, hopLimit: UInt8 = 64, payloadLengthOverride: UInt16? = nil) -> [UInt8] {
        let w0 = UInt32(6) << 28 | UInt32(trafficClass) << 20 | (flowLabel & 0xfffff)
        return be32(w0) + be16(payloadLengthOverride ?? UInt16(payload.count)) + [nextHeader, hopLimit]
            + src.bytes + dst.bytes + payload
    }

    /// An IP packet of the family of `src` (IPv4 or IPv6) carrying `payload`.
    public static func ip(src: IPAddress, dst: IPAddress, proto: UInt8, payload: [UInt8], tos: UInt8 = 0) -> [UInt8] {
        src.isV6 ? ipv6(src: src, dst: dst, nextHeader: proto, payload: payload, trafficClass: tos)
                 : ipv4(src: src, dst: dst, proto: proto, payload: payload, tos: tos)
    }

    /// A TCP segment (20-byte header, checksummed for `src`/`dst`).
    public static func tcp(src: IPAddress, dst: IPAddress, sport: UInt16, dport: UInt16, flags: TCPFlags,
                           seq: UInt32 = 1, ack: UInt32 = 0, window: UInt16 = 65535, payload: [UInt8] = []) -> [UInt8] {
        var h = be16(sport) + be16(dport) + be32(seq) + be32(ack) + [0x50, flags.rawValue] + be16(window) + [0, 0, 0, 0]
        h += payload
        let c = Checksum.internet(h, initial: Checksum.pseudoHeader(src: src, dst: dst, proto: tcpProto, length: h.count))
        h[16] = UInt8(c >> 8); h[17] = UInt8(c & 0xff)
        return h
    }

    /// A UDP datagram (checksummed for `src`/`dst`).
    public static func udp(src: IPAddress, dst: IPAddress, sport: UInt16, dport: UInt16, payload: [UInt8] = []) -> [UInt8] {
        var h = be16(sport) + be16(dport) + be16(UInt16(8 + payload.count)) + [0, 0] + payload
        var c = Checksum.internet(h, initial: Checksum.pseudoHeader(src: src, dst: dst, proto: udpProto, length: h.count))
        if c == 0 { c = 0xffff }
        h[6] = UInt8(c >> 8); h[7] = UInt8(c & 0xff)
        return h
    }

    /// An ICMP (v4) message: type, code, 4 bytes of rest-of-header, then `body`.
    public static func icmpv4(type: UInt8, code: UInt8, rest: [UInt8] = [0, 0, 0, 0], body: [UInt8]) -> [UInt8] {
        var m = [type, code, 0, 0] + rest + body
        let c = Checksum.internet(m)
        m[2] = UInt8(c >> 8); m[3] = UInt8(c & 0xff)
        return m
    }

    /// An ICMPv6 message (checksummed with the pseudo-header of `src`/`dst`).
    public static func icmpv6(src: IPAddress, dst: IPAddress, type: UInt8, code: UInt8, rest: [UInt8] = [0, 0, 0, 0], body: [UInt8]) -> [UInt8] {
        var m = [type, code, 0, 0] + rest + body
        let c = Checksum.internet(m, initial: Checksum.pseudoHeader(src: src, dst: dst, proto: icmpv6Proto, length: m.count))
        m[2] = UInt8(c >> 8); m[3] = UInt8(c & 0xff)
        return m
    }

    /// A 4-byte GRE header (RFC 2784, no checksum/key/sequence) for `innerEtherType`.
    public static func gre(innerEtherType: UInt16) -> [UInt8] { [0, 0] + be16(innerEtherType) }
}
