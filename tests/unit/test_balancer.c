/* Unit tests for the proxy's balancer (user/sluice-proxy/balancer.c):
 * smooth weighted round robin's exact sequence, least-request's two
 * random choices, Maglev header hashing (stability, minimal disruption,
 * fallback), outlier ejection (threshold, reset, growing duration, cap,
 * max_ejection_percent, expiry, panic mode), avoid, the circuit breaker
 * limits and the retry budget. Groups are built from config structs. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "balancer.h"
#include "hash.h"

#define MAX_EPS 16
#define N_KEYS 2000

static struct cfg_backend backends[MAX_EPS];

/* A group config of @n endpoints 10.0.0.(i+1):8080 with @weights (NULL:
 * all 1), policy @lb, ejection after 3 errors for 1 s, up to 100%. */
static struct cfg_http_group group_cfg(size_t n, const uint32_t *weights, enum cfg_lb_policy lb)
{
	struct cfg_http_group c = { .name = "g", .lb = lb, .backends = backends, .n_backends = n };

	assert_true(n <= MAX_EPS);
	memset(backends, 0, sizeof(backends));
	for (size_t i = 0; i < n; i++) {
		backends[i].addr.family = SL_AF_INET;
		backends[i].addr.addr[0] = htonl(0x0a000001 + (uint32_t)i);
		backends[i].addr.port = htons(8080);
		backends[i].weight = weights ? weights[i] : 1;
	}
	if (lb == CFG_LB_HASH_HEADER)
		strcpy(c.hash_header, "x-user");
	c.consecutive_5xx = 3;
	c.base_ejection_ms = 1000;
	c.max_ejection_percent = 100;
	return c;
}

static void init_group(struct bal_group *g, size_t n, const uint32_t *weights,
		       enum cfg_lb_policy lb)
{
	struct cfg_http_group c = group_cfg(n, weights, lb);

	assert_int_equal(bal_group_init(g, &c, 42), 0);
}

/* Report @n gateway errors on @ep at @now; returns whether the last ejected. */
static bool fail_n(struct bal_group *g, int ep, unsigned int n, uint64_t now)
{
	bool ejected = false;

	for (unsigned int i = 0; i < n; i++)
		ejected = bal_report(g, ep, BAL_GATEWAY_ERROR, now);
	return ejected;
}

static uint64_t key_hash(unsigned int i)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "user-%u", i);

	return bal_hash_value(buf, (size_t)len);
}

/* ---- round robin ---- */

static void test_init_copies_config(void **state)
{
	struct cfg_http_group c = group_cfg(3, NULL, CFG_LB_ROUND_ROBIN);
	struct bal_group g;

	(void)state;
	c.max_connections = 4;
	c.max_pending = 5;
	c.max_requests = 6;
	assert_int_equal(bal_group_init(&g, &c, 0), 0);
	assert_string_equal(g.name, "g");
	assert_int_equal(g.n_eps, 3);
	assert_memory_equal(&g.eps[2].addr, &backends[2].addr, sizeof(g.eps[2].addr));
	assert_int_equal(g.max_connections, 4);
	assert_int_equal(g.max_pending, 5);
	assert_int_equal(g.max_requests, 6);
	assert_int_equal(g.consecutive_5xx, 3);
	assert_null(g.table);
	assert_true(g.rng != 0); /* seed 0 must not leave xorshift stuck at 0 */
	bal_group_free(&g);
	assert_null(g.eps);
}

static void test_wrr_smooth_sequence(void **state)
{
	static const uint32_t w[] = { 5, 1, 1 };
	static const int expect[] = { 0, 0, 1, 0, 2, 0, 0 }; /* nginx: a a b a c a a */
	struct bal_group g;

	(void)state;
	init_group(&g, 3, w, CFG_LB_ROUND_ROBIN);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < 7; i++)
			assert_int_equal(bal_pick(&g, 0, NULL, -1), expect[i]);
	}
	bal_group_free(&g);
}

