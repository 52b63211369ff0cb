/* Upstream endpoint choice for one backend group of one proxy worker:
 * smooth weighted round robin (nginx), least-request by two random
 * choices, a Maglev table for header hashing; and the protections around
 * them (outlier ejection with panic mode, circuit breaker counters, the
 * retry budget). No I/O, no locks: each worker owns its groups. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "hash.h"
#include "maglev.h"

#define BAL_RNG_FALLBACK 0x9e3779b97f4a7c15ull /* xorshift must not start at 0 */
#define BAL_NO_SLOT UINT32_MAX /* a Maglev slot no endpoint holds */

/* xorshift64*: cheap, good enough for spreading load, never returns to 0. */
static uint64_t bal_rand(struct bal_group *g)
{
	uint64_t x = g->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	g->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

static bool ep_valid(const struct bal_group *g, int ep)
{
	return ep >= 0 && (size_t)ep < g->n_eps;
}

/*
 * Build the Maglev table of a hashing group. Endpoint i is Maglev id i + 1
 * (ids may not be 0); the table stores indexes, BAL_NO_SLOT where nothing
 * has weight. The key is the 18 bytes addr..port of struct addr_port, so the
 * table depends on the endpoints, not on their order in the config.
 */
static int bal_table_build(struct bal_group *g)
{
	struct maglev_backend *in;
	uint32_t i;
	int err;

	g->table = calloc(BAL_HASH_TABLE_SIZE, sizeof(*g->table));
	in = calloc(g->n_eps ? g->n_eps : 1, sizeof(*in));
	if (!g->table || !in) {
		free(in);
		return -ENOMEM;
	}
	for (i = 0; i < g->n_eps; i++) {
		in[i] = (struct maglev_backend){ .id = i + 1,
						 .weight = g->eps[i].weight,
						 .key = g->eps[i].addr.addr,
						 .key_len = 18 };
	}
	err = maglev_build(in, g->n_eps, g->table, BAL_HASH_TABLE_SIZE);
	free(in);
	if (err)
		return err;
	for (i = 0; i < BAL_HASH_TABLE_SIZE; i++)
		g->table[i] = g->table[i] == MAGLEV_EMPTY ? BAL_NO_SLOT : g->table[i] - 1;
	return 0;
}

int bal_group_init(struct bal_group *g, const struct cfg_http_group *cfg, uint64_t seed)
{
	int err = -ENOMEM;

	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", cfg->name);
	snprintf(g->hash_header, sizeof(g->hash_header), "%s", cfg->hash_header);
	g->lb = cfg->lb;
	g->max_connections = cfg->max_connections;
	g->max_pending = cfg->max_pending;
	g->max_requests = cfg->max_requests;
	g->consecutive_5xx = cfg->consecutive_5xx;
	g->base_ejection_ms = cfg->base_ejection_ms;
	g->max_ejection_percent = cfg->max_ejection_percent;
	g->rng = hash_fmix64(seed) ?: BAL_RNG_FALLBACK;
	if (cfg->n_backends) {
		g->eps = calloc(cfg->n_backends, sizeof(*g->eps));
		if (!g->eps)
			goto free_group;
	}
	g->n_eps = cfg->n_backends;
	for (size_t i = 0; i < g->n_eps; i++) {
		g->eps[i].addr = cfg->backends[i].addr;
		g->eps[i].weight = cfg->backends[i].weight;
	}
	if (g->lb == CFG_LB_HASH_HEADER) {
		err = bal_table_build(g);
		if (err)
			goto free_group;
	}
	return 0;

free_group:
	bal_group_free(g);
	return err;
}

void bal_group_free(struct bal_group *g)
{
	free(g->eps);
	free(g->table);
	memset(g, 0, sizeof(*g));
}

/* Which endpoints a pick may return, fixed once per pick. */
struct bal_filter {
	bool panic; /* every weighted endpoint is ejected: ignore ejections */
	int skip; /* the endpoint to avoid, -1 for none */
};

static bool bal_eligible(const struct bal_group *g, const struct bal_filter *f, size_t i)
{
	const struct bal_endpoint *ep = &g->eps[i];

	if (!ep->weight || (int)i == f->skip)
		return false;
	return f->panic || !ep->ejected_until_ms;
}

/*
 * Decide panic mode and whether @avoid can be skipped. Returns false when
 * no endpoint has weight (nothing can ever be picked).
 */
static bool bal_filter_init(const struct bal_group *g, int avoid, struct bal_filter *f)
{
	size_t weighted = 0, in_rotation = 0, others = 0;

	for (size_t i = 0; i < g->n_eps; i++) {
		if (!g->eps[i].weight)
			continue;
		weighted++;
		in_rotation += !g->eps[i].ejected_until_ms;
	}
	if (!weighted)
		return false;
	f->panic = !in_rotation;
	f->skip = -1;
	if (!ep_valid(g, avoid))
		return true;
	for (size_t i = 0; i < g->n_eps; i++)
		others += (int)i != avoid && bal_eligible(g, f, i);
	/* The failed endpoint only when nothing else is left. */
	if (others)
		f->skip = avoid;
	return true;
}

/* nginx's smooth weighted round robin over the eligible endpoints: each
 * earns its weight, the richest is picked and pays the total. Spreads a
 * heavy endpoint's turns out (a a b a c a a for 5:1:1) instead of bursts. */
static int bal_pick_rr(struct bal_group *g, const struct bal_filter *f)
{
	int64_t total = 0;
	int best = -1;

	for (size_t i = 0; i < g->n_eps; i++) {
		struct bal_endpoint *ep = &g->eps[i];

		if (!bal_eligible(g, f, i))
			continue;
		ep->current += ep->weight;
		total += ep->weight;
		if (best < 0 || ep->current > g->eps[best].current)
			best = (int)i;
	}
	if (best >= 0)
		g->eps[best].current -= total;
	return best;
}

/* The @k-th eligible endpoint (0-based). */
static int bal_nth_eligible(const struct bal_group *g, const struct bal_filter *f, size_t k)
{
	for (size_t i = 0; i < g->n_eps; i++) {
		if (bal_eligible(g, f, i) && k-- == 0)
			return (int)i;
	}
	return -1;
}

/* Two distinct random eligible endpoints; the one with fewer attempts in
 * flight wins, then the heavier, then the first drawn (not the lower
 * index: that would starve the last endpoint when traffic is sequential).
 * Two choices avoid the herd that always taking the global minimum
 * causes across workers. */
static int bal_pick_least(struct bal_group *g, const struct bal_filter *f)
{
	size_t m = 0, ka, kb;
	const struct bal_endpoint *a, *b;
	int ia, ib;

	for (size_t i = 0; i < g->n_eps; i++)
		m += bal_eligible(g, f, i);
	if (m == 0)
		return -1;
	ka = bal_rand(g) % m;
	if (m == 1)
		return bal_nth_eligible(g, f, ka);
	kb = (ka + 1 + bal_rand(g) % (m - 1)) % m;
	ia = bal_nth_eligible(g, f, ka);
	ib = bal_nth_eligible(g, f, kb);
	a = &g->eps[ia];
	b = &g->eps[ib];
	if (a->active != b->active)
		return a->active < b->active ? ia : ib;
	return b->weight > a->weight ? ib : ia;
}

int bal_pick(struct bal_group *g, uint64_t now_ms, const uint64_t *hash, int avoid)
{
	struct bal_filter f;
	int ep = -1;

	bal_expire(g, now_ms);
	if (!bal_filter_init(g, avoid, &f)) {
		g->counters.no_endpoint++;
		return -EHOSTUNREACH;
	}
	if (g->lb == CFG_LB_HASH_HEADER && hash && g->table) {
		uint32_t slot = g->table[*hash % BAL_HASH_TABLE_SIZE];

		/* Keys of an ejected or avoided endpoint go round robin, the
		 * rest keep their endpoint. */
		if (slot != BAL_NO_SLOT && bal_eligible(g, &f, slot))
			return (int)slot;
	} else if (g->lb == CFG_LB_LEAST_REQUEST) {
		ep = bal_pick_least(g, &f);
	}
	if (ep < 0)
		ep = bal_pick_rr(g, &f);
	if (ep < 0) {
		g->counters.no_endpoint++;
		return -EHOSTUNREACH;
	}
	return ep;
}

void bal_attempt_start(struct bal_group *g, int ep)
{
	if (ep_valid(g, ep))
		g->eps[ep].active++;
}

void bal_attempt_end(struct bal_group *g, int ep)
{
	if (ep_valid(g, ep) && g->eps[ep].active)
		g->eps[ep].active--;
}

/* How many endpoints may be ejected at once: a percentage of the group,
 * rounded down but at least one, and none when the percentage is 0. */
static size_t bal_max_ejected(const struct bal_group *g)
{
	size_t n;

	if (!g->max_ejection_percent)
		return 0;
	n = g->n_eps * g->max_ejection_percent / 100;
	return n ? n : 1;
}

static void bal_eject(struct bal_group *g, struct bal_endpoint *ep, uint64_t now_ms)
{
	uint64_t ms;

	ep->times_ejected++;
	ms = (uint64_t)g->base_ejection_ms * ep->times_ejected;
	if (ms > BAL_MAX_EJECTION_MS)
		ms = BAL_MAX_EJECTION_MS;
	/* 0 means "in rotation": an ejection must be non-zero even at time 0. */
	ep->ejected_until_ms = (now_ms + ms) ?: 1;
	/* A returning endpoint starts with a clean slate. */
	ep->consecutive_errors = 0;
	g->n_ejected++;
	g->counters.ejections++;
}

bool bal_report(struct bal_group *g, int ep, enum bal_outcome outcome, uint64_t now_ms)
{
	struct bal_endpoint *e;

	if (!ep_valid(g, ep))
		return false;
	e = &g->eps[ep];
	if (outcome == BAL_SUCCESS) {
		e->consecutive_errors = 0;
		return false;
	}
	bal_expire(g, now_ms);
	/* Already out (a late report, or panic mode): not held against it
	 * when it comes back. */
	if (e->ejected_until_ms)
		return false;
	e->consecutive_errors++;
	if (!g->consecutive_5xx || e->consecutive_errors < g->consecutive_5xx ||
	    g->n_ejected >= bal_max_ejected(g))
		return false;
	bal_eject(g, e, now_ms);
	return true;
}

void bal_expire(struct bal_group *g, uint64_t now_ms)
{
	if (!g->n_ejected)
		return;
	for (size_t i = 0; i < g->n_eps; i++) {
		struct bal_endpoint *ep = &g->eps[i];

		if (ep->ejected_until_ms && ep->ejected_until_ms <= now_ms) {
			ep->ejected_until_ms = 0;
			g->n_ejected--;
		}
	}
}

/* One circuit breaker limit: count one more unless @max (0: none) is
 * reached, in which case count the refusal. */
static bool bal_admit(uint32_t *count, uint32_t max, uint64_t *overflow)
{
	if (max && *count >= max) {
		(*overflow)++;
		return false;
	}
	(*count)++;
	return true;
}

static void bal_release(uint32_t *count)
{
	if (*count)
		(*count)--;
}

bool bal_connection_admit(struct bal_group *g)
{
	return bal_admit(&g->connections, g->max_connections, &g->counters.overflow_connections);
}

void bal_connection_done(struct bal_group *g)
{
	bal_release(&g->connections);
}

bool bal_pending_admit(struct bal_group *g)
{
	return bal_admit(&g->pending, g->max_pending, &g->counters.overflow_pending);
}

void bal_pending_done(struct bal_group *g)
{
	bal_release(&g->pending);
}

bool bal_request_admit(struct bal_group *g)
{
	return bal_admit(&g->requests, g->max_requests, &g->counters.overflow_requests);
}

void bal_request_done(struct bal_group *g)
{
	bal_release(&g->requests);
}

void retry_budget_init(struct retry_budget *b, uint32_t percent, uint32_t min_concurrent)
{
	memset(b, 0, sizeof(*b));
	b->percent = percent;
	b->min_concurrent = min_concurrent;
}

void retry_budget_request_start(struct retry_budget *b)
{
	b->active_requests++;
}

void retry_budget_request_end(struct retry_budget *b)
{
	if (b->active_requests)
		b->active_requests--;
}

bool retry_budget_take(struct retry_budget *b)
{
	uint64_t limit = (uint64_t)b->active_requests * b->percent / 100;

	if (limit < b->min_concurrent)
		limit = b->min_concurrent;
	if (b->active_retries >= limit) {
		b->exhausted++;
		return false;
	}
	b->active_retries++;
	return true;
}

void retry_budget_put(struct retry_budget *b)
{
	if (b->active_retries)
		b->active_retries--;
}

uint64_t bal_hash_value(const char *value, size_t len)
{
	return hash_fmix64(hash_fnv1a(HASH_FNV_OFFSET, value, len));
}
