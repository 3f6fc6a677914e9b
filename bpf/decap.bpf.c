// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdplb_decap / xdplb_decap_xdp: GRE decapsulation on a backend.
 *
 * The balancer sends [Ethernet][outer IPv4|IPv6][GRE, 4 bytes][inner IP packet]
 * (bpf/encap.h). These programs strip the outer IP and GRE headers so the
 * kernel sees the inner packet as if it had arrived on the interface as is; a
 * VIP on `lo` then takes it, and the reply leaves with the VIP as source
 * straight to the client (DSR). For kernels without GRE (CONFIG_NET_IPGRE
 * unset); tools/gre-decap prefers kernel GRE where it exists.
 *
 * Decapsulated: outer IPv4 (no fragment) or IPv6 (GRE as the first next
 * header), GRE flags and version all zero (RFC 2784 base header: no checksum,
 * key or sequence number) or only the key bit (the second hop, xdplb_abi.h
 * 4b), protocol 0x0800 or 0x86DD with a matching inner version. Everything
 * else is left untouched for the kernel.
 *
 * Second chance: a packet whose key names a second hop is delivered here if
 * the inner packet is a TCP SYN or a local socket has its flow, else it is
 * handed on to the second hop (xdplb_abi.h section 7).
 *
 *   xdplb_decap       tc clsact ingress, direct-action: TC_ACT_OK always, but
 *                     TC_ACT_SHOT when the kernel failed half way through, and
 *                     TC_ACT_REDIRECT for a packet handed on.
 *   xdplb_decap_front the same in front of the kernel's GRE device: plain GRE
 *                     is left to the kernel untouched, keyed GRE is handed on
 *                     or decapsulated here (the kernel's keyless device would
 *                     not take it).
 *   xdplb_decap_xdp   XDP: XDP_PASS always, but XDP_DROP likewise and
 *                     XDP_TX/XDP_REDIRECT for a packet handed on. Plain
 *                     Ethernet only (a VLAN-tagged frame is passed untouched).
 *
 * Every packet counts XDPLB_DECAP_CNT_RX and exactly one outcome counter
 * (enum xdplb_decap_counter_id in xdplb_abi.h) in xdplb_decap_cnt.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdplb_abi.h"
#include "hop.h"
#include "csum.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* IPv4 frag_off bits (host order; <net/ip.h> isn't a uapi header). */
#define DECAP_IP_MF 0x2000
#define DECAP_IP_OFFSET 0x1fff

/*
 * bpf_skb_adjust_room flags of Linux 6.3+, missing from older uapi headers
 * (Debian 12 ships 6.1's). Values as in the kernel's enum; older kernels
 * refuse them with -EINVAL and decap_skb falls back to bpf_skb_change_proto.
 */
#define DECAP_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define DECAP_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)

/* Bytes the tc program needs in the linear area: Ethernet, the largest outer
 * IPv4 header, GRE with its key, the largest inner IPv4 header and the TCP
 * header up to its flags (a second hop looks at the inner flow). */
#define DECAP_PULL_LEN (ETH_HLEN + 60 + 8 + 60 + 14)

/* The 4-byte GRE base header (RFC 2784 without the optional checksum). */
struct decap_gre {
	__be16 flags; /* C, reserved0, version: all zero for us */
	__be16 proto; /* inner ethertype */
};

/* What decap_parse found in a packet it will decapsulate. */
struct decap_hdrs {
	__u32 outer_len;   /* outer IP header + GRE: the bytes to remove */
	__be16 inner_proto; /* ETH_P_IP | ETH_P_IPV6, network order */
	__u8 outer_v6;
	__u8 inner_v6;
	__u8 has_key;      /* GRE K bit: a second hop (or the handed-on flag) */
	__u8 pad[3];
	__be32 key;
};

