/* What the proxy does with a request, decided from the config: which L7
 * service a connection is for (its original destination, or the
 * listener's default service), who the client is (the endpoint with its
 * address, the host, or the world, as the L3/L4 policy names them),
 * whether the service's access rules let the request through, which route
 * it takes and which backend group of the route's weighted split serves
 * it. A route table is built from one config for one worker and never
 * changes; a reload builds a new one. */
#ifndef SLUICE_ROUTER_H
#define SLUICE_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balancer.h"
#include "config.h"
#include "http1.h"

/* One L7 service: its config, and the runtime state of its groups. */
struct route_service {
	const struct cfg_service *cfg; /* in route_table.cfg */
	struct sl_svc_key key;
	const struct cfg_http_route *routes; /* cfg->http's, or &default_route */
	size_t n_routes;
	struct cfg_http_route default_route; /* no routes: everything to "default" */
	struct bal_group *groups; /* as cfg->http->groups; [0] "default" holds
				   * cfg->backends (one such group without http) */
	size_t n_groups;
	const struct cfg_http_access *access; /* cfg->http's, may be none */
	size_t n_access;
	bool access_default_deny; /* some allow rule exists */
	uint64_t *access_hits; /* per access rule, requests it decided */
	struct retry_budget budget;
};

/* Who sent a request, for access rules. */
enum route_peer_kind {
	ROUTE_PEER_ENDPOINT, /* a config endpoint's address: its labels apply */
	ROUTE_PEER_HOST, /* an address of this host (loopback included) */
	ROUTE_PEER_WORLD, /* anything else */
};

struct route_peer {
	enum route_peer_kind kind;
	const struct pol_labels *labels; /* ROUTE_PEER_ENDPOINT */
	struct pol_prefix addr; /* full prefix length; v4-mapped IPv6 given as IPv4 */
};

struct route_table {
	const struct cfg_state *cfg; /* the caller's: outlives the table */
	struct route_service *services; /* the l7 services, config order */
	size_t n_services;
	const struct pol_endpoint **endpoints; /* sorted by address, for peers */
	size_t n_endpoints;
	struct pol_prefix *local_addrs; /* this host's addresses at build time */
	size_t n_local;
};

/*
 * route_table_build() - build the runtime state of @cfg's L7 services
 * (svc->l7 set); @cfg must outlive @t, which points into it. @local /
 * @n_local: the host's own addresses (peers from them are "host"; loopback
 * always is). @seed varies the balancers' random choices. Services without
 * an http key get one round-robin "default" group of their backends and a
 * catch-all route with cfg->proxy's timeouts. Returns 0 or -ENOMEM (@t
 * zeroed).
 */
int route_table_build(struct route_table *t, const struct cfg_state *cfg,
		      const struct pol_prefix *local, size_t n_local, uint64_t seed);
void route_table_free(struct route_table *t);

/* The L7 service at @vip (a TCP VIP:port), or NULL. */
struct route_service *route_service_find(struct route_table *t, const struct sl_svc_key *vip);
/* The L7 service called @name, or NULL. */
struct route_service *route_service_by_name(struct route_table *t, const char *name);

/* Classify the client address @addr (v4-mapped IPv6 treated as IPv4). */
void route_peer_resolve(const struct route_table *t, const struct addr_port *addr,
			struct route_peer *out);

/*
 * route_access() - may @peer send @req to @svc? Deny rules first, then
 * allow rules; no allow rule in the service means allowed. Returns
 * POL_ALLOW or POL_DENY; *@rule_id is the deciding rule's id, 0 when no
 * rule decided (@rule_id may be NULL). Counts the deciding rule in
 * svc->access_hits. A CIDR `from` matches world peers only, a selector
 * endpoint peers only.
 */
enum pol_action route_access(struct route_service *svc, const struct route_peer *peer,
			     const struct http1_request *req, uint32_t *rule_id);

/*
 * route_match() - the first route of @svc that @req matches (host without
 * its port and case-insensitively, path, method, headers: a header match
 * holds when any field of that name has the value), or NULL (the proxy
 * answers 404).
 */
const struct cfg_http_route *route_match(const struct route_service *svc,
					 const struct http1_request *req);

/* The group of @route's weighted split that @random (uniform 32 bits)
 * lands on, as an index into svc->groups. */
uint32_t route_pick_split(const struct cfg_http_route *route, uint32_t random);

#endif
