/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdplb ABI: everything that crosses the BPF <-> Swift line.
 *
 * This header is included by the BPF programs (bpf/NAME.bpf.c) and, through the
 * CXdplb module, by Swift. Nothing here is laid out anywhere else. It holds
 * only plain types: no maps, no inline code (those live in bpf/maps.h and the
 * other BPF-only headers).
 *
 * Rules: <linux/types.h> types only, every network-order field is __be*, no
 * bool, explicit padding, a _Static_assert on every struct size. Counter ids
 * are append-only: a retired counter becomes XDPLB_CNT_UNUSED_n.
 */
#ifndef XDPLB_ABI_H
#define XDPLB_ABI_H

#include <linux/types.h>

/* ---- 1. version ------------------------------------------------------- */

/* Bumped whenever a struct below changes layout or meaning. */
#define XDPLB_ABI_VERSION 6

/* ---- 2. limits -------------------------------------------------------- */

/* VIP slots: index into the ring table and the per-VIP stats. */
#define XDPLB_MAX_VIPS 4096
/* Backend ids 1..XDPLB_MAX_BACKENDS-1; id 0 means "no backend". */
#define XDPLB_MAX_BACKENDS 16384
/* Largest Maglev ring (a prime); rings hold 1 + size entries. */
#define XDPLB_RING_MAX 655373
/* Default Maglev ring size (a prime). */
#define XDPLB_RING_DEFAULT 65537
/* Bytes of the offending packet quoted in an ICMP too-big reply. */
#define XDPLB_ICMP_QUOTE_LEN 128
/* Outer header bytes added by GRE encapsulation (IP + 4-byte GRE). */
#define XDPLB_GRE_OVERHEAD_V4 24
#define XDPLB_GRE_OVERHEAD_V6 44
/* With a second hop (section 4b): the GRE header carries a 4-byte key. */
#define XDPLB_GRE_KEY_LEN 4
/* Slots of the counter array: room for counters appended later (the pinned map keeps its size). */
#define XDPLB_CNT_SLOTS 64
/* TTL / hop limit of every packet the balancer writes. */
#define XDPLB_OUTER_TTL 64

/* Address families, as used in the `family` fields below. */
#define XDPLB_FAMILY_V4 4
#define XDPLB_FAMILY_V6 6

/* ---- 3. flags, grouped by the struct they belong to ---------------------- */

/* struct xdplb_vip_meta.flags */
#define XDPLB_VIP_F_SRC_IP_HASH (1U << 0) /* hash the source address only */

/* struct xdplb_vip_addr.flags: which port-0 (all ports) VIPs this address has */
#define XDPLB_VIP_ADDR_F_PORT0_TCP (1U << 0)
#define XDPLB_VIP_ADDR_F_PORT0_UDP (1U << 1)

/* struct xdplb_backend.flags */
#define XDPLB_BACKEND_F_PRESENT (1U << 0)  /* entry is live; LRU hits may use it */
#define XDPLB_BACKEND_F_IPV6 (1U << 1)     /* addr is IPv6: outer header is IPv6 */
#define XDPLB_BACKEND_F_NEXTHOP (1U << 2)  /* nh_* fields are valid: skip the FIB */
#define XDPLB_BACKEND_F_DRAINING (1U << 3) /* weight 0: in no ring, keeps LRU flows */

/* ---- 4. structs --------------------------------------------------------- */

/*
 * Addresses are 16 bytes for both families. An IPv4 address sits in addr[0]
 * with addr[1..3] zero, so one key type serves v4 and v6.
 */

/* Key of the VIP map: exact address, port (0 = every port) and protocol. */
struct xdplb_vip_key {
	__be32 addr[4];
	__be16 port;
	__u8 proto;  /* IPPROTO_TCP | IPPROTO_UDP */
	__u8 family; /* XDPLB_FAMILY_V4 | XDPLB_FAMILY_V6 */
};
_Static_assert(sizeof(struct xdplb_vip_key) == 20, "xdplb_vip_key layout");

/* Value of the VIP map. */
struct xdplb_vip_meta {
	__u32 vip_index; /* slot in the ring table and the per-VIP stats */
	__u32 flags;     /* XDPLB_VIP_F_* */
	__u32 ring_size; /* M of the ring written with this entry (0: none) */
	__u32 ring_tag;  /* tag of that ring (its head's tag, 0..XDPLB_RING_TAG_MASK) */
};
_Static_assert(sizeof(struct xdplb_vip_meta) == 16, "xdplb_vip_meta layout");

/*
 * A Maglev ring (inner map of the ring table) is an array of 8-byte elements
 * packing 2 bytes per slot: element 0 is the head (struct xdplb_ring_head),
 * element 1 + s / 4 holds slots s & ~3 ... (s & ~3) + 3 as four u16 in
 * memory order (slot s is u16 number s & 3 of its element). A slot is the
 * backend id (XDPLB_RING_ID_BITS; 0 = empty) | the ring's tag <<
 * XDPLB_RING_ID_BITS. A ring of size M has 1 + XDPLB_RING_ELEMS(M) elements.
 *
 * The tag lets the program take M from the VIP meta and pick with one load:
 * the agent gives each new ring of a VIP slot the next tag (mod 4) and writes
 * the meta (ring_size, ring_tag) only after the ring is in. A ring swapped in
 * after the meta was read shows another tag in every slot, and the program
 * reads the head instead. The swap waits for running programs (an RCU grace
 * period) before the agent goes on, so a reader is never two rings behind.
 */
