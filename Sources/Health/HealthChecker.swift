import Config
import Foundation
import Logging
import NetAddress
import NIOCore
import NIOPosix

/// What is probed: one address and port with one check configuration.
/// Identical probes (same address, port and check) are run once and shared.
public struct ProbeTarget: Hashable, Sendable, CustomStringConvertible {
    /// Backend address.
    public var address: IPAddress
    /// Port probed.
    public var port: UInt16
    /// The check.
    public var check: HealthCheckConfig
    /// Through the tunnel: the VIP address the probe connects to (its packets GRE-encapsulated
    /// to `address` by the probe program); nil: the probe connects to `address` itself.
    public var via: IPAddress?

    /// A probe target.
    public init(address: IPAddress, port: UInt16, check: HealthCheckConfig, via: IPAddress? = nil) {
        self.address = address
        self.port = port
        self.check = check
        self.via = via
    }

    /// `type addr:port[path]`, or `type vip:port[path] via GRE to addr` through the tunnel.
    public var description: String {
        func br(_ x: IPAddress) -> String { x.isV6 ? "[\(x)]" : "\(x)" }
        let dst = br(via ?? address)
        let what = check.type == .http ? "http \(dst):\(port)\(check.path)" : "\(check.type.rawValue) \(dst):\(port)"
        return via == nil ? what : "\(what) via GRE to \(address)"
    }

    public static func == (a: ProbeTarget, b: ProbeTarget) -> Bool {
        a.address == b.address && a.port == b.port && a.check == b.check && a.via == b.via
    }

    public func hash(into h: inout Hasher) {
        h.combine(address)
        h.combine(via)
        h.combine(port)
        h.combine(check.type.rawValue)
        h.combine(check.path)
        h.combine(check.intervalMs)
    }
}

/// How a through-tunnel probe is sent: with this socket mark (the probe program wraps it
/// toward the backend), or not at all, and why.
public enum TunnelRoute: Sendable, Equatable {
    case mark(UInt32)
    case unavailable(String)
}

/// The current view of one probe target.
public struct ProbeState: Sendable, Equatable {
    /// Healthy per rise/fall.
    public var healthy: Bool
    /// Result of the last probe: "ok", "timeout", "refused", "status 503", …
    public var lastResult: String
    /// Latency of the last probe in milliseconds.
    public var lastLatencyMs: Double
    /// When the last probe finished (nil: not probed yet).
    public var lastCheck: Date?
    /// Consecutive successes (while unhealthy) or failures (while healthy).
    public var streak: Int
    /// Probes done.
    public var probes: Int
}

