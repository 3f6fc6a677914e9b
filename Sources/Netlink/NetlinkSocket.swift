#if canImport(Glibc)
import Glibc
#endif

/// A failed netlink request: what was asked, and the kernel's errno (or a local reason).
public struct NetlinkError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The request, e.g. `add route 10.0.0.0/24 table 4242`.
    public var operation: String
    /// The errno the kernel (or the socket layer) answered; 0 for a malformed answer.
    public var code: Int32
    /// A short reason when `code` is 0 (malformed or oversized answer).
    public var detail: String

    /// An error for `operation`.
    public init(operation: String, code: Int32, detail: String = "") {
        self.operation = operation
        self.code = code
        self.detail = detail
    }

    /// The object does not exist (ENOENT, ESRCH, ENODEV): deleting it again is harmless.
    public var isNotFound: Bool { code == ENOENT || code == ESRCH || code == ENODEV }
    /// The object exists already (EEXIST): an add without `replace`.
    public var alreadyExists: Bool { code == EEXIST }
    /// The kernel did not answer within the socket's receive timeout.
    public var isTimeout: Bool { code == EAGAIN || code == EWOULDBLOCK }

    /// `operation: strerror (errno N)` or `operation: detail`.
    public var description: String {
        if code == 0 { return "\(operation): \(detail)" }
        let reason = isTimeout ? "no answer from the kernel within the netlink timeout" : String(cString: strerror(code))
        return "\(operation): \(reason) (\(code))"
    }
}

/// Constants of the rtnetlink UAPI (linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h,
/// linux/if_link.h). These are kernel ABI and never change; Swift's Glibc module does not import them.
enum NL {
    static let route: Int32 = 0                 // NETLINK_ROUTE
    static let request: UInt16 = 0x1, multi: UInt16 = 0x2, ack: UInt16 = 0x4
    static let root: UInt16 = 0x100, match: UInt16 = 0x200
    static var dump: UInt16 { root | match }
    static let replace: UInt16 = 0x100, excl: UInt16 = 0x200, create: UInt16 = 0x400
    static let msgError: UInt16 = 2, msgDone: UInt16 = 3
    static let newLink: UInt16 = 16, getLink: UInt16 = 18, setLink: UInt16 = 19
    static let newRoute: UInt16 = 24, delRoute: UInt16 = 25, getRoute: UInt16 = 26
    static let newNeigh: UInt16 = 28, getNeigh: UInt16 = 30
    // rtattr types (RTA_*)
    static let rtaDst: UInt16 = 1, rtaOif: UInt16 = 4, rtaGateway: UInt16 = 5, rtaPriority: UInt16 = 6
    static let rtaPrefsrc: UInt16 = 7, rtaTable: UInt16 = 15
    // NDA_*
    static let ndaDst: UInt16 = 1, ndaLladdr: UInt16 = 2
    // IFLA_*
    static let iflaAddress: UInt16 = 1, iflaIfname: UInt16 = 3, iflaMtu: UInt16 = 4
    static let rtmFCloned: UInt32 = 0x200
    static let headerSize = 16
}

/// Little helpers for the wire format: native-endian integers, 4-byte alignment.
extension Array where Element == UInt8 {
    mutating func append<T: FixedWidthInteger>(native v: T) {
        Swift.withUnsafeBytes(of: v) { append(contentsOf: $0) }
    }
    mutating func appendAttribute(_ type: UInt16, _ payload: [UInt8]) {
        append(native: UInt16(4 + payload.count))
        append(native: type)
        append(contentsOf: payload)
        while count % 4 != 0 { append(0) }
    }
    func native<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T? {
        guard offset >= 0, offset + MemoryLayout<T>.size <= count else { return nil }
        var v: T = 0
        Swift.withUnsafeMutableBytes(of: &v) { dst in
            for i in 0..<MemoryLayout<T>.size { dst[i] = self[offset + i] }
        }
        return v
    }
}

/// Parses the rtattr list in `bytes[from...]` into type → payload (the last one wins).
func parseAttributes(_ bytes: [UInt8], from: Int) -> [UInt16: [UInt8]] {
    var out: [UInt16: [UInt8]] = [:]
    var off = from
    while off + 4 <= bytes.count {
        guard let len = bytes.native(UInt16.self, at: off), let type = bytes.native(UInt16.self, at: off + 2),
              Int(len) >= 4, off + Int(len) <= bytes.count else { break }
        out[type & 0x3fff] = Array(bytes[(off + 4)..<(off + Int(len))])
        off += (Int(len) + 3) & ~3
    }
    return out
}

/// One netlink message of an answer: its type and its payload (after the 16-byte header).
struct NetlinkMessage {
    var type: UInt16
    var payload: [UInt8]
}

