import CXdplb
import NetAddress

/// Conversions between Swift values and the ABI structs of bpf/xdplb_abi.h.
public enum ABI {
    /// Writes the 16-byte padded form of `address` into a `__be32[4]` tuple.
    static func addr(_ address: IPAddress) -> (UInt32, UInt32, UInt32, UInt32) {
        var t: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &t) { $0.copyBytes(from: address.paddedBytes) }
        return t
    }

    /// Reads a `__be32[4]` tuple back as an address of `family` (4 or 6).
    static func address(_ t: (UInt32, UInt32, UInt32, UInt32), family: UInt8) -> IPAddress {
        let b = withUnsafeBytes(of: t) { Array($0) }
        return family == 6 ? .v6(b) : .v4(Array(b.prefix(4)))
    }

    /// Byte-for-byte equality of two ABI structs (what the kernel compares).
    public static func bytesEqual<T>(_ a: T, _ b: T) -> Bool {
        withUnsafeBytes(of: a) { x in withUnsafeBytes(of: b) { y in x.elementsEqual(y) } }
    }

    /// Host-order port to the `__be16` stored in keys.
    static func port(_ p: UInt16) -> UInt16 { p.bigEndian }
}

extension xdplb_vip_key: @retroactive Hashable {
    /// A VIP key for `address:port/proto` (port and proto as configured, host order).
    public init(address: IPAddress, port: UInt16, proto: UInt8) {
        self.init()
        addr = ABI.addr(address)
        self.port = ABI.port(port)
        self.proto = proto
        family = address.family
    }

    public static func == (a: xdplb_vip_key, b: xdplb_vip_key) -> Bool {
        ABI.bytesEqual(a, b)
    }

    public func hash(into h: inout Hasher) {
        withUnsafeBytes(of: self) { h.combine(bytes: $0) }
    }
}

extension xdplb_vip_addr_key {
    init(address: IPAddress) {
        self.init()
        addr = ABI.addr(address)
        family = address.family
    }
}

extension xdplb_flow_key {
    /// The key of the client -> VIP flow `src:sport -> dst:dport/proto`, laid
    /// out as the program builds it (ports host order here, network order in the key).
    public init(src: IPAddress, dst: IPAddress, sport: UInt16, dport: UInt16, proto: UInt8) {
        self.init()
        self.src = ABI.addr(src)
        self.dst = ABI.addr(dst)
        self.sport = ABI.port(sport)
        self.dport = ABI.port(dport)
        self.proto = proto
        family = src.family
    }
}
