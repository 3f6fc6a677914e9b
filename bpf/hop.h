/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The second hop's GRE key (xdplb_abi.h, section 4b): an IPv4 backend's
 * address, or 0x00 and the 24-bit hop id of an IPv6 backend. Shared by the
 * balancer (which writes it) and the backend's decap (which reads it).
 * BPF-only.
 */
#ifndef XDPLB_HOP_H
#define XDPLB_HOP_H

#include <linux/types.h>
#include <stdbool.h>
#include <bpf/bpf_endian.h>

#include "xdplb_abi.h"

/* The hop id of an IPv6 address (16 bytes, network order), never 0. */
static __always_inline __u32 xdplb_hop_id_v6(const __be32 addr[4])
{
	__u32 h = bpf_ntohl(addr[0]) * 0x9E3779B1U ^ bpf_ntohl(addr[1]) * 0x85EBCA77U ^
		  bpf_ntohl(addr[2]) * 0xC2B2AE3DU ^ bpf_ntohl(addr[3]) * 0x27D4EB2FU;

	h ^= h >> 15;
	h ^= h >> 7;
	h &= XDPLB_HOP_V6_MASK;
	return h ? h : 1;
}

/* The GRE key naming a backend as the second hop, in network order. */
static __always_inline __be32 xdplb_hop_key(const __be32 addr[4], bool ipv6)
{
	return ipv6 ? bpf_htonl(xdplb_hop_id_v6(addr)) : addr[0];
}

#endif /* XDPLB_HOP_H */
