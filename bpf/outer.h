/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The outer IP header of everything xdplb wraps in GRE: the balancer's
 * packets (bpf/encap.h) and the through-tunnel probes (bpf/probe.bpf.c)
 * carry exactly the same one. IPv4: version 4, IHL 5, the inner TOS, DF, TTL
 * 64, protocol GRE, checksum. IPv6: the inner traffic class, the flow label
 * given, next header GRE, hop limit 64. BPF-only.
 */
#ifndef XDPLB_OUTER_H
#define XDPLB_OUTER_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>

#include "xdplb_abi.h"
#include "csum.h"

/* IPv4 frag_off: don't fragment (host order). */
#define XDPLB_OUTER_DF 0x4000

/* Fill *h (zeroed by the caller) for `tot_len` bytes from src to dst. */
static __always_inline void outer_ipv4_hdr(struct iphdr *h, __u8 tos, __u16 tot_len, __be32 src, __be32 dst)
{
	h->version = 4;
	h->ihl = 5;
	h->tos = tos;
	h->tot_len = bpf_htons(tot_len);
	h->frag_off = bpf_htons(XDPLB_OUTER_DF);
	h->ttl = XDPLB_OUTER_TTL;
	h->protocol = IPPROTO_GRE;
	h->saddr = src;
	h->daddr = dst;
	h->check = csum_ipv4_hdr(h);
}

/* Fill *h (zeroed by the caller) for `payload_len` bytes after it, from src to dst (16 bytes each). */
static __always_inline void outer_ipv6_hdr(struct ipv6hdr *h, __u8 tclass, __u32 flow_label, __u16 payload_len,
					   const __be32 *src, const __be32 *dst)
{
	/* version 6 | traffic class | flow label */
	*(xdplb_word_t *)h = bpf_htonl((6U << 28) | ((__u32)tclass << 20) | (flow_label & 0xfffff));
	h->payload_len = bpf_htons(payload_len);
	h->nexthdr = IPPROTO_GRE;
	h->hop_limit = XDPLB_OUTER_TTL;
	__builtin_memcpy(&h->saddr, src, sizeof(h->saddr));
	__builtin_memcpy(&h->daddr, dst, sizeof(h->daddr));
}

#endif /* XDPLB_OUTER_H */