static void test_wrr_weight_zero_never_picked(void **state)
{
	static const uint32_t w[] = { 1, 0, 1 };
	static const uint32_t none[] = { 0, 0 };
	unsigned int count[3] = { 0 };
	struct bal_group g;

	(void)state;
	init_group(&g, 3, w, CFG_LB_ROUND_ROBIN);
	for (int i = 0; i < 1000; i++)
		count[bal_pick(&g, 0, NULL, -1)]++;
	assert_int_equal(count[1], 0);
	assert_int_equal(count[0], 500);
	assert_int_equal(count[2], 500);
	bal_group_free(&g);

	init_group(&g, 2, none, CFG_LB_ROUND_ROBIN);
	assert_int_equal(bal_pick(&g, 0, NULL, -1), -EHOSTUNREACH);
	assert_int_equal(g.counters.no_endpoint, 1);
	bal_group_free(&g);

	init_group(&g, 0, NULL, CFG_LB_ROUND_ROBIN);
	assert_int_equal(bal_pick(&g, 0, NULL, -1), -EHOSTUNREACH);
	bal_group_free(&g);
}

/* ---- least request ---- */

static void test_least_request_prefers_idle(void **state)
{
	unsigned int count[3] = { 0 };
	struct bal_group g;

	(void)state;
	init_group(&g, 3, NULL, CFG_LB_LEAST_REQUEST);
	for (int i = 0; i < 10; i++)
		bal_attempt_start(&g, 0);
	assert_int_equal(g.eps[0].active, 10);
	for (int i = 0; i < 1000; i++)
		count[bal_pick(&g, 0, NULL, -1)]++;
	assert_true(count[0] < 50);
	/* The two idle ones share the rest about evenly (random choices). */
	assert_true(count[1] > 350 && count[2] > 350);
	for (int i = 0; i < 10; i++)
		bal_attempt_end(&g, 0);
	bal_attempt_end(&g, 0); /* an extra end must not wrap */
	assert_int_equal(g.eps[0].active, 0);
	bal_group_free(&g);
}

static void test_least_request_spreads_and_counts(void **state)
{
	unsigned int count[4] = { 0 };
	struct bal_group g;

	(void)state;
	init_group(&g, 4, NULL, CFG_LB_LEAST_REQUEST);
	/* Attempts held open: the picks must stay balanced. */
	for (int i = 0; i < 400; i++) {
		int ep = bal_pick(&g, 0, NULL, -1);

		count[ep]++;
		bal_attempt_start(&g, ep);
	}
	for (int i = 0; i < 4; i++)
		assert_true(count[i] >= 90 && count[i] <= 110);
	bal_group_free(&g);
}

static void test_least_request_ties(void **state)
{
	static const uint32_t heavier_second[] = { 1, 3 };
	unsigned int count[2] = { 0 };
	struct bal_group g;

	(void)state;
	/* Two endpoints: both are always the two choices. */
	init_group(&g, 2, heavier_second, CFG_LB_LEAST_REQUEST);
	for (int i = 0; i < 100; i++)
		assert_int_equal(bal_pick(&g, 0, NULL, -1), 1);
	bal_attempt_start(&g, 1);
	assert_int_equal(bal_pick(&g, 0, NULL, -1), 0);
	bal_group_free(&g);

	/* Equal: the first drawn wins, so neither is starved. */
	init_group(&g, 2, NULL, CFG_LB_LEAST_REQUEST);
	for (int i = 0; i < 1000; i++)
		count[bal_pick(&g, 0, NULL, -1)]++;
	assert_true(count[0] > 400 && count[1] > 400);
	bal_group_free(&g);
}

