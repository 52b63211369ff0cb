/* The agent's transactions (agent.h): validate against the desired state,
 * publish, then commit to the desired state and the state file. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "agent_k8s.h"
#include "log.h"

#define STATE_HEADER "# sluiced state: the desired services. Written by sluiced; edit the config.\n"
#define STATE_DIGEST "# config-digest: "
/* The desired state has no policy because the one enforced was adopted
 * from the pins: a restart from this file keeps it too. */
#define STATE_POLICY_PINNED "# policy: the one in the pinned maps"

double agent_now_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int agent_fail(struct agent_error *e, int status, int err, const char *hint, const char *fmt, ...)
{
	va_list ap;

	memset(e, 0, sizeof(*e));
	e->status = status;
	e->err = err;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	if (hint)
		snprintf(e->hint, sizeof(e->hint), "%s", hint);
	return err ? err : -EINVAL;
}

int agent_init(struct agent *a, struct lb_maps *maps, struct health *health,
	       const char *config_path, const char *state_path)
{
	memset(a, 0, sizeof(*a));
	a->maps = maps;
	a->health = health;
	a->config_path = config_path;
	a->state_path = state_path;
	a->stats.start_time = agent_now_s(CLOCK_REALTIME);
	return agent_policy_init(&a->policy, maps) ?: lb_snapshot_read(maps, &a->snap);
}

void agent_fini(struct agent *a)
{
	free(a->health_pending);
	agent_policy_fini(&a->policy);
	lb_snapshot_free(a->snap);
	cfg_free(&a->desired);
	memset(a, 0, sizeof(*a));
}

/* ---- health: weights and probe targets ---- */

enum health_state agent_backend_health(const struct agent *a, const struct cfg_service *svc,
				       const struct cfg_backend *be)
{
	enum health_state state = HEALTH_UNKNOWN;

	if (a->health && svc->health.type != CFG_HEALTH_NONE)
		health_get(a->health, &svc->key, &be->addr, &state, NULL);
	return state;
}

uint32_t agent_effective_weight(const struct agent *a, const struct cfg_service *svc,
				const struct cfg_backend *be)
{
	return agent_backend_health(a, svc, be) == HEALTH_DOWN ? 0 : be->weight;
}

static __u32 weight_cb(const struct cfg_service *svc, const struct cfg_backend *be, void *ctx)
{
	return agent_effective_weight(ctx, svc, be);
}

static struct apply_opts apply_opts_of(struct agent *a)
{
	return (struct apply_opts){ .snap = a->snap, .weight = weight_cb, .ctx = a };
}

/* A backend the maps hold at weight 0 although configured higher was down
 * when the last agent stopped: it starts down, not back in rotation. */
static enum health_state initial_health(struct agent *a, const struct cfg_service *svc,
					const struct cfg_backend *be)
{
	struct sl_backend slot;

	if (be->weight && !lb_snapshot_backend(a->maps, a->snap, &svc->key, &be->addr, &slot) &&
	    slot.weight == 0)
		return HEALTH_DOWN;
	return HEALTH_UNKNOWN;
}

/* What the prober says of a backend now, whatever its check: a check that
 * changes starts from there, so a down backend stays out until it passes. */
static enum health_state current_health(struct agent *a, const struct cfg_service *svc,
					const struct cfg_backend *be)
{
	enum health_state state = HEALTH_UNKNOWN;

	health_get(a->health, &svc->key, &be->addr, &state, NULL);
	return state;
}

/* Give the prober every backend of every checked service of @cfg. */
static void health_targets_set(struct agent *a, const struct cfg_state *cfg, bool from_maps)
{
	struct health_target *targets;
	size_t n = 0, cap = 0;

	if (!a->health)
		return;
	for (size_t i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].health.type != CFG_HEALTH_NONE)
			cap += cfg->services[i].n_backends;
	targets = calloc(cap + 1, sizeof(*targets));
	if (!targets) {
		log_error("agent", "no memory for %zu health check targets", cap);
		return;
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *svc = &cfg->services[i];

		for (size_t j = 0; svc->health.type != CFG_HEALTH_NONE && j < svc->n_backends; j++)
			targets[n++] = (struct health_target){
				.svc = svc->key,
				.addr = svc->backends[j].addr,
				.check = svc->health,
				.initial = from_maps ? initial_health(a, svc, &svc->backends[j])
						     : current_health(a, svc, &svc->backends[j]),
			};
	}
	if (health_set_targets(a->health, targets, n))
		log_error("agent", "no memory to update the health check targets");
	free(targets);
}

