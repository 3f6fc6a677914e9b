// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tests/migration/prev_state.c: the pinned state of a node that ran an
 * earlier layout (XDPLB_ABI_VERSION 4 or 5), and two readers that work on any
 * layout since the conntrack bucket and the link did not change.
 *
 * Built by Tests/migration/run.sh against the header of that release (git
 * archive of its bpf/), with libbpf:
 *
 *   prev_state make OBJ BPFFS IFNAME VIP PORT RING SEED ENCAP_SRC LRU_BUCKETS BACKEND...
 *       loads that release's balancer object, pins its maps and an XDP link
 *       on IFNAME (generic mode) under BPFFS, and writes what its agent wrote
 *       for one TCP VIP with equal-weight backends: node config, backend
 *       entries (ids 1..N, generations 1..N, next hop = the test-run ingress),
 *       the VIP entry, VIP table slot, address entry and prefilter bit, and the
 *       Maglev ring in that ABI's format (ABI 4: 1 + M u32, M then
 *       id | M << 12; ABI 5: a head {M, tag}, then four u16 id | tag << 14
 *       per 8-byte element).
 *   prev_state pick BPFFS SYN|ACK SRC VIP PORT FIRST_SPORT COUNT
 *       runs the program the pinned link holds on one TCP packet per flow
 *       (SRC:FIRST_SPORT+k -> VIP:PORT) with BPF_PROG_TEST_RUN and prints
 *       "sport backend" per flow (the outer IPv4 destination; "-" if none).
 *   prev_state ct BPFFS
 *       prints every used conntrack way: "src sport dst dport proto id gen".
 *
 * The Maglev table is built here independently of the Swift one (FNV-1a 64
 * from two offset bases + SplitMix64's finaliser, offset h1 % M, skip
 * h2 % (M - 1) + 1, backends sorted by their address text, one turn each).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "xdplb_abi.h"

#if XDPLB_ABI_VERSION != 4 && XDPLB_ABI_VERSION != 5
#error "build against the ABI 4 or ABI 5 header of an earlier release"
#endif

static void die(const char *what, int err)
{
	fprintf(stderr, "prev_state: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* slots[s] = index into names (sorted in place) for a ring of size m. */
static void maglev(char **names, int n, uint32_t m, int32_t *slots)
{
	uint64_t *cursor = calloc(n, sizeof(*cursor)), *skip = calloc(n, sizeof(*skip));
	uint32_t filled = 0, s;
	int i;

	qsort(names, n, sizeof(*names), by_text);
	for (s = 0; s < m; s++)
		slots[s] = -1;
	for (i = 0; i < n; i++) {
		uint64_t a = 0xcbf29ce484222325ULL, b = 0x6c62272e07bb0142ULL;
		const unsigned char *p;

		for (p = (const unsigned char *)names[i]; *p; p++) {
			a = (a ^ *p) * 0x100000001b3ULL;
			b = (b ^ *p) * 0x100000001b3ULL;
		}
		cursor[i] = mix64(a) % m;
		skip[i] = mix64(b) % (m - 1) + 1;
	}
	while (filled < m) {
		for (i = 0; i < n && filled < m; i++) {
			uint64_t c = cursor[i];

			while (slots[c] >= 0)
				c = (c + skip[i]) % m;
			slots[c] = i;
			cursor[i] = (c + skip[i]) % m;
			filled++;
		}
	}
	free(cursor);
	free(skip);
}

static uint32_t vip_table_home(const struct xdplb_vip_key *key)
{
	uint32_t w[5], h;

	memcpy(w, key, sizeof(w));
	h = w[0] * 0x9E3779B1U ^ w[1] * 0x85EBCA77U ^ w[2] * 0xC2B2AE3DU ^ w[3] * 0x27D4EB2FU ^ w[4] * 0x165667B1U;
	h ^= h >> 15;
	return (h * 0x2C1B3C6DU) >> (32 - XDPLB_VIP_TABLE_BITS);
}

static int map_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	if (!m)
		die(name, ENOENT);
	return bpf_map__fd(m);
}

static void update(int fd, const void *key, const void *value, const char *what)
{
	if (bpf_map_update_elem(fd, key, value, BPF_ANY))
		die(what, errno);
}

static int make(int argc, char **argv)
{
	const char *objpath = argv[2], *dir = argv[3], *ifname = argv[4];
	uint32_t ring_size = strtoul(argv[7], NULL, 0), seed = strtoul(argv[8], NULL, 0);
	uint32_t buckets = strtoul(argv[10], NULL, 0), zero = 0, i;
	int n = argc - 11, ifindex = if_nametoindex(ifname), err, inner, outer;
	char **names = argv + 11, path[512];
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_link *link;
	struct xdplb_node_cfg cfg = {0};
	struct xdplb_vip_key vkey = {0};
	struct xdplb_vip_meta meta = {0};
	struct xdplb_vip_slot vslot = {0};
	struct xdplb_vip_addr_key akey = {0};
	struct xdplb_vip_addr aval = {0};
	struct xdplb_vip_filter filter = {0};
	int32_t *slots;

	if (n < 1 || ifindex == 0 || ring_size < 3)
		die("usage: make OBJ BPFFS IFNAME VIP PORT RING SEED ENCAP_SRC LRU_BUCKETS BACKEND...", EINVAL);
	obj = bpf_object__open_file(objpath, NULL);
	if (!obj)
		die(objpath, errno);
	if ((err = bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, XDPLB_MAP_CT), buckets)))
		die("size conntrack", err);
	if ((err = bpf_object__load(obj)))
		die("load the earlier release's object", err);
	if ((err = bpf_object__pin_maps(obj, dir)))
		die("pin maps", err);
	prog = bpf_object__find_program_by_name(obj, XDPLB_PROG_BALANCER);
	if (!prog)
		die(XDPLB_PROG_BALANCER, ENOENT);

	cfg.abi_version = XDPLB_ABI_VERSION;
	cfg.hash_seed = seed;
	cfg.path_mtu = 1500;
	cfg.ct_mask = buckets - 1;
	inet_pton(AF_INET, argv[9], &cfg.encap_src_v4);
	update(map_fd(obj, XDPLB_MAP_CONFIG), &zero, &cfg, "config");

	/* Backends 1..n in the order given; the ring is built over them sorted. */
	for (i = 0; i < (uint32_t)n; i++) {
		struct xdplb_backend be = {0};
		uint32_t id = i + 1;

		inet_pton(AF_INET, names[i], &be.addr[0]);
		be.flags = XDPLB_BACKEND_F_PRESENT | XDPLB_BACKEND_F_NEXTHOP;
		be.gen = id;
		be.nh_ifindex = 1; /* the test-run ingress (lo): XDP_TX */
		update(map_fd(obj, XDPLB_MAP_BACKENDS), &id, &be, "backend");
	}
	char **sorted = calloc(n, sizeof(*sorted));
	memcpy(sorted, names, n * sizeof(*sorted));
	slots = calloc(ring_size, sizeof(*slots));
	maglev(sorted, n, ring_size, slots);
	{
		LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE);
