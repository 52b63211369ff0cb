/* Bulk changes to the load balancer's maps (lb.h, "bulk changes"): a
 * snapshot of every service and backend slot is read once, then each
 * service is brought to its desired backend set, and the writes are staged
 * and done by lb_snapshot_commit() in a few batch syscalls: the new slots,
 * then every new table, then every service entry, then the slots the new
 * tables no longer use. This is what makes applying thousands of services
 * fast: no call re-reads all the backend slots or walks all services, and
 * the tables are swapped in one syscall (each sl_maglev update on its own
 * waits for an RCU grace period, ~40-150 us here). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb.h"
#include "lb_internal.h"
#include "sluice/limits.h"

/* Writes staged until lb_snapshot_commit(), in the order it does them. */
struct lb_stage {
	__u32 *svc_resets, *be_resets; /* traffic counters of new ids to zero */
	size_t n_svc_resets, n_be_resets;
	__u32 *writes; /* backend slots to write (snapshot values) */
	unsigned char *dirty; /* by backend id: in writes[] */
	size_t n_writes;
	__u32 *clears; /* service ids whose table goes */
	size_t n_clears;
	__u32 *table_ids; /* tables to swap in */
	int *table_fds;
	size_t n_tables;
	struct sl_svc_key *svc_keys; /* service entries to write */
	struct sl_svc *svcs;
	size_t n_svcs;
	__u32 *releases; /* slots to free once no table uses them */
	unsigned char *release_udp; /* by backend id: its UDP flows go too */
	size_t n_releases;
};

/* Each service's slots are a doubly linked list through next/prev (0 ends
 * it), kept current by slot_write(): finding a service's backends costs
 * its own size, not a scan of every slot, however many changes came since
 * the snapshot was read (an agent keeps one snapshot for its lifetime). */
struct lb_snapshot {
	struct sl_backend *all; /* every sl_be slot, kept current */
	__u32 *head; /* by service id: its first slot */
	__u32 *next, *prev; /* by backend id */
	__u32 *held; /* backend slots each service holds now */
	__u32 *scratch; /* the ids snapshot_current() returns, rebuilt by each call */
	unsigned char *flush_svc; /* services whose flows lb_snapshot_flush() removes */
	unsigned char *flush_udp_be; /* backends whose UDP flows it removes */
	bool flush_pending;
	unsigned char *svc_used;
	unsigned char *has_table; /* by service id: sl_maglev holds a table */
	struct sl_svc_key *keys; /* by service id */
	__u32 next_svc, next_be; /* allocation cursors: lowest possibly free id */
	struct lb_stage stage;
};

static void stage_free(struct lb_stage *st)
{
	for (size_t i = 0; st->table_fds && i < st->n_tables; i++)
		close(st->table_fds[i]);
	free(st->svc_resets);
	free(st->be_resets);
	free(st->writes);
	free(st->dirty);
	free(st->clears);
	free(st->table_ids);
	free(st->table_fds);
	free(st->svc_keys);
	free(st->svcs);
	free(st->releases);
	free(st->release_udp);
	memset(st, 0, sizeof(*st));
}

/* Forget what a failed commit left staged: the snapshot no longer matches
 * the maps, and the caller reads a new one. */
static void stage_drop(struct lb_snapshot *snap)
{
	struct lb_stage *st = &snap->stage;

	for (size_t i = 0; i < st->n_tables; i++)
		close(st->table_fds[i]);
	for (size_t i = 0; i < st->n_writes; i++)
		st->dirty[st->writes[i]] = 0;
	memset(st->release_udp, 0, SL_MAX_BACKENDS);
	st->n_tables = st->n_writes = st->n_svcs = st->n_clears = st->n_releases = 0;
	st->n_svc_resets = st->n_be_resets = 0;
}

