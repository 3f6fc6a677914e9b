import Foundation
import Logging
import NetAddress

/// Enforces `bgp.grace_time`: when the agent's heartbeat is older than the grace
/// time (the agent died and stayed dead, or hangs), every VIP route is removed
/// from the announcement table, so the daemon withdraws them. A restart within
/// the grace time changes nothing (no flap); a new agent announces again once its
/// own gate allows it.
public final class GraceGuard: @unchecked Sendable {
    let table: any GateRouteTable
    let heartbeatFile: String
    let graceSeconds: Double
    let logger: Logger
    let startedAt: Date
    private var withdrewForStale = false

    /// A guard over `table` for the agent whose state directory is `stateDir`.
    public init(table: any GateRouteTable, stateDir: String, graceMs: Int, logger: Logger, now: Date = Date()) {
        self.table = table
        heartbeatFile = Announcer.heartbeatFile(stateDir)
        graceSeconds = Double(graceMs) / 1000
        self.logger = logger
        startedAt = now
    }

    /// The agent's last heartbeat (pid, time), nil when there is none or it is unreadable.
    public func lastHeartbeat() -> (pid: Int32, time: Date)? {
        guard let d = FileManager.default.contents(atPath: heartbeatFile) else { return nil }
        let f = String(decoding: d.prefix(100), as: UTF8.self).split(whereSeparator: \.isWhitespace)
        guard f.count == 2, let pid = Int32(f[0]), let t = Double(f[1]), t.isFinite else { return nil }
        return (pid, Date(timeIntervalSince1970: t))
    }

    /// One check. - Returns: the addresses it withdrew (empty when the agent is alive).
    @discardableResult
    public func check(now: Date = Date()) -> [IPAddress] {
        let beat = lastHeartbeat()
        let age = now.timeIntervalSince(beat?.time ?? startedAt)
        guard age > graceSeconds else {
            if withdrewForStale {
                logger.notice("agent heartbeat is fresh again; the agent announces what its gate allows")
                withdrewForStale = false
            }
            return []
        }
        let present: Set<IPAddress>
        do { present = try table.announced() } catch {
            logger.error("cannot read the announcement table", metadata: ["error": "\(error)"])
            return []
        }
        guard !present.isEmpty else { return [] }
        var removed: [IPAddress] = []
        for a in present.sorted() {
            do { try table.withdraw(a); removed.append(a) } catch {
                logger.error("withdraw failed", metadata: ["address": "\(a)", "error": "\(error)"])
            }
        }
        withdrewForStale = true
        logger.warning("agent heartbeat stale: withdrew every VIP", metadata: [
            "heartbeat.age_s": "\(String(format: "%.1f", age))", "grace_s": "\(graceSeconds)",
            "agent.pid": "\(beat.map { "\($0.pid)" } ?? "none")",
            "addresses": "\(removed.map(\.description).joined(separator: ","))",
        ])
        return removed
    }
}