/// Runs health probes concurrently with a bound on probes in flight, and
/// reports rise/fall transitions. New targets start healthy, so an agent
/// restart or a reload never pulls a backend before it has failed `fall` times.
///
/// Each target is probed on absolute deadlines (`ProbeSchedule`: its stable phase plus
/// whole intervals), never "an interval after the last probe ended", so slow probes
/// and late wake-ups don't accumulate into drift. The probes run on NIO event loops
/// (one `ProbeEngine` per loop, each target always on the same one), timed by one
/// timer per loop: no task, sleep or thread hop per probe. How late probes start is
/// recorded (`probeLateness()`).
public actor HealthChecker {
    private let group: MultiThreadedEventLoopGroup
    private let engines: [ProbeEngine]
    private var stopped: (states: [ProbeTarget: ProbeState], lateness: ProbeLatenessSnapshot)?
    /// Two event loops where there are two cores (an idle loop costs nothing), else one.
    public static let defaultThreads = min(2, max(1, System.coreCount))

    /// - Parameters:
    ///   - maxInFlight: probes allowed at once (bounds sockets and CPU); more that are due wait, first come first served.
    ///   - threads: event-loop threads for the probe sockets, each probing its share of the targets
    ///     (default `defaultThreads`: one loop does about 8,000 HTTP probes a second on its core).
    ///   - tunnel: how a through-tunnel probe (`via` set) is sent now: its socket mark, or
    ///     why it can't be (it then fails with that reason, so it can never pass by another path).
    ///   - onChange: called on every healthy ↔ unhealthy transition (on an event-loop thread).
    public init(maxInFlight: Int = 256, threads: Int = HealthChecker.defaultThreads, logger: Logger,
                tunnel: @escaping @Sendable (ProbeTarget) -> TunnelRoute = { _ in .unavailable("through-tunnel probes are not set up") },
                onChange: @escaping @Sendable (ProbeTarget, ProbeState) -> Void) {
        let threads = max(1, threads)
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let epoch = Int64(NIODeadline.now().uptimeNanoseconds)
        // The in-flight bound is shared out over the loops (each at least 1).
        let share = max(1, maxInFlight / threads)
        engines = group.makeIterator().map { loop in
            ProbeEngine(loop: loop, maxInFlight: share, epochNs: epoch, logger: logger, tunnel: tunnel, onChange: onChange)
        }
    }

    private func engine(for t: ProbeTarget) -> Int {
        engines.count == 1 ? 0 : Int(t.phaseKey % UInt64(engines.count))
    }

    /// Starts probing targets not yet probed and stops those no longer listed.
    /// Returns once every target listed has its state.
    public func setTargets(_ targets: Set<ProbeTarget>) async {
        guard stopped == nil else { return }
        var parts = [Set<ProbeTarget>](repeating: [], count: engines.count)
        if engines.count == 1 { parts[0] = targets } else { for t in targets { parts[engine(for: t)].insert(t) } }
        for (e, part) in zip(engines, parts) {
            try? await e.loop.submit { e.setTargets(part) }.get()
        }
    }

    /// Every target's state.
    public var states: [ProbeTarget: ProbeState] {
        get async {
            if let stopped { return stopped.states }
            var out: [ProbeTarget: ProbeState]?
            for e in engines {
                let s = (try? await e.loop.submit { e.states }.get()) ?? [:]
                // The first loop's dictionary as it is (no copy), the others' entries added to it.
                if out == nil { out = s } else { out!.merge(s) { a, _ in a } }
            }
            return out ?? [:]
        }
    }

    /// How late probes started over the last 10 s (p50/p99/max), with the probes started and skipped since start.
    public func probeLateness() async -> ProbeLatenessSnapshot {
        if let stopped { return stopped.lateness }
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        var windows: [LatenessWindow] = []
        var started = 0, skipped = 0
        for e in engines {
            guard let r = try? await e.loop.submit({ (e.lateness, e.started, e.skipped) }).get() else { continue }
            windows.append(r.0)
            started += r.1
            skipped += r.2
        }
        return LatenessWindow.snapshot(windows, nowNs: now, started: started, skipped: skipped)
    }

    /// Stops every probe (the states stay readable as they were).
    public func stop() async {
        guard stopped == nil else { return }
        let lateness = await probeLateness()
        var states: [ProbeTarget: ProbeState] = [:]
        for e in engines {
            let s = (try? await e.loop.submit { () -> [ProbeTarget: ProbeState] in
                e.stop()
                return e.states
            }.get()) ?? [:]
            states.merge(s) { a, _ in a }
        }
        stopped = (states, lateness)
        try? await group.shutdownGracefully()
    }
}

/// The probes of one event loop: their schedule, the in-flight bound, the states.
/// Everything here runs on `loop` (hence `@unchecked Sendable`).
final class ProbeEngine: @unchecked Sendable {
    /// One probed target.
    final class Entry: @unchecked Sendable {
        let target: ProbeTarget
        let schedule: ProbeSchedule
        /// Where the probe connects: the backend, or the VIP through the tunnel (nil: not an address NIO takes).
        let address: SocketAddress?
        /// The HTTP request, formatted once.
        let request: ByteBuffer?
        let timeoutNs: Int64
        /// Still a target (false once removed).
        var active = true
        /// A probe of it is running or waiting for a slot: a slot reached meanwhile is skipped.
        var busy = false

