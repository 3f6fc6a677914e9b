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
        for a in addresses {
            guard let route = json(["-j", "route", "get", a.description]).first,
                  let dev = route["dev"] as? String, let link = links[dev] else { continue }
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
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/sbin/ip")
        if !FileManager.default.isExecutableFile(atPath: "/sbin/ip") { p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip") }
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return [] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return [] }
        return ((try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]]) ?? []
    }
}
