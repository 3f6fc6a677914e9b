// libFuzzer target: the pcap reader (libpcap through Packets.readPcap) and the frame
// summariser `xdplb replay` prints, on arbitrary file contents. Built only with XDPLB_FUZZ=1.
import CFuzzMain
import Glibc
import Packets

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcap(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // libpcap reads files: one scratch file per fuzzer process, rewritten for every input.
    let path = "/dev/shm/xdplb-fuzz-pcap-\(getpid())"
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "cannot create \(path)")
    defer { close(fd); unlink(path) }
    var off = 0
    while off < size {
        let n = write(fd, data + off, size - off)
        precondition(n > 0, "write to memfd failed")
        off += n
    }
    do throws(PcapError) {
        for p in try readPcap(path) {
            let s = PacketSummary.describe(p.bytes)
            precondition(!s.isEmpty && s.utf8.count <= 4096, "summary of \(s.utf8.count) bytes")
        }
    } catch {
        precondition(!error.description.isEmpty, "an empty pcap error")
    }
    return 0
}
