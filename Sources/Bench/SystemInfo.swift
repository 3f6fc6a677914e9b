import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Facts about the machine a benchmark ran on.
public struct MachineInfo: Sendable, Codable {
    /// Online CPUs.
    public var cpus: Int
    /// `model name` of the first CPU in /proc/cpuinfo.
    public var cpuModel: String
    /// `uname -r`.
    public var kernel: String
    /// The clock source behind ktime_get_ns (the kernel's timing of each run).
    public var clocksource: String
    /// kernel.bpf_stats_enabled (1 adds per-run accounting to every program run).
    public var bpfStatsEnabled: Bool

    /// Reads them from /proc and /sys.
    public static func current() -> MachineInfo {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return MachineInfo(
            cpus: sysconf(Int32(_SC_NPROCESSORS_ONLN)),
            cpuModel: model,
            kernel: release,
            clocksource: readTrimmed("/sys/devices/system/clocksource/clocksource0/current_clocksource") ?? "unknown",
            bpfStatsEnabled: readTrimmed("/proc/sys/kernel/bpf_stats_enabled") == "1")
    }
}

func readTrimmed(_ path: String) -> String? {
    (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A `Key:   1234 kB` line of /proc/self/status, in bytes.
func procStatusBytes(_ key: String) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix(key + ":") {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if fields.count >= 2, let kb = Int(fields[1]) { return kb * 1024 }
    }
    return 0
}

/// The kernel's memory charge of a BPF map fd (`memlock:` of /proc/self/fdinfo/FD).
func mapMemlock(fd: Int32) -> Int {
    guard let info = try? String(contentsOfFile: "/proc/self/fdinfo/\(fd)", encoding: .utf8) else { return 0 }
    for line in info.split(separator: "\n") where line.hasPrefix("memlock:") {
        return Int(line.dropFirst("memlock:".count).trimmingCharacters(in: .whitespaces)) ?? 0
    }
    return 0
}

/// Monotonic clock in ns.
@inline(__always)
func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

// sched_setaffinity / sched_getcpu need _GNU_SOURCE, which the Glibc module
// doesn't define; they are looked up in libc at run time instead.
private typealias SchedSetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
private typealias SchedGetCPU = @convention(c) () -> Int32

private func libc<T>(_ name: String, as: T.Type) -> T? {
    guard let sym = dlsym(dlopen(nil, RTLD_NOW), name) else { return nil }
    return unsafeBitCast(sym, to: T.self)
}

/// The CPU the calling thread runs on (0 if unknown).
func currentCPU() -> Int {
    guard let f = libc("sched_getcpu", as: SchedGetCPU.self) else { return 0 }
    return Int(max(0, f()))
}

/// Pins the calling thread to `cpu`. Returns false when the kernel refuses.
func pinToCPU(_ cpu: Int) -> Bool {
    guard let f = libc("sched_setaffinity", as: SchedSetAffinity.self) else { return false }
    var set = cpu_set_t()
    return withUnsafeMutableBytes(of: &set) { raw in
        for i in raw.indices { raw[i] = 0 }
        raw[cpu / 8] |= UInt8(1 << (cpu % 8))
        return f(0, raw.count, UnsafeRawPointer(raw.baseAddress!)) == 0
    }
}
