/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP, both ways:
 * - in: an ICMP/ICMPv6 error sent to a VIP address quotes a VIP -> client
 *   packet (the backend's DSR reply); its flow, turned around, is the
 *   client -> VIP flow whose backend must get the error.
 * - out: a packet too big for the path after encapsulation, from a client
 *   that set DF (or any IPv6 client), is answered with frag-needed /
 *   packet-too-big from the VIP, quoting the first XDPLB_ICMP_QUOTE_LEN bytes.
 * BPF-only.
 */
#ifndef XDPLB_ICMP_H
#define XDPLB_ICMP_H

#include <linux/icmpv6.h>

#include "parse.h"
#include "csum.h"
#include "encap.h"

/*
 * The ICMPv4 header, here rather than from <linux/icmp.h>: that header pulls
 * in <linux/if.h> and with it libc's <sys/socket.h>, which can't be used with
 * -target bpf (gnu/stubs-32.h).
 */
struct xdplb_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused; /* 0 in frag-needed */
	__be16 mtu;    /* next-hop MTU (frag-needed) */
};
_Static_assert(sizeof(struct xdplb_icmphdr) == 8, "xdplb_icmphdr layout");
#define XDPLB_ICMP_DEST_UNREACH 3
#define XDPLB_ICMP_FRAG_NEEDED 4

/* Bytes of the quoted packet's L4 header an ICMP error must carry (the ports). */
#define XDPLB_ICMP_QUOTE_L4 8

/* The reply: L2 (as received, MACs swapped) + IP + ICMP header + the quote. */
#define XDPLB_TOO_BIG_GAP_V4 (sizeof(struct iphdr) + sizeof(struct xdplb_icmphdr))
#define XDPLB_TOO_BIG_GAP_V6 (sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr))

/* The quoted ports: sport, dport of the quoted (VIP -> client) packet. */
struct xdplb_ports {
	__be16 source;
	__be16 dest;
};

/* Turn the quoted VIP -> client ports around into pkt->flow. */
static __always_inline void icmp_flow_ports(struct xdplb_pkt *pkt, const struct xdplb_ports *p,
					    __u8 proto)
{
	pkt->flow.sport = p->dest;
	pkt->flow.dport = p->source;
	pkt->flow.proto = proto;
}

/*
 * ICMP destination unreachable (any code): the quoted IPv4 header + 8 bytes of
 * L4. Other types, non-TCP/UDP or non-first-fragment quotes: PASS_ICMP_OTHER;
 * truncated or bogus: DROP_MALFORMED.
 */
static __always_inline int icmp_parse_error_v4(struct xdplb_cursor *c, struct xdplb_pkt *pkt)
{
	struct xdplb_icmphdr *icmp = c->pos;
	struct xdplb_ports *ports;
	struct iphdr *in;
	__u32 hlen;

	if (pkt->l4_len < sizeof(*icmp) || (void *)(icmp + 1) > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_MALFORMED, XDP_DROP);
	if (icmp->type != XDPLB_ICMP_DEST_UNREACH)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_ICMP_OTHER, XDP_PASS);

	in = (void *)(icmp + 1);
	if (pkt->l4_len < sizeof(*icmp) + sizeof(*in) || (void *)(in + 1) > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_MALFORMED, XDP_DROP);
	if (in->version != 4 || in->ihl < 5)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_MALFORMED, XDP_DROP);
	if ((in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP) ||
	    (in->frag_off & bpf_htons(XDPLB_IP_OFFSET)))
		return pkt_verdict(pkt, XDPLB_CNT_PASS_ICMP_OTHER, XDP_PASS);
	hlen = in->ihl * 4;
	ports = (void *)in + hlen;
	if (pkt->l4_len < sizeof(*icmp) + hlen + XDPLB_ICMP_QUOTE_L4 ||
	    (void *)ports + XDPLB_ICMP_QUOTE_L4 > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_MALFORMED, XDP_DROP);

	pkt->flow.src[0] = in->daddr;
	pkt->flow.dst[0] = in->saddr;
	icmp_flow_ports(pkt, ports, in->protocol);
	return XDPLB_CONTINUE;
}

/* ICMPv6 destination unreachable / packet too big: as above, IPv6 quote. */
static __always_inline int icmp_parse_error_v6(struct xdplb_cursor *c, struct xdplb_pkt *pkt)
{
	struct icmp6hdr *icmp6 = c->pos;
	struct xdplb_ports *ports;
	struct ipv6hdr *in;

	if (pkt->l4_len < sizeof(*icmp6) || (void *)(icmp6 + 1) > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_MALFORMED, XDP_DROP);
	if (icmp6->icmp6_type != ICMPV6_DEST_UNREACH && icmp6->icmp6_type != ICMPV6_PKT_TOOBIG)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_ICMP_OTHER, XDP_PASS);

	in = (void *)(icmp6 + 1);
	if (pkt->l4_len < sizeof(*icmp6) + sizeof(*in) || (void *)(in + 1) > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_MALFORMED, XDP_DROP);
	if (in->version != 6)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_MALFORMED, XDP_DROP);
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_ICMP_OTHER, XDP_PASS);
	ports = (void *)(in + 1);
	if (pkt->l4_len < sizeof(*icmp6) + sizeof(*in) + XDPLB_ICMP_QUOTE_L4 ||
	    (void *)ports + XDPLB_ICMP_QUOTE_L4 > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_DROP_MALFORMED, XDP_DROP);

	__builtin_memcpy(pkt->flow.src, &in->daddr, sizeof(pkt->flow.src));
	__builtin_memcpy(pkt->flow.dst, &in->saddr, sizeof(pkt->flow.dst));
	icmp_flow_ports(pkt, ports, in->nexthdr);
	return XDPLB_CONTINUE;
}

