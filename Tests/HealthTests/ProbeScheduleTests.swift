import Config
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import Health
import Logging
import NetAddress
import Testing

/// The schedule's arithmetic on a virtual clock (nanoseconds): no sleeping, no timing asserted.
@Suite("health probe scheduling (absolute deadlines, phase spread)")
struct ProbeScheduleTests {
    static let ms: Int64 = 1_000_000
    static let second: Int64 = 1_000_000_000

    static func target(_ i: Int, port: UInt16 = 8080) -> ProbeTarget {
        var c = HealthCheckConfig()
        c.type = .http
        c.intervalMs = 1000
        return ProbeTarget(address: IPAddress("10.3.\(1 + i / 250).\(1 + i % 250)")!, port: port, check: c)
    }

    @Test("10,000 targets spread over the interval: every 10 ms of it holds about 1/100 of them")
    func phaseSpread() {
        let epoch: Int64 = 5 * Self.second
        var bins = [Int](repeating: 0, count: 100)
        var phases = Set<Int64>()
        for i in 0..<10_000 {
            let s = ProbeSchedule(epochNs: epoch, intervalMs: 1000, phaseKey: Self.target(i).phaseKey)
            #expect(s.phaseNs >= 0 && s.phaseNs < Self.second)
            bins[Int(s.phaseNs / (10 * Self.ms))] += 1
            phases.insert(s.phaseNs)
        }
        // 100 expected per bin (Poisson, σ = 10): far from all at once, or in a few clumps.
        #expect(bins.min()! >= 55, "emptiest 10 ms: \(bins.min()!)")
        #expect(bins.max()! <= 145, "fullest 10 ms: \(bins.max()!)")
        #expect(phases.count > 9_990)
    }

    @Test("the phase is stable: the same target always gets it, another port or path another one")
    func phaseStable() {
        let a = Self.target(7), b = Self.target(7)
        #expect(a.phaseKey == b.phaseKey)
        #expect(a.phaseKey != Self.target(7, port: 8081).phaseKey)
        var c = a
        c.check.path = "/health"
        #expect(a.phaseKey != c.phaseKey)
        // Not hashValue (seeded per process): a fixed function of the bytes.
        #expect(a.phaseKey == Self.target(7).phaseKey)
    }

    @Test("deadlines are epoch + phase + k × interval, the first one within one interval of now")
    func absoluteDeadlines() {
        let epoch: Int64 = 3 * Self.second
        let s = ProbeSchedule(epochNs: epoch, intervalMs: 1000, phaseKey: Self.target(1).phaseKey)
        for now in [epoch, epoch + 1, epoch + s.phaseNs, epoch + s.phaseNs + 1, epoch + 7 * Self.second + 123_456] {
            let d = s.first(atOrAfter: now)
            #expect(d >= now && d - now < s.intervalNs)
            #expect((d - epoch - s.phaseNs) % s.intervalNs == 0)
        }
        #expect(s.first(atOrAfter: epoch + s.phaseNs) == epoch + s.phaseNs)
        let d = s.first(atOrAfter: epoch)
        #expect(s.next(after: d, now: d).deadline == d + s.intervalNs)
        let n = s.next(after: d, now: d + 400 * Self.ms)
        #expect(n.deadline == d + s.intervalNs && n.skipped == 0)
    }

    @Test("no drift: a slow probe or a late wake-up does not move the later deadlines")
    func noDriftAfterSlowProbe() {
        let s = ProbeSchedule(epochNs: 0, intervalMs: 1000, phaseKey: Self.target(2).phaseKey)
        let first = s.first(atOrAfter: 0)
        var deadline = first
        var skipped = 0
        var rng = SystemRandomNumberGenerator()
        for k in 0..<1000 {
            // How late the probe is handled: usually a little, once 700 ms (a slow probe before it,
            // a stalled loop), once 2.5 intervals (which passes over the two slots it missed).
            let late: Int64 = k == 100 ? 700 * Self.ms : k == 500 ? 2_500 * Self.ms : Int64.random(in: 0..<(5 * Self.ms), using: &rng)
            let n = s.next(after: deadline, now: deadline + late)
            skipped += n.skipped
            deadline = n.deadline
            #expect((deadline - first) % s.intervalNs == 0)
        }
        // 1000 handled slots plus the 2 passed over: exactly on the grid, not 1000 × lateness later.
        #expect(skipped == 2)
        #expect(deadline == first + 1002 * s.intervalNs)
    }

