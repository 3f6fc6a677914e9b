import CXdplb
#if canImport(Glibc)
import Glibc
#endif

/// How an XDP program is attached.
public enum XDPMode: String, Sendable, CaseIterable {
    /// In the driver (veth, most NICs).
    case native
    /// In the kernel's generic path (any device, slower).
    case generic

    var flags: UInt32 {
        switch self {
        case .native: UInt32(XDP_FLAGS_DRV_MODE)
        case .generic: UInt32(XDP_FLAGS_SKB_MODE)
        }
    }
}

/// A bpf_link: an attachment that lives as long as a fd or a pin holds it.
public final class BPFLink: @unchecked Sendable {
    /// The link's fd (owned).
    public let fd: Int32

    init(owning fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// Attaches `program` to the interface `ifname` with XDP in `mode`.
    /// - Throws: `BPFError` naming the interface and mode, with a hint for unsupported native mode.
    public static func attachXDP(_ program: BPFProgram, interface ifname: String, mode: XDPMode) throws(BPFError) -> BPFLink {
        let ifindex = if_nametoindex(ifname)
        guard ifindex != 0 else { throw BPFError("attach xdp to '\(ifname)': no such interface", errno: ENODEV) }
        let rc = xdplb_link_create_xdp(program.fd, Int32(ifindex), mode.flags)
        if rc < 0 {
            let code = rc == -1 ? Glibc.errno : -rc
            var hint = mode == .native ? "try xdp_mode: generic" : nil
            // ERANGE/EINVAL in native mode is most often a frame size the driver's XDP can't take.
            if mode == .native, code == ERANGE || code == EINVAL, let mtu = interfaceMTU(ifname), mtu > 1500 {
                hint = "'\(ifname)' has MTU \(mtu), more than this driver's native XDP takes (a frame must fit one page); " +
                    "lower the MTU or use xdp_mode: generic"
            }
            throw BPFError("attach xdp to '\(ifname)' in \(mode.rawValue) mode", errno: code, hint: hint)
        }
        return BPFLink(owning: rc)
    }

    /// The interface's MTU in this network namespace (SIOCGIFMTU; nil when unknown).
    static func interfaceMTU(_ ifname: String) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var req = ifreq()
        let name = Array(ifname.utf8.prefix(Int(IFNAMSIZ) - 1))
        withUnsafeMutableBytes(of: &req.ifr_ifrn.ifrn_name) { $0.copyBytes(from: name) }
        guard ioctl(fd, UInt(SIOCGIFMTU), &req) == 0 else { return nil }
        return Int(req.ifr_ifru.ifru_mtu)
    }

    /// Opens a link pinned at `path`.
    public static func openPinned(_ path: String) throws(BPFError) -> BPFLink {
        BPFLink(owning: try check(bpf_obj_get(path), "open pinned link at \(path)"))
    }

    /// Pins the link at `path`, so the attachment outlives this process.
    public func pin(at path: String) throws(BPFError) {
        try check(bpf_obj_pin(fd, path), "pin link at \(path)")
    }

    /// Atomically replaces the attached program (no packet sees neither).
    public func update(program: BPFProgram) throws(BPFError) {
        try check(bpf_link_update(fd, program.fd, nil), "replace program on link")
    }

    /// Detaches the program from its hook (the link object stays until closed).
    public func detach() throws(BPFError) {
        try check(bpf_link_detach(fd), "detach link")
    }

    /// Kernel facts about the link.
    public struct Info: Sendable {
        /// Kernel link id.
        public var id: UInt32
        /// Id of the attached program.
        public var programID: UInt32
        /// Interface index (0 once detached).
        public var ifindex: UInt32
    }

    /// Reads the link's id, program id and interface.
    public func info() throws(BPFError) -> Info {
        var i = Info(id: 0, programID: 0, ifindex: 0)
        try check(xdplb_link_info(fd, &i.id, &i.programID, &i.ifindex), "read link info")
        return i
    }
}

/// bpffs helpers: mount, directories, unpinning.
public enum BPFFS {
    /// Mounts bpffs at /sys/fs/bpf if nothing is mounted there.
    public static func ensureMounted(_ root: String = "/sys/fs/bpf") throws(BPFError) {
        var st = statfs()
        if statfs(root, &st) == 0, st.f_type == 0xcafe4a11 { return }
        mkdir(root, 0o755)
        try check(mount("bpf", root, "bpf", 0, nil), "mount bpffs at \(root)", hint: "run as root")
    }

    /// Creates `dir` (and parents) on bpffs.
    public static func makeDirectory(_ dir: String) throws(BPFError) {
        var path = ""
        for part in dir.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o700) != 0 && Glibc.errno != EEXIST {
                throw BPFError("create bpffs directory \(path)", errno: Glibc.errno)
            }
        }
    }

    /// True when something is pinned at `path`.
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Removes a pin (missing is fine).
    public static func unpin(_ path: String) throws(BPFError) {
        if unlink(path) != 0 && Glibc.errno != ENOENT {
            throw BPFError("unpin \(path)", errno: Glibc.errno)
        }
    }

    /// Removes an empty pin directory (missing is fine).
    public static func removeDirectory(_ path: String) throws(BPFError) {
        if rmdir(path) != 0 && Glibc.errno != ENOENT {
            throw BPFError("remove bpffs directory \(path)", errno: Glibc.errno)
        }
    }
}