static void health_targets_update(struct agent *a)
{
	health_targets_set(a, &a->desired, false);
}

/* ---- the state file ---- */

/* Write the desired state to a temporary file and rename it over the state
 * file, so a crash leaves the old or the new one, never half of one. */
static int state_save(struct agent *a)
{
	char tmp[4096];
	FILE *out;
	int err;

	if (!a->state_path)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->state_path);
	out = fopen(tmp, "we");
	if (!out) {
		err = -errno;
		log_error("agent", "cannot write the state file %s: %s", tmp, strerror(-err));
		return err;
	}
	/* Big writes: 10,000 services are about 4 MB. */
	setvbuf(out, NULL, _IOFBF, 1 << 20);
	fprintf(out, STATE_HEADER STATE_DIGEST "%016llx\n", (unsigned long long)a->config_digest);
	if (a->policy.keep_pinned)
		fprintf(out, STATE_POLICY_PINNED "\n");
	err = cfg_write(out, &a->desired);
	if (fflush(out) || fsync(fileno(out)))
		err = -errno;
	if (fclose(out) && !err)
		err = -EIO;
	if (!err && rename(tmp, a->state_path))
		err = -errno;
	if (err) {
		log_error("agent", "cannot save the state file %s: %s", a->state_path,
			  strerror(-err));
		unlink(tmp);
	}
	return err;
}

/* The digest line of a saved state, 0 if it has none. */
static uint64_t state_digest(const char *text, size_t len)
{
	const char *line = memmem(text, len, STATE_DIGEST, strlen(STATE_DIGEST));
	unsigned long long digest = 0;
	char hex[17] = "";
	size_t left;

	if (!line)
		return 0;
	line += strlen(STATE_DIGEST);
	left = (size_t)(text + len - line);
	/* The buffer has no NUL: copy the hex digits out first. */
	memcpy(hex, line, left < 16 ? left : 16);
	if (sscanf(hex, "%16llx", &digest) != 1)
		digest = 0;
	return digest;
}

/* ---- committing ---- */

static void count_transaction(struct agent *a, double started, int err)
{
	double took = agent_now_s(CLOCK_MONOTONIC) - started;

	if (err) {
		a->stats.transaction_errors++;
		return;
	}
	a->stats.transactions++;
	a->stats.transaction_seconds_sum += took;
	a->stats.last_transaction_seconds = took;
}

/* After a failed kernel write the snapshot may no longer match the maps:
 * read it again so the next change starts from the truth. */
static void snapshot_reread(struct agent *a)
{
	struct lb_snapshot *fresh;

	if (lb_snapshot_read(a->maps, &fresh)) {
		log_error("agent", "cannot re-read the maps after a failed change");
		return;
	}
	lb_snapshot_take_flush(fresh, a->snap); /* flows still to remove stay so */
	lb_snapshot_free(a->snap);
	a->snap = fresh;
}

static bool keep_all_but(const struct sl_svc_key *key, void *ctx)
{
	return memcmp(key, ctx, sizeof(*key)) != 0;
}

/* Remove the flows a published change left to remove. The change stands
 * either way: a failure is logged and the flush is tried again with the
 * next change (the snapshot keeps what is pending). */
static void flows_flush(struct agent *a)
{
	int err = lb_snapshot_flush(a->maps, a->snap);

	if (err)
		log_warn("agent",
			 "removing the flows of removed backends failed: %s; retried "
			 "with the next change",
			 strerror(-err));
}

/* Sync service @svc's key to @svc (or, with @svc NULL, prune @key) and
 * commit. Returns 0 or -errno (the snapshot then no longer matches). */
