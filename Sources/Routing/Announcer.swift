import Config
import Foundation
import Logging
import NetAddress

/// The kernel table the agent announces through: one host route per announced VIP
/// address. The BGP daemon exports what is in it.
public protocol GateRouteTable: Sendable {
    /// Addresses with a route in the table now.
    func announced() throws -> Set<IPAddress>
    /// Adds the host route of `address` (idempotent).
    func announce(_ address: IPAddress) throws
    /// Removes it (idempotent).
    func withdraw(_ address: IPAddress) throws
}

/// Decides and applies what this node announces, keeps the node's drain flag and
/// the agent's heartbeat in `node.state_dir`, and tracks when VIP traffic stopped.
///
/// Restarts do not flap: the routes stay in the kernel table while no agent runs,
/// a new agent adopts them (no convergence wait) and changes only what its own
/// gate says. An agent that stays dead stops refreshing its heartbeat, and after
/// `bgp.grace_time` the daemon's supervisor (`xdplb bgp run`, ``GraceGuard``)
/// removes the routes.
public final class Announcer: @unchecked Sendable {
    /// The BGP section in force.
    public let bgp: BGPConfig
    let table: any GateRouteTable
    let logger: Logger
    let stateDir: String
    private let lock = NSLock()
    private var _states: [String: AnnouncementState] = [:]
    private var _announced: Set<IPAddress>
    private var _drained: Bool
    private var _routeError: String?
    private var lastVIPPackets: UInt64?
    private var lastTrafficAt = Date()
    private var withdrawnAllAt: Date?
    private var _adoptedSet: Set<IPAddress> = []
    /// Routes of a previous agent were in the table at start (adopted, no convergence wait).
    public let adoptedAtStart: Bool

    /// Reads the table and the drain flag.
    /// - Throws: when the table cannot be read or the state directory cannot be made.
    public init(bgp: BGPConfig, stateDir: String, table: any GateRouteTable, logger: Logger) throws {
        self.bgp = bgp
        self.table = table
        self.logger = logger
        self.stateDir = stateDir
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        _announced = try table.announced()
        _drained = FileManager.default.fileExists(atPath: Self.drainFile(stateDir))
        adoptedAtStart = !_announced.isEmpty
        _adoptedSet = _announced
        if adoptedAtStart {
            logger.info("adopted announcements", metadata: ["addresses": "\(_announced.map(\.description).sorted().joined(separator: ","))"])
        }
        if _drained { logger.notice("node is drained (flag kept across restarts); 'xdplb node undrain' restores it") }
    }

    static func drainFile(_ dir: String) -> String { "\(dir)/drained" }
    /// The heartbeat file the agent refreshes and ``GraceGuard`` reads.
    public static func heartbeatFile(_ dir: String) -> String { "\(dir)/agent.heartbeat" }

    /// Per-VIP states of the last update.
    public var states: [String: AnnouncementState] { lock.withLock { _states } }
    /// Addresses announced now.
    public var announced: Set<IPAddress> { lock.withLock { _announced } }
    /// The node drain flag.
    public var drained: Bool { lock.withLock { _drained } }
    /// The last route-table write error (nil when the last writes succeeded).
    public var routeError: String? { lock.withLock { _routeError } }

    /// Sets or clears the drain flag (kept in `state_dir`, so a restart keeps it).
    public func setDrained(_ on: Bool) throws {
        let f = Self.drainFile(stateDir)
        if on {
            try Data("drained by xdplb node drain at \(ISO8601DateFormatter().string(from: Date()))\n".utf8).write(to: URL(fileURLWithPath: f), options: .atomic)
        } else if FileManager.default.fileExists(atPath: f) {
            try FileManager.default.removeItem(atPath: f)
        }
        lock.withLock { _drained = on }
        logger.notice(on ? "node drained: withdrawing every VIP" : "node undrained: announcing what the gate allows")
    }

    /// Decides every VIP's state, writes the route changes, logs every change.
    /// - Returns: the VIPs whose state changed.
    @discardableResult
    public func update(vips: [VIPGateInput], node facts: NodeGateInput) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        var node = facts
        node.drained = node.drained || _drained
        // Adopted announcements of a previous agent stay while health converges (no
        // flap on restart); the gate may withdraw them, but adds nothing new until then.
        let holdAdditions = !node.converged && adoptedAtStart
        if holdAdditions { node.converged = true }
        var next: [String: AnnouncementState] = [:]
        var pairs: [(address: IPAddress, state: AnnouncementState)] = []
        for v in vips {
            let s = AnnouncementGate.decide(v, node: node, failOpenPolicy: bgp.failOpen)
            next[v.name] = s
            pairs.append((v.address, s))
        }
        var changed: [String] = []
        for (name, s) in next.sorted(by: { $0.key < $1.key }) where _states[name] != s {
            changed.append(name)
            logger.notice("announcement changed", metadata: ["vip": "\(name)", "state": "\(s)", "was": "\(_states[name].map { "\($0)" } ?? "-")"])
        }
        for name in _states.keys where next[name] == nil { changed.append(name) }
        _states = next
        var want = AnnouncementGate.addresses(pairs)
        if holdAdditions { want.formIntersection(_adoptedSet) }
        var errors: [String] = []
        for a in _announced.subtracting(want).sorted() {
            do { try table.withdraw(a); _announced.remove(a) } catch { errors.append("withdraw \(a): \(error)") }
        }
        for a in want.subtracting(_announced).sorted() {
            do { try table.announce(a); _announced.insert(a) } catch { errors.append("announce \(a): \(error)") }
        }
        let err = errors.isEmpty ? nil : errors.joined(separator: "; ")
        if let err, err != _routeError { logger.error("route table write failed", metadata: ["table": "\(bgp.table)", "error": "\(err)"]) }
        _routeError = err
        if _announced.isEmpty { if withdrawnAllAt == nil { withdrawnAllAt = Date() } } else { withdrawnAllAt = nil }
        return changed
    }

    /// Refreshes the heartbeat (pid and time) that tells the guard this agent is alive.
    public func heartbeat(now: Date = Date()) {
        let text = "\(getpid()) \(now.timeIntervalSince1970)\n"
        try? Data(text.utf8).write(to: URL(fileURLWithPath: Self.heartbeatFile(stateDir)), options: .atomic)
    }

    /// Feeds the sum of every VIP's packet counter (for "traffic stopped").
    public func observeTraffic(vipPackets: UInt64, now: Date = Date()) {
        lock.withLock {
            if let last = lastVIPPackets, vipPackets != last { lastTrafficAt = now }
            lastVIPPackets = vipPackets
        }
    }

    /// When VIP traffic to this node stopped, if the node announces nothing and no VIP
    /// packet arrived for `bgp.quiet_time`; nil while traffic still arrives.
    public func trafficStoppedSince(now: Date = Date()) -> Date? {
        lock.withLock {
            guard withdrawnAllAt != nil, now.timeIntervalSince(lastTrafficAt) * 1000 >= Double(bgp.quietMs) else { return nil }
            return lastTrafficAt
        }
    }

    /// Seconds since the last VIP packet.
    public func secondsSinceTraffic(now: Date = Date()) -> Double { lock.withLock { now.timeIntervalSince(lastTrafficAt) } }
}