        init(_ t: ProbeTarget, epochNs: Int64) {
            target = t
            schedule = ProbeSchedule(epochNs: epochNs, intervalMs: t.check.intervalMs, phaseKey: t.phaseKey)
            address = try? SocketAddress(ipAddress: (t.via ?? t.address).description, port: Int(t.port))
            timeoutNs = Int64(max(1, t.check.timeoutMs)) * 1_000_000
            if t.check.type == .http {
                let dst = t.via ?? t.address
                let host = t.check.host ?? (dst.isV6 ? "[\(dst)]" : "\(dst)")
                let text = "\(t.check.method) \(t.check.path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: xdplb-health\r\nConnection: close\r\n\r\n"
                request = ByteBufferAllocator().buffer(string: text)
            } else {
                request = nil
            }
        }
    }

    let loop: EventLoop
    private let maxInFlight: Int
    private let epochNs: Int64
    private let logger: Logger
    private let tunnel: @Sendable (ProbeTarget) -> TunnelRoute
    private let onChange: @Sendable (ProbeTarget, ProbeState) -> Void

    private var entries: [ProbeTarget: Entry] = [:]
    /// Every target's state.
    private(set) var states: [ProbeTarget: ProbeState] = [:]
    private var queue = DeadlineQueue<Entry>()
    private var timer: Scheduled<Void>?
    private var timerDeadline = Int64.max
    private var inFlight = 0
    private var waiting = CircularBuffer<(entry: Entry, deadline: Int64)>()
    /// Bootstraps without a socket mark, by connect timeout (reused: one per check timeout).
    private var bootstraps: [Int64: ClientBootstrap] = [:]
    private(set) var lateness = LatenessWindow()
    private(set) var started = 0
    private(set) var skipped = 0
    private var isStopped = false

    init(loop: EventLoop, maxInFlight: Int, epochNs: Int64, logger: Logger,
         tunnel: @escaping @Sendable (ProbeTarget) -> TunnelRoute, onChange: @escaping @Sendable (ProbeTarget, ProbeState) -> Void) {
        self.loop = loop
        self.maxInFlight = maxInFlight
        self.epochNs = epochNs
        self.logger = logger
        self.tunnel = tunnel
        self.onChange = onChange
    }

