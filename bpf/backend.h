/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * From a flow to a backend: VIP match, flow hash, conntrack, Maglev ring.
 * All of it works on pkt->flow (the client -> VIP flow). BPF-only.
 */
#ifndef XDPLB_BACKEND_H
#define XDPLB_BACKEND_H

#include "parse.h"
#include "maps.h"
#include "counters.h"
#include "flow_hash.h"
#include "conntrack.h"
#include "hop.h"
#include "protect.h"

/* The node config (array key 0). NULL only if the map is broken. */
static __always_inline struct xdplb_node_cfg *config_get(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&xdplb_config, &key);
}

/* The prefilter bit of an address (flow-key layout; see xdplb_abi.h). */
static __always_inline __u32 vip_filter_bit(const __be32 *addr)
{
	__u32 h = addr[0] ^ addr[1] ^ addr[2] ^ addr[3];

	return (h * 0x9E3779B1U) >> XDPLB_VIP_FILTER_SHIFT;
}

/*
 * May `addr` (flow-key layout) be a VIP address? False means certainly not:
 * one array load (inlined by the verifier) instead of a hash-map lookup.
 */
static __always_inline bool vip_filter_maybe(const __be32 *addr)
{
	struct xdplb_vip_filter *filter;
	__u32 zero = 0, bit;

	filter = bpf_map_lookup_elem(&xdplb_vip_filter, &zero);
	if (!filter || !filter->enabled)
		return true;
	bit = vip_filter_bit(addr);
	return filter->words[(bit >> 6) & (XDPLB_VIP_FILTER_BITS / 64 - 1)] & (1ULL << (bit & 63));
}

/*
 * Is `addr` (flow-key layout) an address with at least one VIP? The
 * prefilter answers "no" for almost every non-VIP address first.
 */
static __always_inline struct xdplb_vip_addr *vip_addr_lookup(__u8 family, const __be32 *addr)
{
	struct xdplb_vip_addr_key key = {};

	if (!vip_filter_maybe(addr))
		return NULL;

	key.family = family;
	key.addr[0] = addr[0];
	key.addr[1] = addr[1];
	key.addr[2] = addr[2];
	key.addr[3] = addr[3];
	return bpf_map_lookup_elem(&xdplb_vip_addrs, &key);
}

/* The home slot of a VIP key in the VIP table (xdplb_abi.h). */
static __always_inline __u32 vip_table_home(const struct xdplb_vip_key *key)
{
	const __u32 *w = (const __u32 *)key;
	__u32 h = w[0] * 0x9E3779B1U ^ w[1] * 0x85EBCA77U ^ w[2] * 0xC2B2AE3DU ^ w[3] * 0x27D4EB2FU ^
		  w[4] * 0x165667B1U;

	h ^= h >> 15;
	return (h * 0x2C1B3C6DU) >> (32 - XDPLB_VIP_TABLE_BITS);
}

