/* The agent's policy transactions and denial events (agent_policy.h). A
 * verb edits a copy of the desired policy, has it enforced, and only then
 * swaps it in. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "agent.h"
#include "agent_k8s.h"
#include "log.h"
#include "policy_maps.h"

/* ---- denial events ---- */

static int on_event(void *ctx, void *data, size_t size)
{
	struct agent_policy *p = ctx;

	if (size < sizeof(struct sl_pol_event))
		return 0;
	memcpy(&p->ring[p->n_events % AGENT_POL_EVENTS], data, sizeof(struct sl_pol_event));
	p->n_events++;
	return 0;
}

int agent_policy_init(struct agent_policy *p, const struct lb_maps *maps)
{
	memset(p, 0, sizeof(*p));
	if (pol_gen_read(maps, &p->gen))
		p->gen = 0;
	p->events = ring_buffer__new(maps->pol_events, on_event, p, NULL);
	return p->events ? 0 : -errno;
}

void agent_policy_fini(struct agent_policy *p)
{
	ring_buffer__free(p->events);
	pol_ident_table_free(&p->idents);
	memset(p, 0, sizeof(*p));
}

int agent_policy_events_fd(const struct agent_policy *p)
{
	return p->events ? ring_buffer__epoll_fd(p->events) : -1;
}

void agent_policy_events_read(struct agent_policy *p)
{
	if (p->events && ring_buffer__consume(p->events) < 0)
		log_error("policy", "reading denial events: %s", strerror(errno));
}

/* ---- enforcing ---- */

static void log_enforced(const struct agent_policy *p, const struct pol_state *st,
			 const struct pol_compiled *c)
{
	size_t rules = 0;

	for (size_t i = 0; i < st->n_rulesets; i++)
		rules += st->rulesets[i].n_rules;
	log_info("policy",
		 "generation %u enforced: %zu endpoints, %zu identities, %zu rules in %zu rule "
		 "sets, %zu map entries",
		 p->gen, st->n_endpoints, p->idents.n, rules, st->n_rulesets,
		 c->n_rules + c->n_ipcache + c->n_dsts);
}

int agent_policy_enforce(struct agent *a, const struct pol_state *cand, struct agent_error *e)
{
	struct agent_policy *p = &a->policy;
	char why[POL_ERR_MAX];
	struct pol_compiled c;
	uint32_t gen;
	int err;

	if (pol_state_validate(cand, why, sizeof(why)))
		return agent_fail(e, 1, 0, "nothing was changed", "invalid policy: %s", why);
	err = pol_compile(cand, &p->idents, &c, why, sizeof(why));
	if (err)
		return agent_fail(e, 1, err == -E2BIG ? 0 : err, "nothing was changed", "%s",
				  err == -ENOMEM ? "compiling the policy" : why);
	err = pol_publish(a->maps, &c, &gen, why, sizeof(why));
	if (err) {
		pol_compiled_free(&c);
		return agent_fail(e, 1, err, "the previous policy is still enforced", "%s", why);
	}
	pol_ident_table_free(&p->idents);
	p->idents = c.idents;
	memset(&c.idents, 0, sizeof(c.idents));
	if (gen != p->gen) {
		p->gen = gen;
		log_enforced(p, cand, &c);
	}
	pol_compiled_free(&c);
	return 0;
}

/* Enforce @cand and make it the desired policy (it is taken over either way). */
static int policy_commit(struct agent *a, struct pol_state *cand, double started,
			 struct agent_error *e)
{
	int err = agent_policy_enforce(a, cand, e);

	if (err) {
		pol_state_free(cand);
		return agent_verb_done(a, started, err);
	}
	pol_state_free(&a->desired.policy);
	a->desired.policy = *cand;
	a->policy.keep_pinned = false;
	return agent_verb_done(a, started, 0);
}

/* A copy of the desired policy to edit. */
static int candidate(struct agent *a, struct pol_state *cand, struct agent_error *e)
{
	int err = pol_state_copy(cand, &a->desired.policy);

	return err ? agent_fail(e, 1, err, NULL, "copying the policy") : 0;
}

static void *grow(void *array, size_t n, size_t size)
{
	return realloc(array, (n + 1) * size);
}

/* ---- endpoints ---- */

static long endpoint_index(const struct pol_state *st, const struct pol_prefix *addr)
{
	for (size_t i = 0; i < st->n_endpoints; i++) {
		const struct pol_prefix *p = &st->endpoints[i].addr;

		if (p->family == addr->family && !memcmp(p->addr, addr->addr, sizeof(p->addr)))
			return (long)i;
	}
	return -1;
}

int agent_endpoint_add(struct agent *a, const struct pol_endpoint *ep, struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);
	char text[64];
	struct pol_state cand;
	struct pol_endpoint *eps;

	pol_prefix_format(&ep->addr, text, sizeof(text));
	if (endpoint_index(&a->desired.policy, &ep->addr) >= 0)
		return agent_verb_done(a, started,
				       agent_fail(e, 1, -EEXIST, "delete it first to relabel it",
						  "endpoint %s exists", text));
	if (candidate(a, &cand, e))
		return agent_verb_done(a, started, e->err);
	eps = grow(cand.endpoints, cand.n_endpoints, sizeof(*eps));
	if (!eps) {
		pol_state_free(&cand);
		return agent_verb_done(a, started,
				       agent_fail(e, 1, -ENOMEM, NULL, "adding %s", text));
	}
	cand.endpoints = eps;
	eps[cand.n_endpoints++] = *ep;
	return policy_commit(a, &cand, started, e);
}

