import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// The admin API's unix socket (the default `node.admin`): mode 0660, owner
/// root, group `node.admin_group` (root when unset), like HAProxy's stats
/// socket or Cilium's API socket. Checked before the agent touches the kernel,
/// bound under a temporary name, and moved into place only once its mode and
/// group are set, so no moment exists where others could connect.
public struct AdminSocket: Sendable {
    /// The socket path clients connect to.
    public let path: String
    /// The group allowed to connect besides root.
    public let groupID: gid_t
    /// The temporary name the server binds before ``publish()``.
    public let bindPath: String
    /// The inode of the socket this agent published (nil before ``publish()``).
    private let publishedInode = NIOLockedValueBox<UInt64?>(nil)

    /// Mode of the published socket: owner and group may connect.
    public static let mode: mode_t = 0o660

    /// Resolves the group, creates the socket's directory (0755) if missing,
    /// and removes a stale socket left by a dead agent.
    /// - Throws: ``AgentError`` when the group does not exist, another agent
    ///   answers on `path`, or something other than a socket is there.
    public init(path: String, group: String?) throws {
        self.path = path
        self.bindPath = "\(path).new-\(getpid())"
        if let group {
            guard let gid = Self.groupID(named: group) else {
                throw AgentError("node.admin_group: group '\(group)' does not exist; create it (groupadd \(group)) or leave node.admin_group out (root only)")
            }
            groupID = gid
        } else {
            groupID = 0
        }
        let dir = (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: dir) {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            } catch {
                throw AgentError("node.admin: cannot create the socket's directory \(dir): \(error.localizedDescription)")
            }
        }
        var st = stat()
        guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw AgentError("node.admin: the socket's directory \(dir) is not a directory")
        }
        guard st.st_uid == 0, st.st_mode & 0o022 == 0 else {
            throw AgentError("node.admin: the socket's directory \(dir) is writable by users other than root (mode \(String(st.st_mode & 0o7777, radix: 8)), owner \(st.st_uid)); use a root-only directory such as /run/xdplb")
        }
        try Self.removeStale(path)
    }

    /// Sets mode 0660 and owner root:group on the bound socket, then renames it to ``path``.
    /// - Throws: ``AgentError`` naming the failing step.
    public func publish() throws {
        guard chown(bindPath, 0, groupID) == 0 else { throw AgentError("admin socket \(bindPath): chown root:\(groupID): \(Self.lastError())") }
        guard chmod(bindPath, Self.mode) == 0 else { throw AgentError("admin socket \(bindPath): chmod 660: \(Self.lastError())") }
        try Self.removeStale(path)   // another agent that came up meanwhile keeps its socket
        guard rename(bindPath, path) == 0 else { throw AgentError("admin socket: rename \(bindPath) to \(path): \(Self.lastError())") }
        var st = stat()
        guard lstat(path, &st) == 0 else { throw AgentError("admin socket \(path): \(Self.lastError())") }
        publishedInode.withLockedValue { $0 = UInt64(st.st_ino) }
    }

    /// Removes ``path`` if it is still the socket this agent published (and the temporary name).
    public func remove() {
        unlink(bindPath)
        let inode = publishedInode.withLockedValue { $0 }
        var st = stat()
        if let inode, lstat(path, &st) == 0, UInt64(st.st_ino) == inode { unlink(path) }
    }

    /// A socket nobody answers on is left by a dead agent: remove it. A live one, or a non-socket, is an error.
    static func removeStale(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw AgentError("node.admin: \(path) exists and is not a socket; remove it or choose another path")
        }
        switch UnixSocketConnector.connect(path: path) {
        case .success(let fd):
            close(fd)
            throw AgentError("node.admin: another agent answers on \(path); stop it first, or give this agent its own socket path")
        case .failure(let e) where e.errno == EAGAIN:
            throw AgentError("node.admin: another agent listens on \(path) (its queue is full); stop it first")
        case .failure(let e) where e.errno == ECONNREFUSED:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw AgentError("node.admin: cannot remove the stale socket \(path): \(lastError())")
            }
        case .failure(let e):
            throw AgentError("node.admin: cannot check the existing socket \(path): \(e)")
        }
    }

    static func groupID(named name: String) -> gid_t? {
        var group = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        let rc = getgrnam_r(name, &group, &buffer, buffer.count, &result)
        guard rc == 0, result != nil else { return nil }
        return group.gr_gid
    }

    static func lastError() -> String { "\(String(cString: strerror(errno))) (\(errno))" }
}