static void test_least_request_skips_ejected(void **state)
{
	struct bal_group g;

	(void)state;
	init_group(&g, 3, NULL, CFG_LB_LEAST_REQUEST);
	assert_true(fail_n(&g, 1, 3, 100));
	for (int i = 0; i < 500; i++)
		assert_int_not_equal(bal_pick(&g, 200, NULL, -1), 1);
	bal_group_free(&g);
}

/* ---- hash ---- */

static void test_hash_value(void **state)
{
	(void)state;
	assert_true(bal_hash_value("", 0) == hash_fmix64(HASH_FNV_OFFSET));
	assert_true(bal_hash_value("alice", 5) ==
		    hash_fmix64(hash_fnv1a(HASH_FNV_OFFSET, "alice", 5)));
	assert_true(bal_hash_value("alice", 5) == bal_hash_value("alice!", 5));
	assert_true(bal_hash_value("alice", 5) != bal_hash_value("alicf", 5));
}

static void test_hash_stable_and_spread(void **state)
{
	unsigned int count[5] = { 0 };
	struct bal_group g;

	(void)state;
	init_group(&g, 5, NULL, CFG_LB_HASH_HEADER);
	assert_non_null(g.table);
	for (unsigned int i = 0; i < N_KEYS; i++) {
		uint64_t h = key_hash(i);
		int ep = bal_pick(&g, 0, &h, -1);

		assert_true(ep >= 0 && ep < 5);
		assert_int_equal(bal_pick(&g, 0, &h, -1), ep);
		assert_int_equal(ep, (int)g.table[h % BAL_HASH_TABLE_SIZE]);
		count[ep]++;
	}
	for (int i = 0; i < 5; i++)
		assert_true(count[i] > N_KEYS / 5 * 8 / 10 && count[i] < N_KEYS / 5 * 12 / 10);
	bal_group_free(&g);
}

/* Removing one of five endpoints moves its keys and few others. */
static void test_hash_minimal_disruption(void **state)
{
	static struct bal_endpoint before[N_KEYS];
	struct cfg_http_group c = group_cfg(5, NULL, CFG_LB_HASH_HEADER);
	struct bal_group g;
	unsigned int moved = 0;

	(void)state;
	assert_int_equal(bal_group_init(&g, &c, 1), 0);
	for (unsigned int i = 0; i < N_KEYS; i++) {
		uint64_t h = key_hash(i);

		before[i] = g.eps[bal_pick(&g, 0, &h, -1)];
	}
	bal_group_free(&g);
	/* Drop endpoint 2; a different seed must not matter either. */
	memmove(&backends[2], &backends[3], 2 * sizeof(backends[0]));
	c.n_backends = 4;
	assert_int_equal(bal_group_init(&g, &c, 99), 0);
	for (unsigned int i = 0; i < N_KEYS; i++) {
		uint64_t h = key_hash(i);
		const struct bal_endpoint *now = &g.eps[bal_pick(&g, 0, &h, -1)];

		moved += memcmp(&now->addr, &before[i].addr, sizeof(now->addr)) != 0;
	}
	assert_true(moved < N_KEYS * 30 / 100);
	assert_true(moved > N_KEYS * 10 / 100); /* the removed one's keys did move */
	bal_group_free(&g);
}

static void test_hash_weight_zero_and_no_header(void **state)
{
	static const uint32_t w[] = { 1, 0, 1 };
	struct bal_group g;

	(void)state;
	init_group(&g, 3, w, CFG_LB_HASH_HEADER);
	for (unsigned int i = 0; i < N_KEYS; i++) {
		uint64_t h = key_hash(i);

		assert_int_not_equal(bal_pick(&g, 0, &h, -1), 1);
	}
	/* No header: round robin over the weighted ones. */
	assert_int_equal(bal_pick(&g, 0, NULL, -1), 0);
	assert_int_equal(bal_pick(&g, 0, NULL, -1), 2);
	assert_int_equal(bal_pick(&g, 0, NULL, -1), 0);
	bal_group_free(&g);
}

/* A key whose endpoint is ejected or avoided goes elsewhere; other keys
 * stay put. */
