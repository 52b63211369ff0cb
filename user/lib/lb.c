/* Services, backends and Maglev publication over the XDP load balancer's
 * maps (lb.h). Ordering is what keeps the datapath consistent: a backend
 * slot is written before any table names it, a table is complete before
 * its one outer slot is swapped, and a removed backend's slot is cleared
 * only after the table without it is published. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb.h"
#include "lb_internal.h"
#include "maglev.h"
#include "sluice/conntrack.h"
#include "sluice/limits.h"
#include "sluice/maglev.h"

#define MAP_FD(maps, off) (*(int *)((char *)(maps) + (off)))

static const struct {
	const char *name;
	size_t fd_off;
} map_table[] = {
	{ "sl_svc", offsetof(struct lb_maps, svc) },
	{ "sl_be", offsetof(struct lb_maps, be) },
	{ "sl_maglev", offsetof(struct lb_maps, maglev) },
	{ "sl_cfg", offsetof(struct lb_maps, cfg) },
	{ "sl_ct4", offsetof(struct lb_maps, ct4) },
	{ "sl_ct6", offsetof(struct lb_maps, ct6) },
	{ "sl_affinity", offsetof(struct lb_maps, affinity) },
	{ "sl_proto_st", offsetof(struct lb_maps, proto_st) },
	{ "sl_perr_st", offsetof(struct lb_maps, perr_st) },
	{ "sl_lb_st", offsetof(struct lb_maps, lb_st) },
	{ "sl_drop_st", offsetof(struct lb_maps, drop_st) },
	{ "sl_svc_st", offsetof(struct lb_maps, svc_st) },
	{ "sl_be_st", offsetof(struct lb_maps, be_st) },
	{ "sl_sock_rev", offsetof(struct lb_maps, sock_rev) },
	{ "sl_l7_pair", offsetof(struct lb_maps, l7_pair) },
	{ "sl_sockhash", offsetof(struct lb_maps, sockhash) },
	{ "sl_sock_info", offsetof(struct lb_maps, sock_info) },
	{ "sl_redir_sk", offsetof(struct lb_maps, redir_sk) },
	{ "sl_sock_cfg", offsetof(struct lb_maps, sock_cfg) },
	{ "sl_redir_port", offsetof(struct lb_maps, redir_port) },
	{ "sl_sock_st", offsetof(struct lb_maps, sock_st) },
	{ "sl_ipcache4", offsetof(struct lb_maps, ipcache4) },
	{ "sl_ipcache6", offsetof(struct lb_maps, ipcache6) },
	{ "sl_pol_allow", offsetof(struct lb_maps, pol_allow) },
	{ "sl_pol_deny", offsetof(struct lb_maps, pol_deny) },
	{ "sl_pol_dst", offsetof(struct lb_maps, pol_dst) },
	{ "sl_pol_gen", offsetof(struct lb_maps, pol_gen) },
	{ "sl_pol_netns", offsetof(struct lb_maps, pol_netns) },
	{ "sl_pol_st", offsetof(struct lb_maps, pol_st) },
	{ "sl_pol_rule_st", offsetof(struct lb_maps, pol_rule_st) },
	{ "sl_pol_events", offsetof(struct lb_maps, pol_events) },
	{ "sl_pol_rl", offsetof(struct lb_maps, pol_rl) },
};
#define N_MAPS (sizeof(map_table) / sizeof(map_table[0]))

const char *lb_map_name(size_t i)
{
	return i < N_MAPS ? map_table[i].name : NULL;
}

static void maps_reset(struct lb_maps *maps)
{
	memset(maps, 0, sizeof(*maps));
	for (size_t i = 0; i < N_MAPS; i++)
		MAP_FD(maps, map_table[i].fd_off) = -1;
}

static int config_read(struct lb_maps *maps)
{
	struct sl_config cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(maps->cfg, &zero, &cfg))
		return -errno;
	if (!maglev_size_valid(cfg.maglev_size))
		return -ENODATA; /* loaded but never configured */
	maps->maglev_size = cfg.maglev_size;
	return 0;
}

