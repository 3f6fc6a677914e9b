import NetAddress

/// Where the admin API listens, and where the CLI finds it: a unix socket
/// (the default, file permissions decide who may connect) or TCP (opt-in;
/// writes need the bearer token).
public enum AdminEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// A unix domain socket at an absolute path.
    case unix(path: String)
    /// TCP on `host` (an IP address or `localhost`) and `port`.
    case tcp(host: String, port: Int)

    /// The default socket: root (and `node.admin_group`) only.
    public static let defaultSocketPath = "/run/xdplb/admin.sock"

    /// Longest socket path accepted: sun_path holds 108 bytes, and the agent
    /// binds a temporary name (`PATH.new-PID`) next to it first.
    public static let maxSocketPathBytes = 90

    /// Parses `unix:/path`, `/path`, `host:port` or `[v6]:port`.
    /// - Throws: ``AdminEndpointError`` with the reason.
    public init(parsing s: String) throws(AdminEndpointError) {
        if s.hasPrefix("unix:") || s.hasPrefix("/") {
            let path = s.hasPrefix("unix:") ? String(s.dropFirst(5)) : s
            guard path.hasPrefix("/") else { throw AdminEndpointError("\(s): a socket path must be absolute") }
            guard path.utf8.count <= Self.maxSocketPathBytes else {
                throw AdminEndpointError("socket path is \(path.utf8.count) bytes; at most \(Self.maxSocketPathBytes) fit a unix socket address")
            }
            guard !path.hasSuffix("/"), !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }),
                  !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
                throw AdminEndpointError("\(s): a socket path must name a file, without '.', '..' or control characters")
            }
            self = .unix(path: path)
            return
        }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else {
            throw AdminEndpointError("'\(s.prefix(80))' is neither a socket path (/path or unix:/path) nor host:port")
        }
        var host = String(s[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard host == "localhost" || IPAddress(host) != nil else {
            throw AdminEndpointError("'\(s.prefix(80))': '\(host.prefix(60))' is not an IP address or localhost")
        }
        self = .tcp(host: host, port: port)
    }

    /// True for a TCP endpoint on a loopback address.
    public var isLoopback: Bool {
        guard case .tcp(let host, _) = self else { return false }
        return host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    /// `unix:/path` or `host:port` (`[v6]:port`).
    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

/// Why an admin address was refused.
public struct AdminEndpointError: Error, Sendable, CustomStringConvertible {
    /// The reason, as a sentence fragment.
    public var description: String
    init(_ description: String) { self.description = description }
}