    private func nowNs() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds) }

    func setTargets(_ targets: Set<ProbeTarget>) {
        loop.preconditionInEventLoop()
        guard !isStopped else { return }
        var removed = false
        for t in states.keys where !targets.contains(t) {
            states[t] = nil
            if let e = entries.removeValue(forKey: t) {
                e.active = false
                removed = true
            }
        }
        if removed { queue.removeAll { !$0.active } }
        let now = nowNs()
        for t in targets where states[t] == nil {
            states[t] = ProbeState(healthy: true, lastResult: "not probed yet", lastLatencyMs: 0, lastCheck: nil, streak: 0, probes: 0)
            if t.check.type == .none { continue }
            let e = Entry(t, epochNs: epochNs)
            entries[t] = e
            // The first probe at the target's next slot: within one interval.
            queue.push(e.schedule.first(atOrAfter: now), e)
        }
        arm()
    }

    func stop() {
        loop.preconditionInEventLoop()
        isStopped = true
        timer?.cancel()
        timer = nil
        for e in entries.values { e.active = false }
        entries = [:]
        queue = DeadlineQueue()
        waiting.removeAll()
    }

    /// Keeps one timer set for the earliest deadline.
    private func arm() {
        guard !isStopped, let next = queue.nextDeadline else { return }
        if timer != nil && timerDeadline <= next { return }
        timer?.cancel()
        timerDeadline = next
        timer = loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(UInt64(max(0, next)))) { [self] in
            timer = nil
            timerDeadline = .max
            fire()
        }
    }

    /// Starts every probe due (or queues it for a slot) and schedules its next one.
    private func fire() {
        let now = nowNs()
        while let due = queue.popDue(now) {
            let (deadline, e) = (due.deadline, due.element)
            guard e.active else { continue }
            let (next, passed) = e.schedule.next(after: deadline, now: now)
            skipped += passed
            queue.push(next, e)
            if e.busy {
                skipped += 1
                continue
            }
            e.busy = true
            if inFlight < maxInFlight {
                inFlight += 1
                start(e, deadline: deadline)
            } else {
                waiting.append((e, deadline))
            }
        }
        arm()
    }

    /// A slot is free: the next waiting probe takes it.
    private func release() {
        while let w = waiting.popFirst() {
            guard w.entry.active else {
                w.entry.busy = false
                continue
            }
            start(w.entry, deadline: w.deadline)
            return
        }
        inFlight -= 1
    }

    private func start(_ e: Entry, deadline: Int64) {
        let t0 = nowNs()
        lateness.record(latenessNs: t0 - deadline, nowNs: t0)
        started += 1
        let t = e.target
        guard let address = e.address else {
            return finishLater(e, Probe.Result(ok: false, message: "not an address: \(t.via ?? t.address)", latencyMs: 0))
        }
        let bootstrap: ClientBootstrap
        if t.via != nil {
            switch tunnel(t) {
            case .mark(let mark):
                // The probe program wraps packets with this mark toward the backend (SO_MARK: CAP_NET_ADMIN).
                bootstrap = makeBootstrap(timeoutNs: e.timeoutNs)
                    .channelOption(ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_MARK)),
                                   value: SocketOptionValue(Int32(bitPattern: mark)))
            case .unavailable(let why):
                return finishLater(e, Probe.Result(ok: false, message: why, latencyMs: 0))
            }
        } else if let b = bootstraps[e.timeoutNs] {
            bootstrap = b
        } else {
            bootstrap = makeBootstrap(timeoutNs: e.timeoutNs)
            bootstraps[e.timeoutNs] = bootstrap
        }
        bootstrap.connect(to: address).hop(to: loop).whenComplete { [self] r in
            switch r {
            case .failure(let error):
                finish(e, Probe.result(false, Probe.describe(error), since: t0))
            case .success(let channel):
                Self.resetOnClose(channel)
                guard let request = e.request else {
                    channel.close(promise: nil)
                    return finish(e, Probe.result(true, "ok", since: t0))
                }
                // Probe channels are on this loop (the bootstrap's group is the loop).
                let handler = StatusLineHandler { [self] outcome in
                    switch outcome {
                    case .success(let status):
                        finish(e, Probe.result(t.check.expectStatus.contains(status), Probe.statusText(status), since: t0))
                    case .failure(let error):
                        finish(e, Probe.result(false, Probe.describe(error), since: t0))
                    }
                }
                do { try channel.pipeline.syncOperations.addHandler(handler) } catch {
                    channel.close(promise: nil)
                    return finish(e, Probe.result(false, Probe.describe(error), since: t0))
                }
                let timeout = loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(UInt64(t0 + e.timeoutNs))) {
                    handler.fail(Probe.ProbeTimeout())
                    channel.close(promise: nil)
                }
                handler.onClose = { timeout.cancel() }
                channel.writeAndFlush(request, promise: nil)
            }
        }
    }

    /// Makes the probe's close an RST (SO_LINGER 0), as HAProxy's checks do: no FIN
    /// exchange, and no TIME_WAIT socket left on this node per probe (10,000 backends at
    /// 1 s would otherwise keep ~600,000 of them). Runs on the channel's loop, so before any close.
    static func resetOnClose(_ channel: Channel) {
        guard let provider = channel as? SocketOptionProvider else { return }
        _ = provider.setSoLinger(linger(l_onoff: 1, l_linger: 0))
    }

    private func makeBootstrap(timeoutNs: Int64) -> ClientBootstrap {
        ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(timeoutNs))
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
    }

    /// A result known before any I/O: delivered from the loop's next turn, not from inside `start`.
    private func finishLater(_ e: Entry, _ r: Probe.Result) {
        loop.execute { [self] in finish(e, r) }
    }

    private func finish(_ e: Entry, _ r: Probe.Result) {
        e.busy = false
        if e.active && !isStopped { record(e.target, r) }
        if !isStopped { release() }
    }

    private func record(_ t: ProbeTarget, _ r: Probe.Result) {
        guard let i = states.index(forKey: t) else { return }
        var changed = false
        let c = t.check
        // In place: no copy of the state out of the dictionary and back.
        states.values[i].lastResult = r.message
        states.values[i].lastLatencyMs = r.latencyMs
        states.values[i].lastCheck = Date()
        states.values[i].probes += 1
        let healthy = states.values[i].healthy
        if r.ok == healthy {
            states.values[i].streak = 0
        } else {
            states.values[i].streak += 1
            let streak = states.values[i].streak
            if healthy && streak >= c.fall || !healthy && streak >= c.rise {
                states.values[i].healthy.toggle()
                states.values[i].streak = 0
                changed = true
            }
        }
        if changed {
            let s = states.values[i]
            logger.notice("health state changed", metadata: [
                "probe": "\(t)", "health.healthy": "\(s.healthy)", "health.result": "\(r.message)",
            ])
            onChange(t, s)
        }
    }
}

