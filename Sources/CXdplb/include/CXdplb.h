/*
 * CXdplb: the C side Swift sees.
 * - the shared ABI header (bpf/xdplb_abi.h), the one layout of every struct
 *   crossing the BPF/Swift line;
 * - libbpf (libpcap is CPcap: its bpf_insn clashes with linux/bpf.h);
 * - xdplb_-prefixed shims for what Swift can't import (LIBBPF_OPTS macros).
 */
#ifndef CXDPLB_H
#define CXDPLB_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <net/if.h>
#include <sys/vfs.h>
#include <sys/mount.h>
#include <linux/if_link.h>
#include <linux/bpf.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>

#include "../../../bpf/xdplb_abi.h"

/* libbpf logs through a printf-style callback Swift can't implement; these
 * route it to a buffer Swift reads (last error) and, when verbose, stderr.
 * verbose < 0 installs the callback and keeps the current verbosity. */
void xdplb_libbpf_log_init(int verbose);
/* Copy the most recent libbpf warning/error line into buf (NUL-terminated). */
void xdplb_libbpf_last_message(char *buf, size_t len);

/* BPF_PROG_TEST_RUN of an XDP program on one packet.
 * data_out must hold out_cap bytes; *out_len gets the output length.
 * ingress_ifindex 0 leaves the kernel default (loopback).
 * Returns 0 or -errno; *retval gets the XDP action, *duration_ns the time. */
int xdplb_test_run_xdp(int prog_fd, const void *data_in, uint32_t in_len, void *data_out,
		       uint32_t out_cap, uint32_t *out_len, uint32_t repeat, uint32_t ingress_ifindex,
		       uint32_t *retval, uint32_t *duration_ns);

/* bpf_link for XDP on ifindex with XDP_FLAGS_* in flags. Returns fd or -errno. */
int xdplb_link_create_xdp(int prog_fd, int ifindex, uint32_t flags);

/* Create an array map usable as an inner map of the ring table
 * (BPF_F_INNER_MAP | BPF_F_MMAPABLE, u32 -> 8-byte element, max_entries
 * elements: 1 + XDPLB_RING_ELEMS(M) for a ring of M slots). Returns fd or -errno. */
int xdplb_ring_map_create(uint32_t max_entries, const char *name);
/* The length of the mapping of a ring of `count` slots: its head and
 * XDPLB_RING_ELEMS(count) elements, rounded up to whole pages. */
size_t xdplb_ring_map_len(uint32_t count);
/* Map the elements of the ring map map_fd of a ring of `count` slots for
 * reading and writing, so a new ring is filled with no syscall per element.
 * `at` NULL: anywhere, and *len is what to munmap. Otherwise `at` is a page
 * of a region reserved with xdplb_region_reserve (xdplb_ring_map_len(count)
 * bytes of it are replaced by the mapping, MAP_FIXED), unmapped with the
 * region. Returns NULL (errno set) on failure. */
uint64_t *xdplb_ring_map_mmap(int map_fd, uint32_t count, void *at, size_t *len);
/* Reserve `len` bytes of address space (no access, no memory) for mappings
 * placed with xdplb_ring_map_mmap, so that all of them go with one munmap
 * (one TLB shootdown on the other cores instead of one per mapping). NULL
 * (errno set) on failure. */
void *xdplb_region_reserve(size_t len);

/* On a ring mapped with xdplb_ring_map_mmap (one mapping serves the agent's
 * read of the slots, a copy and a rewrite of the ring in one apply):
 *
 * Rewrite it in place: the ring must have `count` slots and tag `tag` in
 * its head; slots[0..count) (values with that tag) replace its slots, one
 * 8-byte atomic store per element that differs, so a program reading a slot
 * meanwhile gets its old value or its new one. Returns the number of
 * elements changed, or -ESTALE when the head differs. */
int xdplb_ring_store(uint64_t *ring, uint32_t tag, const uint16_t *slots, uint32_t count);
/* Copy the slots of ring src (count slots, tag src_tag) into ring dst (count
 * slots, any tag; its head is kept) the same way. Returns the number of
 * elements changed, or -ESTALE when a head differs. */
int xdplb_ring_copy(uint64_t *dst, const uint64_t *src, uint32_t count, uint32_t src_tag);

/* mmap a BPF_F_MMAPABLE array map's values (len bytes, page multiple), shared
 * read/write. NULL on failure (errno set). */
void *xdplb_map_mmap(int map_fd, size_t len);
void xdplb_map_munmap(void *base, size_t len);
/* Write one VIP table slot through the mapping with the seqlock protocol of
 * xdplb_abi.h (seq odd, key and meta, seq even). */
void xdplb_vip_slot_write(void *table, uint32_t index, const struct xdplb_vip_slot *value);

/* BPF_MAP_UPDATE_BATCH: *count entries from keys/values; *count gets how many were written. */
int xdplb_map_update_batch(int map_fd, const void *keys, const void *values, uint32_t *count);
/* BPF_MAP_LOOKUP_BATCH of an array map: up to *count entries from index
 * `from` into keys/values; *count = how many came. 0, or -errno (-ENOENT:
 * the map ended, *count entries still came). */
int xdplb_array_lookup_batch(int map_fd, uint32_t from, void *keys, void *values, uint32_t *count);

/* bpf_obj_get_info_by_fd for a program: id, verified instruction count, JIT size, tag. */
int xdplb_prog_info(int prog_fd, uint32_t *id, uint32_t *xlated_len, uint32_t *jited_len,
		    uint32_t *verified_insns, char *name, size_t name_len, uint8_t tag[8]);
/* bpf_obj_get_info_by_fd for a map: id, max_entries, value size, type. */
int xdplb_map_info(int map_fd, uint32_t *id, uint32_t *type, uint32_t *max_entries,
		   uint32_t *key_size, uint32_t *value_size);
/* bpf_obj_get_info_by_fd for a link: id, prog id, ifindex (XDP links). */
int xdplb_link_info(int link_fd, uint32_t *id, uint32_t *prog_id, uint32_t *ifindex);
/* tc clsact egress filter (handle, priority) running prog_fd, direct-action; creates the
 * clsact qdisc if missing and replaces a filter at the same handle/priority. 0 or -errno. */
int xdplb_tc_attach_egress(int ifindex, int prog_fd, uint32_t handle, uint32_t priority);
/* Removes that filter (the qdisc stays: others may use it). 0, or -ENOENT if absent, or -errno. */
int xdplb_tc_detach_egress(int ifindex, uint32_t handle, uint32_t priority);
/* The program id of that filter in *prog_id (0 or -errno; -ENOENT if absent). */
int xdplb_tc_query_egress(int ifindex, uint32_t handle, uint32_t priority, uint32_t *prog_id);

#endif