/* Per-CPU counters: enum xdplb_decap_counter_id -> packets, bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPLB_DECAP_CNT_MAX);
	__type(key, __u32);
	__type(value, struct xdplb_counter);
} xdplb_decap_cnt SEC(".maps");

/* IPv6 hop id -> address of a peer backend (tools/gre-decap --peer). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPLB_DECAP_PEERS_MAX);
	__type(key, __u32);
	__type(value, struct xdplb_decap_peer);
} xdplb_hop_peers SEC(".maps");

/* One packet of `bytes` bytes (its length on entry) for counter `id`. */
static __always_inline void decap_count(__u32 id, __u32 bytes)
{
	struct xdplb_counter *c = bpf_map_lookup_elem(&xdplb_decap_cnt, &id);

	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

/*
 * Is [data, data_end) a GRE packet we decapsulate? Returns the outcome: one of
 * XDPLB_DECAP_CNT_DECAP_* (and `h` filled in) or the PASS_* reason to leave it.
 */
static __always_inline __u32 decap_parse(void *data, void *data_end, struct decap_hdrs *h)
{
	struct ethhdr *eth = data;
	struct decap_gre *gre;
	__u8 *inner;

	if ((void *)(eth + 1) > data_end)
		return XDPLB_DECAP_CNT_PASS_MALFORMED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > data_end)
			return XDPLB_DECAP_CNT_PASS_MALFORMED;
		if (iph->protocol != IPPROTO_GRE)
			return XDPLB_DECAP_CNT_PASS_NOT_GRE;
		if (iph->version != 4 || iph->ihl < 5)
			return XDPLB_DECAP_CNT_PASS_MALFORMED;
		/* Only the reassembled packet could be decapsulated. */
		if (iph->frag_off & bpf_htons(DECAP_IP_MF | DECAP_IP_OFFSET))
			return XDPLB_DECAP_CNT_PASS_FRAGMENT;
		h->outer_len = iph->ihl * 4;
		h->outer_v6 = 0;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)(ip6h + 1) > data_end)
			return XDPLB_DECAP_CNT_PASS_MALFORMED;
		/* The balancer writes GRE right after the fixed header; extension
		 * headers are someone else's tunnel. */
		if (ip6h->nexthdr != IPPROTO_GRE)
			return XDPLB_DECAP_CNT_PASS_NOT_GRE;
		if (ip6h->version != 6)
			return XDPLB_DECAP_CNT_PASS_MALFORMED;
		h->outer_len = sizeof(*ip6h);
		h->outer_v6 = 1;
	} else {
		return XDPLB_DECAP_CNT_PASS_NOT_GRE;
	}

	/* outer_len is 20..60 or 40: the verifier knows the range. */
	gre = (void *)(eth + 1) + h->outer_len;
	if ((void *)(gre + 1) > data_end)
		return XDPLB_DECAP_CNT_PASS_MALFORMED;
	/* Checksum, sequence number or version != 0: not the balancer's; the
	 * key alone is its second hop. */
	if (gre->flags == bpf_htons(XDPLB_GRE_FLAG_KEY)) {
		__be32 *key = (void *)(gre + 1);

		if ((void *)(key + 1) > data_end)
			return XDPLB_DECAP_CNT_PASS_MALFORMED;
		h->has_key = 1;
		h->key = *key;
		inner = (void *)(key + 1);
	} else if (gre->flags != 0) {
		return XDPLB_DECAP_CNT_PASS_GRE_OTHER;
	} else {
		inner = (void *)(gre + 1);
	}
	if ((void *)(inner + 1) > data_end)
		return XDPLB_DECAP_CNT_PASS_MALFORMED;
	if (gre->proto == bpf_htons(ETH_P_IP)) {
		if ((*inner >> 4) != 4)
			return XDPLB_DECAP_CNT_PASS_MALFORMED;
		h->inner_v6 = 0;
	} else if (gre->proto == bpf_htons(ETH_P_IPV6)) {
		if ((*inner >> 4) != 6)
			return XDPLB_DECAP_CNT_PASS_MALFORMED;
		h->inner_v6 = 1;
	} else {
		return XDPLB_DECAP_CNT_PASS_GRE_OTHER;
	}
	h->inner_proto = gre->proto;
	h->outer_len += sizeof(*gre) + (h->has_key ? XDPLB_GRE_KEY_LEN : 0);
	/* 4IN4, 6IN4, 4IN6, 6IN6 follow each other in the enum. */
	return XDPLB_DECAP_CNT_DECAP_4IN4 + h->outer_v6 * 2 + h->inner_v6;
}

/*
 * Shrink by the outer headers with the DECAP_L3 flag of the inner family
 * (Linux 6.3+; older kernels: -EINVAL, nothing changed). Tests/decap builds
 * with XDPLB_DECAP_TEST_LEGACY to run the older kernels' path on a new one.
 */