#define XDPLB_RING_ID_BITS 14
#define XDPLB_RING_ID_MASK ((1U << XDPLB_RING_ID_BITS) - 1)
#define XDPLB_RING_TAG_MASK 3U
#define XDPLB_RING_SLOTS_PER_ELEM 4
#define XDPLB_RING_ELEMS(m) (((m) + XDPLB_RING_SLOTS_PER_ELEM - 1) / XDPLB_RING_SLOTS_PER_ELEM)
_Static_assert(XDPLB_MAX_BACKENDS <= (1U << XDPLB_RING_ID_BITS), "backend ids fit the ring id bits");
_Static_assert(XDPLB_RING_TAG_MASK < (1U << (16 - XDPLB_RING_ID_BITS)), "the tag fits a slot");

/* Element 0 of a ring. */
struct xdplb_ring_head {
	__u32 size; /* M, a prime */
	__u32 tag;  /* 0..XDPLB_RING_TAG_MASK, the tag of every slot */
};
_Static_assert(sizeof(struct xdplb_ring_head) == 8, "xdplb_ring_head layout");

/*
 * The VIP table: every VIP key with its meta in an array map the program
 * reads without a helper call (the xdplb_vips hash map stays the agent's
 * record and the program's fallback). A key lives in one of the
 * XDPLB_VIP_TABLE_PROBES slots from its home slot on (wrapping); an empty
 * slot has family 0. A key whose window is full of other keys is not placed:
 * it lives only in the hash map, which the program asks when a window holds
 * no empty slot and not the key (the agent keeps that true: a key is placed
 * as soon as a slot of its window is free). Its home: the key as five little-endian u32 words w0..w4
 * (w4 = port | proto << 16 | family << 24), h = w0 * 0x9E3779B1 ^ w1 *
 * 0x85EBCA77 ^ w2 * 0xC2B2AE3D ^ w3 * 0x27D4EB2F ^ w4 * 0x165667B1,
 * h ^= h >> 15, home = (h * 0x2C1B3C6D) >> (32 - XDPLB_VIP_TABLE_BITS).
 * C in bpf/backend.h, Swift in Sources/DataPlane/VIPTable.swift.
 *
 * The agent writes slots through mmap (BPF_F_MMAPABLE): seq odd, then key
 * and meta, then seq even; the program uses a slot only if seq was even and
 * unchanged around its reads, and asks the hash map when it met an odd one.
 */
#define XDPLB_VIP_TABLE_BITS 13
#define XDPLB_VIP_TABLE_SLOTS (1U << XDPLB_VIP_TABLE_BITS)
#define XDPLB_VIP_TABLE_PROBES 8

struct xdplb_vip_slot {
	struct xdplb_vip_key key;
	struct xdplb_vip_meta meta;
	__u32 seq; /* even: stable; odd: being written */
};
_Static_assert(sizeof(struct xdplb_vip_slot) == 40, "xdplb_vip_slot layout");

/* Key of the VIP address map: every address that has at least one VIP. */
struct xdplb_vip_addr_key {
	__be32 addr[4];
	__u8 family;
	__u8 pad[3];
};
_Static_assert(sizeof(struct xdplb_vip_addr_key) == 20, "xdplb_vip_addr_key layout");

/* Value of the VIP address map. */
struct xdplb_vip_addr {
	__u32 flags; /* XDPLB_VIP_ADDR_F_* */
};
_Static_assert(sizeof(struct xdplb_vip_addr) == 4, "xdplb_vip_addr layout");

/*
 * A backend, indexed by its node-local id. `gen` changes whenever an id is
 * given to a different backend, so a stale conntrack entry can't follow the id.
 * The nh_* fields are the resolved next hop toward `addr` (set by the agent from
 * the kernel's route and neighbour tables); without XDPLB_BACKEND_F_NEXTHOP the
 * program asks bpf_fib_lookup instead.
 */
struct xdplb_backend {
	__be32 addr[4];
	__u32 flags; /* XDPLB_BACKEND_F_* */
	__u32 gen;
	__u32 nh_ifindex;
	__u8 nh_dmac[6];
	__u8 nh_smac[6];
};
_Static_assert(sizeof(struct xdplb_backend) == 40, "xdplb_backend layout");

