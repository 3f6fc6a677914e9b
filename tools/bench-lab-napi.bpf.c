// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tools/bench-lab probe: where the lab's balancers spend softirq time.
 *
 * The lab runs every node on the same 2 CPUs, and network receive work runs
 * in softirq on whichever task happens to be on the CPU, so per-process CPU
 * time can't say what a node costs. This kernel has neither kprobes nor
 * fentry for BPF; everything here is timed from tracepoints, per CPU:
 *
 * 1. NAPI polls of named interfaces (`times`). On a veth with an XDP program,
 *    everything an LB node does to a packet runs in the NAPI poll of its
 *    interface (veth_poll), in the NET_RX softirq: take the frame off the
 *    ring, run the XDP program, hand XDP_TX frames to the peer's ring.
 *    net_rx_action() runs polls one after another between irq:softirq_entry
 *    and irq:softirq_exit (NET_RX), and napi:napi_poll fires right after each
 *    poll returns: a poll's time runs from the previous of those marks to its
 *    own napi_poll (so it includes the few instructions of net_rx_action
 *    between two polls, and any hardware interrupt that hit the poll).
 * 2. Receive processing of packets arriving on named interfaces (`rx`). A veth
 *    without XDP hands packets to the per-CPU backlog, whose poll passes them
 *    one by one to __netif_receive_skb (net:netif_receive_skb fires at its
 *    start): a packet's time runs from its own netif_receive_skb to the next
 *    one, the end of the poll or the end of the softirq, whichever is first.
 *    This is a proxy's kernel receive path (IP, TCP, socket wake-up, ACKs).
 * 3. Softirq time that ran while the watched process (`watch`, a tgid) was
 *    the current task (`sirq_watched`): the kernel (no IRQ time accounting)
 *    charges it to that process as system time, although it is mostly other
 *    namespaces' packets. Subtracted from HAProxy's utime+stime, and (2) added
 *    instead, this gives the proxy node's own CPU.
 *
 * Interfaces are matched by name (`names`, value = slot). Not part of the
 * data plane (it lives in tools/, not bpf/): tools/bench-lab compiles and
 * loads it for the duration of a benchmark.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define IFNAMSIZ 16
#define SLOTS 32
#define NET_RX_SOFTIRQ 3

/* Only the fields used; CO-RE relocates them against the running kernel. */
struct net_device {
	char name[IFNAMSIZ];
} __attribute__((preserve_access_index));

struct napi_struct {
	struct net_device *dev;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
} __attribute__((preserve_access_index));

struct span_time {
	__u64 ns;
	__u64 count;       /* polls (times) or packets (rx) */
	__u64 packets;     /* the polls' work (times) */
};

/* Per-CPU state between tracepoints (softirqs don't nest on one CPU). */
struct cpu_state {
	__u64 napi_mark;   /* NET_RX entry or end of the last poll; 0 = outside NET_RX */
	__u64 rx_mark;     /* start of the open receive span */
	__u64 sirq_start;  /* start of a softirq run on the watched process, or 0 */
	__u32 rx_slot;     /* slot + 1 of the open receive span, 0 = none */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLOTS);
	__type(key, char[IFNAMSIZ]);
	__type(value, __u32);
} names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, struct span_time);
} times SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, struct span_time);
} rx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sirq_watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} watch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_state);
} state SEC(".maps");

static __always_inline __u32 *slot_of_dev(struct net_device *dev)
{
	char name[IFNAMSIZ] = {};

	if (!dev || bpf_probe_read_kernel_str(name, sizeof(name), dev->name) < 0)
		return 0;
	return bpf_map_lookup_elem(&names, name);
}

static __always_inline struct cpu_state *cpu_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&state, &zero);
}

/* Close the open receive span, if any, at `now`. */
static __always_inline void rx_close(struct cpu_state *s, __u64 now)
{
	__u32 slot;
	struct span_time *acc;

	if (!s->rx_slot)
		return;
	slot = s->rx_slot - 1;
	acc = bpf_map_lookup_elem(&rx, &slot);
	if (acc) {
		acc->ns += now - s->rx_mark;
		acc->count += 1;
	}
	s->rx_slot = 0;
}

SEC("raw_tp/softirq_entry")
int BPF_PROG(softirq_enter, unsigned int vec)
{
	__u64 now = bpf_ktime_get_ns();
	struct cpu_state *s = cpu_state();
	__u32 zero = 0, *tgid = bpf_map_lookup_elem(&watch, &zero);

	if (!s)
		return 0;
	if (vec == NET_RX_SOFTIRQ)
		s->napi_mark = now;
	s->sirq_start = tgid && *tgid && (bpf_get_current_pid_tgid() >> 32) == *tgid ? now : 0;
	return 0;
}

SEC("raw_tp/softirq_exit")
int BPF_PROG(softirq_leave, unsigned int vec)
{
	__u64 now = bpf_ktime_get_ns();
	struct cpu_state *s = cpu_state();
	__u32 zero = 0;
	__u64 *w;

	if (!s)
		return 0;
	rx_close(s, now);
	if (vec == NET_RX_SOFTIRQ)
		s->napi_mark = 0;
	if (s->sirq_start) {
		w = bpf_map_lookup_elem(&sirq_watched, &zero);
		if (w)
			*w += now - s->sirq_start;
		s->sirq_start = 0;
	}
	return 0;
}

SEC("raw_tp/napi_poll")
int BPF_PROG(napi_polled, struct napi_struct *napi, int work, int budget)
{
	__u64 now = bpf_ktime_get_ns(), start;
	struct cpu_state *s = cpu_state();
	struct span_time *acc;
	__u32 *slot;

	if (!s)
		return 0;
	rx_close(s, now);
	if (!s->napi_mark)
		return 0;
	start = s->napi_mark;
	s->napi_mark = now;
	slot = slot_of_dev(BPF_CORE_READ(napi, dev));
	if (slot && (acc = bpf_map_lookup_elem(&times, slot))) {
		acc->ns += now - start;
		acc->count += 1;
		acc->packets += work > 0 ? work : 0;
	}
	return 0;
}

SEC("raw_tp/netif_receive_skb")
int BPF_PROG(packet_received, struct sk_buff *skb)
{
	__u64 now = bpf_ktime_get_ns();
	struct cpu_state *s = cpu_state();
	__u32 *slot;

	if (!s)
		return 0;
	rx_close(s, now);
	slot = slot_of_dev(BPF_CORE_READ(skb, dev));
	if (slot) {
		s->rx_mark = now;
		s->rx_slot = *slot + 1;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
