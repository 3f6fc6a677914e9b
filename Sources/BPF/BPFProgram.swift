import CXdplb
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An XDP verdict.
public enum XDPAction: UInt32, Sendable, CustomStringConvertible {
    case aborted = 0, drop = 1, pass = 2, tx = 3, redirect = 4

    /// Lower-case name: `pass`, `tx`, …
    public var description: String {
        switch self {
        case .aborted: "aborted"
        case .drop: "drop"
        case .pass: "pass"
        case .tx: "tx"
        case .redirect: "redirect"
        }
    }
}

/// The outcome of one BPF_PROG_TEST_RUN.
public struct TestRunResult: Sendable {
    /// The program's return value as an XDP action (nil if out of range).
    public var action: XDPAction?
    /// The raw return value.
    public var returnValue: UInt32
    /// The packet as the program left it.
    public var output: [UInt8]
    /// Kernel-measured average duration per repetition, in ns.
    public var durationNs: UInt32
}

/// A loaded BPF program by fd.
public final class BPFProgram: @unchecked Sendable {
    /// The program's fd (owned).
    public let fd: Int32
    /// The program's name.
    public let name: String

    /// Duplicates a program fd (e.g. one owned by a `BPFObject`).
    public init(borrowing fd: Int32, name: String) throws(BPFError) {
        self.fd = try check(fcntl(fd, F_DUPFD_CLOEXEC, 0), "duplicate fd of program '\(name)'")
        self.name = name
    }

    /// Takes ownership of `fd`.
    public init(owning fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    /// Opens a program by kernel id.
    public static func open(id: UInt32) throws(BPFError) -> BPFProgram {
        let fd = try check(bpf_prog_get_fd_by_id(id), "open program id \(id)")
        let p = BPFProgram(owning: fd, name: "")
        let name = (try? p.info().name) ?? "prog\(id)"
        return BPFProgram(owning: try check(fcntl(fd, F_DUPFD_CLOEXEC, 0), "dup"), name: name)
    }

    deinit { close(fd) }

    /// Kernel facts about a program.
    public struct Info: Sendable {
        /// Kernel program id.
        public var id: UInt32
        /// Name (truncated by the kernel to 15 characters).
        public var name: String
        /// Translated (post-verifier) size in bytes; divide by 8 for instructions.
        public var xlatedBytes: UInt32
        /// JIT-compiled size in bytes.
        public var jitedBytes: UInt32
        /// Instructions the verifier processed.
        public var verifiedInstructions: UInt32
        /// The kernel's tag (hash of the instructions), hex: equal tags = same program.
        public var tag: String
    }

    /// Reads id, sizes and verifier statistics.
    public func info() throws(BPFError) -> Info {
        var i = Info(id: 0, name: "", xlatedBytes: 0, jitedBytes: 0, verifiedInstructions: 0, tag: "")
        var nameBuf = [CChar](repeating: 0, count: 32)
        var tag = [UInt8](repeating: 0, count: 8)
        try check(xdplb_prog_info(fd, &i.id, &i.xlatedBytes, &i.jitedBytes, &i.verifiedInstructions, &nameBuf, nameBuf.count, &tag),
                  "read info of program '\(name)'")
        i.tag = tag.map { String(format: "%02x", $0) }.joined()
        i.name = String(decoding: nameBuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return i
    }

    /// The longest frame BPF_PROG_TEST_RUN hands an XDP program whole: one page less
    /// XDP_PACKET_HEADROOM (256) and the skb_shared_info tail (320 on 64-bit). Longer
    /// frames are split into fragments and a program that is not frags-aware sees only
    /// the first part (3,520 bytes on 4 KiB pages).
    public static var testRunLinearLimit: Int { Int(sysconf(Int32(_SC_PAGESIZE))) - 256 - 320 }

    /// Runs the program once (or `repeat` times on the same buffer) on `packet` with BPF_PROG_TEST_RUN.
    /// - Parameters:
    ///   - packet: the frame, starting at the Ethernet header.
    ///   - repeat: repetitions; note they run on the buffer as the previous run left it.
    ///   - ingressIfindex: the ifindex the program sees as ingress (0 = the kernel's default, loopback).
    public func testRun(_ packet: [UInt8], repeat: UInt32 = 1, ingressIfindex: UInt32 = 0) throws(BPFError) -> TestRunResult {
        var out = [UInt8](repeating: 0, count: packet.count + 512)
        var outLen: UInt32 = 0
        var ret: UInt32 = 0
        var dur: UInt32 = 0
        let cap = UInt32(out.count)
        let rc = packet.withUnsafeBytes { inp in
            out.withUnsafeMutableBytes { o in
                xdplb_test_run_xdp(fd, inp.baseAddress, UInt32(inp.count), o.baseAddress, cap, &outLen, `repeat`,
                                   ingressIfindex, &ret, &dur)
            }
        }
        try check(rc, "test run of program '\(name)'")
        return TestRunResult(action: XDPAction(rawValue: ret), returnValue: ret,
                             output: Array(out.prefix(Int(outLen))), durationNs: dur)
    }

    /// Pins the program at `path`.
    public func pin(at path: String) throws(BPFError) {
        try check(bpf_obj_pin(fd, path), "pin program '\(name)' at \(path)")
    }
}
