import Foundation
import Glibc
import ServiceNotify
import Testing

/// A bound unix datagram socket standing in for systemd's notify socket.
private final class NotifySocket {
    let fd: Int32
    let path: String

    init(abstract: Bool) throws {
        let name = "xdplb-notify-test-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        path = abstract ? "@" + name : NSTemporaryDirectory() + name
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard rc == 0 else { throw POSIXError(.EADDRINUSE) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The next datagram's text, or nil after 2 s.
    func receive() -> String? {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buf, buf.count, 0)
        return n < 0 ? nil : String(decoding: buf[..<n], as: UTF8.self)
    }

    deinit {
        close(fd)
        if !path.hasPrefix("@") { unlink(path) }
    }
}

@Suite struct ServiceNotifierTests {
    @Test func readyReachesAFileSocket() throws {
        let sock = try NotifySocket(abstract: false)
        let n = ServiceNotifier(socketPath: sock.path, watchdogUsec: nil, watchdogPid: nil, ownPid: Int(getpid()))
        n.ready(status: "forwarding 2 VIPs")
        let lines = try #require(sock.receive()).split(separator: "\n").map(String.init)
        #expect(lines == ["READY=1", "STATUS=forwarding 2 VIPs", "MAINPID=\(getpid())"])
    }

    @Test func abstractSocketAndControlCharactersStripped() throws {
        let sock = try NotifySocket(abstract: true)
        let n = ServiceNotifier(socketPath: sock.path, watchdogUsec: nil, watchdogPid: nil, ownPid: 1)
        n.status("bad\nline\u{7}")
        #expect(sock.receive() == "STATUS=badline")
        n.reloading()
        #expect(sock.receive() == "RELOADING=1")
    }

    @Test func watchdogOnlyWhenMeantForThisProcess() throws {
        let sock = try NotifySocket(abstract: false)
        let mine = ServiceNotifier(socketPath: sock.path, watchdogUsec: "30000000", watchdogPid: "42", ownPid: 42)
        #expect(mine.watchdogInterval == 30)
        mine.watchdog()
        #expect(sock.receive() == "WATCHDOG=1")
        let other = ServiceNotifier(socketPath: sock.path, watchdogUsec: "30000000", watchdogPid: "43", ownPid: 42)
        #expect(other.watchdogInterval == nil)
        #expect(ServiceNotifier(socketPath: sock.path, watchdogUsec: "0", watchdogPid: nil, ownPid: 1).watchdogInterval == nil)
        #expect(ServiceNotifier(socketPath: sock.path, watchdogUsec: "junk", watchdogPid: nil, ownPid: 1).watchdogInterval == nil)
    }

    @Test func withoutSystemdNothingIsSent() {
        #expect(!ServiceNotifier(socketPath: nil, watchdogUsec: nil, watchdogPid: nil, ownPid: 1).send(["READY=1"]))
        #expect(!ServiceNotifier(socketPath: "", watchdogUsec: nil, watchdogPid: nil, ownPid: 1).send(["READY=1"]))
        // Too long for sun_path, and a socket nobody listens on: refused quietly.
        #expect(!ServiceNotifier(socketPath: "/" + String(repeating: "x", count: 200), watchdogUsec: nil, watchdogPid: nil, ownPid: 1).send(["READY=1"]))
        #expect(!ServiceNotifier(socketPath: "/nonexistent/notify", watchdogUsec: nil, watchdogPid: nil, ownPid: 1).send(["READY=1"]))
    }
}
