#if canImport(Glibc)
import Glibc
#endif
import NetAddress
import Testing

@Suite("IPPrefix parsing, containment and order")
struct IPPrefixTests {
    static func p(_ s: String) -> IPPrefix { IPPrefix(s)! }
    static func a(_ s: String) -> IPAddress { IPAddress(s)! }

    @Test("v4 and v6 edges parse to the canonical form")
    func edges() {
        let cases: [(String, String, Int, Bool)] = [
            ("0.0.0.0/0", "0.0.0.0/0", 0, false),
            ("10.0.0.0/8", "10.0.0.0/8", 8, false),
            ("172.16.0.0/16", "172.16.0.0/16", 16, false),
            ("192.0.2.7/32", "192.0.2.7/32", 32, false),
            ("::/0", "::/0", 0, true),
            ("2001:DB8::/32", "2001:db8::/32", 32, true),
            ("2001:db8:0:0::/48", "2001:db8::/48", 48, true),
            ("2001:db8:1:2:3:4:5:6/128", "2001:db8:1:2:3:4:5:6/128", 128, true),
        ]
        for (text, canonical, length, v6) in cases {
            let got = IPPrefix(text)
            #expect(got?.description == canonical, "\(text)")
            #expect(got?.length == length && got?.isV6 == v6, "\(text)")
        }
        #expect(Self.p("10.0.0.0/8").address == Self.a("10.0.0.0"))
    }

    @Test("IPv4 text is inet_ntop's for every value of each byte")
    func dottedQuad() {
        for x in 0...255 {
            for bytes in [[UInt8(x), 0, 0, 0], [1, UInt8(x), 2, 3], [10, 20, UInt8(x), 99], [255, 100, 9, UInt8(x)]] {
                var buf = [CChar](repeating: 0, count: 16)
                _ = bytes.withUnsafeBytes { inet_ntop(AF_INET, $0.baseAddress, &buf, 16) }
                let want = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                #expect(IPAddress.v4(bytes).description == want)
            }
        }
        #expect(IPAddress("192.0.2.7")!.description == "192.0.2.7")
        #expect(IPAddress("fd00::1")!.description == "fd00::1")
    }