/* Room for one commit's worth: every id at most once per commit. */
static int stage_alloc(struct lb_stage *st)
{
	st->svc_resets = calloc(SL_MAX_SERVICES, sizeof(*st->svc_resets));
	st->be_resets = calloc(SL_MAX_BACKENDS, sizeof(*st->be_resets));
	st->writes = calloc(SL_MAX_BACKENDS, sizeof(*st->writes));
	st->dirty = calloc(SL_MAX_BACKENDS, 1);
	st->clears = calloc(SL_MAX_SERVICES, sizeof(*st->clears));
	st->table_ids = calloc(SL_MAX_SERVICES, sizeof(*st->table_ids));
	st->table_fds = calloc(SL_MAX_SERVICES, sizeof(*st->table_fds));
	st->svc_keys = calloc(SL_MAX_SERVICES, sizeof(*st->svc_keys));
	st->svcs = calloc(SL_MAX_SERVICES, sizeof(*st->svcs));
	st->releases = calloc(SL_MAX_BACKENDS, sizeof(*st->releases));
	st->release_udp = calloc(SL_MAX_BACKENDS, 1);
	if (st->svc_resets && st->be_resets && st->writes && st->dirty && st->clears &&
	    st->table_ids && st->table_fds && st->svc_keys && st->svcs && st->releases &&
	    st->release_udp)
		return 0;
	stage_free(st);
	return -ENOMEM;
}

void lb_snapshot_free(struct lb_snapshot *snap)
{
	if (!snap)
		return;
	free(snap->all);
	free(snap->head);
	free(snap->next);
	free(snap->prev);
	free(snap->held);
	free(snap->scratch);
	free(snap->flush_svc);
	free(snap->flush_udp_be);
	free(snap->svc_used);
	free(snap->has_table);
	free(snap->keys);
	stage_free(&snap->stage);
	free(snap);
}

static int snapshot_note_service(const struct sl_svc_key *key, const struct sl_svc *svc, void *ctx)
{
	struct lb_snapshot *snap = ctx;

	if (svc->id == 0 || svc->id >= SL_MAX_SERVICES)
		return -EUCLEAN; /* not written by this library */
	snap->svc_used[svc->id] = 1;
	snap->keys[svc->id] = *key;
	return 0;
}

static bool slot_linked(const struct sl_backend *be)
{
	return (be->flags & SL_BE_IN_USE) && be->svc_id < SL_MAX_SERVICES;
}

static void slot_link(struct lb_snapshot *snap, __u32 id, __u32 svc)
{
	snap->next[id] = snap->head[svc];
	snap->prev[id] = 0;
	if (snap->head[svc])
		snap->prev[snap->head[svc]] = id;
	snap->head[svc] = id;
	snap->held[svc]++;
}

static void slot_unlink(struct lb_snapshot *snap, __u32 id, __u32 svc)
{
	if (snap->prev[id])
		snap->next[snap->prev[id]] = snap->next[id];
	else
		snap->head[svc] = snap->next[id];
	if (snap->next[id])
		snap->prev[snap->next[id]] = snap->prev[id];
	snap->held[svc]--;
}

/* Link every slot in use into its service's list, in id order. */
static void snapshot_index(struct lb_snapshot *snap)
{
	for (__u32 id = SL_MAX_BACKENDS - 1; id > 0; id--) {
		if (slot_linked(&snap->all[id]))
			slot_link(snap, id, snap->all[id].svc_id);
	}
}

/* Which ids hold a table: clearing an empty slot would fail a batch. */
static void snapshot_tables(struct lb_maps *maps, struct lb_snapshot *snap)
{
	__u32 inner_id;

	for (__u32 id = 1; id < SL_MAX_SERVICES; id++)
		snap->has_table[id] = !bpf_map_lookup_elem(maps->maglev, &id, &inner_id);
}