static void test_hash_fallback(void **state)
{
	struct bal_group g;
	uint64_t h0 = 0, h1 = 0;
	bool found0 = false, found1 = false;

	(void)state;
	init_group(&g, 4, NULL, CFG_LB_HASH_HEADER);
	for (unsigned int i = 0; i < N_KEYS && !(found0 && found1); i++) {
		uint64_t h = key_hash(i);
		int ep = bal_pick(&g, 0, &h, -1);

		if (ep == 0 && !found0) {
			h0 = h;
			found0 = true;
		} else if (ep == 1 && !found1) {
			h1 = h;
			found1 = true;
		}
	}
	assert_true(found0 && found1);
	assert_int_not_equal(bal_pick(&g, 0, &h0, 0), 0);
	assert_int_equal(bal_pick(&g, 0, &h1, 0), 1);
	assert_true(fail_n(&g, 0, 3, 10));
	for (int i = 0; i < 20; i++) {
		int ep = bal_pick(&g, 20, &h0, -1);

		assert_true(ep > 0 && ep < 4);
		assert_int_equal(bal_pick(&g, 20, &h1, -1), 1);
	}
	/* Back after the ejection: the key returns to its endpoint. */
	assert_int_equal(bal_pick(&g, 10 + 1000, &h0, -1), 0);
	bal_group_free(&g);
}

/* ---- outlier ejection ---- */

static void test_eject_after_threshold(void **state)
{
	struct bal_group g;

	(void)state;
	init_group(&g, 3, NULL, CFG_LB_ROUND_ROBIN);
	assert_false(fail_n(&g, 1, 2, 100));
	assert_int_equal(g.eps[1].consecutive_errors, 2);
	assert_int_equal(g.eps[1].ejected_until_ms, 0);
	assert_true(bal_report(&g, 1, BAL_CONNECT_FAILURE, 100));
	assert_int_equal(g.eps[1].ejected_until_ms, 1100);
	assert_int_equal(g.eps[1].times_ejected, 1);
	assert_int_equal(g.n_ejected, 1);
	assert_int_equal(g.counters.ejections, 1);
	for (int i = 0; i < 100; i++)
		assert_int_not_equal(bal_pick(&g, 500, NULL, -1), 1);
	/* Reports while out neither count twice nor eject again. */
	assert_false(fail_n(&g, 1, 5, 600));
	assert_int_equal(g.eps[1].consecutive_errors, 0);
	assert_int_equal(g.counters.ejections, 1);
	/* Back with a clean count: N-1 errors do not eject it again. */
	assert_false(fail_n(&g, 1, 2, 1100));
	assert_int_equal(g.n_ejected, 0);
	assert_true(bal_report(&g, 1, BAL_GATEWAY_ERROR, 1100));
	assert_int_equal(g.eps[1].ejected_until_ms, 1100 + 2000);
	bal_group_free(&g);
}

static void test_success_resets_count(void **state)
{
	static const enum bal_outcome errs[] = { BAL_RESET, BAL_TIMEOUT, BAL_GATEWAY_ERROR };
	struct bal_group g;

	(void)state;
	init_group(&g, 2, NULL, CFG_LB_ROUND_ROBIN);
	for (int round = 0; round < 5; round++) {
		assert_false(bal_report(&g, 0, errs[round % 3], 0));
		assert_false(bal_report(&g, 0, errs[(round + 1) % 3], 0));
		assert_false(bal_report(&g, 0, BAL_SUCCESS, 0));
		assert_int_equal(g.eps[0].consecutive_errors, 0);
	}
	assert_int_equal(g.n_ejected, 0);
	/* Every kind of failure counts. */
	assert_false(bal_report(&g, 0, BAL_RESET, 0));
	assert_false(bal_report(&g, 0, BAL_TIMEOUT, 0));
	assert_true(bal_report(&g, 0, BAL_CONNECT_FAILURE, 0));
	bal_group_free(&g);
}

