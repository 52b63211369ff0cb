/* Applying a parsed config (config.h) to the load balancer's maps: the
 * whole desired state, validated and checked for room before anything
 * changes, then each service brought to it in one publication. Used by
 * `sluice apply -f` (and the agent, when it reloads its config). */
#ifndef SLUICE_APPLY_H
#define SLUICE_APPLY_H

#include "config.h"
#include "lb.h"

struct apply_summary {
	__u32 services; /* in the config */
	__u32 changed; /* added or changed */
	__u32 unchanged;
	__u32 deleted; /* in the maps, not in the config */
	__u32 health_checks; /* services with a health section (not run here) */
};

/* How the agent applies: with the snapshot it keeps between changes (NULL:
 * read one for this call), and the weight each backend gets in the maps
 * (NULL: its configured weight; the agent gives a down backend 0). */
struct apply_opts {
	struct lb_snapshot *snap;
	__u32 (*weight)(const struct cfg_service *svc, const struct cfg_backend *be, void *ctx);
	void *ctx;
};

/* The backends of @svc as the LB library takes them, weighted by @opts
 * (may be NULL). Returns a calloc'ed array (free it), NULL when out of memory. */
struct lb_backend_spec *apply_specs_of(const struct cfg_service *svc,
				       const struct apply_opts *opts);
/* The service settings (flags, affinity, name) @svc asks for. */
struct sl_svc apply_settings_of(const struct cfg_service *svc);

/* Make the maps hold exactly @cfg. Returns 0; -ENOSPC (it would not fit)
 * or -E2BIG (a service has more active backends than the Maglev table has
 * slots), with nothing changed; or another -errno from the kernel. @what
 * then names the step or service that failed. */
int apply_config(struct lb_maps *maps, const struct cfg_state *cfg, const struct apply_opts *opts,
		 struct apply_summary *sum, char *what, size_t what_len);

#endif
