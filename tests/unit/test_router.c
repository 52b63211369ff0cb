/* Unit tests for the proxy's route table (user/sluice-proxy/router.c):
 * building from a config made in C (L7 services only, groups from the
 * http key or defaults from the backends, retry budgets), service
 * lookups, peer classification (endpoint, host, world, v4-mapped),
 * access rules (deny wins, default deny, hit counters), route matching
 * (host, path, methods, headers, order) and the weighted split. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "router.h"

/* ---- fixture: four services, one not L7 ---- */

static struct cfg_backend web_backends[2], plain_backends[2], canary_backends[1];
static struct cfg_http_group web_groups[2], v6_groups[1];
static struct cfg_http_route web_routes[2];
static struct cfg_http_access web_access[5], v6_access[1];
static struct cfg_http web_http, v6_http;
static struct cfg_service services[4];
static struct pol_endpoint endpoints[4];
static struct pol_prefix locals[2];
static struct cfg_state cfg;

static void backend(struct cfg_backend *be, const char *text, uint32_t weight)
{
	assert_int_equal(addr_parse_endpoint(text, &be->addr), 0);
	be->weight = weight;
}

static void prefix(struct pol_prefix *p, const char *text, bool cidr)
{
	char err[POL_ERR_MAX];

	assert_int_equal(pol_prefix_parse(text, cidr, p, err, sizeof(err)), 0);
}

static void peer(struct pol_peer *p, const char *text)
{
	char err[POL_ERR_MAX];

	assert_int_equal(pol_peer_parse(text, p, err, sizeof(err)), 0);
}

static void endpoint(struct pol_endpoint *ep, const char *addr, const char *labels)
{
	char err[POL_ERR_MAX];

	prefix(&ep->addr, addr, false);
	assert_int_equal(pol_labels_parse(labels, &ep->labels, err, sizeof(err)), 0);
}

static void service(struct cfg_service *svc, const char *key, const char *name, bool l7)
{
	assert_int_equal(addr_parse_service(key, &svc->key), 0);
	snprintf(svc->name, sizeof(svc->name), "%s", name);
	svc->l7 = l7;
}

static void access_rule(struct cfg_http_access *a, uint32_t id, enum pol_action action,
			const char *from, uint32_t methods, enum cfg_path_match kind,
			const char *path)
{
	memset(a, 0, sizeof(*a));
	a->id = id;
	a->action = action;
	peer(&a->from, from);
	a->methods = methods;
	a->path_kind = kind;
	snprintf(a->path, sizeof(a->path), "%s", path);
}

static void web_http_init(void)
{
	memset(web_groups, 0, sizeof(web_groups));
	strcpy(web_groups[0].name, "default");
	web_groups[0].lb = CFG_LB_LEAST_REQUEST;
	web_groups[0].max_requests = 7;
	web_groups[0].consecutive_5xx = 2;
	strcpy(web_groups[1].name, "canary");
	web_groups[1].lb = CFG_LB_HASH_HEADER;
	strcpy(web_groups[1].hash_header, "x-user");
	backend(&canary_backends[0], "198.18.3.1:8080", 1);
	web_groups[1].backends = canary_backends;
	web_groups[1].n_backends = 1;

	memset(web_routes, 0, sizeof(web_routes));
	strcpy(web_routes[0].path, "/canary");
	web_routes[0].path_kind = CFG_PATH_PREFIX;
	web_routes[0].splits[0] = (struct cfg_http_split){ .group = 1, .weight = 1 };
	web_routes[0].n_splits = 1;
	web_routes[1].splits[0] = (struct cfg_http_split){ .group = 0, .weight = 1 };
	web_routes[1].n_splits = 1;

	/* Denies interleaved with allows: order within an action decides. */
	access_rule(&web_access[0], 10, POL_DENY, "world", 0, CFG_PATH_PREFIX, "/admin");
	access_rule(&web_access[1], 11, POL_ALLOW, "app=web", 0, CFG_PATH_ANY, "");
	access_rule(&web_access[2], 12, POL_ALLOW, "203.0.113.0/24", CFG_M_GET, CFG_PATH_ANY, "");
	access_rule(&web_access[3], 13, POL_ALLOW, "host", 0, CFG_PATH_ANY, "");
	access_rule(&web_access[4], 14, POL_DENY, "app=web,env=prod", CFG_M_POST, CFG_PATH_EXACT,
		    "/secret");

	web_http = (struct cfg_http){ .groups = web_groups,
				      .n_groups = 2,
				      .routes = web_routes,
				      .n_routes = 2,
				      .access = web_access,
				      .n_access = 5,
				      .retry_budget_percent = 50,
				      .retry_min_concurrent = 5 };
}

