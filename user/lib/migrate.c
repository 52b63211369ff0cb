/* Migration of pinned maps across a size change (migrate.h). */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include <errno.h>
#include <sched.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb.h"
#include "log.h"
#include "migrate.h"

#define OLD_SUFFIX "_old" /* bpffs names cannot have a dot */

static int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, len);
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

__u32 migrate_kernel_entries(enum bpf_map_type type, __u32 flags, __u32 n)
{
	int ncpus = libbpf_num_possible_cpus();
	bool lru = type == BPF_MAP_TYPE_LRU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;

	if (!lru || !(flags & BPF_F_NO_COMMON_LRU) || ncpus <= 1 || n > UINT32_MAX - ncpus)
		return n;
	return (n + ncpus - 1) / ncpus * ncpus;
}

static __u32 kernel_entries(const struct bpf_map *map)
{
	return migrate_kernel_entries(bpf_map__type(map), bpf_map__map_flags(map),
				      bpf_map__max_entries(map));
}

/* Whether the map pinned at @path is @map's layout (reusable as is, 1),
 * the same layout at another size or flags (0: migrate), or -EPROTO. */
static int pinned_matches(const struct bpf_map *map, const char *path, int pinned)
{
	struct bpf_map_info info;
	int err = map_info(pinned, &info);

	if (err)
		return err;
	if (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
	    info.value_size != bpf_map__value_size(map)) {
		log_error("migrate",
			  "%s: layout changed (type %u, key %u, value %u bytes; this build: %u, "
			  "%u, %u) and no migration exists; `sluiced --cleanup` drops its state",
			  path, info.type, info.key_size, info.value_size, bpf_map__type(map),
			  bpf_map__key_size(map), bpf_map__value_size(map));
		return -EPROTO;
	}
	return info.max_entries == kernel_entries(map) && info.map_flags == bpf_map__map_flags(map);
}

#define PIN_ABSENT 2

/* Whether @map's pin can be reused (1), must be migrated (0), is absent
 * (PIN_ABSENT), or stops the load (<0). */
static int pin_state(const struct bpf_map *map)
{
	const char *path = bpf_map__pin_path(map);
	int fd = path ? bpf_obj_get(path) : -1, state;

	if (fd < 0)
		return PIN_ABSENT;
	state = pinned_matches(map, path, fd);
	close(fd);
	return state;
}

int migrate_prepare(struct bpf_object *obj)
{
	char old[PATH_MAX];
	struct bpf_map *map;
	int moved = 0, state;
	bool any = false;

	/* Every pin checked before any is renamed: a refusal touches nothing. */
	bpf_object__for_each_map(map, obj)
	{
		state = pin_state(map);
		if (state < 0)
			return state;
		any |= state == 0;
	}
	if (!any)
		return 0;
	bpf_object__for_each_map(map, obj)
	{
		const char *path = bpf_map__pin_path(map);

		if (pin_state(map) != 0)
			continue;
		snprintf(old, sizeof(old), "%s" OLD_SUFFIX, path);
		if (rename(path, old))
			return -errno;
		log_info("migrate", "%s: size or flags changed; its entries move to the new map",
			 path);
		moved++;
	}
	return moved;
}

#define COPY_BATCH 4096

/* Bytes of one entry's value as the batch calls move it (per-CPU: one per CPU). */
static size_t value_len(const struct bpf_map_info *info)
{
	bool percpu = info->type == BPF_MAP_TYPE_PERCPU_ARRAY ||
		      info->type == BPF_MAP_TYPE_PERCPU_HASH ||
		      info->type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	int ncpus = percpu ? libbpf_num_possible_cpus() : 1;

	return ncpus < 1 ? 0 : (size_t)((info->value_size + 7) & ~7u) * ncpus;
}

static bool map_of_maps(const struct bpf_map_info *info)
{
	return info->type == BPF_MAP_TYPE_ARRAY_OF_MAPS || info->type == BPF_MAP_TYPE_HASH_OF_MAPS;
}

static bool indexed(const struct bpf_map_info *info)
{
	return info->type == BPF_MAP_TYPE_ARRAY || info->type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       info->type == BPF_MAP_TYPE_ARRAY_OF_MAPS;
}