int lb_maps_open_pinned(struct lb_maps *maps, const char *dir)
{
	char path[PATH_MAX];
	int err;

	maps_reset(maps);
	maps->owned = true;
	for (size_t i = 0; i < N_MAPS; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, map_table[i].name);
		MAP_FD(maps, map_table[i].fd_off) = bpf_obj_get(path);
		if (MAP_FD(maps, map_table[i].fd_off) < 0) {
			err = -errno;
			goto close_maps;
		}
	}
	err = config_read(maps);
	if (!err)
		return 0;
close_maps:
	lb_maps_close(maps);
	return err;
}

int lb_maps_from_object(struct lb_maps *maps, struct bpf_object *obj)
{
	int fd;

	maps_reset(maps);
	for (size_t i = 0; i < N_MAPS; i++) {
		fd = bpf_object__find_map_fd_by_name(obj, map_table[i].name);
		if (fd < 0)
			return -ENOENT;
		MAP_FD(maps, map_table[i].fd_off) = fd;
	}
	/* A fresh object has no settings yet: lb_config_write() follows. */
	config_read(maps);
	return 0;
}

void lb_maps_close(struct lb_maps *maps)
{
	if (!maps->owned)
		return;
	for (size_t i = 0; i < N_MAPS; i++) {
		if (MAP_FD(maps, map_table[i].fd_off) >= 0)
			close(MAP_FD(maps, map_table[i].fd_off));
	}
	maps_reset(maps);
}

int lb_config_write(struct lb_maps *maps, const struct sl_config *cfg)
{
	__u32 zero = 0;

	if (!maglev_size_valid(cfg->maglev_size))
		return -EINVAL;
	if (bpf_map_update_elem(maps->cfg, &zero, cfg, BPF_ANY))
		return -errno;
	maps->maglev_size = cfg->maglev_size;
	return 0;
}

/* ---- backends: the whole sl_be array is read at once ---- */

/* Read every sl_be slot into @all (SL_MAX_BACKENDS entries). */
int lb_backends_read(struct lb_maps *maps, struct sl_backend *all)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys = calloc(SL_MAX_BACKENDS, sizeof(*keys));
	__u32 count = SL_MAX_BACKENDS, out_batch;
	int err = 0;

	if (!keys)
		return -ENOMEM;
	if (bpf_map_lookup_batch(maps->be, NULL, &out_batch, keys, all, &count, &opts) &&
	    errno != ENOENT)
		err = -errno;
	/* An array batch returns slots in key order: slot i is keys[i] == i. */
	else if (count != SL_MAX_BACKENDS)
		err = -EIO;
	free(keys);
	return err;
}

static bool backend_matches(const struct sl_backend *be, __u32 svc_id, const struct addr_port *ap)
{
	return (be->flags & SL_BE_IN_USE) && be->svc_id == svc_id && be->family == ap->family &&
	       be->port == ap->port && !memcmp(be->addr, ap->addr, sizeof(be->addr));
}

/* Id of @ap in service @svc_id, or 0. */
static __u32 backend_find(const struct sl_backend *all, __u32 svc_id, const struct addr_port *ap)
{
	for (__u32 id = 1; id < SL_MAX_BACKENDS; id++) {
		if (backend_matches(&all[id], svc_id, ap))
			return id;
	}
	return 0;
}

static __u32 backend_free_id(const struct sl_backend *all)
{
	for (__u32 id = 1; id < SL_MAX_BACKENDS; id++) {
		if (!(all[id].flags & SL_BE_IN_USE))
			return id;
	}
	return 0;
}

/* ---- Maglev publication ---- */

/* A new inner table holding @table, as a map fd ready to be swapped in. */
static int table_map_create(const __u32 *table, __u32 size)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
	/* Array elements are value_size rounded up to 8 bytes, and that is
	 * the stride of the mmapped area too: each u32 id sits in a u64 slot. */
	size_t bytes = (size_t)size * sizeof(__u64);
	__u64 *mem;
	int fd;

	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sl_maglev_tab", sizeof(__u32), sizeof(__u32), size,
			    &opts);
	if (fd < 0)
		return -errno;
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (mem == MAP_FAILED) {
		int err = -errno;

		close(fd);
		return err;
	}
	for (__u32 i = 0; i < size; i++)
		mem[i] = table[i];
	munmap(mem, bytes);
	return fd;
}