static __always_inline bool vip_key_equal(const struct xdplb_vip_key *a, const struct xdplb_vip_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/* vip_table_find results */
#define XDPLB_VIP_ABSENT 0
#define XDPLB_VIP_FOUND 1
#define XDPLB_VIP_UNSURE 2 /* a slot was being written: ask the hash map */

/*
 * The meta of `key` from the VIP table, copied to *out (slots may change under
 * us). A window whose every slot holds another key is UNSURE, not ABSENT: the
 * agent places a key in its window whenever a slot there is free, so a key
 * missing from a full window is a VIP that overflowed it and lives only in the
 * hash map.
 */
static __always_inline int vip_table_find(const struct xdplb_vip_key *key, struct xdplb_vip_meta *out)
{
	__u32 home = vip_table_home(key);
	int result = XDPLB_VIP_ABSENT;
	__u32 full = 1;
	struct xdplb_vip_slot *s;
	__u32 i, idx, seq;

#pragma unroll
	for (i = 0; i < XDPLB_VIP_TABLE_PROBES; i++) {
		idx = (home + i) & (XDPLB_VIP_TABLE_SLOTS - 1);
		s = bpf_map_lookup_elem(&xdplb_vip_table, &idx);
		if (!s)
			return XDPLB_VIP_UNSURE;
		seq = XDPLB_READ_ONCE(s->seq);
		if (seq & 1) {
			result = XDPLB_VIP_UNSURE;
			continue;
		}
		xdplb_barrier();
		if (!vip_key_equal(&s->key, key)) {
			full &= s->key.family != 0;
			continue;
		}
		*out = s->meta;
		xdplb_barrier();
		return XDPLB_READ_ONCE(s->seq) == seq ? XDPLB_VIP_FOUND : XDPLB_VIP_UNSURE;
	}
	return full ? XDPLB_VIP_UNSURE : result;
}

/* The VIP of `key`: the table, or the hash map when the table isn't sure. */
static __always_inline bool vip_get(const struct xdplb_vip_key *key, struct xdplb_vip_meta *out)
{
	struct xdplb_vip_meta *m;
	int found = vip_table_find(key, out);

	if (found != XDPLB_VIP_UNSURE)
		return found == XDPLB_VIP_FOUND;
	m = bpf_map_lookup_elem(&xdplb_vips, key);
	if (!m)
		return false;
	*out = *m;
	return true;
}

/*
 * The VIP of the flow's destination, copied to *vip: the exact (address,
 * port, protocol) key first, which is the one lookup most VIP packets pay;
 * only on a miss the address entry says whether a port-0 VIP of the protocol
 * exists.
 */
static __always_inline bool vip_match(const struct xdplb_pkt *pkt, struct xdplb_vip_meta *vip)
{
	struct xdplb_vip_key key = {};
	struct xdplb_vip_addr *vaddr;
	__u32 port0;

	key.addr[0] = pkt->flow.dst[0];
	key.addr[1] = pkt->flow.dst[1];
	key.addr[2] = pkt->flow.dst[2];
	key.addr[3] = pkt->flow.dst[3];
	key.port = pkt->flow.dport;
	key.proto = pkt->flow.proto;
	key.family = pkt->flow.family;
	if (vip_get(&key, vip))
		return true;
	vaddr = vip_addr_lookup(pkt->flow.family, pkt->flow.dst);
	if (!vaddr)
		return false;
	port0 = pkt->flow.proto == IPPROTO_TCP ? XDPLB_VIP_ADDR_F_PORT0_TCP
					       : XDPLB_VIP_ADDR_F_PORT0_UDP;
	if (!(vaddr->flags & port0))
		return false;
	key.port = 0;
	return vip_get(&key, vip);
}

/* The flow hash (flow_hash.h) of pkt->flow: 5-tuple, or source address only. */
static __always_inline __u32 flow_hash_mode(const struct xdplb_pkt *pkt, bool src_only, __u32 seed)
{
	__u32 ports;

	/* sport then dport as on the wire, loaded as one little-endian word. */
	__builtin_memcpy(&ports, &pkt->flow.sport, sizeof(ports));
	return xdplb_flow_hash(pkt->flow.src, pkt->flow.dst, ports, pkt->flow.proto,
			       pkt->flow.family == XDPLB_FAMILY_V6, src_only, seed);
}

/* A live backend by id: NULL when out of range or not PRESENT. */
static __always_inline struct xdplb_backend *backend_get(__u32 id)
{
	struct xdplb_backend *be = bpf_map_lookup_elem(&xdplb_backends, &id);

	if (!be || !(be->flags & XDPLB_BACKEND_F_PRESENT))
		return NULL;
	return be;
}

/*
 * The conntrack entry's backend, if it is still the backend the entry saw;
 * *hop = the entry's second hop id (0: none).
 */
static __always_inline struct xdplb_backend *ct_lookup(struct xdplb_ct_bucket *bucket,
							const struct xdplb_pkt *pkt, __u32 *id, __u32 *hop)
{
	struct xdplb_ct_entry ct;
	struct xdplb_backend *be;
	__u32 bid;

	if (!bucket || !ct_get(bucket, &pkt->flow, &ct))
		return NULL;
	bid = ct.backend_id & XDPLB_CT_ID_MASK;
	be = backend_get(bid);
	if (!be || be->gen != ct.gen)
		return NULL;
	*id = bid;
	*hop = ct.backend_id >> XDPLB_CT_HOP_SHIFT;
	return be;
}

/* The live backend of a ring slot (xdplb_abi.h), or NULL for an empty slot. */
static __always_inline struct xdplb_backend *ring_backend(__u32 slot, __u32 *id)
{
	__u32 bid = slot & XDPLB_RING_ID_MASK;

	if (bid == 0)
		return NULL;
	*id = bid;
	return backend_get(bid);
}

/* Slot `s` of `ring` (slot value as in xdplb_abi.h); false past the ring's end. */
static __always_inline bool ring_slot(void *ring, __u32 s, __u32 *slot)
{
	__u32 key = 1 + s / XDPLB_RING_SLOTS_PER_ELEM;
	__u16 *elem = bpf_map_lookup_elem(ring, &key);

	if (!elem)
		return false;
	*slot = elem[s & (XDPLB_RING_SLOTS_PER_ELEM - 1)];
	return true;
}

/* The slot `hash` picks in `ring` by the ring's own head: false for an empty or broken ring. */
static __always_inline bool ring_slot_by_head(void *ring, __u32 hash, __u32 *slot)
{
	__u32 key = 0;
	struct xdplb_ring_head *head = bpf_map_lookup_elem(ring, &key);

	if (!head || head->size == 0)
		return false;
	return ring_slot(ring, hash % head->size, slot);
}

/*
 * Maglev: slot hash % M of the VIP's ring. M and the ring's tag come from the
 * VIP meta, and the slot's tag proves the ring is that one (one load, not
 * two); on a mismatch (a ring swapped in since) M is read from the ring's
 * head. NULL when the VIP has no ring, the ring is empty, the slot holds 0,
 * or its backend isn't PRESENT.
 */
static __always_inline struct xdplb_backend *ring_pick(const struct xdplb_vip_meta *vip, __u32 hash, __u32 *id)
{
	__u32 size = vip->ring_size, slot;
	void *ring;

	ring = bpf_map_lookup_elem(&xdplb_rings, &vip->vip_index);
	if (!ring)
		return NULL;
	if (size && ring_slot(ring, hash % size, &slot) && (slot >> XDPLB_RING_ID_BITS) == vip->ring_tag)
		return ring_backend(slot, id);
	if (!ring_slot_by_head(ring, hash, &slot))
		return NULL;
	return ring_backend(slot, id);
}

/*
 * Second chance (xdplb_abi.h 4b): the backend id the VIP's previous ring
 * gives `hash`, when there is a previous ring and that id is not `id`; 0
 * otherwise. The previous ring's size is its own head's.
 */
static __always_inline __u32 prev_ring_pick(const struct xdplb_vip_meta *vip, __u32 hash, __u32 id)
{
	__u32 slot, bid;
	void *ring;

	ring = bpf_map_lookup_elem(&xdplb_rings_prev, &vip->vip_index);
	if (!ring || !ring_slot_by_head(ring, hash, &slot))
		return 0;
	bid = slot & XDPLB_RING_ID_MASK;
	return bid == id ? 0 : bid;
}

/* The second hop's backend for hop id `hop` (0: none), if still PRESENT. */
static __always_inline const struct xdplb_backend *second_hop_get(__u32 hop)
{
	return hop ? backend_get(hop) : NULL;
}

/*
 * The backend of pkt->flow. Non-SYN packets try conntrack first (CT_HIT /
 * CT_MISS); otherwise the ring decides (NEW_FLOW), and with `remember` the
 * choice is written to conntrack (a SYN's only into a way that holds no
 * established flow: conntrack.h). A non-SYN packet the ring decides gets the
 * previous ring's backend as its second hop when they differ (*hop; 0 =
 * none), and conntrack keeps it for the flow's later packets. Sets pkt->hash
 * (flow hash in the VIP's mode, node seed) whenever the ring is used or the
 * backend is IPv6 (its outer flow label). NULL: no backend.
 */
static __always_inline struct xdplb_backend *backend_pick(struct xdplb_pkt *pkt,
							  const struct xdplb_vip_meta *vip,
							  bool remember,
							  const struct xdplb_node_cfg *cfg, __u32 *id,
							  const struct xdplb_backend **hop_be,
							  struct xdplb_guard *guard)
{
	bool src_only = vip->flags & XDPLB_VIP_F_SRC_IP_HASH;
	__u32 ct_h = ct_hash(&pkt->flow, cfg->hash_seed);
	struct xdplb_ct_bucket *bucket = ct_bucket(cfg, ct_h);
	struct xdplb_backend *be = NULL;
	struct xdplb_vip_flows *flows;
	__u32 hop = 0, tuple;

	/* The ring's hash (a miss, a SYN) or the flow label (an IPv6 backend):
	 * computed while the bucket's line is on its way. */
	tuple = flow_hash_mode(pkt, false, cfg->hash_seed);

	if (!(pkt->flags & XDPLB_PKT_F_SYN)) {
		be = ct_lookup(bucket, pkt, id, &hop);
		count(be ? XDPLB_CNT_CT_HIT : XDPLB_CNT_CT_MISS, pkt->frame_len);
	}
	if (!be || (be->flags & XDPLB_BACKEND_F_IPV6))
		pkt->hash = src_only ? flow_hash_mode(pkt, true, cfg->hash_seed) : tuple;
	if (be) {
		if (hop)
			*hop_be = second_hop_get(hop);
		return be;
	}
	/* A flow the ring decides is a new flow of its source (per-source limit). */
	if (guard && !guard_new_flow(guard, vip->vip_index))
		return NULL;
	be = ring_pick(vip, pkt->hash, id);
	if (!be)
		return NULL;
	count(XDPLB_CNT_NEW_FLOW, pkt->frame_len);
	flows = vip_flows(vip->vip_index);
	if (flows)
		flows->new_flows += 1;
	if (!(pkt->flags & XDPLB_PKT_F_SYN)) {
		hop = prev_ring_pick(vip, pkt->hash, *id);
		*hop_be = second_hop_get(hop);
		if (!*hop_be)
			hop = 0;
	}
	if (remember && bucket)
		ct_put(bucket, &pkt->flow, ct_h, *id | hop << XDPLB_CT_HOP_SHIFT, be->gen,
		       pkt->flags & XDPLB_PKT_F_SYN);
	return be;
}

#endif /* XDPLB_BACKEND_H */
