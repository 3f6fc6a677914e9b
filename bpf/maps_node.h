/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The balancer's maps that other programs on the node share (the probe program,
 * bpf/probe.bpf.c, reuses the pinned ones): backends and the node config.
 * BPF-only.
 */
#ifndef XDPLB_MAPS_NODE_H
#define XDPLB_MAPS_NODE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdplb_abi.h"

/* Backend id -> address, generation, flags and resolved next hop. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xdplb_backend);
} xdplb_backends SEC(".maps");

/* The node's run-time settings (key 0): encap sources, hash seed, path MTU. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdplb_node_cfg);
} xdplb_config SEC(".maps");

#endif /* XDPLB_MAPS_NODE_H */