static int service_commit(struct agent *a, const struct sl_svc_key *key,
			  const struct cfg_service *svc)
{
	struct apply_opts opts = apply_opts_of(a);
	struct lb_backend_spec *specs;
	struct sl_svc want;
	struct sl_svc_key gone = *key;
	int err;

	if (!svc)
		err = lb_services_prune(a->maps, a->snap, keep_all_but, &gone);
	else if (!(specs = apply_specs_of(svc, &opts)))
		return -ENOMEM;
	else {
		want = apply_settings_of(svc);
		err = lb_service_sync(a->maps, a->snap, key, &want, specs, svc->n_backends);
		free(specs);
	}
	return err < 0 ? err : lb_snapshot_commit(a->maps, a->snap);
}

/* After a failed commit: read the maps again and put service @key back as
 * the desired state has it (or remove it, when it is not there). */
static void service_restore(struct agent *a, const struct sl_svc_key *key)
{
	char text[ADDR_STR_MAX];

	snapshot_reread(a);
	if (service_commit(a, key, cfg_find_service(&a->desired, key))) {
		addr_format_service(key, text, sizeof(text));
		log_error("agent",
			  "putting %s back as it was failed; `sluice apply` or SIGHUP "
			  "publishes the whole state again",
			  text);
		snapshot_reread(a);
	}
}

/* Publish service @svc as it would be with @cand's backends. */
static int publish_service(struct agent *a, const struct cfg_service *cand, struct agent_error *e)
{
	char text[ADDR_STR_MAX];
	int err = service_commit(a, &cand->key, cand);

	if (!err) {
		flows_flush(a);
		return 0;
	}
	/* Refused before anything was written (no room, bad specs) or half
	 * way: either way, the maps get the desired service back. */
	service_restore(a, &cand->key);
	addr_format_service(&cand->key, text, sizeof(text));
	if (err == -ENOSPC)
		return agent_fail(e, 1, 0, "remove unused services or backends", "no room for %s",
				  text);
	if (err == -E2BIG)
		return agent_fail(
			e, 1, 0, "start sluiced with a larger --maglev-size",
			"%s would have more active backends than its Maglev table has slots", text);
	return agent_fail(e, 1, err, NULL, "publishing %s failed", text);
}

/* ---- the CLI's verbs ---- */

static struct cfg_service *service_or_fail(struct agent *a, const struct sl_svc_key *key,
					   struct agent_error *e)
{
	struct cfg_service *svc = cfg_find_service(&a->desired, key);
	char text[ADDR_STR_MAX];

	addr_format_service(key, text, sizeof(text));
	if (!svc) {
		agent_fail(e, 1, -ENOENT, "see `sluice service list` for the services",
			   "no service %s", text);
	} else if (agent_k8s_owns(a->k8s, key)) {
		/* The next translation would undo the change. */
		agent_fail(e, 1, -EPERM, "change the Kubernetes Service or its endpoints instead",
			   "service %s comes from Kubernetes (sluiced --k8s)", text);
		svc = NULL;
	}
	return svc;
}

/* Finish a verb: count it, and mark the state to be saved when it was
 * published (agent_save_state(), before the caller gets its reply). */
int agent_verb_done(struct agent *a, double started, int err)
{
	count_transaction(a, started, err);
	a->state_dirty |= !err;
	return err;
}

int agent_save_state(struct agent *a)
{
	int err;

	if (!a->state_dirty)
		return 0;
	err = state_save(a);
	a->state_dirty = err != 0;
	return err;
}

