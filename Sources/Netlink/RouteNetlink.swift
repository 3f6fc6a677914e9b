#if canImport(Glibc)
import Glibc
#endif
import NetAddress

/// A route's type (`rtm_type`): unicast, local, blackhole, ... Unknown kernel values are kept as they are.
public struct RouteType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The kernel's RTN_* value.
    public var rawValue: UInt8
    /// A type from its RTN_* value.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// RTN_UNICAST: a gateway or direct route.
    public static let unicast = RouteType(rawValue: 1)
    /// RTN_LOCAL: an address of this host.
    public static let local = RouteType(rawValue: 2)
    /// RTN_BROADCAST.
    public static let broadcast = RouteType(rawValue: 3)
    /// RTN_ANYCAST.
    public static let anycast = RouteType(rawValue: 4)
    /// RTN_MULTICAST.
    public static let multicast = RouteType(rawValue: 5)
    /// RTN_BLACKHOLE: silently dropped.
    public static let blackhole = RouteType(rawValue: 6)
    /// RTN_UNREACHABLE: dropped with ICMP unreachable.
    public static let unreachable = RouteType(rawValue: 7)
    /// RTN_PROHIBIT: dropped with ICMP prohibited.
    public static let prohibit = RouteType(rawValue: 8)
    /// The `ip route` word (`unicast`, `blackhole`, ...) or `type N`.
    public var description: String {
        let names = [1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable", 8: "prohibit"]
        return names[Int(rawValue)] ?? "type \(rawValue)"
    }
}

/// A route's scope (`rtm_scope`).
public struct RouteScope: RawRepresentable, Hashable, Sendable {
    /// The kernel's RT_SCOPE_* value.
    public var rawValue: UInt8
    /// A scope from its RT_SCOPE_* value.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// RT_SCOPE_UNIVERSE: via a gateway, or blackhole/unreachable.
    public static let universe = RouteScope(rawValue: 0)
    /// RT_SCOPE_LINK: directly on the interface.
    public static let link = RouteScope(rawValue: 253)
    /// RT_SCOPE_HOST: this host's addresses.
    public static let host = RouteScope(rawValue: 254)
}

/// One route of a kernel routing table (IPv4 or IPv6), as RTM_NEWROUTE/RTM_GETROUTE carry it.
public struct KernelRoute: Hashable, Sendable, CustomStringConvertible {
    /// Destination network (its address family is the route's family).
    public var destination: IPAddress
    /// Prefix length (0...32 or 0...128).
    public var prefixLength: Int
    /// Routing table id (254 = main, 255 = local); any 32-bit table.
    public var table: UInt32
    /// Output interface (RTA_OIF); nil for blackhole-like routes.
    public var interfaceIndex: Int32?
    /// Next-hop gateway (RTA_GATEWAY), same family as `destination`.
    public var gateway: IPAddress?
    /// Originating protocol (`rtm_protocol`): 2 kernel, 3 boot, 4 static, 186 bgp, ...
    public var protocolID: UInt8
    /// Scope (`rtm_scope`).
    public var scope: RouteScope
    /// Type (`rtm_type`).
    public var type: RouteType
    /// Metric (RTA_PRIORITY); nil when the kernel gives none.
    public var metric: UInt32?

    /// A route. Defaults: a unicast route of protocol `static` (4), scope link when there is
    /// no gateway and universe otherwise (blackhole-like types always universe).
    public init(destination: IPAddress, prefixLength: Int, table: UInt32 = 254, interfaceIndex: Int32? = nil,
                gateway: IPAddress? = nil, protocolID: UInt8 = 4, scope: RouteScope? = nil,
                type: RouteType = .unicast, metric: UInt32? = nil) {
        self.destination = destination
        self.prefixLength = prefixLength
        self.table = table
        self.interfaceIndex = interfaceIndex
        self.gateway = gateway
        self.protocolID = protocolID
        self.scope = scope ?? ((type == .unicast && gateway == nil) ? .link : .universe)
        self.type = type
        self.metric = metric
    }

    /// `ip route`-like text: `blackhole 10.1.0.0/24 table 4242 proto 4`.
    public var description: String {
        var s = type == .unicast ? "" : "\(type) "
        s += "\(destination)/\(prefixLength)"
        if let gateway { s += " via \(gateway)" }
        if let interfaceIndex { s += " dev #\(interfaceIndex)" }
        s += " table \(table) proto \(protocolID)"
        if let metric { s += " metric \(metric)" }
        return s
    }
}