static void test_ejection_off(void **state)
{
	struct cfg_http_group c = group_cfg(2, NULL, CFG_LB_ROUND_ROBIN);
	struct bal_group g;

	(void)state;
	c.consecutive_5xx = 0;
	assert_int_equal(bal_group_init(&g, &c, 1), 0);
	assert_false(fail_n(&g, 0, 100, 0));
	assert_int_equal(g.n_ejected, 0);
	bal_group_free(&g);
}

/* base x times ejected, capped at BAL_MAX_EJECTION_MS; expiry is exact. */
static void test_ejection_duration_grows_and_caps(void **state)
{
	static const uint64_t expect[] = { 100000, 200000, 300000, 300000, 300000 };
	struct cfg_http_group c = group_cfg(2, NULL, CFG_LB_ROUND_ROBIN);
	struct bal_group g;
	uint64_t now = 5;

	(void)state;
	c.base_ejection_ms = 100000;
	assert_int_equal(bal_group_init(&g, &c, 1), 0);
	for (size_t i = 0; i < 5; i++) {
		assert_true(fail_n(&g, 0, 3, now));
		assert_int_equal(g.eps[0].ejected_until_ms, now + expect[i]);
		bal_expire(&g, now + expect[i] - 1);
		assert_int_equal(g.n_ejected, 1);
		now += expect[i];
		bal_expire(&g, now);
		assert_int_equal(g.eps[0].ejected_until_ms, 0);
		assert_int_equal(g.n_ejected, 0);
	}
	assert_int_equal(g.eps[0].times_ejected, 5);
	bal_group_free(&g);
}

static void test_max_ejection_percent(void **state)
{
	struct cfg_http_group c = group_cfg(10, NULL, CFG_LB_ROUND_ROBIN);
	struct bal_group g;

	(void)state;
	c.max_ejection_percent = 20; /* 2 of 10 */
	assert_int_equal(bal_group_init(&g, &c, 1), 0);
	assert_true(fail_n(&g, 0, 3, 0));
	assert_true(fail_n(&g, 1, 3, 0));
	assert_false(fail_n(&g, 2, 3, 0));
	assert_false(bal_report(&g, 2, BAL_GATEWAY_ERROR, 0)); /* still refused */
	assert_int_equal(g.n_ejected, 2);
	assert_int_equal(g.counters.ejections, 2);
	/* Once one is back, the one still failing is ejected on its next error. */
	assert_true(bal_report(&g, 2, BAL_GATEWAY_ERROR, 1000));
	assert_int_equal(g.n_ejected, 1);
	bal_group_free(&g);

	c = group_cfg(4, NULL, CFG_LB_ROUND_ROBIN);
	c.max_ejection_percent = 10; /* floor(0.4) = 0, but at least one */
	assert_int_equal(bal_group_init(&g, &c, 1), 0);
	assert_true(fail_n(&g, 0, 3, 0));
	assert_false(fail_n(&g, 1, 3, 0));
	bal_group_free(&g);

	c = group_cfg(4, NULL, CFG_LB_ROUND_ROBIN);
	c.max_ejection_percent = 0; /* none */
	assert_int_equal(bal_group_init(&g, &c, 1), 0);
	assert_false(fail_n(&g, 0, 10, 0));
	assert_int_equal(g.n_ejected, 0);
	bal_group_free(&g);
}

static void test_expiry_puts_back(void **state)
{
	unsigned int count[2] = { 0 };
	struct bal_group g;

	(void)state;
	init_group(&g, 2, NULL, CFG_LB_ROUND_ROBIN);
	assert_true(fail_n(&g, 0, 3, 1000));
	assert_int_equal(bal_pick(&g, 1999, NULL, -1), 1);
	assert_int_equal(bal_pick(&g, 1999, NULL, -1), 1);
	assert_int_equal(g.n_ejected, 1);
	for (int i = 0; i < 10; i++)
		count[bal_pick(&g, 2000, NULL, -1)]++;
	assert_int_equal(g.n_ejected, 0);
	assert_int_equal(count[0], 5);
	assert_int_equal(count[1], 5);
	bal_group_free(&g);
}