int agent_service_add(struct agent *a, const struct cfg_service *svc, struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);
	struct cfg_service cand = *svc;
	char text[ADDR_STR_MAX];
	int err;

	addr_format_service(&svc->key, text, sizeof(text));
	cand.backends = NULL;
	cand.n_backends = 0;
	if (cfg_find_service(&a->desired, &svc->key))
		err = agent_fail(e, 1, -EEXIST,
				 "change it with `sluice backend ...`, or delete it first",
				 "service %s exists", text);
	else if (svc->name[0] && !cfg_name_valid(svc->name))
		err = agent_fail(e, 2, 0, NULL, "name '%s': use A-Z a-z 0-9 . _ - (at most %d)",
				 svc->name, SL_SVC_NAME_MAX - 1);
	else if (svc->l7 && svc->key.proto != SL_PROTO_TCP)
		err = agent_fail(e, 2, 0, NULL, "--l7 http needs a TCP service, not %s", text);
	else if (svc->affinity_s > CFG_AFFINITY_MAX_S)
		err = agent_fail(e, 2, 0, NULL, "affinity %u s: the limit is %u", svc->affinity_s,
				 CFG_AFFINITY_MAX_S);
	else if (a->desired.n_services >= CFG_MAX_SERVICES)
		err = agent_fail(e, 1, -ENOSPC, "remove unused services", "no room for %s", text);
	else
		err = publish_service(a, &cand, e);
	/* Into the desired state once published (a failed publication puts
	 * the maps back to the desired state, which must not have it yet). */
	if (!err && !cfg_add_service(&a->desired, &cand)) {
		service_restore(a, &cand.key); /* not desired: taken out again */
		err = agent_fail(e, 1, -ENOMEM, NULL, "out of memory");
	}
	if (!err)
		log_info("agent", "service %s added", text);
	return agent_verb_done(a, started, err);
}

int agent_service_del(struct agent *a, const struct sl_svc_key *key, struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);
	struct cfg_service *svc = service_or_fail(a, key, e);
	struct sl_svc_key gone = *key; /* @key may point into what is removed */
	char text[ADDR_STR_MAX];
	bool checked;
	int err;

	if (!svc)
		return agent_verb_done(a, started, e->err);
	err = service_commit(a, &gone, NULL);
	if (err < 0) {
		service_restore(a, &gone);
		addr_format_service(key, text, sizeof(text));
		return agent_verb_done(a, started,
				       agent_fail(e, 1, err, NULL, "deleting %s failed", text));
	}
	flows_flush(a);
	checked = svc->health.type != CFG_HEALTH_NONE;
	cfg_remove_service(&a->desired, svc);
	if (checked)
		health_targets_update(a);
	addr_format_service(&gone, text, sizeof(text));
	log_info("agent", "service %s deleted", text);
	return agent_verb_done(a, started, 0);
}

/* A copy of @svc whose backends the caller may change; free(cand->backends). */
static int candidate_of(const struct cfg_service *svc, struct cfg_service *cand,
			struct agent_error *e)
{
	*cand = *svc;
	cand->backends = calloc(svc->n_backends + 2, sizeof(*cand->backends));
	if (!cand->backends)
		return agent_fail(e, 1, -ENOMEM, NULL, "out of memory");
	if (svc->n_backends)
		memcpy(cand->backends, svc->backends, svc->n_backends * sizeof(*svc->backends));
	return 0;
}

/* Publish @cand and, once published, make it the desired service @svc. */
static int backends_commit(struct agent *a, struct cfg_service *svc, struct cfg_service *cand,
			   struct agent_error *e)
{
	int err = publish_service(a, cand, e);

	if (err) {
		free(cand->backends);
		return err;
	}
	free(svc->backends);
	*svc = *cand;
	if (svc->health.type != CFG_HEALTH_NONE)
		health_targets_update(a);
	return 0;
}

static size_t configured_active(const struct cfg_service *svc)
{
	size_t n = 0;

	for (size_t i = 0; i < svc->n_backends; i++)
		n += svc->backends[i].weight > 0;
	return n;
}

enum backend_verb { BE_ADD, BE_DEL, BE_SET };

static const char *const verb_done_names[] = { "added to", "removed from", "set in" };

/* Validate one backend verb against the desired service. */
static int backend_check(const struct cfg_service *svc, const struct addr_port *addr,
			 enum backend_verb verb, uint32_t weight, struct agent_error *e)
{
	bool has = cfg_find_backend(svc, addr) != NULL;
	char text[ADDR_STR_MAX];

