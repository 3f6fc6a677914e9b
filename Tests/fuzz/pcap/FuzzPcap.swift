// libFuzzer target: the pcap reader (libpcap through Packets.readPcap) and the frame
// summariser `xdplb replay` prints, on arbitrary file contents. Built only with XDPLB_FUZZ=1.
import Glibc
import Packets

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcap(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let fd = memfd_create("xdplb-fuzz-pcap", 0)
    precondition(fd >= 0, "memfd_create failed")
    defer { close(fd) }
    var off = 0
    while off < size {
        let n = write(fd, data + off, size - off)
        precondition(n > 0, "write to memfd failed")
        off += n
    }
    do {
        for p in try readPcap("/proc/self/fd/\(fd)") {
            let s = PacketSummary.describe(p.bytes)
            precondition(!s.isEmpty && s.utf8.count <= 4096, "summary of \(s.utf8.count) bytes")
        }
    } catch {
        precondition(!error.description.isEmpty, "an empty pcap error")
    }
    return 0
}
