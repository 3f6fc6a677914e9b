import CPcap

/// An error reading or writing a capture file.
public struct PcapError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, with the file name.
    public let description: String
}

/// One packet from a capture: timestamp and bytes.
public struct CapturedPacket: Sendable {
    /// Seconds since the epoch.
    public var seconds: Int
    /// Microseconds within the second.
    public var microseconds: Int
    /// The frame, starting at the Ethernet header.
    public var bytes: [UInt8]

    /// A packet with a timestamp.
    public init(seconds: Int = 0, microseconds: Int = 0, bytes: [UInt8]) {
        self.seconds = seconds
        self.microseconds = microseconds
        self.bytes = bytes
    }
}

/// Reads every packet of an Ethernet pcap file with libpcap.
public func readPcap(_ path: String) throws(PcapError) -> [CapturedPacket] {
    var err = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
    guard let p = pcap_open_offline(path, &err) else {
        throw PcapError(description: "\(path): \(cText(err))")
    }
    defer { pcap_close(p) }
    guard pcap_datalink(p) == DLT_EN10MB else {
        throw PcapError(description: "\(path): link type \(pcap_datalink(p)) is not Ethernet (DLT_EN10MB)")
    }
    var packets: [CapturedPacket] = []
    var header: UnsafeMutablePointer<pcap_pkthdr>?
    var data: UnsafePointer<UInt8>?
    while true {
        let rc = pcap_next_ex(p, &header, &data)
        if rc == 1, let h = header, let d = data {
            if h.pointee.caplen < h.pointee.len {
                throw PcapError(description: "\(path): packet \(packets.count + 1) was captured truncated (\(h.pointee.caplen) of \(h.pointee.len) bytes); capture with a larger snaplen")
            }
            packets.append(CapturedPacket(seconds: Int(h.pointee.ts.tv_sec), microseconds: Int(h.pointee.ts.tv_usec),
                                          bytes: Array(UnsafeBufferPointer(start: d, count: Int(h.pointee.caplen)))))
        } else if rc == PCAP_ERROR_BREAK {
            break
        } else {
            throw PcapError(description: "\(path): \(String(cString: pcap_geterr(p)))")
        }
    }
    return packets
}

/// Writes packets to an Ethernet pcap file with libpcap (snaplen 65535).
public func writePcap(_ path: String, _ packets: [CapturedPacket]) throws(PcapError) {
    guard let p = pcap_open_dead(DLT_EN10MB, 65535) else {
        throw PcapError(description: "\(path): libpcap could not open a writer")
    }
    defer { pcap_close(p) }
    guard let d = pcap_dump_open(p, path) else {
        throw PcapError(description: "\(path): \(String(cString: pcap_geterr(p)))")
    }
    for pkt in packets {
        var h = pcap_pkthdr()
        h.ts.tv_sec = pkt.seconds
        h.ts.tv_usec = pkt.microseconds
        h.caplen = UInt32(pkt.bytes.count)
        h.len = UInt32(pkt.bytes.count)
        pkt.bytes.withUnsafeBufferPointer { buf in
            pcap_dump(UnsafeMutableRawPointer(d).assumingMemoryBound(to: UInt8.self), &h, buf.baseAddress)
        }
    }
    pcap_dump_close(d)
}

private func cText(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