/* All weighted endpoints out: all of them are eligible, not weight 0. */
static void test_panic_mode(void **state)
{
	static const uint32_t w[] = { 1, 1, 0 };
	unsigned int count[3] = { 0 };
	struct bal_group g;

	(void)state;
	init_group(&g, 3, w, CFG_LB_ROUND_ROBIN);
	assert_true(fail_n(&g, 0, 3, 0));
	assert_true(fail_n(&g, 1, 3, 0));
	assert_int_equal(g.n_ejected, 2);
	for (int i = 0; i < 100; i++)
		count[bal_pick(&g, 10, NULL, -1)]++;
	assert_int_equal(count[0], 50);
	assert_int_equal(count[1], 50);
	assert_int_equal(count[2], 0);
	assert_int_equal(g.counters.no_endpoint, 0);
	bal_group_free(&g);
}

static void test_avoid(void **state)
{
	struct bal_group g;

	(void)state;
	init_group(&g, 3, NULL, CFG_LB_ROUND_ROBIN);
	for (int i = 0; i < 100; i++)
		assert_int_not_equal(bal_pick(&g, 0, NULL, 0), 0);
	/* The only eligible one is returned even if avoided. */
	assert_true(fail_n(&g, 1, 3, 0));
	assert_true(fail_n(&g, 2, 3, 0));
	assert_int_equal(bal_pick(&g, 1, NULL, 0), 0);
	/* Out-of-range avoid is ignored. */
	assert_int_equal(bal_pick(&g, 1, NULL, 7), 0);
	bal_group_free(&g);

	init_group(&g, 1, NULL, CFG_LB_LEAST_REQUEST);
	assert_int_equal(bal_pick(&g, 0, NULL, 0), 0);
	bal_group_free(&g);

	init_group(&g, 3, NULL, CFG_LB_LEAST_REQUEST);
	for (int i = 0; i < 100; i++)
		assert_int_not_equal(bal_pick(&g, 0, NULL, 2), 2);
	bal_group_free(&g);
}

/* ---- circuit breaking ---- */

static void check_limit(struct bal_group *g, bool (*admit)(struct bal_group *),
			void (*done)(struct bal_group *), const uint32_t *count,
			const uint64_t *overflow)
{
	assert_true(admit(g));
	assert_true(admit(g));
	assert_int_equal(*count, 2);
	assert_false(admit(g));
	assert_false(admit(g));
	assert_int_equal(*count, 2);
	assert_int_equal(*overflow, 2);
	done(g);
	assert_int_equal(*count, 1);
	assert_true(admit(g));
	done(g);
	done(g);
	done(g); /* one too many: stays at 0 */
	assert_int_equal(*count, 0);
	assert_int_equal(*overflow, 2);
}

static void test_breaker_limits(void **state)
{
	struct cfg_http_group c = group_cfg(1, NULL, CFG_LB_ROUND_ROBIN);
	struct bal_group g;

	(void)state;
	c.max_connections = 2;
	c.max_pending = 2;
	c.max_requests = 2;
	assert_int_equal(bal_group_init(&g, &c, 1), 0);
	check_limit(&g, bal_connection_admit, bal_connection_done, &g.connections,
		    &g.counters.overflow_connections);
	check_limit(&g, bal_pending_admit, bal_pending_done, &g.pending,
		    &g.counters.overflow_pending);
	check_limit(&g, bal_request_admit, bal_request_done, &g.requests,
		    &g.counters.overflow_requests);
	/* Limits are independent. */
	assert_int_equal(g.counters.overflow_connections, 2);
	bal_group_free(&g);
}

