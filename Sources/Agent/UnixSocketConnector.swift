#if canImport(Glibc)
import Glibc
#endif

/// Connects a stream socket to a unix socket path (used by the CLI and by the
/// agent's check for a live agent on its socket).
public enum UnixSocketConnector {
    /// A connected socket, or the errno of `socket`/`connect` (EACCES: no
    /// permission, ECONNREFUSED: nobody listens, ENOENT: no such socket).
    public static func connect(path: String) -> Result<Int32, UnixSocketError> {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else { return .failure(UnixSocketError(errno: ENAMETOOLONG)) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(UnixSocketError(errno: errno)) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            return .failure(UnixSocketError(errno: e))
        }
        return .success(fd)
    }
}

/// Why a unix socket could not be connected.
public struct UnixSocketError: Error, Sendable, CustomStringConvertible {
    /// The errno value.
    public var errno: Int32
    /// `strerror (errno)`.
    public var description: String { "\(String(cString: strerror(errno))) (\(errno))" }
}
