// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdplb_probe: through-tunnel health probes, tc clsact egress on the LB node.
 *
 * A probe socket of the agent carries SO_MARK = XDPLB_PROBE_MARK | backend id
 * and talks to VIP:port. Its packets leave toward the VIP; this program turns
 * each into exactly what the data plane sends for a client packet of that VIP
 * (bpf/encap.h):
 *
 *   [Ethernet][outer IPv4: DF, TTL 64, TOS of the inner | outer IPv6: TTL 64,
 *   traffic class of the inner, flow label = the skb hash][GRE: 0x0000, inner
 *   ethertype][the probe's IP packet, untouched]
 *
 * from the node's encap source to that backend, and hands it to the backend's
 * next hop (the agent's resolved one, or the FIB's with neighbour resolution).
 * The mark is cleared, so the packet is never wrapped twice. The backend
 * decapsulates it as it does client traffic (tools/gre-decap), so the probe
 * passes only if the backend has the VIP, the decap and the service; the
 * answer comes back by DSR, from the VIP to the node's own address, which the
 * balancer passes to the kernel (not a VIP).
 *
 * The backends and config maps are the balancer's (reused from its pins).
 * Unmarked packets: TC_ACT_OK, nothing counted.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdplb_abi.h"
#include "maps_node.h"
#include "outer.h"

#define PROBE_AF_INET 2
#define PROBE_AF_INET6 10

/* enum xdplb_probe_counter_id -> packets, bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPLB_PROBE_CNT_MAX);
	__type(key, __u32);
	__type(value, struct xdplb_counter);
} xdplb_probe_cnt SEC(".maps");

struct probe_gre {
	__be16 flags;
	__be16 proto;
};

static __always_inline int outcome(__u32 id, __u32 bytes, int verdict)
{
	__u32 rx = XDPLB_PROBE_CNT_RX;
	struct xdplb_counter *c = bpf_map_lookup_elem(&xdplb_probe_cnt, &rx);

	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
	c = bpf_map_lookup_elem(&xdplb_probe_cnt, &id);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
	return verdict;
}

SEC("tc")
int xdplb_probe(struct __sk_buff *skb)
{
	__u32 mark = skb->mark, len = skb->len, zero = 0, id, inner_len;
	const struct xdplb_node_cfg *cfg;
	const struct xdplb_backend *be;
	struct bpf_fib_lookup fib = {};
	__be16 inner_proto, outer_proto;
	struct probe_gre gre = {};
	__u8 first[2];
	__u8 tos;
	long rc;

	if ((mark & XDPLB_PROBE_MARK_MASK) != XDPLB_PROBE_MARK)
		return TC_ACT_OK;
	id = mark & XDPLB_PROBE_ID_MASK;
	be = bpf_map_lookup_elem(&xdplb_backends, &id);
	/* Any configured backend, also one down everywhere (not PRESENT): probing it is how it comes back. */
	if (!be || !(be->addr[0] | be->addr[1] | be->addr[2] | be->addr[3]))
		return outcome(XDPLB_PROBE_CNT_DROP_NO_BACKEND, len, TC_ACT_SHOT);
	cfg = bpf_map_lookup_elem(&xdplb_config, &zero);
	if (!cfg)
		return outcome(XDPLB_PROBE_CNT_DROP_NO_SOURCE, len, TC_ACT_SHOT);

	/* The inner packet: Ethernet (no VLAN on a probe socket's device), then IPv4 or IPv6. */
	inner_proto = skb->protocol;
	if ((inner_proto != bpf_htons(ETH_P_IP) && inner_proto != bpf_htons(ETH_P_IPV6)) ||
	    len < ETH_HLEN + 20 || bpf_skb_load_bytes(skb, ETH_HLEN, first, sizeof(first)))
		return outcome(XDPLB_PROBE_CNT_DROP_MALFORMED, len, TC_ACT_SHOT);
	if (inner_proto == bpf_htons(ETH_P_IP))
		tos = first[1];
	else
		tos = (__u8)((first[0] << 4) | (first[1] >> 4));
	inner_len = len - ETH_HLEN;
	gre.proto = inner_proto;

	if (!(be->flags & XDPLB_BACKEND_F_IPV6)) {
		struct iphdr ip = {};

		if (!cfg->encap_src_v4)
			return outcome(XDPLB_PROBE_CNT_DROP_NO_SOURCE, len, TC_ACT_SHOT);
		if (bpf_skb_adjust_room(skb, XDPLB_GRE_OVERHEAD_V4, BPF_ADJ_ROOM_MAC,
					BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE))
			return outcome(XDPLB_PROBE_CNT_DROP_ENCAP_FAIL, len, TC_ACT_SHOT);
		outer_ipv4_hdr(&ip, tos, inner_len + XDPLB_GRE_OVERHEAD_V4, cfg->encap_src_v4, be->addr[0]);
		outer_proto = bpf_htons(ETH_P_IP);
		if (bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) ||
		    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &gre, sizeof(gre), 0))
			return outcome(XDPLB_PROBE_CNT_DROP_ENCAP_FAIL, len, TC_ACT_SHOT);
		fib.family = PROBE_AF_INET;
		fib.ipv4_src = cfg->encap_src_v4;
		fib.ipv4_dst = be->addr[0];
		fib.tot_len = inner_len + XDPLB_GRE_OVERHEAD_V4;
	} else {
		struct ipv6hdr ip6 = {};

		if (!(cfg->encap_src_v6[0] | cfg->encap_src_v6[1] | cfg->encap_src_v6[2] | cfg->encap_src_v6[3]))
			return outcome(XDPLB_PROBE_CNT_DROP_NO_SOURCE, len, TC_ACT_SHOT);
		if (bpf_skb_adjust_room(skb, XDPLB_GRE_OVERHEAD_V6, BPF_ADJ_ROOM_MAC,
					BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE))
			return outcome(XDPLB_PROBE_CNT_DROP_ENCAP_FAIL, len, TC_ACT_SHOT);
		outer_ipv6_hdr(&ip6, tos, bpf_get_hash_recalc(skb), inner_len + sizeof(gre), cfg->encap_src_v6, be->addr);
		outer_proto = bpf_htons(ETH_P_IPV6);
		if (bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), 0) ||
		    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip6), &gre, sizeof(gre), 0))
			return outcome(XDPLB_PROBE_CNT_DROP_ENCAP_FAIL, len, TC_ACT_SHOT);
		fib.family = PROBE_AF_INET6;
		__builtin_memcpy(fib.ipv6_src, cfg->encap_src_v6, sizeof(fib.ipv6_src));
		__builtin_memcpy(fib.ipv6_dst, be->addr, sizeof(fib.ipv6_dst));
		fib.tot_len = inner_len + XDPLB_GRE_OVERHEAD_V6;
	}
	if (bpf_skb_store_bytes(skb, 12, &outer_proto, sizeof(outer_proto), 0))
		return outcome(XDPLB_PROBE_CNT_DROP_ENCAP_FAIL, len, TC_ACT_SHOT);
	skb->mark = 0; /* never wrapped twice, whichever way it leaves */

	if (be->flags & XDPLB_BACKEND_F_NEXTHOP) {
		if (bpf_skb_store_bytes(skb, 0, be->nh_dmac, ETH_ALEN, 0) ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, be->nh_smac, ETH_ALEN, 0))
			return outcome(XDPLB_PROBE_CNT_DROP_ENCAP_FAIL, len, TC_ACT_SHOT);
		outcome(outer_proto == bpf_htons(ETH_P_IP) ? XDPLB_PROBE_CNT_GRE_V4 : XDPLB_PROBE_CNT_GRE_V6, len, 0);
		if (be->nh_ifindex == skb->ifindex)
			return TC_ACT_OK;
		return bpf_redirect(be->nh_ifindex, 0);
	}
	fib.l4_protocol = IPPROTO_GRE;
	fib.ifindex = skb->ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0))
			return outcome(XDPLB_PROBE_CNT_DROP_ENCAP_FAIL, len, TC_ACT_SHOT);
		outcome(outer_proto == bpf_htons(ETH_P_IP) ? XDPLB_PROBE_CNT_GRE_V4 : XDPLB_PROBE_CNT_GRE_V6, len, 0);
		if (fib.ifindex == skb->ifindex)
			return TC_ACT_OK;
		return bpf_redirect(fib.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH || rc == BPF_FIB_LKUP_RET_FWD_DISABLED) {
		/*
		 * The kernel routes and resolves the neighbour and fills in the MACs: on the FIB's
		 * interface, or (forwarding off on this one, which the FIB helper insists on) this one.
		 */
		outcome(outer_proto == bpf_htons(ETH_P_IP) ? XDPLB_PROBE_CNT_GRE_V4 : XDPLB_PROBE_CNT_GRE_V6, len, 0);
		return bpf_redirect_neigh(rc == BPF_FIB_LKUP_RET_NO_NEIGH ? fib.ifindex : skb->ifindex, NULL, 0, 0);
	}
	return outcome(XDPLB_PROBE_CNT_DROP_FIB_FAIL, len, TC_ACT_SHOT);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
