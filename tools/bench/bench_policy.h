/* The policy xdp_bench loads to time the XDP program with policy on: a
 * node's worth of endpoints and rules, built in memory and published with
 * the agent's own compiler and publisher. */
#ifndef SLUICE_BENCH_POLICY_H
#define SLUICE_BENCH_POLICY_H

#include <stddef.h>

struct lb_maps;

#define BENCH_POL_ENDPOINTS 10000
#define BENCH_POL_RULES 1000

/* Endpoints 10.0.0.0/18 in 100 label sets, the client 198.18.0.2
 * (app=client), backends 198.18.1.(2 + i) for i < @backends
 * (app=backend); BENCH_POL_RULES rules among them, of which the ones the
 * benchmark's packets hit: app=client -> app=backend:8080 (established
 * flow), 198.19.128.0/17 -> app=backend:8080 (new flows), and deny rules
 * on app=backend that are looked up and miss. Returns 0 or -errno with
 * @why filled; @entries gets the compiled map entries. */
int bench_policy_load(struct lb_maps *maps, unsigned int backends, size_t *entries, char *why,
		      size_t len);

#endif