/// A NETLINK_ROUTE socket with a receive timeout and bounded answers. Not thread-safe: one request at a time.
final class NetlinkSocket {
    private let fd: Int32
    private var sequence: UInt32
    private var portID: UInt32 = 0
    /// Largest answer a dump may return before the request is abandoned (a routing table of ~1M routes).
    static let maxAnswerBytes = 256 << 20
    private static let bufferSize = 1 << 20

    init(timeoutMilliseconds: Int) throws(NetlinkError) {
        let s = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NL.route)
        guard s >= 0 else { throw NetlinkError(operation: "open netlink socket", code: errno) }
        fd = s
        var tv = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        // NETLINK_EXT_ACK (11): error strings from the kernel; NETLINK_GET_STRICT_CHK (12) is not needed.
        setsockopt(fd, 270 /* SOL_NETLINK */, 11, &one, socklen_t(MemoryLayout<Int32>.size))
        // struct sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups; } (Glibc's module lacks it): pid 0 = kernel assigns.
        var addr = Self.sockaddrNL()
        let bound = addr.withUnsafeBytes { bind(s, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
        guard bound == 0 else {
            let e = errno
            close(fd)
            throw NetlinkError(operation: "bind netlink socket", code: e)
        }
        var len = socklen_t(addr.count)
        _ = addr.withUnsafeMutableBytes { getsockname(s, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &len) }
        portID = addr.native(UInt32.self, at: 4) ?? 0
        sequence = UInt32(truncatingIfNeeded: time(nil))
    }

    deinit { close(fd) }

    /// A `struct sockaddr_nl` for AF_NETLINK with pid 0 and no groups (the kernel, or "assign me one" for bind).
    private static func sockaddrNL() -> [UInt8] {
        var a: [UInt8] = []
        a.append(native: UInt16(AF_NETLINK))
        a += [UInt8](repeating: 0, count: 10)
        return a
    }

    /// Sends one request and collects the answer: every message until NLMSG_DONE for a dump,
    /// the ack (or the single answer) otherwise. Throws the kernel's errno from NLMSG_ERROR.
    func request(_ type: UInt16, flags: UInt16, body: [UInt8], operation: @autoclosure () -> String) throws(NetlinkError) -> [NetlinkMessage] {
        sequence &+= 1
        let seq = sequence
        var msg: [UInt8] = []
        msg.append(native: UInt32(NL.headerSize + body.count))
        msg.append(native: type)
        msg.append(native: NL.request | flags)
        msg.append(native: seq)
        msg.append(native: UInt32(0))
        msg += body
        let dst = Self.sockaddrNL()
        let sent = msg.withUnsafeBytes { buf in
            dst.withUnsafeBytes {
                sendto(fd, buf.baseAddress, buf.count, 0, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
            }
        }
        guard sent == msg.count else { throw NetlinkError(operation: operation(), code: sent < 0 ? errno : EIO) }

        let isDump = flags & NL.dump == NL.dump
        let wantsAck = flags & NL.ack != 0
        var out: [NetlinkMessage] = []
        var total = 0
        var buffer = [UInt8](repeating: 0, count: Self.bufferSize)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw NetlinkError(operation: operation(), code: errno)
            }
            if n == 0 { throw NetlinkError(operation: operation(), code: 0, detail: "netlink socket closed") }
            total += n
            if total > Self.maxAnswerBytes {
                throw NetlinkError(operation: operation(), code: 0, detail: "answer larger than \(Self.maxAnswerBytes >> 20) MiB")
            }
            let bytes = Array(buffer[0..<n])
            var off = 0
            while off + NL.headerSize <= n {
                guard let len = bytes.native(UInt32.self, at: off), let mtype = bytes.native(UInt16.self, at: off + 4),
                      let mseq = bytes.native(UInt32.self, at: off + 8), let mpid = bytes.native(UInt32.self, at: off + 12),
                      Int(len) >= NL.headerSize, off + Int(len) <= n else {
                    throw NetlinkError(operation: operation(), code: 0, detail: "malformed netlink answer")
                }
                let payload = Array(bytes[(off + NL.headerSize)..<(off + Int(len))])
                off += (Int(len) + 3) & ~3
                // A late answer to an earlier request that timed out: skip it.
                guard mseq == seq, mpid == portID || mpid == 0 else { continue }
                switch mtype {
                case NL.msgDone:
                    return out
                case NL.msgError:
                    let code = payload.native(Int32.self, at: 0) ?? -EIO
                    if code != 0 { throw NetlinkError(operation: operation(), code: -code) }
                    return out // the ack
                default:
                    out.append(NetlinkMessage(type: mtype, payload: payload))
                    if !isDump && !wantsAck { return out }
                }
            }
        }
    }
}
