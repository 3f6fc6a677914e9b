// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lab_probe_cut: the ecmp-lab's "one LB node cannot reach one backend".
 * Attached to tc egress of one LB node's own interface, it drops every packet
 * that node's kernel sends to the backend's two addresses (CUT_V4 and
 * CUT_V6_0..3: the addresses' 32-bit words as they sit in the packet, given
 * by the lab at compile time). The node's health probes to that backend
 * fail there and only there; the GRE the balancer sends with XDP_TX does not
 * pass tc egress, so client traffic still reaches the backend through every
 * node (ecmp-lab/scenarios/asymmetric_health.sh). Lab-only; not part of the
 * balancer.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#if !defined(CUT_V4) || !defined(CUT_V6_0) || !defined(CUT_V6_1) || !defined(CUT_V6_2) || !defined(CUT_V6_3)
#error "build with -DCUT_V4=... -DCUT_V6_0=... -DCUT_V6_1=... -DCUT_V6_2=... -DCUT_V6_3=..."
#endif

SEC("tc")
int lab_probe_cut(struct __sk_buff *skb)
{
	void *data, *data_end;
	struct ethhdr *eth;

	/* Locally generated packets: make the headers linear before reading them. */
	if (bpf_skb_pull_data(skb, sizeof(*eth) + sizeof(struct ipv6hdr)) < 0 &&
	    bpf_skb_pull_data(skb, sizeof(*eth) + sizeof(struct iphdr)) < 0)
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return TC_ACT_OK;
		return ip->daddr == CUT_V4 ? TC_ACT_SHOT : TC_ACT_OK;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__u32 *d;

		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		d = ip6->daddr.in6_u.u6_addr32;
		return d[0] == CUT_V6_0 && d[1] == CUT_V6_1 && d[2] == CUT_V6_2 && d[3] == CUT_V6_3 ? TC_ACT_SHOT
													: TC_ACT_OK;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