#if XDPLB_ABI_VERSION == 4
		uint32_t *ring = calloc(ring_size + 1, sizeof(*ring)), elems = ring_size + 1;

		ring[0] = ring_size;
#else
		const uint32_t tag = 1, elems = 1 + XDPLB_RING_ELEMS(ring_size);
		uint64_t *ring = calloc(elems, sizeof(*ring));
		uint16_t *packed = (uint16_t *)(ring + 1);
		struct xdplb_ring_head head = {.size = ring_size, .tag = tag};

		memcpy(ring, &head, sizeof(head));
		for (i = ring_size; i < (elems - 1) * XDPLB_RING_SLOTS_PER_ELEM; i++)
			packed[i] = tag << XDPLB_RING_ID_BITS; /* padding: empty slots of the ring's tag */
		meta.ring_tag = tag;
#endif
		for (i = 0; i < ring_size; i++) {
			uint32_t id = 0;
			int k;

			for (k = 0; k < n; k++)
				if (!strcmp(sorted[slots[i]], names[k]))
					id = k + 1;
#if XDPLB_ABI_VERSION == 4
			ring[i + 1] = id | ring_size << XDPLB_RING_ID_BITS;
#else
			packed[i] = id | tag << XDPLB_RING_ID_BITS;
#endif
		}
		inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "xdplb_ring", 4, sizeof(*ring), elems, &opts);
		if (inner < 0)
			die("create ring", errno);
		for (i = 0; i < elems; i++)
			update(inner, &i, &ring[i], "ring element");
	}
	outer = map_fd(obj, XDPLB_MAP_RINGS);
	update(outer, &zero, &inner, "ring table");

	inet_pton(AF_INET, argv[5], &vkey.addr[0]);
	vkey.port = htons(strtoul(argv[6], NULL, 0));
	vkey.proto = IPPROTO_TCP;
	vkey.family = XDPLB_FAMILY_V4;
	meta.vip_index = 0;
	meta.ring_size = ring_size;
	update(map_fd(obj, XDPLB_MAP_VIPS), &vkey, &meta, "vip");
	vslot.key = vkey;
	vslot.meta = meta;
	vslot.seq = 2;
	i = vip_table_home(&vkey);
	update(map_fd(obj, XDPLB_MAP_VIP_TABLE), &i, &vslot, "vip table");
	akey.addr[0] = vkey.addr[0];
	akey.family = XDPLB_FAMILY_V4;
	update(map_fd(obj, XDPLB_MAP_VIP_ADDRS), &akey, &aval, "vip address");
	{
		uint32_t bit = (vkey.addr[0] * 0x9E3779B1U) >> XDPLB_VIP_FILTER_SHIFT;

		filter.enabled = 1;
		filter.words[bit >> 6] |= 1ULL << (bit & 63);
	}
	update(map_fd(obj, XDPLB_MAP_VIP_FILTER), &zero, &filter, "prefilter");

	link = bpf_program__attach_xdp(prog, ifindex);
	if (!link)
		die("attach", errno);
	snprintf(path, sizeof(path), "%s/%s", dir, XDPLB_PIN_LINK);
	if ((err = bpf_link__pin(link, path)))
		die("pin link", err);
	printf("ABI %d state pinned at %s: %d backends, ring %u, program on %s\n", XDPLB_ABI_VERSION, dir, n, ring_size, ifname);
	return 0;
}