int lb_snapshot_read(struct lb_maps *maps, struct lb_snapshot **out)
{
	struct lb_snapshot *snap = calloc(1, sizeof(*snap));
	int err = -ENOMEM;

	if (!snap)
		return err;
	snap->all = calloc(SL_MAX_BACKENDS, sizeof(*snap->all));
	snap->head = calloc(SL_MAX_SERVICES, sizeof(*snap->head));
	snap->next = calloc(SL_MAX_BACKENDS, sizeof(*snap->next));
	snap->prev = calloc(SL_MAX_BACKENDS, sizeof(*snap->prev));
	snap->held = calloc(SL_MAX_SERVICES, sizeof(*snap->held));
	snap->scratch = calloc(SL_MAX_BACKENDS, sizeof(*snap->scratch));
	snap->flush_svc = calloc(SL_MAX_SERVICES, 1);
	snap->flush_udp_be = calloc(SL_MAX_BACKENDS, 1);
	snap->svc_used = calloc(SL_MAX_SERVICES, 1);
	snap->keys = calloc(SL_MAX_SERVICES, sizeof(*snap->keys));
	snap->has_table = calloc(SL_MAX_SERVICES, 1);
	if (!snap->all || !snap->head || !snap->next || !snap->prev || !snap->held ||
	    !snap->scratch || !snap->flush_svc || !snap->flush_udp_be || !snap->svc_used ||
	    !snap->keys || !snap->has_table || stage_alloc(&snap->stage))
		goto free_snap;
	err = lb_backends_read(maps, snap->all);
	if (!err)
		err = lb_service_foreach(maps, snapshot_note_service, snap);
	if (err)
		goto free_snap;
	snapshot_index(snap);
	snapshot_tables(maps, snap);
	snap->next_svc = snap->next_be = 1;
	*out = snap;
	return 0;
free_snap:
	lb_snapshot_free(snap);
	return err;
}

void lb_snapshot_room(const struct lb_snapshot *snap, lb_keep_fn keep, void *ctx, __u32 *services,
		      __u32 *backends)
{
	*services = *backends = 0;
	for (__u32 id = 1; id < SL_MAX_SERVICES; id++)
		*services += !snap->svc_used[id];
	for (__u32 id = 1; id < SL_MAX_BACKENDS; id++)
		*backends += !(snap->all[id].flags & SL_BE_IN_USE);
	for (__u32 id = 1; keep && id < SL_MAX_SERVICES; id++) {
		if (!snap->svc_used[id] || keep(&snap->keys[id], ctx))
			continue;
		/* Pruning frees the service and every slot it holds. */
		(*services)++;
		*backends += snap->held[id];
	}
}

/* The backends service @id holds now, in scratch (valid until the next call). */
static size_t snapshot_current(const struct lb_snapshot *snap, __u32 id, const __u32 **ids)
{
	size_t n = 0;

	for (__u32 slot = snap->head[id]; slot; slot = snap->next[slot])
		snap->scratch[n++] = slot;
	*ids = snap->scratch;
	return n;
}

/* Service @key's id in the maps, 0 if it does not exist. */
static __u32 service_id(struct lb_maps *maps, const struct sl_svc_key *key, struct sl_svc *svc)
{
	return lb_service_get(maps, key, svc) ? 0 : svc->id;
}

static bool spec_matches(const struct sl_backend *be, const struct lb_backend_spec *spec)
{
	return be->port == spec->addr.port && be->family == spec->addr.family &&
	       !memcmp(be->addr, spec->addr.addr, sizeof(be->addr));
}

/* Index in @cur of the backend @spec names, or -1. */
static long find_current(const struct lb_snapshot *snap, const __u32 *cur, size_t n_cur,
			 const struct lb_backend_spec *spec)
{
	for (size_t j = 0; j < n_cur; j++) {
		if (spec_matches(&snap->all[cur[j]], spec))
			return (long)j;
	}
	return -1;
}

__u32 lb_snapshot_new_backends(struct lb_maps *maps, const struct lb_snapshot *snap,
			       const struct sl_svc_key *key, const struct lb_backend_spec *specs,
			       size_t n)
{
	struct sl_svc svc;
	__u32 id = service_id(maps, key, &svc), needed = 0;
	const __u32 *cur = NULL;
	size_t n_cur = id ? snapshot_current(snap, id, &cur) : 0;

	for (size_t i = 0; i < n; i++)
		needed += find_current(snap, cur, n_cur, &specs[i]) < 0;
	return needed;
}