/*
 * An ICMP packet to a VIP address: XDPLB_CONTINUE with pkt->flow set to the
 * client -> VIP flow the error is about, or the packet's verdict.
 */
static __always_inline int icmp_parse_error(struct xdplb_cursor *c, struct xdplb_pkt *pkt)
{
	if (pkt->flow.family == XDPLB_FAMILY_V4)
		return icmp_parse_error_v4(c, pkt);
	return icmp_parse_error_v6(c, pkt);
}

/*
 * Turn the packet into ICMP frag-needed (type 3 code 4) from the VIP to the
 * client, next-hop MTU `mtu`. pkt->ip_len must exceed XDPLB_ICMP_QUOTE_LEN.
 * False: the packet could not be rebuilt (it is unusable; drop it).
 */
static __always_inline bool icmp_send_too_big_v4(struct xdp_md *ctx, const struct xdplb_pkt *pkt,
						 __u16 mtu)
{
	struct iphdr hdr = {};
	struct xdplb_icmphdr *icmp;
	struct iphdr *iph;
	void *data_end;
	__s64 sum;

	/* Keep L2 + the quote; then open room for IP + ICMP before the quote. */
	if (bpf_xdp_adjust_tail(ctx, (int)XDPLB_ICMP_QUOTE_LEN - (int)pkt->ip_len))
		return false;
	iph = l2_push_gap(ctx, pkt, XDPLB_TOO_BIG_GAP_V4, 0, true);
	if (!iph)
		return false;
	data_end = (void *)(long)ctx->data_end;
	icmp = (void *)(iph + 1);
	if ((void *)(icmp + 1) + XDPLB_ICMP_QUOTE_LEN > data_end)
		return false;

	hdr.version = 4;
	hdr.ihl = 5;
	hdr.tot_len = bpf_htons(XDPLB_TOO_BIG_GAP_V4 + XDPLB_ICMP_QUOTE_LEN);
	hdr.ttl = XDPLB_OUTER_TTL;
	hdr.protocol = IPPROTO_ICMP;
	hdr.saddr = pkt->flow.dst[0];
	hdr.daddr = pkt->flow.src[0];
	hdr.check = csum_ipv4_hdr(&hdr);
	*iph = hdr;

	icmp->type = XDPLB_ICMP_DEST_UNREACH;
	icmp->code = XDPLB_ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->unused = 0;
	icmp->mtu = bpf_htons(mtu);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)icmp, sizeof(*icmp) + XDPLB_ICMP_QUOTE_LEN, 0);
	if (sum < 0)
		return false;
	icmp->checksum = csum_fold((__u32)sum);
	return true;
}

/* As above for IPv6: ICMPv6 packet too big (type 2 code 0), checksum over the pseudo-header. */
static __always_inline bool icmp_send_too_big_v6(struct xdp_md *ctx, const struct xdplb_pkt *pkt,
						 __u32 mtu)
{
	const __u32 icmp_len = sizeof(struct icmp6hdr) + XDPLB_ICMP_QUOTE_LEN;
	struct ipv6hdr hdr = {};
	struct icmp6hdr *icmp6;
	struct ipv6hdr *ip6h;
	void *data_end;
	__s64 part;
	__u64 sum;

	if (bpf_xdp_adjust_tail(ctx, (int)XDPLB_ICMP_QUOTE_LEN - (int)pkt->ip_len))
		return false;
	ip6h = l2_push_gap(ctx, pkt, XDPLB_TOO_BIG_GAP_V6, 0, true);
	if (!ip6h)
		return false;
	data_end = (void *)(long)ctx->data_end;
	icmp6 = (void *)(ip6h + 1);
	if ((void *)(icmp6 + 1) + XDPLB_ICMP_QUOTE_LEN > data_end)
		return false;

	/* version 6, traffic class 0, flow label 0 */
	*(xdplb_word_t *)&hdr = bpf_htonl(6U << 28);
	hdr.payload_len = bpf_htons(icmp_len);
	hdr.nexthdr = IPPROTO_ICMPV6;
	hdr.hop_limit = XDPLB_OUTER_TTL;
	__builtin_memcpy(&hdr.saddr, pkt->flow.dst, sizeof(hdr.saddr));
	__builtin_memcpy(&hdr.daddr, pkt->flow.src, sizeof(hdr.daddr));
	*ip6h = hdr;

	icmp6->icmp6_type = ICMPV6_PKT_TOOBIG;
	icmp6->icmp6_code = 0;
	icmp6->icmp6_cksum = 0;
	icmp6->icmp6_mtu = bpf_htonl(mtu);
	part = bpf_csum_diff(NULL, 0, (__be32 *)icmp6, icmp_len, 0);
	if (part < 0)
		return false;
	/* pseudo-header: source, destination, upper-layer length, next header */
	sum = csum_add_addr6((__u32)part, pkt->flow.dst);
	sum = csum_add_addr6(sum, pkt->flow.src);
	sum += (__u64)bpf_htonl(icmp_len) + bpf_htonl(IPPROTO_ICMPV6);
	icmp6->icmp6_cksum = csum_fold(sum);
	return true;
}

#endif /* XDPLB_ICMP_H */
