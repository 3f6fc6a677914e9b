/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * GRE encapsulation (RFC 2784, 4-byte header, no key/checksum/sequence; with
 * a second hop the RFC 2890 key, 8 bytes, see xdplb_abi.h 4b):
 *
 *   [L2 (VLAN tag kept), ethertype = outer family][outer IPv4|IPv6][GRE][inner IP packet, untouched]
 *
 * The inner packet is everything after the L2 header, exactly as received
 * (trailing bytes past the IP length included). BPF-only.
 */
#ifndef XDPLB_ENCAP_H
#define XDPLB_ENCAP_H

#include "parse.h"
#include "outer.h"

/* The base GRE header: flags/version 0, then the inner ethertype. */
struct xdplb_gre {
	__be16 flags;
	__be16 proto;
};

/* The GRE header with a key (RFC 2890): K set, then the key. */
struct xdplb_gre_key {
	__be16 flags;
	__be16 proto;
	__be32 key;
};
_Static_assert(sizeof(struct xdplb_gre_key) == sizeof(struct xdplb_gre) + XDPLB_GRE_KEY_LEN, "GRE key length");

/* The outer headers must be exactly the overhead the ABI (and the MTU check) assumes. */
_Static_assert(sizeof(struct iphdr) + sizeof(struct xdplb_gre) == XDPLB_GRE_OVERHEAD_V4,
	       "GRE v4 overhead");
_Static_assert(sizeof(struct ipv6hdr) + sizeof(struct xdplb_gre) == XDPLB_GRE_OVERHEAD_V6,
	       "GRE v6 overhead");

/*
 * Move an L2 header (either struct) from `from` to `to` (no overlap), swapping
 * the MACs for a reply and setting the innermost ethertype unless `proto` is 0.
 */
#define XDPLB_L2_MOVE(to, from, proto, swap_macs)                          \
	do {                                                               \
		*(to) = *(from);                                           \
		if (swap_macs) {                                           \
			__builtin_memcpy((to)->dst, (from)->src, ETH_ALEN); \
			__builtin_memcpy((to)->src, (from)->dst, ETH_ALEN); \
		}                                                          \
		if (proto)                                                 \
			(to)->proto = (proto);                             \
	} while (0)

/*
 * Open `gap` bytes between the L2 header and the IP packet: grow the head by
 * `gap` and move the L2 header (14 or 18 bytes) to the new front. `proto`
 * (network order, 0 = keep) becomes its innermost ethertype; `swap_macs` turns
 * it around for a reply. Returns the start of the gap, or NULL.
 * `gap` must be >= 18 (a constant, or a value the verifier knows the range
 * of), so the copy never overlaps itself.
 */
static __always_inline void *l2_push_gap(struct xdp_md *ctx, const struct xdplb_pkt *pkt,
					 const int gap, __be16 proto, bool swap_macs)
{
	void *data, *data_end;

	if (bpf_xdp_adjust_head(ctx, -gap))
		return NULL;
	/* adjust_head invalidated every packet pointer: re-read both ends. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (pkt->flags & XDPLB_PKT_F_VLAN) {
		struct xdplb_eth_vlan *to = data;
		struct xdplb_eth_vlan *from = data + gap;

		if ((void *)(from + 1) > data_end)
			return NULL;
		XDPLB_L2_MOVE(to, from, proto, swap_macs);
		return to + 1;
	} else {
		struct xdplb_eth *to = data;
		struct xdplb_eth *from = data + gap;

		if ((void *)(from + 1) > data_end)
			return NULL;
		XDPLB_L2_MOVE(to, from, proto, swap_macs);
		return to + 1;
	}
}

/* GRE protocol of the inner packet: the family the packet arrived with. */
static __always_inline __be16 gre_inner_proto(const struct xdplb_pkt *pkt)
{
	return pkt->flow.family == XDPLB_FAMILY_V6 ? bpf_htons(ETH_P_IPV6) : bpf_htons(ETH_P_IP);
}

/*
 * Write the GRE header at `gre` (the base header already bounds-checked):
 * plain, or with the key when `key` is not 0. False if the key doesn't fit.
 */
static __always_inline bool gre_write(void *gre, void *data_end, const struct xdplb_pkt *pkt, __be32 key)
{
	struct xdplb_gre *g = gre;

	g->proto = gre_inner_proto(pkt);
	if (!key) {
		g->flags = 0;
		return true;
	}
	if (gre + sizeof(struct xdplb_gre_key) > data_end)
		return false;
	g->flags = bpf_htons(XDPLB_GRE_FLAG_KEY);
	((struct xdplb_gre_key *)gre)->key = key;
	return true;
}

/*
 * Outer IPv4 + GRE toward an IPv4 backend; `key_len` (0 or
 * XDPLB_GRE_KEY_LEN) adds the second hop's key. False (packet unusable) when
 * the node has no IPv4 encap source or the head can't grow.
 */
static __always_inline bool encap_gre_v4(struct xdp_md *ctx, const struct xdplb_pkt *pkt,
					 const struct xdplb_backend *be,
					 const struct xdplb_node_cfg *cfg, int key_len, __be32 key)
{
	const int overhead = XDPLB_GRE_OVERHEAD_V4 + (key_len & XDPLB_GRE_KEY_LEN);
	struct iphdr hdr = {};
	struct iphdr *oip;
	void *gre, *data_end;

	if (!cfg->encap_src_v4)
		return false;
	oip = l2_push_gap(ctx, pkt, overhead, bpf_htons(ETH_P_IP), false);
	if (!oip)
		return false;
	data_end = (void *)(long)ctx->data_end;
	gre = (void *)(oip + 1);
	if (gre + sizeof(struct xdplb_gre) > data_end)
		return false;

	outer_ipv4_hdr(&hdr, pkt->tos, pkt->ip_len + overhead, cfg->encap_src_v4, be->addr[0]);
	*oip = hdr;
	return gre_write(gre, data_end, pkt, key);
}

/*
 * Outer IPv6 + GRE toward an IPv6 backend; the flow label is the flow hash,
 * so routers hashing on it keep a flow on one path; `key_len` as for IPv4.
 * False when the node has no IPv6 encap source or the head can't grow.
 */
static __always_inline bool encap_gre_v6(struct xdp_md *ctx, const struct xdplb_pkt *pkt,
					 const struct xdplb_backend *be,
					 const struct xdplb_node_cfg *cfg, int key_len, __be32 key)
{
	const int overhead = XDPLB_GRE_OVERHEAD_V6 + (key_len & XDPLB_GRE_KEY_LEN);
	struct ipv6hdr hdr = {};
	struct ipv6hdr *oip6;
	void *gre, *data_end;

	if (!(cfg->encap_src_v6[0] | cfg->encap_src_v6[1] | cfg->encap_src_v6[2] |
	      cfg->encap_src_v6[3]))
		return false;
	oip6 = l2_push_gap(ctx, pkt, overhead, bpf_htons(ETH_P_IPV6), false);
	if (!oip6)
		return false;
	data_end = (void *)(long)ctx->data_end;
	gre = (void *)(oip6 + 1);
	if (gre + sizeof(struct xdplb_gre) > data_end)
		return false;

	outer_ipv6_hdr(&hdr, pkt->tos, pkt->hash, pkt->ip_len + sizeof(struct xdplb_gre) + (key_len & XDPLB_GRE_KEY_LEN),
		       cfg->encap_src_v6, be->addr);
	*oip6 = hdr;
	return gre_write(gre, data_end, pkt, key);
}

#endif /* XDPLB_ENCAP_H */