    @Test("a probe exactly one interval late passes over the slot that is due as it starts")
    func oneIntervalLate() {
        let s = ProbeSchedule(epochNs: 0, intervalMs: 100, phaseKey: 42)
        let d = s.first(atOrAfter: 0)
        let a = s.next(after: d, now: d + s.intervalNs - 1), b = s.next(after: d, now: d + s.intervalNs)
        #expect(a.deadline == d + s.intervalNs && a.skipped == 0)
        #expect(b.deadline == d + 2 * s.intervalNs && b.skipped == 1)
    }

    @Test("the deadline queue pops in deadline order, equal deadlines first in first out, only when due")
    func deadlineQueue() {
        var q = DeadlineQueue<String>()
        for (d, e) in [(30, "c"), (10, "a"), (20, "b1"), (20, "b2"), (40, "d"), (20, "b3")] { q.push(Int64(d), e) }
        #expect(q.popDue(5) == nil)
        var out: [String] = []
        while let x = q.popDue(35) { out.append(x.element) }
        #expect(out == ["a", "b1", "b2", "b3", "c"])
        #expect(q.nextDeadline == 40)
        q.push(1, "x")
        q.push(2, "y")
        q.removeAll { $0 == "x" }
        #expect(q.popDue(100)?.element == "y")
        #expect(q.popDue(100)?.element == "d")
        #expect(q.isEmpty)
    }
}

@Suite("probe lateness record")
struct LatenessWindowTests {
    static let ms: Int64 = 1_000_000

    @Test("p50, p99 and max over the window, within 1/16 of the value")
    func quantiles() {
        var w = LatenessWindow()
        let t: Int64 = 100_000 * Self.ms
        for i in 0..<990 { w.record(latenessNs: Int64(i % 10 + 1) * 100_000, nowNs: t) }   // 0.1 … 1 ms
        for _ in 0..<9 { w.record(latenessNs: 20 * Self.ms, nowNs: t) }
        w.record(latenessNs: 250 * Self.ms, nowNs: t)
        let s = LatenessWindow.snapshot([w], nowNs: t + 500 * Self.ms, started: 1000, skipped: 3)
        #expect(s.probes == 1000)
        #expect(s.p50 >= 0.0006 && s.p50 <= 0.0006 * 17 / 16)   // the 500th of 1000: 0.6 ms
        #expect(s.p99 >= 0.001 && s.p99 <= 0.001 * 17 / 16)
        #expect(s.max == 0.25)
        #expect(s.windowSeconds == 10)
        #expect(s.started == 1000 && s.skipped == 3)
    }

    @Test("samples older than the window are gone; an empty window reports zeros")
    func expiry() {
        var w = LatenessWindow(slots: 10)
        w.record(latenessNs: 5 * Self.ms, nowNs: 500 * Self.ms)     // second 0
        w.record(latenessNs: 1 * Self.ms, nowNs: 9_000 * Self.ms)   // second 9
        // At 10.5 s the window is seconds 1 … 10.
        let a = LatenessWindow.snapshot([w], nowNs: 10_500 * Self.ms, started: 2, skipped: 0)
        #expect(a.probes == 1 && a.max == 0.001)
        let b = LatenessWindow.snapshot([w], nowNs: 60_000 * Self.ms, started: 2, skipped: 0)
        #expect(b.probes == 0 && b.p99 == 0 && b.max == 0)
        // Second 10 takes second 0's place in the ring: it starts empty.
        w.record(latenessNs: 2 * Self.ms, nowNs: 10_200 * Self.ms)
        let c = LatenessWindow.snapshot([w], nowNs: 10_500 * Self.ms, started: 3, skipped: 0)
        #expect(c.probes == 2 && c.max == 0.002)
    }

    @Test("buckets: exact below 16 µs, at most 1/16 wide above, monotonic")
    func buckets() {
        var last = -1
        for v: Int64 in [0, 1, 15, 16, 17, 31, 32, 33, 1000, 1_000_000, 60_000_000, Int64(1) << 40, Int64(1) << 50] {
            let b = LatenessWindow.bucket(ofMicros: v)
            #expect(b >= last && b < LatenessWindow.bucketCount)
            last = b
            if v < Int64(1) << 40 {
                let up = LatenessWindow.upperMicros(ofBucket: b)
                #expect(up >= v && Double(up - v) <= Double(v) / 16 + 0.5, "\(v) → bucket \(b) up to \(up)")
            }
        }
        #expect(LatenessWindow.bucket(ofMicros: 15) == 15 && LatenessWindow.upperMicros(ofBucket: 15) == 15)
    }
}