static bool spec_valid(const struct sl_svc_key *key, const struct lb_backend_spec *spec)
{
	return spec->addr.family == key->family && spec->addr.port &&
	       lb_addr_valid(spec->addr.addr, spec->addr.family) && spec->weight <= LB_WEIGHT_MAX;
}

/* Ids whose flows are still to be removed are not handed out: a new
 * service or backend would inherit the old one's conntrack entries. */
static __u32 alloc_service_id(struct lb_snapshot *snap)
{
	while (snap->next_svc < SL_MAX_SERVICES &&
	       (snap->svc_used[snap->next_svc] || snap->flush_svc[snap->next_svc]))
		snap->next_svc++;
	return snap->next_svc < SL_MAX_SERVICES ? snap->next_svc : 0;
}

static __u32 alloc_backend_id(struct lb_snapshot *snap)
{
	while (snap->next_be < SL_MAX_BACKENDS &&
	       ((snap->all[snap->next_be].flags & SL_BE_IN_USE) ||
		snap->flush_udp_be[snap->next_be]))
		snap->next_be++;
	return snap->next_be < SL_MAX_BACKENDS ? snap->next_be : 0;
}

/* Create service @key (no table yet) with @want's settings into @svc. */
static int service_create(struct lb_snapshot *snap, const struct sl_svc_key *key,
			  const struct sl_svc *want, struct sl_svc *svc)
{
	struct lb_stage *st = &snap->stage;

	*svc = *want;
	svc->backend_count = 0;
	svc->id = alloc_service_id(snap);
	if (!svc->id)
		return -ENOSPC;
	st->svc_resets[st->n_svc_resets++] = svc->id;
	/* A failed change may have left a table at this id: not ours. */
	if (snap->has_table[svc->id])
		st->clears[st->n_clears++] = svc->id;
	snap->has_table[svc->id] = 0;
	/* Its entry is written by the commit, after its table. */
	snap->svc_used[svc->id] = 1;
	snap->keys[svc->id] = *key;
	return 0;
}

/* Set backend slot @id in the snapshot (and its lists). */
static void slot_set(struct lb_snapshot *snap, __u32 id, const struct sl_backend *be)
{
	if (slot_linked(&snap->all[id]))
		slot_unlink(snap, id, snap->all[id].svc_id);
	snap->all[id] = *be;
	if (slot_linked(be))
		slot_link(snap, id, be->svc_id);
	if (!(be->flags & SL_BE_IN_USE) && id < snap->next_be)
		snap->next_be = id;
}

/* Write backend slot @id: in the snapshot now, in sl_be at the commit
 * (before any table that uses it is published). */
static void slot_write(struct lb_snapshot *snap, __u32 id, const struct sl_backend *be)
{
	struct lb_stage *st = &snap->stage;

	slot_set(snap, id, be);
	if (!st->dirty[id])
		st->writes[st->n_writes++] = id;
	st->dirty[id] = 1;
}

/* A slot for a backend the service does not have yet; its id in @id. */
static int backend_create(struct lb_snapshot *snap, __u32 svc_id,
			  const struct lb_backend_spec *spec, __u32 *id)
{
	struct sl_backend be = { .port = spec->addr.port,
				 .family = spec->addr.family,
				 .flags = SL_BE_IN_USE,
				 .svc_id = svc_id,
				 .weight = spec->weight };

	memcpy(be.addr, spec->addr.addr, sizeof(be.addr));
	*id = alloc_backend_id(snap);
	if (!*id)
		return -ENOSPC;
	snap->stage.be_resets[snap->stage.n_be_resets++] = *id;
	slot_write(snap, *id, &be);
	return 0;
}

/* Free the slots of @ids that @keep does not mark, at the commit, once
 * the tables without them are published (until then they stay in use, so
 * nothing else takes them). A service that stays loses them one by one
 * (@drop_udp): their UDP flows go at lb_snapshot_flush(); a pruned
 * service's flows all go anyway. */
