import CXdplb
#if canImport(Glibc)
import Glibc
#endif

/// A failed BPF operation: what was attempted, on what, the errno and libbpf's last message.
public struct BPFError: Error, CustomStringConvertible, Sendable {
    /// The operation, e.g. "load object 'balancer'" or "update map 'xdplb_vips'".
    public let operation: String
    /// The errno the kernel or libbpf reported (positive).
    public let errno: Int32
    /// libbpf's last warning line for this failure, if any (often the verifier's reason).
    public let libbpfMessage: String
    /// A hint the operator can act on, if we know one.
    public let hint: String?

    /// Creates an error for `operation` from an errno value (sign ignored).
    public init(_ operation: String, errno code: Int32, hint: String? = nil) {
        self.operation = operation
        self.errno = code < 0 ? -code : code
        var buf = [CChar](repeating: 0, count: 512)
        xdplb_libbpf_last_message(&buf, buf.count)
        self.libbpfMessage = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.hint = hint
    }

    /// `operation: strerror (errno)[; libbpf: …][; hint]`.
    public var description: String {
        var s = "\(operation): \(String(cString: strerror(errno))) (\(errno))"
        if !libbpfMessage.isEmpty { s += "; libbpf: \(libbpfMessage)" }
        if let hint { s += "; \(hint)" }
        return s
    }
}

/// Turns a libbpf-style return (negative errno or -1 with errno set) into a thrown BPFError.
/// - Returns: `rc` when it is not negative (an fd or 0).
@discardableResult
public func check(_ rc: Int32, _ operation: @autoclosure () -> String, hint: String? = nil) throws(BPFError) -> Int32 {
    if rc >= 0 { return rc }
    let code = rc == -1 ? Glibc.errno : -rc
    throw BPFError(operation(), errno: code, hint: hint)
}
