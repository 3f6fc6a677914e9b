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
 * Not loaded by the agent; no maps.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdplb_abi.h"
#include "parse.h"

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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