static uint16_t csum(const void *p, int len)
{
	const uint16_t *w = p;
	uint32_t s = 0;

	for (; len > 1; len -= 2)
		s += *w++;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return ~s;
}

static int pick(int argc, char **argv)
{
	char path[512];
	int syn = !strcmp(argv[3], "SYN"), link_fd, prog_fd;
	uint32_t first = strtoul(argv[7], NULL, 0), count = strtoul(argv[8], NULL, 0), k;
	struct bpf_link_info li = {0};
	uint32_t len = sizeof(li);
	unsigned char frame[14 + 20 + 20], out[256];
	struct in_addr src, vip;

	if (argc != 9)
		die("usage: pick BPFFS SYN|ACK SRC VIP PORT FIRST_SPORT COUNT", EINVAL);
	snprintf(path, sizeof(path), "%s/%s", argv[2], XDPLB_PIN_LINK);
	if ((link_fd = bpf_obj_get(path)) < 0)
		die(path, errno);
	if (bpf_obj_get_info_by_fd(link_fd, &li, &len))
		die("link info", errno);
	if ((prog_fd = bpf_prog_get_fd_by_id(li.prog_id)) < 0)
		die("program of the link", errno);
	inet_pton(AF_INET, argv[4], &src);
	inet_pton(AF_INET, argv[5], &vip);
	for (k = 0; k < count; k++) {
		unsigned char *ip = frame + 14, *tcp = ip + 20;
		uint16_t sport = htons(first + k), dport = htons(strtoul(argv[6], NULL, 0));
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame),
			    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

		memset(frame, 0, sizeof(frame));
		memcpy(frame, "\x02\0\0\0\0\xa1\x02\0\0\0\0\x01\x08\x00", 14);
		ip[0] = 0x45;
		ip[3] = 40;
		ip[6] = 0x40; /* DF */
		ip[8] = 64;
		ip[9] = IPPROTO_TCP;
		memcpy(ip + 12, &src, 4);
		memcpy(ip + 16, &vip, 4);
		{
			uint16_t c = csum(ip, 20);
			memcpy(ip + 10, &c, 2);
		}
		memcpy(tcp, &sport, 2);
		memcpy(tcp + 2, &dport, 2);
		tcp[12] = 5 << 4;
		tcp[13] = syn ? 0x02 : 0x10;
		if (bpf_prog_test_run_opts(prog_fd, &opts))
			die("test run", errno);
		if (opts.data_size_out >= 14 + 20 + 4 && out[12] == 0x08 && out[13] == 0x00 && out[14 + 9] == IPPROTO_GRE) {
			char text[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, out + 14 + 16, text, sizeof(text));
			printf("%u %s\n", first + k, text);
		} else {
			printf("%u -\n", first + k);
		}
	}
	return 0;
}

static int ct(char **argv)
{
	char path[512], a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	struct bpf_map_info mi = {0};
	uint32_t len = sizeof(mi), i;
	int fd, w;

	snprintf(path, sizeof(path), "%s/%s", argv[2], XDPLB_MAP_CT);
	if ((fd = bpf_obj_get(path)) < 0)
		die(path, errno);
	if (bpf_obj_get_info_by_fd(fd, &mi, &len))
		die("conntrack info", errno);
	if (mi.value_size != sizeof(struct xdplb_ct_bucket))
		die("conntrack bucket size changed", EINVAL);
	for (i = 0; i < mi.max_entries; i++) {
		struct xdplb_ct_bucket bk;

		if (bpf_map_lookup_elem(fd, &i, &bk))
			die("conntrack lookup", errno);
		for (w = 0; w < XDPLB_CT_WAYS; w++) {
			struct xdplb_ct_way *way = &bk.ways[w];
			int af = way->key.family == XDPLB_FAMILY_V6 ? AF_INET6 : AF_INET;

			if (!(way->flags & XDPLB_CT_F_USED))
				continue;
			inet_ntop(af, way->key.src, a, sizeof(a));
			inet_ntop(af, way->key.dst, b, sizeof(b));
			printf("%s %u %s %u %u %u %u\n", a, ntohs(way->key.sport), b, ntohs(way->key.dport),
			       way->key.proto, way->entry.backend_id, way->entry.gen);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 12 && !strcmp(argv[1], "make"))
		return make(argc, argv);
	if (argc >= 3 && !strcmp(argv[1], "pick"))
		return pick(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "ct"))
		return ct(argv);
	fprintf(stderr, "usage: prev_state make|pick|ct ... (see the file's comment)\n");
	return 2;
}