/* A map of maps reads back map ids and takes fds: swap each in @values
 * (@fds remembers what to close). Entries whose table is gone are dropped. */
static __u32 ids_to_fds(const struct bpf_map_info *info, void *keys, __u32 *values, int *fds,
			__u32 n)
{
	__u32 kept = 0;

	for (__u32 i = 0; i < n; i++) {
		int fd = bpf_map_get_fd_by_id(values[i]);

		if (fd < 0)
			continue; /* replaced meanwhile */
		memmove((char *)keys + kept * info->key_size, (char *)keys + i * info->key_size,
			info->key_size);
		values[kept] = fd;
		fds[kept++] = fd;
	}
	return kept;
}

/* A hash with per-CPU LRU lists (BPF_F_NO_COMMON_LRU, the conntrack)
 * gives each CPU max_entries / ncpus free entries, taken by the CPU that
 * inserts: one thread inserting on one CPU would fill its share and then
 * evict its own inserts. So the inserts move from CPU to CPU, each taking
 * its share. */
struct lru_spread {
	bool active;
	cpu_set_t allowed; /* the thread's affinity, put back at the end */
	int cpu, ncpus;
	__u32 share, left; /* per CPU; left on the current one */
};

static void spread_begin(struct lru_spread *sp, const struct bpf_map_info *to_info)
{
	memset(sp, 0, sizeof(*sp));
	sp->active = (to_info->type == BPF_MAP_TYPE_LRU_HASH ||
		      to_info->type == BPF_MAP_TYPE_LRU_PERCPU_HASH) &&
		     (to_info->map_flags & BPF_F_NO_COMMON_LRU);
	sp->ncpus = libbpf_num_possible_cpus();
	if (!sp->active || sp->ncpus < 1 || sched_getaffinity(0, sizeof(sp->allowed), &sp->allowed))
		sp->active = false;
	sp->share = sp->active ? to_info->max_entries / sp->ncpus : 0;
	sp->cpu = -1;
}

