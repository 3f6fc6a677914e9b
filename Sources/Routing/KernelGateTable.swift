import Foundation
import NetAddress
#if canImport(Glibc)
import Glibc
#endif

/// The announcement table in the kernel: host routes `VIP/32|128 dev lo table T
/// proto 222`. Nothing routes through it (no `ip rule` points at it); it only
/// tells the BGP daemon what to export.
public struct KernelGateTable: GateRouteTable {
    /// The kernel table id.
    public let table: UInt32

    /// The table `table`.
    public init(table: UInt32) { self.table = table }

    /// An error from the kernel's routing table.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public func announced() throws -> Set<IPAddress> {
        var out = Set<IPAddress>()
        for fam in ["-4", "-6"] {
            let text: String
            do { text = try ip([fam, "route", "show", "table", "\(table)", "proto", "\(BirdConfig.routeProtocol)"]) } catch let e as Failure
                where e.description.contains("table does not exist") {
                continue   // an empty table: the kernel makes it with its first route
            }
            for line in text.split(separator: "\n") {
                let first = line.split(separator: " ").first.map(String.init) ?? ""
                let addr = first.split(separator: "/").first.map(String.init) ?? first
                if let a = IPAddress(addr) { out.insert(a) }
            }
        }
        return out
    }

    public func announce(_ address: IPAddress) throws {
        _ = try ip([address.isV6 ? "-6" : "-4", "route", "replace", "\(address)/\(address.isV6 ? 128 : 32)", "dev", "lo",
                    "table", "\(table)", "proto", "\(BirdConfig.routeProtocol)"])
    }

    public func withdraw(_ address: IPAddress) throws {
        do {
            _ = try ip([address.isV6 ? "-6" : "-4", "route", "del", "\(address)/\(address.isV6 ? 128 : 32)", "table", "\(table)",
                        "proto", "\(BirdConfig.routeProtocol)"])
        } catch let e as Failure where e.description.contains("No such process") {
            return   // already gone
        }
    }

    /// Runs `ip ARGS` (posix_spawn, bounded wait) and returns its stdout.
    func ip(_ args: [String]) throws -> String {
        var out: [Int32] = [0, 0]
        guard pipe(&out) == 0 else { throw Failure(description: "pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, out[1], 2)
        posix_spawn_file_actions_addclose(&actions, out[0])
        let argv = ["ip"] + args
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, "ip", &actions, nil, &cargs, environ)
        close(out[1])
        defer { close(out[0]) }
        guard rc == 0 else { throw Failure(description: "cannot run ip: \(String(cString: strerror(rc)))") }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        var pfd = pollfd(fd: out[0], events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if poll(&pfd, 1, 200) > 0 {
                let n = read(out[0], &buf, buf.count)
                if n <= 0 { break }
                data += buf[0..<n]
            }
        }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == 0 { kill(pid, SIGKILL); waitpid(pid, &status, 0) }
        let text = String(decoding: data, as: UTF8.self)
        guard status == 0 else { throw Failure(description: "ip \(args.joined(separator: " ")): \(text.trimmingCharacters(in: .whitespacesAndNewlines))") }
        return text
    }
}