/* The ids of service @svc_id's backends in @all, in id order; returns how many. */
static size_t lb_backend_ids(const struct sl_backend *all, __u32 svc_id, __u32 *ids)
{
	size_t n = 0;

	for (__u32 id = 1; id < SL_MAX_BACKENDS; id++) {
		if ((all[id].flags & SL_BE_IN_USE) && all[id].svc_id == svc_id)
			ids[n++] = id;
	}
	return n;
}

/* Maglev inputs for the backends @ids that take new flows (weight > 0). */
static size_t maglev_inputs(const struct sl_backend *all, const __u32 *ids, size_t n_ids,
			    struct maglev_backend *out)
{
	size_t n = 0;

	for (size_t i = 0; i < n_ids; i++) {
		const struct sl_backend *be = &all[ids[i]];

		if (!(be->flags & SL_BE_IN_USE) || !be->weight)
			continue;
		/* addr and port are adjacent: the key is the 18 bytes addr..port. */
		out[n++] = (struct maglev_backend){
			.id = ids[i], .weight = be->weight, .key = be->addr, .key_len = 18
		};
	}
	return n;
}

int lb_table_build(struct lb_maps *maps, const struct sl_backend *all, const __u32 *ids,
		   size_t n_ids, __u32 *active, int *fd)
{
	struct maglev_backend *inputs = calloc(n_ids ? n_ids : 1, sizeof(*inputs));
	__u32 *table = calloc(maps->maglev_size, sizeof(*table));
	int err = -ENOMEM;

	*fd = -1;
	if (!inputs || !table)
		goto free_bufs;
	*active = maglev_inputs(all, ids, n_ids, inputs);
	err = *active ? maglev_build(inputs, *active, table, maps->maglev_size) : 0;
	if (*active && !err) {
		*fd = table_map_create(table, maps->maglev_size);
		err = *fd < 0 ? *fd : 0;
	}
free_bufs:
	free(table);
	free(inputs);
	return err;
}

/* Publish service @svc_id's table built from backends @ids of @all: build
 * it aside, then swap the one sl_maglev slot (or clear it when no backend
 * takes new flows). Returns 0 or -errno; the old table stays on error. */
static int maglev_publish(struct lb_maps *maps, __u32 svc_id, const struct sl_backend *all,
			  const __u32 *ids, size_t n_ids)
{
	__u32 active;
	int fd, err = lb_table_build(maps, all, ids, n_ids, &active, &fd);

	if (err)
		return err;
	if (fd < 0)
		return bpf_map_delete_elem(maps->maglev, &svc_id) && errno != ENOENT ? -errno : 0;
	err = bpf_map_update_elem(maps->maglev, &svc_id, &fd, BPF_ANY) ? -errno : 0;
	close(fd); /* the outer map holds its own reference */
	return err;
}

/* How many of backends @ids of @all take new flows (weight > 0). */
static __u32 lb_active_count(const struct sl_backend *all, const __u32 *ids, size_t n_ids)
{
	__u32 n = 0;

	for (size_t i = 0; i < n_ids; i++)
		n += (all[ids[i]].flags & SL_BE_IN_USE) && all[ids[i]].weight;
	return n;
}

/* Publish @key's table built from backends @ids of @all and store @svc
 * (with its new active count) under @key, which must exist. */
static int lb_service_publish(struct lb_maps *maps, const struct sl_svc_key *key,
			      struct sl_svc *svc, const struct sl_backend *all, const __u32 *ids,
			      size_t n_ids)
{
	/* The service entry first (its count is informational): if the table
	 * swap then fails, the old table is still the one in use. */
	svc->backend_count = lb_active_count(all, ids, n_ids);
	if (bpf_map_update_elem(maps->svc, key, svc, BPF_EXIST))
		return -errno;
	return maglev_publish(maps, svc->id, all, ids, n_ids);
}

/* Republish @key's table from every backend of the service in @all. */
static int service_publish(struct lb_maps *maps, const struct sl_svc_key *key, struct sl_svc *svc,
			   const struct sl_backend *all)
{
	__u32 *ids = calloc(SL_MAX_BACKENDS, sizeof(*ids));
	int err;

	if (!ids)
		return -ENOMEM;
	err = lb_service_publish(maps, key, svc, all, ids, lb_backend_ids(all, svc->id, ids));
	free(ids);
	return err;
}