/* Key of a conntrack entry: the client -> VIP flow, addresses as above. */
struct xdplb_flow_key {
	__be32 src[4];
	__be32 dst[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};
_Static_assert(sizeof(struct xdplb_flow_key) == 40, "xdplb_flow_key layout");

/*
 * What conntrack remembers of a flow: the backend (low 16 bits of backend_id)
 * and, when the flow got a second chance on its first packet here, the second
 * hop's backend id (high 16 bits; 0 = none). Entries of ABI 3 have 0 there.
 */
#define XDPLB_CT_ID_MASK 0xffffU
#define XDPLB_CT_HOP_SHIFT 16
struct xdplb_ct_entry {
	__u32 backend_id; /* backend id | second hop id << XDPLB_CT_HOP_SHIFT */
	__u32 gen;        /* xdplb_backend.gen of the backend when the entry was written */
};
_Static_assert(sizeof(struct xdplb_ct_entry) == 8, "xdplb_ct_entry layout");

/*
 * Conntrack is a set-associative flow table in an array map: bucket
 * (bucket hash & xdplb_node_cfg.ct_mask) holds XDPLB_CT_WAYS flows. Lookups are
 * inlined array reads (no helper call, no lock). A written way is embryonic
 * (USED, REF); its first hit marks it EST as well: the flow sent a second
 * packet, so it is established. A new flow takes the way already holding it,
 * else an empty way, else the first embryonic way from the sweep start, else
 * (not for a SYN) the first way not used since the bucket was last swept
 * (CLOCK: a hit sets REF, an insert passing a way clears it), so the table
 * keeps the recently used flows as an LRU does.
 *
 * Floods: a TCP SYN never takes an established way: when all of a bucket's
 * ways are EST the SYN is not written (the ring decides its flow until the
 * first ACK is written). So a SYN flood from spoofed sources, which never
 * sends a second packet, churns only empty and embryonic ways and cannot
 * evict an established flow. One-packet floods of other packets (ACK, UDP)
 * replace embryonic ways first and take at most one established way of a
 * full bucket, an idle one. The flow hash is the 5-tuple
 * xdplb_flow_hash (bpf/flow_hash.h) with the node's hash_seed, whatever the
 * VIP's hash mode.
 *
 * Writers (the program on any CPU) take a way with a compare-and-swap of seq
 * from even to odd, write it, and make seq even again; readers use a way only
 * if seq was even and unchanged around their reads, so a reader never sees
 * half an entry (a torn read counts as a miss: the ring decides).
 */
#define XDPLB_CT_WAYS 4
#define XDPLB_CT_F_USED (1U << 0) /* the way holds a flow */
#define XDPLB_CT_F_REF (1U << 1)  /* used since the last CLOCK sweep */
#define XDPLB_CT_F_EST (1U << 2)  /* hit since it was written: established */

/*
 * The bucket hash (ABI 6; before it, the Maglev flow hash): with the key's
 * 40 bytes as five little-endian 64-bit words w0..w4 and s = hash_seed *
 * SEED_MUL (64-bit, wrapping),
 *   h = (w0 ^ s)*K0 ^ (w1 ^ s)*K1 ^ (w2 ^ s)*K2 ^ (w3 ^ s)*K3 ^ (w4 ^ s)*K4
 *   h = (h ^ (h >> 32)) * FINAL;  bucket hash = h >> 32
 * (all products wrapping). Its low bits pick the bucket, its top two bits
 * where a sweep starts. Node-local: nodes need not agree on buckets.
 */
#define XDPLB_CT_HASH_SEED_MUL 0x9E3779B97F4A7C15ULL
#define XDPLB_CT_HASH_K0 0xC2B2AE3D27D4EB4FULL
#define XDPLB_CT_HASH_K1 0x165667B19E3779F9ULL
#define XDPLB_CT_HASH_K2 0x85EBCA77C2B2AE63ULL
#define XDPLB_CT_HASH_K3 0x27D4EB2F165667C5ULL
#define XDPLB_CT_HASH_K4 0xFF51AFD7ED558CCDULL
#define XDPLB_CT_HASH_FINAL 0xC4CEB9FE1A85EC53ULL

struct xdplb_ct_way {
	struct xdplb_flow_key key;
	struct xdplb_ct_entry entry;
	__u32 seq;   /* even: stable; odd: being written */
	__u32 flags; /* XDPLB_CT_F_* */
	__u32 pad[2];
};
_Static_assert(sizeof(struct xdplb_ct_way) == 64, "xdplb_ct_way layout: one cache line");

/* One conntrack bucket: the value of the conntrack array. */
struct xdplb_ct_bucket {
	struct xdplb_ct_way ways[XDPLB_CT_WAYS];
};
_Static_assert(sizeof(struct xdplb_ct_bucket) == 64 * XDPLB_CT_WAYS, "xdplb_ct_bucket layout");

/* The node's run-time settings: one entry (key 0) of the config array. */
struct xdplb_node_cfg {
	__be32 encap_src_v4;
	__be32 encap_src_v6[4];
	__u32 hash_seed; /* cluster-wide; the same on every node */
	__u16 path_mtu;  /* largest outer IP packet (bytes, IP header included) */
	__u16 pad;
	__u32 abi_version; /* XDPLB_ABI_VERSION of the agent that wrote it */
	__u32 ct_mask;     /* conntrack buckets - 1 (their number is a power of two) */
	__u32 flags;       /* XDPLB_NODE_F_* (0 in maps of agents before protection) */
};
_Static_assert(sizeof(struct xdplb_node_cfg) == 40, "xdplb_node_cfg layout");

/* Bits of the VIP address prefilter (a power of two) and the shift that maps a 32-bit hash onto them. */
#define XDPLB_VIP_FILTER_BITS 32768
#define XDPLB_VIP_FILTER_SHIFT 17

/*
 * The VIP address prefilter (one entry, key 0): bit b is set when some VIP
 * address hashes to b. A clear bit means "no VIP here" without a hash-map
 * lookup, which keeps non-VIP traffic near the cost of parsing; a set bit is
 * confirmed in xdplb_vip_addrs. enabled = 0 (maps from an agent that predates
 * the filter) turns it off. The bit of an address: XOR of its four address
 * words (as loaded, little-endian), times 0x9E3779B1, shifted right by
 * XDPLB_VIP_FILTER_SHIFT; C in bpf/backend.h, Swift in Sources/DataPlane/VIPFilter.swift.
 */
struct xdplb_vip_filter {
	__u32 enabled;
	__u32 pad;
	__u64 words[XDPLB_VIP_FILTER_BITS / 64];
};
_Static_assert(sizeof(struct xdplb_vip_filter) == 8 + XDPLB_VIP_FILTER_BITS / 8, "xdplb_vip_filter layout");

/* One per-CPU counter value: global outcome, per VIP or per backend. */
struct xdplb_counter {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct xdplb_counter) == 16, "xdplb_counter layout");

