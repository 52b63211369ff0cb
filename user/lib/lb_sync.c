/* Bulk changes to the load balancer's maps (lb.h, "bulk changes"): a
 * snapshot of every service and backend slot is read once, then each
 * service is brought to its desired backend set with a single Maglev
 * publication. This is what makes applying thousands of services fast:
 * no call re-reads all the backend slots or walks all services. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "lb.h"
#include "lb_internal.h"
#include "sluice/limits.h"

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
	struct sl_svc_key *keys; /* by service id */
	__u32 next_svc, next_be; /* allocation cursors: lowest possibly free id */
};

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
	free(snap->keys);
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
	if (!snap->all || !snap->head || !snap->next || !snap->prev || !snap->held ||
	    !snap->scratch || !snap->flush_svc || !snap->flush_udp_be || !snap->svc_used ||
	    !snap->keys)
		goto free_snap;
	err = lb_backends_read(maps, snap->all);
	if (!err)
		err = lb_service_foreach(maps, snapshot_note_service, snap);
	if (err)
		goto free_snap;
	snapshot_index(snap);
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

static __u32 alloc_service_id(struct lb_snapshot *snap)
{
	while (snap->next_svc < SL_MAX_SERVICES && snap->svc_used[snap->next_svc])
		snap->next_svc++;
	return snap->next_svc < SL_MAX_SERVICES ? snap->next_svc : 0;
}

static __u32 alloc_backend_id(struct lb_snapshot *snap)
{
	while (snap->next_be < SL_MAX_BACKENDS && (snap->all[snap->next_be].flags & SL_BE_IN_USE))
		snap->next_be++;
	return snap->next_be < SL_MAX_BACKENDS ? snap->next_be : 0;
}

/* Create service @key (no table yet) with @want's settings into @svc. */
static int service_create(struct lb_maps *maps, struct lb_snapshot *snap,
			  const struct sl_svc_key *key, const struct sl_svc *want,
			  struct sl_svc *svc)
{
	int err;

	*svc = *want;
	svc->backend_count = 0;
	svc->id = alloc_service_id(snap);
	if (!svc->id)
		return -ENOSPC;
	err = lb_traffic_reset(maps->svc_st, svc->id);
	/* A failed change may have left a table at this id: not ours. */
	if (!err && bpf_map_delete_elem(maps->maglev, &svc->id) && errno != ENOENT)
		err = -errno;
	if (!err && bpf_map_update_elem(maps->svc, key, svc, BPF_NOEXIST))
		err = -errno;
	if (err)
		return err;
	snap->svc_used[svc->id] = 1;
	snap->keys[svc->id] = *key;
	return 0;
}

/* Write backend slot @id (map and snapshot). */
static int slot_write(struct lb_maps *maps, struct lb_snapshot *snap, __u32 id,
		      const struct sl_backend *be)
{
	if (bpf_map_update_elem(maps->be, &id, be, BPF_ANY))
		return -errno;
	if (slot_linked(&snap->all[id]))
		slot_unlink(snap, id, snap->all[id].svc_id);
	snap->all[id] = *be;
	if (slot_linked(be))
		slot_link(snap, id, be->svc_id);
	if (!(be->flags & SL_BE_IN_USE) && id < snap->next_be)
		snap->next_be = id;
	return 0;
}

/* A slot for a backend the service does not have yet; its id in @id. */
static int backend_create(struct lb_maps *maps, struct lb_snapshot *snap, __u32 svc_id,
			  const struct lb_backend_spec *spec, __u32 *id)
{
	struct sl_backend be = { .port = spec->addr.port,
				 .family = spec->addr.family,
				 .flags = SL_BE_IN_USE,
				 .svc_id = svc_id,
				 .weight = spec->weight };
	int err;

	memcpy(be.addr, spec->addr.addr, sizeof(be.addr));
	*id = alloc_backend_id(snap);
	if (!*id)
		return -ENOSPC;
	err = lb_traffic_reset(maps->be_st, *id);
	return err ? err : slot_write(maps, snap, *id, &be);
}

/* Free the slots of @ids that @keep does not mark (after publication).
 * A service that stays loses them one by one (@drop_udp): their UDP flows
 * go at lb_snapshot_flush(); a pruned service's flows all go anyway. */
