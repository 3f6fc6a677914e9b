import CXdplb
#if canImport(Glibc)
import Glibc
#endif

/// A kernel BPF map by fd, with typed access. Keys and values are plain C
/// structs (from the ABI header) or integers, copied by their memory layout.
public final class BPFMap: @unchecked Sendable {
    /// The map's file descriptor (owned: closed on deinit).
    public let fd: Int32
    /// The map's name, for messages.
    public let name: String
    /// Kernel facts about the map.
    public let info: Info

    /// Kernel facts about a map (bpf_obj_get_info_by_fd).
    public struct Info: Sendable {
        /// Kernel map id.
        public var id: UInt32
        /// BPF_MAP_TYPE_* value.
        public var type: UInt32
        /// Capacity in entries.
        public var maxEntries: UInt32
        /// Key size in bytes.
        public var keySize: UInt32
        /// Value size in bytes (per CPU, for per-CPU maps).
        public var valueSize: UInt32
    }

    /// Takes ownership of `fd`.
    public init(owning fd: Int32, name: String) throws(BPFError) {
        self.fd = fd
        self.name = name
        var i = Info(id: 0, type: 0, maxEntries: 0, keySize: 0, valueSize: 0)
        let rc = xdplb_map_info(fd, &i.id, &i.type, &i.maxEntries, &i.keySize, &i.valueSize)
        if rc < 0 {
            close(fd)
            throw BPFError("read info of map '\(name)'", errno: rc)
        }
        info = i
    }

    /// Duplicates `fd` and owns the copy.
    public convenience init(duplicating fd: Int32, name: String) throws(BPFError) {
        let copy = try check(fcntl(fd, F_DUPFD_CLOEXEC, 0), "duplicate fd of map '\(name)'")
        try self.init(owning: copy, name: name)
    }

    /// Opens a map pinned at `path`.
    /// - Throws: `BPFError` (ENOENT when nothing is pinned there).
    public static func openPinned(_ path: String, name: String? = nil) throws(BPFError) -> BPFMap {
        let label = name ?? String(path.split(separator: "/").last ?? "")
        let fd = try check(bpf_obj_get(path), "open pinned map '\(label)' at \(path)",
                           hint: "is the agent running (or was the balancer loaded) with this bpffs path?")
        return try BPFMap(owning: fd, name: label)
    }

    /// Opens a map by kernel id.
    public static func open(id: UInt32, name: String) throws(BPFError) -> BPFMap {
        let fd = try check(bpf_map_get_fd_by_id(id), "open map '\(name)' by id \(id)")
        return try BPFMap(owning: fd, name: name)
    }

    deinit { close(fd) }

    /// Pins the map at `path` (bpffs).
    public func pin(at path: String) throws(BPFError) {
        try check(bpf_obj_pin(fd, path), "pin map '\(name)' at \(path)")
    }

    /// True for per-CPU map types, whose values are one per possible CPU.
    public var isPerCPU: Bool {
        let t = info.type
        return t == BPF_MAP_TYPE_PERCPU_ARRAY.rawValue || t == BPF_MAP_TYPE_PERCPU_HASH.rawValue
            || t == BPF_MAP_TYPE_LRU_PERCPU_HASH.rawValue
    }

    private func checkSizes<K: BitwiseCopyable, V: BitwiseCopyable>(_: K.Type, _: V.Type, _ op: String) throws(BPFError) {
        guard MemoryLayout<K>.size == Int(info.keySize), MemoryLayout<V>.size == Int(info.valueSize) else {
            throw BPFError("\(op) map '\(name)': key/value are \(MemoryLayout<K>.size)/\(MemoryLayout<V>.size) bytes, map has \(info.keySize)/\(info.valueSize)", errno: EINVAL)
        }
    }

