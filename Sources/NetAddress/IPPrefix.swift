/// An IPv4 or IPv6 prefix: an address with its host bits zero and a length.
public struct IPPrefix: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The network address: every bit past `length` is zero.
    public let address: IPAddress
    /// Leading bits that count: 0...32 (IPv4) or 0...128 (IPv6).
    public let length: Int

    /// Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (a host prefix /32 or /128). nil on any problem.
    public init?(_ text: String) {
        guard case .success(let p) = Self.parse(text) else { return nil }
        self = p
    }

    /// Like `init?(_:)`, but says why not: a bad address, a bad or out-of-range length, or host bits
    /// set (with the prefix the address is in, e.g. "host bits set: 10.1.0.0/8 (the /8 prefix is 10.0.0.0/8)").
    public static func parse(_ text: String) -> Result<IPPrefix, IPPrefixError> {
        let addressText: Substring, lengthText: Substring?
        if let slash = text.lastIndex(of: "/") {
            addressText = text[..<slash]
            lengthText = text[text.index(after: slash)...]
        } else {
            addressText = Substring(text)
            lengthText = nil
        }
        guard !addressText.contains("/"), let a = IPAddress(String(addressText)) else {
            return .failure(IPPrefixError("not an address: \(Self.quoted(text)) (write an IPv4 or IPv6 address, optionally with /length, like 10.0.0.0/8 or 2001:db8::/32)"))
        }
        let maxLength = a.isV6 ? 128 : 32
        let family = a.isV6 ? "IPv6" : "IPv4"
        guard let lengthText else { return .success(IPPrefix(masked: a, length: maxLength)) }
        guard !lengthText.isEmpty, lengthText.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return .failure(IPPrefixError("not a prefix length: \(Self.quoted(String(lengthText))) in \(Self.quoted(text)) (a number 0–\(maxLength) for \(family))"))
        }
        guard lengthText.count <= 3, let n = Int(lengthText), n <= maxLength else {
            return .failure(IPPrefixError("length \(Self.clip(String(lengthText))) is out of range 0–\(maxLength) for \(family)"))
        }
        let p = IPPrefix(masked: a, length: n)
        if p.address != a {
            return .failure(IPPrefixError("host bits set: \(a)/\(n) (the /\(n) prefix is \(p))"))
        }
        return .success(p)
    }

    /// A prefix from parts (address masked to length); nil if length is out of range for the family.
    public init?(address: IPAddress, length: Int) {
        guard length >= 0, length <= (address.isV6 ? 128 : 32) else { return nil }
        self.init(masked: address, length: length)
    }

    /// `address` with every bit past `length` cleared (`length` already checked).
    private init(masked a: IPAddress, length: Int) {
        var b = a.bytes
        for i in b.indices {
            let keep = length - i * 8
            if keep <= 0 { b[i] = 0 } else if keep < 8 { b[i] &= UInt8(truncatingIfNeeded: 0xff << (8 - keep)) }
        }
        self.address = a.isV6 ? .v6(b) : .v4(b)
        self.length = length
    }

    /// True when `a` is of the same family and its first `length` bits equal the prefix's.
    public func contains(_ a: IPAddress) -> Bool {
        guard a.isV6 == address.isV6 else { return false }
        let mine = address.bytes, theirs = a.bytes
        guard mine.count == theirs.count else { return false }
        var bits = length
        for i in mine.indices where bits > 0 {
            let n = min(bits, 8)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - n))
            if mine[i] & mask != theirs[i] & mask { return false }
            bits -= n
        }
        return true
    }

    /// True for an IPv6 prefix.
    public var isV6: Bool { address.isV6 }

    /// Canonical "10.0.0.0/8" / "2001:db8::/32" (always with the length).
    public var description: String { "\(address)/\(length)" }

    /// IPv4 before IPv6, then by address bytes, then by length (shorter first).
    public static func < (lhs: IPPrefix, rhs: IPPrefix) -> Bool {
        if lhs.address != rhs.address { return lhs.address < rhs.address }
        return lhs.length < rhs.length
    }

    /// `'s'` clipped to 64 characters, control characters escaped: safe to put in a message.
    static func quoted(_ s: String) -> String { "'\(clip(s))'" }

    static func clip(_ s: String) -> String {
        var out = "", n = 0
        for u in s.unicodeScalars {
            if n == 64 { return out + "…" }
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || (0x7f...0x9f).contains(u.value): out += "\\u{\(String(u.value, radix: 16))}"
            default: out.unicodeScalars.append(u)
            }
            n += 1
        }
        return out
    }
}

/// Why a text is not an `IPPrefix`.
public struct IPPrefixError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The reason, e.g. "length 33 is out of range 0–32 for IPv4".
    public var description: String

    /// An error with this reason.
    public init(_ description: String) { self.description = description }
}