static int fixture_setup(void **state)
{
	(void)state;
	memset(services, 0, sizeof(services));
	memset(&cfg, 0, sizeof(cfg));
	web_http_init();

	service(&services[0], "198.19.0.10:80/tcp", "web", true);
	backend(&web_backends[0], "198.18.1.1:8080", 1);
	backend(&web_backends[1], "198.18.1.2:8080", 1);
	services[0].backends = web_backends;
	services[0].n_backends = 2;
	services[0].http = &web_http;

	service(&services[1], "198.19.0.12:80/tcp", "l4only", false);

	service(&services[2], "198.19.0.11:80/tcp", "plain", true);
	backend(&plain_backends[0], "198.18.2.1:80", 2);
	backend(&plain_backends[1], "198.18.2.2:80", 3);
	services[2].backends = plain_backends;
	services[2].n_backends = 2;

	/* http key with only a "default" group and a deny rule: no routes,
	 * no allow rules. */
	service(&services[3], "[fd00::10]:80/tcp", "", true);
	memset(v6_groups, 0, sizeof(v6_groups));
	strcpy(v6_groups[0].name, "default");
	access_rule(&v6_access[0], 1, POL_DENY, "any", CFG_M_DELETE, CFG_PATH_ANY, "");
	v6_http = (struct cfg_http){ .groups = v6_groups,
				     .n_groups = 1,
				     .access = v6_access,
				     .n_access = 1,
				     .retry_budget_percent = 20,
				     .retry_min_concurrent = 3 };
	services[3].http = &v6_http;

	cfg.services = services;
	cfg.n_services = 4;
	cfg.proxy.connect_timeout_ms = 1111;
	cfg.proxy.request_timeout_ms = 2222;
	cfg.proxy.idle_timeout_ms = 3333;

	/* Not sorted by address on purpose. */
	memset(endpoints, 0, sizeof(endpoints));
	endpoint(&endpoints[0], "198.18.9.9", "app=db");
	endpoint(&endpoints[1], "fd00::5", "app=web");
	endpoint(&endpoints[2], "10.0.0.2", "app=web,env=prod");
	endpoint(&endpoints[3], "198.18.1.1", "app=web");
	cfg.policy.endpoints = endpoints;
	cfg.policy.n_endpoints = 4;

	prefix(&locals[0], "10.1.2.3", false);
	prefix(&locals[1], "fd00:1::1", false);
	return 0;
}

static struct route_table build(void)
{
	struct route_table t;

	assert_int_equal(route_table_build(&t, &cfg, locals, 2, 7), 0);
	return t;
}

static struct sl_svc_key svc_key(const char *text)
{
	struct sl_svc_key k = {};

	assert_int_equal(addr_parse_service(text, &k), 0);
	return k;
}

static struct route_peer resolve(const struct route_table *t, const char *text)
{
	struct addr_port ap;
	struct route_peer p;

	assert_int_equal(addr_parse_endpoint(text, &ap), 0);
	route_peer_resolve(t, &ap, &p);
	return p;
}

/* A request with @method_id for @path (NUL-ended) and @host (NULL: none). */
static struct http1_request request(enum http1_method method_id, const char *path, const char *host)
{
	return (struct http1_request){ .method_id = method_id,
				       .path = path,
				       .path_len = strlen(path),
				       .host = host,
				       .host_len = host ? strlen(host) : 0 };
}

