/* The route table of one proxy worker: the L7 services of a config with
 * their balancer groups, client classification against the policy's
 * endpoints, the services' access rules, route matching and the weighted
 * split. Built once per config and read-only afterwards but for the
 * balancer state and the access hit counters, which the worker owns. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "router.h"

/* Outlier ejection of a group nobody configured (Envoy's defaults). */
#define ROUTE_DEF_CONSECUTIVE_5XX 5
#define ROUTE_DEF_EJECTION_MS 30000
#define ROUTE_DEF_EJECTION_PERCENT 50
/* Retry budget of a service without an http key. */
#define ROUTE_DEF_BUDGET_PERCENT 20
#define ROUTE_DEF_BUDGET_MIN 3
#define ROUTE_SEED_STEP 0x9e3779b97f4a7c15ull /* golden ratio: spreads group seeds */

/* ---- building ---- */

/* A route that sends everything to group 0 with the proxy's defaults. */
static void default_route_init(struct cfg_http_route *r, const struct cfg_proxy *proxy)
{
	memset(r, 0, sizeof(*r));
	r->splits[0] = (struct cfg_http_split){ .group = 0, .weight = 1 };
	r->n_splits = 1;
	r->connect_timeout_ms = proxy->connect_timeout_ms;
	r->request_timeout_ms = proxy->request_timeout_ms;
	r->idle_timeout_ms = proxy->idle_timeout_ms;
	r->retries = 1;
	r->retry_on = CFG_RETRY_DEFAULT;
}

/*
 * The config of group @i of @svc as the balancer takes it. Group 0 is the
 * service's own backends: the parser leaves the group's list empty and
 * keeps them in svc->backends. Without an http key there is only that
 * group, with default settings.
 */
static void group_config(const struct cfg_service *svc, size_t i, struct cfg_http_group *out)
{
	if (!svc->http) {
		memset(out, 0, sizeof(*out));
		strcpy(out->name, CFG_HTTP_DEFAULT_GROUP);
		out->lb = CFG_LB_ROUND_ROBIN;
		out->consecutive_5xx = ROUTE_DEF_CONSECUTIVE_5XX;
		out->base_ejection_ms = ROUTE_DEF_EJECTION_MS;
		out->max_ejection_percent = ROUTE_DEF_EJECTION_PERCENT;
	} else {
		*out = svc->http->groups[i];
	}
	if (i == 0 && !out->n_backends) {
		out->backends = svc->backends;
		out->n_backends = svc->n_backends;
	}
}

static int service_groups_init(struct route_service *rs, uint64_t seed)
{
	const struct cfg_service *svc = rs->cfg;
	size_t n = svc->http ? svc->http->n_groups : 1;
	struct cfg_http_group gc;
	int err;

	rs->groups = calloc(n ? n : 1, sizeof(*rs->groups));
	if (!rs->groups)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		group_config(svc, i, &gc);
		err = bal_group_init(&rs->groups[i], &gc, seed + ROUTE_SEED_STEP * (i + 1));
		if (err)
			return err; /* route_table_free() releases what was built */
		rs->n_groups = i + 1;
	}
	return 0;
}

static int service_init(struct route_service *rs, const struct cfg_service *svc,
			const struct cfg_proxy *proxy, uint64_t seed)
{
	const struct cfg_http *http = svc->http;

	rs->cfg = svc;
	rs->key = svc->key;
	default_route_init(&rs->default_route, proxy);
	rs->routes = &rs->default_route;
	rs->n_routes = 1;
	if (http && http->n_routes) {
		rs->routes = http->routes;
		rs->n_routes = http->n_routes;
	}
	if (http) {
		rs->access = http->access;
		rs->n_access = http->n_access;
		retry_budget_init(&rs->budget, http->retry_budget_percent,
				  http->retry_min_concurrent);
	} else {
		retry_budget_init(&rs->budget, ROUTE_DEF_BUDGET_PERCENT, ROUTE_DEF_BUDGET_MIN);
	}
	for (size_t i = 0; i < rs->n_access; i++)
		rs->access_default_deny |= rs->access[i].action == POL_ALLOW;
	if (rs->n_access) {
		rs->access_hits = calloc(rs->n_access, sizeof(*rs->access_hits));
		if (!rs->access_hits)
			return -ENOMEM;
	}
	return service_groups_init(rs, seed);
}

