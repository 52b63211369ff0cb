/* apply_config(): a parsed config onto the LB maps (apply.h). Order: read
 * one snapshot, check room for the result, prune the services the config
 * no longer has, then sync each config service (one table each). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "log.h"

/* The config's service keys, sorted, so keep() is a binary search. */
struct key_set {
	struct sl_svc_key *keys;
	size_t n;
};

static bool key_set_has(const struct sl_svc_key *key, void *ctx)
{
	const struct key_set *set = ctx;

	return bsearch(key, set->keys, set->n, sizeof(*key), cfg_svc_key_cmp) != NULL;
}

static int key_set_build(const struct cfg_state *cfg, struct key_set *set)
{
	set->n = cfg->n_services;
	set->keys = calloc(set->n + 1, sizeof(*set->keys));
	if (!set->keys)
		return -ENOMEM;
	for (size_t i = 0; i < set->n; i++)
		set->keys[i] = cfg->services[i].key;
	qsort(set->keys, set->n, sizeof(*set->keys), cfg_svc_key_cmp);
	return 0;
}

struct lb_backend_spec *apply_specs_of(const struct cfg_service *svc, const struct apply_opts *opts)
{
	struct lb_backend_spec *specs = calloc(svc->n_backends + 1, sizeof(*specs));

	for (size_t i = 0; specs && i < svc->n_backends; i++) {
		const struct cfg_backend *be = &svc->backends[i];

		specs[i].addr = be->addr;
		specs[i].weight =
			opts && opts->weight ? opts->weight(svc, be, opts->ctx) : be->weight;
	}
	return specs;
}

struct sl_svc apply_settings_of(const struct cfg_service *svc)
{
	struct sl_svc want = { .affinity_timeout_s = svc->affinity_s };

	want.flags = (svc->affinity_s ? SL_SVC_AFFINITY : 0) | (svc->l7 ? SL_SVC_L7 : 0);
	memcpy(want.name, svc->name, sizeof(want.name));
	return want;
}

/* Check that every service can be published (lb_specs_check), and count
 * the services and backend slots the config needs beyond what exists.
 * On a service the library would refuse, @what names it. */
static int room_needed(struct lb_maps *maps, struct lb_snapshot *snap, const struct cfg_state *cfg,
		       __u32 *services, __u32 *backends, char *what, size_t len)
{
	struct sl_svc existing;
	int err = 0;

	*services = *backends = 0;
	for (size_t i = 0; i < cfg->n_services && !err; i++) {
		const struct cfg_service *svc = &cfg->services[i];
		/* Configured weights: a backend down now counts, it comes back. */
		struct lb_backend_spec *specs = apply_specs_of(svc, NULL);
		struct sl_svc want = apply_settings_of(svc);

		err = specs ? lb_specs_check(maps, &svc->key, &want, specs, svc->n_backends)
			    : -ENOMEM;
		if (err == -E2BIG) {
			char vip[ADDR_STR_MAX];

			addr_format_service(&svc->key, vip, sizeof(vip));
			snprintf(what, len,
				 "service %s (line %u) has more active backends than the "
				 "Maglev table's %u slots",
				 vip, svc->line, maps->maglev_size);
		}
		if (!err) {
			*services += lb_service_get(maps, &svc->key, &existing) != 0;
			*backends += lb_snapshot_new_backends(maps, snap, &svc->key, specs,
							      svc->n_backends);
		}
		free(specs);
	}
	return err;
}

static int room_check(struct lb_maps *maps, struct lb_snapshot *snap, const struct cfg_state *cfg,
		      struct key_set *keep, char *what, size_t len)
{
	__u32 free_svcs, free_bes, need_svcs, need_bes;
	int err = room_needed(maps, snap, cfg, &need_svcs, &need_bes, what, len);

	if (err)
		return err;
	lb_snapshot_room(snap, key_set_has, keep, &free_svcs, &free_bes);
	if (need_svcs <= free_svcs && need_bes <= free_bes)
		return 0;
	snprintf(what, len,
		 "no room: needs %u new services (%u free) and %u backend slots (%u free)",
		 need_svcs, free_svcs, need_bes, free_bes);
	return -ENOSPC;
}

static int sync_all(struct lb_maps *maps, struct lb_snapshot *snap, const struct cfg_state *cfg,
		    const struct apply_opts *opts, struct apply_summary *sum, char *what,
		    size_t len)
{
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *svc = &cfg->services[i];
		struct lb_backend_spec *specs = apply_specs_of(svc, opts);
		struct sl_svc want = apply_settings_of(svc);
		int ret = specs ? lb_service_sync(maps, snap, &svc->key, &want, specs,
						  svc->n_backends)
				: -ENOMEM;

		free(specs);
		if (ret < 0) {
			snprintf(what, len, "service %zu of %zu (line %u)", i + 1, cfg->n_services,
				 svc->line);
			return ret;
		}
		sum->changed += ret;
		sum->unchanged += !ret;
		sum->health_checks += svc->health.type != CFG_HEALTH_NONE;
	}
	return 0;
}

int apply_config(struct lb_maps *maps, const struct cfg_state *cfg, const struct apply_opts *opts,
		 struct apply_summary *sum, char *what, size_t what_len)
{
	struct lb_snapshot *snap = opts ? opts->snap : NULL;
	struct key_set keep = {};
	int err, flush_err;

	memset(sum, 0, sizeof(*sum));
	sum->services = cfg->n_services;
	snprintf(what, what_len, "reading the maps");
	err = key_set_build(cfg, &keep);
	if (!err && !snap)
		err = lb_snapshot_read(maps, &snap);
	if (!err)
		err = room_check(maps, snap, cfg, &keep, what, what_len);
	if (err)
		goto free_all;
	snprintf(what, what_len, "removing services the config no longer has");
	err = lb_services_prune(maps, snap, key_set_has, &keep);
	if (err < 0) {
		lb_snapshot_flush(maps, snap);
		goto free_all;
	}
	sum->deleted = err;
	/* Their flows go now: until then their ids are not handed out again. */
	if (err > 0 && (flush_err = lb_snapshot_flush(maps, snap)))
		log_warn("apply", "removing the flows of deleted services failed: %s",
			 strerror(-flush_err));
	err = sync_all(maps, snap, cfg, opts, sum, what, what_len);
	/* Half a config is never published: what was staged goes. */
	if (err)
		lb_snapshot_abort(snap);
	if (!err) {
		snprintf(what, what_len, "publishing the services");
		err = lb_snapshot_commit(maps, snap);
	}
	/* Even after a failure: what was removed must not keep its flows.
	 * The change stands whether this works or not (the snapshot keeps
	 * the flush pending for the next change). */
	flush_err = lb_snapshot_flush(maps, snap);
	if (flush_err)
		log_warn("apply", "removing the flows of removed backends failed: %s",
			 strerror(-flush_err));
free_all:
	if (!opts || snap != opts->snap)
		lb_snapshot_free(snap);
	free(keep.keys);
	return err;
}
