// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "xdplb",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "xdplb", targets: ["xdplb"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.70.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        // C: the shared ABI header, libbpf/libpcap and shims for their macros.
        .target(
            name: "CXdplb",
            linkerSettings: [.linkedLibrary("bpf")]
        ),
        // The BPF objects (bpf/*.bpf.c), compiled by clang and embedded as data.
        .target(
            name: "BPFObjects",
            plugins: ["BPFObjectPlugin"]
        ),
        .plugin(name: "BPFObjectPlugin", capability: .buildTool()),
        // libbpf binding: objects, maps, links, test runs.
        .target(name: "BPF", dependencies: ["CXdplb"]),
        // IPv4/IPv6 address values (parse, format, key bytes).
        .target(name: "NetAddress"),
        // rtnetlink (NETLINK_ROUTE) from Glibc: routes, neighbours, links; no processes, bounded waits.
        .target(name: "Netlink", dependencies: ["NetAddress"]),
        // Maglev tables and the flow hash (pure Swift, no kernel).
        .target(name: "Maglev", dependencies: ["NetAddress"]),
        // libpcap (Debian's libpcap-dev), for reading and writing captures.
        .systemLibrary(name: "CPcap", path: "Sources/CPcap"),
        // Packet building/parsing and pcap files.
        .target(name: "Packets", dependencies: ["CPcap", "NetAddress"]),
        // Configuration file model and validation.
        .target(name: "Config", dependencies: ["Maglev", "NetAddress", .product(name: "Yams", package: "Yams")]),
        // The balancer's maps as typed Swift: VIPs, backends, rings, counters.
        .target(name: "DataPlane", dependencies: ["BPF", "BPFObjects", "Maglev", "Config", "CXdplb", "Netlink",
                                                  .product(name: "Logging", package: "swift-log")]),
        // Health checks: TCP connect and HTTP probes with rise/fall.
        .target(name: "Health", dependencies: ["Config", "NetAddress",
                                               .product(name: "NIOCore", package: "swift-nio"),
                                               .product(name: "NIOPosix", package: "swift-nio"),
                                               .product(name: "Logging", package: "swift-log")]),
        // BGP announcements: the gate, the kernel announcement table, bird's config and control socket.
        .target(name: "Routing", dependencies: ["Config", "NetAddress", "Netlink", .product(name: "Logging", package: "swift-log")]),
        // The shared config and health view: etcd's v3 JSON gateway through async-http-client.
        .target(name: "Cluster", dependencies: ["Config", "NetAddress",
                                                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                                                .product(name: "NIOCore", package: "swift-nio"),
                                                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                                                .product(name: "NIOHTTP1", package: "swift-nio"),
                                                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                                                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                .product(name: "Crypto", package: "swift-crypto"),
                                                .product(name: "Logging", package: "swift-log")]),
        // systemd's readiness/watchdog protocol (sd_notify) over a unix datagram socket.
        .target(name: "ServiceNotify"),
        // The agent: pinned data plane, reconcile loop, admin API, metrics.
        .target(name: "Agent", dependencies: ["DataPlane", "Health", "Config", "BPF", "Maglev", "NetAddress", "CXdplb", "Routing", "Cluster",
                                              .product(name: "Hummingbird", package: "hummingbird"),
                                              .product(name: "HummingbirdCore", package: "hummingbird"),
                                              .product(name: "NIOCore", package: "swift-nio"),
                                              .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                                              .product(name: "Prometheus", package: "swift-prometheus"),
                                              .product(name: "Logging", package: "swift-log")]),
        // `xdplb bench`: data-plane cost per packet (BPF_PROG_TEST_RUN) and control-plane timings.
        .target(name: "Bench", dependencies: ["DataPlane", "BPF", "BPFObjects", "CXdplb", "Config", "Maglev", "NetAddress", "Packets"]),
        .executableTarget(
            name: "xdplb",
            dependencies: ["DataPlane", "Config", "Maglev", "Packets", "BPF", "Agent", "Health", "Bench", "Routing", "Cluster",
                           "ServiceNotify",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            // The Swift runtime and Foundation linked in, in every build: the binary needs only
            // Debian's libraries (what a copied binary and the Debian package need). The
            // modules are compiled as for a dynamic build, so the static-only parts of
            // Foundation are named here; nothing else changes between builds.
            linkerSettings: [.unsafeFlags(["-static-stdlib"]), .linkedLibrary("CoreFoundation"), .linkedLibrary("_FoundationCollections"),
                             .linkedLibrary("_FoundationICU"), .linkedLibrary("_FoundationCShims")]
        ),
        .testTarget(name: "HealthTests", dependencies: ["Health", "Config", "NetAddress", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "MaglevTests", dependencies: ["Maglev", "NetAddress"]),
        .testTarget(name: "ServiceNotifyTests", dependencies: ["ServiceNotify"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "NetAddress"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config"]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster", "Config"]),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "Config", "NetAddress", "Health"]),
        .testTarget(name: "DataPlaneTests", dependencies: ["DataPlane", "BPF", "Packets", "Maglev", "Config", "CXdplb"]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets (Tests/fuzz/run.sh builds them with XDPLB_FUZZ=1 in .build-fuzz):
// not part of the normal build.
if Context.environment["XDPLB_FUZZ"] == "1" {
    let fuzz: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer,address", "-parse-as-library"])]
    let link: [LinkerSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]
    package.targets += [
        .target(name: "CFuzzMain", path: "Tests/fuzz/main"),
        .executableTarget(name: "xdplb-fuzz-config", dependencies: ["Config", "CFuzzMain"], path: "Tests/fuzz/config",
                          swiftSettings: fuzz, linkerSettings: link),
        .executableTarget(name: "xdplb-fuzz-pcap", dependencies: ["Packets", "CFuzzMain"], path: "Tests/fuzz/pcap",
                          swiftSettings: fuzz, linkerSettings: link),
    ]
}