/* ---- services ---- */

int lb_service_get(struct lb_maps *maps, const struct sl_svc_key *key, struct sl_svc *out)
{
	return bpf_map_lookup_elem(maps->svc, key, out) ? -errno : 0;
}

/* Calls @fn(key, svc, ctx) for every service, in hash order. */
static int services_walk(struct lb_maps *maps, lb_service_fn fn, void *ctx)
{
	struct sl_svc_key key, next;
	struct sl_svc svc;
	void *prev = NULL;
	int err;

	while (!bpf_map_get_next_key(maps->svc, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(maps->svc, &key, &svc))
			continue; /* deleted meanwhile */
		err = fn(&key, &svc, ctx);
		if (err)
			return err;
	}
	return errno == ENOENT ? 0 : -errno;
}

static int mark_id_used(const struct sl_svc_key *key, const struct sl_svc *svc, void *ctx)
{
	unsigned char *used = ctx;

	(void)key;
	if (svc->id < SL_MAX_SERVICES)
		used[svc->id] = 1;
	return 0;
}

static int service_free_id(struct lb_maps *maps, __u32 *id)
{
	unsigned char *used = calloc(SL_MAX_SERVICES, 1);
	int err;

	if (!used)
		return -ENOMEM;
	err = services_walk(maps, mark_id_used, used);
	for (*id = 1; !err && *id < SL_MAX_SERVICES && used[*id]; (*id)++)
		;
	if (!err && *id == SL_MAX_SERVICES)
		err = -ENOSPC;
	free(used);
	return err;
}

/* Zero a per-CPU traffic slot so a reused id starts from nothing. */
static int lb_traffic_reset(int map_fd, __u32 id)
{
	int ncpus = libbpf_num_possible_cpus();
	struct sl_traffic *zero;
	int err;

	if (ncpus < 0)
		return ncpus;
	zero = calloc(ncpus, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	err = bpf_map_update_elem(map_fd, &id, zero, BPF_ANY) ? -errno : 0;
	free(zero);
	return err;
}

/* An address of @family as the maps hold it: IPv4 in word 0, the rest zero. */
bool lb_addr_valid(const __be32 *addr, __u8 family)
{
	if (family == SL_AF_INET6)
		return true;
	return family == SL_AF_INET && !(addr[1] | addr[2] | addr[3]);
}

bool lb_service_valid(const struct sl_svc_key *key, const struct sl_svc *svc)
{
	bool affinity = svc->flags & SL_SVC_AFFINITY;

	return lb_addr_valid(key->addr, key->family) && key->port &&
	       (key->proto == SL_PROTO_TCP || key->proto == SL_PROTO_UDP) &&
	       !(svc->flags & ~(__u32)(SL_SVC_AFFINITY | SL_SVC_L7)) &&
	       (!(svc->flags & SL_SVC_L7) || key->proto == SL_PROTO_TCP) &&
	       affinity == !!svc->affinity_timeout_s && memchr(svc->name, '\0', sizeof(svc->name));
}

int lb_service_add(struct lb_maps *maps, const struct sl_svc_key *key, const struct sl_svc *want)
{
	struct sl_svc svc = *want;
	int err;

	if (!lb_service_valid(key, want))
		return -EINVAL;
	if (!lb_service_get(maps, key, &svc))
		return -EEXIST;
	svc = *want;
	svc.backend_count = 0;
	err = service_free_id(maps, &svc.id);
	if (!err)
		err = lb_traffic_reset(maps->svc_st, svc.id);
	/* A failed change may have left a table at this id: it must not
	 * become the new service's. */
	if (!err && bpf_map_delete_elem(maps->maglev, &svc.id) && errno != ENOENT)
		err = -errno;
	if (err)
		return err;
	/* No table yet: new flows to it are dropped as no_backend. */
	return bpf_map_update_elem(maps->svc, key, &svc, BPF_NOEXIST) ? -errno : 0;
}

struct service_list {
	struct sl_svc_key keys[SL_MAX_SERVICES];
	struct sl_svc svcs[SL_MAX_SERVICES];
	size_t n;
};

static int service_collect(const struct sl_svc_key *key, const struct sl_svc *svc, void *ctx)
{
	struct service_list *list = ctx;

	if (list->n == SL_MAX_SERVICES)
		return -E2BIG;
	list->keys[list->n] = *key;
	list->svcs[list->n++] = *svc;
	return 0;
}

int lb_service_foreach(struct lb_maps *maps, lb_service_fn fn, void *ctx)
{
	struct service_list *list = calloc(1, sizeof(*list));
	size_t *by_id;
	int err;

	if (!list)
		return -ENOMEM;
	err = services_walk(maps, service_collect, list);
	by_id = calloc(SL_MAX_SERVICES, sizeof(*by_id)); /* id -> index + 1 */
	if (!by_id && !err)
		err = -ENOMEM;
	for (size_t i = 0; !err && i < list->n; i++) {
		if (list->svcs[i].id < SL_MAX_SERVICES)
			by_id[list->svcs[i].id] = i + 1;
	}
	for (__u32 id = 1; !err && id < SL_MAX_SERVICES; id++) {
		if (by_id[id])
			err = fn(&list->keys[by_id[id] - 1], &list->svcs[by_id[id] - 1], ctx);
	}
	free(by_id);
	free(list);
	return err;
}

/* ---- conntrack: read in batches, never one syscall per entry ---- */

#define CT_BATCH 4096

typedef void (*ct_entry_fn)(const void *key, const struct sl_ct_entry *val, void *ctx);

/* Calls @fn for every entry of conntrack map @fd (keys of @key_size). */
static int ct_walk(int fd, size_t key_size, ct_entry_fn fn, void *ctx)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct sl_ct_entry *vals = calloc(CT_BATCH, sizeof(*vals));
	char *keys = calloc(CT_BATCH, key_size);
	__u64 in_batch = 0, out_batch = 0;
	bool first = true, done = false;
	int err = vals && keys ? 0 : -ENOMEM;

	while (!err && !done) {
		__u32 count = CT_BATCH;

		if (bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, keys, vals,
					 &count, &opts)) {
			if (errno != ENOENT)
				err = -errno;
			done = true; /* ENOENT: this was the last batch */
		}
		for (__u32 i = 0; !err && i < count; i++)
			fn(keys + i * key_size, &vals[i], ctx);
		in_batch = out_batch;
		first = false;
	}
	free(keys);
	free(vals);
	return err;
}

