// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdplb_balancer: the XDP program of an LB node.
 *
 * For a packet to a VIP: pick the backend (conntrack for established flows,
 * else the VIP's Maglev ring), wrap the packet in outer IP + GRE toward it and
 * send it to the next hop. ICMP errors about a VIP flow follow that flow to
 * its backend. Too big for the path after encapsulation: ICMP too-big back to
 * the client. Everything else goes to the kernel untouched.
 *
 * Every packet counts exactly one outcome counter, chosen where the packet's
 * fate is decided (pkt_verdict) and added here at the end; rx is their sum
 * (xdplb_abi.h section 5), so it costs no update of its own.
 * This file is the decision flow only; the steps live in the headers.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdplb_abi.h"
#include "parse.h"
#include "maps.h"
#include "counters.h"
#include "backend.h"
#include "csum.h"
#include "encap.h"
#include "icmp.h"
#include "nexthop.h"

/*
 * Whether the packet's source can be the target of an ICMP error: a unicast
 * host address (RFC 1812 4.3.2.7, RFC 4443 2.4 e.3). Not IPv4 0/8, 127/8,
 * 224/4 (multicast) or 240/4 (reserved, broadcast); not IPv6 ff00::/8
 * (multicast) or ::/96 (unspecified, loopback, IPv4-compatible). A spoofed
 * source of those kinds must not turn the balancer into a reflector.
 */
static __always_inline bool src_takes_icmp(const struct xdplb_pkt *pkt)
{
	__u32 w0 = bpf_ntohl(pkt->flow.src[0]);

	if (pkt->flow.family == XDPLB_FAMILY_V4) {
		__u32 top = w0 >> 24;

		return top != 0 && top != 127 && top < 224;
	}
	if ((w0 >> 24) == 0xff)
		return false;
	return pkt->flow.src[0] | pkt->flow.src[1] | pkt->flow.src[2];
}

/*
 * The encapsulated packet would exceed the path MTU; `mtu` is what is left for
 * the inner packet. Answer with ICMP too-big when the client can use it.
 */
static __always_inline int handle_too_big(struct xdp_md *ctx, struct xdplb_pkt *pkt,
					  bool is_icmp, __u32 mtu)
{
	bool sent;

	/* Never answer ICMP with ICMP; an IPv4 sender without DF lets routers
	 * fragment, which GRE with DF can't do; a packet shorter than the quote
	 * only fits a path MTU below any real link. */
	if (is_icmp || pkt->ip_len <= XDPLB_ICMP_QUOTE_LEN || !src_takes_icmp(pkt))
		return pkt_verdict(pkt, XDPLB_CNT_DROP_TOO_BIG, XDP_DROP);
	if (pkt->flow.family == XDPLB_FAMILY_V4) {
		if (!(pkt->flags & XDPLB_PKT_F_DF))
			return pkt_verdict(pkt, XDPLB_CNT_DROP_TOO_BIG, XDP_DROP);
		sent = icmp_send_too_big_v4(ctx, pkt, mtu);
	} else {
		sent = icmp_send_too_big_v6(ctx, pkt, mtu);
	}
	if (!sent)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_TOO_BIG, XDP_DROP);
	return pkt_verdict(pkt, XDPLB_CNT_TX_TOO_BIG, XDP_TX);
}

/*
 * A packet of a VIP flow (pkt->flow): backend, MTU check, encapsulation,
 * next hop. `is_icmp`: an ICMP error about the flow, which follows the flow
 * but never writes conntrack and is never answered.
 */
static __always_inline int balance(struct xdp_md *ctx, struct xdplb_pkt *pkt,
				   const struct xdplb_vip_meta *vip, bool is_icmp)
{
	struct xdplb_node_cfg *cfg = config_get();
	const struct xdplb_backend *hop = NULL;
	struct xdplb_guard guard = {};
	struct xdplb_backend *be;
	__u32 id = 0, overhead, outer_len, path;
	__be32 key = 0;
	bool encapped, v6;
	int action;

	if (!cfg)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_ENCAP_FAIL, XDP_DROP);
	/* Prefix lists and per-source limits, when the node has any (ICMP errors come from routers: exempt). */
	if (!is_icmp && (cfg->flags & XDPLB_NODE_F_PROTECT)) {
		action = protect_packet(pkt, vip->vip_index, &guard);
		if (action >= 0)
			return action;
	}
	be = backend_pick(pkt, vip, !is_icmp, cfg, &id, &hop, &guard);
	if (!be)
		return pkt_verdict(pkt, guard.limited ? XDPLB_CNT_DROP_RATE_SRC_SYN : XDPLB_CNT_DROP_NO_BACKEND, XDP_DROP);
	/* An ICMP error follows its flow to the first hop only. */
	if (hop && !is_icmp)
		key = xdplb_hop_key(hop->addr, hop->flags & XDPLB_BACKEND_F_IPV6);

	v6 = be->flags & XDPLB_BACKEND_F_IPV6;
	overhead = (v6 ? XDPLB_GRE_OVERHEAD_V6 : XDPLB_GRE_OVERHEAD_V4) + (key ? XDPLB_GRE_KEY_LEN : 0);
	outer_len = pkt->ip_len + overhead;
	/* path_mtu 0: not configured, no limit. */
	if (cfg->path_mtu && outer_len > cfg->path_mtu)
		return handle_too_big(ctx, pkt, is_icmp, cfg->path_mtu - overhead);

	/* One copy of each encapsulation: the key's 4 bytes are a runtime length. */
	if (v6) {
		encapped = encap_gre_v6(ctx, pkt, be, cfg, key ? XDPLB_GRE_KEY_LEN : 0, key);
		path = XDPLB_CNT_GRE_V6;
	} else {
		encapped = encap_gre_v4(ctx, pkt, be, cfg, key ? XDPLB_GRE_KEY_LEN : 0, key);
		path = XDPLB_CNT_GRE_V4;
	}
	if (!encapped)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_ENCAP_FAIL, XDP_DROP);
	count(path, pkt->frame_len);
	if (key)
		count(XDPLB_CNT_SECOND_HOP, pkt->frame_len);
	if (is_icmp)
		count(XDPLB_CNT_ICMP_FWD, pkt->frame_len);

	action = nexthop_send(ctx, pkt, be, cfg, outer_len);
	if (action != XDP_DROP)
		count_forwarded(vip->vip_index, id, pkt->frame_len);
	return action;
}