/* ---- 4b. second chance: the previous ring and the second hop ------------ */

/*
 * xdplb_rings_prev[vip_index] is the ring the VIP had before its last change
 * (absent: none, or its time is up; the agent deletes it after the VIP's
 * second_chance time). A non-SYN packet that misses conntrack takes its
 * backend from the current ring as always; when the previous ring picks
 * another backend that is still PRESENT (healthy or draining), the packet
 * carries that one as its second hop, and conntrack remembers both. SYNs
 * never carry one.
 *
 * On the wire (RFC 2890): the GRE header grows by the key,
 *   [flags/version 0x2000 (K)][protocol][key, 4 bytes, network order]
 * so the outer overhead is XDPLB_GRE_OVERHEAD_V4/V6 + 4. The key is the
 * second hop:
 *   - an IPv4 backend: its address (a.b.c.d -> bytes a b c d);
 *   - an IPv6 backend: 0x00 then a 24-bit hop id (0.x.x.x is never a
 *     backend's IPv4 address): xdplb_hop_id_v6 below of its 16 address bytes,
 *     which a backend maps back with the list of its peers (tools/gre-decap
 *     --peer);
 *   - XDPLB_HOP_HANDED_ON (255.255.255.255): written by a backend that hands
 *     the packet on; it forbids a further hop (the receiver delivers it).
 * Packets without a second hop keep the plain 4-byte header.
 */
#define XDPLB_GRE_FLAG_KEY 0x2000
#define XDPLB_HOP_HANDED_ON 0xffffffffU
#define XDPLB_HOP_V6_MASK 0x00ffffffU
/*
 * Hop id of an IPv6 backend: its address as four big-endian u32 words
 * w0..w3, h = w0 * 0x9E3779B1 ^ w1 * 0x85EBCA77 ^ w2 * 0xC2B2AE3D ^ w3 *
 * 0x27D4EB2F (mod 2^32), h ^= h >> 15, h ^= h >> 7, id = h & 0xffffff, and
 * 0 becomes 1. C in bpf/hop.h, Swift in Sources/DataPlane/SecondHop.swift,
 * bash in tools/gre-decap.
 */

/* ---- 4c. protection: prefix lists and per-source limits ---------------- */

/*
 * Off unless the node config has XDPLB_NODE_F_PROTECT: then a TCP/UDP packet
 * to a VIP reads xdplb_protect[vip_index] (an array entry, no helper call),
 * and a VIP whose flags there are 0 costs nothing more. In order:
 *
 * 1. Prefix lists (XDPLB_PROTECT_F_PREFIXES_VIP / _ALL): the source is looked
 *    up in the LPM trie xdplb_prefixes, first in the VIP's scope, then (no
 *    match there) in the global scope. The longest prefix of the first scope
 *    that has one decides: DENY drops the packet (XDPLB_CNT_DROP_DENY), ALLOW
 *    exempts it from the limits below.
 * 2. Per-source limits: the source masked to the VIP's plen_v4 / plen_v6 is a
 *    key of the LRU hash xdplb_src_state, one entry per (VIP, source prefix).
 *    Each limit is GCRA (a token bucket kept as one "theoretical arrival
 *    time", tat, in ns of bpf_ktime_get_ns): a packet of cost c is admitted
 *    when max(tat, now) + c - now <= burst_ns, and then tat = max(tat, now) +
 *    c. So `burst` packets pass at once, then one every c ns: c =
 *    1e9 / rate (rounded down), burst_ns = burst * c. Every packet is charged
 *    to the packet limit (XDPLB_CNT_DROP_RATE_SRC_PPS when over); a packet
 *    that starts a flow (a SYN, or a packet that misses conntrack, just
 *    before the ring would decide) to the new-flow limit
 *    (XDPLB_CNT_DROP_RATE_SRC_SYN). A dropped packet is not charged. Two CPUs
 *    charging one source use atomics (compare-and-swap, then add), so the
 *    limit holds across CPUs. The limits are per LB node: with N nodes behind
 *    ECMP, one source's flows spread over the nodes.
 *
 * Per VIP, xdplb_vip_flows[vip_index] (per CPU) counts the flows the ring
 * decided (the agent's new-flow rate, its flood signal) and the drops above.
 */