/* ---- building and lookups ---- */

static void test_build_l7_only(void **state)
{
	struct route_table t = build();
	struct sl_svc_key k;

	(void)state;
	assert_int_equal(t.n_services, 3);
	assert_ptr_equal(t.services[0].cfg, &services[0]);
	assert_ptr_equal(t.services[1].cfg, &services[2]);
	assert_ptr_equal(t.services[2].cfg, &services[3]);
	k = svc_key("198.19.0.10:80/tcp");
	assert_ptr_equal(route_service_find(&t, &k), &t.services[0]);
	k = svc_key("198.19.0.11:80/tcp");
	assert_ptr_equal(route_service_find(&t, &k), &t.services[1]);
	k = svc_key("[fd00::10]:80/tcp");
	assert_ptr_equal(route_service_find(&t, &k), &t.services[2]);
	k = svc_key("198.19.0.12:80/tcp"); /* not L7 */
	assert_null(route_service_find(&t, &k));
	k = svc_key("198.19.0.10:81/tcp");
	assert_null(route_service_find(&t, &k));
	k = svc_key("198.19.0.10:80/udp");
	assert_null(route_service_find(&t, &k));
	assert_ptr_equal(route_service_by_name(&t, "web"), &t.services[0]);
	assert_ptr_equal(route_service_by_name(&t, "plain"), &t.services[1]);
	assert_null(route_service_by_name(&t, "l4only"));
	assert_null(route_service_by_name(&t, "nope"));
	assert_null(route_service_by_name(&t, "")); /* the unnamed one is not "" */
	route_table_free(&t);
	assert_null(t.services);
	assert_int_equal(t.n_services, 0);
}

static void test_build_empty_config(void **state)
{
	struct cfg_state empty = {};
	struct route_table t;

	(void)state;
	assert_int_equal(route_table_build(&t, &empty, NULL, 0, 0), 0);
	assert_int_equal(t.n_services, 0);
	assert_null(route_service_by_name(&t, "web"));
	route_table_free(&t);
}

/* No http key: one round-robin "default" group of the backends, one
 * catch-all route with the proxy's timeouts, the default budget. */
static void test_build_without_http(void **state)
{
	struct route_table t = build();
	struct route_service *rs = route_service_by_name(&t, "plain");
	const struct cfg_http_route *r;
	struct http1_request req = request(HTTP1_PATCH, "/any/thing", "whatever");

	(void)state;
	assert_int_equal(rs->n_groups, 1);
	assert_string_equal(rs->groups[0].name, "default");
	assert_int_equal(rs->groups[0].lb, CFG_LB_ROUND_ROBIN);
	assert_int_equal(rs->groups[0].n_eps, 2);
	assert_memory_equal(&rs->groups[0].eps[1].addr, &plain_backends[1].addr,
			    sizeof(struct addr_port));
	assert_int_equal(rs->groups[0].eps[1].weight, 3);
	assert_int_equal(rs->groups[0].consecutive_5xx, 5);
	assert_int_equal(rs->groups[0].base_ejection_ms, 30000);
	assert_int_equal(rs->groups[0].max_ejection_percent, 50);
	assert_int_equal(rs->n_routes, 1);
	r = route_match(rs, &req);
	assert_ptr_equal(r, &rs->default_route);
	assert_int_equal(r->n_splits, 1);
	assert_int_equal(r->splits[0].group, 0);
	assert_int_equal(r->splits[0].weight, 1);
	assert_int_equal(r->connect_timeout_ms, 1111);
	assert_int_equal(r->request_timeout_ms, 2222);
	assert_int_equal(r->idle_timeout_ms, 3333);
	assert_int_equal(r->retries, 1);
	assert_int_equal(r->retry_on, CFG_RETRY_DEFAULT);
	assert_int_equal(rs->budget.percent, 20);
	assert_int_equal(rs->budget.min_concurrent, 3);
	assert_int_equal(rs->n_access, 0);
	assert_false(rs->access_default_deny);
	route_table_free(&t);
}

