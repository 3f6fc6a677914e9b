import CXdplb
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Routes libbpf's log to the error messages (and to stderr when verbose). Call once at start-up.
public func configureLibbpfLogging(verbose: Bool = false) {
    configureLibbpfOnce()
    xdplb_libbpf_log_init(verbose ? 1 : 0)
}

/// A BPF ELF object opened with libbpf: set map sizes or reuse pinned maps, then load.
public final class BPFObject {
    let handle: OpaquePointer
    private let image: UnsafeMutableRawBufferPointer
    /// The object's name (used in error messages).
    public let name: String
    /// Whether `load()` has succeeded.
    public private(set) var isLoaded = false

    /// Opens an object from its ELF bytes (kept in memory until the object is closed).
    /// - Throws: `BPFError` when the bytes are not a valid BPF object.
    public init(elf: [UInt8], name: String) throws(BPFError) {
        configureLibbpfOnce()
        self.name = name
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: elf.count, alignment: 8)
        buffer.copyBytes(from: elf)
        var opts = bpf_object_open_opts()
        opts.sz = MemoryLayout<bpf_object_open_opts>.size
        let ptr = name.withCString { cname -> OpaquePointer? in
            opts.object_name = cname
            return bpf_object__open_mem(buffer.baseAddress, elf.count, &opts)
        }
        guard let ptr, libbpf_get_error(UnsafeRawPointer(ptr)) == 0 else {
            let code = Glibc.errno
            buffer.deallocate()
            throw BPFError("open BPF object '\(name)'", errno: code)
        }
        image = buffer
        handle = ptr
    }

    /// Opens an object from an ELF file.
    /// - Throws: `BPFError` when the file can't be read or isn't a BPF object.
    public convenience init(path: String) throws(BPFError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BPFError("read BPF object \(path)", errno: ENOENT)
        }
        try self.init(elf: [UInt8](data), name: String(path.split(separator: "/").last ?? "object"))
    }

    deinit {
        bpf_object__close(handle)
        image.deallocate()
    }

    /// True if the object defines a map called `mapName`.
    public func hasMap(_ mapName: String) -> Bool { bpf_object__find_map_by_name(handle, mapName) != nil }

    private func mapPointer(_ mapName: String) throws(BPFError) -> OpaquePointer {
        guard let m = bpf_object__find_map_by_name(handle, mapName) else {
            throw BPFError("find map '\(mapName)' in object '\(name)'", errno: ENOENT)
        }
        return m
    }

    /// Sets a map's size before load (e.g. the conntrack LRU).
    public func setMaxEntries(map mapName: String, _ entries: UInt32) throws(BPFError) {
        try check(bpf_map__set_max_entries(try mapPointer(mapName), entries), "set max_entries of map '\(mapName)'")
    }

    /// True when `existing` has exactly this object's definition of `mapName`
    /// (type, key and value size, max_entries as set now): it can be reused as is.
    public func fits(map mapName: String, _ existing: BPFMap) -> Bool {
        guard let m = bpf_object__find_map_by_name(handle, mapName) else { return false }
        let have = existing.info
        return have.type == UInt32(bpf_map__type(m).rawValue) && have.keySize == bpf_map__key_size(m)
            && have.valueSize == bpf_map__value_size(m) && have.maxEntries == bpf_map__max_entries(m)
    }

    /// Makes the object use an existing map (e.g. one pinned by a previous agent) instead of creating it.
    /// - Throws: `BPFError` (EINVAL) when the existing map's type, key or value
    ///   size differs from this object's definition (e.g. pins of an older xdplb).
    public func reuse(map mapName: String, _ existing: BPFMap) throws(BPFError) {
        let m = try mapPointer(mapName)
        let want = (type: UInt32(bpf_map__type(m).rawValue), key: bpf_map__key_size(m), value: bpf_map__value_size(m))
        let have = existing.info
        if have.type != want.type || have.keySize != want.key || have.valueSize != want.value {
            throw BPFError("reuse pinned map '\(mapName)': it has map type \(have.type), \(have.keySize)-byte keys and \(have.valueSize)-byte values; this program needs type \(want.type), \(want.key) and \(want.value)",
                           errno: EINVAL, hint: "the pins come from another xdplb version: run 'xdplb down' first (this drops conntrack)")
        }
        try check(bpf_map__reuse_fd(m, existing.fd), "reuse pinned map '\(mapName)'",
                  hint: "the pinned map's type or size differs from this program's; run 'xdplb down' first")
    }

    /// Loads every program and map into the kernel (runs the verifier).
    /// - Throws: `BPFError` with the verifier's last message on rejection.
    public func load() throws(BPFError) {
        try check(bpf_object__load(handle), "load BPF object '\(name)'",
                  hint: "is this root with BPF enabled? is /sys/fs/bpf mounted?")
        isLoaded = true
    }

    /// A loaded program by its function name.
    public func program(_ progName: String) throws(BPFError) -> BPFProgram {
        guard let p = bpf_object__find_program_by_name(handle, progName) else {
            throw BPFError("find program '\(progName)' in object '\(name)'", errno: ENOENT)
        }
        let fd = bpf_program__fd(p)
        try check(fd, "program '\(progName)' is not loaded")
        return try BPFProgram(borrowing: fd, name: progName)
    }

    /// A loaded map by name (the handle duplicates the fd, so it outlives this object).
    public func map(_ mapName: String) throws(BPFError) -> BPFMap {
        let fd = bpf_map__fd(try mapPointer(mapName))
        try check(fd, "map '\(mapName)' is not loaded")
        return try BPFMap(duplicating: fd, name: mapName)
    }
}

private let libbpfConfigured: Bool = {
    xdplb_libbpf_log_init(-1)
    _ = libbpf_set_strict_mode(LIBBPF_STRICT_ALL)
    return true
}()

private func configureLibbpfOnce() { _ = libbpfConfigured }