    /// Looks up `key`; nil when absent.
    public func lookup<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, as: V.Type = V.self) throws(BPFError) -> V? {
        try checkSizes(K.self, V.self, "lookup in")
        var k = key
        let value = UnsafeMutablePointer<V>.allocate(capacity: 1)
        defer { value.deallocate() }
        let rc = bpf_map_lookup_elem(fd, &k, value)
        if rc != 0 {
            if Glibc.errno == ENOENT { return nil }
            throw BPFError("lookup in map '\(name)'", errno: Glibc.errno)
        }
        return value.move()
    }

    /// Writes `value` at `key` (BPF_ANY by default).
    public func update<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, _ value: V, flags: UInt64 = UInt64(BPF_ANY)) throws(BPFError) {
        try checkSizes(K.self, V.self, "update")
        var k = key
        var v = value
        try check(bpf_map_update_elem(fd, &k, &v, flags), "update map '\(name)'")
    }

    /// Deletes `key`; returns false if it was absent.
    @discardableResult
    public func delete<K: BitwiseCopyable>(_ key: K) throws(BPFError) -> Bool {
        var k = key
        if bpf_map_delete_elem(fd, &k) == 0 { return true }
        if Glibc.errno == ENOENT { return false }
        throw BPFError("delete from map '\(name)'", errno: Glibc.errno)
    }

    /// Every key in the map (hash maps: current keys; arrays: every index).
    public func keys<K: BitwiseCopyable>(as: K.Type = K.self) throws(BPFError) -> [K] {
        guard MemoryLayout<K>.size == Int(info.keySize) else {
            throw BPFError("iterate map '\(name)': key is \(MemoryLayout<K>.size) bytes, map has \(info.keySize)", errno: EINVAL)
        }
        var result: [K] = []
        let cur = UnsafeMutableRawPointer.allocate(byteCount: max(1, Int(info.keySize)), alignment: 8)
        let next = UnsafeMutableRawPointer.allocate(byteCount: max(1, Int(info.keySize)), alignment: 8)
        defer { cur.deallocate(); next.deallocate() }
        var first = true
        while true {
            let rc = bpf_map_get_next_key(fd, first ? nil : cur, next)
            if rc != 0 {
                if Glibc.errno == ENOENT { break }
                throw BPFError("iterate map '\(name)'", errno: Glibc.errno)
            }
            result.append(next.loadUnaligned(as: K.self))
            cur.copyMemory(from: next, byteCount: Int(info.keySize))
            first = false
        }
        return result
    }

    /// Number of possible CPUs (the length of a per-CPU value array).
    public static var possibleCPUs: Int { Int(libbpf_num_possible_cpus()) }

    /// Reads the per-CPU values at `key`, one per possible CPU.
    public func lookupPerCPU<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, as: V.Type = V.self) throws(BPFError) -> [V] {
        guard MemoryLayout<K>.size == Int(info.keySize), MemoryLayout<V>.stride == Int(info.valueSize) else {
            throw BPFError("per-CPU lookup in map '\(name)': key/value sizes differ from the map's", errno: EINVAL)
        }
        let n = BPFMap.possibleCPUs
        var k = key
        // The kernel rounds each per-CPU value up to 8 bytes.
        let slot = (MemoryLayout<V>.size + 7) & ~7
        let buf = UnsafeMutableRawPointer.allocate(byteCount: slot * n, alignment: 8)
        defer { buf.deallocate() }
        if bpf_map_lookup_elem(fd, &k, buf) != 0 {
            if Glibc.errno == ENOENT { return [] }
            throw BPFError("per-CPU lookup in map '\(name)'", errno: Glibc.errno)
        }
        return (0..<n).map { buf.loadUnaligned(fromByteOffset: $0 * slot, as: V.self) }
    }

    /// Writes one value per possible CPU (as `lookupPerCPU` returned them); missing CPUs get zero.
    public func updatePerCPU<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, values: [V]) throws(BPFError) {
        let n = BPFMap.possibleCPUs
        var k = key
        let slot = (MemoryLayout<V>.size + 7) & ~7
        let buf = UnsafeMutableRawPointer.allocate(byteCount: slot * n, alignment: 8)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 0, count: slot * n)
        for (i, v) in values.prefix(n).enumerated() { buf.storeBytes(of: v, toByteOffset: i * slot, as: V.self) }
        try check(bpf_map_update_elem(fd, &k, buf, UInt64(BPF_ANY)), "update per-CPU map '\(name)'")
    }

    /// Writes the same value on every CPU (e.g. zero to reset a per-CPU counter).
    public func updatePerCPU<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, _ value: V) throws(BPFError) {
        try updatePerCPU(key, values: [V](repeating: value, count: BPFMap.possibleCPUs))
    }
}

