import NetAddress

/// A client → VIP flow as the balancer sees it.
///
/// Ports are host-order numbers here; ``FlowHash`` turns them back into the
/// wire bytes the C side hashes.
public struct FlowTuple: Hashable, Sendable {
    /// The client (source) address.
    public var src: IPAddress
    /// The VIP (destination) address.
    public var dst: IPAddress
    /// The source port, host order (0 for protocols without ports).
    public var sport: UInt16
    /// The destination port, host order (0 for protocols without ports).
    public var dport: UInt16
    /// The IP protocol number (6 = TCP, 17 = UDP).
    public var proto: UInt8

    /// Creates a flow.
    /// - Parameters:
    ///   - src: The client address.
    ///   - dst: The VIP address.
    ///   - sport: The source port, host order.
    ///   - dport: The destination port, host order.
    ///   - proto: The IP protocol number.
    public init(src: IPAddress, dst: IPAddress, sport: UInt16, dport: UInt16, proto: UInt8) {
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.proto = proto
    }
}

/// The flow hash: the bit-for-bit twin of `bpf/flow_hash.h`.
///
/// MurmurHash3 (x86_32) over 32-bit words, seeded with the cluster-wide
/// `hash_seed`. A word is four packet bytes read as a little-endian `u32` —
/// what a plain load gives on the little-endian BPF target — so this code
/// assembles every word from wire bytes explicitly and gives the same answer
/// on any host. Words, in order:
/// - 5-tuple: source address words (1 for IPv4, 4 for IPv6), destination
///   address words, the port word (sport then dport, as on the wire), the
///   protocol number;
/// - source-ip: source address words only.
///
/// The length mixed into the finaliser is 4 × the number of words.
/// Change this file and `bpf/flow_hash.h` together.
public enum FlowHash {
    /// Rotates `x` left by `r` bits (`xdplb_rotl32`).
    @inlinable
    public static func rotl32(_ x: UInt32, _ r: UInt32) -> UInt32 {
        (x << r) | (x >> (32 &- r))
    }

    /// One MurmurHash3 body step: mixes word `k` into state `h` (`xdplb_hash_word`).
    /// - Parameters:
    ///   - h: The running hash state.
    ///   - k: The next 32-bit word.
    /// - Returns: The new state.
    @inlinable
    public static func hashWord(_ h: UInt32, _ k: UInt32) -> UInt32 {
        var k = k &* 0xcc9e_2d51
        k = rotl32(k, 15)
        k = k &* 0x1b87_3593
        var h = h ^ k
        h = rotl32(h, 13)
        return h &* 5 &+ 0xe654_6b64
    }

    /// The MurmurHash3 finaliser (`xdplb_hash_final`).
    /// - Parameters:
    ///   - h: The state after the last body step.
    ///   - wordCount: The number of words mixed in (the length is 4 × this).
    /// - Returns: The final hash.
    @inlinable
    public static func finalize(_ h: UInt32, wordCount: UInt32) -> UInt32 {
        var h = h ^ (wordCount &* 4)
        h ^= h >> 16
        h = h &* 0x85eb_ca6b
        h ^= h >> 13
        h = h &* 0xc2b2_ae35
        h ^= h >> 16
        return h
    }

    /// Reads four wire bytes as a little-endian `u32`, as a BPF load does.
    /// - Parameters:
    ///   - bytes: The buffer; `bytes[start ..< start + 4]` is read.
    ///   - start: Index of the first byte.
    @inlinable
    public static func word<C: RandomAccessCollection>(_ bytes: C, at start: C.Index) -> UInt32
    where C.Element == UInt8 {
        let b0 = bytes[start]
        let b1 = bytes[bytes.index(start, offsetBy: 1)]
        let b2 = bytes[bytes.index(start, offsetBy: 2)]
        let b3 = bytes[bytes.index(start, offsetBy: 3)]
        return UInt32(b0) | UInt32(b1) << 8 | UInt32(b2) << 16 | UInt32(b3) << 24
    }

    /// The port word: the wire bytes `[sport_hi, sport_lo, dport_hi, dport_lo]`
    /// read as a little-endian `u32` (the raw `sport`/`dport` pair of the flow key).
    /// - Parameters:
    ///   - sport: The source port, host order.
    ///   - dport: The destination port, host order.
    @inlinable
    public static func portsWord(sport: UInt16, dport: UInt16) -> UInt32 {
        UInt32(sport >> 8) | UInt32(sport & 0xff) << 8
            | UInt32(dport >> 8) << 16 | UInt32(dport & 0xff) << 24
    }

    /// Hashes a flow exactly as the data plane does (`xdplb_flow_hash`).
    ///
    /// The family comes from the source address (the flow key has one family).
    /// Both addresses are read in their 16-byte key form
    /// (``IPAddress/paddedBytes``), IPv4 using the first word only.
    /// - Parameters:
    ///   - flow: The flow.
    ///   - sourceOnly: True for the `source-ip` hash mode (source address only).
    ///   - seed: The cluster-wide `hash_seed`.
    /// - Returns: The 32-bit flow hash.
    public static func hash(_ flow: FlowTuple, sourceOnly: Bool, seed: UInt32) -> UInt32 {
        hash(src: flow.src.paddedBytes, dst: flow.dst.paddedBytes, isV6: flow.src.isV6,
             ports: portsWord(sport: flow.sport, dport: flow.dport), proto: flow.proto,
             sourceOnly: sourceOnly, seed: seed)
    }

    /// The same hash from a flow key's fields as laid out in memory: `src` and
    /// `dst` are the 16-byte key forms of the addresses, `ports` the port word.
    /// - Returns: The 32-bit flow hash.
    @inlinable
    public static func hash<A: RandomAccessCollection>(src: A, dst: A, isV6: Bool, ports: UInt32, proto: UInt8,
                                                      sourceOnly: Bool, seed: UInt32) -> UInt32
    where A.Element == UInt8, A.Index == Int {
        let addrWords = isV6 ? 4 : 1
        var h = seed
        var n: UInt32 = 0

        for i in 0 ..< addrWords {
            h = hashWord(h, word(src, at: src.startIndex + 4 * i))
        }
        n += UInt32(addrWords)
        if sourceOnly {
            return finalize(h, wordCount: n)
        }

        for i in 0 ..< addrWords {
            h = hashWord(h, word(dst, at: dst.startIndex + 4 * i))
        }
        n += UInt32(addrWords)
        h = hashWord(h, ports)
        h = hashWord(h, UInt32(proto))
        return finalize(h, wordCount: n + 2)
    }

    /// The ring slot a hash selects: `hash % ringSize`.
    ///
    /// The BPF ring array holds `1 + ringSize` entries; the data plane reads
    /// element `1 + slot`.
    /// - Parameters:
    ///   - hash: A flow hash from ``hash(_:sourceOnly:seed:)``.
    ///   - ringSize: The table size M (positive).
    /// - Returns: A slot in `0 ..< ringSize`.
    @inlinable
    public static func ringSlot(hash: UInt32, ringSize: Int) -> Int {
        precondition(ringSize > 0 && ringSize <= Int(UInt32.max), "ring size must be in 1 ... 2^32-1")
        return Int(hash % UInt32(ringSize))
    }
}
