/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow hash. Its bit-for-bit twin is Sources/Maglev/FlowHash.swift, and a
 * parity test runs both over random flows: change one, change the other.
 *
 * MurmurHash3 (x86_32) over 32-bit words, seeded with the cluster-wide
 * hash_seed. A word is four packet bytes read as a little-endian u32 (what a
 * plain load gives on the little-endian BPF target), so no byte swapping is
 * needed on the hot path. Words, in order:
 *   5-tuple:   src address words (1 for v4, 4 for v6), dst address words,
 *              the port word (sport then dport, as on the wire), the protocol;
 *   source-ip: src address words only.
 * The length mixed into the finaliser is 4 x number of words.
 */
#ifndef XDPLB_FLOW_HASH_H
#define XDPLB_FLOW_HASH_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

static __always_inline __u32 xdplb_rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* One MurmurHash3 body step. */
static __always_inline __u32 xdplb_hash_word(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51U;
	k = xdplb_rotl32(k, 15);
	k *= 0x1b873593U;
	h ^= k;
	h = xdplb_rotl32(h, 13);
	return h * 5 + 0xe6546b64U;
}

/* MurmurHash3 finaliser; nwords is the number of words mixed in. */
static __always_inline __u32 xdplb_hash_final(__u32 h, __u32 nwords)
{
	h ^= nwords * 4;
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

/*
 * Hash of a flow. addr words are taken from the flow key (v4 uses src[0] and
 * dst[0] only); `ports` is the raw sport/dport word. src_only selects the
 * source-ip mode.
 */
static __always_inline __u32 xdplb_flow_hash(const __u32 *src, const __u32 *dst, __u32 ports,
					     __u32 proto, int is_v6, int src_only, __u32 seed)
{
	__u32 h = seed;
	__u32 n;

	if (is_v6) {
		h = xdplb_hash_word(h, src[0]);
		h = xdplb_hash_word(h, src[1]);
		h = xdplb_hash_word(h, src[2]);
		h = xdplb_hash_word(h, src[3]);
		n = 4;
	} else {
		h = xdplb_hash_word(h, src[0]);
		n = 1;
	}
	if (src_only)
		return xdplb_hash_final(h, n);
	if (is_v6) {
		h = xdplb_hash_word(h, dst[0]);
		h = xdplb_hash_word(h, dst[1]);
		h = xdplb_hash_word(h, dst[2]);
		h = xdplb_hash_word(h, dst[3]);
		n += 4;
	} else {
		h = xdplb_hash_word(h, dst[0]);
		n += 1;
	}
	h = xdplb_hash_word(h, ports);
	h = xdplb_hash_word(h, proto);
	return xdplb_hash_final(h, n + 2);
}

#endif /* XDPLB_FLOW_HASH_H */