/* Move to the next CPU this thread may run on; false when none is left. */
static bool spread_next_cpu(struct lru_spread *sp)
{
	cpu_set_t one;

	/* Every possible CPU, not only those the thread is allowed now (the
	 * agent may be pinned): the affinity is put back at the end. */
	while (++sp->cpu < sp->ncpus && sp->cpu < CPU_SETSIZE) {
		CPU_ZERO(&one);
		CPU_SET(sp->cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			continue;
		sp->left = sp->share;
		return true;
	}
	return false;
}

static void spread_end(struct lru_spread *sp)
{
	if (sp->active)
		sched_setaffinity(0, sizeof(sp->allowed), &sp->allowed);
}

/* Insert @n entries, a share per CPU; @put counts those that went in
 * (fewer when every CPU's share is full). Returns 0 or -errno. */
static int spread_put(int to, struct lru_spread *sp, const struct bpf_map_info *info, size_t vlen,
		      char *keys, char *values, __u32 n, __u32 *put)
{
	*put = 0;
	while (*put < n) {
		__u32 count;

		if (!sp->left && !spread_next_cpu(sp))
			return 0; /* every CPU's share is full */
		count = n - *put < sp->left ? n - *put : sp->left;
		if (bpf_map_update_batch(to, keys + (size_t)*put * info->key_size,
					 values + *put * vlen, &count, NULL))
			return -errno;
		sp->left -= count;
		*put += count;
	}
	return 0;
}

/* One batch of @n entries read from the old map into the new one, @put
 * counting those that went in. An array keeps only the indexes the new
 * map has. Returns 0 or -errno: a refused write fails the migration. */
static int batch_put(int to, const struct bpf_map_info *info, const struct bpf_map_info *to_info,
		     struct lru_spread *sp, size_t vlen, void *keys, void *values, int *fds,
		     __u32 n, __u32 *put)
{
	int err = 0;

	if (indexed(info)) {
		while (n && ((__u32 *)keys)[n - 1] >= to_info->max_entries)
			n--;
	}
	if (sp->active)
		return spread_put(to, sp, info, vlen, keys, values, n, put);
	if (map_of_maps(info))
		n = ids_to_fds(info, keys, values, fds, n);
	*put = n;
	if (n && bpf_map_update_batch(to, keys, values, put, NULL))
		err = -errno;
	for (__u32 i = 0; map_of_maps(info) && i < n; i++)
		close(fds[i]);
	return err;
}

/* Every entry of @from into @to, COPY_BATCH at a time. What does not fit
 * in the new map (smaller than the old) is dropped, with a warning. */
static int map_copy(int from, int to, const char *name)
{
	struct bpf_map_info info, to_info;
	struct lru_spread sp = {};
	size_t vlen;
	void *keys = NULL, *values = NULL;
	int *fds = NULL;
	__u32 in_batch, out_batch, copied = 0, read = 0, put;
	bool last;
	void *cursor = NULL;
	int err = map_info(from, &info) ?: map_info(to, &to_info);

	vlen = err ? 0 : value_len(&info);
	if (!err) {
		keys = calloc(COPY_BATCH, info.key_size);
		values = calloc(COPY_BATCH, vlen);
		fds = calloc(COPY_BATCH, sizeof(*fds));
		err = keys && values && fds && vlen ? 0 : -ENOMEM;
	}
	if (!err)
		spread_begin(&sp, &to_info);
	while (!err) {
		in_batch = COPY_BATCH;
		err = bpf_map_lookup_batch(from, cursor, &out_batch, keys, values, &in_batch, NULL)
			      ? -errno
			      : 0;
		if (err && err != -ENOENT)
			break; /* ENOENT: this was the last batch */
		cursor = &out_batch;
		read += in_batch;
		last = err == -ENOENT;
		err = batch_put(to, &info, &to_info, &sp, vlen, keys, values, fds, in_batch, &put);
		copied += put;
		if (!err && last)
			break;
	}
	spread_end(&sp);
	if (err)
		log_error("migrate", "%s: copying failed after %u entries: %s", name, copied,
			  strerror(-err));
	if (!err && copied < read && !indexed(&info))
		log_warn("migrate", "%s: %u of %u entries copied: the new map is smaller", name,
			 copied, read);
	else if (!err)
		log_info("migrate", "%s: %u entries copied", name, copied);
	free(keys);
	free(values);
	free(fds);
	return err;
}

/* Call @fn(name, old path, new path) for each map NAME of the LB whose
 * NAME_old pin is in @dir (only map names: a link pin of an interface
 * called "x_old" is not a map set aside). */
static int for_each_old(const char *dir,
			int (*fn)(const char *name, const char *old, const char *cur, void *ctx),
			void *ctx)
{
	char old[PATH_MAX], cur[PATH_MAX];
	int err = 0;

	for (size_t i = 0; !err && lb_map_name(i); i++) {
		snprintf(old, sizeof(old), "%s/%s" OLD_SUFFIX, dir, lb_map_name(i));
		snprintf(cur, sizeof(cur), "%s/%s", dir, lb_map_name(i));
		if (!access(old, F_OK))
			err = fn(lb_map_name(i), old, cur, ctx);
	}
	return err;
}

static int copy_one(const char *name, const char *old, const char *cur, void *ctx)
{
	int from = bpf_obj_get(old), to = bpf_obj_get(cur), err;

	(void)ctx;
	err = from < 0 || to < 0 ? -errno : map_copy(from, to, name);
	if (from >= 0)
		close(from);
	if (to >= 0)
		close(to);
	return err;
}

static int unlink_old(const char *name, const char *old, const char *cur, void *ctx)
{
	(void)name;
	(void)cur;
	(void)ctx;
	return unlink(old) ? -errno : 0;
}

int migrate_copy(const char *dir)
{
	return for_each_old(dir, copy_one, NULL);
}

/* Put an old pin back where it was, over the new map's pin if any. */
static int restore_old(const char *name, const char *old, const char *cur, void *ctx)
{
	(void)name;
	(void)ctx;
	unlink(cur);
	return rename(old, cur) ? -errno : 0;
}

int migrate_abort(const char *dir)
{
	return for_each_old(dir, restore_old, NULL);
}

int migrate_finish(const char *dir)
{
	return for_each_old(dir, unlink_old, NULL);
}