	addr_format_endpoint(addr, text, sizeof(text));
	if (addr->family != svc->key.family)
		return agent_fail(e, 1, -EAFNOSUPPORT,
				  "a service's backends have its address family (IPv4 or IPv6)",
				  "backend %s is not of the service's address family", text);
	if (weight > LB_WEIGHT_MAX)
		return agent_fail(e, 2, 0, NULL, "weight %u: the limit is %u", weight,
				  LB_WEIGHT_MAX);
	if (verb == BE_ADD && has)
		return agent_fail(e, 1, -EEXIST, "change its weight with `sluice backend set`",
				  "backend %s exists", text);
	if (verb != BE_ADD && !has)
		return agent_fail(e, 1, -ENOENT, "see `sluice service list` for the backends",
				  "no backend %s in the service", text);
	return 0;
}

static int backend_verb(struct agent *a, enum backend_verb verb, const struct sl_svc_key *key,
			const struct addr_port *addr, uint32_t weight, struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);
	struct cfg_service *svc = service_or_fail(a, key, e), cand;
	char svc_text[ADDR_STR_MAX], be_text[ADDR_STR_MAX];
	struct cfg_backend *be;
	int err;

	if (!svc)
		return agent_verb_done(a, started, e->err);
	err = backend_check(svc, addr, verb, weight, e);
	if (!err)
		err = candidate_of(svc, &cand, e);
	if (err)
		return agent_verb_done(a, started, err);
	be = cfg_find_backend(&cand, addr);
	if (verb == BE_ADD)
		cand.backends[cand.n_backends++] =
			(struct cfg_backend){ .addr = *addr, .weight = weight };
	else if (verb == BE_DEL)
		cfg_remove_backend(&cand, be);
	else
		be->weight = weight;
	/* Configured weights, not the health-adjusted ones: a backend down
	 * now needs its Maglev slots when it comes back. */
	if (configured_active(&cand) > a->maps->maglev_size) {
		free(cand.backends);
		addr_format_service(key, svc_text, sizeof(svc_text));
		return agent_verb_done(
			a, started,
			agent_fail(e, 1, 0, "start sluiced with a larger --maglev-size",
				   "%s would have more active backends than its Maglev "
				   "table has slots",
				   svc_text));
	}
	err = backends_commit(a, svc, &cand, e);
	if (!err) {
		addr_format_service(key, svc_text, sizeof(svc_text));
		addr_format_endpoint(addr, be_text, sizeof(be_text));
		log_info("agent", "backend %s %s %s (weight %u)", be_text, verb_done_names[verb],
			 svc_text, verb == BE_DEL ? 0 : weight);
	}
	return agent_verb_done(a, started, err);
}

int agent_backend_add(struct agent *a, const struct sl_svc_key *key, const struct addr_port *addr,
		      uint32_t weight, struct agent_error *e)
{
	return backend_verb(a, BE_ADD, key, addr, weight, e);
}

int agent_backend_del(struct agent *a, const struct sl_svc_key *key, const struct addr_port *addr,
		      struct agent_error *e)
{
	return backend_verb(a, BE_DEL, key, addr, 0, e);
}

int agent_backend_set(struct agent *a, const struct sl_svc_key *key, const struct addr_port *addr,
		      uint32_t weight, struct agent_error *e)
{
	return backend_verb(a, BE_SET, key, addr, weight, e);
}

/* ---- whole configs ---- */

/* Publish @cfg and make it the desired state (taking it over). On a kernel
 * failure half way, the previous desired state is published again. */
static int commit_config(struct agent *a, struct cfg_state *cfg, uint64_t digest,
			 struct apply_summary *sum, struct agent_error *e)
{
	struct apply_opts opts = apply_opts_of(a);
	struct agent_error policy_e;
	struct apply_summary undo;
	char what[256], again[256];
	int err;

	/* The policy first: it is one transaction of its own, so a refused
	 * policy leaves everything as it was. At start, a policy kept in the
	 * pins (no source to read it from) stays as it is. */
	bool restoring_pinned = a->policy.keep_pinned && !a->published;