/// The kernel's answer to a route lookup (`ip route get ADDRESS`).
public struct RouteLookup: Hashable, Sendable {
    /// Egress interface.
    public var interfaceIndex: Int32
    /// Gateway, nil when the destination is on-link.
    public var gateway: IPAddress?
    /// The source address the kernel would pick (RTA_PREFSRC).
    public var preferredSource: IPAddress?
    /// The route's type (a `local` answer means the address is this host's).
    public var type: RouteType
}

/// A neighbour-table entry (`ip neigh`).
public struct Neighbour: Hashable, Sendable {
    /// Interface the entry is on.
    public var interfaceIndex: Int32
    /// The neighbour's IP address.
    public var address: IPAddress
    /// Its link-layer address; empty when unresolved (INCOMPLETE/FAILED).
    public var linkLayerAddress: [UInt8]
    /// NUD_* state bits (linux/neighbour.h): 0x01 INCOMPLETE, 0x02 REACHABLE, 0x04 STALE, 0x08 DELAY,
    /// 0x10 PROBE, 0x20 FAILED, 0x40 NOARP, 0x80 PERMANENT.
    public var state: UInt16

    /// True when `linkLayerAddress` may be used: a 6-byte non-zero MAC, state neither INCOMPLETE nor FAILED.
    public var isUsable: Bool {
        state & 0x21 == 0 && linkLayerAddress.count == 6 && linkLayerAddress != [0, 0, 0, 0, 0, 0]
    }
}

/// An interface (`ip link`).
public struct Link: Hashable, Sendable {
    /// Interface index.
    public var index: Int32
    /// Interface name.
    public var name: String
    /// Hardware address (6 bytes for Ethernet; empty for none).
    public var mac: [UInt8]
    /// MTU.
    public var mtu: UInt32
    /// IFF_UP is set (administratively up).
    public var isUp: Bool
}

/// Routes, neighbours and links of the current network namespace over one NETLINK_ROUTE socket,
/// straight from Glibc: no process is spawned, every receive has a timeout and every answer a size bound.
/// The socket belongs to the namespace the calling thread was in when it was created.
/// Not safe for concurrent use; create one per task (they are cheap).
public final class RouteNetlink {
    private let socket: NetlinkSocket

    /// Opens the socket. `timeoutMilliseconds` bounds each wait for the kernel (it answers in microseconds;
    /// a timeout means something is badly wrong and is reported as an error, never waited out).
    public init(timeoutMilliseconds: Int = 2000) throws(NetlinkError) {
        socket = try NetlinkSocket(timeoutMilliseconds: max(1, timeoutMilliseconds))
    }

    // MARK: routes

    /// Every route of `table`, IPv4 and IPv6 (cached IPv6 clones excluded).
    public func routes(table: UInt32) throws(NetlinkError) -> [KernelRoute] {
        var body = Self.rtmsg(family: UInt8(AF_UNSPEC), dstLen: 0, table: 0, proto: 0, scope: 0, type: 0)
        body.appendAttribute(NL.rtaTable, u32(table))
        let msgs = try socket.request(NL.getRoute, flags: NL.dump, body: body, operation: "dump routes of table \(table)")
        return msgs.compactMap { m in
            guard m.type == NL.newRoute, let r = Self.parseRoute(m.payload) else { return nil }
            return r.route.table == table && !r.cloned ? r.route : nil
        }
    }

    /// Adds `route`; with `replace` an existing route of the same key (destination, table, metric) is replaced,
    /// without it an existing route throws EEXIST (`NetlinkError.alreadyExists`).
    public func add(_ route: KernelRoute, replace: Bool = false) throws(NetlinkError) {
        let flags = NL.ack | NL.create | (replace ? NL.replace : NL.excl)
        _ = try socket.request(NL.newRoute, flags: flags, body: try Self.routeBody(route, operation: "add route \(route)"),
                               operation: "\(replace ? "replace" : "add") route \(route)")
    }

    /// Deletes `route` (matched on destination, table, type and whatever else is set).
    /// A missing route throws an error whose `isNotFound` is true (ESRCH/ENOENT).
    public func delete(_ route: KernelRoute) throws(NetlinkError) {
        _ = try socket.request(NL.delRoute, flags: NL.ack, body: try Self.routeBody(route, operation: "delete route \(route)"),
                               operation: "delete route \(route)")
    }