    @Test("address order is byte order, IPv4 first, for words that differ anywhere")
    func addressOrder() {
        let texts = ["10.0.0.2", "10.0.0.10", "9.255.255.255", "10.0.1.0", "128.0.0.0", "127.255.255.255", "0.0.0.0",
                     "fd00::1", "::", "fd00::1:0", "2001:db8::", "fd00:0:0:1::", "ffff::", "::ffff:10.0.0.1"]
        let addresses = texts.map(Self.a)
        let byBytes = addresses.sorted { $0.isV6 != $1.isV6 ? !$0.isV6 : $0.bytes.lexicographicallyPrecedes($1.bytes) }
        #expect(addresses.sorted() == byBytes)
        #expect(addresses.sorted().map(\.description).first == "0.0.0.0" && addresses.sorted().last == Self.a("ffff::"))
        for x in addresses { #expect(!(x < x)) }
    }

    @Test("a bare address is a host prefix")
    func bare() {
        #expect(IPPrefix("10.1.2.3") == IPPrefix("10.1.2.3/32"))
        #expect(Self.p("10.1.2.3").description == "10.1.2.3/32")
        #expect(Self.p("fd00::1").description == "fd00::1/128" && Self.p("fd00::1").length == 128)
    }

    @Test("refusals say why", arguments: [
        ("10.1.0.0/8", "host bits set: 10.1.0.0/8 (the /8 prefix is 10.0.0.0/8)"),
        ("10.0.0.1/31", "host bits set: 10.0.0.1/31 (the /31 prefix is 10.0.0.0/31)"),
        ("2001:db8::1/64", "host bits set: 2001:db8::1/64 (the /64 prefix is 2001:db8::/64)"),
        ("2001:db8:4000::/33", "host bits set: 2001:db8:4000::/33 (the /33 prefix is 2001:db8::/33)"),
        ("10.0.0.0/33", "length 33 is out of range 0–32 for IPv4"),
        ("::/129", "length 129 is out of range 0–128 for IPv6"),
        ("10.0.0.0/1000", "length 1000 is out of range 0–32 for IPv4"),
        ("10.0.0.0/", "not a prefix length: '' in '10.0.0.0/' (a number 0–32 for IPv4)"),
        ("10.0.0.0/+8", "not a prefix length: '+8' in '10.0.0.0/+8' (a number 0–32 for IPv4)"),
        ("10.0.0.0/-1", "not a prefix length: '-1' in '10.0.0.0/-1' (a number 0–32 for IPv4)"),
        ("10.0.0/8", "not an address: '10.0.0/8' (write an IPv4 or IPv6 address, optionally with /length, like 10.0.0.0/8 or 2001:db8::/32)"),
        ("10.0.0.0/8/8", "not an address: '10.0.0.0/8/8' (write an IPv4 or IPv6 address, optionally with /length, like 10.0.0.0/8 or 2001:db8::/32)"),
        ("x\n/8", "not an address: 'x\\n/8' (write an IPv4 or IPv6 address, optionally with /length, like 10.0.0.0/8 or 2001:db8::/32)"),
    ])
    func refused(_ text: String, _ why: String) {
        #expect(IPPrefix(text) == nil)
        #expect(IPPrefix.parse(text) == .failure(IPPrefixError(why)))
        if case .failure(let e) = IPPrefix.parse(text) { #expect(e.description == why) }
    }

    @Test("parts: the address is masked; a length out of range is nil")
    func parts() {
        #expect(IPPrefix(address: Self.a("10.1.2.3"), length: 16)?.description == "10.1.0.0/16")
        #expect(IPPrefix(address: Self.a("10.1.2.255"), length: 25)?.description == "10.1.2.128/25")
        #expect(IPPrefix(address: Self.a("2001:db8:abcd:12ff::1"), length: 52)?.description == "2001:db8:abcd:1000::/52")
        #expect(IPPrefix(address: Self.a("10.1.2.3"), length: 0)?.description == "0.0.0.0/0")
        #expect(IPPrefix(address: Self.a("10.1.2.3"), length: 33) == nil)
        #expect(IPPrefix(address: Self.a("10.1.2.3"), length: -1) == nil)
        #expect(IPPrefix(address: Self.a("fd00::1"), length: 128)?.description == "fd00::1/128")
        #expect(IPPrefix(address: Self.a("fd00::1"), length: 129) == nil)
    }

    @Test("contains: the boundary bits decide, and the family must match")
    func contains() {
        let v4 = Self.p("10.1.128.0/17")
        #expect(v4.contains(Self.a("10.1.128.0")) && v4.contains(Self.a("10.1.255.255")))
        #expect(!v4.contains(Self.a("10.1.127.255")))   // bit 17 differs
        #expect(!v4.contains(Self.a("10.0.128.0")))     // bit 16 differs
        let host = Self.p("192.0.2.7/32")
        #expect(host.contains(Self.a("192.0.2.7")) && !host.contains(Self.a("192.0.2.6")))
        let all4 = Self.p("0.0.0.0/0")
        #expect(all4.contains(Self.a("255.255.255.255")) && !all4.contains(Self.a("::")))
        let v6 = Self.p("2001:db8:0:8000::/49")
        #expect(v6.contains(Self.a("2001:db8:0:ffff::1")) && !v6.contains(Self.a("2001:db8:0:7fff::1")))
        let v6host = Self.p("fd00::1/128")
        #expect(v6host.contains(Self.a("fd00::1")) && !v6host.contains(Self.a("fd00::")))
        #expect(Self.p("::/0").contains(Self.a("fd00::1")) && !Self.p("::/0").contains(Self.a("10.0.0.1")))
        // An IPv4-mapped IPv6 address is IPv6 here: not in an IPv4 prefix.
        #expect(!Self.p("10.0.0.0/8").contains(Self.a("::ffff:10.0.0.1")))
    }

    @Test("order: IPv4 before IPv6, then address bytes, then length")
    func order() {
        let sorted = ["fd00::/8", "10.0.0.0/16", "::/0", "10.0.0.0/8", "9.255.0.0/16", "2001:db8::/32", "10.0.0.1/32"].map(Self.p).sorted()
        #expect(sorted.map(\.description) == ["9.255.0.0/16", "10.0.0.0/8", "10.0.0.0/16", "10.0.0.1/32", "::/0", "2001:db8::/32", "fd00::/8"])
        #expect(Self.p("255.255.255.255/32") < Self.p("::/0"))
        #expect(Set(["10.0.0.0/8", "10.0.0.0/8", "10.0.0.0/9"].map(Self.p)).count == 2)
    }
}