	/* With --k8s, what Kubernetes gives joins every state published. */
	err = a->k8s ? agent_k8s_merge(a->k8s, cfg, &a->desired) : 0;
	if (err) {
		cfg_free(cfg);
		return agent_fail(e, 1, err, NULL, "out of memory");
	}
	/* A policy the same as the enforced one needs no compilation (with
	 * --k8s most publications change services only). */
	if (!restoring_pinned && !(a->published && !a->policy.keep_pinned &&
				   pol_state_same(&cfg->policy, &a->desired.policy)))
		err = agent_policy_enforce(a, &cfg->policy, e);
	if (err) {
		cfg_free(cfg);
		return err;
	}
	/* Probe targets first, so the weights published are those of the new
	 * checks' states (a check that changed keeps its backend's state). */
	health_targets_set(a, cfg, false);
	err = apply_config(a->maps, cfg, &opts, sum, what, sizeof(what));
	if (err) {
		if (a->policy.keep_pinned && a->published)
			log_error("agent", "the policy kept from the pins cannot be restored: the "
					   "new one stays enforced");
		else if (a->published && agent_policy_enforce(a, &a->desired.policy, &policy_e))
			log_error("agent", "restoring the previous policy failed: %s",
				  policy_e.message);
		snapshot_reread(a);
		opts.snap = a->snap;
		health_targets_update(a);
		/* At start there is no previous state to put back: the maps
		 * keep what they had (an empty one would delete it all). */
		if (a->published &&
		    apply_config(a->maps, &a->desired, &opts, &undo, again, sizeof(again)))
			log_error("agent", "restoring the previous state failed at %s", again);
		cfg_free(cfg);
		/* No room and too many backends are said in words: no errno text. */
		return agent_fail(
			e, 1, err == -ENOSPC || err == -E2BIG ? 0 : err,
			err == -ENOSPC	? "nothing was changed; remove services or backends"
			: err == -E2BIG ? "nothing was changed; start sluiced with a larger "
					  "--maglev-size"
					: "the previous state was restored",
			"%s", what);
	}
	cfg_free(&a->desired);
	a->desired = *cfg;
	if (a->k8s)
		agent_k8s_committed(a->k8s);
	a->config_digest = digest;
	a->policy.keep_pinned = restoring_pinned;
	a->published = true;
	return 0;
}

int agent_publish(struct agent *a, struct cfg_state *cfg, struct apply_summary *sum,
		  struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);

	return agent_verb_done(a, started, commit_config(a, cfg, a->config_digest, sum, e));
}

static int config_error(struct agent_error *e, int err, const struct cfg_error *cerr)
{
	char text[1024];

	cfg_error_format(cerr, text, sizeof(text));
	agent_fail(e, 1, err == -EINVAL ? 0 : err,
		   "nothing was changed; docs/config.md has the format", "invalid config: %s",
		   text);
	e->has_cfg = err == -EINVAL;
	e->cfg = *cerr;
	return err;
}

static int load_text(const char *name, const char *text, size_t len, struct cfg_state *cfg,
		     struct agent_error *e)
{
	struct cfg_error cerr;
	int err = cfg_load_buffer(name, text, len, cfg, &cerr);

	return err ? config_error(e, err, &cerr) : 0;
}

static void log_applied(const char *name, const struct apply_summary *sum)
{
	log_info("agent", "applied %s: %u services (%u changed, %u unchanged, %u deleted)", name,
		 sum->services, sum->changed, sum->unchanged, sum->deleted);
}

int agent_apply(struct agent *a, const char *name, const char *text, size_t len,
		struct apply_summary *sum, struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);
	struct cfg_state cfg;
	int err = load_text(name, text, len, &cfg, e);

	if (!err)
		err = commit_config(a, &cfg, a->config_digest, sum, e);
	if (!err)
		log_applied(name, sum);
	return agent_verb_done(a, started, err);
}

/* Read --config: its text (free it) and digest. */
static int config_read(struct agent *a, char **text, size_t *len, struct agent_error *e)
{
	int err = cfg_read_file(a->config_path, text, len);

	if (err)
		return agent_fail(e, 1, err, NULL, "cannot read the config %s", a->config_path);
	return 0;
}