/* Order of pol_prefix by family then address bytes (prefix lengths are
 * full for endpoints and peers, so they never decide). */
static int prefix_cmp(const struct pol_prefix *a, const struct pol_prefix *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

static int endpoint_ptr_cmp(const void *a, const void *b)
{
	const struct pol_endpoint *const *x = a, *const *y = b;

	return prefix_cmp(&(*x)->addr, &(*y)->addr);
}

static int table_peers_init(struct route_table *t, const struct pol_state *pol,
			    const struct pol_prefix *local, size_t n_local)
{
	if (pol->n_endpoints) {
		t->endpoints = calloc(pol->n_endpoints, sizeof(*t->endpoints));
		if (!t->endpoints)
			return -ENOMEM;
		for (size_t i = 0; i < pol->n_endpoints; i++)
			t->endpoints[i] = &pol->endpoints[i];
		t->n_endpoints = pol->n_endpoints;
		qsort(t->endpoints, t->n_endpoints, sizeof(*t->endpoints), endpoint_ptr_cmp);
	}
	if (n_local) {
		t->local_addrs = calloc(n_local, sizeof(*t->local_addrs));
		if (!t->local_addrs)
			return -ENOMEM;
		memcpy(t->local_addrs, local, n_local * sizeof(*local));
		t->n_local = n_local;
	}
	return 0;
}

int route_table_build(struct route_table *t, const struct cfg_state *cfg,
		      const struct pol_prefix *local, size_t n_local, uint64_t seed)
{
	size_t n = 0;
	int err = -ENOMEM;

	memset(t, 0, sizeof(*t));
	t->cfg = cfg;
	for (size_t i = 0; i < cfg->n_services; i++)
		n += cfg->services[i].l7;
	if (n) {
		t->services = calloc(n, sizeof(*t->services));
		if (!t->services)
			goto free_table;
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *svc = &cfg->services[i];

		if (!svc->l7)
			continue;
		/* Counted before init: a half-built service is freed too. */
		err = service_init(
			&t->services[t->n_services++], svc, &cfg->proxy,
			hash_fmix64(seed + ROUTE_SEED_STEP * (i + 1) * CFG_HTTP_MAX_GROUPS));
		if (err)
			goto free_table;
	}
	err = table_peers_init(t, &cfg->policy, local, n_local);
	if (err)
		goto free_table;
	return 0;

free_table:
	route_table_free(t);
	return err;
}

void route_table_free(struct route_table *t)
{
	for (size_t i = 0; i < t->n_services; i++) {
		struct route_service *rs = &t->services[i];

		for (size_t g = 0; g < rs->n_groups; g++)
			bal_group_free(&rs->groups[g]);
		free(rs->groups);
		free(rs->access_hits);
	}
	free(t->services);
	free(t->endpoints);
	free(t->local_addrs);
	memset(t, 0, sizeof(*t));
}

/* ---- lookups ---- */

/* Linear scans: a config has few L7 services and the proxy looks one up
 * per client connection, not per request. */
struct route_service *route_service_find(struct route_table *t, const struct sl_svc_key *vip)
{
	for (size_t i = 0; i < t->n_services; i++) {
		const struct sl_svc_key *k = &t->services[i].key;

		if (k->family == vip->family && k->proto == vip->proto && k->port == vip->port &&
		    !memcmp(k->addr, vip->addr, sizeof(k->addr)))
			return &t->services[i];
	}
	return NULL;
}

struct route_service *route_service_by_name(struct route_table *t, const char *name)
{
	if (!name || !*name)
		return NULL; /* unnamed services have no name to find them by */
	for (size_t i = 0; i < t->n_services; i++) {
		if (!strcmp(t->services[i].cfg->name, name))
			return &t->services[i];
	}
	return NULL;
}

/* ---- peers ---- */

/* @addr as a full-length prefix; ::ffff:a.b.c.d becomes a.b.c.d, which is
 * how a dual-stack socket reports IPv4 clients. */
static void peer_prefix(const struct addr_port *addr, struct pol_prefix *out)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	memset(out, 0, sizeof(*out));
	if (addr->family == SL_AF_INET6 && !memcmp(addr->addr, mapped, sizeof(mapped))) {
		out->family = SL_AF_INET;
		out->addr[0] = addr->addr[3];
		out->prefixlen = 32;
	} else if (addr->family == SL_AF_INET6) {
		out->family = SL_AF_INET6;
		memcpy(out->addr, addr->addr, sizeof(out->addr));
		out->prefixlen = 128;
	} else {
		out->family = SL_AF_INET;
		out->addr[0] = addr->addr[0];
		out->prefixlen = 32;
	}
}