static __always_inline long decap_adjust_l3(struct __sk_buff *skb, const struct decap_hdrs *h,
					    __u64 flags)
{
#ifdef XDPLB_DECAP_TEST_LEGACY
	return -22; /* -EINVAL, as from a kernel before 6.3 */
#else
	flags |= h->inner_v6 ? DECAP_ADJ_ROOM_DECAP_L3_IPV6 : DECAP_ADJ_ROOM_DECAP_L3_IPV4;
	return bpf_skb_adjust_room(skb, -(__s32)h->outer_len, BPF_ADJ_ROOM_MAC, flags);
#endif
}

/*
 * Remove the outer headers of an skb: the inner packet follows the Ethernet
 * header, skb->protocol and the ethertype name its family. Returns the
 * outcome; sets *action to TC_ACT_SHOT when the packet is left half changed.
 */
static __always_inline __u32 decap_skb(struct __sk_buff *skb, const struct decap_hdrs *h,
				       __u32 outcome, int *action)
{
	/* gso_size counts inner payload bytes, which don't change. */
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
	__s32 len = h->outer_len;

	/* Linux 6.3+: one call, skb->protocol set from the flag. */
	if (!decap_adjust_l3(skb, h, flags))
		goto fix_ethertype;

	/* Older kernels: -EINVAL for the DECAP_L3 flags; nothing changed yet. */
	if (h->inner_v6 == h->outer_v6) {
		if (bpf_skb_adjust_room(skb, -len, BPF_ADJ_ROOM_MAC, flags))
			return XDPLB_DECAP_CNT_PASS_ERROR;
		return outcome;
	}
	/*
	 * Across families adjust_room keeps skb->protocol and would insist on
	 * the outer family's minimum length. bpf_skb_change_proto sets the
	 * inner family and inserts (4 -> 6) or removes (6 -> 4) 20 bytes right
	 * after the Ethernet header, inside the outer header we drop anyway.
	 */
	if (bpf_skb_change_proto(skb, h->inner_proto, 0))
		return XDPLB_DECAP_CNT_PASS_ERROR;
	len += h->inner_v6 ? (__s32)(sizeof(struct ipv6hdr) - sizeof(struct iphdr))
			   : -(__s32)(sizeof(struct ipv6hdr) - sizeof(struct iphdr));
	if (bpf_skb_adjust_room(skb, -len, BPF_ADJ_ROOM_MAC, flags)) {
		*action = TC_ACT_SHOT;
		return XDPLB_DECAP_CNT_DROP_ERROR;
	}

fix_ethertype:
	/* skb->protocol is what the stack goes by; the header bytes are for
	 * anyone looking at the frame later (packet sockets, tcpdump). */
	if (h->inner_v6 != h->outer_v6)
		bpf_skb_store_bytes(skb, __builtin_offsetof(struct ethhdr, h_proto),
				    &h->inner_proto, sizeof(h->inner_proto), 0);
	return outcome;
}

/* ---- second chance ------------------------------------------------------ */

enum hop_verdict {
	HOP_DELIVER, /* decapsulate and deliver here (*counter: the path, or XDPLB_DECAP_CNT_MAX) */
	HOP_HAND_ON, /* send on to *to */
	HOP_DROP,    /* *counter: the drop outcome */
};

/* A bpf_sock that is a local end of the flow: not a listener (TCP), or connected (UDP). */
static __always_inline bool hop_sock_local(struct bpf_sock *sk, bool tcp)
{
	bool local;

	if (!sk)
		return false;
	local = tcp ? sk->state != BPF_TCP_LISTEN : sk->dst_port != 0;
	bpf_sk_release(sk);
	return local;
}

/*
 * A packet whose key names a second hop (h->has_key, not handed on): deliver
 * it here (a TCP SYN; a local socket has the flow; or it can't be handed on
 * in place), hand it on to *to (the same family as the outer header), or drop
 * it (a bogus key and no local socket).
 */
static __always_inline int hop_decide(void *ctx, void *data, void *data_end, const struct decap_hdrs *h,
				      struct xdplb_decap_peer *to, __u32 *counter)
{
	__u32 off = (ETH_HLEN + h->outer_len) & 0xff;
	struct bpf_sock_tuple t = {};
	void *inner = data + off;
	__u32 tlen, key;
	void *l4;
	__u8 proto;