/* With http: group 0 takes the service's backends and the "default"
 * entry's settings; the others their own. */
static void test_build_with_http(void **state)
{
	struct route_table t = build();
	struct route_service *rs = &t.services[0];

	(void)state;
	assert_int_equal(rs->n_groups, 2);
	assert_int_equal(rs->groups[0].lb, CFG_LB_LEAST_REQUEST);
	assert_int_equal(rs->groups[0].max_requests, 7);
	assert_int_equal(rs->groups[0].consecutive_5xx, 2);
	assert_int_equal(rs->groups[0].n_eps, 2);
	assert_memory_equal(&rs->groups[0].eps[0].addr, &web_backends[0].addr,
			    sizeof(struct addr_port));
	assert_string_equal(rs->groups[1].name, "canary");
	assert_int_equal(rs->groups[1].n_eps, 1);
	assert_non_null(rs->groups[1].table);
	assert_string_equal(rs->groups[1].hash_header, "x-user");
	assert_ptr_equal(rs->routes, web_routes);
	assert_int_equal(rs->n_routes, 2);
	assert_int_equal(rs->budget.percent, 50);
	assert_int_equal(rs->budget.min_concurrent, 5);
	assert_true(rs->access_default_deny);
	assert_non_null(rs->access_hits);
	/* Different groups draw different random numbers. */
	assert_true(rs->groups[0].rng != rs->groups[1].rng);
	assert_true(rs->groups[0].rng != t.services[1].groups[0].rng);
	route_table_free(&t);
}

static void test_build_http_without_routes(void **state)
{
	struct route_table t = build();
	struct route_service *rs = &t.services[2];
	struct http1_request req = request(HTTP1_GET, "/", NULL);

	(void)state;
	assert_int_equal(rs->n_groups, 1);
	assert_int_equal(rs->groups[0].n_eps, 0);
	assert_ptr_equal(rs->routes, &rs->default_route);
	assert_ptr_equal(route_match(rs, &req), &rs->default_route);
	assert_int_equal(rs->default_route.request_timeout_ms, 2222);
	route_table_free(&t);
}

/* ---- peers ---- */

static void test_peer_endpoints(void **state)
{
	struct route_table t = build();
	struct route_peer p;

	(void)state;
	/* Sorted for binary search. */
	for (size_t i = 1; i < t.n_endpoints; i++) {
		const struct pol_prefix *a = &t.endpoints[i - 1]->addr, *b = &t.endpoints[i]->addr;

		assert_true(a->family < b->family ||
			    (a->family == b->family && memcmp(a->addr, b->addr, 16) < 0));
	}
	for (size_t i = 0; i < 4; i++) {
		char text[64], buf[64];

		pol_prefix_format(&endpoints[i].addr, buf, sizeof(buf));
		snprintf(text, sizeof(text),
			 endpoints[i].addr.family == SL_AF_INET6 ? "[%s]:1" : "%s:1", buf);
		p = resolve(&t, text);
		assert_int_equal(p.kind, ROUTE_PEER_ENDPOINT);
		assert_ptr_equal(p.labels, &endpoints[i].labels);
		/* Field by field: struct pol_prefix has tail padding. */
		assert_memory_equal(p.addr.addr, endpoints[i].addr.addr, sizeof(p.addr.addr));
		assert_int_equal(p.addr.family, endpoints[i].addr.family);
		assert_int_equal(p.addr.prefixlen, endpoints[i].addr.prefixlen);
	}
	/* v4-mapped: the IPv4 endpoint. */
	p = resolve(&t, "[::ffff:198.18.9.9]:5000");
	assert_int_equal(p.kind, ROUTE_PEER_ENDPOINT);
	assert_ptr_equal(p.labels, &endpoints[0].labels);
	assert_int_equal(p.addr.family, SL_AF_INET);
	assert_int_equal(p.addr.prefixlen, 32);
	/* Next to an endpoint is not one. */
	p = resolve(&t, "198.18.9.10:1");
	assert_int_equal(p.kind, ROUTE_PEER_WORLD);
	assert_null(p.labels);
	route_table_free(&t);
}

