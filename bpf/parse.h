/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing: Ethernet (+ one VLAN tag), IPv4, IPv6, TCP/UDP ports.
 *
 * Every parser takes a cursor (the next header and the end of the frame),
 * checks the bytes it reads against the end right before reading them, fills
 * in struct xdplb_pkt and returns XDPLB_CONTINUE, or sets the packet's outcome
 * counter and returns the XDP action that ends it (Katran's convention).
 *
 * BPF-only: include after <linux/bpf.h> and xdplb_abi.h.
 */
#ifndef XDPLB_PARSE_H
#define XDPLB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdplb_abi.h"

/* No libc headers in BPF code, so no <stdbool.h>. */
#ifndef __bool_true_false_are_defined
#define bool _Bool
#define true 1
#define false 0
#define __bool_true_false_are_defined 1
#endif

/* A helper's "no verdict yet, go on" (the XDP actions are all >= 0). */
#define XDPLB_CONTINUE (-1)

/* IPv4 frag_off bits (host order; <net/ip.h> isn't a uapi header). */
#define XDPLB_IP_DF 0x4000
#define XDPLB_IP_MF 0x2000
#define XDPLB_IP_OFFSET 0x1fff

/* TCP flag byte (offset 13 of the TCP header). */
#define XDPLB_TCP_SYN 0x02

/* L2 header lengths: plain Ethernet, Ethernet + one 802.1Q/802.1ad tag. */
#define XDPLB_L2_LEN 14
#define XDPLB_L2_VLAN_LEN 18

/* One load the compiler must do, exactly where written (seqlock readers). */
#define XDPLB_READ_ONCE(x) (*(volatile typeof(x) *)&(x))
/* Keep the compiler from moving memory accesses across it (x86 keeps load
 * order itself; the seqlock readers rely on that). */
#define xdplb_barrier() asm volatile("" ::: "memory")

/* struct xdplb_pkt.flags */
#define XDPLB_PKT_F_FRAGMENT (1U << 0)   /* IPv4 MF/offset, or IPv6 fragment header */
#define XDPLB_PKT_F_DF (1U << 1)         /* IPv4 don't-fragment */
#define XDPLB_PKT_F_SYN (1U << 2)        /* TCP SYN: skip conntrack, take the ring */
#define XDPLB_PKT_F_IPV4_OPTS (1U << 3)  /* IPv4 IHL > 5 */
#define XDPLB_PKT_F_VLAN (1U << 4)       /* one VLAN tag: L2 header is 18 bytes */

/* Ethernet header, 2-byte aligned so copies move 16-bit words. */
struct xdplb_eth {
	__u8 dst[ETH_ALEN];
	__u8 src[ETH_ALEN];
	__be16 proto;
};
_Static_assert(sizeof(struct xdplb_eth) == XDPLB_L2_LEN, "xdplb_eth layout");

/* Ethernet header with one 802.1Q/802.1ad tag. */
struct xdplb_eth_vlan {
	__u8 dst[ETH_ALEN];
	__u8 src[ETH_ALEN];
	__be16 tpid;
	__be16 tci;
	__be16 proto; /* the innermost ethertype */
};
_Static_assert(sizeof(struct xdplb_eth_vlan) == XDPLB_L2_VLAN_LEN, "xdplb_eth_vlan layout");

/* Where parsing stands: the next header and the end of the frame. */
struct xdplb_cursor {
	void *pos;
	void *end;
};

/* What the balancer knows about the packet in hand (BPF stack only). */
struct xdplb_pkt {
	/* The client -> VIP flow the backend is chosen for: the packet's own
	 * 5-tuple, or for an ICMP error the quoted flow turned around.
	 * 8-aligned: conntrack compares it 8 bytes at a time (stack access
	 * must be aligned). */
	struct xdplb_flow_key flow __attribute__((aligned(8)));
	__u32 frame_len; /* bytes of the frame on entry: what every counter adds */
	__u32 ip_len;    /* frame_len - l2_len: the inner packet encapsulated as is */
	__u32 l4_len;    /* L4 bytes as the IP header says (tot_len - ihl*4 / payload_len) */
	__u32 hash;      /* flow hash in the VIP's mode (Maglev slot, IPv6 flow label); 0 if neither is needed */
	__u32 outcome;   /* the one outcome counter (XDPLB_CNT_PASS_* ...) */
	__u16 l2_len;    /* XDPLB_L2_LEN or XDPLB_L2_VLAN_LEN */
	__u8 l4_proto;   /* IPv4 protocol / IPv6 next header of the packet itself */
	__u8 tos;        /* IPv4 tos / IPv6 traffic class of the packet itself */
	__u32 flags;     /* XDPLB_PKT_F_* */
};

/* End the packet here: remember the outcome counter, return the action. */
static __always_inline int pkt_verdict(struct xdplb_pkt *pkt, __u32 outcome, int action)
{
	pkt->outcome = outcome;
	return action;
}

/* Ethernet and at most one 802.1Q/802.1ad tag; sets l2_len and flow.family. */
static __always_inline int parse_eth(struct xdplb_cursor *c, struct xdplb_pkt *pkt)
{
	struct xdplb_eth *eth = c->pos;
	__be16 proto;

	if ((void *)(eth + 1) > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_MALFORMED, XDP_PASS);
	proto = eth->proto;
	pkt->l2_len = XDPLB_L2_LEN;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct xdplb_eth_vlan *veth = c->pos;

		if ((void *)(veth + 1) > c->end)
			return pkt_verdict(pkt, XDPLB_CNT_PASS_MALFORMED, XDP_PASS);
		proto = veth->proto;
		pkt->l2_len = XDPLB_L2_VLAN_LEN;
		pkt->flags |= XDPLB_PKT_F_VLAN;
		c->pos = veth + 1;
	} else {
		c->pos = eth + 1;
	}
	/* A second tag (QinQ) lands here too: not ours. */
	if (proto == bpf_htons(ETH_P_IP))
		pkt->flow.family = XDPLB_FAMILY_V4;
	else if (proto == bpf_htons(ETH_P_IPV6))
		pkt->flow.family = XDPLB_FAMILY_V6;
	else
		return pkt_verdict(pkt, XDPLB_CNT_PASS_NOT_IP, XDP_PASS);
	pkt->ip_len = pkt->frame_len - pkt->l2_len;
	return XDPLB_CONTINUE;
}