	*counter = XDPLB_DECAP_CNT_MAX;
	if (!h->inner_v6) {
		struct iphdr *ip = inner;

		if ((void *)(ip + 1) > data_end || ip->ihl != 5 ||
		    (ip->frag_off & bpf_htons(DECAP_IP_MF | DECAP_IP_OFFSET)))
			return HOP_DELIVER;
		proto = ip->protocol;
		l4 = ip + 1;
		t.ipv4.saddr = ip->saddr;
		t.ipv4.daddr = ip->daddr;
		tlen = sizeof(t.ipv4);
	} else {
		struct ipv6hdr *ip6 = inner;

		if ((void *)(ip6 + 1) > data_end)
			return HOP_DELIVER;
		proto = ip6->nexthdr;
		l4 = ip6 + 1;
		__builtin_memcpy(t.ipv6.saddr, &ip6->saddr, sizeof(t.ipv6.saddr));
		__builtin_memcpy(t.ipv6.daddr, &ip6->daddr, sizeof(t.ipv6.daddr));
		tlen = sizeof(t.ipv6);
	}
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return HOP_DELIVER;
		if (th->syn) {
			*counter = XDPLB_DECAP_CNT_HOP_LOCAL_SYN;
			return HOP_DELIVER;
		}
		if (h->inner_v6) {
			t.ipv6.sport = th->source;
			t.ipv6.dport = th->dest;
		} else {
			t.ipv4.sport = th->source;
			t.ipv4.dport = th->dest;
		}
		if (hop_sock_local((struct bpf_sock *)bpf_skc_lookup_tcp(ctx, &t, tlen, BPF_F_CURRENT_NETNS, 0), true)) {
			*counter = XDPLB_DECAP_CNT_HOP_LOCAL_SOCKET;
			return HOP_DELIVER;
		}
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return HOP_DELIVER;
		if (h->inner_v6) {
			t.ipv6.sport = uh->source;
			t.ipv6.dport = uh->dest;
		} else {
			t.ipv4.sport = uh->source;
			t.ipv4.dport = uh->dest;
		}
		if (hop_sock_local(bpf_sk_lookup_udp(ctx, &t, tlen, BPF_F_CURRENT_NETNS, 0), false)) {
			*counter = XDPLB_DECAP_CNT_HOP_LOCAL_SOCKET;
			return HOP_DELIVER;
		}
	} else {
		return HOP_DELIVER;
	}

	key = bpf_ntohl(h->key);
	if ((key >> 24) == 0) {
		__u32 id = key & XDPLB_HOP_V6_MASK;
		struct xdplb_decap_peer *peer = bpf_map_lookup_elem(&xdplb_hop_peers, &id);

		if (!peer) {
			*counter = XDPLB_DECAP_CNT_DROP_HOP_UNKNOWN;
			return HOP_DROP;
		}
		*to = *peer;
		if (!h->outer_v6) {
			*counter = XDPLB_DECAP_CNT_HOP_OTHER_FAMILY;
			return HOP_DELIVER;
		}
	} else {
		/* Loopback, multicast, class E: no backend has them. */
		if ((key >> 24) == 127 || (key >> 24) >= 224) {
			*counter = XDPLB_DECAP_CNT_DROP_HOP_UNKNOWN;
			return HOP_DROP;
		}
		to->addr[0] = h->key;
		if (h->outer_v6) {
			*counter = XDPLB_DECAP_CNT_HOP_OTHER_FAMILY;
			return HOP_DELIVER;
		}
	}
	/* In place needs the plain outer header the balancer writes. */
	if (!h->outer_v6 && h->outer_len != sizeof(struct iphdr) + sizeof(struct decap_gre) + XDPLB_GRE_KEY_LEN)
		return HOP_DELIVER;
	return HOP_HAND_ON;
}

/*
 * The second-hop step of every program for a packet it decapsulates: a
 * packet without a key, or handed on to us, is delivered (the latter
 * counted); a keyed one goes through hop_decide. Counts what it decided
 * except a hand-on (the caller counts how sending went).
 */
static __always_inline int hop_step(void *ctx, void *data, void *data_end, const struct decap_hdrs *h,
				    struct xdplb_decap_peer *to, __u32 bytes)
{
	__u32 counter;
	int v;

	if (!h->has_key)
		return HOP_DELIVER;
	if (h->key == bpf_htonl(XDPLB_HOP_HANDED_ON)) {
		decap_count(XDPLB_DECAP_CNT_HOP_RECEIVED, bytes);
		return HOP_DELIVER;
	}
	v = hop_decide(ctx, data, data_end, h, to, &counter);
	if (v != HOP_HAND_ON && counter != XDPLB_DECAP_CNT_MAX)
		decap_count(counter, bytes);
	return v;
}