static void test_breaker_unlimited(void **state)
{
	struct bal_group g;

	(void)state;
	init_group(&g, 1, NULL, CFG_LB_ROUND_ROBIN);
	for (int i = 0; i < 10000; i++) {
		assert_true(bal_connection_admit(&g));
		assert_true(bal_pending_admit(&g));
		assert_true(bal_request_admit(&g));
	}
	assert_int_equal(g.requests, 10000);
	assert_int_equal(g.counters.overflow_connections + g.counters.overflow_pending +
				 g.counters.overflow_requests,
			 0);
	bal_group_free(&g);
}

/* ---- retry budget ---- */

static void test_retry_budget_min_concurrent(void **state)
{
	struct retry_budget b;

	(void)state;
	retry_budget_init(&b, 20, 3);
	for (int i = 0; i < 10; i++)
		retry_budget_request_start(&b); /* 20% of 10 = 2 < 3 */
	for (int i = 0; i < 3; i++)
		assert_true(retry_budget_take(&b));
	assert_false(retry_budget_take(&b));
	assert_int_equal(b.exhausted, 1);
	assert_int_equal(b.active_retries, 3);
	retry_budget_put(&b);
	assert_true(retry_budget_take(&b));
	assert_false(retry_budget_take(&b));
	assert_int_equal(b.exhausted, 2);
}

static void test_retry_budget_percent(void **state)
{
	struct retry_budget b;
	int taken = 0;

	(void)state;
	retry_budget_init(&b, 20, 3);
	for (int i = 0; i < 100; i++)
		retry_budget_request_start(&b);
	while (retry_budget_take(&b))
		taken++;
	assert_int_equal(taken, 20);
	/* Fewer requests in flight: no new retry until retries drop below. */
	for (int i = 0; i < 50; i++)
		retry_budget_request_end(&b); /* limit now 10 */
	assert_false(retry_budget_take(&b));
	for (int i = 0; i < 10; i++)
		retry_budget_put(&b);
	assert_false(retry_budget_take(&b)); /* 10 in flight = limit */
	retry_budget_put(&b);
	assert_true(retry_budget_take(&b));
	/* Ends and puts never wrap below 0. */
	for (int i = 0; i < 100; i++) {
		retry_budget_request_end(&b);
		retry_budget_put(&b);
	}
	assert_int_equal(b.active_requests, 0);
	assert_int_equal(b.active_retries, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_copies_config),
		cmocka_unit_test(test_wrr_smooth_sequence),
		cmocka_unit_test(test_wrr_weight_zero_never_picked),
		cmocka_unit_test(test_least_request_prefers_idle),
		cmocka_unit_test(test_least_request_spreads_and_counts),
		cmocka_unit_test(test_least_request_ties),
		cmocka_unit_test(test_least_request_skips_ejected),
		cmocka_unit_test(test_hash_value),
		cmocka_unit_test(test_hash_stable_and_spread),
		cmocka_unit_test(test_hash_minimal_disruption),
		cmocka_unit_test(test_hash_weight_zero_and_no_header),
		cmocka_unit_test(test_hash_fallback),
		cmocka_unit_test(test_eject_after_threshold),
		cmocka_unit_test(test_success_resets_count),
		cmocka_unit_test(test_ejection_off),
		cmocka_unit_test(test_ejection_duration_grows_and_caps),
		cmocka_unit_test(test_max_ejection_percent),
		cmocka_unit_test(test_expiry_puts_back),
		cmocka_unit_test(test_panic_mode),
		cmocka_unit_test(test_avoid),
		cmocka_unit_test(test_breaker_limits),
		cmocka_unit_test(test_breaker_unlimited),
		cmocka_unit_test(test_retry_budget_min_concurrent),
		cmocka_unit_test(test_retry_budget_percent),
	};

	return cmocka_run_group_tests_name("balancer", tests, NULL, NULL);
}
