#include "CXdplb.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

static int log_verbose;
static __thread char last_message[512];

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char line[512];
	va_list copy;

	if (level == LIBBPF_DEBUG && !log_verbose)
		return 0;
	va_copy(copy, args);
	vsnprintf(line, sizeof(line), fmt, copy);
	va_end(copy);
	if (level != LIBBPF_DEBUG) {
		size_t n = strlen(line);
		while (n > 0 && line[n - 1] == '\n')
			line[--n] = 0;
		/* libbpf prints the verifier log in many lines; keep the last useful one. */
		if (n > 0)
			memcpy(last_message, line, n + 1);
	}
	if (log_verbose)
		return vfprintf(stderr, fmt, args);
	return 0;
}

void xdplb_libbpf_log_init(int verbose)
{
	if (verbose >= 0)
		log_verbose = verbose;
	libbpf_set_print(libbpf_log);
}

void xdplb_libbpf_last_message(char *buf, size_t len)
{
	if (!len)
		return;
	snprintf(buf, len, "%s", last_message);
	last_message[0] = 0;
}

int xdplb_test_run_xdp(int prog_fd, const void *data_in, uint32_t in_len, void *data_out,
		       uint32_t out_cap, uint32_t *out_len, uint32_t repeat, uint32_t ingress_ifindex,
		       uint32_t *retval, uint32_t *duration_ns)
{
	struct xdp_md ctx = { .ingress_ifindex = ingress_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data_in, .data_size_in = in_len,
		    .data_out = data_out, .data_size_out = out_cap, .repeat = repeat);
	int err;

	if (ingress_ifindex) {
		ctx.data_end = in_len;
		opts.ctx_in = &ctx;
		opts.ctx_size_in = sizeof(ctx);
	}
	err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (err)
		return -errno;
	*out_len = opts.data_size_out;
	*retval = opts.retval;
	*duration_ns = opts.duration;
	return 0;
}

int xdplb_link_create_xdp(int prog_fd, int ifindex, uint32_t flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
	int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
	return fd < 0 ? -errno : fd;
}

int xdplb_ring_map_create(uint32_t max_entries, const char *name)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, sizeof(uint32_t), sizeof(struct xdplb_ring_head),
				max_entries, &opts);
	return fd < 0 ? -errno : fd;
}

int xdplb_prog_info(int prog_fd, uint32_t *id, uint32_t *xlated_len, uint32_t *jited_len,
		    uint32_t *verified_insns, char *name, size_t name_len, uint8_t tag[8])
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return -errno;
	*id = info.id;
	*xlated_len = info.xlated_prog_len;
	*jited_len = info.jited_prog_len;
	*verified_insns = info.verified_insns;
	memcpy(tag, info.tag, 8);
	snprintf(name, name_len, "%s", info.name);
	return 0;
}

int xdplb_map_info(int map_fd, uint32_t *id, uint32_t *type, uint32_t *max_entries,
		   uint32_t *key_size, uint32_t *value_size)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(map_fd, &info, &len))
		return -errno;
	*id = info.id;
	*type = info.type;
	*max_entries = info.max_entries;
	*key_size = info.key_size;
	*value_size = info.value_size;
	return 0;
}

int xdplb_link_info(int link_fd, uint32_t *id, uint32_t *prog_id, uint32_t *ifindex)
{
	struct bpf_link_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(link_fd, &info, &len))
		return -errno;
	*id = info.id;
	*prog_id = info.prog_id;
	*ifindex = info.type == BPF_LINK_TYPE_XDP ? info.xdp.ifindex : 0;
	return 0;
}

int xdplb_map_update_batch(int map_fd, const void *keys, const void *values, uint32_t *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = 0, .flags = 0);
	int err = bpf_map_update_batch(map_fd, keys, values, count, &opts);
	return err ? -errno : 0;
}

int xdplb_array_lookup_batch(int map_fd, uint32_t from, void *keys, void *values, uint32_t *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = 0, .flags = 0);
	/* The batch position is the last index read (the next call starts after it); none for index 0. */
	uint32_t in = from - 1, out = 0;
	int err = bpf_map_lookup_batch(map_fd, from ? &in : NULL, &out, keys, values, count, &opts);

	return err ? -errno : 0;
}

/* The mapping of a ring of `count` slots: element 0 is the head, then 4
 * two-byte slots per 8-byte element (xdplb_abi.h). */
size_t xdplb_ring_map_len(uint32_t count)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t elems = 1 + XDPLB_RING_ELEMS((size_t)count);

	return (elems * sizeof(uint64_t) + page - 1) / page * page;
}

