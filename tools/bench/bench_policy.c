/* A large policy for xdp_bench (bench_policy.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_policy.h"
#include "policy.h"
#include "policy_maps.h"

/* Endpoint @i of @n: 10.0.x.y, or the client, or a backend. */
static int endpoint_of(struct pol_endpoint *ep, unsigned int i, unsigned int backends, char *why,
		       size_t len)
{
	char addr[32], labels[64];

	if (i < BENCH_POL_ENDPOINTS) {
		snprintf(addr, sizeof(addr), "10.0.%u.%u", i / 256, i % 256);
		snprintf(labels, sizeof(labels), "app=svc%u,tier=t%u", i % 100, i % 3);
	} else if (i == BENCH_POL_ENDPOINTS) {
		snprintf(addr, sizeof(addr), "198.18.0.2");
		snprintf(labels, sizeof(labels), "app=client");
	} else {
		snprintf(addr, sizeof(addr), "198.18.1.%u", 2 + (i - BENCH_POL_ENDPOINTS - 1));
		snprintf(labels, sizeof(labels), "app=backend");
	}
	(void)backends;
	memset(ep, 0, sizeof(*ep));
	return pol_prefix_parse(addr, false, &ep->addr, why, len)
		       ?: pol_labels_parse(labels, &ep->labels, why, len);
}

/* Rule @i: the two the packets hit first, then a mix of allow rules among
 * the services and deny rules on the backends (port 9000: never hit). */
static int rule_of(struct pol_rule *r, unsigned int i, char *why, size_t len)
{
	char from[64], to[64], ports[32];

	memset(r, 0, sizeof(*r));
	r->id = i + 1;
	r->action = POL_ALLOW;
	r->protos = POL_TCP;
	if (i == 0) {
		snprintf(from, sizeof(from), "app=client");
		snprintf(to, sizeof(to), "app=backend");
		snprintf(ports, sizeof(ports), "8080");
	} else if (i == 1) {
		snprintf(from, sizeof(from), "198.19.128.0/17");
		snprintf(to, sizeof(to), "app=backend");
		snprintf(ports, sizeof(ports), "8080");
	} else if (i % 10 == 0) {
		r->action = POL_DENY;
		snprintf(from, sizeof(from), "app=svc%u", i % 100);
		snprintf(to, sizeof(to), "app=backend");
		snprintf(ports, sizeof(ports), "9000");
	} else {
		snprintf(from, sizeof(from), "app=svc%u", i % 100);
		snprintf(to, sizeof(to), i % 7 ? "app=svc%u" : "app=backend", (i * 7) % 100);
		snprintf(ports, sizeof(ports), "%u-%u", 1000 + i, 1010 + i);
	}
	return pol_peer_parse(from, &r->from, why, len) ?:
		       pol_selector_parse(to, &r->to, why, len) ?:
		       pol_ports_parse(ports, r->ports, &r->n_ports, why, len);
}

int bench_policy_load(struct lb_maps *maps, unsigned int backends, size_t *entries, char *why,
		      size_t len)
{
	size_t n_eps = BENCH_POL_ENDPOINTS + 1 + backends;
	struct pol_endpoint *eps = calloc(n_eps, sizeof(*eps));
	struct pol_rule *rules = calloc(BENCH_POL_RULES, sizeof(*rules));
	struct pol_ruleset set = { .name = "bench", .rules = rules, .n_rules = BENCH_POL_RULES };
	struct pol_state st = {
		.endpoints = eps, .n_endpoints = n_eps, .rulesets = &set, .n_rulesets = 1
	};
	struct pol_compiled c = {};
	uint32_t gen;
	int err = eps && rules ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < n_eps; i++)
		err = endpoint_of(&eps[i], i, backends, why, len);
	for (unsigned int i = 0; !err && i < BENCH_POL_RULES; i++)
		err = rule_of(&rules[i], i, why, len);
	if (!err)
		err = pol_state_validate(&st, why, len) ?: pol_compile(&st, NULL, &c, why, len);
	if (!err)
		err = pol_publish(maps, &c, &gen, why, len);
	*entries = c.n_rules + c.n_ipcache + c.n_dsts;
	pol_compiled_free(&c);
	free(rules);
	free(eps);
	return err;
}