static void slots_release(struct lb_snapshot *snap, const __u32 *ids, size_t n,
			  const unsigned char *keep, bool drop_udp)
{
	struct lb_stage *st = &snap->stage;

	for (size_t j = 0; j < n; j++) {
		if (keep && keep[j])
			continue;
		st->releases[st->n_releases++] = ids[j];
		st->release_udp[ids[j]] = drop_udp;
	}
}

/* Zero the per-CPU traffic counters of @ids in @fd (sl_svc_st, sl_be_st). */
static int traffic_reset_batch(int fd, const __u32 *ids, size_t n)
{
	int ncpus = libbpf_num_possible_cpus();
	struct sl_traffic *zero;
	__u32 count = n;
	int err = 0;

	if (!n)
		return 0;
	if (ncpus < 0)
		return ncpus;
	zero = calloc(n * ncpus, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_batch(fd, ids, zero, &count, NULL))
		err = -errno;
	free(zero);
	return err;
}

/* Write the staged slots (their snapshot values) in one batch. */
static int slots_write_batch(struct lb_maps *maps, struct lb_snapshot *snap)
{
	struct lb_stage *st = &snap->stage;
	struct sl_backend *values;
	__u32 count = st->n_writes;
	int err = 0;

	if (!count)
		return 0;
	values = calloc(count, sizeof(*values));
	if (!values)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		values[i] = snap->all[st->writes[i]];
		st->dirty[st->writes[i]] = 0;
	}
	if (bpf_map_update_batch(maps->be, st->writes, values, &count, NULL))
		err = -errno;
	free(values);
	st->n_writes = 0;
	return err;
}

/* Remove the staged tables: a batch where the kernel has one for this map
 * type, else one at a time. */
static int tables_clear(struct lb_maps *maps, struct lb_snapshot *snap)
{
	struct lb_stage *st = &snap->stage;
	__u32 count = st->n_clears;
	int err = 0;

	if (count && bpf_map_delete_batch(maps->maglev, st->clears, &count, NULL)) {
		for (size_t i = 0; i < st->n_clears && !err; i++) {
			if (bpf_map_delete_elem(maps->maglev, &st->clears[i]) && errno != ENOENT)
				err = -errno;
		}
	}
	for (size_t i = 0; i < st->n_clears; i++)
		snap->has_table[st->clears[i]] = 0;
	st->n_clears = 0;
	return err;
}

static int tables_swap(struct lb_maps *maps, struct lb_snapshot *snap)
{
	struct lb_stage *st = &snap->stage;
	__u32 count = st->n_tables;
	int err = 0;

	if (count && bpf_map_update_batch(maps->maglev, st->table_ids, st->table_fds, &count, NULL))
		err = -errno;
	for (size_t i = 0; i < st->n_tables; i++) {
		snap->has_table[st->table_ids[i]] = !err;
		close(st->table_fds[i]); /* the outer map holds its own reference */
	}
	st->n_tables = 0;
	return err;
}

static int services_write(struct lb_maps *maps, struct lb_snapshot *snap)
{
	struct lb_stage *st = &snap->stage;
	__u32 count = st->n_svcs;
	int err = 0;

	if (count && bpf_map_update_batch(maps->svc, st->svc_keys, st->svcs, &count, NULL))
		err = -errno;
	st->n_svcs = 0;
	return err;
}

/* Free the released slots (snapshot and map) and mark their UDP flows. */
static int slots_free(struct lb_maps *maps, struct lb_snapshot *snap)
{
	struct lb_stage *st = &snap->stage;
	struct sl_backend empty = {};

	for (size_t i = 0; i < st->n_releases; i++) {
		__u32 id = st->releases[i];

		slot_write(snap, id, &empty);
		if (st->release_udp[id]) {
			snap->flush_udp_be[id] = 1;
			snap->flush_pending = true;
		}
		st->release_udp[id] = 0;
	}
	st->n_releases = 0;
	return slots_write_batch(maps, snap);
}

