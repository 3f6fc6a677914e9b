/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sending an encapsulated packet: to the backend's configured next hop, or
 * wherever the kernel FIB says. BPF-only.
 */
#ifndef XDPLB_NEXTHOP_H
#define XDPLB_NEXTHOP_H

#include "parse.h"

/* Address families for bpf_fib_lookup (<sys/socket.h> is libc). */
#define XDPLB_AF_INET 2
#define XDPLB_AF_INET6 10

/* Out of `ifindex`: XDP_TX when it is where the packet came in, else redirect. */
static __always_inline int nexthop_xmit(struct xdp_md *ctx, struct xdplb_pkt *pkt, __u32 ifindex)
{
	if (ifindex == ctx->ingress_ifindex)
		return pkt_verdict(pkt, XDPLB_CNT_FWD_TX, XDP_TX);
	return pkt_verdict(pkt, XDPLB_CNT_FWD_REDIRECT, bpf_redirect(ifindex, 0));
}

/*
 * Address the encapsulated frame (front L2 header) and send it. With
 * XDPLB_BACKEND_F_NEXTHOP the backend's resolved next hop is used as is;
 * otherwise the FIB decides: no neighbour entry yet -> XDP_PASS, so the kernel
 * forwards the packet and resolves it (PASS_NO_NEIGH); other failures drop.
 */
static __always_inline int nexthop_send(struct xdp_md *ctx, struct xdplb_pkt *pkt,
					const struct xdplb_backend *be,
					const struct xdplb_node_cfg *cfg, __u32 outer_len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	struct xdplb_eth *eth = data;
	long rc;

	if ((void *)(eth + 1) > data_end)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_ENCAP_FAIL, XDP_DROP);

	if (be->flags & XDPLB_BACKEND_F_NEXTHOP) {
		__builtin_memcpy(eth->dst, be->nh_dmac, ETH_ALEN);
		__builtin_memcpy(eth->src, be->nh_smac, ETH_ALEN);
		return nexthop_xmit(ctx, pkt, be->nh_ifindex);
	}

	if (be->flags & XDPLB_BACKEND_F_IPV6) {
		fib.family = XDPLB_AF_INET6;
		__builtin_memcpy(fib.ipv6_src, cfg->encap_src_v6, sizeof(fib.ipv6_src));
		__builtin_memcpy(fib.ipv6_dst, be->addr, sizeof(fib.ipv6_dst));
	} else {
		fib.family = XDPLB_AF_INET;
		fib.ipv4_src = cfg->encap_src_v4;
		fib.ipv4_dst = be->addr[0];
	}
	fib.l4_protocol = IPPROTO_GRE;
	fib.tot_len = outer_len;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_NO_NEIGH, XDP_PASS);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_FIB_FAIL, XDP_DROP);

	__builtin_memcpy(eth->dst, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->src, fib.smac, ETH_ALEN);
	return nexthop_xmit(ctx, pkt, fib.ifindex);
}

#endif /* XDPLB_NEXTHOP_H */
