// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Floors for `xdplb bench`: programs run the same way as the balancer
 * (BPF_PROG_TEST_RUN, repeat = 1) so their time is what the measurement
 * itself costs, to subtract from the balancer's.
 *
 * - xdplb_bench_tx: XDP_TX and nothing else: the per-run floor (timer reads,
 *   program dispatch, test-run bookkeeping inside the timed window).
 * - xdplb_bench_parse: the balancer's parse path (parse.h: Ethernet + VLAN,
 *   IPv4/IPv6, TCP/UDP ports) on the same on-stack packet state, then
 *   XDP_PASS: the floor of a packet the balancer hands to the kernel.
 *
 * - xdplb_bench_loop: the restoring loop (xdplb_abi.h section 8): puts the
 *   original frame back, then tail-calls a floor or a balancer build, so one
 *   BPF_PROG_TEST_RUN with repeat = N times N runs of the original packet.
 *
 * Not loaded by the agent.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdplb_abi.h"
#include "parse.h"

/* One state per CPU, so the loop can run on several CPUs at once (`--loop-cpus`). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_BENCH_CPUS);
	__type(key, __u32);
	__type(value, struct xdplb_bench_state);
} xdplb_bench_st SEC(".maps");

/* Flow numbers of a CYCLE or MIX case, in the order they are sent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_BENCH_FLOWS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} xdplb_bench_fl SEC(".maps");

/* The programs the loop can run: floors and balancer builds (set by `xdplb bench`). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, XDPLB_BENCH_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} xdplb_bench_pr SEC(".maps");

SEC("xdp")
int xdplb_bench_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int xdplb_bench_parse(struct xdp_md *ctx)
{
	struct xdplb_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct xdplb_pkt pkt;
	int action;

	/* As xdplb_balancer starts. */
	__builtin_memset(&pkt, 0, sizeof(pkt));
	pkt.frame_len = (long)ctx->data_end - (long)ctx->data;
	pkt.outcome = XDPLB_CNT_MAX;

	action = parse_eth(&c, &pkt);
	if (action >= 0)
		goto out;
	if (pkt.flow.family == XDPLB_FAMILY_V4)
		action = parse_ipv4(&c, &pkt);
	else
		action = parse_ipv6(&c, &pkt);
	if (action >= 0)
		goto out;
	if ((pkt.flags & XDPLB_PKT_F_FRAGMENT) || !l4_supported(&pkt))
		goto out;
	if (pkt.l4_proto == IPPROTO_TCP || pkt.l4_proto == IPPROTO_UDP)
		parse_ports(&c, &pkt);
out:
	/* Every result is XDP_PASS: without this the compiler may drop the
	 * parse as dead code. The empty asm "reads" the packet state. */
	asm volatile("" : : "r"(&pkt) : "memory");
	return XDP_PASS;
}

/* The flow number this run carries (advancing the state), or -1 for FIXED. */
static __always_inline long bench_next_flow(struct xdplb_bench_state *st)
{
	__u32 *k, pos;

	if (st->mode == XDPLB_BENCH_DISTINCT)
		return st->next++;
	if (st->mode != XDPLB_BENCH_CYCLE && st->mode != XDPLB_BENCH_MIX)
		return -1;
	pos = st->pos;
	k = bpf_map_lookup_elem(&xdplb_bench_fl, &pos);
	st->pos = pos + 1 >= st->nflows ? 0 : pos + 1;
	if (!k)
		return -1;
	if (st->mode == XDPLB_BENCH_MIX && (*k & XDPLB_BENCH_MIX_NEW))
		return st->next++;
	return *k;
}

SEC("xdp")
int xdplb_bench_loop(struct xdp_md *ctx)
{
	struct xdplb_bench_state *st;
	__u32 cpu = bpf_get_smp_processor_id(), len, src_low;
	__be16 sport;
	long k, cur;

	st = bpf_map_lookup_elem(&xdplb_bench_st, &cpu);
	if (!st)
		return XDP_ABORTED;
	/* The previous run may have grown the head (encapsulation); the tail
	 * never moved. adjust_head(0) on a fresh frame keeps every run's cost equal. */
	cur = (long)ctx->data_end - (long)ctx->data;
	/* Keep the subtraction 64-bit on pointers: folded into 32-bit
	 * arithmetic the verifier refuses it. */
	asm volatile("" : "+r"(cur));
	if (bpf_xdp_adjust_head(ctx, (int)(cur - st->frame_len)))
		return XDP_ABORTED;
	len = st->prefix_len;
	if (len < 1 || len > XDPLB_BENCH_PREFIX_MAX)
		return XDP_ABORTED;
	if (bpf_xdp_store_bytes(ctx, 0, st->prefix, len))
		return XDP_ABORTED;
	k = bench_next_flow(st);
	if (k >= 0) {
		src_low = bpf_htonl(st->base_low + (__u32)k / XDPLB_BENCH_PORTS_PER_ADDR);
		sport = bpf_htons(1024 + (__u32)k % XDPLB_BENCH_PORTS_PER_ADDR);
		if (bpf_xdp_store_bytes(ctx, st->src_low_off, &src_low, sizeof(src_low)) ||
		    bpf_xdp_store_bytes(ctx, st->sport_off, &sport, sizeof(sport)))
			return XDP_ABORTED;
	}
	if (st->clock) {
		st->last_ns = bpf_ktime_get_ns();
		if (!st->first_ns)
			st->first_ns = st->last_ns;
	}
	bpf_tail_call(ctx, &xdplb_bench_pr, st->target);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
