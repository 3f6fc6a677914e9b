import Foundation
import NetAddress
import Netlink
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a fresh thread that first moves into a new, private network namespace
/// (unshare(CLONE_NEWNET) affects only the calling thread). Sockets opened there stay in that
/// namespace; it disappears with them, so nothing is left behind even on a crash.
func inPrivateNetworkNamespace<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        if c_unshare(0x4000_0000 /* CLONE_NEWNET */) != 0 {
            box.result = .failure(NetlinkError(operation: "unshare(CLONE_NEWNET)", code: errno))
        } else {
            box.result = Result { try body() }
        }
        done.signal()
    }
    thread.start()
    done.wait()
    return try box.result!.get()
}

final class ResultBox<T>: @unchecked Sendable { var result: Result<T, any Error>? }

@_silgen_name("unshare") func c_unshare(_ flags: Int32) -> Int32

/// The NetlinkError `body` throws, nil if it throws none.
func netlinkError(_ body: () throws(NetlinkError) -> Void) -> NetlinkError? {
    do { try body(); return nil } catch { return error }
}

/// Runs `ip ARGS` (tests only: the product never spawns `ip`) and returns its stdout.
func ip(_ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }!)
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

@Suite("rtnetlink routes, neighbours and links")
struct RouteNetlinkTests {
    static let isRoot = getuid() == 0

    @Test("the main table of this namespace reads as `ip route show table main` does")
    func mainTableMatchesIp() throws {
        let nl = try RouteNetlink()
        let ours = try nl.routes(table: 254)
        for (family, flag) in [(false, "-4"), (true, "-6")] {
            let json = try JSONSerialization.jsonObject(with: Data(try ip([flag, "-j", "route", "show", "table", "main"]).utf8)) as? [[String: Any]] ?? []
            let theirs = Set(json.compactMap { r -> String? in
                guard let dst = r["dst"] as? String else { return nil }
                if dst == "default" { return family ? "::/0" : "0.0.0.0/0" }
                return dst.contains("/") ? dst : "\(dst)/\(family ? 128 : 32)"
            })
            let mine = Set(ours.filter { $0.destination.isV6 == family }.map { "\($0.destination)/\($0.prefixLength)" })
            #expect(mine == theirs, "family \(flag)")
        }
    }

    @Test("links: the index of each `ip link` name, and its name, MTU and state back")
    func linksMatchIp() throws {
        let nl = try RouteNetlink()
        let json = try JSONSerialization.jsonObject(with: Data(try ip(["-j", "link", "show"]).utf8)) as? [[String: Any]] ?? []
        #expect(!json.isEmpty)
        let all = try nl.links()
        #expect(all.count == json.count)
        for l in json {
            let name = try #require(l["ifname"] as? String), index = try #require(l["ifindex"] as? Int)
            #expect(try nl.interfaceIndex(name: name) == Int32(index))
            let link = try nl.link(index: Int32(index))
            #expect(link.name == name)
            #expect(link.mtu == UInt32(try #require(l["mtu"] as? Int)))
            #expect(link.isUp == ((l["flags"] as? [String])?.contains("UP") ?? false))
        }
        #expect(throws: NetlinkError.self) { try nl.interfaceIndex(name: "xh2-nosuchif") }
        #expect(netlinkError { () throws(NetlinkError) in _ = try nl.link(index: 999_999) }?.isNotFound == true)
        #expect(throws: NetlinkError.self) { try nl.interfaceIndex(name: String(repeating: "a", count: 16)) }
    }

    @Test("add, replace, dump and delete routes in table 4242 of a private namespace", .enabled(if: isRoot))
    func addDeleteInPrivateNamespace() throws {
        try inPrivateNetworkNamespace {
            let nl = try RouteNetlink()
            // A fresh namespace: lo down, no routes, so a lookup fails at once (ENETUNREACH), never hangs.
            #expect(netlinkError { () throws(NetlinkError) in _ = try nl.lookup(destination: IPAddress("10.43.0.5")!) }?.code == ENETUNREACH)
            #expect(try nl.routes(table: 4242).isEmpty)
            #expect(try nl.neighbours().isEmpty)
            let lo = try nl.interfaceIndex(name: "lo")
            #expect(try nl.link(index: lo).isUp == false)
            try nl.setLink(index: lo, up: true)
            #expect(try nl.link(index: lo).isUp)

            let b4 = KernelRoute(destination: IPAddress("10.42.0.0")!, prefixLength: 24, table: 4242, type: .blackhole)
            let b6 = KernelRoute(destination: IPAddress("fd42::")!, prefixLength: 64, table: 4242, type: .blackhole)
            let u4 = KernelRoute(destination: IPAddress("10.43.0.0")!, prefixLength: 24, table: 4242, interfaceIndex: lo)
            try nl.add(b4)
            #expect(netlinkError { () throws(NetlinkError) in try nl.add(b4) }?.alreadyExists == true, "second add without replace")
            try nl.add(b4, replace: true)
            try nl.add(b6)
            try nl.add(u4)
            let dumped = try nl.routes(table: 4242)
            #expect(Set(dumped.map { "\($0)" }) == [
                "blackhole 10.42.0.0/24 table 4242 proto 4",
                "blackhole fd42::/64 dev #\(lo) table 4242 proto 4 metric 1024", // IPv6 hangs blackholes on lo
                "10.43.0.0/24 dev #\(lo) table 4242 proto 4",
            ])
            #expect(try nl.routes(table: 254).isEmpty, "table 4242 routes must not show in main")

            // A lookup goes by the rules (main table): add the same prefix there.
            try nl.add(KernelRoute(destination: IPAddress("10.43.0.0")!, prefixLength: 24, interfaceIndex: lo))
            let hit = try nl.lookup(destination: IPAddress("10.43.0.5")!)
            #expect(hit.interfaceIndex == lo)
            #expect(hit.gateway == nil)
            #expect(hit.type == .unicast)
            try nl.add(KernelRoute(destination: IPAddress("10.44.0.0")!, prefixLength: 16, table: 254, type: .blackhole))
            #expect(netlinkError { () throws(NetlinkError) in _ = try nl.lookup(destination: IPAddress("10.44.1.1")!) } != nil,
                    "a blackhole route has no output interface")

            for r in [b4, b6, u4] { try nl.delete(r) }
            #expect(netlinkError { () throws(NetlinkError) in try nl.delete(b4) }?.isNotFound == true, "second delete")
            #expect(try nl.routes(table: 4242).isEmpty)
            // Bad input is refused before it reaches the kernel.
            #expect(throws: NetlinkError.self) { try nl.add(KernelRoute(destination: IPAddress("10.0.0.0")!, prefixLength: 33)) }
        }
    }
}