static void test_peer_host_and_world(void **state)
{
	static const char *const host[] = {
		"127.0.0.1:1",		"127.255.0.9:1", "[::1]:1",
		"[::ffff:127.0.0.1]:1", "10.1.2.3:1",	 "[fd00:1::1]:1",
		"[::ffff:10.1.2.3]:1"
	};
	static const char *const world[] = { "8.8.8.8:1", "10.1.2.4:1", "[fd00:1::2]:1", "[::2]:1",
					     "128.0.0.1:1" };
	struct route_table t = build();
	struct route_peer p;

	(void)state;
	for (size_t i = 0; i < sizeof(host) / sizeof(host[0]); i++) {
		p = resolve(&t, host[i]);
		assert_int_equal(p.kind, ROUTE_PEER_HOST);
	}
	for (size_t i = 0; i < sizeof(world) / sizeof(world[0]); i++) {
		p = resolve(&t, world[i]);
		assert_int_equal(p.kind, ROUTE_PEER_WORLD);
	}
	p = resolve(&t, "[fd00:1::2]:1");
	assert_int_equal(p.addr.family, SL_AF_INET6);
	assert_int_equal(p.addr.prefixlen, 128);
	route_table_free(&t);

	/* Without a local list only loopback is the host. */
	assert_int_equal(route_table_build(&t, &cfg, NULL, 0, 7), 0);
	assert_int_equal(resolve(&t, "10.1.2.3:1").kind, ROUTE_PEER_WORLD);
	assert_int_equal(resolve(&t, "127.0.0.1:1").kind, ROUTE_PEER_HOST);
	route_table_free(&t);
}

/* ---- access ---- */

static enum pol_action check_access(struct route_table *t, struct route_service *rs,
				    const char *from, enum http1_method m, const char *path,
				    uint32_t *rule)
{
	struct route_peer p = resolve(t, from);
	struct http1_request req = request(m, path, "web");

	*rule = 99;
	return route_access(rs, &p, &req, rule);
}

static void test_access_rules(void **state)
{
	struct route_table t = build();
	struct route_service *rs = &t.services[0];
	uint32_t rule;

	(void)state;
	/* Selector allow (endpoint with app=web). */
	assert_int_equal(check_access(&t, rs, "198.18.1.1:1", HTTP1_POST, "/x", &rule), POL_ALLOW);
	assert_int_equal(rule, 11);
	/* CIDR allow for GET only; POST falls to default deny. */
	assert_int_equal(check_access(&t, rs, "203.0.113.5:1", HTTP1_GET, "/", &rule), POL_ALLOW);
	assert_int_equal(rule, 12);
	assert_int_equal(check_access(&t, rs, "203.0.113.5:1", HTTP1_POST, "/", &rule), POL_DENY);
	assert_int_equal(rule, 0);
	/* Deny wins over the CIDR allow. */
	assert_int_equal(check_access(&t, rs, "203.0.113.5:1", HTTP1_GET, "/admin/x", &rule),
			 POL_DENY);
	assert_int_equal(rule, 10);
	/* World outside the CIDR: default deny. */
	assert_int_equal(check_access(&t, rs, "8.8.8.8:1", HTTP1_GET, "/", &rule), POL_DENY);
	assert_int_equal(rule, 0);
	/* Host allow; world deny does not apply to the host. */
	assert_int_equal(check_access(&t, rs, "127.0.0.1:1", HTTP1_GET, "/admin", &rule),
			 POL_ALLOW);
	assert_int_equal(rule, 13);
	/* An endpoint the selector does not pick: default deny; nor is it
	 * "world" or in a CIDR. */
	assert_int_equal(check_access(&t, rs, "198.18.9.9:1", HTTP1_GET, "/admin", &rule),
			 POL_DENY);
	assert_int_equal(rule, 0);
	/* The later deny (14) beats the earlier allow (11): exact path, POST. */
	assert_int_equal(check_access(&t, rs, "10.0.0.2:1", HTTP1_POST, "/secret", &rule),
			 POL_DENY);
	assert_int_equal(rule, 14);
	assert_int_equal(check_access(&t, rs, "10.0.0.2:1", HTTP1_GET, "/secret", &rule),
			 POL_ALLOW);
	assert_int_equal(check_access(&t, rs, "10.0.0.2:1", HTTP1_POST, "/secret/", &rule),
			 POL_ALLOW);
	assert_int_equal(rule, 11);
	/* Each deciding rule counted once per request; default decisions not. */
	assert_int_equal(rs->access_hits[0], 1);
	assert_int_equal(rs->access_hits[1], 3);
	assert_int_equal(rs->access_hits[2], 1);
	assert_int_equal(rs->access_hits[3], 1);
	assert_int_equal(rs->access_hits[4], 1);
	route_table_free(&t);
}