    /// The kernel's route for `destination` (RTM_GETROUTE with RTA_DST, as `ip route get`):
    /// egress interface, gateway and preferred source. Throws e.g. ENETUNREACH when there is no route.
    public func lookup(destination: IPAddress) throws(NetlinkError) -> RouteLookup {
        let family = destination.isV6 ? UInt8(AF_INET6) : UInt8(AF_INET)
        var body = Self.rtmsg(family: family, dstLen: UInt8(destination.bytes.count * 8), table: 0, proto: 0, scope: 0, type: 0)
        body.appendAttribute(NL.rtaDst, destination.bytes)
        let msgs = try socket.request(NL.getRoute, flags: 0, body: body, operation: "route get \(destination)")
        guard let m = msgs.first(where: { $0.type == NL.newRoute }), m.payload.count >= 12 else {
            throw NetlinkError(operation: "route get \(destination)", code: 0, detail: "no route in the kernel's answer")
        }
        let attrs = parseAttributes(m.payload, from: 12)
        guard let oif = attrs[NL.rtaOif].flatMap({ $0.native(Int32.self, at: 0) }) else {
            throw NetlinkError(operation: "route get \(destination)", code: 0, detail: "the route has no output interface")
        }
        return RouteLookup(interfaceIndex: oif, gateway: attrs[NL.rtaGateway].flatMap(Self.address),
                           preferredSource: attrs[NL.rtaPrefsrc].flatMap(Self.address), type: RouteType(rawValue: m.payload[7]))
    }

    // MARK: neighbours and links

    /// The neighbour tables (ARP and NDP) of every interface.
    public func neighbours() throws(NetlinkError) -> [Neighbour] {
        let body = [UInt8](repeating: 0, count: 12) // ndmsg, family AF_UNSPEC
        let msgs = try socket.request(NL.getNeigh, flags: NL.dump, body: body, operation: "dump neighbours")
        return msgs.compactMap { m in
            guard m.type == NL.newNeigh, m.payload.count >= 12, let ifindex = m.payload.native(Int32.self, at: 4),
                  let state = m.payload.native(UInt16.self, at: 8) else { return nil }
            let attrs = parseAttributes(m.payload, from: 12)
            guard let address = attrs[NL.ndaDst].flatMap(Self.address) else { return nil }
            return Neighbour(interfaceIndex: ifindex, address: address, linkLayerAddress: attrs[NL.ndaLladdr] ?? [], state: state)
        }
    }

    /// Every interface.
    public func links() throws(NetlinkError) -> [Link] {
        let msgs = try socket.request(NL.getLink, flags: NL.dump, body: [UInt8](repeating: 0, count: 16), operation: "dump links")
        return msgs.compactMap { $0.type == NL.newLink ? Self.parseLink($0.payload) : nil }
    }

    /// The interface with index `index`; throws ENODEV (`isNotFound`) when there is none.
    public func link(index: Int32) throws(NetlinkError) -> Link {
        var body: [UInt8] = [0, 0, 0, 0]
        body.append(native: index)
        body += [UInt8](repeating: 0, count: 8)
        let msgs = try socket.request(NL.getLink, flags: 0, body: body, operation: "link #\(index)")
        guard let l = msgs.first.flatMap({ Self.parseLink($0.payload) }) else {
            throw NetlinkError(operation: "link #\(index)", code: 0, detail: "malformed answer")
        }
        return l
    }

    /// The index of interface `name`; throws ENODEV (`isNotFound`) when there is none.
    public func interfaceIndex(name: String) throws(NetlinkError) -> Int32 {
        guard !name.isEmpty, name.utf8.count < 16 else {
            throw NetlinkError(operation: "link \(name.prefix(32))", code: 0, detail: "not an interface name (1 to 15 bytes)")
        }
        var body = [UInt8](repeating: 0, count: 16)
        body.appendAttribute(NL.iflaIfname, Array(name.utf8) + [0])
        let msgs = try socket.request(NL.getLink, flags: 0, body: body, operation: "link \(name)")
        guard let l = msgs.first.flatMap({ Self.parseLink($0.payload) }) else {
            throw NetlinkError(operation: "link \(name)", code: 0, detail: "malformed answer")
        }
        return l.index
    }

    /// Sets interface `index` administratively up or down (`ip link set dev X up|down`).
    public func setLink(index: Int32, up: Bool) throws(NetlinkError) {
        var body: [UInt8] = [0, 0, 0, 0]
        body.append(native: index)
        body.append(native: up ? UInt32(IFF_UP) : 0)   // ifi_flags
        body.append(native: UInt32(IFF_UP))            // ifi_change
        _ = try socket.request(NL.setLink, flags: NL.ack, body: body, operation: "set link #\(index) \(up ? "up" : "down")")
    }

