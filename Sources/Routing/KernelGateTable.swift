import Netlink
import NetAddress

/// The announcement table in the kernel: host routes `VIP/32|128 dev lo table T
/// proto 222`, written over rtnetlink. Nothing routes through it (no `ip rule`
/// points at it); it only tells the BGP daemon what to export.
public struct KernelGateTable: GateRouteTable {
    /// The kernel table id.
    public let table: UInt32

    /// The table `table`.
    public init(table: UInt32) { self.table = table }

    /// The loopback interface's index (1 in every namespace, asked anyway).
    func loopback(_ nl: RouteNetlink) throws -> Int32 { try nl.interfaceIndex(name: "lo") }

    func route(_ a: IPAddress, lo: Int32) -> KernelRoute {
        KernelRoute(destination: a, prefixLength: a.isV6 ? 128 : 32, table: table, interfaceIndex: lo,
                    protocolID: BirdConfig.routeProtocol, scope: .link)
    }

    public func announced() throws -> Set<IPAddress> {
        // One socket per call: a RouteNetlink is not thread-safe, and this is cheap.
        let nl = try RouteNetlink()
        return Set(try nl.routes(table: table).filter {
            $0.protocolID == BirdConfig.routeProtocol && $0.prefixLength == ($0.destination.isV6 ? 128 : 32)
        }.map(\.destination))
    }

    public func announce(_ address: IPAddress) throws {
        let nl = try RouteNetlink()
        try nl.add(route(address, lo: try loopback(nl)), replace: true)
    }

    public func withdraw(_ address: IPAddress) throws {
        let nl = try RouteNetlink()
        let r = route(address, lo: try loopback(nl))
        do { try nl.delete(r) } catch where error.isNotFound {
            return   // already gone
        }
    }
}