int lb_snapshot_commit(struct lb_maps *maps, struct lb_snapshot *snap)
{
	struct lb_stage *st = &snap->stage;
	int err;

	/* New ids start from zero before anything can count on them. */
	err = traffic_reset_batch(maps->svc_st, st->svc_resets, st->n_svc_resets);
	if (!err)
		err = traffic_reset_batch(maps->be_st, st->be_resets, st->n_be_resets);
	st->n_svc_resets = st->n_be_resets = 0;
	/* Slots before the tables that name them; clears before swaps, so a
	 * reused id's leftover table goes before its new one comes. */
	err = err ?: slots_write_batch(maps, snap);
	err = err ?: tables_clear(maps, snap);
	err = err ?: tables_swap(maps, snap);
	/* Entries after their tables: a new service appears with its table. */
	err = err ?: services_write(maps, snap);
	/* Only now no published table uses the released slots. */
	err = err ?: slots_free(maps, snap);
	if (err)
		stage_drop(snap);
	return err;
}

int lb_snapshot_flush(struct lb_maps *maps, struct lb_snapshot *snap)
{
	int err = lb_snapshot_commit(maps, snap);

	if (err)
		return err;
	if (!snap->flush_pending)
		return 0;
	err = lb_ct_flush(maps, snap->flush_svc, snap->flush_udp_be);
	if (err)
		return err;
	memset(snap->flush_svc, 0, SL_MAX_SERVICES);
	memset(snap->flush_udp_be, 0, SL_MAX_BACKENDS);
	snap->flush_pending = false;
	/* The ids held back for the flush are free again. */
	snap->next_svc = snap->next_be = 1;
	return 0;
}

static bool settings_equal(const struct sl_svc *a, const struct sl_svc *b)
{
	return a->flags == b->flags && a->affinity_timeout_s == b->affinity_timeout_s &&
	       !strncmp(a->name, b->name, sizeof(a->name));
}

/* How a service's backends move from @cur to @specs: ids[i] is the slot
 * of specs[i], kept[j] marks the slots of cur that stay, and prev[i] and
 * written[i] remember what a rollback must restore. */
struct assign {
	__u32 *ids;
	unsigned char *kept;
	struct sl_backend *prev;
	unsigned char *written;
};

/* Map @specs onto slots: an existing one (weight updated) or a new one.
 * Returns 1 if anything differs from @cur, 0 if not, or -errno. */
static int backends_assign(struct lb_snapshot *snap, __u32 svc_id,
			   const struct lb_backend_spec *specs, size_t n, const __u32 *cur,
			   size_t n_cur, struct assign *a)
{
	int changed = n != n_cur, err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		long j = find_current(snap, cur, n_cur, &specs[i]);
		struct sl_backend be;

		if (j < 0) {
			err = backend_create(snap, svc_id, &specs[i], &a->ids[i]);
			a->written[i] = !err;
			changed = 1;
			continue;
		}
		a->ids[i] = cur[j];
		a->kept[j] = 1;
		be = a->prev[i] = snap->all[a->ids[i]];
		if (be.weight != specs[i].weight) {
			be.weight = specs[i].weight;
			slot_write(snap, a->ids[i], &be);
			a->written[i] = 1;
			changed = 1;
		}
	}
	return err ? err : changed;
}

/* Put back every slot backends_assign() wrote. */
static void backends_rollback(struct lb_snapshot *snap, size_t n, const struct assign *a)
{
	for (size_t i = 0; i < n; i++) {
		if (a->written[i])
			slot_write(snap, a->ids[i], &a->prev[i]);
	}
}

static int assign_alloc(struct assign *a, size_t n, size_t n_cur)
{
	a->ids = calloc(n + 1, sizeof(*a->ids));
	a->prev = calloc(n + 1, sizeof(*a->prev));
	a->written = calloc(n + 1, 1);
	a->kept = calloc(n_cur + 1, 1);
	return a->ids && a->prev && a->written && a->kept ? 0 : -ENOMEM;
}

