import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The bearer token that TCP admin writes (and unredacted reads) need,
/// read once at start from `node.admin_token_file`.
public struct AdminToken: Sendable {
    /// Shortest token accepted, in bytes.
    public static let minimumBytes = 16

    let bytes: [UInt8]

    /// Reads the token from `path`: a regular file no other user can read or
    /// write, holding one line of at least ``minimumBytes`` printable bytes.
    /// - Throws: ``AgentError`` naming the file and what to fix.
    public init(file path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw AgentError("node.admin_token_file \(path): \(String(cString: strerror(errno))) (\(errno))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw AgentError("node.admin_token_file \(path): not a regular file")
        }
        let mode = st.st_mode & 0o777
        guard mode & 0o007 == 0 else {
            throw AgentError("node.admin_token_file \(path): mode \(String(mode, radix: 8)) lets other users read or write it; chmod 600 (or 640) it")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AgentError("node.admin_token_file \(path): cannot be read")
        }
        var token = Array(data)
        while let last = token.last, last == 0x0a || last == 0x0d || last == 0x20 || last == 0x09 { token.removeLast() }
        guard token.count >= Self.minimumBytes else {
            throw AgentError("node.admin_token_file \(path): the token is \(token.count) bytes; use at least \(Self.minimumBytes) (e.g. openssl rand -hex 32)")
        }
        guard token.allSatisfy({ (0x21...0x7e).contains($0) }) else {
            throw AgentError("node.admin_token_file \(path): the token must be one line of printable ASCII without spaces")
        }
        bytes = token
    }

    /// True when `header` is `Bearer <token>`; compares in time independent of
    /// where the first difference is.
    public func accepts(authorization header: String?) -> Bool {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        return Self.constantTimeEqual(Array(header.utf8.dropFirst(7)), bytes)
    }

    /// Equality whose running time depends only on the lengths.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            diff |= x ^ y
        }
        return diff == 0
    }
}
