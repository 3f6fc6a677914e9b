/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Conntrack: the set-associative flow table of xdplb_abi.h (struct
 * xdplb_ct_bucket). Everything here is inlined array access plus, when a way
 * is written, two atomics: no helper call on the hot path. BPF-only.
 */
#ifndef XDPLB_CONNTRACK_H
#define XDPLB_CONNTRACK_H

#include "parse.h"
#include "maps.h"

/*
 * The bucket hash of a flow key (xdplb_abi.h, "Conntrack"): the key's five
 * 8-byte words, each XORed with the seeded word and multiplied by its own odd
 * constant, XORed together and finished by one more multiply. The five
 * products don't wait on each other, so the bucket's address is ready a few
 * cycles after the key (MurmurHash3 is a chain of dependent steps). Its
 * bit-for-bit twin is Conntrack.bucketHash (Sources/DataPlane/Conntrack.swift).
 */
static __always_inline __u32 ct_hash(const struct xdplb_flow_key *key, __u32 seed)
{
	const __u64 *w = (const __u64 *)key;
	__u64 s = (__u64)seed * XDPLB_CT_HASH_SEED_MUL;
	__u64 h = ((w[0] ^ s) * XDPLB_CT_HASH_K0) ^ ((w[1] ^ s) * XDPLB_CT_HASH_K1) ^
		  ((w[2] ^ s) * XDPLB_CT_HASH_K2) ^ ((w[3] ^ s) * XDPLB_CT_HASH_K3) ^
		  ((w[4] ^ s) * XDPLB_CT_HASH_K4);

	h = (h ^ (h >> 32)) * XDPLB_CT_HASH_FINAL;
	return h >> 32;
}

/* The bucket of a flow whose bucket hash (ct_hash) is `hash`; NULL if ct_mask is past the map. */
static __always_inline struct xdplb_ct_bucket *ct_bucket(const struct xdplb_node_cfg *cfg, __u32 hash)
{
	__u32 index = hash & cfg->ct_mask;

	return bpf_map_lookup_elem(&xdplb_ct, &index);
}

/* Flow keys are equal: five 8-byte compares (both sides 8-aligned). */
static __always_inline bool ct_key_equal(const struct xdplb_flow_key *a, const struct xdplb_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/*
 * The entry of `key` in way `w`: true and *out set if the way holds the flow
 * and was stable while read. A hit marks the way recently used.
 */
static __always_inline bool ct_way_get(struct xdplb_ct_way *w, const struct xdplb_flow_key *key,
				       struct xdplb_ct_entry *out)
{
	__u32 seq = XDPLB_READ_ONCE(w->seq);
	__u32 flags;

	if (seq & 1)
		return false;
	xdplb_barrier();
	flags = w->flags;
	if (!(flags & XDPLB_CT_F_USED) || !ct_key_equal(&w->key, key))
		return false;
	*out = w->entry;
	xdplb_barrier();
	if (XDPLB_READ_ONCE(w->seq) != seq)
		return false;
	/* A plain store: losing a REF or EST mark to a racing writer only makes
	 * the CLOCK sweep a little less exact (the flow's next hit sets it
	 * again), and USED is never cleared. */
	if ((flags & (XDPLB_CT_F_REF | XDPLB_CT_F_EST)) != (XDPLB_CT_F_REF | XDPLB_CT_F_EST))
		w->flags = flags | XDPLB_CT_F_REF | XDPLB_CT_F_EST;
	return true;
}

/* Look `key` up in bucket `b`: true and *out set on a hit. */
static __always_inline bool ct_get(struct xdplb_ct_bucket *b, const struct xdplb_flow_key *key,
				   struct xdplb_ct_entry *out)
{
	return ct_way_get(&b->ways[0], key, out) || ct_way_get(&b->ways[1], key, out) ||
	       ct_way_get(&b->ways[2], key, out) || ct_way_get(&b->ways[3], key, out);
}

/*
 * The way a new entry for `key` goes to: the way already holding the flow,
 * else an empty way, else the first embryonic (not EST) way from `start`
 * round; for a SYN (`syn`) nothing else (NULL: not written). Other packets
 * then take the first way from `start` round that wasn't used since the
 * last sweep (clearing REF on the ways passed), else `start`.
 */
static __always_inline struct xdplb_ct_way *ct_victim(struct xdplb_ct_bucket *b,
						      const struct xdplb_flow_key *key, __u32 start,
						      bool syn)
{
	struct xdplb_ct_way *empty = NULL, *w;
	int i;

#pragma unroll
	for (i = 0; i < XDPLB_CT_WAYS; i++) {
		w = &b->ways[i];
		if (!(w->flags & XDPLB_CT_F_USED)) {
			if (!empty)
				empty = w;
			continue;
		}
		if (ct_key_equal(&w->key, key))
			return w;
	}
	if (empty)
		return empty;
#pragma unroll
	for (i = 0; i < XDPLB_CT_WAYS; i++) {
		w = &b->ways[(start + i) & (XDPLB_CT_WAYS - 1)];
		if (!(w->flags & XDPLB_CT_F_EST))
			return w;
	}
	if (syn)
		return NULL;
#pragma unroll
	for (i = 0; i < XDPLB_CT_WAYS; i++) {
		__u32 flags;

		w = &b->ways[(start + i) & (XDPLB_CT_WAYS - 1)];
		flags = w->flags;
		if (!(flags & XDPLB_CT_F_REF))
			return w;
		w->flags = flags & ~XDPLB_CT_F_REF; /* plain store, as in ct_way_get */
	}
	return &b->ways[start & (XDPLB_CT_WAYS - 1)];
}

/*
 * Remember that `key` goes to backend `id` (generation `gen`), as an
 * embryonic way. `hash` is the flow's bucket hash (ct_hash): its top bits
 * pick where the sweeps start. `syn`: the packet is a TCP SYN, which never takes an
 * established way. A way another CPU is writing right now is left alone (the
 * flow is remembered by its next packet).
 */
static __always_inline void ct_put(struct xdplb_ct_bucket *b, const struct xdplb_flow_key *key,
				   __u32 hash, __u32 id, __u32 gen, bool syn)
{
	struct xdplb_ct_way *w = ct_victim(b, key, hash >> 30, syn);
	__u32 seq;

	if (!w)
		return;
	seq = XDPLB_READ_ONCE(w->seq);
	if (seq & 1)
		return;
	if (__sync_val_compare_and_swap(&w->seq, seq, seq + 1) != seq)
		return;
	w->key = *key;
	w->entry.backend_id = id;
	w->entry.gen = gen;
	w->flags = XDPLB_CT_F_USED | XDPLB_CT_F_REF;
	__sync_fetch_and_add(&w->seq, 1);
}

#endif /* XDPLB_CONNTRACK_H */
