import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One agent per bpffs pin directory: an exclusive `flock` on the directory
/// itself, held for the agent's life (close-on-exec, so no child keeps it) and
/// released by the kernel when the process dies, however it dies.
///
/// `xdplb down` takes the same lock, so it refuses while an agent runs.
public final class PinDirectoryLock: @unchecked Sendable {
    /// The locked directory.
    public let directory: String
    private let fd: Int32

    private init(directory: String, fd: Int32) {
        self.directory = directory
        self.fd = fd
    }

    deinit { close(fd) }

    /// Why the lock could not be taken.
    public enum Failure: Error, CustomStringConvertible, Sendable {
        /// Another process holds it (its pid when /proc/locks names it).
        case held(directory: String, pid: Int32?)
        /// The directory could not be opened or locked.
        case failed(directory: String, errno: Int32)

        public var description: String {
            switch self {
            case let .held(dir, pid):
                return "another agent (\(pid.map { "pid \($0)" } ?? "pid unknown")) owns \(dir); stop it first (one agent per bpffs directory)"
            case let .failed(dir, e):
                return "lock \(dir): \(String(cString: strerror(e))) (\(e))"
            }
        }
    }

    /// Takes the lock on an existing directory without waiting.
    /// - Throws: `Failure.held` naming the owner's pid when another process has it.
    public static func acquire(_ directory: String) throws(Failure) -> PinDirectoryLock {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .failed(directory: directory, errno: errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            let owner = e == EWOULDBLOCK ? holder(fd: fd) : nil
            close(fd)
            throw e == EWOULDBLOCK ? .held(directory: directory, pid: owner) : .failed(directory: directory, errno: e)
        }
        return PinDirectoryLock(directory: directory, fd: fd)
    }

    /// The pid holding a flock on the file behind `fd`, from /proc/locks
    /// (`N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF`, major and minor in hex).
    static func holder(fd: Int32) -> Int32? {
        var st = stat()
        guard fstat(fd, &st) == 0, let text = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return nil }
        let dev = UInt64(st.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        func hex2(_ v: UInt64) -> String { let h = String(v, radix: 16); return h.count < 2 ? "0" + h : h }
        let want = "\(hex2(major)):\(hex2(minor)):\(UInt64(st.st_ino))"
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 6, f[1] == "FLOCK", f[5] == want[...] else { continue }
            return Int32(f[4])
        }
        return nil
    }
}