/*
 * IPv4 header, options included (IHL honoured). Anything the kernel should
 * judge itself (truncated, IHL < 5, wrong version, tot_len outside the frame)
 * is passed. Fragments are only flagged: the caller decides.
 */
static __always_inline int parse_ipv4(struct xdplb_cursor *c, struct xdplb_pkt *pkt)
{
	struct iphdr *iph = c->pos;
	__u32 hlen, tot_len;

	if ((void *)(iph + 1) > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_MALFORMED, XDP_PASS);
	if (iph->version != 4 || iph->ihl < 5)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_MALFORMED, XDP_PASS);
	hlen = iph->ihl * 4;
	tot_len = bpf_ntohs(iph->tot_len);
	/* tot_len <= 0xffff keeps the pointer sum in the verifier's range. */
	if (tot_len < hlen || (void *)iph + tot_len > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_MALFORMED, XDP_PASS);

	if (hlen > sizeof(*iph))
		pkt->flags |= XDPLB_PKT_F_IPV4_OPTS;
	if (iph->frag_off & bpf_htons(XDPLB_IP_MF | XDPLB_IP_OFFSET))
		pkt->flags |= XDPLB_PKT_F_FRAGMENT;
	if (iph->frag_off & bpf_htons(XDPLB_IP_DF))
		pkt->flags |= XDPLB_PKT_F_DF;
	pkt->tos = iph->tos;
	pkt->l4_proto = iph->protocol;
	pkt->l4_len = tot_len - hlen;
	pkt->flow.src[0] = iph->saddr;
	pkt->flow.dst[0] = iph->daddr;
	c->pos = (void *)iph + hlen;
	return XDPLB_CONTINUE;
}

/* IPv6 fixed header. Extension headers are not walked: the caller decides. */
static __always_inline int parse_ipv6(struct xdplb_cursor *c, struct xdplb_pkt *pkt)
{
	struct ipv6hdr *ip6h = c->pos;
	__u32 plen;

	if ((void *)(ip6h + 1) > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_MALFORMED, XDP_PASS);
	if (ip6h->version != 6)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_MALFORMED, XDP_PASS);
	plen = bpf_ntohs(ip6h->payload_len);
	if ((void *)(ip6h + 1) + plen > c->end)
		return pkt_verdict(pkt, XDPLB_CNT_PASS_MALFORMED, XDP_PASS);

	if (ip6h->nexthdr == IPPROTO_FRAGMENT)
		pkt->flags |= XDPLB_PKT_F_FRAGMENT;
	/* Traffic class: the 8 bits after the version nibble. */
	pkt->tos = (bpf_ntohl(*(__be32 *)ip6h) >> 20) & 0xff;
	pkt->l4_proto = ip6h->nexthdr;
	pkt->l4_len = plen;
	__builtin_memcpy(pkt->flow.src, &ip6h->saddr, sizeof(pkt->flow.src));
	__builtin_memcpy(pkt->flow.dst, &ip6h->daddr, sizeof(pkt->flow.dst));
	c->pos = ip6h + 1;
	return XDPLB_CONTINUE;
}

/* Is the L4 protocol one the balancer handles (TCP, UDP, ICMP of the family)? */
static __always_inline bool l4_supported(const struct xdplb_pkt *pkt)
{
	if (pkt->l4_proto == IPPROTO_TCP || pkt->l4_proto == IPPROTO_UDP)
		return true;
	if (pkt->flow.family == XDPLB_FAMILY_V4)
		return pkt->l4_proto == IPPROTO_ICMP;
	return pkt->l4_proto == IPPROTO_ICMPV6;
}

/*
 * TCP/UDP ports into the flow (and the SYN flag). False when the L4 header is
 * cut short (by the frame or by the IP length) or TCP's data offset is < 5.
 */
static __always_inline bool parse_ports(struct xdplb_cursor *c, struct xdplb_pkt *pkt)
{
	if (pkt->l4_proto == IPPROTO_TCP) {
		struct tcphdr *th = c->pos;

		if (pkt->l4_len < sizeof(*th) || (void *)(th + 1) > c->end)
			return false;
		if (th->doff < 5)
			return false;
		if (th->syn)
			pkt->flags |= XDPLB_PKT_F_SYN;
		pkt->flow.sport = th->source;
		pkt->flow.dport = th->dest;
	} else {
		struct udphdr *uh = c->pos;

		if (pkt->l4_len < sizeof(*uh) || (void *)(uh + 1) > c->end)
			return false;
		pkt->flow.sport = uh->source;
		pkt->flow.dport = uh->dest;
	}
	pkt->flow.proto = pkt->l4_proto;
	return true;
}

#endif /* XDPLB_PARSE_H */
