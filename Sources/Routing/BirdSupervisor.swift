import Config
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `xdplb bgp run`: writes the generated bird config, runs bird in the foreground
/// as its child, enforces the agent's grace time (``GraceGuard``), and stops bird
/// on SIGTERM/SIGINT. It is not the agent: an agent restart does not touch the
/// BGP sessions. If bird exits, so does the supervisor (non-zero), so a service
/// manager restarts both. A supervisor killed with SIGKILL leaves bird running;
/// its service manager stops the whole process group (systemd's default
/// `KillMode=control-group`), the lab stops bird by its recorded pid.
public struct BirdSupervisor {
    let bgp: BGPConfig
    let source: String
    let table: any GateRouteTable
    let stateDir: String
    let logger: Logger

    /// A supervisor for `bgp` (from the node config at `source`).
    public init(bgp: BGPConfig, source: String, table: any GateRouteTable, stateDir: String, logger: Logger) {
        self.bgp = bgp
        self.source = source
        self.table = table
        self.stateDir = stateDir
        self.logger = logger
    }

    /// An error starting or running the daemon.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Writes the config and checks it with `bird -p`.
    public func writeConfig() throws(Failure) {
        let text = BirdConfig.render(bgp, source: source)
        let url = URL(fileURLWithPath: bgp.daemonConfig)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch { throw Failure(description: "write \(bgp.daemonConfig): \(error.localizedDescription)") }
        let rc = try spawnAndWait([bgp.daemonBinary, "-p", "-c", bgp.daemonConfig])
        if rc != 0 { throw Failure(description: "\(bgp.daemonBinary) -p -c \(bgp.daemonConfig) refused the generated config (exit \(rc))") }
    }

    /// Runs until SIGTERM/SIGINT (exit 0) or until bird exits (throws).
    public func run() throws(Failure) {
        // Signals through dispatch sources (SIG_IGN for the default action): a blocked
        // mask on this thread alone would let another thread die of SIGTERM.
        let pending = PendingSignals([SIGTERM, SIGINT, SIGHUP])
        try writeConfig()
        try? FileManager.default.createDirectory(atPath: URL(fileURLWithPath: bgp.controlSocket).deletingLastPathComponent().path,
                                                 withIntermediateDirectories: true)
        let pid = try spawn([bgp.daemonBinary, "-f", "-c", bgp.daemonConfig, "-s", bgp.controlSocket])
        logger.notice("bird started", metadata: ["pid": "\(pid)", "config": "\(bgp.daemonConfig)", "socket": "\(bgp.controlSocket)"])
        let guardian = GraceGuard(table: table, stateDir: stateDir, graceMs: bgp.graceTimeMs, logger: logger)
        while true {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw Failure(description: "bird (pid \(pid)) exited (status \(status)); see its log above")
            }
            guardian.check()
            let sig = pending.next(waitingUpTo: 0.5)
            if sig == SIGHUP {
                logger.info("SIGHUP: rewriting the bird config and reconfiguring")
                do {
                    try writeConfig()
                    _ = try BirdControl(socketPath: bgp.controlSocket).command("configure")
                } catch { logger.error("reconfigure failed", metadata: ["error": "\(error)"]) }
            } else if sig == SIGTERM || sig == SIGINT {
                logger.notice("stopping bird", metadata: ["signal": "\(sig ?? 0)"])
                kill(pid, SIGTERM)
                for _ in 0..<50 {
                    if waitpid(pid, &status, WNOHANG) == pid { return }
                    usleep(100_000)
                }
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                return
            }
        }
    }

    func spawn(_ argv: [String]) throws(Failure) -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var dflt = sigset_t()
        sigemptyset(&dflt)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&dflt, s) }
        posix_spawnattr_setsigdefault(&attr, &dflt)   // the child gets default actions, not our SIG_IGN
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], nil, &attr, &cargs, environ)
        guard rc == 0 else {
            throw Failure(description: "cannot start \(argv[0]): \(String(cString: strerror(rc)))\(rc == ENOENT ? " (install Debian's bird2)" : "")")
        }
        return pid
    }

    func spawnAndWait(_ argv: [String]) throws(Failure) -> Int32 {
        let pid = try spawn(argv)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

/// Signals caught by dispatch sources and handed to a polling loop one at a time.
final class PendingSignals: @unchecked Sendable {
    private let lock = NSCondition()
    private var queue: [Int32] = []
    private var sources: [DispatchSourceSignal] = []

    init(_ signals: [Int32]) {
        for s in signals {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            src.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                self.queue.append(s)
                self.lock.signal()
                self.lock.unlock()
            }
            src.resume()
            sources.append(src)
        }
    }

    /// The next signal, or nil after `seconds`.
    func next(waitingUpTo seconds: Double) -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if queue.isEmpty { _ = lock.wait(until: Date().addingTimeInterval(seconds)) }
        return queue.isEmpty ? nil : queue.removeFirst()
    }
}
