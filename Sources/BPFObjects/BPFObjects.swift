import Foundation

/// The BPF objects built from `bpf/*.bpf.c`, embedded in the binary.
public enum BPFObjects {
    /// The XDP balancer (`bpf/balancer.bpf.c`) as an ELF object.
    public static var balancer: [UInt8] { decode(BPFObjectData.balancer) }
    /// The backend GRE decap programs (`bpf/decap.bpf.c`: tc `xdplb_decap`, XDP `xdplb_decap_xdp`) as an ELF object.
    public static var decap: [UInt8] { decode(BPFObjectData.decap) }
    /// The through-tunnel probe program (`bpf/probe.bpf.c`: tc egress `xdplb_probe`) as an ELF object.
    public static var probe: [UInt8] { decode(BPFObjectData.probe) }
    /// The benchmark floors (`bpf/bench.bpf.c`: `xdplb_bench_tx`, `xdplb_bench_parse`) as an ELF object.
    public static var bench: [UInt8] { decode(BPFObjectData.bench) }

    private static func decode(_ base64: String) -> [UInt8] {
        guard let data = Data(base64Encoded: base64) else {
            fatalError("embedded BPF object is not valid base64; rebuild the package")
        }
        return [UInt8](data)
    }
}
