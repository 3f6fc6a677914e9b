import Config
import Maglev
import NetAddress

/// The Swift model of the program's choice for a new flow: same VIP match
/// (exact port, then port 0), same flow hash, same Maglev ring.
public enum FlowPicker {
    /// The VIP a client → VIP flow matches, as the program would match it.
    public static func vip(for flow: FlowTuple, in config: XdplbConfig) -> VIPConfig? {
        let candidates = config.vips.filter { $0.address == flow.dst && $0.proto.number == flow.proto }
        return candidates.first { $0.port == flow.dport } ?? candidates.first { $0.port == 0 }
    }

    /// The backend a new flow goes to (nil: no backend in the ring).
    public static func backend(for flow: FlowTuple, vip: VIPConfig, table: MaglevTable?, seed: UInt32) -> MaglevBackend? {
        guard let table else { return nil }
        let h = FlowHash.hash(flow, sourceOnly: vip.hash == .sourceIP, seed: seed)
        return table.backend(forHash: h)
    }

    /// Parses `SRC:SPORT -> VIP:PORT/proto` (IPv6 in brackets, e.g. `[fd00::1]:4000 -> [fd00::80]:80/tcp`).
    public static func parseFlow(_ text: String) -> FlowTuple? {
        let sides = text.components(separatedBy: "->").map { $0.trimmingCharacters(in: .whitespaces) }
        guard sides.count == 2 else { return nil }
        let protoSplit = sides[1].split(separator: "/", omittingEmptySubsequences: false)
        guard protoSplit.count == 2, let proto = L4Protocol(rawValue: protoSplit[1].lowercased()),
              let (src, sport) = endpoint(sides[0]), let (dst, dport) = endpoint(String(protoSplit[0])),
              src.isV6 == dst.isV6 else { return nil }
        return FlowTuple(src: src, dst: dst, sport: sport, dport: dport, proto: proto.number)
    }

    static func endpoint(_ s: String) -> (IPAddress, UInt16)? {
        guard let colon = s.lastIndex(of: ":"), let port = UInt16(s[s.index(after: colon)...]) else { return nil }
        let host = String(s[..<colon])
        if s.hasPrefix("[") {
            guard host.hasSuffix("]"), let a = IPAddress(host), a.isV6 else { return nil }
            return (a, port)
        }
        guard let a = IPAddress(host), !a.isV6 else { return nil }
        return (a, port)
    }
}
