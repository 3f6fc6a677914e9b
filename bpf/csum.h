/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internet checksums (RFC 1071). Sums are kept in memory byte order: words
 * are added as loaded, and the folded complement is stored as is, which is
 * correct on either endianness. BPF-only.
 */
#ifndef XDPLB_CSUM_H
#define XDPLB_CSUM_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

/* A word read through any struct: tells the compiler it may alias. */
typedef __u32 __attribute__((__may_alias__)) xdplb_word_t;

/* Fold a 64-bit ones' complement sum to 16 bits and complement it. */
static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Sum of the four 32-bit words of an IPv6 address (flow-key layout). */
static __always_inline __u64 csum_add_addr6(__u64 sum, const __be32 *addr)
{
	return sum + addr[0] + addr[1] + addr[2] + addr[3];
}

/* Checksum of a 20-byte IPv4 header (check field zero), built on the stack. */
static __always_inline __u16 csum_ipv4_hdr(const struct iphdr *iph)
{
	const xdplb_word_t *w = (const xdplb_word_t *)iph;

	return csum_fold((__u64)w[0] + w[1] + w[2] + w[3] + w[4]);
}

#endif /* XDPLB_CSUM_H */