/*
 * An ICMP/ICMPv6 packet to a VIP address: an error about a VIP flow goes to
 * that flow's backend; anything else is the kernel's.
 */
static __always_inline int process_icmp(struct xdp_md *ctx, struct xdplb_cursor *c,
					struct xdplb_pkt *pkt)
{
	struct xdplb_vip_meta vip;
	int action;

	action = icmp_parse_error(c, pkt);
	if (action >= 0)
		return action;
	if (!vip_match(pkt, &vip))
		return pkt_verdict(pkt, XDPLB_CNT_PASS_ICMP_OTHER, XDP_PASS);
	return balance(ctx, pkt, &vip, true);
}

static __always_inline int process_packet(struct xdp_md *ctx, struct xdplb_pkt *pkt)
{
	struct xdplb_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct xdplb_vip_meta vip;
	int action;

	action = parse_eth(&c, pkt);
	if (action >= 0)
		return action;
	if (pkt->flow.family == XDPLB_FAMILY_V4)
		action = parse_ipv4(&c, pkt);
	else
		action = parse_ipv6(&c, pkt);
	if (action >= 0)
		return action;
	if (pkt->flags & XDPLB_PKT_F_IPV4_OPTS)
		count(XDPLB_CNT_IPV4_OPTIONS, pkt->frame_len);

	/* Fragments and IPv6 extension headers can't be balanced by ports:
	 * refused when aimed at a VIP address, the kernel's otherwise. Other
	 * IPv4 protocols are never a VIP's. */
	if ((pkt->flags & XDPLB_PKT_F_FRAGMENT) || !l4_supported(pkt)) {
		if (!(pkt->flags & XDPLB_PKT_F_FRAGMENT) && pkt->flow.family == XDPLB_FAMILY_V4)
			return pkt_verdict(pkt, XDPLB_CNT_PASS_NOT_VIP, XDP_PASS);
		if (!vip_addr_lookup(pkt->flow.family, pkt->flow.dst))
			return pkt_verdict(pkt, XDPLB_CNT_PASS_NOT_VIP, XDP_PASS);
		if (pkt->flags & XDPLB_PKT_F_FRAGMENT)
			return pkt_verdict(pkt, XDPLB_CNT_DROP_FRAGMENT, XDP_DROP);
		return pkt_verdict(pkt, XDPLB_CNT_DROP_IPV6_EXT, XDP_DROP);
	}

	/* All non-VIP traffic pays: one bit of the prefilter. */
	if (!vip_filter_maybe(pkt->flow.dst))
		return pkt_verdict(pkt, XDPLB_CNT_PASS_NOT_VIP, XDP_PASS);

	if (pkt->l4_proto == IPPROTO_ICMP || pkt->l4_proto == IPPROTO_ICMPV6) {
		if (!vip_addr_lookup(pkt->flow.family, pkt->flow.dst))
			return pkt_verdict(pkt, XDPLB_CNT_PASS_NOT_VIP, XDP_PASS);
		return process_icmp(ctx, &c, pkt);
	}

	if (!parse_ports(&c, pkt)) {
		/* A bad L4 header is ours to drop only when aimed at a VIP address. */
		if (!vip_addr_lookup(pkt->flow.family, pkt->flow.dst))
			return pkt_verdict(pkt, XDPLB_CNT_PASS_NOT_VIP, XDP_PASS);
		return pkt_verdict(pkt, XDPLB_CNT_DROP_MALFORMED, XDP_DROP);
	}
	if (!vip_match(pkt, &vip))
		return pkt_verdict(pkt, XDPLB_CNT_PASS_NOT_VIP, XDP_PASS);
	return balance(ctx, pkt, &vip, false);
}

SEC("xdp")
int xdplb_balancer(struct xdp_md *ctx)
{
	struct xdplb_pkt pkt;
	int action;

	__builtin_memset(&pkt, 0, sizeof(pkt));
	/* Pointer minus pointer: needs a privileged loader (allow_ptr_leaks),
	 * which attaching XDP requires anyway. */
	pkt.frame_len = (long)ctx->data_end - (long)ctx->data;
	/* Until a verdict says otherwise (a path that forgets is counted, not lost). */
	pkt.outcome = XDPLB_CNT_NO_OUTCOME;

	action = process_packet(ctx, &pkt);
	count(pkt.outcome, pkt.frame_len);
	return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
