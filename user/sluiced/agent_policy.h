/* The agent's policy: the endpoints and rule sets of its desired state,
 * the identities it gave them, and the denial events the data path
 * reports. Every change is a transaction like the others: a candidate
 * policy is validated and compiled, published as a new generation, and
 * only then becomes the desired one; on any error the enforced policy and
 * the desired state stay as they were. */
#ifndef SLUICE_AGENT_POLICY_H
#define SLUICE_AGENT_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "sluice/events.h"

struct agent;
struct agent_error;
struct lb_maps;
struct ring_buffer;

#define AGENT_POL_EVENTS 1024 /* denial events kept for `sluice policy drops` */

struct agent_policy {
	struct pol_ident_table idents; /* of the enforced generation */
	uint32_t gen; /* enforced generation, 0: none */
	bool keep_pinned; /* adopted from the maps: leave their policy until a change */
	struct ring_buffer *events; /* reader of sl_pol_events */
	struct sl_pol_event ring[AGENT_POL_EVENTS]; /* the newest events */
	uint64_t n_events; /* read since start; ring[n_events % N] is the next slot */
};

int agent_policy_init(struct agent_policy *p, const struct lb_maps *maps);
void agent_policy_fini(struct agent_policy *p);
/* The fd that becomes readable when events wait, and the call that reads
 * them into the ring. */
int agent_policy_events_fd(const struct agent_policy *p);
void agent_policy_events_read(struct agent_policy *p);

/* Enforce @cand (validated here, compiled, published). Does not touch the
 * desired state: the caller takes @cand over on success. */
int agent_policy_enforce(struct agent *a, const struct pol_state *cand, struct agent_error *e);

/* The CLI's verbs. */
int agent_endpoint_add(struct agent *a, const struct pol_endpoint *ep, struct agent_error *e);
int agent_endpoint_del(struct agent *a, const struct pol_prefix *addr, struct agent_error *e);
/* Adds @rule to rule set @name (made, with @established, when missing;
 * when it exists its mode is kept). rule->id 0: the next free id, set in
 * *@id. */
int agent_policy_add(struct agent *a, const char *name, enum pol_established established,
		     const struct pol_rule *rule, uint32_t *id, struct agent_error *e);
/* Removes rule @id of rule set @name, or the whole rule set when @id is 0. */
int agent_policy_del(struct agent *a, const char *name, uint32_t id, struct agent_error *e);
int agent_policy_set(struct agent *a, const char *name, enum pol_established established,
		     struct agent_error *e);

#endif