#define XDPLB_NODE_F_PROTECT (1U << 0) /* struct xdplb_node_cfg.flags: read xdplb_protect */

/* struct xdplb_vip_protect.flags */
#define XDPLB_PROTECT_F_PREFIXES_VIP (1U << 0) /* the VIP has prefixes of its own scope */
#define XDPLB_PROTECT_F_PREFIXES_ALL (1U << 1) /* global prefixes apply to the VIP */
#define XDPLB_PROTECT_F_LIMIT_FLOWS (1U << 2)  /* new flows per source prefix */
#define XDPLB_PROTECT_F_LIMIT_PKTS (1U << 3)   /* packets per source prefix */

/* Value of xdplb_protect, indexed by vip_index. */
struct xdplb_vip_protect {
	__u32 flags;   /* XDPLB_PROTECT_F_*; 0: nothing to do */
	__u8 plen_v4;  /* source prefix length of the limits' keys, 16..32 */
	__u8 plen_v6;  /* 48..128 */
	__u16 pad;
	__u64 flow_cost_ns;  /* 1e9 / new flows per second */
	__u64 flow_burst_ns; /* burst * flow_cost_ns */
	__u64 pkt_cost_ns;   /* 1e9 / packets per second */
	__u64 pkt_burst_ns;  /* burst * pkt_cost_ns */
};
_Static_assert(sizeof(struct xdplb_vip_protect) == 40, "xdplb_vip_protect layout");

/*
 * Key of the LPM trie xdplb_prefixes: prefixlen = 32 + the prefix's length
 * (the scope word always matches whole). scope = family << 24 | (0: every
 * VIP; vip_index + 1: that VIP), in host order; an IPv4 prefix sits in
 * addr[0].
 */
struct xdplb_prefix_key {
	__u32 prefixlen;
	__u32 scope;
	__be32 addr[4];
};
_Static_assert(sizeof(struct xdplb_prefix_key) == 24, "xdplb_prefix_key layout");
#define XDPLB_PREFIX_SCOPE(family, vip_slot) (((__u32)(family) << 24) | (vip_slot))
#define XDPLB_PREFIXES_MAX 65536

/* Value of xdplb_prefixes. */
#define XDPLB_PREFIX_DENY 1
#define XDPLB_PREFIX_ALLOW 2
struct xdplb_prefix_rule {
	__u32 action; /* XDPLB_PREFIX_DENY | XDPLB_PREFIX_ALLOW */
};
_Static_assert(sizeof(struct xdplb_prefix_rule) == 4, "xdplb_prefix_rule layout");

/* Key and value of xdplb_src_state (LRU hash). */
struct xdplb_src_key {
	__be32 addr[4]; /* the source, masked to the VIP's plen */
	__u32 vip_index;
	__u8 family;
	__u8 pad[3];
};
_Static_assert(sizeof(struct xdplb_src_key) == 24, "xdplb_src_key layout");
struct xdplb_src_state {
	__u64 flow_tat; /* GCRA of the new-flow limit, ns */
	__u64 pkt_tat;  /* GCRA of the packet limit, ns */
};
_Static_assert(sizeof(struct xdplb_src_state) == 16, "xdplb_src_state layout");
#define XDPLB_SRC_STATE_MAX 131072

/* Value of xdplb_vip_flows (per CPU), indexed by vip_index. */
struct xdplb_vip_flows {
	__u64 new_flows;         /* flows the ring decided */
	__u64 drop_deny;         /* XDPLB_CNT_DROP_DENY of this VIP */
	__u64 drop_rate_src_syn; /* XDPLB_CNT_DROP_RATE_SRC_SYN of this VIP */
	__u64 drop_rate_src_pps; /* XDPLB_CNT_DROP_RATE_SRC_PPS of this VIP */
};
_Static_assert(sizeof(struct xdplb_vip_flows) == 32, "xdplb_vip_flows layout");

/* ---- 5. counters (index into the per-CPU counter array) ----------------- */

/*
 * Outcome counters: every packet increments exactly one of the outcome
 * counters (PASS_*, FWD_*, TX_*, DROP_*, NO_OUTCOME), so RX is their sum.
 * Since session 12 the program no longer writes RX (one per-CPU update less
 * per packet): readers derive it as that sum, which is also what older
 * programs, which did write it, left there. NO_OUTCOME counts a packet that
 * ended without one (a bug: tests require it to stay 0).
 * Path counters (CT_*, NEW_FLOW, ICMP_FWD, IPV4_OPTIONS, GRE_V4/V6) count a
 * step on the way and come on top. Append only; never renumber.
 * Sources/DataPlane/CounterNames.swift mirrors this list by name.
 */