static void ct_count_one(const void *key, const struct sl_ct_entry *val, void *ctx)
{
	(void)key;
	(void)val;
	(*(__u32 *)ctx)++;
}

int lb_ct_count(struct lb_maps *maps, __u32 *v4, __u32 *v6)
{
	int err;

	*v4 = *v6 = 0;
	err = ct_walk(maps->ct4, sizeof(struct sl_ct4_key), ct_count_one, v4);
	return err ? err : ct_walk(maps->ct6, sizeof(struct sl_ct6_key), ct_count_one, v6);
}

/* Entries of hash map @fd, read in batches (any key and value size). */
/* Entries of a map without batch lookups (SOCKHASH), key by key. */
static int key_count(int fd, __u64 *count)
{
	unsigned char key[64], next[64];
	void *prev = NULL;

	*count = 0;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		++*count;
	}
	return errno == ENOENT ? 0 : -errno;
}

static int hash_count(int fd, __u64 *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	__u64 in_batch = 0, out_batch = 0;
	bool first = true, done = false;
	void *keys, *vals;
	int err;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	keys = calloc(CT_BATCH, info.key_size);
	vals = calloc(CT_BATCH, info.value_size);
	err = keys && vals ? 0 : -ENOMEM;
	*count = 0;
	while (!err && !done) {
		__u32 n = CT_BATCH;

		if (bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, keys, vals, &n,
					 &opts)) {
			if (errno != ENOENT)
				err = -errno;
			done = true; /* ENOENT: this was the last batch */
		}
		*count += n;
		in_batch = out_batch;
		first = false;
	}
	free(keys);
	free(vals);
	return err;
}