int agent_reload(struct agent *a, struct apply_summary *sum, struct agent_error *e)
{
	double started = agent_now_s(CLOCK_MONOTONIC);
	struct cfg_state cfg;
	char *text = NULL;
	size_t len = 0;
	int err;

	if (!a->config_path)
		err = agent_fail(e, 1, -ENOENT, "start sluiced with --config FILE",
				 "sluiced has no config file to reload");
	else
		err = config_read(a, &text, &len, e);
	if (!err)
		err = load_text(a->config_path, text, len, &cfg, e);
	if (!err)
		err = commit_config(a, &cfg, cfg_digest(text, len), sum, e);
	free(text);
	if (!err)
		log_applied(a->config_path, sum);
	a->stats.reloads += !err;
	a->stats.reload_errors += !!err;
	return agent_verb_done(a, started, err);
}

/* ---- start-up ---- */

struct adopt_ctx {
	struct cfg_state *cfg;
	struct cfg_service **by_id; /* service id -> its entry, during the walk */
	int err;
};

static int adopt_service(const struct sl_svc_key *key, const struct sl_svc *svc, void *ctx)
{
	struct adopt_ctx *ac = ctx;
	struct cfg_service entry = { .key = *key,
				     .affinity_s = svc->affinity_timeout_s,
				     .l7 = svc->flags & SL_SVC_L7 };

	memcpy(entry.name, svc->name, sizeof(entry.name));
	entry.name[sizeof(entry.name) - 1] = '\0';
	/* Written by an older tool? The state file must read back: drop it. */
	if (!cfg_name_valid(entry.name)) {
		char text[ADDR_STR_MAX];

		addr_format_service(key, text, sizeof(text));
		log_warn("agent", "service %s: name '%s' is not valid in a config; dropped", text,
			 entry.name);
		entry.name[0] = '\0';
	}
	if (!cfg_add_service(ac->cfg, &entry))
		return -ENOMEM;
	return 0;
}

static int adopt_backend(__u32 id, const struct sl_backend *be, void *ctx)
{
	struct adopt_ctx *ac = ctx;
	struct cfg_backend entry = { .addr = { .port = be->port, .family = be->family },
				     .weight = be->weight };
	struct cfg_service *svc = be->svc_id < SL_MAX_SERVICES ? ac->by_id[be->svc_id] : NULL;

	(void)id;
	if (!svc)
		return 0; /* a slot of no live service: the next change frees it */
	memcpy(entry.addr.addr, be->addr, sizeof(entry.addr.addr));
	return cfg_add_backend(svc, &entry) ? 0 : -ENOMEM;
}

static int index_service(const struct sl_svc_key *key, const struct sl_svc *svc, void *ctx)
{
	struct adopt_ctx *ac = ctx;

	if (svc->id < SL_MAX_SERVICES)
		ac->by_id[svc->id] = cfg_find_service(ac->cfg, key);
	return 0;
}

/* The desired state when there is no saved state and no config: the
 * services and backends the pinned maps hold, as they are. */
static int adopt_maps(struct agent *a, struct cfg_state *cfg)
{
	struct adopt_ctx ac = { .cfg = cfg };
	int err;

	memset(cfg, 0, sizeof(*cfg));
	ac.by_id = calloc(SL_MAX_SERVICES, sizeof(*ac.by_id));
	if (!ac.by_id)
		return -ENOMEM;
	err = lb_service_foreach(a->maps, adopt_service, &ac);
	/* Pointers only once the array stops moving. */
	if (!err)
		err = lb_service_foreach(a->maps, index_service, &ac);
	if (!err)
		err = lb_backend_foreach(a->maps, 0, adopt_backend, &ac);
	free(ac.by_id);
	if (err)
		cfg_free(cfg);
	return err;
}

