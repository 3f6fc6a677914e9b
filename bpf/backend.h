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

/*
 * The VIP of the flow's destination: the exact (address, port, protocol) key
 * first, which is the one lookup most VIP packets pay; only on a miss the
 * address entry says whether a port-0 VIP of the protocol exists.
 */
static __always_inline struct xdplb_vip_meta *vip_match(const struct xdplb_pkt *pkt)
{
	struct xdplb_vip_key key = {};
	struct xdplb_vip_addr *vaddr;
	struct xdplb_vip_meta *vip;
	__u32 port0;

	key.addr[0] = pkt->flow.dst[0];
	key.addr[1] = pkt->flow.dst[1];
	key.addr[2] = pkt->flow.dst[2];
	key.addr[3] = pkt->flow.dst[3];
	key.port = pkt->flow.dport;
	key.proto = pkt->flow.proto;
	key.family = pkt->flow.family;
	vip = bpf_map_lookup_elem(&xdplb_vips, &key);
	if (vip)
		return vip;
	vaddr = vip_addr_lookup(pkt->flow.family, pkt->flow.dst);
	if (!vaddr)
		return NULL;
	port0 = pkt->flow.proto == IPPROTO_TCP ? XDPLB_VIP_ADDR_F_PORT0_TCP
					       : XDPLB_VIP_ADDR_F_PORT0_UDP;
	if (!(vaddr->flags & port0))
		return NULL;
	key.port = 0;
	return bpf_map_lookup_elem(&xdplb_vips, &key);
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

/* The conntrack entry's backend, if it is still the backend the entry saw. */
static __always_inline struct xdplb_backend *ct_lookup(struct xdplb_ct_bucket *bucket,
							const struct xdplb_pkt *pkt, __u32 *id)
{
	struct xdplb_ct_entry ct;
	struct xdplb_backend *be;

	if (!bucket || !ct_get(bucket, &pkt->flow, &ct))
		return NULL;
	be = backend_get(ct.backend_id);
	if (!be || be->gen != ct.gen)
		return NULL;
	*id = ct.backend_id;
	return be;
}

/*
 * Maglev: slot 1 + hash % M of the VIP's ring. NULL when the VIP has no ring,
 * the ring is empty, the slot holds 0, or its backend isn't PRESENT.
 */
static __always_inline struct xdplb_backend *ring_pick(__u32 vip_index, __u32 hash, __u32 *id)
{
	__u32 key = 0;
	__u32 *size, *slot;
	void *ring;

	ring = bpf_map_lookup_elem(&xdplb_rings, &vip_index);
	if (!ring)
		return NULL;
	size = bpf_map_lookup_elem(ring, &key);
	if (!size || *size == 0)
		return NULL;
	key = 1 + hash % *size;
	slot = bpf_map_lookup_elem(ring, &key);
	if (!slot || *slot == 0)
		return NULL;
	*id = *slot;
	return backend_get(*slot);
}

/*
 * The backend of pkt->flow. Non-SYN packets try conntrack first (CT_HIT /
 * CT_MISS); otherwise the ring decides (NEW_FLOW), and with `remember` the
 * choice is written to conntrack. Sets pkt->hash (flow hash in the VIP's
 * mode, node seed) whenever the ring is used or the backend is IPv6 (its
 * outer flow label). NULL: no backend.
 */
static __always_inline struct xdplb_backend *backend_pick(struct xdplb_pkt *pkt,
							  const struct xdplb_vip_meta *vip,
							  bool remember,
							  const struct xdplb_node_cfg *cfg, __u32 *id)
{
	bool src_only = vip->flags & XDPLB_VIP_F_SRC_IP_HASH;
	__u32 tuple = flow_hash_mode(pkt, false, cfg->hash_seed);
	struct xdplb_ct_bucket *bucket = ct_bucket(cfg, tuple);
	struct xdplb_backend *be = NULL;

	if (!(pkt->flags & XDPLB_PKT_F_SYN)) {
		be = ct_lookup(bucket, pkt, id);
		count(be ? XDPLB_CNT_CT_HIT : XDPLB_CNT_CT_MISS, pkt->frame_len);
	}
	if (!be || (be->flags & XDPLB_BACKEND_F_IPV6))
		pkt->hash = src_only ? flow_hash_mode(pkt, true, cfg->hash_seed) : tuple;
	if (be)
		return be;
	be = ring_pick(vip->vip_index, pkt->hash, id);
	if (!be)
		return NULL;
	count(XDPLB_CNT_NEW_FLOW, pkt->frame_len);
	if (remember && bucket)
		ct_put(bucket, &pkt->flow, tuple, *id, be->gen);
	return be;
}

#endif /* XDPLB_BACKEND_H */
