/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Counting: per-CPU outcome/path counters, per-VIP and per-backend stats.
 * Per-CPU values need no atomics. Every add is packets + 1 and bytes + the
 * frame length the packet had on entry. BPF-only.
 */
#ifndef XDPLB_COUNTERS_H
#define XDPLB_COUNTERS_H

#include "maps.h"

static __always_inline void counter_add(void *map, __u32 index, __u32 bytes)
{
	struct xdplb_counter *c = bpf_map_lookup_elem(map, &index);

	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

/* A global counter (enum xdplb_counter_id). Out-of-range ids count nothing. */
static __always_inline void count(__u32 id, __u32 bytes)
{
	counter_add(&xdplb_counters, id, bytes);
}

/* A forwarded packet: its VIP's and its backend's stats. */
static __always_inline void count_forwarded(__u32 vip_index, __u32 backend_id, __u32 bytes)
{
	counter_add(&xdplb_vip_stats, vip_index, bytes);
	counter_add(&xdplb_backend_stats, backend_id, bytes);
}

#endif /* XDPLB_COUNTERS_H */