int agent_endpoint_del(struct agent *a, const struct pol_prefix *addr, struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);
	struct pol_state cand;
	char text[64];
	long i;

	pol_prefix_format(addr, text, sizeof(text));
	if (endpoint_index(&a->desired.policy, addr) < 0)
		return agent_verb_done(a, started,
				       agent_fail(e, 1, -ENOENT, "sluice endpoint list shows them",
						  "no endpoint %s", text));
	if (agent_k8s_owns_endpoint(a->k8s, addr))
		return agent_verb_done(
			a, started,
			agent_fail(e, 1, -EPERM, "it goes when its pod does",
				   "endpoint %s is a Kubernetes pod's (sluiced --k8s)", text));
	if (candidate(a, &cand, e))
		return agent_verb_done(a, started, e->err);
	i = endpoint_index(&cand, addr);
	memmove(&cand.endpoints[i], &cand.endpoints[i + 1],
		(cand.n_endpoints - i - 1) * sizeof(cand.endpoints[0]));
	cand.n_endpoints--;
	return policy_commit(a, &cand, started, e);
}

/* ---- rule sets ---- */

static struct pol_ruleset *ruleset_find(const struct pol_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_rulesets; i++) {
		if (!strcmp(st->rulesets[i].name, name))
			return &st->rulesets[i];
	}
	return NULL;
}

static uint32_t next_rule_id(const struct pol_state *st)
{
	uint32_t max = 0;

	for (size_t i = 0; i < st->n_rulesets; i++) {
		for (size_t j = 0; j < st->rulesets[i].n_rules; j++) {
			if (st->rulesets[i].rules[j].id > max)
				max = st->rulesets[i].rules[j].id;
		}
	}
	return max + 1;
}

/* Rule set @name (shorter than POL_NAME_MAX) of @cand, appended (empty,
 * @established) when missing. NULL when out of memory. */
static struct pol_ruleset *ruleset_get(struct pol_state *cand, const char *name,
				       enum pol_established established)
{
	struct pol_ruleset *rs = ruleset_find(cand, name);

	if (rs)
		return rs;
	rs = grow(cand->rulesets, cand->n_rulesets, sizeof(*rs));
	if (!rs)
		return NULL;
	cand->rulesets = rs;
	rs = &rs[cand->n_rulesets++];
	memset(rs, 0, sizeof(*rs));
	strcpy(rs->name, name);
	rs->established = established;
	return rs;
}

int agent_policy_add(struct agent *a, const char *name, enum pol_established established,
		     const struct pol_rule *rule, uint32_t *id, struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);
	struct pol_ruleset *rs;
	struct pol_rule *rules;
	struct pol_state cand;

	/* Too long to copy into the rule set: said here, not by the validation. */
	if (strlen(name) >= POL_NAME_MAX)
		return agent_verb_done(
			a, started,
			agent_fail(e, 1, 0, "nothing was changed",
				   "rule set name '%.64s...' is longer than %d characters", name,
				   POL_NAME_MAX - 1));
	if (candidate(a, &cand, e))
		return agent_verb_done(a, started, e->err);
	rs = ruleset_get(&cand, name, established);
	rules = rs ? grow(rs->rules, rs->n_rules, sizeof(*rules)) : NULL;
	if (!rules) {
		pol_state_free(&cand);
		return agent_verb_done(
			a, started,
			agent_fail(e, 1, -ENOMEM, NULL, "cannot add to rule set '%.64s'", name));
	}
	rs->rules = rules;
	rules[rs->n_rules] = *rule;
	if (!rule->id)
		rules[rs->n_rules].id = next_rule_id(&cand);
	*id = rules[rs->n_rules++].id;
	return policy_commit(a, &cand, started, e);
}

static int ruleset_missing(struct agent *a, double started, const char *name, struct agent_error *e)
{
	return agent_verb_done(a, started,
			       agent_fail(e, 1, -ENOENT, "sluice policy list shows them",
					  "no rule set '%.64s'", name));
}

int agent_policy_del(struct agent *a, const char *name, uint32_t id, struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);
	struct pol_ruleset *rs;
	struct pol_state cand;
	size_t i = 0;

	if (!ruleset_find(&a->desired.policy, name))
		return ruleset_missing(a, started, name, e);
	if (candidate(a, &cand, e))
		return agent_verb_done(a, started, e->err);
	rs = ruleset_find(&cand, name);
	if (!id) {
		free(rs->rules);
		i = (size_t)(rs - cand.rulesets);
		memmove(rs, rs + 1, (cand.n_rulesets - i - 1) * sizeof(*rs));
		cand.n_rulesets--;
		return policy_commit(a, &cand, started, e);
	}
	while (i < rs->n_rules && rs->rules[i].id != id)
		i++;
	if (i == rs->n_rules) {
		pol_state_free(&cand);
		return agent_verb_done(a, started,
				       agent_fail(e, 1, -ENOENT, "sluice policy list shows them",
						  "rule set '%.64s' has no rule %u", name, id));
	}
	memmove(&rs->rules[i], &rs->rules[i + 1], (rs->n_rules - i - 1) * sizeof(rs->rules[0]));
	rs->n_rules--;
	return policy_commit(a, &cand, started, e);
}

int agent_policy_set(struct agent *a, const char *name, enum pol_established established,
		     struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);
	struct pol_state cand;

	if (!ruleset_find(&a->desired.policy, name))
		return ruleset_missing(a, started, name, e);
	if (candidate(a, &cand, e))
		return agent_verb_done(a, started, e->err);
	ruleset_find(&cand, name)->established = established;
	return policy_commit(a, &cand, started, e);
}
