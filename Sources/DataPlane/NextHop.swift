import Foundation
import NetAddress

/// Where to send packets for a backend: egress interface and the MACs to write.
public struct NextHop: Sendable, Equatable {
    /// Egress interface index.
    public var ifindex: UInt32
    /// Destination MAC (the gateway's or the backend's).
    public var destinationMAC: [UInt8]
    /// Source MAC (the egress interface's).
    public var sourceMAC: [UInt8]

    /// A next hop.
    public init(ifindex: UInt32, destinationMAC: [UInt8], sourceMAC: [UInt8]) {
        precondition(destinationMAC.count == 6 && sourceMAC.count == 6, "MAC addresses are 6 bytes")
        self.ifindex = ifindex
        self.destinationMAC = destinationMAC
        self.sourceMAC = sourceMAC
    }
}

/// Resolves backend next hops from the kernel's route and neighbour tables
/// (`ip -j route get`, `ip -j neigh`, `ip -j link`), without sending anything.
/// A backend whose neighbour isn't resolved yet gets no entry: the program
/// then falls back to bpf_fib_lookup, and to the kernel when that has no neighbour.
public enum KernelNextHopResolver {
    /// Next hops for `addresses`; unresolved ones are left out.
    public static func resolve(_ addresses: [IPAddress]) -> [IPAddress: NextHop] {
        var out: [IPAddress: NextHop] = [:]
        guard !addresses.isEmpty else { return out }
        let neigh4 = neighbours(family: "-4"), neigh6 = neighbours(family: "-6")
        var links: [String: (Int, [UInt8])] = [:]
        for l in json(["-j", "link", "show"]) {
            if let name = l["ifname"] as? String, let idx = l["ifindex"] as? Int, let mac = parseMAC(l["address"] as? String) {
                links[name] = (idx, mac)
            }
        }
        // One `ip -batch` for every route lookup: 3 processes per refresh, whatever the backend count.
        let routes = jsonLines(["-force", "-j", "-batch", "-"], input: addresses.map { "route get \($0)" }.joined(separator: "\n") + "\n")
        var routeByDst: [IPAddress: [String: Any]] = [:]
        for r in routes { if let d = (r["dst"] as? String).flatMap(IPAddress.init) { routeByDst[d] = r } }
        for a in addresses {
            guard let route = routeByDst[a], let dev = route["dev"] as? String, let link = links[dev] else { continue }
            let via = (route["gateway"] as? String).flatMap(IPAddress.init) ?? a
            let table = via.isV6 ? neigh6 : neigh4
            guard let mac = table[NeighbourKey(address: via, dev: dev)] else { continue }
            out[a] = NextHop(ifindex: UInt32(link.0), destinationMAC: mac, sourceMAC: link.1)
        }
        return out
    }

    struct NeighbourKey: Hashable {
        var address: IPAddress
        var dev: String
    }

    static func neighbours(family: String) -> [NeighbourKey: [UInt8]] {
        var out: [NeighbourKey: [UInt8]] = [:]
        for n in json([family, "-j", "neigh", "show"]) {
            guard let dst = (n["dst"] as? String).flatMap(IPAddress.init), let dev = n["dev"] as? String,
                  let mac = parseMAC(n["lladdr"] as? String) else { continue }
            let state = (n["state"] as? [String]) ?? []
            if state.contains("FAILED") || state.contains("INCOMPLETE") { continue }
            out[NeighbourKey(address: dst, dev: dev)] = mac
        }
        return out
    }

    static func parseMAC(_ s: String?) -> [UInt8]? {
        guard let parts = s?.split(separator: ":"), parts.count == 6 else { return nil }
        let bytes = parts.compactMap { UInt8($0, radix: 16) }
        return bytes.count == 6 && bytes != [0, 0, 0, 0, 0, 0] ? bytes : nil
    }

    static func json(_ args: [String]) -> [[String: Any]] {
        jsonLines(args, input: nil)
    }

    /// Runs `ip ARGS` (stdin = `input`) and parses each output line as a JSON array of objects.
    static func jsonLines(_ args: [String], input: String?) -> [[String: Any]] {
        let p = Process()
        let ip = ["/sbin/ip", "/usr/sbin/ip", "/bin/ip", "/usr/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/sbin/ip"
        p.executableURL = URL(fileURLWithPath: ip)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        let inPipe = Pipe()
        p.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        do { try p.run() } catch { return [] }
        if let input {
            let w = inPipe.fileHandleForWriting
            DispatchQueue.global().async {
                w.write(Data(input.utf8))
                try? w.close()
            }
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        var result: [[String: Any]] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            if let arr = (try? JSONSerialization.jsonObject(with: Data(line))) as? [[String: Any]] { result += arr }
        }
        return result
    }
}