static int slots_release(struct lb_maps *maps, struct lb_snapshot *snap, const __u32 *ids, size_t n,
			 const unsigned char *keep, bool drop_udp)
{
	struct sl_backend empty = {};
	int err = 0;

	for (size_t j = 0; j < n && !err; j++) {
		if (keep && keep[j])
			continue;
		err = slot_write(maps, snap, ids[j], &empty);
		if (drop_udp) {
			snap->flush_udp_be[ids[j]] = 1;
			snap->flush_pending = true;
		}
	}
	return err;
}

int lb_snapshot_flush(struct lb_maps *maps, struct lb_snapshot *snap)
{
	int err;

	if (!snap->flush_pending)
		return 0;
	err = lb_ct_flush(maps, snap->flush_svc, snap->flush_udp_be);
	if (err)
		return err;
	memset(snap->flush_svc, 0, SL_MAX_SERVICES);
	memset(snap->flush_udp_be, 0, SL_MAX_BACKENDS);
	snap->flush_pending = false;
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
static int backends_assign(struct lb_maps *maps, struct lb_snapshot *snap, __u32 svc_id,
			   const struct lb_backend_spec *specs, size_t n, const __u32 *cur,
			   size_t n_cur, struct assign *a)
{
	int changed = n != n_cur, err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		long j = find_current(snap, cur, n_cur, &specs[i]);
		struct sl_backend be;

		if (j < 0) {
			err = backend_create(maps, snap, svc_id, &specs[i], &a->ids[i]);
			a->written[i] = !err;
			changed = 1;
			continue;
		}
		a->ids[i] = cur[j];
		a->kept[j] = 1;
		be = a->prev[i] = snap->all[a->ids[i]];
		if (be.weight != specs[i].weight) {
			be.weight = specs[i].weight;
			err = slot_write(maps, snap, a->ids[i], &be);
			a->written[i] = !err;
			changed = 1;
		}
	}
	return err ? err : changed;
}

/* Put back every slot backends_assign() wrote. */
static void backends_rollback(struct lb_maps *maps, struct lb_snapshot *snap, size_t n,
			      const struct assign *a)
{
	for (size_t i = 0; i < n; i++) {
		if (a->written[i])
			slot_write(maps, snap, a->ids[i], &a->prev[i]);
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
		return service_create(maps, snap, key, want, svc);
	st->settings_changed = !settings_equal(svc, want);
	svc->flags = want->flags;
	svc->affinity_timeout_s = want->affinity_timeout_s;
	memcpy(svc->name, want->name, sizeof(svc->name));
	return 0;
}

/* Undo a failed sync: the slots it wrote, and the service if it made it. */
static void sync_rollback(struct lb_maps *maps, struct lb_snapshot *snap,
			  const struct sl_svc_key *key, const struct sl_svc *svc,
			  const struct sync_state *st, size_t n, const struct assign *a)
{
	backends_rollback(maps, snap, n, a);
	if (!st->created)
		return;
	bpf_map_delete_elem(maps->svc, key);
	bpf_map_delete_elem(maps->maglev, &svc->id);
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
	changed = err ? err : backends_assign(maps, snap, svc.id, specs, n, cur, n_cur, &a);
	if (changed == 0 && !st.created && !st.settings_changed)
		goto free_assign;
	err = changed < 0 ? changed : lb_service_publish(maps, key, &svc, snap->all, a.ids, n);
	if (err) {
		sync_rollback(maps, snap, key, &svc, &st, n, &a);
		goto free_assign;
	}
	/* Published without them: now the dropped backends' slots are free. */
	err = slots_release(maps, snap, cur, n_cur, a.kept, true);
	changed = 1;
free_assign:
	assign_free(&a);
	return err ? err : changed;
}

int lb_services_prune(struct lb_maps *maps, struct lb_snapshot *snap, lb_keep_fn keep, void *ctx)
{
	int err = 0, pruned = 0;

	for (__u32 id = 1; !err && id < SL_MAX_SERVICES; id++) {
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
		if (bpf_map_delete_elem(maps->maglev, &id) && errno != ENOENT)
			err = -errno;
		n_cur = snapshot_current(snap, id, &cur);
		err = slots_release(maps, snap, cur, n_cur, NULL, false) ?: err;
	}
	return err ? err : pruned;
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
