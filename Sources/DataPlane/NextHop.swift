import NetAddress
import Netlink

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

/// Resolves backend next hops from the kernel's route, neighbour and link tables over rtnetlink
/// (module Netlink: no process is spawned, every wait is bounded), without sending anything.
/// A backend whose neighbour isn't resolved yet gets no entry: the program
/// then falls back to bpf_fib_lookup, and to the kernel when that has no neighbour.
public enum KernelNextHopResolver {
    /// Next hops for `addresses`; unresolved ones (no route, a local address, no usable neighbour) are left out.
    /// A netlink failure (socket, dump) gives no next hops at all: the program's FIB lookup decides.
    public static func resolve(_ addresses: [IPAddress]) -> [IPAddress: NextHop] {
        (try? resolveOrThrow(addresses)) ?? [:]
    }

    /// As `resolve`, but a failure of the netlink socket or of a table dump is thrown, for callers that log it.
    /// A destination without a route (e.g. ENETUNREACH with loopback down) is not an error: it is left out.
    public static func resolveOrThrow(_ addresses: [IPAddress]) throws(NetlinkError) -> [IPAddress: NextHop] {
        var out: [IPAddress: NextHop] = [:]
        guard !addresses.isEmpty else { return out }
        let nl = try RouteNetlink()
        var macByIndex: [Int32: [UInt8]] = [:]
        for l in try nl.links() where l.mac.count == 6 && l.mac != [0, 0, 0, 0, 0, 0] { macByIndex[l.index] = l.mac }
        var neighbours: [NeighbourKey: [UInt8]] = [:]
        for n in try nl.neighbours() where n.isUsable {
            neighbours[NeighbourKey(address: n.address, ifindex: n.interfaceIndex)] = n.linkLayerAddress
        }
        for a in addresses {
            guard let route = try? nl.lookup(destination: a), route.type == .unicast, route.interfaceIndex > 0,
                  let sourceMAC = macByIndex[route.interfaceIndex] else { continue }
            let via = route.gateway ?? a
            guard let mac = neighbours[NeighbourKey(address: via, ifindex: route.interfaceIndex)] else { continue }
            out[a] = NextHop(ifindex: UInt32(route.interfaceIndex), destinationMAC: mac, sourceMAC: sourceMAC)
        }
        return out
    }

    struct NeighbourKey: Hashable {
        var address: IPAddress
        var ifindex: Int32
    }
}