static int capacity_of(int fd, bool by_id, __u64 *capacity)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	/* Maps indexed by id never use id 0. */
	*capacity = by_id ? info.max_entries - 1 : info.max_entries;
	return 0;
}

static int slots_in_use(struct lb_maps *maps, __u64 *used)
{
	struct sl_backend *all = calloc(SL_MAX_BACKENDS, sizeof(*all));
	int err = all ? lb_backends_read(maps, all) : -ENOMEM;

	*used = 0;
	for (__u32 id = 1; !err && id < SL_MAX_BACKENDS; id++)
		*used += !!(all[id].flags & SL_BE_IN_USE);
	free(all);
	return err;
}

int lb_map_usage(struct lb_maps *maps, struct lb_map_use use[LB_USE_COUNT])
{
	static const char *const names[LB_USE_COUNT] = {
		[LB_USE_SVC] = "sl_svc",	   [LB_USE_BE] = "sl_be",
		[LB_USE_CT4] = "sl_ct4",	   [LB_USE_CT6] = "sl_ct6",
		[LB_USE_AFFINITY] = "sl_affinity", [LB_USE_SOCK_REV] = "sl_sock_rev",
		[LB_USE_SOCKHASH] = "sl_sockhash",
	};
	const int fds[LB_USE_COUNT] = { maps->svc,	maps->be,	maps->ct4,     maps->ct6,
					maps->affinity, maps->sock_rev, maps->sockhash };
	__u32 v4 = 0, v6 = 0;
	int err = 0;

	for (int i = 0; !err && i < LB_USE_COUNT; i++) {
		use[i].name = names[i];
		err = capacity_of(fds[i], i == LB_USE_SVC || i == LB_USE_BE, &use[i].capacity);
	}
	err = err ?: hash_count(maps->svc, &use[LB_USE_SVC].used);
	err = err ?: slots_in_use(maps, &use[LB_USE_BE].used);
	err = err ?: lb_ct_count(maps, &v4, &v6);
	err = err ?: hash_count(maps->affinity, &use[LB_USE_AFFINITY].used);
	err = err ?: hash_count(maps->sock_rev, &use[LB_USE_SOCK_REV].used);
	err = err ?: key_count(maps->sockhash, &use[LB_USE_SOCKHASH].used);
	use[LB_USE_CT4].used = v4;
	use[LB_USE_CT6].used = v6;
	return err;
}

/* Which conntrack entries a flush removes: every entry of the services
 * marked in svc_ids, and the UDP entries of the backends marked in
 * udp_be_ids (a byte per id; either may be NULL). */
struct ct_flush {
	int fd;
	size_t proto_off; /* where the key holds its protocol */
	const unsigned char *svc_ids;
	const unsigned char *udp_be_ids;
};

static void ct_flush_one(const void *key, const struct sl_ct_entry *val, void *ctx)
{
	struct ct_flush *flush = ctx;
	__u8 proto = ((const __u8 *)key)[flush->proto_off];
	bool svc = flush->svc_ids && val->svc_id < SL_MAX_SERVICES && flush->svc_ids[val->svc_id];
	bool udp = flush->udp_be_ids && proto == SL_PROTO_UDP &&
		   val->backend_id < SL_MAX_BACKENDS && flush->udp_be_ids[val->backend_id];

	/* Deleting during a batch walk is safe: the walk resumes from its
	 * bucket cursor, not from the deleted key. */
	if (svc || udp)
		bpf_map_delete_elem(flush->fd, key);
}

int lb_ct_flush(struct lb_maps *maps, const unsigned char *svc_ids, const unsigned char *udp_be_ids)
{
	struct ct_flush v4 = { .fd = maps->ct4,
			       .proto_off = offsetof(struct sl_ct4_key, proto),
			       .svc_ids = svc_ids,
			       .udp_be_ids = udp_be_ids };
	struct ct_flush v6 = { .fd = maps->ct6,
			       .proto_off = offsetof(struct sl_ct6_key, proto),
			       .svc_ids = svc_ids,
			       .udp_be_ids = udp_be_ids };
	int err = ct_walk(maps->ct4, sizeof(struct sl_ct4_key), ct_flush_one, &v4);

	return err ? err : ct_walk(maps->ct6, sizeof(struct sl_ct6_key), ct_flush_one, &v6);
}

