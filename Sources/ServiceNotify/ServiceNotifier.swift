#if canImport(Glibc)
import Glibc
#endif

/// Tells systemd how the service is doing (the `sd_notify` protocol of
/// `Type=notify` units): one datagram of `KEY=VALUE` lines to the unix socket
/// named by `$NOTIFY_SOCKET` (an `@` prefix names an abstract socket).
///
/// Without `$NOTIFY_SOCKET` (not started by systemd) every call does nothing.
/// Sending never blocks and never fails the caller: a lost notification is
/// what systemd's own timeouts are for.
public struct ServiceNotifier: Sendable {
    /// The socket address systemd gave, as written in `$NOTIFY_SOCKET`.
    public let socketPath: String?
    /// The watchdog interval systemd asks for (`$WATCHDOG_USEC`, when meant for this process), in seconds.
    public let watchdogInterval: Double?

    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` of this process.
    public init() {
        let env = { (name: String) -> String? in getenv(name).map { String(cString: $0) } }
        self.init(socketPath: env("NOTIFY_SOCKET"), watchdogUsec: env("WATCHDOG_USEC"), watchdogPid: env("WATCHDOG_PID"),
                  ownPid: Int(getpid()))
    }

    /// A notifier for the given environment values (for tests).
    public init(socketPath: String?, watchdogUsec: String?, watchdogPid: String?, ownPid: Int) {
        self.socketPath = (socketPath?.isEmpty ?? true) ? nil : socketPath
        if let usec = watchdogUsec.flatMap({ UInt64($0) }), usec > 0,
           watchdogPid.map({ Int($0) == ownPid }) ?? true {
            watchdogInterval = Double(usec) / 1e6
        } else {
            watchdogInterval = nil
        }
    }

    /// Start-up is complete: the program is attached, the maps are written and the admin API answers.
    public func ready(status: String) { send(["READY=1", "STATUS=" + status, "MAINPID=\(getpid())"]) }

    /// A reload starts (`RELOADING=1`); `ready(status:)` ends it.
    public func reloading() { send(["RELOADING=1"]) }

    /// The service is stopping (withdrawing announcements, then exiting).
    public func stopping(status: String) { send(["STOPPING=1", "STATUS=" + status]) }

    /// A one-line status for `systemctl status`.
    public func status(_ text: String) { send(["STATUS=" + text]) }

    /// The watchdog keep-alive; call it at least twice per `watchdogInterval`.
    public func watchdog() {
        guard watchdogInterval != nil else { return }
        send(["WATCHDOG=1"])
    }

    /// Sends one datagram of lines; returns false when it could not be sent (or there is no socket).
    @discardableResult
    public func send(_ lines: [String]) -> Bool {
        guard let path = socketPath else { return false }
        // Control characters other than the separating newline would corrupt the message.
        let text = lines.map { String($0.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7f }) }.joined(separator: "\n")
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }   // abstract namespace
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let sent = text.withCString { msg in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, msg, strlen(msg), Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT), $0, len)
                }
            }
        }
        return sent >= 0
    }
}
