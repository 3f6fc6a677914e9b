/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The balancer's maps. Names are the XDPLB_MAP_* strings of xdplb_abi.h (the
 * variable name is the map name); keys and values are the ABI structs. The
 * agent writes every map but the counters and the conntrack LRU, which the
 * program writes. BPF-only.
 */
#ifndef XDPLB_MAPS_H
#define XDPLB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdplb_abi.h"
#include "maps_node.h"

/* Default conntrack buckets (XDPLB_CT_WAYS flows each); the agent sizes
 * xdplb_ct from lru_size before load and writes ct_mask to match. */
#ifndef XDPLB_CT_DEFAULT_BUCKETS
#define XDPLB_CT_DEFAULT_BUCKETS 16384
#endif

/* VIP (address, port or 0, protocol, family) -> ring index and hash mode. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPLB_MAX_VIPS);
	__type(key, struct xdplb_vip_key);
	__type(value, struct xdplb_vip_meta);
} xdplb_vips SEC(".maps");

/* The VIP table (xdplb_abi.h): the VIPs of xdplb_vips, read without a helper call. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_VIP_TABLE_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct xdplb_vip_slot);
} xdplb_vip_table SEC(".maps");

/* Every address with a VIP: the one lookup non-VIP traffic pays, and its port-0 flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPLB_MAX_VIPS);
	__type(key, struct xdplb_vip_addr_key);
	__type(value, struct xdplb_vip_addr);
} xdplb_vip_addrs SEC(".maps");

/* One entry: the VIP address prefilter (a bitmap; see xdplb_abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdplb_vip_filter);
} xdplb_vip_filter SEC(".maps");

/*
 * Template of a Maglev ring (xdplb_abi.h): 8-byte elements, [0] the head,
 * then 4 slots of 2 bytes per element. BPF_F_INNER_MAP lets the agent swap
 * in rings of any size (1 + XDPLB_RING_ELEMS(M) elements); max_entries here
 * only shapes the template. BPF_F_MMAPABLE lets the agent fill a new ring
 * with one memcpy through mmap instead of a syscall per element.
 */
struct xdplb_ring_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64); /* struct xdplb_ring_head, or four slots */
};

/* vip_index -> that VIP's ring; replaced whole, so readers never see half a table. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XDPLB_MAX_VIPS);
	__type(key, __u32);
	__array(values, struct xdplb_ring_inner);
} xdplb_rings SEC(".maps");

/* vip_index -> the ring the VIP had before its last change (second chance, xdplb_abi.h 4b). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XDPLB_MAX_VIPS);
	__type(key, __u32);
	__array(values, struct xdplb_ring_inner);
} xdplb_rings_prev SEC(".maps");

/* xdplb_backends: maps_node.h (shared with the probe program). */

/* Conntrack: the flow table (xdplb_abi.h); written by the program. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_CT_DEFAULT_BUCKETS);
	__type(key, __u32);
	__type(value, struct xdplb_ct_bucket);
} xdplb_ct SEC(".maps");

/* xdplb_config: maps_node.h. */

/* Per-CPU outcome and path counters, indexed by enum xdplb_counter_id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPLB_CNT_SLOTS);
	__type(key, __u32);
	__type(value, struct xdplb_counter);
} xdplb_counters SEC(".maps");

/* Per-CPU forwarded packets/bytes per VIP, indexed by vip_index. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPLB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct xdplb_counter);
} xdplb_vip_stats SEC(".maps");

/* Per-CPU forwarded packets/bytes per backend, indexed by backend id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xdplb_counter);
} xdplb_backend_stats SEC(".maps");

/* Protection (xdplb_abi.h 4c): per VIP, what to check; written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct xdplb_vip_protect);
} xdplb_protect SEC(".maps");

/* Deny and allow prefixes, global and per VIP; written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XDPLB_PREFIXES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdplb_prefix_key);
	__type(value, struct xdplb_prefix_rule);
} xdplb_prefixes SEC(".maps");

/* Per (VIP, source prefix) limit state; written by the program. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDPLB_SRC_STATE_MAX);
	__type(key, struct xdplb_src_key);
	__type(value, struct xdplb_src_state);
} xdplb_src_state SEC(".maps");

/* Per-CPU new flows and protection drops per VIP, indexed by vip_index. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPLB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct xdplb_vip_flows);
} xdplb_vip_flows SEC(".maps");

#endif /* XDPLB_MAPS_H */
