import CXdplb

/// Names of the global counters (bpf/xdplb_abi.h `enum xdplb_counter_id`),
/// as used in `xdplb stats` and metrics. A test checks the table covers
/// every id below XDPLB_CNT_MAX exactly once.
public enum CounterNames {
    /// (id, name) pairs in id order.
    public static let all: [(id: Int, name: String)] = [
        (XDPLB_CNT_RX, "rx"),
        (XDPLB_CNT_PASS_NOT_IP, "pass_not_ip"),
        (XDPLB_CNT_PASS_NOT_VIP, "pass_not_vip"),
        (XDPLB_CNT_PASS_MALFORMED, "pass_malformed"),
        (XDPLB_CNT_PASS_ICMP_OTHER, "pass_icmp_other"),
        (XDPLB_CNT_PASS_NO_NEIGH, "pass_no_neigh"),
        (XDPLB_CNT_FWD_TX, "fwd_tx"),
        (XDPLB_CNT_FWD_REDIRECT, "fwd_redirect"),
        (XDPLB_CNT_TX_TOO_BIG, "tx_too_big"),
        (XDPLB_CNT_DROP_MALFORMED, "drop_malformed"),
        (XDPLB_CNT_DROP_NO_BACKEND, "drop_no_backend"),
        (XDPLB_CNT_DROP_FRAGMENT, "drop_fragment"),
        (XDPLB_CNT_DROP_IPV6_EXT, "drop_ipv6_ext"),
        (XDPLB_CNT_DROP_ENCAP_FAIL, "drop_encap_fail"),
        (XDPLB_CNT_DROP_FIB_FAIL, "drop_fib_fail"),
        (XDPLB_CNT_DROP_TOO_BIG, "drop_too_big"),
        (XDPLB_CNT_CT_HIT, "ct_hit"),
        (XDPLB_CNT_CT_MISS, "ct_miss"),
        (XDPLB_CNT_NEW_FLOW, "new_flow"),
        (XDPLB_CNT_ICMP_FWD, "icmp_fwd"),
        (XDPLB_CNT_IPV4_OPTIONS, "ipv4_options"),
        (XDPLB_CNT_GRE_V4, "gre_v4"),
        (XDPLB_CNT_GRE_V6, "gre_v6"),
        (XDPLB_CNT_SECOND_HOP, "second_hop"),
        (XDPLB_CNT_DROP_DENY, "drop_deny"),
        (XDPLB_CNT_DROP_RATE_SRC_SYN, "drop_rate_src_syn"),
        (XDPLB_CNT_DROP_RATE_SRC_PPS, "drop_rate_src_pps"),
        (XDPLB_CNT_NO_OUTCOME, "no_outcome"),
    ].map { (Int($0.0.rawValue), $0.1) }

    /// Number of counters the program has.
    public static let count = Int(XDPLB_CNT_MAX.rawValue)

    /// The name of counter `id`.
    public static func name(_ id: Int) -> String { all.first { $0.id == id }?.name ?? "unknown_\(id)" }

    /// The id of the counter called `name`.
    public static func id(_ name: String) -> Int? { all.first { $0.name == name }?.id }

    /// True for outcome counters (exactly one per packet; they sum to rx).
    public static func isOutcome(_ name: String) -> Bool {
        name == "no_outcome" || ["pass_", "fwd_", "tx_", "drop_"].contains { name.hasPrefix($0) }
    }
}