/// One probe's outcome, and the words for it.
enum Probe {
    struct Result: Sendable {
        var ok: Bool
        var message: String
        var latencyMs: Double
    }

    static func result(_ ok: Bool, _ message: String, since t0: Int64) -> Result {
        let ns = Int64(NIODeadline.now().uptimeNanoseconds) - t0
        return Result(ok: ok, message: message, latencyMs: Double(ns) / 1e6)
    }

    /// `status 200`: the common codes' words made once.
    static func statusText(_ status: Int) -> String {
        switch status {
        case 200: return "status 200"
        case 204: return "status 204"
        case 301: return "status 301"
        case 302: return "status 302"
        case 404: return "status 404"
        case 503: return "status 503"
        default: return "status \(status)"
        }
    }

    struct ProbeTimeout: Error {}
    struct BadResponse: Error {}

    static func describe(_ error: Error) -> String {
        if error is ProbeTimeout { return "timeout" }
        if error is BadResponse { return "bad response" }
        if let e = error as? ChannelError, case .connectTimeout = e { return "timeout" }
        if let e = error as? IOError {
            switch e.errnoCode {
            case ECONNREFUSED: return "refused"
            case EHOSTUNREACH, ENETUNREACH: return "unreachable"
            default: break
            }
        }
        let s = "\(error)"
        if s.contains("refused") || s.contains("111") { return "refused" }
        if s.contains("unreachable") { return "unreachable" }
        return s.count > 80 ? String(s.prefix(80)) : s
    }
}

/// Reads until the end of the HTTP status line and reports the code (or the failure) once.
final class StatusLineHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var onDone: ((Result<Int, Error>) -> Void)?
    /// Called when the outcome is known (to cancel the probe's timeout).
    var onClose: (() -> Void)?
    private var buffer: ByteBuffer?

    init(onDone: @escaping (Result<Int, Error>) -> Void) { self.onDone = onDone }

    /// Delivers the outcome unless one was delivered already.
    func fail(_ error: Error) { done(.failure(error)) }

    private func done(_ r: Result<Int, Error>) {
        guard let f = onDone else { return }
        onDone = nil
        onClose?()
        onClose = nil
        f(r)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard onDone != nil else { return }
        var b = unwrapInboundIn(data)
        if buffer == nil { buffer = b } else { buffer!.writeBuffer(&b) }
        let view = buffer!.readableBytesView
        if let end = Self.lineEnd(view) {
            done(Self.parseStatus(view[view.startIndex..<end]).map { .success($0) } ?? .failure(Probe.BadResponse()))
            context.close(promise: nil)
        } else if view.count > 4096 {
            done(.failure(Probe.BadResponse()))
            context.close(promise: nil)
        }
    }

    /// Where the first `\r\n` starts, or nil.
    static func lineEnd<C: BidirectionalCollection>(_ bytes: C) -> C.Index? where C.Element == UInt8 {
        var i = bytes.startIndex
        while let cr = bytes[i...].firstIndex(of: 13) {
            let lf = bytes.index(after: cr)
            guard lf < bytes.endIndex else { return nil }
            if bytes[lf] == 10 { return cr }
            i = lf
        }
        return nil
    }

    /// The code of a status line `HTTP/x.y NNN reason`, or nil.
    static func parseStatus<C: Collection>(_ line: C) -> Int? where C.Element == UInt8 {
        let parts = line.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].starts(with: "HTTP/".utf8),
              (1...9).contains(parts[1].count), parts[1].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return parts[1].reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done(.failure(Probe.BadResponse()))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        done(.failure(error))
        context.close(promise: nil)
    }
}
