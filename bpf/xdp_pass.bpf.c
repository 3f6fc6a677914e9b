// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdplb_pass: an XDP program that passes every frame to the kernel.
 *
 * XDP_TX on a veth delivers only when the PEER veth runs an XDP program
 * (without one the frames count as xdp_tx_errors). The ecmp-lab attaches this
 * to the router-side peers of the LB nodes' veths; it changes nothing.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdplb_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