enum xdplb_counter_id {
	XDPLB_CNT_RX = 0,            /* every packet the program saw: derived (the sum of the outcomes), not written */
	XDPLB_CNT_PASS_NOT_IP,       /* not IPv4/IPv6 (ARP, LLDP, ...) */
	XDPLB_CNT_PASS_NOT_VIP,      /* IP, but no VIP matches */
	XDPLB_CNT_PASS_MALFORMED,    /* L2/L3 header truncated or bogus: kernel decides */
	XDPLB_CNT_PASS_ICMP_OTHER,   /* ICMP to a VIP address that isn't an error about a VIP flow */
	XDPLB_CNT_PASS_NO_NEIGH,     /* encapsulated, next hop unresolved: kernel forwards it */
	XDPLB_CNT_FWD_TX,            /* encapsulated, sent back out the ingress interface */
	XDPLB_CNT_FWD_REDIRECT,      /* encapsulated, redirected to another interface */
	XDPLB_CNT_TX_TOO_BIG,        /* ICMP frag-needed / packet-too-big sent to the client */
	XDPLB_CNT_DROP_MALFORMED,    /* to a VIP, but L4 header truncated or bogus */
	XDPLB_CNT_DROP_NO_BACKEND,   /* VIP with an empty ring */
	XDPLB_CNT_DROP_FRAGMENT,     /* IP fragment to a VIP address */
	XDPLB_CNT_DROP_IPV6_EXT,     /* IPv6 extension header to a VIP address */
	XDPLB_CNT_DROP_ENCAP_FAIL,   /* no room to encapsulate, or no encap source */
	XDPLB_CNT_DROP_FIB_FAIL,     /* FIB lookup found no route to the backend */
	XDPLB_CNT_DROP_TOO_BIG,      /* too big for the path, DF clear: can't signal */
	XDPLB_CNT_CT_HIT,            /* path: conntrack entry used */
	XDPLB_CNT_CT_MISS,           /* path: no usable conntrack entry */
	XDPLB_CNT_NEW_FLOW,          /* path: backend chosen from the Maglev ring */
	XDPLB_CNT_ICMP_FWD,          /* path: ICMP error sent to the backend of its flow */
	XDPLB_CNT_IPV4_OPTIONS,      /* path: IPv4 header with options (forwarded as is) */
	XDPLB_CNT_GRE_V4,            /* path: encapsulated in outer IPv4 */
	XDPLB_CNT_GRE_V6,            /* path: encapsulated in outer IPv6 */
	XDPLB_CNT_SECOND_HOP,        /* path: sent with a second hop in the GRE key */
	XDPLB_CNT_DROP_DENY,         /* source in a deny prefix (section 4c) */
	XDPLB_CNT_DROP_RATE_SRC_SYN, /* source prefix over its new-flow limit */
	XDPLB_CNT_DROP_RATE_SRC_PPS, /* source prefix over its packet limit */
	XDPLB_CNT_NO_OUTCOME,        /* ended without an outcome (a bug; must stay 0) */
	XDPLB_CNT_MAX
};
_Static_assert(XDPLB_CNT_MAX <= XDPLB_CNT_SLOTS, "counters fit the counter array");

/* ---- 6. pin names (files under the bpffs directory, default below) ----- */

#define XDPLB_BPFFS_DEFAULT "/sys/fs/bpf/xdplb"
#define XDPLB_PIN_LINK "link"           /* the bpf_link holding the attachment */
#define XDPLB_MAP_VIPS "xdplb_vips"
#define XDPLB_MAP_VIP_ADDRS "xdplb_vip_addrs"
#define XDPLB_MAP_RINGS "xdplb_rings"
#define XDPLB_MAP_RINGS_PREV "xdplb_rings_prev"
#define XDPLB_MAP_BACKENDS "xdplb_backends"
#define XDPLB_MAP_CT "xdplb_ct"
#define XDPLB_MAP_CONFIG "xdplb_config"
#define XDPLB_MAP_COUNTERS "xdplb_counters"
#define XDPLB_MAP_VIP_STATS "xdplb_vip_stats"
#define XDPLB_MAP_BACKEND_STATS "xdplb_backend_stats"
#define XDPLB_MAP_VIP_FILTER "xdplb_vip_filter"
#define XDPLB_MAP_VIP_TABLE "xdplb_vip_table"
#define XDPLB_MAP_PROTECT "xdplb_protect"
#define XDPLB_MAP_PREFIXES "xdplb_prefixes"
#define XDPLB_MAP_SRC_STATE "xdplb_src_state"
#define XDPLB_MAP_VIP_FLOWS "xdplb_vip_flows"
#define XDPLB_PROG_BALANCER "xdplb_balancer"

/* ==== 7. decap: the backend side (bpf/decap.bpf.c, tools/gre-decap) ====== */

/*
 * A backend's GRE decapsulation program, tc (xdplb_decap) or XDP
 * (xdplb_decap_xdp), counts into its own per-CPU array of struct xdplb_counter
 * indexed by the ids below. Every packet counts XDPLB_DECAP_CNT_RX and exactly
 * one outcome counter (PASS_*, DECAP_*, DROP_*), so the outcomes sum to RX.
 * Append only; never renumber. tools/gre-decap mirrors this list by name
 * (counter_names) for its status output.
 */
