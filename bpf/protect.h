/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Protection (xdplb_abi.h 4c): deny/allow prefixes and per-source limits of a
 * VIP's packets, checked before the backend is picked. BPF-only.
 */
#ifndef XDPLB_PROTECT_H
#define XDPLB_PROTECT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdplb_abi.h"
#include "maps.h"
#include "parse.h"

/* What the checks before the pick leave to the pick: a new-flow charge still due. */
struct xdplb_guard {
	struct xdplb_src_state *src;          /* non-NULL: charge a flow the ring decides here */
	const struct xdplb_vip_protect *prot; /* the VIP's settings, with src */
	__u64 now;                            /* bpf_ktime_get_ns() of this packet */
	bool limited;                         /* the pick refused: over the new-flow limit */
};

/* The VIP's new-flow and drop counters (per CPU); NULL past the last slot. */
static __always_inline struct xdplb_vip_flows *vip_flows(__u32 vip_index)
{
	return bpf_map_lookup_elem(&xdplb_vip_flows, &vip_index);
}

/* The longest prefix of `slot`'s scope (0: global, vip_index + 1) holding the source. */
static __always_inline const struct xdplb_prefix_rule *prefix_match(const struct xdplb_pkt *pkt, __u32 slot)
{
	struct xdplb_prefix_key k;

	k.prefixlen = 32 + (pkt->flow.family == XDPLB_FAMILY_V4 ? 32 : 128);
	k.scope = XDPLB_PREFIX_SCOPE(pkt->flow.family, slot);
	k.addr[0] = pkt->flow.src[0];
	k.addr[1] = pkt->flow.src[1];
	k.addr[2] = pkt->flow.src[2];
	k.addr[3] = pkt->flow.src[3];
	return bpf_map_lookup_elem(&xdplb_prefixes, &k);
}

/* Word `w` of an address with `bits` (of this word's 32) kept. */
static __always_inline __be32 mask_word(__be32 w, int bits)
{
	if (bits >= 32)
		return w;
	if (bits <= 0)
		return 0;
	return w & bpf_htonl(~0U << (32 - bits));
}

/*
 * GCRA: admit a packet of cost `cost` ns when it fits `burst` ns of credit,
 * and charge it (xdplb_abi.h 4c). Atomic across CPUs: a compare-and-swap,
 * and if another CPU moved tat meanwhile, an add on top of theirs, given
 * back when that goes over.
 */
static __always_inline bool gcra_take(__u64 *tat, __u64 now, __u64 cost, __u64 burst)
{
	__u64 old = *(volatile __u64 *)tat;
	__u64 next = (old > now ? old : now) + cost;

	if (next - now > burst)
		return false;
	if (__sync_val_compare_and_swap(tat, old, next) == old)
		return true;
	next = __sync_fetch_and_add(tat, cost) + cost;
	if (next > now && next - now > burst) {
		__sync_fetch_and_add(tat, -cost);
		return false;
	}
	return true;
}

/* The limit state of the packet's source prefix for VIP `vip_index` (made on first use); NULL if none can be had. */
static __always_inline struct xdplb_src_state *src_state(const struct xdplb_pkt *pkt,
							 const struct xdplb_vip_protect *p, __u32 vip_index)
{
	struct xdplb_src_key k;
	struct xdplb_src_state *st, fresh = {};
	int plen;

	__builtin_memset(&k, 0, sizeof(k));
	k.vip_index = vip_index;
	k.family = pkt->flow.family;
	if (pkt->flow.family == XDPLB_FAMILY_V4) {
		k.addr[0] = mask_word(pkt->flow.src[0], p->plen_v4);
	} else {
		plen = p->plen_v6;
		k.addr[0] = mask_word(pkt->flow.src[0], plen);
		k.addr[1] = mask_word(pkt->flow.src[1], plen - 32);
		k.addr[2] = mask_word(pkt->flow.src[2], plen - 64);
		k.addr[3] = mask_word(pkt->flow.src[3], plen - 96);
	}
	st = bpf_map_lookup_elem(&xdplb_src_state, &k);
	if (st)
		return st;
	bpf_map_update_elem(&xdplb_src_state, &k, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&xdplb_src_state, &k);
}

/* Charges the new flow the guard holds (if any): false when over the limit (counted for the VIP). */
static __always_inline bool guard_new_flow(struct xdplb_guard *g, __u32 vip_index)
{
	struct xdplb_src_state *st = g->src;
	struct xdplb_vip_flows *f;

	if (!st || !g->prot)
		return true;
	g->src = NULL;
	if (gcra_take(&st->flow_tat, g->now, g->prot->flow_cost_ns, g->prot->flow_burst_ns))
		return true;
	g->limited = true;
	f = vip_flows(vip_index);
	if (f)
		f->drop_rate_src_syn += 1;
	return false;
}

/*
 * The checks of xdplb_abi.h 4c for a packet to VIP `vip_index`: an action to
 * end the packet with (a counted drop), or -1 to go on. A SYN is charged to
 * the new-flow limit here; any other packet only if the ring decides its
 * flow (the guard carries that charge to backend_pick).
 */
static __always_inline int protect_packet(struct xdplb_pkt *pkt, __u32 vip_index, struct xdplb_guard *g)
{
	const struct xdplb_vip_protect *p = bpf_map_lookup_elem(&xdplb_protect, &vip_index);
	const struct xdplb_prefix_rule *r = NULL;
	struct xdplb_src_state *st;
	struct xdplb_vip_flows *f;

	if (!p || !p->flags)
		return -1;
	if (p->flags & XDPLB_PROTECT_F_PREFIXES_VIP)
		r = prefix_match(pkt, vip_index + 1);
	if (!r && (p->flags & XDPLB_PROTECT_F_PREFIXES_ALL))
		r = prefix_match(pkt, 0);
	if (r) {
		if (r->action == XDPLB_PREFIX_ALLOW)
			return -1;
		f = vip_flows(vip_index);
		if (f)
			f->drop_deny += 1;
		return pkt_verdict(pkt, XDPLB_CNT_DROP_DENY, XDP_DROP);
	}
	if (!(p->flags & (XDPLB_PROTECT_F_LIMIT_FLOWS | XDPLB_PROTECT_F_LIMIT_PKTS)))
		return -1;
	g->now = bpf_ktime_get_ns();
	/* No state to be had (the LRU could not take one): the packet goes on. */
	st = src_state(pkt, p, vip_index);
	if (!st)
		return -1;
	if ((p->flags & XDPLB_PROTECT_F_LIMIT_PKTS) &&
	    !gcra_take(&st->pkt_tat, g->now, p->pkt_cost_ns, p->pkt_burst_ns)) {
		f = vip_flows(vip_index);
		if (f)
			f->drop_rate_src_pps += 1;
		return pkt_verdict(pkt, XDPLB_CNT_DROP_RATE_SRC_PPS, XDP_DROP);
	}
	if (!(p->flags & XDPLB_PROTECT_F_LIMIT_FLOWS))
		return -1;
	g->src = st;
	g->prot = p;
	if ((pkt->flags & XDPLB_PKT_F_SYN) && !guard_new_flow(g, vip_index))
		return pkt_verdict(pkt, XDPLB_CNT_DROP_RATE_SRC_SYN, XDP_DROP);
	return -1;
}

#endif /* XDPLB_PROTECT_H */
