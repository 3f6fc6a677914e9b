import CXdplb
import DataPlane
import Foundation
import Health
import NetAddress
import Netlink

/// What through-tunnel probes need at probe time, shared with the health checker's tasks:
/// backend ids (for the socket mark), whether the probe program is attached, and whether each
/// VIP's route leaves through the node's interface (where the program wraps the packets).
/// A probe that can't be wrapped is never sent: sent plainly, it would reach the VIP by some
/// other path (the router, any LB node) and could pass for the wrong backend.
final class TunnelProbeState: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [IPAddress: UInt32] = [:]
    private var attached: String? = "the probe program is not attached yet"
    private var routes: [IPAddress: String] = [:]

    /// The route for `t`'s probe now.
    func route(_ t: ProbeTarget) -> TunnelRoute {
        lock.lock()
        defer { lock.unlock() }
        if let why = attached { return .unavailable(why) }
        if let via = t.via, let why = routes[via] { return .unavailable(why) }
        guard let id = ids[t.address] else { return .unavailable("no backend id yet (not in the data plane)") }
        return .mark(XDPLB_PROBE_MARK | id)
    }

    func set(ids: [IPAddress: UInt32]) { lock.lock(); self.ids = ids; lock.unlock() }
    func set(attached problem: String?) { lock.lock(); attached = problem; lock.unlock() }
    func set(routeProblems: [IPAddress: String]) { lock.lock(); routes = routeProblems; lock.unlock() }
}

extension Agent {
    /// VIP addresses probed through the tunnel in the running config (the probe targets' `via`).
    func tunnelVIPs() -> Set<IPAddress> {
        Set(probeTargets().values.flatMap { $0.values }.compactMap(\.via))
    }

    /// Attaches the probe program when a VIP first needs it, and checks the routes to those VIPs.
    func prepareTunnelProbes() {
        let vips = tunnelVIPs()
        guard !vips.isEmpty else { return }
        if probeEncapsulator == nil {
            do {
                probeEncapsulator = try ProbeEncapsulator(interface: config.node.interface, maps: dataPlane.maps)
                tunnelState.set(attached: nil)
                logger.notice("through-tunnel probes: program attached", metadata: [
                    "interface": "\(config.node.interface)", "tc": "egress pref \(ProbeEncapsulator.priority)",
                ])
            } catch {
                tunnelState.set(attached: "the probe program could not be attached: \(error)")
                logger.error("through-tunnel probes: the probe program could not be attached; those probes fail", metadata: ["error": "\(error)"])
            }
        }
        checkTunnelRoutes(vips)
    }

    /// A VIP whose route leaves through another interface can't be probed through the tunnel.
    func checkTunnelRoutes(_ vips: Set<IPAddress>) {
        let ifindex = Int32(if_nametoindex(config.node.interface))
        var problems: [IPAddress: String] = [:]
        let nl = try? RouteNetlink()
        for v in vips {
            guard let nl else { problems[v] = "cannot read routes (netlink)"; continue }
            do {
                let r = try nl.lookup(destination: v)
                if r.type == .local {
                    problems[v] = "\(v) is a local address of this node; through-tunnel probes need a route to it out of \(config.node.interface)"
                } else if r.type != .unicast {
                    problems[v] = "the route to \(v) is \(r.type) (through-tunnel probes leave toward the VIP, out of \(config.node.interface))"
                } else if r.interfaceIndex != ifindex {
                    let name = (try? nl.link(index: r.interfaceIndex).name) ?? "ifindex \(r.interfaceIndex)"
                    problems[v] = "the route to \(v) leaves through \(name), not \(config.node.interface) (where the probe program is)"
                }
            } catch {
                problems[v] = "no route to \(v) (through-tunnel probes leave toward the VIP, out of \(config.node.interface))"
            }
        }
        tunnelState.set(routeProblems: problems)
    }

    /// Counters of the probe program (empty when it is not attached).
    func tunnelProbeCounters() -> [String: CounterValue] {
        probeEncapsulator?.counters() ?? [:]
    }
}