enum xdplb_decap_counter_id {
	XDPLB_DECAP_CNT_RX = 0,          /* every packet the program saw */
	XDPLB_DECAP_CNT_PASS_NOT_GRE,    /* not IPv4/IPv6 carrying GRE: untouched */
	XDPLB_DECAP_CNT_PASS_NOT_HOST,   /* tc: frame not addressed to this host's MAC */
	XDPLB_DECAP_CNT_PASS_GRE_OTHER,  /* GRE with flags/version set, or inner not IP: untouched */
	XDPLB_DECAP_CNT_PASS_FRAGMENT,   /* outer IPv4 fragment: left to the kernel */
	XDPLB_DECAP_CNT_PASS_MALFORMED,  /* outer or inner header truncated or bogus: untouched */
	XDPLB_DECAP_CNT_PASS_ERROR,      /* the kernel refused the decap, packet untouched */
	XDPLB_DECAP_CNT_DECAP_4IN4,      /* decapsulated: outer IPv4, inner IPv4 */
	XDPLB_DECAP_CNT_DECAP_6IN4,      /* decapsulated: outer IPv4, inner IPv6 */
	XDPLB_DECAP_CNT_DECAP_4IN6,      /* decapsulated: outer IPv6, inner IPv4 */
	XDPLB_DECAP_CNT_DECAP_6IN6,      /* decapsulated: outer IPv6, inner IPv6 */
	XDPLB_DECAP_CNT_DROP_ERROR,      /* the kernel failed half way through: dropped */
	/* Second chance (section 4b). Outcomes: */
	XDPLB_DECAP_CNT_FWD_HANDED_ON,   /* no local socket: sent on to the second hop (key: handed on) */
	XDPLB_DECAP_CNT_DROP_HOP_UNKNOWN, /* no local socket and the key names no usable address (bogus, or an unknown IPv6 hop id) */
	XDPLB_DECAP_CNT_DROP_HOP_NO_ROUTE, /* no local socket, no route or neighbour toward the second hop */
	XDPLB_DECAP_CNT_PASS_KERNEL,     /* xdplb_decap_front: plain GRE, left to the kernel's GRE device */
	/* ... and paths, on top of a DECAP_* outcome (the packet was delivered here): */
	XDPLB_DECAP_CNT_HOP_LOCAL_SYN,   /* a second hop, but the inner packet is a SYN */
	XDPLB_DECAP_CNT_HOP_LOCAL_SOCKET, /* a second hop, but a local socket has the flow */
	XDPLB_DECAP_CNT_HOP_RECEIVED,    /* handed on to us by the first hop */
	XDPLB_DECAP_CNT_HOP_OTHER_FAMILY, /* the second hop is of the other family than the outer header: delivered here */
	XDPLB_DECAP_CNT_MAX
};

/*
 * A backend hands a packet on when it carries a second hop (a GRE key other
 * than XDPLB_HOP_HANDED_ON), the inner packet is not a TCP SYN, and no local
 * socket has the flow: a TCP socket that is not listening (established,
 * request, time-wait; bpf_skc_lookup_tcp), or a connected UDP socket
 * (bpf_sk_lookup_udp, a socket with a peer). The outer header is turned
 * around in place (source = the received destination, destination = the
 * second hop, TTL/hop limit 64, key = XDPLB_HOP_HANDED_ON) and sent toward
 * the second hop; the receiver always delivers a handed-on packet, so a
 * packet is handed on at most once. IPv6 hop ids resolve through
 * xdplb_hop_peers (hop id -> address), which tools/gre-decap --peer fills.
 */
struct xdplb_decap_peer {
	__be32 addr[4];
};
_Static_assert(sizeof(struct xdplb_decap_peer) == 16, "xdplb_decap_peer layout");
#define XDPLB_DECAP_PEERS_MAX 16384

/* Object names (at most 15 characters: the kernel keeps no more). */
#define XDPLB_MAP_DECAP_COUNTERS "xdplb_decap_cnt"
#define XDPLB_MAP_DECAP_PEERS "xdplb_hop_peers"
#define XDPLB_PROG_DECAP_FRONT "xdplb_decap_front" /* tc ingress in front of kernel GRE: keyed GRE only */
#define XDPLB_PROG_DECAP "xdplb_decap"         /* tc clsact ingress, direct-action */
#define XDPLB_PROG_DECAP_XDP "xdplb_decap_xdp" /* XDP */

/* ==== 8. bench: the restoring loop of `xdplb bench` (bpf/bench.bpf.c) ===== */

/*
 * xdplb_bench_loop runs inside one BPF_PROG_TEST_RUN with repeat = N. Each
 * run first puts the original frame back (head moved back to where it was,
 * the first prefix_len bytes rewritten, the flow's source address and port
 * set), then tail-calls slot `target` of xdplb_bench_progs: a floor program
 * or a balancer build. So every timed run sees the original packet, with
 * caches warm as in a driver's NAPI loop; the floor slots pay the same
 * restore, so case - floor is the program's own cost.
 */
