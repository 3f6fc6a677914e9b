// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lab_cut: the ecmp-lab's "dead LB node" — every frame on a link dropped,
 * both ways, while the link's carrier stays up (a hung host, a silent
 * switch port). Attached to the router's side of an LB node's veth: XDP
 * drops what the node sends (its own packets, its XDP_TX'ed GRE and its BFD
 * and BGP), tc egress drops what the router sends it. Only BFD can notice.
 * Lab-only (ecmp-lab/scenarios/node_failure.sh); not part of the balancer.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int lab_cut_xdp(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("tc")
int lab_cut_tc(struct __sk_buff *skb)
{
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