/* A shared read/write mapping of len bytes of map_fd, at `at` (MAP_FIXED) or anywhere (NULL). */
static void *map_shared(int map_fd, size_t len, void *at)
{
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | (at ? MAP_FIXED : 0), map_fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

uint64_t *xdplb_ring_map_mmap(int map_fd, uint32_t count, void *at, size_t *len)
{
	*len = xdplb_ring_map_len(count);
	return map_shared(map_fd, *len, at);
}

void *xdplb_region_reserve(size_t len)
{
	void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Whether the head of `ring` is `count` slots of tag `tag`. */
static bool ring_head_is(const uint64_t *ring, uint32_t count, uint32_t tag)
{
	struct xdplb_ring_head head;

	memcpy(&head, ring, sizeof(head));
	return head.size == count && head.tag == tag;
}

/*
 * Stores `count` slots (packed 2 bytes each, the last element padded with
 * `pad`) into the elements after dst's head, one 8-byte atomic store per
 * element that differs: a reader's 2-byte slot load sees the old value or
 * the new, never a torn one. Returns how many elements changed.
 */
static int ring_store_slots(uint64_t *dst, const uint16_t *slots, uint32_t count, uint16_t pad)
{
	size_t whole = count / XDPLB_RING_SLOTS_PER_ELEM, elems = XDPLB_RING_ELEMS((size_t)count);
	int changed = 0;

	/* Whole elements: four slots are one unaligned 8-byte load of the input. */
	for (size_t i = 0; i < whole; i++) {
		uint64_t v;

		memcpy(&v, slots + i * XDPLB_RING_SLOTS_PER_ELEM, sizeof(v));
		if (__atomic_load_n(&dst[1 + i], __ATOMIC_RELAXED) != v) {
			__atomic_store_n(&dst[1 + i], v, __ATOMIC_RELAXED);
			changed++;
		}
	}
	/* The last element, padded. */
	for (size_t i = whole; i < elems; i++) {
		uint16_t part[XDPLB_RING_SLOTS_PER_ELEM];
		uint64_t v;

		for (size_t k = 0; k < XDPLB_RING_SLOTS_PER_ELEM; k++) {
			size_t s = i * XDPLB_RING_SLOTS_PER_ELEM + k;
			part[k] = s < count ? slots[s] : pad;
		}
		memcpy(&v, part, sizeof(v));
		if (__atomic_load_n(&dst[1 + i], __ATOMIC_RELAXED) != v) {
			__atomic_store_n(&dst[1 + i], v, __ATOMIC_RELAXED);
			changed++;
		}
	}
	/* The stores are visible before anything the caller does next. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return changed;
}

int xdplb_ring_store(uint64_t *ring, uint32_t tag, const uint16_t *slots, uint32_t count)
{
	if (!ring_head_is(ring, count, tag))
		return -ESTALE;
	return ring_store_slots(ring, slots, count, (uint16_t)(tag << XDPLB_RING_ID_BITS));
}

int xdplb_ring_copy(uint64_t *dst, const uint64_t *src, uint32_t count, uint32_t src_tag)
{
	struct xdplb_ring_head head;

	memcpy(&head, dst, sizeof(head));
	if (head.size != count || !ring_head_is(src, count, src_tag))
		return -ESTALE;
	return ring_store_slots(dst, (const uint16_t *)(src + 1), count, (uint16_t)(src_tag << XDPLB_RING_ID_BITS));
}

void *xdplb_map_mmap(int map_fd, size_t len)
{
	return map_shared(map_fd, len, NULL);
}

void xdplb_map_munmap(void *base, size_t len)
{
	munmap(base, len);
}

void xdplb_vip_slot_write(void *table, uint32_t index, const struct xdplb_vip_slot *value)
{
	struct xdplb_vip_slot *s = (struct xdplb_vip_slot *)table + index;
	/* Odd while written, even after: readers skip a slot whose seq is odd or moved. */
	uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED) | 1;

	__atomic_store_n(&s->seq, seq, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	memcpy(&s->key, &value->key, sizeof(s->key));
	memcpy(&s->meta, &value->meta, sizeof(s->meta));
	__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
}

int xdplb_tc_attach_egress(int ifindex, int prog_fd, uint32_t handle, uint32_t priority)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority, .prog_fd = prog_fd,
		    .flags = BPF_TC_F_REPLACE);
	int err = bpf_tc_hook_create(&hook);

	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&hook, &opts);
}

int xdplb_tc_detach_egress(int ifindex, uint32_t handle, uint32_t priority)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);

	return bpf_tc_detach(&hook, &opts);
}

int xdplb_tc_query_egress(int ifindex, uint32_t handle, uint32_t priority, uint32_t *prog_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
	int err = bpf_tc_query(&hook, &opts);

	if (err)
		return err;
	*prog_id = opts.prog_id;
	return 0;
}
