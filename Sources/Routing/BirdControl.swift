import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A client of bird's control socket (the text protocol `birdc` speaks: numbered
/// reply lines, `0000` at the end). Reads only; used for session states in
/// `xdplb status`. Every call has a deadline: a stuck daemon never hangs the agent.
public struct BirdControl: Sendable {
    /// The control socket path.
    public let socketPath: String
    /// Per-call deadline, seconds.
    public var timeoutSeconds: Double = 1

    /// A client for the socket at `socketPath`.
    public init(socketPath: String) { self.socketPath = socketPath }

    /// One protocol instance as `show protocols` lists it.
    public struct ProtocolRow: Sendable, Equatable, Codable {
        /// Instance name (a BGP session's name).
        public var name: String
        /// `BGP`, `BFD`, `Kernel`, `Device` …
        public var proto: String
        /// `up`, `down`, `start` …
        public var state: String
        /// When it entered the state, as bird prints it.
        public var since: String
        /// BGP: `Established`, `Active`, `Connect` … with details.
        public var info: String
    }

    /// One BFD session as `show bfd sessions` lists it.
    public struct BFDRow: Sendable, Equatable, Codable {
        /// The neighbour address.
        public var address: String
        /// The interface.
        public var interface: String
        /// `Up`, `Down`, `Init`, `AdminDown`.
        public var state: String
    }

    /// An error talking to the daemon (not running, refused, timed out, bad reply).
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Sends one command and returns the reply's text lines (codes stripped).
    public func command(_ cmd: String) throws(Failure) -> [String] {
        guard socketPath.utf8.count < 108 else { throw Failure(description: "control socket path \(socketPath) is too long") }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - Double(Int(timeoutSeconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { buf in
            for (i, b) in socketPath.utf8.enumerated() { buf[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            let why = e == ENOENT || e == ECONNREFUSED ? "daemon not running" : "cannot connect"
            throw Failure(description: "\(why) (\(socketPath): \(String(cString: strerror(e))))")
        }
        var pending = [UInt8]()
        var lines: [String] = []
        var sent = false
        let deadline = Date().addingTimeInterval(timeoutSeconds * 2)
        var buf = [UInt8](repeating: 0, count: 16384)
        while Date() < deadline {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { throw Failure(description: n == 0 ? "daemon closed the control socket" : "no reply from the daemon within \(timeoutSeconds) s") }
            pending += buf[0..<n]
            while let nl = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                let (code, last, text) = Self.split(line)
                if !sent {
                    // The greeting, "0001 BIRD 2.0.12 ready.", then our command.
                    guard code == "0001" else { throw Failure(description: "unexpected greeting '\(line.prefix(80))'") }
                    let c = cmd + "\n"
                    _ = c.withCString { send(fd, $0, strlen($0), 0) }
                    sent = true
                    continue
                }
                if code == "0000" { return lines }
                if let code, code.hasPrefix("8") || code.hasPrefix("9") {
                    throw Failure(description: "daemon error \(code): \(text)")
                }
                if code != "2002" && code != "2013" { lines.append(text) }   // skip table headers
                _ = last
            }
            if lines.count > 100_000 { throw Failure(description: "reply too long") }
        }
        throw Failure(description: "no complete reply from the daemon within \(timeoutSeconds * 2) s")
    }

    /// `NNNN-text` (more follows), `NNNN text` (last of its code) or ` text` (continuation).
    static func split(_ line: String) -> (code: String?, last: Bool, text: String) {
        let u = Array(line.utf8)
        if u.count >= 5, u[0..<4].allSatisfy({ $0 >= 48 && $0 <= 57 }), u[4] == 45 || u[4] == 32 {
            return (String(decoding: u[0..<4], as: UTF8.self), u[4] == 32, String(decoding: u[5...], as: UTF8.self))
        }
        if u.count == 4, u.allSatisfy({ $0 >= 48 && $0 <= 57 }) { return (line, true, "") }
        return (nil, false, u.first == 32 ? String(line.dropFirst()) : line)
    }

    /// `show protocols`.
    public func protocols() throws(Failure) -> [ProtocolRow] {
        try command("show protocols").compactMap(Self.parseProtocol)
    }

    /// `show bfd sessions` (empty when no BFD protocol runs).
    public func bfdSessions() throws(Failure) -> [BFDRow] {
        let lines: [String]
        do { lines = try command("show bfd sessions") } catch {
            if error.description.contains("error") { return [] }   // no BFD protocol configured
            throw error
        }
        return lines.compactMap { l in
            let f = l.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard f.count >= 3, f[0].contains(".") || f[0].contains(":"), f[0].first?.isHexDigit == true else { return nil }
            return BFDRow(address: f[0], interface: f[1], state: f[2])
        }
    }

    /// A row of `show protocols`: name proto table state since [info…]; `since` may be
    /// one token (`08:00:01.123`) or two (`2026-12-02 08:00:01`).
    static func parseProtocol(_ line: String) -> ProtocolRow? {
        let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard f.count >= 5, f[0] != "Name" else { return nil }
        var i = 5
        var since = f[4]
        if f.count > 5, f[5].contains(":"), f[5].first?.isNumber == true, f[4].contains("-") {
            since += " " + f[5]
            i = 6
        }
        return ProtocolRow(name: f[0], proto: f[1], state: f[3], since: since, info: f.dropFirst(i).joined(separator: " "))
    }
}