@Suite("HTTP status line")
struct StatusLineTests {
    @Test("the code of a status line, nil for anything else")
    func parse() {
        func p(_ s: String) -> Int? { StatusLineHandler.parseStatus(Array(s.utf8)) }
        #expect(p("HTTP/1.1 200 OK") == 200)
        #expect(p("HTTP/1.0 503 Service Unavailable") == 503)
        #expect(p("HTTP/1.1 204") == 204)
        #expect(p("HTTP/1.1  301 Moved") == 301)
        #expect(p("SSH-2.0-OpenSSH") == nil)
        #expect(p("HTTP/1.1 abc") == nil)
        #expect(p("HTTP/1.1") == nil)
        #expect(StatusLineHandler.lineEnd(Array("HTTP/1.1 200 OK\r\nX: y\r\n".utf8)) == 15)
        #expect(StatusLineHandler.lineEnd(Array("HTTP/1.1 200 OK\r".utf8)) == nil)
        #expect(StatusLineHandler.lineEnd(Array("a\rb\r\n".utf8)) == 3)
    }
}

/// The checker against real sockets on loopback: a listening port passes, a closed one is
/// refused and goes down after `fall` probes, the lateness record counts the probes.
/// Waits for outcomes (bounded), asserts no timing.
@Suite("health checker on loopback")
struct HealthCheckerLoopbackTests {
    /// A listening TCP socket on 127.0.0.1 (the kernel completes the handshakes) and its port.
    static func listener() -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        _ = listen(fd, 128)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, UInt16(bigEndian: a.sin_port))
    }

    @Test("tcp probes: open port up, closed port down after fall; lateness counted", arguments: [1, 2])
    func loopback(threads: Int) async throws {
        let open = Self.listener(), closed = Self.listener()
        close(closed.fd)   // nothing listens there any more: refused
        // Accept (and close) every probe's connection: a listener nobody accepts from fills its
        // backlog after ~129 probes, and then SYNs are dropped and the probes time out.
        Self.drain(open.fd)
        defer { shutdown(open.fd, Int32(SHUT_RDWR)); close(open.fd) }
        var c = HealthCheckConfig()
        c.type = .tcp
        c.intervalMs = 50
        c.timeoutMs = 200
        c.fall = 2
        let up = ProbeTarget(address: IPAddress("127.0.0.1")!, port: open.port, check: c)
        let down = ProbeTarget(address: IPAddress("127.0.0.1")!, port: closed.port, check: c)
        let checker = HealthChecker(maxInFlight: 4, threads: threads, logger: Logger(label: "test")) { _, _ in }
        await checker.setTargets([up, down])
        // Every target has its state once setTargets returns (the first probe may already be done).
        let first = await checker.states
        #expect(first[up] != nil && first[down] != nil)
        var states: [ProbeTarget: ProbeState] = [:]
        for _ in 0..<100 {
            states = await checker.states
            if (states[up]?.probes ?? 0) >= 3, states[down]?.healthy == false { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(states[up]?.healthy == true && states[up]?.lastResult == "ok")
        #expect(states[down]?.healthy == false && states[down]?.lastResult == "refused")
        let l = await checker.probeLateness()
        #expect(l.started >= 5 && l.probes >= 5)
        // Removing a target drops its state; the other keeps probing.
        await checker.setTargets([up])
        #expect(await checker.states[down] == nil)
        await checker.stop()
        #expect(await checker.states[up]?.healthy == true)
    }

    @Test("a probe closes with an RST: tcp and http probes leave no TIME_WAIT socket toward the backend")
    func probesLeaveNoTimeWait() async throws {
        let tcp = Self.listener(), http = Self.listener()
        // The servers close only after the prober has: the prober is the side a FIN close
        // would leave in TIME_WAIT.
        Self.holdUntilPeerCloses(tcp.fd, answer: nil)
        Self.holdUntilPeerCloses(http.fd, answer: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        defer {
            shutdown(tcp.fd, Int32(SHUT_RDWR)); close(tcp.fd)
            shutdown(http.fd, Int32(SHUT_RDWR)); close(http.fd)
        }
        var c = HealthCheckConfig()
        c.type = .tcp
        c.intervalMs = 50
        c.timeoutMs = 500
        var h = c
        h.type = .http
        let targets = [ProbeTarget(address: IPAddress("127.0.0.1")!, port: tcp.port, check: c),
                       ProbeTarget(address: IPAddress("127.0.0.1")!, port: http.port, check: h)]
        let checker = HealthChecker(logger: Logger(label: "test")) { _, _ in }
        await checker.setTargets(Set(targets))
        var states: [ProbeTarget: ProbeState] = [:]
        for _ in 0..<100 {
            states = await checker.states
            if targets.allSatisfy({ (states[$0]?.probes ?? 0) >= 5 }) { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        await checker.stop()
        for t in targets {
            #expect((states[t]?.probes ?? 0) >= 5 && states[t]?.lastResult == (t.check.type == .tcp ? "ok" : "status 200"),
                    "\(t.check.type): \(String(describing: states[t]))")
        }
        #expect(Self.timeWaitSockets(toPort: tcp.port) == 0)
        #expect(Self.timeWaitSockets(toPort: http.port) == 0)
    }

    /// Sockets in TIME_WAIT whose remote port is `port` (/proc/net/tcp, this namespace).
    static func timeWaitSockets(toPort port: UInt16) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return -1 }
        let remote = String(format: ":%04X", port)
        return text.split(separator: "\n").dropFirst().filter { line in
            let f = line.split(separator: " ")
            return f.count > 3 && f[2].hasSuffix(remote) && f[3] == "06"
        }.count
    }

    /// Accepts every connection on `fd`, sends `answer` (if any) once the request's blank
    /// line is read, and closes only when the peer has closed (read returns 0 or fails).
    static func holdUntilPeerCloses(_ fd: Int32, answer: String?) {
        Thread.detachNewThread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                Thread.detachNewThread {
                    var got: [UInt8] = []
                    var buf = [UInt8](repeating: 0, count: 1024)
                    var answered = answer == nil
                    while true {
                        let n = read(c, &buf, buf.count)
                        if n <= 0 { break }
                        got += buf[0..<n]
                        if !answered, got.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)), let answer {
                            _ = answer.withCString { write(c, $0, strlen($0)) }
                            answered = true
                        }
                    }
                    close(c)
                }
            }
        }
    }

    /// Accepts and closes every connection on `fd` until `fd` is shut down.
    static func drain(_ fd: Int32) {
        Thread.detachNewThread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                close(c)
            }
        }
    }

    /// Answers every connection on `fd` with `answer` once the request's blank line is read, until `fd` is closed.
    static func serve(_ fd: Int32, _ answer: String) {
        Thread.detachNewThread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                var got: [UInt8] = []
                var buf = [UInt8](repeating: 0, count: 1024)
                while !got.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
                    let n = read(c, &buf, buf.count)
                    if n <= 0 { break }
                    got += buf[0..<n]
                }
                _ = answer.withCString { write(c, $0, strlen($0)) }
                close(c)
            }
        }
    }

    @Test("http probes: 200 passes, 503 fails and goes down after fall, garbage is a bad response")
    func http() async throws {
        let ok = Self.listener(), bad = Self.listener(), junk = Self.listener()
        Self.serve(ok.fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        Self.serve(bad.fd, "HTTP/1.0 503 Service Unavailable\r\n\r\n")
        Self.serve(junk.fd, "SSH-2.0-nope\r\n")
        defer { for l in [ok, bad, junk] { shutdown(l.fd, Int32(SHUT_RDWR)); close(l.fd) } }
        var c = HealthCheckConfig()
        c.type = .http
        c.intervalMs = 50
        c.timeoutMs = 500
        c.fall = 2
        let targets = [ok, bad, junk].map { ProbeTarget(address: IPAddress("127.0.0.1")!, port: $0.port, check: c) }
        let checker = HealthChecker(logger: Logger(label: "test")) { _, _ in }
        await checker.setTargets(Set(targets))
        var states: [ProbeTarget: ProbeState] = [:]
        for _ in 0..<100 {
            states = await checker.states
            if (states[targets[0]]?.probes ?? 0) >= 2, states[targets[1]]?.healthy == false, states[targets[2]]?.healthy == false { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        await checker.stop()
        #expect(states[targets[0]]?.healthy == true && states[targets[0]]?.lastResult == "status 200")
        #expect(states[targets[1]]?.healthy == false && states[targets[1]]?.lastResult == "status 503")
        #expect(states[targets[2]]?.healthy == false && states[targets[2]]?.lastResult == "bad response")
    }
}