static void test_access_open_without_allows(void **state)
{
	struct route_table t = build();
	struct route_service *v6 = &t.services[2], *plain = &t.services[1];
	uint32_t rule;

	(void)state;
	assert_false(v6->access_default_deny);
	assert_int_equal(check_access(&t, v6, "8.8.8.8:1", HTTP1_GET, "/", &rule), POL_ALLOW);
	assert_int_equal(rule, 0);
	/* "any" matches every kind of peer. */
	assert_int_equal(check_access(&t, v6, "8.8.8.8:1", HTTP1_DELETE, "/", &rule), POL_DENY);
	assert_int_equal(rule, 1);
	assert_int_equal(check_access(&t, v6, "198.18.1.1:1", HTTP1_DELETE, "/", &rule), POL_DENY);
	assert_int_equal(check_access(&t, v6, "[::1]:1", HTTP1_DELETE, "/", &rule), POL_DENY);
	assert_int_equal(v6->access_hits[0], 3);
	/* No rules at all. */
	assert_int_equal(check_access(&t, plain, "8.8.8.8:1", HTTP1_DELETE, "/", &rule), POL_ALLOW);
	assert_int_equal(rule, 0);
	route_table_free(&t);
}

/* ---- route matching ---- */

static struct route_service match_svc(struct cfg_http_route *routes, size_t n)
{
	return (struct route_service){ .routes = routes, .n_routes = n };
}

static struct cfg_http_route route_host(const char *host)
{
	struct cfg_http_route r = { .n_splits = 1, .splits = { { 0, 1 } } };

	snprintf(r.host, sizeof(r.host), "%s", host);
	return r;
}

static bool host_matches(const char *pattern, const char *host)
{
	struct cfg_http_route r = route_host(pattern);
	struct route_service svc = match_svc(&r, 1);
	struct http1_request req = request(HTTP1_GET, "/", host);

	return route_match(&svc, &req) == &r;
}

static void test_match_host(void **state)
{
	(void)state;
	assert_true(host_matches("", "anything"));
	assert_true(host_matches("", NULL));
	assert_true(host_matches("api.example.com", "api.example.com"));
	assert_true(host_matches("api.example.com", "API.Example.COM"));
	assert_true(host_matches("api.example.com", "api.example.com:8080"));
	assert_false(host_matches("api.example.com", "api.example.com.evil"));
	assert_false(host_matches("api.example.com", "xapi.example.com"));
	assert_false(host_matches("api.example.com", "api.example.co"));
	assert_false(host_matches("api.example.com", NULL));
	assert_true(host_matches("*.example.com", "a.example.com"));
	assert_true(host_matches("*.example.com", "a.b.Example.com:443"));
	assert_false(host_matches("*.example.com", "example.com"));
	assert_false(host_matches("*.example.com", ".example.com"));
	assert_false(host_matches("*.example.com", "aexample.com"));
	assert_false(host_matches("*.example.com", "a.example.com.evil"));
	assert_true(host_matches("[fd00::1]", "[fd00::1]:8080"));
	assert_true(host_matches("[fd00::1]", "[FD00::1]"));
	assert_false(host_matches("[fd00::1]", "[fd00::12]"));
}