static void assign_free(struct assign *a)
{
	free(a->ids);
	free(a->prev);
	free(a->written);
	free(a->kept);
}

/* Field by field: struct addr_port has a padding byte. */
static int addr_cmp(const void *a, const void *b)
{
	const struct addr_port *x = a, *y = b;

	if (x->family != y->family)
		return x->family - y->family;
	if (x->port != y->port)
		return x->port - y->port;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

/* True when two of @specs name one backend (sorted copy: n log n). */
static int specs_duplicate(const struct lb_backend_spec *specs, size_t n, bool *dup)
{
	struct addr_port *addrs = calloc(n + 1, sizeof(*addrs));

	if (!addrs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		addrs[i] = specs[i].addr;
	qsort(addrs, n, sizeof(*addrs), addr_cmp);
	*dup = false;
	for (size_t i = 1; i < n && !*dup; i++)
		*dup = !addr_cmp(&addrs[i - 1], &addrs[i]);
	free(addrs);
	return 0;
}

/* Backends of @specs that take new flows: each needs a Maglev slot. */
static size_t specs_active(const struct lb_backend_spec *specs, size_t n)
{
	size_t active = 0;

	for (size_t i = 0; i < n; i++)
		active += specs[i].weight > 0;
	return active;
}

int lb_specs_check(const struct lb_maps *maps, const struct sl_svc_key *key,
		   const struct sl_svc *want, const struct lb_backend_spec *specs, size_t n)
{
	bool dup;
	int err;

	if (!lb_service_valid(key, want))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!spec_valid(key, &specs[i]))
			return -EINVAL;
	}
	if (specs_active(specs, n) > maps->maglev_size)
		return -E2BIG; /* more backends than the table has slots */
	err = specs_duplicate(specs, n, &dup);
	return err ? err : dup ? -EINVAL : 0;
}

/* Whether a sync created the service or changed its settings. */
struct sync_state {
	bool created;
	bool settings_changed;
};

/* Existing service @key into @svc (its settings from @want), or a new one. */
static int service_prepare(struct lb_maps *maps, struct lb_snapshot *snap,
			   const struct sl_svc_key *key, const struct sl_svc *want,
			   struct sl_svc *svc, struct sync_state *st)
{
	st->created = !service_id(maps, key, svc);
	if (st->created)
		return service_create(snap, key, want, svc);
	st->settings_changed = !settings_equal(svc, want);
	svc->flags = want->flags;
	svc->affinity_timeout_s = want->affinity_timeout_s;
	memcpy(svc->name, want->name, sizeof(svc->name));
	return 0;
}

/* Stage service @key's new table (built from backends @ids) and entry
 * (with its active count). Returns 0 or -errno, nothing staged on error. */
static int service_stage(struct lb_maps *maps, struct lb_snapshot *snap,
			 const struct sl_svc_key *key, struct sl_svc *svc, const __u32 *ids,
			 size_t n)
{
	struct lb_stage *st = &snap->stage;
	__u32 active;
	int fd, err = lb_table_build(maps, snap->all, ids, n, &active, &fd);

	if (err)
		return err;
	if (fd >= 0) {
		st->table_ids[st->n_tables] = svc->id;
		st->table_fds[st->n_tables++] = fd;
	} else if (snap->has_table[svc->id]) {
		st->clears[st->n_clears++] = svc->id;
	}
	svc->backend_count = active;
	st->svc_keys[st->n_svcs] = *key;
	st->svcs[st->n_svcs++] = *svc;
	return 0;
}

/* Undo a failed sync: the slots it wrote, and the service if it made it
 * (nothing of it reached the maps: its entry comes with the commit). */
static void sync_rollback(struct lb_snapshot *snap, const struct sl_svc *svc,
			  const struct sync_state *st, size_t n, const struct assign *a)
{
	backends_rollback(snap, n, a);
	if (!st->created)
		return;
	snap->svc_used[svc->id] = 0;
	if (svc->id < snap->next_svc)
		snap->next_svc = svc->id;
}