/*
 * Turn the outer header around toward *to: source = the received
 * destination (this backend), destination = the second hop, TTL / hop limit
 * 64, key = handed on. Fills *p for the FIB lookup. False if out of bounds.
 */
static __always_inline bool hop_rewrite(void *data, void *data_end, const struct decap_hdrs *h,
					const struct xdplb_decap_peer *to, struct bpf_fib_lookup *p)
{
	struct ethhdr *eth = data;
	__be32 *key;

	if (!h->outer_v6) {
		struct iphdr *ip = (void *)(eth + 1);
		struct iphdr hdr;

		key = (void *)(ip + 1) + sizeof(struct decap_gre);
		if ((void *)(key + 1) > data_end)
			return false;
		hdr = *ip;
		hdr.saddr = ip->daddr;
		hdr.daddr = to->addr[0];
		hdr.ttl = XDPLB_OUTER_TTL;
		hdr.check = 0;
		hdr.check = csum_ipv4_hdr(&hdr);
		*ip = hdr;
		p->family = AF_INET;
		p->ipv4_src = hdr.saddr;
		p->ipv4_dst = hdr.daddr;
		p->tot_len = bpf_ntohs(hdr.tot_len);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		key = (void *)(ip6 + 1) + sizeof(struct decap_gre);
		if ((void *)(key + 1) > data_end)
			return false;
		ip6->saddr = ip6->daddr;
		__builtin_memcpy(&ip6->daddr, to->addr, sizeof(ip6->daddr));
		ip6->hop_limit = XDPLB_OUTER_TTL;
		p->family = AF_INET6;
		__builtin_memcpy(p->ipv6_src, &ip6->saddr, sizeof(p->ipv6_src));
		__builtin_memcpy(p->ipv6_dst, to->addr, sizeof(p->ipv6_dst));
		p->tot_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	}
	*key = bpf_htonl(XDPLB_HOP_HANDED_ON);
	p->l4_protocol = IPPROTO_GRE;
	return true;
}

/* Write the next hop's MACs from a successful FIB lookup. False if out of bounds. */
static __always_inline bool hop_set_macs(void *data, void *data_end, const struct bpf_fib_lookup *p)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return false;
	__builtin_memcpy(eth->h_dest, p->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, p->smac, ETH_ALEN);
	return true;
}

/*
 * tc: hand a packet on; returns the tc action, *outcome its counter. The
 * kernel routes it as its own output (bpf_redirect_neigh without a next hop:
 * a route lookup for the new destination through the interface it came in
 * on, then the neighbour), so the backend need not forward (a FIB lookup
 * would insist on ip_forward).
 */
static __always_inline int hop_send_skb(struct __sk_buff *skb, const struct decap_hdrs *h,
					const struct xdplb_decap_peer *to, __u32 *outcome)
{
	struct bpf_fib_lookup p = {};
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	*outcome = XDPLB_DECAP_CNT_DROP_HOP_NO_ROUTE;
	if (!hop_rewrite(data, data_end, h, to, &p))
		return TC_ACT_SHOT;
	/* The outer header changed: the old flow hash no longer fits. */
	bpf_set_hash_invalid(skb);
	*outcome = XDPLB_DECAP_CNT_FWD_HANDED_ON;
	return bpf_redirect_neigh(skb->ingress_ifindex, NULL, 0, 0);
}