#define XDPLB_BENCH_PREFIX_MAX 64     /* bytes rewritten per run: every header the program reads */
#define XDPLB_BENCH_FLOWS_MAX 262144  /* entries of xdplb_bench_flows */
#define XDPLB_BENCH_SLOTS 4           /* entries of xdplb_bench_progs */
#define XDPLB_BENCH_CPUS 64           /* entries of xdplb_bench_state: one per CPU running the loop */
#define XDPLB_BENCH_PORTS_PER_ADDR 64000 /* flow k: address base_low + k / this, port 1024 + k % this */

/* struct xdplb_bench_state.mode: which flow each run carries. */
#define XDPLB_BENCH_FIXED 0    /* the prefix as is */
#define XDPLB_BENCH_DISTINCT 1 /* flow `next`, then next + 1, ... (a new flow every run) */
#define XDPLB_BENCH_CYCLE 2    /* flow xdplb_bench_flows[pos], pos round and round nflows */
#define XDPLB_BENCH_MIX 3      /* as CYCLE, but an entry with XDPLB_BENCH_MIX_NEW is flow `next` (then next + 1) */
#define XDPLB_BENCH_MIX_NEW 0x80000000U

/* Entry `CPU` of xdplb_bench_state, for the loop running on that CPU; the loop advances next/pos. */
struct xdplb_bench_state {
	__u32 target;      /* slot of xdplb_bench_progs to run */
	__u32 frame_len;   /* the original frame's length */
	__u32 prefix_len;  /* 1..XDPLB_BENCH_PREFIX_MAX, at most frame_len */
	__u32 mode;        /* XDPLB_BENCH_* */
	__u32 next;        /* DISTINCT, MIX: the next new flow's number */
	__u32 pos;         /* CYCLE, MIX: the next index into xdplb_bench_flows */
	__u32 nflows;      /* CYCLE, MIX: entries in use, 1..XDPLB_BENCH_FLOWS_MAX */
	__u32 src_low_off; /* frame offset of the source address's last 4 bytes */
	__u32 sport_off;   /* frame offset of the source port */
	__u32 base_low;    /* last 4 bytes of flow 0's source address, host order */
	__u8 prefix[XDPLB_BENCH_PREFIX_MAX];
	__u32 clock;       /* nonzero: record first_ns/last_ns (parallel runs: when each CPU really ran) */
	__u32 pad;
	__u64 first_ns;    /* bpf_ktime_get_ns() of the first run with `clock` set (0: none yet) */
	__u64 last_ns;     /* ... of the latest such run */
};
_Static_assert(sizeof(struct xdplb_bench_state) == 128, "xdplb_bench_state layout");

#define XDPLB_MAP_BENCH_STATE "xdplb_bench_st"
#define XDPLB_MAP_BENCH_FLOWS "xdplb_bench_fl"
#define XDPLB_MAP_BENCH_PROGS "xdplb_bench_pr"
#define XDPLB_PROG_BENCH_LOOP "xdplb_bench_loop"

/* ==== 9. probe: through-tunnel health checks on the LB node (bpf/probe.bpf.c) ==== */

/*
 * The agent's through-tunnel probe sockets set SO_MARK to XDPLB_PROBE_MARK |
 * backend id and connect to the VIP. xdplb_probe (tc clsact egress on the
 * node's interface) wraps each such packet in the data plane's own outer
 * header (bpf/encap.h: outer IPv4 or IPv6, 4-byte GRE, DF, TTL 64) toward that
 * backend, clears the mark and sends it to the backend's next hop; the backend
 * decapsulates it like client traffic and answers the probe by DSR, from the
 * VIP. Unmarked packets pass untouched. Every marked packet counts
 * XDPLB_PROBE_CNT_RX and exactly one outcome below. Append only.
 */
#define XDPLB_PROBE_MARK 0x58440000U      /* 'XD' in the high 16 bits */
#define XDPLB_PROBE_MARK_MASK 0xffff0000U /* mark & this == XDPLB_PROBE_MARK: a probe */
#define XDPLB_PROBE_ID_MASK 0x0000ffffU   /* mark & this: the backend id */
#define XDPLB_PROBE_TC_PRIORITY 0x5844     /* tc filter priority (and handle 1) on egress */

enum xdplb_probe_counter_id {
	XDPLB_PROBE_CNT_RX = 0,           /* marked packets seen */
	XDPLB_PROBE_CNT_GRE_V4,           /* encapsulated in outer IPv4, sent */
	XDPLB_PROBE_CNT_GRE_V6,           /* encapsulated in outer IPv6, sent */
	XDPLB_PROBE_CNT_DROP_NO_BACKEND,  /* the id is not a live backend */
	XDPLB_PROBE_CNT_DROP_NO_SOURCE,   /* no encap source of the backend's family */
	XDPLB_PROBE_CNT_DROP_MALFORMED,   /* not Ethernet + IPv4/IPv6 */
	XDPLB_PROBE_CNT_DROP_ENCAP_FAIL,  /* the kernel refused to grow the packet */
	XDPLB_PROBE_CNT_DROP_FIB_FAIL,    /* no route to the backend */
	XDPLB_PROBE_CNT_MAX
};

#define XDPLB_MAP_PROBE_COUNTERS "xdplb_probe_cnt"
#define XDPLB_PROG_PROBE "xdplb_probe"    /* tc clsact egress, direct-action */

#endif /* XDPLB_ABI_H */
