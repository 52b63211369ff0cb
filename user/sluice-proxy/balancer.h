/* Choosing an upstream endpoint within a backend group, and the
 * protections around it: load balancing (weighted round robin,
 * least-request by two random choices, Maglev hash of a header), circuit
 * breaking (connections, pending and active requests per group), outlier
 * ejection (consecutive gateway errors) and the retry budget. Pure logic
 * with no I/O: each proxy worker owns its own groups, so nothing here
 * locks. Times are CLOCK_MONOTONIC milliseconds passed in by the caller. */
#ifndef SLUICE_BALANCER_H
#define SLUICE_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"

#define BAL_MAX_EJECTION_MS 300000u
#define BAL_HASH_TABLE_SIZE 65537u /* Maglev slots for CFG_LB_HASH_HEADER */

struct bal_endpoint {
	struct addr_port addr;
	uint32_t weight; /* 0: never picked */
	int64_t current; /* smooth weighted round robin state */
	uint32_t active; /* attempts in flight (least-request) */
	uint32_t consecutive_errors; /* 5xx, connect failures, resets in a row */
	uint32_t times_ejected;
	uint64_t ejected_until_ms; /* 0: in rotation */
};

/* Counters a group keeps for metrics; only ever incremented. */
struct bal_counters {
	uint64_t ejections; /* outlier ejections */
	uint64_t overflow_connections; /* circuit breaker refusals, by limit */
	uint64_t overflow_pending;
	uint64_t overflow_requests;
	uint64_t no_endpoint; /* bal_pick() found nothing to pick */
};

struct bal_group {
	char name[CFG_HTTP_NAME_MAX];
	enum cfg_lb_policy lb;
	char hash_header[CFG_HTTP_HNAME_MAX];
	struct bal_endpoint *eps;
	size_t n_eps;
	uint32_t *table; /* hash: BAL_HASH_TABLE_SIZE endpoint indexes (UINT32_MAX:
			  * no endpoint has weight), NULL otherwise */
	/* circuit breaker limits (0 = none) and what they count */
	uint32_t max_connections, max_pending, max_requests;
	uint32_t connections, pending, requests;
	/* outlier ejection settings (consecutive_5xx 0 = off) */
	uint32_t consecutive_5xx, base_ejection_ms, max_ejection_percent;
	uint32_t n_ejected;
	uint64_t rng; /* xorshift state, never 0 */
	struct bal_counters counters;
};

/*
 * bal_group_init() - build @g from a config group: endpoints in config
 * order, the Maglev table when the policy hashes (weights as shares),
 * @seed for the random choices (any value). Returns 0 or -ENOMEM (@g is
 * then zeroed and needs no bal_group_free()).
 */
int bal_group_init(struct bal_group *g, const struct cfg_http_group *cfg, uint64_t seed);
void bal_group_free(struct bal_group *g);

/*
 * bal_pick() - the endpoint for a new attempt, as an index into g->eps.
 * @hash: the hash of the group's hash header, NULL when the request has
 * none (then round robin). @avoid: an endpoint to skip if any other is
 * eligible (the one that just failed; -1 for none). Ejected endpoints and
 * weight 0 are skipped; when every endpoint with weight is ejected, all of
 * them are eligible again (panic mode, as Envoy: better than failing
 * everything). Least-request draws two distinct eligible endpoints: fewer
 * attempts in flight wins, then the higher weight, then the first drawn.
 * A hashed endpoint that is not eligible sends its keys round robin.
 * Returns -EHOSTUNREACH (counted in no_endpoint) when no endpoint has
 * weight.
 */
int bal_pick(struct bal_group *g, uint64_t now_ms, const uint64_t *hash, int avoid);

/* Attempts in flight on an endpoint, for least-request. */
void bal_attempt_start(struct bal_group *g, int ep);
void bal_attempt_end(struct bal_group *g, int ep);

enum bal_outcome {
	BAL_SUCCESS, /* a response below 500 (or 500/501/505: the app's own error) */
	BAL_GATEWAY_ERROR, /* 502, 503 or 504 from the upstream */
	BAL_CONNECT_FAILURE, /* refused, unreachable or timed out */
	BAL_RESET, /* closed or reset before a whole response head */
	BAL_TIMEOUT, /* no response head within the request timeout */
};

/*
 * bal_report() - the outcome of an attempt on @ep. Anything but success
 * counts towards outlier ejection; when consecutive errors reach the
 * group's threshold and fewer than max_ejection_percent of the endpoints
 * (at least one) are out, @ep is ejected until now + base_ejection_ms x
 * times ejected (at most BAL_MAX_EJECTION_MS). Success clears the count;
 * so does an ejection, and errors reported while @ep is ejected are not
 * counted. max_ejection_percent 0 ejects nothing.
 * Returns true when this report ejected @ep.
 */
bool bal_report(struct bal_group *g, int ep, enum bal_outcome outcome, uint64_t now_ms);

/* Put endpoints whose ejection has expired back (bal_pick() also does). */
void bal_expire(struct bal_group *g, uint64_t now_ms);

/* Circuit breaking. Each *_admit() returns true and counts one, or false
 * (limit reached, the overflow counter incremented); each admitted one is
 * released once with *_done(). */
bool bal_connection_admit(struct bal_group *g);
void bal_connection_done(struct bal_group *g);
bool bal_pending_admit(struct bal_group *g);
void bal_pending_done(struct bal_group *g);
bool bal_request_admit(struct bal_group *g);
void bal_request_done(struct bal_group *g);

/* Retry budget of a service (Envoy's retry_budget): a retry may start
 * while retries in flight stay below max(min_concurrent, percent of
 * requests in flight). */
struct retry_budget {
	uint32_t percent;
	uint32_t min_concurrent;
	uint32_t active_requests;
	uint32_t active_retries;
	uint64_t exhausted; /* retries refused, for metrics */
};

void retry_budget_init(struct retry_budget *b, uint32_t percent, uint32_t min_concurrent);
void retry_budget_request_start(struct retry_budget *b);
void retry_budget_request_end(struct retry_budget *b);
/* True (and one retry counted in flight) if a retry may start now. */
bool retry_budget_take(struct retry_budget *b);
void retry_budget_put(struct retry_budget *b);

/* The hash bal_pick() takes: 64-bit FNV-1a then fmix64 of the value. */
uint64_t bal_hash_value(const char *value, size_t len);

#endif