/* Flush one service's (@udp false) or one backend's UDP (@udp) entries. */
static int ct_flush_id(struct lb_maps *maps, __u32 id, bool udp)
{
	unsigned char *ids = calloc(SL_MAX_BACKENDS, 1);
	int err;

	if (!ids)
		return -ENOMEM;
	ids[id] = 1;
	err = udp ? lb_ct_flush(maps, NULL, ids) : lb_ct_flush(maps, ids, NULL);
	free(ids);
	return err;
}

/* ---- service removal and backends ---- */

static int backends_clear(struct lb_maps *maps, const struct sl_backend *all, __u32 svc_id)
{
	struct sl_backend empty = {};

	for (__u32 id = 1; id < SL_MAX_BACKENDS; id++) {
		if ((all[id].flags & SL_BE_IN_USE) && all[id].svc_id == svc_id &&
		    bpf_map_update_elem(maps->be, &id, &empty, BPF_ANY))
			return -errno;
	}
	return 0;
}

int lb_service_del(struct lb_maps *maps, const struct sl_svc_key *key)
{
	struct sl_backend *all = calloc(SL_MAX_BACKENDS, sizeof(*all));
	struct sl_svc svc;
	int err = -ENOMEM;

	if (!all)
		return err;
	err = lb_service_get(maps, key, &svc);
	if (!err)
		err = lb_backends_read(maps, all);
	if (err)
		goto free_all;
	/* Unpublish first: once the key is gone no new flow can pick it. */
	if (bpf_map_delete_elem(maps->svc, key)) {
		err = -errno;
		goto free_all;
	}
	/* The service is gone: finish the rest even if a step fails, so no
	 * table, slot or flow is left for the next user of its id. */
	if (bpf_map_delete_elem(maps->maglev, &svc.id) && errno != ENOENT)
		err = -errno;
	err = backends_clear(maps, all, svc.id) ?: err;
	err = ct_flush_id(maps, svc.id, false) ?: err;
free_all:
	free(all);
	return err;
}

/* The state every backend operation starts from: the service and all slots. */
struct backend_op {
	struct sl_svc svc;
	struct sl_backend *all;
	__u32 id; /* the backend's id, 0 if not present */
};

static int backend_op_begin(struct lb_maps *maps, const struct sl_svc_key *key,
			    const struct addr_port *ap, struct backend_op *op)
{
	int err = lb_service_get(maps, key, &op->svc);

	if (err)
		return err;
	if (ap->family != key->family)
		return -EAFNOSUPPORT;
	op->all = calloc(SL_MAX_BACKENDS, sizeof(*op->all));
	if (!op->all)
		return -ENOMEM;
	err = lb_backends_read(maps, op->all);
	if (err) {
		free(op->all);
		return err;
	}
	op->id = backend_find(op->all, op->svc.id, ap);
	return 0;
}

/* Write slot @id to the map and to op->all; remember the old one in @old. */
static int backend_write(struct lb_maps *maps, struct backend_op *op, __u32 id,
			 const struct sl_backend *be, struct sl_backend *old)
{
	*old = op->all[id];
	if (bpf_map_update_elem(maps->be, &id, be, BPF_ANY))
		return -errno;
	op->all[id] = *be;
	return 0;
}

int lb_backend_add(struct lb_maps *maps, const struct sl_svc_key *key, const struct addr_port *ap,
		   __u32 weight)
{
	struct sl_backend be = { .port = ap->port,
				 .family = ap->family,
				 .flags = SL_BE_IN_USE,
				 .weight = weight },
			  old;
	struct backend_op op = {};
	__u32 id;
	int err;

	if (weight > LB_WEIGHT_MAX || !ap->port || !lb_addr_valid(ap->addr, ap->family))
		return -EINVAL;
	err = backend_op_begin(maps, key, ap, &op);
	if (err)
		return err;
	id = backend_free_id(op.all);
	err = op.id ? -EEXIST : !id ? -ENOSPC : lb_traffic_reset(maps->be_st, id);
	if (err)
		goto free_all;
	be.svc_id = op.svc.id;
	memcpy(be.addr, ap->addr, sizeof(be.addr));
	err = backend_write(maps, &op, id, &be, &old);
	if (err)
		goto free_all;
	err = service_publish(maps, key, &op.svc, op.all);
	if (err)
		bpf_map_update_elem(maps->be, &id, &old, BPF_ANY); /* no table names it */
free_all:
	free(op.all);
	return err;
}