static bool path_matches(enum cfg_path_match kind, const char *pattern, const char *path)
{
	struct cfg_http_route r = route_host("");
	struct route_service svc = match_svc(&r, 1);
	struct http1_request req = request(HTTP1_GET, path, "h");

	r.path_kind = kind;
	snprintf(r.path, sizeof(r.path), "%s", pattern);
	return route_match(&svc, &req) == &r;
}

static void test_match_path(void **state)
{
	(void)state;
	assert_true(path_matches(CFG_PATH_ANY, "", "/whatever"));
	assert_true(path_matches(CFG_PATH_EXACT, "/health", "/health"));
	assert_false(path_matches(CFG_PATH_EXACT, "/health", "/health/"));
	assert_false(path_matches(CFG_PATH_EXACT, "/health", "/healthz"));
	assert_false(path_matches(CFG_PATH_EXACT, "/health", "/Health"));
	assert_false(path_matches(CFG_PATH_EXACT, "/health", "/"));
	assert_true(path_matches(CFG_PATH_PREFIX, "/api", "/api"));
	assert_true(path_matches(CFG_PATH_PREFIX, "/api", "/api/v1/users"));
	assert_true(path_matches(CFG_PATH_PREFIX, "/api/", "/api/v1"));
	assert_false(path_matches(CFG_PATH_PREFIX, "/api/", "/api"));
	assert_false(path_matches(CFG_PATH_PREFIX, "/api", "/ap"));
	assert_true(path_matches(CFG_PATH_PREFIX, "/", "/anything"));
}

static void test_match_methods(void **state)
{
	struct cfg_http_route r = route_host("");
	struct route_service svc = match_svc(&r, 1);
	struct http1_request get = request(HTTP1_GET, "/", "h");
	struct http1_request post = request(HTTP1_POST, "/", "h");
	struct http1_request other = request(HTTP1_OTHER, "/", "h");

	(void)state;
	assert_ptr_equal(route_match(&svc, &post), &r); /* 0: any */
	assert_ptr_equal(route_match(&svc, &other), &r);
	r.methods = CFG_M_GET | CFG_M_HEAD;
	assert_ptr_equal(route_match(&svc, &get), &r);
	assert_null(route_match(&svc, &post));
	assert_null(route_match(&svc, &other));
	r.methods = CFG_M_OTHER;
	assert_ptr_equal(route_match(&svc, &other), &r);
	assert_null(route_match(&svc, &get));
}

static void test_match_headers(void **state)
{
	struct http1_header hs[] = {
		{ "Host", 4, "h", 1 },
		{ "X-Env", 5, "prod", 4 },
		{ "x-canary", 8, "", 0 },
		{ "X-ENV", 5, "staging", 7 },
	};
	struct cfg_http_route r = route_host("");
	struct route_service svc = match_svc(&r, 1);
	struct http1_request req = request(HTTP1_GET, "/", "h");

	(void)state;
	req.headers = hs;
	req.n_headers = 4;
	strcpy(r.headers[0].name, "x-env");
	strcpy(r.headers[0].value, "prod");
	r.n_headers = 1;
	assert_ptr_equal(route_match(&svc, &req), &r);
	/* Any field of the name may carry the value. */
	strcpy(r.headers[0].value, "staging");
	assert_ptr_equal(route_match(&svc, &req), &r);
	strcpy(r.headers[0].value, "Prod"); /* values are case-sensitive */
	assert_null(route_match(&svc, &req));
	strcpy(r.headers[0].value, "pro");
	assert_null(route_match(&svc, &req));
	/* Present, even empty; and every match must hold. */
	strcpy(r.headers[0].value, "prod");
	strcpy(r.headers[1].name, "x-canary");
	r.headers[1].present = true;
	r.n_headers = 2;
	assert_ptr_equal(route_match(&svc, &req), &r);
	strcpy(r.headers[1].name, "x-missing");
	assert_null(route_match(&svc, &req));
	req.n_headers = 0;
	r.n_headers = 1;
	assert_null(route_match(&svc, &req));
}