    // MARK: wire format

    private func u32(_ v: UInt32) -> [UInt8] { var b: [UInt8] = []; b.append(native: v); return b }

    static func rtmsg(family: UInt8, dstLen: UInt8, table: UInt8, proto: UInt8, scope: UInt8, type: UInt8) -> [UInt8] {
        // family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32)
        [family, dstLen, 0, 0, table, proto, scope, type, 0, 0, 0, 0]
    }

    static func routeBody(_ r: KernelRoute, operation: @autoclosure () -> String) throws(NetlinkError) -> [UInt8] {
        let bits = r.destination.bytes.count * 8
        guard (0...bits).contains(r.prefixLength) else {
            throw NetlinkError(operation: operation(), code: 0, detail: "prefix length \(r.prefixLength) out of range 0...\(bits)")
        }
        if let g = r.gateway, g.isV6 != r.destination.isV6 {
            throw NetlinkError(operation: operation(), code: 0, detail: "gateway \(g) is not of the destination's family")
        }
        let family = r.destination.isV6 ? UInt8(AF_INET6) : UInt8(AF_INET)
        // RT_TABLE_UNSPEC (0) in the header when the id needs RTA_TABLE (> 255).
        var body = rtmsg(family: family, dstLen: UInt8(r.prefixLength), table: r.table < 256 ? UInt8(r.table) : 0,
                         proto: r.protocolID, scope: r.scope.rawValue, type: r.type.rawValue)
        body.appendAttribute(NL.rtaDst, r.destination.bytes)
        var t: [UInt8] = []; t.append(native: r.table)
        body.appendAttribute(NL.rtaTable, t)
        if let oif = r.interfaceIndex { var b: [UInt8] = []; b.append(native: oif); body.appendAttribute(NL.rtaOif, b) }
        if let g = r.gateway { body.appendAttribute(NL.rtaGateway, g.bytes) }
        if let m = r.metric { var b: [UInt8] = []; b.append(native: m); body.appendAttribute(NL.rtaPriority, b) }
        return body
    }

    static func address(_ bytes: [UInt8]) -> IPAddress? {
        switch bytes.count {
        case 4: return .v4(bytes)
        case 16: return .v6(bytes)
        default: return nil
        }
    }

    static func parseRoute(_ p: [UInt8]) -> (route: KernelRoute, cloned: Bool)? {
        guard p.count >= 12 else { return nil }
        let family = Int32(p[0])
        guard family == AF_INET || family == AF_INET6 else { return nil }
        let attrs = parseAttributes(p, from: 12)
        let zero = [UInt8](repeating: 0, count: family == AF_INET ? 4 : 16)
        guard let dst = address(attrs[NL.rtaDst] ?? zero) else { return nil }
        let table = attrs[NL.rtaTable].flatMap { $0.native(UInt32.self, at: 0) } ?? UInt32(p[4])
        let flags = p.native(UInt32.self, at: 8) ?? 0
        let route = KernelRoute(destination: dst, prefixLength: Int(p[1]), table: table,
                                interfaceIndex: attrs[NL.rtaOif].flatMap { $0.native(Int32.self, at: 0) },
                                gateway: attrs[NL.rtaGateway].flatMap(address), protocolID: p[5],
                                scope: RouteScope(rawValue: p[6]), type: RouteType(rawValue: p[7]),
                                metric: attrs[NL.rtaPriority].flatMap { $0.native(UInt32.self, at: 0) })
        return (route, flags & NL.rtmFCloned != 0)
    }

    static func parseLink(_ p: [UInt8]) -> Link? {
        guard p.count >= 16, let index = p.native(Int32.self, at: 4), let flags = p.native(UInt32.self, at: 8) else { return nil }
        let attrs = parseAttributes(p, from: 16)
        let name = String(decoding: (attrs[NL.iflaIfname] ?? []).prefix { $0 != 0 }, as: UTF8.self)
        return Link(index: index, name: name, mac: attrs[NL.iflaAddress] ?? [],
                    mtu: attrs[NL.iflaMtu].flatMap { $0.native(UInt32.self, at: 0) } ?? 0,
                    isUp: flags & UInt32(IFF_UP) != 0)
    }
}
