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
public actor HealthChecker {
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let maxInFlight: Int
    private var inFlight = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var tasks: [ProbeTarget: Task<Void, Never>] = [:]
    /// Every target's state.
    public private(set) var states: [ProbeTarget: ProbeState] = [:]
    private let onChange: @Sendable (ProbeTarget, ProbeState) -> Void
    private let tunnel: @Sendable (ProbeTarget) -> TunnelRoute

    /// - Parameters:
    ///   - maxInFlight: probes allowed at once (bounds sockets and CPU).
    ///   - threads: event-loop threads for the probe sockets.
    ///   - tunnel: how a through-tunnel probe (`via` set) is sent now: its socket mark, or
    ///     why it can't be (it then fails with that reason, so it can never pass by another path).
    ///   - onChange: called on every healthy ↔ unhealthy transition.
    public init(maxInFlight: Int = 256, threads: Int = 1, logger: Logger,
                tunnel: @escaping @Sendable (ProbeTarget) -> TunnelRoute = { _ in .unavailable("through-tunnel probes are not set up") },
                onChange: @escaping @Sendable (ProbeTarget, ProbeState) -> Void) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.maxInFlight = maxInFlight
        self.logger = logger
        self.tunnel = tunnel
        self.onChange = onChange
    }

    /// Starts probing targets not yet probed and stops those no longer listed.
    public func setTargets(_ targets: Set<ProbeTarget>) {
        for (t, task) in tasks where !targets.contains(t) {
            task.cancel()
            tasks[t] = nil
            states[t] = nil
        }
        for t in targets where tasks[t] == nil {
            states[t] = ProbeState(healthy: true, lastResult: "not probed yet", lastLatencyMs: 0, lastCheck: nil, streak: 0, probes: 0)
            if t.check.type == .none { continue }
            tasks[t] = Task { [weak self] in await self?.loop(t) }
        }
    }

    /// Stops every probe.
    public func stop() async {
        for t in tasks.values { t.cancel() }
        tasks = [:]
        try? await group.shutdownGracefully()
    }

    private func loop(_ t: ProbeTarget) async {
        // Spread the first probes over one interval so 1,000 backends don't fire at once.
        let jitter = UInt64(abs(t.hashValue) % max(1, t.check.intervalMs))
        try? await Task.sleep(nanoseconds: jitter * 1_000_000)
        while !Task.isCancelled {
            let started = ContinuousClock.now
            await acquire()
            let result: Probe.Result
            if t.via != nil {
                switch tunnel(t) {
                case .mark(let mark): result = await Probe.run(t, group: group, mark: mark)
                case .unavailable(let why): result = Probe.Result(ok: false, message: why, latencyMs: 0)
                }
            } else {
                result = await Probe.run(t, group: group)
            }
            release()
            record(t, result)
            let elapsed = ContinuousClock.now - started
            let interval = Duration.milliseconds(t.check.intervalMs)
            if elapsed < interval { try? await Task.sleep(for: interval - elapsed) }
        }
    }

    private func acquire() async {
        if inFlight < maxInFlight {
            inFlight += 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty {
            inFlight -= 1
        } else {
            waiters.removeFirst().resume()
        }
    }

    private func record(_ t: ProbeTarget, _ r: Probe.Result) {
        guard var s = states[t] else { return }
        s.lastResult = r.message
        s.lastLatencyMs = r.latencyMs
        s.lastCheck = Date()
        s.probes += 1
        var changed = false
        if r.ok == s.healthy {
            s.streak = 0
        } else {
            s.streak += 1
            if s.healthy && s.streak >= t.check.fall || !s.healthy && s.streak >= t.check.rise {
                s.healthy.toggle()
                s.streak = 0
                changed = true
            }
        }
        states[t] = s
        if changed {
            logger.notice("health state changed", metadata: [
                "probe": "\(t)", "health.healthy": "\(s.healthy)", "health.result": "\(r.message)",
            ])
            onChange(t, s)
        }
    }
}

/// One probe: TCP connect, or an HTTP request whose status must be in range.
enum Probe {
    struct Result: Sendable {
        var ok: Bool
        var message: String
        var latencyMs: Double
    }

    static func run(_ t: ProbeTarget, group: EventLoopGroup, mark: UInt32? = nil) async -> Result {
        let start = ContinuousClock.now
        func done(_ ok: Bool, _ message: String) -> Result {
            let d = ContinuousClock.now - start
            let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
            return Result(ok: ok, message: message, latencyMs: ms)
        }
        let timeout = TimeAmount.milliseconds(Int64(t.check.timeoutMs))
        let deadline = NIODeadline.now() + timeout
        let statusPromise = group.next().makePromise(of: Int.self)
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        if let mark {
            // The probe program wraps packets with this mark toward the backend (SO_MARK: CAP_NET_ADMIN).
            bootstrap = bootstrap.channelOption(ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_MARK)),
                                                value: SocketOptionValue(Int32(bitPattern: mark)))
        }
        bootstrap = bootstrap
            .channelInitializer { ch in
                t.check.type == .http ? ch.pipeline.addHandler(StatusLineHandler(promise: statusPromise)) : ch.eventLoop.makeSucceededVoidFuture()
            }
        let channel: Channel
        do {
            channel = try await bootstrap.connect(host: (t.via ?? t.address).description, port: Int(t.port)).get()
        } catch {
            statusPromise.fail(error)
            return done(false, describe(error))
        }
        defer { channel.close(promise: nil) }
        guard t.check.type == .http else {
            statusPromise.succeed(0)
            return done(true, "ok")
        }
        let dst = t.via ?? t.address
        let host = t.check.host ?? (dst.isV6 ? "[\(dst)]" : "\(dst)")
        let request = "\(t.check.method) \(t.check.path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: xdplb-health\r\nConnection: close\r\n\r\n"
        channel.writeAndFlush(channel.allocator.buffer(string: request), promise: nil)
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
            statusPromise.fail(ProbeTimeout())
        }
        defer { timer.cancel() }
        do {
            let status = try await statusPromise.futureResult.get()
            return done(t.check.expectStatus.contains(status), "status \(status)")
        } catch {
            return done(false, describe(error))
        }
    }

    struct ProbeTimeout: Error {}
    struct BadResponse: Error {}

    static func describe(_ error: Error) -> String {
        if error is ProbeTimeout { return "timeout" }
        if error is BadResponse { return "bad response" }
        if let e = error as? ChannelError, case .connectTimeout = e { return "timeout" }
        let s = "\(error)"
        if s.contains("refused") || s.contains("111") { return "refused" }
        if s.contains("unreachable") { return "unreachable" }
        return s.count > 80 ? String(s.prefix(80)) : s
    }
}

/// Reads until the end of the HTTP status line and fulfils the promise with the code.
final class StatusLineHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let promise: EventLoopPromise<Int>
    private var buffer = ""

    init(promise: EventLoopPromise<Int>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        buffer += b.readString(length: b.readableBytes) ?? ""
        if let end = buffer.range(of: "\r\n") {
            let parts = buffer[..<end.lowerBound].split(separator: " ")
            if parts.count >= 2, parts[0].hasPrefix("HTTP/"), let code = Int(parts[1]) {
                promise.succeed(code)
            } else {
                promise.fail(Probe.BadResponse())
            }
            context.close(promise: nil)
        } else if buffer.count > 4096 {
            promise.fail(Probe.BadResponse())
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(Probe.BadResponse())
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