static void test_match_order(void **state)
{
	struct cfg_http_route r[3] = { route_host("a.example.com"), route_host("*.example.com"),
				       route_host("") };
	struct route_service svc = match_svc(r, 3);
	struct http1_request a = request(HTTP1_GET, "/", "a.example.com");
	struct http1_request b = request(HTTP1_GET, "/", "b.example.com");
	struct http1_request c = request(HTTP1_GET, "/", "c.test");

	(void)state;
	assert_ptr_equal(route_match(&svc, &a), &r[0]);
	assert_ptr_equal(route_match(&svc, &b), &r[1]);
	assert_ptr_equal(route_match(&svc, &c), &r[2]);
	svc.n_routes = 2;
	assert_null(route_match(&svc, &c));
	/* The fixture's service: /canary first, then the catch-all. */
	{
		struct route_table t = build();
		struct http1_request canary = request(HTTP1_GET, "/canary/x", "web");
		struct http1_request rest = request(HTTP1_GET, "/", "web");

		assert_ptr_equal(route_match(&t.services[0], &canary), &web_routes[0]);
		assert_ptr_equal(route_match(&t.services[0], &rest), &web_routes[1]);
		route_table_free(&t);
	}
}

/* ---- weighted split ---- */

static uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void test_split(void **state)
{
	struct cfg_http_route r = { .n_splits = 2, .splits = { { 0, 90 }, { 3, 10 } } };
	struct cfg_http_route three = { .n_splits = 3, .splits = { { 2, 1 }, { 1, 1 }, { 0, 2 } } };
	unsigned int n0 = 0, n[3] = { 0 };
	uint32_t s = 12345;

	(void)state;
	assert_int_equal(route_pick_split(&r, 0), 0);
	assert_int_equal(route_pick_split(&r, 89), 0);
	assert_int_equal(route_pick_split(&r, 90), 3);
	assert_int_equal(route_pick_split(&r, 99), 3);
	assert_int_equal(route_pick_split(&r, 100), 0);
	assert_int_equal(route_pick_split(&r, UINT32_MAX), UINT32_MAX % 100 < 90 ? 0 : 3);
	for (int i = 0; i < 100000; i++)
		n0 += route_pick_split(&r, xorshift32(&s)) == 0;
	assert_true(n0 >= 89000 && n0 <= 91000);
	for (int i = 0; i < 100000; i++)
		n[route_pick_split(&three, xorshift32(&s))]++;
	assert_true(n[2] >= 24000 && n[2] <= 26000);
	assert_true(n[1] >= 24000 && n[1] <= 26000);
	assert_true(n[0] >= 49000 && n[0] <= 51000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_build_l7_only, fixture_setup),
		cmocka_unit_test_setup(test_build_empty_config, fixture_setup),
		cmocka_unit_test_setup(test_build_without_http, fixture_setup),
		cmocka_unit_test_setup(test_build_with_http, fixture_setup),
		cmocka_unit_test_setup(test_build_http_without_routes, fixture_setup),
		cmocka_unit_test_setup(test_peer_endpoints, fixture_setup),
		cmocka_unit_test_setup(test_peer_host_and_world, fixture_setup),
		cmocka_unit_test_setup(test_access_rules, fixture_setup),
		cmocka_unit_test_setup(test_access_open_without_allows, fixture_setup),
		cmocka_unit_test(test_match_host),
		cmocka_unit_test(test_match_path),
		cmocka_unit_test(test_match_methods),
		cmocka_unit_test(test_match_headers),
		cmocka_unit_test_setup(test_match_order, fixture_setup),
		cmocka_unit_test(test_split),
	};

	return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