int lb_backend_set_weight(struct lb_maps *maps, const struct sl_svc_key *key,
			  const struct addr_port *ap, __u32 weight)
{
	struct backend_op op = {};
	struct sl_backend be, old;
	int err;

	if (weight > LB_WEIGHT_MAX)
		return -EINVAL;
	err = backend_op_begin(maps, key, ap, &op);
	if (err)
		return err;
	err = op.id ? 0 : -ENOENT;
	if (err)
		goto free_all;
	be = op.all[op.id];
	be.weight = weight;
	/* The slot changes first: a weight-0 backend still serves the flows
	 * it has, and affinity stops choosing it as soon as the slot says 0. */
	err = backend_write(maps, &op, op.id, &be, &old);
	if (!err && (err = service_publish(maps, key, &op.svc, op.all)))
		bpf_map_update_elem(maps->be, &op.id, &old, BPF_ANY);
free_all:
	free(op.all);
	return err;
}

int lb_backend_del(struct lb_maps *maps, const struct sl_svc_key *key, const struct addr_port *ap)
{
	struct sl_backend empty = {};
	struct backend_op op = {};
	int err;

	err = backend_op_begin(maps, key, ap, &op);
	if (err)
		return err;
	err = op.id ? 0 : -ENOENT;
	if (err)
		goto free_all;
	/* Publish the table without it first, then free the slot: no table
	 * ever names an empty slot. Its TCP connections keep their DNAT
	 * target (conntrack holds the address) and drain; its UDP flows,
	 * which never end on their own, are flushed and rebalanced. */
	op.all[op.id] = empty;
	err = service_publish(maps, key, &op.svc, op.all);
	if (!err && bpf_map_update_elem(maps->be, &op.id, &empty, BPF_ANY))
		err = -errno;
	if (!err)
		err = ct_flush_id(maps, op.id, true);
free_all:
	free(op.all);
	return err;
}

int lb_backend_foreach(struct lb_maps *maps, __u32 svc_id, lb_backend_fn fn, void *ctx)
{
	struct sl_backend *all = calloc(SL_MAX_BACKENDS, sizeof(*all));
	int err = all ? lb_backends_read(maps, all) : -ENOMEM;

	for (__u32 id = 1; !err && id < SL_MAX_BACKENDS; id++) {
		if ((all[id].flags & SL_BE_IN_USE) && (!svc_id || all[id].svc_id == svc_id))
			err = fn(id, &all[id], ctx);
	}
	free(all);
	return err;
}

/* ---- counters ---- */

int lb_read_counter(int map_fd, __u32 index, __u64 *sum)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *values;
	int err;

	if (ncpus < 0)
		return ncpus;
	values = calloc(ncpus, sizeof(*values));
	if (!values)
		return -ENOMEM;
	err = bpf_map_lookup_elem(map_fd, &index, values) ? -errno : 0;
	*sum = 0;
	for (int cpu = 0; !err && cpu < ncpus; cpu++)
		*sum += values[cpu];
	free(values);
	return err;
}

int lb_read_traffic(int map_fd, __u32 id, struct sl_traffic *sum)
{
	int ncpus = libbpf_num_possible_cpus();
	struct sl_traffic *values;
	int err;

	if (ncpus < 0)
		return ncpus;
	values = calloc(ncpus, sizeof(*values));
	if (!values)
		return -ENOMEM;
	err = bpf_map_lookup_elem(map_fd, &id, values) ? -errno : 0;
	memset(sum, 0, sizeof(*sum));
	for (int cpu = 0; !err && cpu < ncpus; cpu++) {
		sum->fwd_packets += values[cpu].fwd_packets;
		sum->fwd_bytes += values[cpu].fwd_bytes;
		sum->rev_packets += values[cpu].rev_packets;
		sum->rev_bytes += values[cpu].rev_bytes;
		sum->new_flows += values[cpu].new_flows;
	}
	free(values);
	return err;
}
