/* Migration of pinned maps across a size change (migrate.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "migrate.h"

#define OLD_SUFFIX "_old" /* bpffs names cannot have a dot */

static int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, len);
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
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
	return info.max_entries == bpf_map__max_entries(map) &&
	       info.map_flags == bpf_map__map_flags(map);
}

int migrate_prepare(struct bpf_object *obj)
{
	char old[PATH_MAX];
	struct bpf_map *map;
	int moved = 0, err = 0;

	bpf_object__for_each_map(map, obj)
	{
		const char *path = bpf_map__pin_path(map);
		int fd = path ? bpf_obj_get(path) : -1;

		if (fd < 0)
			continue;
		err = pinned_matches(map, path, fd);
		close(fd);
		if (err < 0)
			return err;
		if (err == 1)
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

/* One batch of @n entries read from the old map into the new one. An
 * array keeps only the indexes the new map has. */
static int batch_put(int to, const struct bpf_map_info *info, const struct bpf_map_info *to_info,
		     void *keys, void *values, int *fds, __u32 n)
{
	__u32 count;
	int err = 0;

	if (indexed(info)) {
		while (n && ((__u32 *)keys)[n - 1] >= to_info->max_entries)
			n--;
	}
	if (map_of_maps(info))
		n = ids_to_fds(info, keys, values, fds, n);
	count = n;
	if (n && bpf_map_update_batch(to, keys, values, &count, NULL))
		err = -errno;
	for (__u32 i = 0; map_of_maps(info) && i < n; i++)
		close(fds[i]);
	return err;
}

/* Every entry of @from into @to, COPY_BATCH at a time. A full new hash
 * stops the copy with a warning (what fitted stays). */
static int map_copy(int from, int to, const char *name)
{
	struct bpf_map_info info, to_info;
	size_t vlen;
	void *keys = NULL, *values = NULL;
	int *fds = NULL;
	__u32 in_batch, out_batch, copied = 0;
	void *cursor = NULL;
	int err = map_info(from, &info) ?: map_info(to, &to_info);

	vlen = err ? 0 : value_len(&info);
	if (!err) {
		keys = calloc(COPY_BATCH, info.key_size);
		values = calloc(COPY_BATCH, vlen);
		fds = calloc(COPY_BATCH, sizeof(*fds));
		err = keys && values && fds && vlen ? 0 : -ENOMEM;
	}
	while (!err) {
		in_batch = COPY_BATCH;
		err = bpf_map_lookup_batch(from, cursor, &out_batch, keys, values, &in_batch, NULL)
			      ? -errno
			      : 0;
		if (err && err != -ENOENT)
			break; /* ENOENT: this was the last batch */
		cursor = &out_batch;
		if (batch_put(to, &info, &to_info, keys, values, fds, in_batch) == 0)
			copied += in_batch;
		else if (info.type != BPF_MAP_TYPE_ARRAY)
			log_warn("migrate", "%s: the new map took only part of the entries", name);
		if (err == -ENOENT) {
			err = 0;
			break;
		}
	}
	if (!err)
		log_info("migrate", "%s: %u entries copied", name, copied);
	free(keys);
	free(values);
	free(fds);
	return err;
}

/* Call @fn(dir, name, old path, new path) for each NAME_old pin in @dir. */
static int for_each_old(const char *dir,
			int (*fn)(const char *name, const char *old, const char *cur, void *ctx),
			void *ctx)
{
	char old[PATH_MAX], cur[PATH_MAX], name[NAME_MAX + 1];
	struct dirent *entry;
	DIR *d = opendir(dir);
	int err = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (!err && (entry = readdir(d))) {
		size_t len = strlen(entry->d_name), suffix = strlen(OLD_SUFFIX);

		if (len <= suffix || strcmp(entry->d_name + len - suffix, OLD_SUFFIX))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - suffix), entry->d_name);
		snprintf(old, sizeof(old), "%s/%s", dir, entry->d_name);
		snprintf(cur, sizeof(cur), "%s/%s", dir, name);
		err = fn(name, old, cur, ctx);
	}
	closedir(d);
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

int migrate_finish(const char *dir)
{
	return for_each_old(dir, unlink_old, NULL);
}