/* Which source the desired state comes from at start, read into @cfg. */
static int restore_source(struct agent *a, struct cfg_state *cfg, uint64_t *digest,
			  const char **source, struct agent_error *e)
{
	char *state = NULL, *config = NULL;
	size_t state_len = 0, config_len = 0;
	int err = 0;

	*digest = 0;
	if (a->state_path && cfg_read_file(a->state_path, &state, &state_len))
		state = NULL;
	if (a->config_path)
		err = config_read(a, &config, &config_len, e);
	if (err)
		goto free_text;
	if (config)
		*digest = cfg_digest(config, config_len);
	if (state && (!config || state_digest(state, state_len) == *digest)) {
		*source = a->state_path;
		err = load_text(a->state_path, state, state_len, cfg, e);
		a->policy.keep_pinned =
			a->policy.gen &&
			memmem(state, state_len, STATE_POLICY_PINNED, strlen(STATE_POLICY_PINNED));
	} else if (config) {
		if (state)
			log_info("agent", "%s changed since the state was saved: applying it",
				 a->config_path);
		*source = a->config_path;
		err = load_text(a->config_path, config, config_len, cfg, e);
	} else {
		*source = "the pinned maps";
		/* Compiled policy cannot be read back into rules: leave it be. */
		a->policy.keep_pinned = a->policy.gen != 0;
		if (a->policy.keep_pinned)
			log_info("policy",
				 "policy generation %u in the maps stays enforced until "
				 "the next policy change",
				 a->policy.gen);
		err = adopt_maps(a, cfg);
		if (err)
			agent_fail(e, 1, err, NULL, "cannot read the services in the maps");
	}
free_text:
	free(state);
	free(config);
	return err;
}

/* With --k8s, a start must not take away what the agent served before the
 * API server is heard from: the services and endpoints of the state file
 * (saved with the last translation; a config changed meanwhile replaces
 * it as the source) and the services the maps hold stay until the first
 * translation is published. */
static int keep_until_listed(struct agent *a, struct cfg_state *cfg, struct agent_error *e)
{
	struct cfg_state saved = { 0 }, pinned;
	struct cfg_error cerr;
	int err;

	if (a->state_path && !cfg_load_file(a->state_path, &saved, &cerr)) {
		err = cfg_add_missing_services(cfg, &saved);
		if (!err)
			err = cfg_add_missing_endpoints(cfg, &saved);
		cfg_free(&saved);
		if (err)
			goto fail;
	}
	err = adopt_maps(a, &pinned);
	if (!err)
		err = cfg_add_missing_services(cfg, &pinned);
	cfg_free(&pinned);
	if (!err)
		return 0;
fail:
	cfg_free(cfg);
	return agent_fail(e, 1, err, NULL, "cannot keep the services the agent served");
}

int agent_restore(struct agent *a, struct agent_error *e)
{
	struct apply_summary sum;
	struct cfg_state cfg;
	const char *source = "";
	uint64_t digest;
	int err = restore_source(a, &cfg, &digest, &source, e);

	if (!err && a->k8s)
		err = keep_until_listed(a, &cfg, e);
	/* Probe targets before publishing: a backend the maps hold down stays down. */
	if (!err)
		health_targets_set(a, &cfg, true);
	if (!err)
		err = commit_config(a, &cfg, digest, &sum, e);
	if (err)
		return err;
	log_info("agent", "desired state from %s: %u services (%u published, %u already so)",
		 source, sum.services, sum.changed, sum.unchanged);
	return state_save(a);
}

void agent_health_changed(struct agent *a, const struct health_event *ev)
{
	struct sl_svc_key *keys;

	a->stats.health_transitions++;
	for (size_t i = 0; i < a->n_health_pending; i++) {
		if (!memcmp(&a->health_pending[i], &ev->svc, sizeof(ev->svc)))
			return; /* its service is republished already */
	}
	keys = realloc(a->health_pending, (a->n_health_pending + 1) * sizeof(*keys));
	if (!keys) {
		log_error("agent", "no memory to note a health change");
		return;
	}
	a->health_pending = keys;
	a->health_pending[a->n_health_pending++] = ev->svc;
}

void agent_health_publish(struct agent *a)
{
	struct agent_error e;

	for (size_t i = 0; i < a->n_health_pending; i++) {
		const struct cfg_service *svc =
			cfg_find_service(&a->desired, &a->health_pending[i]);

		/* The desired service as it is: its weights follow the states. */
		if (svc && publish_service(a, svc, &e))
			log_error("agent", "applying a health change failed: %s", e.message);
	}
	a->n_health_pending = 0;
}