extension BPFMap {
    /// Writes `value` on every possible CPU at each of `keys` (e.g. zero to
    /// reset many per-CPU counters) with BPF_MAP_UPDATE_BATCH calls instead of
    /// one syscall a key.
    public func updatePerCPUBatch<K: BitwiseCopyable, V: BitwiseCopyable>(keys: [K], value: V) throws(BPFError) {
        guard MemoryLayout<K>.stride == Int(info.keySize), MemoryLayout<V>.size == Int(info.valueSize) else {
            throw BPFError("per-CPU batch update map '\(name)': key/value sizes differ from the map's", errno: EINVAL)
        }
        guard !keys.isEmpty else { return }
        // The kernel takes each key's values as one 8-byte-rounded value per possible CPU.
        let slot = (MemoryLayout<V>.size + 7) & ~7
        let perKey = slot * BPFMap.possibleCPUs
        let buf = UnsafeMutableRawPointer.allocate(byteCount: perKey * keys.count, alignment: 8)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 0, count: perKey * keys.count)
        for q in 0 ..< keys.count * BPFMap.possibleCPUs { buf.storeBytes(of: value, toByteOffset: q * slot, as: V.self) }
        try keys.withUnsafeBufferPointer { k throws(BPFError) in
            try updateBatch(count: keys.count, keys: UnsafeRawPointer(k.baseAddress!), keyStride: MemoryLayout<K>.stride,
                            values: UnsafeRawPointer(buf), valueStride: perKey, what: "per-CPU batch update")
        }
    }

    /// Reads every entry of an array map in index order, up to `chunk` entries
    /// per BPF_MAP_LOOKUP_BATCH call; `body` gets each chunk's first index and
    /// its values (valid only during the call).
    public func forEachArrayChunk<V: BitwiseCopyable>(
        as: V.Type = V.self, chunk: Int = 1024,
        _ body: (UInt32, UnsafeBufferPointer<V>) throws(BPFError) -> Void
    ) throws(BPFError) {
        guard info.keySize == 4, MemoryLayout<V>.stride == Int(info.valueSize) else {
            throw BPFError("batch lookup in map '\(name)': not an array of \(MemoryLayout<V>.stride)-byte values", errno: EINVAL)
        }
        let n = max(1, chunk)
        let keys = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: n)
        let values = UnsafeMutableBufferPointer<V>.allocate(capacity: n)
        defer { keys.deallocate(); values.deallocate() }
        var from: UInt32 = 0
        while from < info.maxEntries {
            var count = UInt32(min(n, Int(info.maxEntries - from)))
            let rc = xdplb_array_lookup_batch(fd, from, keys.baseAddress, values.baseAddress, &count)
            if rc < 0 && rc != -ENOENT { throw BPFError("batch lookup in map '\(name)'", errno: -rc) }
            if count == 0 { break }
            guard keys[0] == from else { throw BPFError("batch lookup in map '\(name)': came back at index \(keys[0]), not \(from)", errno: EIO) }
            try body(from, UnsafeBufferPointer(rebasing: values[0 ..< Int(count)]))
            from += count
            if rc == -ENOENT { break }
        }
    }

    /// Writes many entries with one BPF_MAP_UPDATE_BATCH call (array and hash maps).
    public func updateBatch<K: BitwiseCopyable, V: BitwiseCopyable>(keys: [K], values: [V]) throws(BPFError) {
        precondition(keys.count == values.count, "updateBatch: keys and values differ in count")
        guard MemoryLayout<K>.stride == Int(info.keySize), MemoryLayout<V>.stride == Int(info.valueSize) else {
            throw BPFError("batch update map '\(name)': key/value sizes differ from the map's", errno: EINVAL)
        }
        guard !keys.isEmpty else { return }
        try keys.withUnsafeBufferPointer { k throws(BPFError) in
            try values.withUnsafeBufferPointer { v throws(BPFError) in
                try updateBatch(count: keys.count, keys: UnsafeRawPointer(k.baseAddress!), keyStride: MemoryLayout<K>.stride,
                                values: UnsafeRawPointer(v.baseAddress!), valueStride: MemoryLayout<V>.stride, what: "batch update")
            }
        }
    }

    /// BPF_MAP_UPDATE_BATCH calls until all `count` entries (`keyStride` and
    /// `valueStride` bytes apart) are taken; `what` names the operation in errors.
    private func updateBatch(count total: Int, keys: UnsafeRawPointer, keyStride: Int,
                             values: UnsafeRawPointer, valueStride: Int, what: String) throws(BPFError) {
        var done = 0
        while done < total {
            var count = UInt32(total - done)
            let rc = xdplb_map_update_batch(fd, keys + done * keyStride, values + done * valueStride, &count)
            if rc < 0 { throw BPFError("\(what) map '\(name)'", errno: -rc) }
            // The kernel always takes at least one entry or fails; never spin on none.
            if count == 0 { throw BPFError("\(what) map '\(name)': no entry taken", errno: EIO) }
            done += Int(count)
        }
    }
}