int lb_service_sync(struct lb_maps *maps, struct lb_snapshot *snap, const struct sl_svc_key *key,
		    const struct sl_svc *want, const struct lb_backend_spec *specs, size_t n)
{
	struct sync_state st = {};
	struct assign a = {};
	struct sl_svc svc;
	const __u32 *cur;
	size_t n_cur;
	int changed, err;

	err = lb_specs_check(maps, key, want, specs, n);
	if (!err)
		err = service_prepare(maps, snap, key, want, &svc, &st);
	if (err)
		return err;
	n_cur = snapshot_current(snap, svc.id, &cur);
	err = assign_alloc(&a, n, n_cur);
	changed = err ? err : backends_assign(snap, svc.id, specs, n, cur, n_cur, &a);
	/* A service with backends to pick but no table (one lost to a change
	 * that failed half way) is not "as asked": its table is published. */
	if (changed == 0 && !st.created && !st.settings_changed &&
	    (snap->has_table[svc.id] || !specs_active(specs, n)))
		goto free_assign;
	err = changed < 0 ? changed : service_stage(maps, snap, key, &svc, a.ids, n);
	if (err) {
		sync_rollback(snap, &svc, &st, n, &a);
		goto free_assign;
	}
	/* Freed once the table without them is published. */
	slots_release(snap, cur, n_cur, a.kept, true);
	changed = 1;
free_assign:
	assign_free(&a);
	return err ? err : changed;
}

int lb_services_prune(struct lb_maps *maps, struct lb_snapshot *snap, lb_keep_fn keep, void *ctx)
{
	/* A service staged but not committed has no entry to delete yet. */
	int pruned = 0, err = lb_snapshot_commit(maps, snap);

	if (err)
		return err;

	for (__u32 id = 1; id < SL_MAX_SERVICES; id++) {
		const __u32 *cur;
		size_t n_cur;

		if (!snap->svc_used[id] || keep(&snap->keys[id], ctx))
			continue;
		/* Unpublish first: once the key is gone no new flow can pick it. */
		if (bpf_map_delete_elem(maps->svc, &snap->keys[id]))
			return -errno;
		/* From here the service is gone: finish the rest even on error. */
		snap->svc_used[id] = 0;
		snap->flush_svc[id] = 1;
		snap->flush_pending = true;
		if (id < snap->next_svc)
			snap->next_svc = id;
		pruned++;
		if (snap->has_table[id])
			snap->stage.clears[snap->stage.n_clears++] = id;
		snap->has_table[id] = 0;
		n_cur = snapshot_current(snap, id, &cur);
		slots_release(snap, cur, n_cur, NULL, false);
	}
	/* Done now, not at the caller's commit: an id freed here must not be
	 * given to a new service while its old slots are still linked to it. */
	err = lb_snapshot_commit(maps, snap);
	return err ? err : pruned;
}

void lb_snapshot_take_flush(struct lb_snapshot *to, const struct lb_snapshot *from)
{
	for (__u32 id = 0; id < SL_MAX_SERVICES; id++)
		to->flush_svc[id] |= from->flush_svc[id];
	for (__u32 id = 0; id < SL_MAX_BACKENDS; id++)
		to->flush_udp_be[id] |= from->flush_udp_be[id];
	to->flush_pending |= from->flush_pending;
	to->next_svc = to->next_be = 1;
}

void lb_snapshot_abort(struct lb_snapshot *snap)
{
	stage_drop(snap);
}

int lb_snapshot_backend(struct lb_maps *maps, const struct lb_snapshot *snap,
			const struct sl_svc_key *key, const struct addr_port *addr,
			struct sl_backend *out)
{
	struct lb_backend_spec spec = { .addr = *addr };
	struct sl_svc svc;
	__u32 id = service_id(maps, key, &svc);
	const __u32 *cur = NULL;
	size_t n_cur = id ? snapshot_current(snap, id, &cur) : 0;
	long j = find_current(snap, cur, n_cur, &spec);

	if (j < 0)
		return -ENOENT;
	*out = snap->all[cur[j]];
	return 0;
}