static const struct pol_endpoint *endpoint_find(const struct route_table *t,
						const struct pol_prefix *p)
{
	size_t lo = 0, hi = t->n_endpoints;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = prefix_cmp(&t->endpoints[mid]->addr, p);

		if (!c)
			return t->endpoints[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool prefix_is_loopback(const struct pol_prefix *p)
{
	static const uint8_t v6_loop[16] = { [15] = 1 };

	if (p->family == SL_AF_INET)
		return ((const uint8_t *)p->addr)[0] == 127;
	return !memcmp(p->addr, v6_loop, sizeof(v6_loop));
}

void route_peer_resolve(const struct route_table *t, const struct addr_port *addr,
			struct route_peer *out)
{
	const struct pol_endpoint *ep;

	memset(out, 0, sizeof(*out));
	peer_prefix(addr, &out->addr);
	ep = endpoint_find(t, &out->addr);
	if (ep) {
		out->kind = ROUTE_PEER_ENDPOINT;
		out->labels = &ep->labels;
		return;
	}
	out->kind = ROUTE_PEER_WORLD;
	if (prefix_is_loopback(&out->addr)) {
		out->kind = ROUTE_PEER_HOST;
		return;
	}
	for (size_t i = 0; i < t->n_local; i++) {
		if (pol_prefix_within(&out->addr, &t->local_addrs[i])) {
			out->kind = ROUTE_PEER_HOST;
			return;
		}
	}
}

/* ---- matching ---- */

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* @len bytes of @a and @b equal ignoring ASCII case (header names and
 * hosts are ASCII; no locale). */
static bool ascii_case_eq(const char *a, const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
			return false;
	}
	return true;
}

static bool path_match(enum cfg_path_match kind, const char *pattern, const char *path, size_t len)
{
	size_t plen;

	if (kind == CFG_PATH_ANY)
		return true;
	plen = strlen(pattern);
	if (!path)
		len = 0;
	if (kind == CFG_PATH_EXACT)
		return len == plen && !memcmp(path, pattern, plen);
	return len >= plen && !memcmp(path, pattern, plen);
}

static bool method_match(uint32_t mask, enum http1_method method)
{
	return !mask || (mask & (uint32_t)method);
}

/* The length of @host without its port: "[v6]:port" keeps the brackets,
 * "name:port" drops from the colon. */
static size_t host_name_len(const char *host, size_t len)
{
	const char *end;

	if (len && host[0] == '[') {
		end = memchr(host, ']', len);
		return end ? (size_t)(end - host) + 1 : len;
	}
	end = memchr(host, ':', len);
	return end ? (size_t)(end - host) : len;
}

/* "" matches anything; "*.example.com" a host ending in ".example.com"
 * with at least one label before it; else the whole name, ignoring case. */
static bool host_match(const char *pattern, const struct http1_request *req)
{
	size_t plen = strlen(pattern), len;

	if (!plen)
		return true;
	if (!req->host)
		return false;
	len = host_name_len(req->host, req->host_len);
	if (pattern[0] == '*' && pattern[1] == '.') {
		const char *suffix = pattern + 1;
		size_t slen = plen - 1;

		return len > slen && ascii_case_eq(req->host + len - slen, suffix, slen);
	}
	return len == plen && ascii_case_eq(req->host, pattern, plen);
}

/* Some field called hm->name exists (and, unless hm->present, one of them
 * has exactly hm->value). */
static bool header_match(const struct cfg_http_header_match *hm, const struct http1_request *req)
{
	size_t nlen = strlen(hm->name), vlen = strlen(hm->value);

	for (size_t i = 0; i < req->n_headers; i++) {
		const struct http1_header *h = &req->headers[i];

		if (h->name_len != nlen || !ascii_case_eq(h->name, hm->name, nlen))
			continue;
		if (hm->present || (h->value_len == vlen && !memcmp(h->value, hm->value, vlen)))
			return true;
	}
	return false;
}

static bool route_conditions_hold(const struct cfg_http_route *r, const struct http1_request *req)
{
	if (!host_match(r->host, req) || !method_match(r->methods, req->method_id) ||
	    !path_match(r->path_kind, r->path, req->path, req->path_len))
		return false;
	for (unsigned int i = 0; i < r->n_headers && i < CFG_HTTP_MATCH_HEADERS; i++) {
		if (!header_match(&r->headers[i], req))
			return false;
	}
	return true;
}

const struct cfg_http_route *route_match(const struct route_service *svc,
					 const struct http1_request *req)
{
	for (size_t i = 0; i < svc->n_routes; i++) {
		if (route_conditions_hold(&svc->routes[i], req))
			return &svc->routes[i];
	}
	return NULL;
}

uint32_t route_pick_split(const struct cfg_http_route *route, uint32_t random)
{
	unsigned int n = route->n_splits < CFG_HTTP_SPLITS ? route->n_splits : CFG_HTTP_SPLITS;
	uint64_t total = 0, r;

	for (unsigned int i = 0; i < n; i++)
		total += route->splits[i].weight;
	if (!total)
		return n ? route->splits[0].group : 0;
	r = random % total;
	for (unsigned int i = 0; i < n; i++) {
		if (r < route->splits[i].weight)
			return route->splits[i].group;
		r -= route->splits[i].weight;
	}
	return route->splits[n - 1].group; /* not reached: r < total */
}

/* ---- access ---- */

static bool peer_match(const struct pol_peer *from, const struct route_peer *peer)
{
	switch (from->kind) {
	case POL_PEER_ANY:
		return true;
	case POL_PEER_SELECTOR:
		return peer->kind == ROUTE_PEER_ENDPOINT &&
		       pol_selector_match(&from->sel, peer->labels);
	case POL_PEER_CIDR:
		return peer->kind == ROUTE_PEER_WORLD &&
		       pol_prefix_within(&peer->addr, &from->cidr);
	case POL_PEER_WORLD:
		return peer->kind == ROUTE_PEER_WORLD;
	case POL_PEER_HOST:
		return peer->kind == ROUTE_PEER_HOST;
	}
	return false;
}

static bool access_match(const struct cfg_http_access *a, const struct route_peer *peer,
			 const struct http1_request *req)
{
	return peer_match(&a->from, peer) && method_match(a->methods, req->method_id) &&
	       path_match(a->path_kind, a->path, req->path, req->path_len);
}

/* The first rule of @action that matches, counted, or -1. */
static int access_first(struct route_service *svc, enum pol_action action,
			const struct route_peer *peer, const struct http1_request *req)
{
	for (size_t i = 0; i < svc->n_access; i++) {
		if (svc->access[i].action == action && access_match(&svc->access[i], peer, req)) {
			svc->access_hits[i]++;
			return (int)i;
		}
	}
	return -1;
}

enum pol_action route_access(struct route_service *svc, const struct route_peer *peer,
			     const struct http1_request *req, uint32_t *rule_id)
{
	enum pol_action order[2] = { POL_DENY, POL_ALLOW };
	uint32_t id = 0;
	enum pol_action verdict = svc->access_default_deny ? POL_DENY : POL_ALLOW;

	for (int k = 0; k < 2; k++) {
		int i = access_first(svc, order[k], peer, req);

		if (i >= 0) {
			verdict = order[k];
			id = svc->access[i].id;
			break;
		}
	}
	if (rule_id)
		*rule_id = id;
	return verdict;
}