/* The tc programs: `front` leaves plain GRE to the kernel's GRE device. */
static __always_inline int decap_tc(struct __sk_buff *skb, bool front)
{
	__u32 bytes = skb->len;
	struct decap_hdrs h = {};
	int action = TC_ACT_OK;
	void *data, *data_end;
	__u32 outcome;

	decap_count(XDPLB_DECAP_CNT_RX, bytes);
	/* Decapsulating someone else's frame (promiscuous mode, a bridge
	 * port) would deliver it to us. */
	if (skb->pkt_type != PACKET_HOST) {
		decap_count(XDPLB_DECAP_CNT_PASS_NOT_HOST, bytes);
		return TC_ACT_OK;
	}
	/* Direct access only reaches the linear part: make the headers linear
	 * when the driver left them in fragments. */
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + DECAP_PULL_LEN > data_end && skb->len > data_end - data)
		bpf_skb_pull_data(skb, skb->len < DECAP_PULL_LEN ? skb->len : DECAP_PULL_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;

	outcome = decap_parse(data, data_end, &h);
	if (outcome >= XDPLB_DECAP_CNT_DECAP_4IN4 && outcome <= XDPLB_DECAP_CNT_DECAP_6IN6) {
		struct xdplb_decap_peer to = {};
		int v = hop_step(skb, data, data_end, &h, &to, bytes);

		if (v == HOP_DROP)
			return TC_ACT_SHOT;
		if (v == HOP_HAND_ON) {
			action = hop_send_skb(skb, &h, &to, &outcome);
			decap_count(outcome, bytes);
			return action;
		}
		if (!h.has_key && front) {
			decap_count(XDPLB_DECAP_CNT_PASS_KERNEL, bytes);
			return TC_ACT_OK;
		}
		outcome = decap_skb(skb, &h, outcome, &action);
		/* The flow hash (if any) was the outer one: let the kernel
		 * recompute it from the inner packet. */
		if (action == TC_ACT_OK)
			bpf_set_hash_invalid(skb);
	}
	decap_count(outcome, bytes);
	return action;
}

SEC("tc")
int xdplb_decap(struct __sk_buff *skb)
{
	return decap_tc(skb, false);
}

/* Its own section name: tc picks a program by section (`sec classifier`). */
SEC("classifier")
int xdplb_decap_front(struct __sk_buff *skb)
{
	return decap_tc(skb, true);
}

/*
 * Remove the outer headers of an XDP frame: save the Ethernet header, move
 * the start of the frame past the outer headers, write it back with the inner
 * ethertype. The kernel takes the family from that ethertype on XDP_PASS.
 */
static __always_inline __u32 decap_xdp(struct xdp_md *ctx, const struct decap_hdrs *h,
				       __u32 outcome, int *action)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ethhdr saved;

	if ((void *)(eth + 1) > data_end)
		return XDPLB_DECAP_CNT_PASS_MALFORMED;
	saved = *eth;
	if (bpf_xdp_adjust_head(ctx, (int)h->outer_len))
		return XDPLB_DECAP_CNT_PASS_ERROR;
	/* adjust_head invalidated every packet pointer: re-read both ends. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end) {
		*action = XDP_DROP;
		return XDPLB_DECAP_CNT_DROP_ERROR;
	}
	saved.h_proto = h->inner_proto;
	*eth = saved;
	return outcome;
}

/*
 * XDP: hand a packet on. XDP has only the FIB lookup, which needs forwarding
 * enabled on the interface and the next hop's neighbour known; else the
 * packet is dropped and counted (drop_hop_no_route).
 */
static __always_inline int hop_send_xdp(struct xdp_md *ctx, const struct decap_hdrs *h,
					const struct xdplb_decap_peer *to, __u32 *outcome)
{
	struct bpf_fib_lookup p = {};
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	*outcome = XDPLB_DECAP_CNT_DROP_HOP_NO_ROUTE;
	if (!hop_rewrite(data, data_end, h, to, &p))
		return XDP_DROP;
	p.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &p, sizeof(p), BPF_FIB_LOOKUP_OUTPUT) != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_DROP;
	if (!hop_set_macs(data, data_end, &p))
		return XDP_DROP;
	*outcome = XDPLB_DECAP_CNT_FWD_HANDED_ON;
	if (p.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(p.ifindex, 0);
}

SEC("xdp")
int xdplb_decap_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* Pointer minus pointer: needs a privileged loader (allow_ptr_leaks),
	 * which attaching XDP requires anyway. */
	__u32 bytes = (long)data_end - (long)data;
	struct decap_hdrs h = {};
	int action = XDP_PASS;
	__u32 outcome;

	decap_count(XDPLB_DECAP_CNT_RX, bytes);
	outcome = decap_parse(data, data_end, &h);
	if (outcome >= XDPLB_DECAP_CNT_DECAP_4IN4 && outcome <= XDPLB_DECAP_CNT_DECAP_6IN6) {
		struct xdplb_decap_peer to = {};
		int v = hop_step(ctx, data, data_end, &h, &to, bytes);

		if (v == HOP_DROP)
			return XDP_DROP;
		if (v == HOP_HAND_ON) {
			action = hop_send_xdp(ctx, &h, &to, &outcome);
			decap_count(outcome, bytes);
			return action;
		}
		outcome = decap_xdp(ctx, &h, outcome, &action);
	}
	decap_count(outcome, bytes);
	return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
