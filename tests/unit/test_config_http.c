/* Unit tests for the HTTP keys of the config (user/lib/config_http.c,
 * config_write.c): a full `http:` and `proxy:` read into the expected
 * structs, the defaults (the group "default" above all), the written
 * state read back to the same state and copied, a table of invalid
 * configs each refused at an exact position with its field path and
 * reason and a zeroed result, and the limits. */
#define _GNU_SOURCE /* open_memstream */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

static int load(const char *text, struct cfg_state *st, struct cfg_error *err)
{
	return cfg_load_buffer("test.yaml", text, strlen(text), st, err);
}

/* Load @text or fail with the formatted error. */
static void load_ok(const char *text, struct cfg_state *st)
{
	struct cfg_error err;
	char msg[1024];

	if (load(text, st, &err)) {
		cfg_error_format(&err, msg, sizeof(msg));
		fail_msg("%s", msg);
	}
}

static void assert_endpoint(const struct addr_port *ap, const char *text)
{
	char buf[ADDR_STR_MAX];

	addr_format_endpoint(ap, buf, sizeof(buf));
	assert_string_equal(buf, text);
}

struct bad_case {
	const char *desc;
	const char *text;
	unsigned int line, column;
	const char *field;
	const char *message; /* a substring */
};

static const char full_config[] =
	"services:\n"
	"  - name: api\n"
	"    vip: 198.18.0.10:80/tcp\n"
	"    l7: http\n"
	"    backends: [{address: 198.18.1.2:8080, weight: 1}]\n"
	"    http:\n"
	"      retry_budget: {percent: 25, min_concurrent: 0}\n"
	"      groups:\n"
	"        - name: v2\n" /* line 9 */
	"          lb: hash\n"
	"          hash_header: X-User\n"
	"          backends: [{address: 198.18.1.5:8080, weight: 2}, 198.18.1.6:8080]\n"
	"          circuit_breaker: {max_connections: 1024, max_pending: 10, max_requests: 0}\n"
	"        - name: default\n" /* line 14 */
	"          lb: least-request\n"
	"          outlier: {consecutive_5xx: 0, base_ejection_ms: 1000, max_ejection_percent: 100}\n"
	"        - name: canary\n" /* line 17 */
	"          lb: round-robin\n"
	"          backends:\n"
	"            - address: 198.18.1.7:8080\n" /* line 20 */
	"              weight: 0\n"
	"      routes:\n"
	"        - match:\n" /* line 23 */
	"            host: API.Example.com\n"
	"            prefix: /v2/\n"
	"            methods: [GET, HEAD]\n"
	"            headers: {X-Canary: \"1\", x-debug: \"*\", x-num: 2}\n"
	"          to: v2\n"
	"          timeouts: {connect_ms: 500, request_ms: 5000}\n"
	"          retries: {attempts: 2, on: [connect-failure, reset, 502, \"503\", \"504\"]}\n"
	"        - match: {host: \"*.example.com\", path: /exact, methods: CONNECT}\n" /* line 31 */
	"          to: [{group: canary, weight: 90}, {group: default, weight: 10}]\n"
	"          retries: {attempts: 0, on: 504}\n"
	"        - {}\n" /* line 34 */
	"      access:\n"
	"        - {id: 7, action: deny, from: app=web, methods: [POST, DELETE], prefix: /admin}\n"
	"        - action: allow\n" /* line 37 */
	"          from: 10.0.0.0/8\n"
	"          path: /healthz\n"
	"        - {action: allow, from: host}\n"
	"  - name: web\n" /* line 41 */
	"    vip: 198.18.0.11:80/tcp\n"
	"    l7: http\n"
	"  - http:\n" /* line 44: http before l7 and vip */
	"      groups: [{name: v6, backends: [\"[fd00::5]:80\"]}]\n"
	"      routes: [{to: v6}]\n"
	"    l7: http\n"
	"    vip: \"[fd00::10]:80/tcp\"\n"
	"    name: six\n"
	"proxy:\n" /* line 50: after the services whose routes take its timeouts */
	"  listen: [\"[::1]:15001\", 127.0.0.2:8080]\n"
	"  workers: 4\n"
	"  default_service: api\n"
	"  limits: {request_line: 4096, header_bytes: 8192, headers: 50, "
	"body_bytes: 4611686018427387904}\n"
	"  timeouts: {header_ms: 1, client_idle_ms: 2, connect_ms: 3, request_ms: 4, idle_ms: 5, "
	"upstream_idle_ms: 6}\n"
	"  access_log: {path: /var/log/sluice/access.log, format: json}\n"
	"  metrics: 127.0.0.1:9102\n";

static void check_full_groups(const struct cfg_http *h)
{
	const struct cfg_http_group *g = h->groups;

	assert_int_equal(h->retry_budget_percent, 25);
	assert_int_equal(h->retry_min_concurrent, 0);
	assert_int_equal(h->n_groups, 3);
	/* groups[0]: the "default" entry, the second in the file */
	assert_string_equal(g[0].name, "default");
	assert_int_equal(g[0].lb, CFG_LB_LEAST_REQUEST);
	assert_int_equal(g[0].n_backends, 0);
	assert_null(g[0].backends);
	assert_int_equal(g[0].max_connections, 0);
	assert_int_equal(g[0].consecutive_5xx, 0);
	assert_int_equal(g[0].base_ejection_ms, 1000);
	assert_int_equal(g[0].max_ejection_percent, 100);
	assert_int_equal(g[0].line, 14);
	assert_int_equal(g[0].column, 11);
	assert_string_equal(g[1].name, "v2");
	assert_int_equal(g[1].lb, CFG_LB_HASH_HEADER);
	assert_string_equal(g[1].hash_header, "x-user");
	assert_int_equal(g[1].n_backends, 2);
	assert_endpoint(&g[1].backends[0].addr, "198.18.1.5:8080");
	assert_int_equal(g[1].backends[0].weight, 2);
	assert_endpoint(&g[1].backends[1].addr, "198.18.1.6:8080");
	assert_int_equal(g[1].backends[1].weight, 1);
	assert_int_equal(g[1].backends[1].line, 12);
	assert_int_equal(g[1].max_connections, 1024);
	assert_int_equal(g[1].max_pending, 10);
	assert_int_equal(g[1].max_requests, 0);
	assert_int_equal(g[1].consecutive_5xx, 5);
	assert_int_equal(g[1].base_ejection_ms, 30000);
	assert_int_equal(g[1].max_ejection_percent, 50);
	assert_int_equal(g[1].line, 9);
	assert_string_equal(g[2].name, "canary");
	assert_int_equal(g[2].lb, CFG_LB_ROUND_ROBIN);
	assert_string_equal(g[2].hash_header, "");
	assert_int_equal(g[2].n_backends, 1);
	assert_endpoint(&g[2].backends[0].addr, "198.18.1.7:8080");
	assert_int_equal(g[2].backends[0].weight, 0);
	assert_int_equal(g[2].backends[0].line, 20);
	assert_int_equal(g[2].backends[0].column, 15);
}

static void check_full_route0(const struct cfg_http_route *r)
{
	assert_string_equal(r->host, "api.example.com");
	assert_int_equal(r->path_kind, CFG_PATH_PREFIX);
	assert_string_equal(r->path, "/v2/");
	assert_int_equal(r->methods, CFG_M_GET | CFG_M_HEAD);
	assert_int_equal(r->n_headers, 3);
	assert_string_equal(r->headers[0].name, "x-canary");
	assert_string_equal(r->headers[0].value, "1");
	assert_false(r->headers[0].present);
	assert_string_equal(r->headers[1].name, "x-debug");
	assert_string_equal(r->headers[1].value, "");
	assert_true(r->headers[1].present);
	assert_string_equal(r->headers[2].value, "2");
	assert_int_equal(r->n_splits, 1);
	assert_int_equal(r->splits[0].group, 1);
	assert_int_equal(r->splits[0].weight, 1);
	assert_int_equal(r->connect_timeout_ms, 500);
	assert_int_equal(r->request_timeout_ms, 5000);
	assert_int_equal(r->idle_timeout_ms, 5); /* the proxy's, given after */
	assert_int_equal(r->retries, 2);
	assert_int_equal(r->retry_on, CFG_RETRY_CONNECT | CFG_RETRY_RESET | CFG_RETRY_502 |
					      CFG_RETRY_503 | CFG_RETRY_504);
	assert_int_equal(r->line, 23);
	assert_int_equal(r->column, 11);
}

static void check_full_routes(const struct cfg_http *h)
{
	const struct cfg_http_route *r = h->routes;

	assert_int_equal(h->n_routes, 3);
	check_full_route0(&r[0]);
	assert_string_equal(r[1].host, "*.example.com");
	assert_int_equal(r[1].path_kind, CFG_PATH_EXACT);
	assert_string_equal(r[1].path, "/exact");
	assert_int_equal(r[1].methods, CFG_M_CONNECT);
	assert_int_equal(r[1].n_splits, 2);
	assert_int_equal(r[1].splits[0].group, 2);
	assert_int_equal(r[1].splits[0].weight, 90);
	assert_int_equal(r[1].splits[1].group, 0);
	assert_int_equal(r[1].splits[1].weight, 10);
	assert_int_equal(r[1].connect_timeout_ms, 3);
	assert_int_equal(r[1].request_timeout_ms, 4);
	assert_int_equal(r[1].retries, 0);
	assert_int_equal(r[1].retry_on, CFG_RETRY_504);
	/* {}: every request, to "default", with the defaults */
	assert_string_equal(r[2].host, "");
	assert_int_equal(r[2].path_kind, CFG_PATH_ANY);
	assert_int_equal(r[2].methods, 0);
	assert_int_equal(r[2].n_headers, 0);
	assert_int_equal(r[2].n_splits, 1);
	assert_int_equal(r[2].splits[0].group, 0);
	assert_int_equal(r[2].splits[0].weight, 1);
	assert_int_equal(r[2].retries, 1);
	assert_int_equal(r[2].retry_on, CFG_RETRY_DEFAULT);
	assert_int_equal(r[2].idle_timeout_ms, 5);
	assert_int_equal(r[2].line, 34);
}

static void check_full_access(const struct cfg_http *h)
{
	const struct cfg_http_access *a = h->access;

	assert_int_equal(h->n_access, 3);
	assert_int_equal(a[0].id, 7);
	assert_int_equal(a[0].action, POL_DENY);
	assert_int_equal(a[0].from.kind, POL_PEER_SELECTOR);
	assert_int_equal(a[0].from.sel.n, 1);
	assert_string_equal(a[0].from.sel.t[0].key, "app");
	assert_int_equal(a[0].methods, CFG_M_POST | CFG_M_DELETE);
	assert_int_equal(a[0].path_kind, CFG_PATH_PREFIX);
	assert_string_equal(a[0].path, "/admin");
	assert_int_equal(a[0].line, 36);
	assert_int_equal(a[1].id, 2); /* its position */
	assert_int_equal(a[1].action, POL_ALLOW);
	assert_int_equal(a[1].from.kind, POL_PEER_CIDR);
	assert_int_equal(a[1].from.cidr.prefixlen, 8);
	assert_int_equal(a[1].methods, 0);
	assert_int_equal(a[1].path_kind, CFG_PATH_EXACT);
	assert_string_equal(a[1].path, "/healthz");
	assert_int_equal(a[1].line, 37);
	assert_int_equal(a[1].column, 11);
	assert_int_equal(a[2].id, 3);
	assert_int_equal(a[2].from.kind, POL_PEER_HOST);
	assert_int_equal(a[2].path_kind, CFG_PATH_ANY);
}

static void check_full_proxy(const struct cfg_proxy *px)
{
	assert_int_equal(px->n_listen, 2);
	assert_endpoint(&px->listen[0], "[::1]:15001");
	assert_endpoint(&px->listen[1], "127.0.0.2:8080");
	assert_int_equal(px->workers, 4);
	assert_string_equal(px->default_service, "api");
	assert_int_equal(px->max_request_line, 4096);
	assert_int_equal(px->max_header_bytes, 8192);
	assert_int_equal(px->max_headers, 50);
	assert_true(px->max_body_bytes == 1ull << 62);
	assert_int_equal(px->header_timeout_ms, 1);
	assert_int_equal(px->client_idle_ms, 2);
	assert_int_equal(px->connect_timeout_ms, 3);
	assert_int_equal(px->request_timeout_ms, 4);
	assert_int_equal(px->idle_timeout_ms, 5);
	assert_int_equal(px->upstream_idle_ms, 6);
	assert_string_equal(px->access_log, "/var/log/sluice/access.log");
	assert_true(px->access_log_json);
	assert_endpoint(&px->metrics, "127.0.0.1:9102");
}

static void test_full_example(void **state)
{
	const struct cfg_service *six;
	struct cfg_state st;

	(void)state;
	load_ok(full_config, &st);
	assert_int_equal(st.n_services, 3);
	assert_non_null(st.services[0].http);
	check_full_groups(st.services[0].http);
	check_full_routes(st.services[0].http);
	check_full_access(st.services[0].http);
	assert_true(st.services[1].l7);
	assert_null(st.services[1].http);
	six = &st.services[2];
	assert_string_equal(six->name, "six");
	assert_int_equal(six->http->n_groups, 2);
	assert_string_equal(six->http->groups[0].name, "default");
	assert_int_equal(six->http->groups[0].line, 0); /* made, not written */
	assert_endpoint(&six->http->groups[1].backends[0].addr, "[fd00::5]:80");
	assert_int_equal(six->http->routes[0].splits[0].group, 1);
	assert_int_equal(six->http->routes[0].connect_timeout_ms, 3);
	assert_int_equal(six->http->retry_budget_percent, 20);
	assert_int_equal(six->http->retry_min_concurrent, 3);
	check_full_proxy(&st.proxy);
	cfg_free(&st);
	assert_null(st.services);
}

static void assert_proxy_defaults(const struct cfg_proxy *px)
{
	assert_int_equal(px->n_listen, 1);
	assert_endpoint(&px->listen[0], "127.0.0.1:15001");
	assert_int_equal(px->workers, 0);
	assert_int_equal(px->max_request_line, 8192);
	assert_int_equal(px->max_header_bytes, 32768);
	assert_int_equal(px->max_headers, 100);
	assert_true(px->max_body_bytes == 1ull << 30);
	assert_int_equal(px->header_timeout_ms, 10000);
	assert_int_equal(px->client_idle_ms, 60000);
	assert_int_equal(px->connect_timeout_ms, 1000);
	assert_int_equal(px->request_timeout_ms, 15000);
	assert_int_equal(px->idle_timeout_ms, 60000);
	assert_int_equal(px->upstream_idle_ms, 30000);
	assert_string_equal(px->access_log, "");
	assert_false(px->access_log_json);
	assert_int_equal(px->metrics.port, 0);
	assert_string_equal(px->default_service, "");
}

/* No proxy key, or an empty one, or an empty file: the defaults. */
static void test_proxy_defaults(void **state)
{
	static const char *const configs[] = {
		"", "---\n", "services: []\n", "proxy: {}\n",
		"proxy: {limits: {}, timeouts: {}, access_log: {}}\n"
	};
	struct cfg_proxy px;
	struct cfg_state st;

	(void)state;
	cfg_proxy_defaults(&px);
	assert_proxy_defaults(&px);
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
		memset(&st, 0xa5, sizeof(st));
		load_ok(configs[i], &st);
		assert_proxy_defaults(&st.proxy);
		cfg_free(&st);
	}
	assert_int_equal(cfg_load_buffer(NULL, NULL, 0, &st, NULL), 0);
	assert_proxy_defaults(&st.proxy);
	/* a scalar listen is a list of one; the key replaces the default */
	load_ok("proxy: {listen: \"[::]:80\", limits: {body_bytes: 0}}\n", &st);
	assert_int_equal(st.proxy.n_listen, 1);
	assert_endpoint(&st.proxy.listen[0], "[::]:80");
	assert_true(st.proxy.max_body_bytes == 0);
	cfg_free(&st);
}

static void assert_group_defaults(const struct cfg_http_group *g, const char *name)
{
	assert_string_equal(g->name, name);
	assert_int_equal(g->lb, CFG_LB_ROUND_ROBIN);
	assert_string_equal(g->hash_header, "");
	assert_int_equal(g->max_connections, 0);
	assert_int_equal(g->max_pending, 0);
	assert_int_equal(g->max_requests, 0);
	assert_int_equal(g->consecutive_5xx, 5);
	assert_int_equal(g->base_ejection_ms, 30000);
	assert_int_equal(g->max_ejection_percent, 50);
}

/* http: {} is a default group and nothing else; no http key is NULL. */
static void test_http_defaults(void **state)
{
	struct cfg_state st;
	const struct cfg_http *h;

	(void)state;
	load_ok("services:\n"
		"  - vip: 198.18.0.10:80/tcp\n"
		"    l7: http\n"
		"    backends: [198.18.1.2:80]\n"
		"    http: {}\n"
		"  - vip: 198.18.0.11:80/tcp\n"
		"    l7: http\n",
		&st);
	h = st.services[0].http;
	assert_non_null(h);
	assert_int_equal(h->n_groups, 1);
	assert_group_defaults(&h->groups[0], "default");
	assert_int_equal(h->groups[0].n_backends, 0); /* the service's own stay there */
	assert_int_equal(st.services[0].n_backends, 1);
	assert_int_equal(h->n_routes, 0);
	assert_null(h->routes);
	assert_int_equal(h->n_access, 0);
	assert_null(h->access);
	assert_int_equal(h->retry_budget_percent, 20);
	assert_int_equal(h->retry_min_concurrent, 3);
	assert_null(st.services[1].http);
	cfg_free(&st);

	/* A route with nothing: every request to "default", the proxy's timeouts. */
	load_ok("proxy: {timeouts: {connect_ms: 7, request_ms: 8, idle_ms: 9}}\n"
		"services:\n"
		"  - vip: 198.18.0.10:80/tcp\n"
		"    l7: http\n"
		"    http: {routes: [{match: {}}], access: [{action: deny}]}\n",
		&st);
	h = st.services[0].http;
	assert_int_equal(h->routes[0].n_splits, 1);
	assert_int_equal(h->routes[0].splits[0].group, 0);
	assert_int_equal(h->routes[0].splits[0].weight, 1);
	assert_int_equal(h->routes[0].connect_timeout_ms, 7);
	assert_int_equal(h->routes[0].request_timeout_ms, 8);
	assert_int_equal(h->routes[0].idle_timeout_ms, 9);
	assert_int_equal(h->routes[0].retries, 1);
	assert_int_equal(h->routes[0].retry_on, CFG_RETRY_DEFAULT);
	assert_int_equal(h->access[0].id, 1);
	assert_int_equal(h->access[0].from.kind, POL_PEER_ANY);
	assert_int_equal(h->access[0].methods, 0);
	assert_int_equal(h->access[0].path_kind, CFG_PATH_ANY);
	cfg_free(&st);
}

/* groups[0] is "default" whether or not the file has it, and wherever. */
static void test_default_group(void **state)
{
	struct cfg_state st;
	const struct cfg_http *h;

	(void)state;
	load_ok("services:\n"
		"  - vip: 198.18.0.10:80/tcp\n"
		"    l7: http\n"
		"    http:\n"
		"      routes: [{to: b}, {to: default}, {to: a}]\n"
		"      groups:\n"
		"        - {name: a, backends: [198.18.1.2:80]}\n"
		"        - {name: b, backends: [198.18.1.2:80], lb: least-request}\n",
		&st);
	h = st.services[0].http;
	assert_int_equal(h->n_groups, 3);
	assert_group_defaults(&h->groups[0], "default");
	assert_int_equal(h->groups[0].line, 0);
	assert_string_equal(h->groups[1].name, "a");
	assert_string_equal(h->groups[2].name, "b");
	assert_int_equal(h->groups[2].lb, CFG_LB_LEAST_REQUEST);
	assert_int_equal(h->routes[0].splits[0].group, 2);
	assert_int_equal(h->routes[1].splits[0].group, 0);
	assert_int_equal(h->routes[2].splits[0].group, 1);
	cfg_free(&st);

	/* Its entry may come last, with only a name: the defaults. */
	load_ok("services:\n"
		"  - vip: 198.18.0.10:80/tcp\n"
		"    l7: http\n"
		"    http:\n"
		"      groups: [{name: x, backends: [198.18.1.2:80]}, {name: default}]\n",
		&st);
	h = st.services[0].http;
	assert_int_equal(h->n_groups, 2);
	assert_group_defaults(&h->groups[0], "default");
	assert_int_equal(h->groups[0].line, 5);
	assert_string_equal(h->groups[1].name, "x");
	cfg_free(&st);
}

/* ---- round trip ---- */

/* Field by field: the padding byte of struct addr_port is not data. */
static void assert_addr_same(const struct addr_port *a, const struct addr_port *b)
{
	assert_int_equal(a->family, b->family);
	assert_int_equal(a->port, b->port);
	assert_memory_equal(a->addr, b->addr, sizeof(a->addr));
}

static void assert_group_same(const struct cfg_http_group *a, const struct cfg_http_group *b)
{
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->lb, b->lb);
	assert_string_equal(a->hash_header, b->hash_header);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->max_pending, b->max_pending);
	assert_int_equal(a->max_requests, b->max_requests);
	assert_int_equal(a->consecutive_5xx, b->consecutive_5xx);
	assert_int_equal(a->base_ejection_ms, b->base_ejection_ms);
	assert_int_equal(a->max_ejection_percent, b->max_ejection_percent);
	assert_int_equal(a->n_backends, b->n_backends);
	for (size_t i = 0; i < a->n_backends; i++) {
		assert_addr_same(&a->backends[i].addr, &b->backends[i].addr);
		assert_int_equal(a->backends[i].weight, b->backends[i].weight);
	}
}

/* Byte for byte but the file positions (the parser zeroes what it does
 * not set, and the copy copies bytes). */
static void assert_route_same(const struct cfg_http_route *a, const struct cfg_http_route *b)
{
	static struct cfg_http_route x, y;

	memcpy(&x, a, sizeof(x));
	memcpy(&y, b, sizeof(y));
	x.line = x.column = y.line = y.column = 0;
	assert_memory_equal(&x, &y, sizeof(x));
}

/* from by its text: struct pol_prefix has padding. */
static void assert_access_same(const struct cfg_http_access *a, const struct cfg_http_access *b)
{
	char x[512], y[512];

	assert_int_equal(a->id, b->id);
	assert_int_equal(a->action, b->action);
	pol_peer_format(&a->from, x, sizeof(x));
	pol_peer_format(&b->from, y, sizeof(y));
	assert_string_equal(x, y);
	assert_int_equal(a->methods, b->methods);
	assert_int_equal(a->path_kind, b->path_kind);
	assert_string_equal(a->path, b->path);
}

static void assert_http_same(const struct cfg_http *a, const struct cfg_http *b)
{
	if (!a || !b) {
		assert_ptr_equal(a, b);
		return;
	}
	assert_int_equal(a->retry_budget_percent, b->retry_budget_percent);
	assert_int_equal(a->retry_min_concurrent, b->retry_min_concurrent);
	assert_int_equal(a->n_groups, b->n_groups);
	for (size_t i = 0; i < a->n_groups; i++)
		assert_group_same(&a->groups[i], &b->groups[i]);
	assert_int_equal(a->n_routes, b->n_routes);
	for (size_t i = 0; i < a->n_routes; i++)
		assert_route_same(&a->routes[i], &b->routes[i]);
	assert_int_equal(a->n_access, b->n_access);
	for (size_t i = 0; i < a->n_access; i++)
		assert_access_same(&a->access[i], &b->access[i]);
}

static void assert_proxy_same(const struct cfg_proxy *a, const struct cfg_proxy *b)
{
	assert_int_equal(a->n_listen, b->n_listen);
	for (unsigned int i = 0; i < a->n_listen; i++)
		assert_addr_same(&a->listen[i], &b->listen[i]);
	assert_int_equal(a->workers, b->workers);
	assert_int_equal(a->max_request_line, b->max_request_line);
	assert_int_equal(a->max_header_bytes, b->max_header_bytes);
	assert_int_equal(a->max_headers, b->max_headers);
	assert_true(a->max_body_bytes == b->max_body_bytes);
	assert_int_equal(a->header_timeout_ms, b->header_timeout_ms);
	assert_int_equal(a->client_idle_ms, b->client_idle_ms);
	assert_int_equal(a->connect_timeout_ms, b->connect_timeout_ms);
	assert_int_equal(a->request_timeout_ms, b->request_timeout_ms);
	assert_int_equal(a->idle_timeout_ms, b->idle_timeout_ms);
	assert_int_equal(a->upstream_idle_ms, b->upstream_idle_ms);
	assert_string_equal(a->access_log, b->access_log);
	assert_int_equal(a->access_log_json, b->access_log_json);
	assert_addr_same(&a->metrics, &b->metrics);
	assert_string_equal(a->default_service, b->default_service);
}

static void assert_state_same(const struct cfg_state *a, const struct cfg_state *b)
{
	assert_int_equal(a->n_services, b->n_services);
	for (size_t i = 0; i < a->n_services; i++) {
		const struct cfg_service *x = &a->services[i], *y = &b->services[i];

		assert_memory_equal(&x->key, &y->key, sizeof(x->key));
		assert_string_equal(x->name, y->name);
		assert_int_equal(x->l7, y->l7);
		assert_int_equal(x->n_backends, y->n_backends);
		assert_http_same(x->http, y->http);
	}
	assert_proxy_same(&a->proxy, &b->proxy);
}

static char *write_state(const struct cfg_state *st)
{
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(cfg_write(f, st), 0);
	fclose(f);
	return text;
}

/* Quoting and escaping that YAML must read back as it was written. */
static const char odd_config[] =
	"services:\n"
	"  - vip: \"[fd00::10]:443/tcp\"\n"
	"    l7: http\n"
	"    http:\n"
	"      groups:\n"
	"        - {name: default, lb: hash, hash_header: \"x-'tok*\", "
	"circuit_breaker: {max_requests: 9}}\n"
	"        - {name: \"null\", backends: [\"[fd00::1]:80\", \"[fd00::2]:80\"]}\n"
	"        - {name: \"-x\", backends: [{address: \"[fd00::3]:80\", weight: 1000}]}\n"
	"      routes:\n"
	"        - match: {path: \"/a\\\"b\\\\c\", headers: {\"#x\": \"a\\tb \\\"q\\\" \\u00e9\"}}\n"
	"          to: [{group: \"null\"}]\n"
	"          retries: {attempts: 10, on: [reset]}\n"
	"        - {to: \"-x\", timeouts: {idle_ms: 3600000}}\n"
	"      access: [{id: 2147483647, action: allow, from: \"!canary\", path: /x}]\n"
	"proxy:\n"
	"  access_log: {path: \"a \\\"b\\\"\"}\n"
	"  limits: {headers: 8}\n";

static void round_trip(const char *config)
{
	struct cfg_state st, again, copy;
	struct cfg_error err;
	char *text, *text2, msg[1024];

	load_ok(config, &st);
	text = write_state(&st);
	if (load(text, &again, &err)) {
		cfg_error_format(&err, msg, sizeof(msg));
		fail_msg("%s\n--- written:\n%s", msg, text);
	}
	assert_state_same(&st, &again);
	text2 = write_state(&again);
	assert_string_equal(text, text2); /* a fixed point */
	assert_int_equal(cfg_copy(&copy, &st), 0);
	assert_state_same(&st, &copy);
	for (size_t i = 0; i < st.n_services; i++) {
		if (st.services[i].http)
			assert_ptr_not_equal(copy.services[i].http, st.services[i].http);
	}
	free(text2);
	text2 = write_state(&copy);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	cfg_free(&copy);
	cfg_free(&again);
	cfg_free(&st);
}

/* cfg_write() gives what parses back to the same state, cfg_copy() a
 * deep copy that cfg_free() releases (ASan checks both). */
static void test_round_trip(void **state)
{
	struct cfg_state st;
	char *text;

	(void)state;
	round_trip(full_config);
	round_trip(odd_config);
	load_ok(full_config, &st);
	text = write_state(&st);
	/* the proxy's timeouts are left out of routes, the rest kept */
	assert_non_null(strstr(text, "          timeouts: { connect_ms: 500, request_ms: 5000 }\n"
				     "          retries: { attempts: 2, on: [connect-failure, "
				     "reset, 502, 503, 504] }\n"));
	assert_non_null(strstr(text, "  limits: { request_line: 4096, header_bytes: 8192, "
				     "headers: 50, body_bytes: 4611686018427387904 }\n"));
	free(text);
	cfg_free(&st);
}

/* A state with neither http nor proxy settings is written as before they
 * existed; a zeroed proxy (a state no load made) writes nothing either. */
static void test_write_without_http(void **state)
{
	static const char plain[] = "services:\n  - vip: \"198.19.0.1:80/tcp\"\n    backends: []\n";
	struct cfg_state st, made = { 0 };
	struct cfg_service svc = { .key = { .proto = SL_PROTO_TCP } };
	char *text;

	(void)state;
	load_ok("services:\n  - vip: 198.19.0.1:80/tcp\nproxy: {}\n", &st);
	text = write_state(&st);
	assert_string_equal(text, plain);
	free(text);
	cfg_free(&st);
	assert_int_equal(addr_parse_service("198.19.0.1:80/tcp", &svc.key), 0);
	assert_non_null(cfg_add_service(&made, &svc));
	text = write_state(&made);
	assert_string_equal(text, plain);
	free(text);
	cfg_free(&made);
}

/* cfg_remove_service() frees a service's http (ASan would see a leak). */
static void test_remove_service(void **state)
{
	struct cfg_state st;

	(void)state;
	load_ok(full_config, &st);
	cfg_remove_service(&st, &st.services[0]);
	assert_int_equal(st.n_services, 2);
	assert_string_equal(st.services[0].name, "web");
	cfg_free(&st);
}

/* ---- invalid configs ---- */

/* services[0], l7, with its http key's mapping from line 5, column 7. */
#define L7 "services:\n  - vip: 198.18.0.10:80/tcp\n    l7: http\n    http:\n"
#define GROUPS L7 "      groups:\n" /* groups[0] on line 6, column 11 */
#define ROUTES L7 "      groups: [{name: v2, backends: [198.18.1.5:80]}]\n      routes:\n"
#define ACCESS L7 "      access:\n" /* access[0] on line 6 */
#define ADDR4 "198.18.1.5:80"

static const struct bad_case bad_http_cases[] = {
	{ "http without l7", "services:\n  - vip: 198.18.0.10:80/tcp\n    http: {}\n", 3, 5,
	  "services[0].http", "'http' needs 'l7: http'" },
	{ "http on a later non-l7 service",
	  "services:\n  - vip: 198.18.0.10:80/tcp\n    l7: http\n"
	  "  - http: {}\n    vip: 198.18.0.11:80/tcp\n",
	  4, 5, "services[1].http", "'http' needs 'l7: http'" },
	{ "http is a sequence", L7 "      - routes\n", 5, 7, "services[0].http",
	  "expected a mapping, got a sequence" },
	{ "unknown http key", L7 "      route: []\n", 5, 7, "services[0].http.route",
	  "unknown key 'route' (did you mean 'routes'?)" },
	{ "retry budget over 100", L7 "      retry_budget: {percent: 101}\n", 5, 31,
	  "services[0].http.retry_budget.percent", "101 is out of range 0..100" },
	{ "group without name", GROUPS "        - backends: [" ADDR4 "]\n", 6, 11,
	  "services[0].http.groups[0].name", "missing required key 'name'" },
	{ "group name with a space", GROUPS "        - {name: \"v 2\", backends: [" ADDR4 "]}\n", 6,
	  18, "services[0].http.groups[0].name", "has characters other than" },
	{ "duplicate group",
	  GROUPS "        - {name: v2, backends: [" ADDR4 "]}\n"
		 "        - {name: v2, backends: [" ADDR4 "]}\n",
	  7, 12, "services[0].http.groups[1].name", "duplicate group 'v2' (first at line 6)" },
	{ "group without backends", GROUPS "        - {name: v2, lb: least-request}\n", 6, 11,
	  "services[0].http.groups[0].backends", "missing required key 'backends'" },
	{ "group with no backend", GROUPS "        - {name: v2, backends: []}\n", 6, 22,
	  "services[0].http.groups[0].backends", "group 'v2' has no backends" },
	{ "default group with backends",
	  GROUPS "        - backends: [" ADDR4 "]\n          name: default\n", 6, 11,
	  "services[0].http.groups[0].backends", "group 'default' is the service's own backends" },
	{ "default group twice", GROUPS "        - name: default\n        - name: default\n", 7, 11,
	  "services[0].http.groups[1].name", "duplicate group 'default' (first at line 6)" },
	{ "unknown lb", GROUPS "        - {name: v2, lb: random, backends: [" ADDR4 "]}\n", 6, 26,
	  "services[0].http.groups[0].lb",
	  "unknown lb policy 'random' (round-robin, least-request or hash)" },
	{ "hash without header", GROUPS "        - {name: v2, lb: hash, backends: [" ADDR4 "]}\n",
	  6, 22, "services[0].http.groups[0].lb", "lb: hash needs 'hash_header'" },
	{ "hash header without hash", GROUPS "        - {name: default, hash_header: x-user}\n", 6,
	  27, "services[0].http.groups[0].hash_header", "'hash_header' applies only to lb: hash" },
	{ "bad hash header",
	  GROUPS "        - {name: default, lb: hash, hash_header: \"x user\"}\n", 6, 50,
	  "services[0].http.groups[0].hash_header", "header name 'x user': invalid character ' '" },
	{ "duplicate group backend",
	  GROUPS "        - name: v2\n          backends:\n            - " ADDR4
		 "\n            - 198.18.1.6:80\n            - {address: " ADDR4 "}\n",
	  10, 15, "services[0].http.groups[0].backends[2]",
	  "duplicate backend 198.18.1.5:80 (first at line 8)" },
	{ "group backend weight",
	  GROUPS "        - {name: v2, backends: [{address: " ADDR4 ", weight: 1001}]}\n", 6, 66,
	  "services[0].http.groups[0].backends[0].weight", "1001 is out of range 0..1000" },
	{ "group backend bad address", GROUPS "        - {name: v2, backends: [198.18.1.5]}\n", 6,
	  33, "services[0].http.groups[0].backends[0]", "invalid address '198.18.1.5'" },
	{ "IPv6 group backend, vip after http",
	  "services:\n  - l7: http\n    http:\n      groups:\n"
	  "        - {name: default}\n        - {name: a, backends: [" ADDR4 "]}\n"
	  "        - {name: b, backends: [\"" ADDR4 "\", \"[fd00::1]:80\"]}\n"
	  "    vip: 198.18.0.10:80/tcp\n",
	  7, 49, "services[0].http.groups[2].backends[1]",
	  "IPv6 backend in an IPv4 service (198.18.0.10:80/tcp)" },
	{ "breaker over the limit",
	  GROUPS "        - {name: default, circuit_breaker: {max_connections: 1000001}}\n", 6, 62,
	  "services[0].http.groups[0].circuit_breaker.max_connections",
	  "1000001 is out of range 0..1000000" },
	{ "ejection time 0", GROUPS "        - {name: default, outlier: {base_ejection_ms: 0}}\n",
	  6, 55, "services[0].http.groups[0].outlier.base_ejection_ms",
	  "0 is out of range 1..3600000" },
	{ "route to an unknown group", ROUTES "        - to: v3\n", 7, 15,
	  "services[0].http.routes[0].to", "unknown group 'v3' (groups: default, v2)" },
	{ "split to an unknown group",
	  ROUTES "        - to: [{group: v2, weight: 1}, {group: v3, weight: 1}]\n", 7, 48,
	  "services[0].http.routes[0].to[1].group", "unknown group 'v3'" },
	{ "routes before an unknown group",
	  L7 "      routes: [{to: v2}]\n      groups: [{name: v1, backends: [" ADDR4 "]}]\n", 5, 21,
	  "services[0].http.routes[0].to", "unknown group 'v2' (groups: default, v1)" },
	{ "group twice in a route", ROUTES "        - to: [{group: v2}, {group: v2}]\n", 7, 37,
	  "services[0].http.routes[0].to[1].group", "group 'v2' twice in one route" },
	{ "split weight 0", ROUTES "        - to: [{group: v2, weight: 0}]\n", 7, 36,
	  "services[0].http.routes[0].to[0].weight", "0 is out of range 1..10000" },
	{ "nine splits",
	  ROUTES "        - to: [{group: a}, {group: b}, {group: c}, {group: d}, {group: e}, "
		 "{group: f}, {group: g}, {group: h}, {group: i}]\n",
	  7, 112, "services[0].http.routes[0].to[8]", "more than 8 groups in one route" },
	{ "empty to", ROUTES "        - to: []\n", 7, 15, "services[0].http.routes[0].to",
	  "an empty list: leave 'to' out for the group 'default'" },
	{ "to a mapping", ROUTES "        - to: {group: v2}\n", 7, 15,
	  "services[0].http.routes[0].to", "expected a group name or a list of {group, weight}" },
	{ "split without group", ROUTES "        - to: [{weight: 5}]\n", 7, 16,
	  "services[0].http.routes[0].to[0].group", "missing required key 'group'" },
	{ "route is a scalar", ROUTES "        - v2\n", 7, 11, "services[0].http.routes[0]",
	  "expected a route mapping, got a scalar" },
	{ "path and prefix", ROUTES "        - match: {prefix: /a, path: /b}\n", 7, 31,
	  "services[0].http.routes[0].match.path",
	  "'path' (exact) and 'prefix' exclude each other" },
	{ "relative prefix", ROUTES "        - match: {prefix: v2/}\n", 7, 27,
	  "services[0].http.routes[0].match.prefix", "prefix must start with '/'" },
	{ "path with a space", ROUTES "        - match: {path: \"/a b\"}\n", 7, 25,
	  "services[0].http.routes[0].match.path", "path must be printable ASCII without spaces" },
	{ "path with a query", ROUTES "        - match: {path: \"/a?b=1\"}\n", 7, 25,
	  "services[0].http.routes[0].match.path", "path has '?': the query is not matched" },
	{ "host with a port", ROUTES "        - match: {host: \"a.com:80\"}\n", 7, 25,
	  "services[0].http.routes[0].match.host", "host 'a.com:80' has a port" },
	{ "wildcard inside a host", ROUTES "        - match: {host: \"a.*.com\"}\n", 7, 25,
	  "services[0].http.routes[0].match.host", "a wildcard is '*.' before a domain" },
	{ "bare wildcard host", ROUTES "        - match: {host: \"*.\"}\n", 7, 25,
	  "services[0].http.routes[0].match.host", "a wildcard is '*.' before a domain" },
	{ "host with an empty label", ROUTES "        - match: {host: a..com}\n", 7, 25,
	  "services[0].http.routes[0].match.host", "host 'a..com' has an empty label" },
	{ "host with an underscore", ROUTES "        - match: {host: a_b.com}\n", 7, 25,
	  "services[0].http.routes[0].match.host", "use A-Z a-z 0-9 - and ." },
	{ "lower-case method", ROUTES "        - match: {methods: [GET, get]}\n", 7, 34,
	  "services[0].http.routes[0].match.methods[1]",
	  "unknown method 'get' (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE or CONNECT)" },
	{ "method twice", ROUTES "        - match: {methods: [GET, HEAD, GET]}\n", 7, 40,
	  "services[0].http.routes[0].match.methods[2]", "method GET listed twice" },
	{ "no methods", ROUTES "        - match: {methods: []}\n", 7, 28,
	  "services[0].http.routes[0].match.methods",
	  "an empty list: leave 'methods' out for every method" },
	{ "null methods", ROUTES "        - match:\n            methods:\n          to: v2\n", 8,
	  21, "services[0].http.routes[0].match.methods", "expected a list, got null" },
	{ "nine header matches",
	  ROUTES "        - match: {headers: {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, "
		 "i: 9}}\n",
	  7, 77, "services[0].http.routes[0].match.headers.i", "more than 8 header matches" },
	{ "header name with a space", ROUTES "        - match: {headers: {\"x y\": \"1\"}}\n", 7,
	  29, "services[0].http.routes[0].match.headers.x y",
	  "header name 'x y': invalid character ' '" },
	{ "header twice in two cases",
	  ROUTES "        - match: {headers: {X-A: \"1\", x-a: \"2\"}}\n", 7, 39,
	  "services[0].http.routes[0].match.headers.x-a", "header 'x-a' matched twice" },
	{ "null header value", ROUTES "        - match: {headers: {x-a: }}\n", 7, 34,
	  "services[0].http.routes[0].match.headers.x-a", "got null" },
	{ "header value with a blank", ROUTES "        - match: {headers: {x-a: \" 1\"}}\n", 7, 34,
	  "services[0].http.routes[0].match.headers.x-a", "blank at an end" },
	{ "header value with a control", ROUTES "        - match: {headers: {x-a: \"a\\rb\"}}\n", 7,
	  34, "services[0].http.routes[0].match.headers.x-a", "control byte 0x0d" },
	{ "headers a list", ROUTES "        - match: {headers: [x-a]}\n", 7, 28,
	  "services[0].http.routes[0].match.headers",
	  "expected a mapping of header names to values, got a sequence" },
	{ "retries over 10", ROUTES "        - retries: {attempts: 11}\n", 7, 31,
	  "services[0].http.routes[0].retries.attempts", "11 is out of range 0..10" },
	{ "unknown retry condition", ROUTES "        - retries: {on: [503, 500]}\n", 7, 31,
	  "services[0].http.routes[0].retries.on[1]", "unknown retry condition '500'" },
	{ "no retry conditions", ROUTES "        - retries: {on: []}\n", 7, 25,
	  "services[0].http.routes[0].retries.on",
	  "an empty list: set attempts: 0 for no retries" },
	{ "retry condition twice", ROUTES "        - retries: {on: [503, \"503\"]}\n", 7, 31,
	  "services[0].http.routes[0].retries.on[1]", "503 listed twice" },
	{ "route timeout 0", ROUTES "        - timeouts: {request_ms: 0}\n", 7, 34,
	  "services[0].http.routes[0].timeouts.request_ms", "0 is out of range 1..3600000" },
	{ "access without action", ACCESS "        - {from: app=web}\n", 6, 11,
	  "services[0].http.access[0].action", "missing required key 'action'" },
	{ "access action", ACCESS "        - {action: drop}\n", 6, 20,
	  "services[0].http.access[0].action", "unknown action 'drop' (allow or deny)" },
	{ "access source", ACCESS "        - {action: deny, from: \"app=web,,x\"}\n", 6, 32,
	  "services[0].http.access[0].from", "empty selector term" },
	{ "access id twice",
	  ACCESS "        - {id: 3, action: deny}\n        - {id: 3, action: allow}\n", 7, 11,
	  "services[0].http.access[1]", "duplicate access rule id 3 (first at line 6)" },
	{ "access id taken by a position",
	  ACCESS "        - {id: 2, action: deny}\n        - {action: allow}\n", 7, 11,
	  "services[0].http.access[1]", "access rule id 2 is also the rule's at line 6" },
	{ "access id 0", ACCESS "        - {id: 0, action: deny}\n", 6, 16,
	  "services[0].http.access[0].id", "0 is out of range 1..2147483647" },
	{ "access path and prefix", ACCESS "        - {action: deny, path: /a, prefix: /b}\n", 6,
	  36, "services[0].http.access[0].prefix",
	  "'path' (exact) and 'prefix' exclude each other" },
	{ "access method", ACCESS "        - {action: deny, methods: PURGE}\n", 6, 35,
	  "services[0].http.access[0].methods", "unknown method 'PURGE'" },
};

#define SVC_API "services:\n  - {name: api, vip: 198.18.0.10:80/tcp, l7: http}\n"

static const struct bad_case bad_proxy_cases[] = {
	{ "proxy twice", "proxy: {}\nproxy: {}\n", 2, 1, "proxy",
	  "duplicate key 'proxy' (first at line 1)" },
	{ "proxy a scalar", "proxy: 1\n", 1, 8, "proxy", "expected a mapping, got a scalar" },
	{ "proxy null", "proxy:\nservices: []\n", 1, 7, "proxy", "expected a mapping, got null" },
	{ "unknown proxy key", "proxy:\n  listn: []\n", 2, 3, "proxy.listn",
	  "unknown key 'listn' (did you mean 'listen'?)" },
	{ "no listen address", "proxy: {listen: []}\n", 1, 17, "proxy.listen",
	  "an empty list: leave 'listen' out for 127.0.0.1:15001" },
	{ "five listen addresses",
	  "proxy: {listen: [127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3, 127.0.0.1:4, 127.0.0.1:5]}\n", 1,
	  70, "proxy.listen[4]", "more than 4 listen addresses" },
	{ "listen address twice", "proxy: {listen: [127.0.0.1:1, \"127.0.0.1:1\"]}\n", 1, 31,
	  "proxy.listen[1]", "127.0.0.1:1 is listed twice" },
	{ "listen at a name", "proxy: {listen: [localhost:80]}\n", 1, 18, "proxy.listen[0]",
	  "invalid address 'localhost:80': not an IPv4 address" },
	{ "listen IPv6 unquoted", "proxy: {listen: [[::1]:80]}\n", 1, 18, "proxy.listen[0]",
	  "quote IPv6 addresses" },
	{ "workers over 64", "proxy: {workers: 65}\n", 1, 18, "proxy.workers",
	  "65 is out of range 0..64" },
	{ "no such default service", SVC_API "proxy: {default_service: web}\n", 3, 26,
	  "proxy.default_service", "no service called 'web'" },
	{ "default service not l7",
	  "proxy:\n  default_service: web\nservices:\n  - {name: web, vip: 198.18.0.10:80/tcp}\n",
	  2, 20, "proxy.default_service", "service 'web' (line 4) is not l7: http" },
	{ "default service twice",
	  SVC_API "  - {name: api, vip: 198.18.0.11:80/tcp, l7: http}\n"
		  "proxy: {default_service: api}\n",
	  4, 26, "proxy.default_service", "services at lines 2 and 3 are both called 'api'" },
	{ "default service name", "proxy: {default_service: \"a/b\"}\n", 1, 26,
	  "proxy.default_service", "has characters other than" },
	{ "head smaller than the line",
	  "proxy:\n  limits: {request_line: 4096, header_bytes: 2048}\n", 2, 32,
	  "proxy.limits.header_bytes", "header_bytes 2048 is less than request_line 4096" },
	{ "line longer than the default head", "proxy:\n  limits:\n    request_line: 65536\n", 3, 5,
	  "proxy.limits.request_line", "header_bytes 32768 is less than request_line 65536" },
	{ "body over 2^62", "proxy: {limits: {body_bytes: 4611686018427387905}}\n", 1, 30,
	  "proxy.limits.body_bytes", "4611686018427387905 is out of range 0..4611686018427387904" },
	{ "body over 2^64", "proxy: {limits: {body_bytes: 99999999999999999999999}}\n", 1, 30,
	  "proxy.limits.body_bytes", "is out of range 0..4611686018427387904" },
	{ "negative body", "proxy: {limits: {body_bytes: -1}}\n", 1, 30, "proxy.limits.body_bytes",
	  "expected a decimal integer in 0..4611686018427387904, got '-1'" },
	{ "quoted body", "proxy: {limits: {body_bytes: \"1\"}}\n", 1, 30, "proxy.limits.body_bytes",
	  "got a quoted string" },
	{ "request line too short", "proxy: {limits: {request_line: 255}}\n", 1, 32,
	  "proxy.limits.request_line", "255 is out of range 256..65536" },
	{ "too few headers", "proxy: {limits: {headers: 7}}\n", 1, 27, "proxy.limits.headers",
	  "7 is out of range 8..1000" },
	{ "header timeout over an hour", "proxy: {timeouts: {header_ms: 3600001}}\n", 1, 31,
	  "proxy.timeouts.header_ms", "3600001 is out of range 1..3600000" },
	{ "unknown timeout", "proxy: {timeouts: {conect_ms: 1}}\n", 1, 20,
	  "proxy.timeouts.conect_ms", "did you mean 'connect_ms'?" },
	{ "log format", "proxy: {access_log: {format: xml}}\n", 1, 30, "proxy.access_log.format",
	  "unknown format 'xml' (text or json)" },
	{ "log path control", "proxy: {access_log: {path: \"a\\x01b\"}}\n", 1, 28,
	  "proxy.access_log.path", "path must not hold control characters" },
	{ "metrics without a port", "proxy: {metrics: 127.0.0.1}\n", 1, 18, "proxy.metrics",
	  "invalid address '127.0.0.1': expected ADDR:PORT" },
};

/* Line @line of @text with a caret under @column, to see a position. */
static void print_place(const char *text, unsigned int line, unsigned int column)
{
	const char *start = text, *end;

	for (unsigned int i = 1; i < line && start; i++) {
		start = strchr(start, '\n');
		start = start ? start + 1 : NULL;
	}
	if (!start || !column)
		return;
	end = strchr(start, '\n');
	print_error("  | %.*s\n  | %*s^\n", (int)(end ? end - start : (long)strlen(start)), start,
		    (int)column - 1, "");
}

/* Every case fails at its place with -EINVAL, and leaves @st all zero. */
static size_t run_bad_cases(const struct bad_case *cases, size_t n)
{
	static const struct cfg_state zero;
	char formatted[1024];
	struct cfg_state st;
	struct cfg_error err;
	size_t failed = 0;
	int ret;

	for (size_t i = 0; i < n; i++) {
		const struct bad_case *c = &cases[i];

		memset(&st, 0xa5, sizeof(st));
		ret = load(c->text, &st, &err);
		cfg_error_format(&err, formatted, sizeof(formatted));
		if (ret != -EINVAL || err.line != c->line || err.column != c->column ||
		    strcmp(err.field, c->field) || !strstr(err.message, c->message)) {
			print_error("%s: got %d \"%s\"\n  want %u:%u: %s: ...%s...\n", c->desc, ret,
				    formatted, c->line, c->column, c->field, c->message);
			print_place(c->text, err.line, err.column);
			failed++;
		}
		if (memcmp(&st, &zero, sizeof(st))) {
			print_error("%s: the state is not zeroed\n", c->desc);
			failed++;
		}
	}
	return failed;
}

static void test_invalid_http(void **state)
{
	(void)state;
	assert_int_equal(
		run_bad_cases(bad_http_cases, sizeof(bad_http_cases) / sizeof(bad_http_cases[0])),
		0);
}

static void test_invalid_proxy(void **state)
{
	(void)state;
	assert_int_equal(run_bad_cases(bad_proxy_cases,
				       sizeof(bad_proxy_cases) / sizeof(bad_proxy_cases[0])),
			 0);
}

/* ---- limits ---- */

/* One l7 service whose http has @n groups (with default) or @n routes. */
static char *generate_http(size_t n, bool routes, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	assert_non_null(f);
	fputs(L7, f);
	fputs(routes ? "      routes:\n" : "      groups:\n", f);
	for (size_t i = routes ? 0 : 1; i < n; i++) {
		if (routes)
			fprintf(f, "        - {match: {prefix: /r%zu}}\n", i);
		else
			fprintf(f, "        - {name: g%zu, backends: [" ADDR4 "]}\n", i);
	}
	fclose(f);
	return text;
}

static void test_limits(void **state)
{
	struct cfg_state st;
	struct cfg_error err;
	size_t len;
	char *text;

	(void)state;
	text = generate_http(CFG_HTTP_MAX_GROUPS, false, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), 0);
	assert_int_equal(st.services[0].http->n_groups, CFG_HTTP_MAX_GROUPS);
	cfg_free(&st);
	free(text);
	text = generate_http(CFG_HTTP_MAX_GROUPS + 1, false, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), -EINVAL);
	assert_string_equal(err.field, "services[0].http.groups[63]");
	assert_string_equal(err.message, "more than 64 groups (with 'default')");
	free(text);

	text = generate_http(CFG_HTTP_MAX_ROUTES, true, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), 0);
	assert_int_equal(st.services[0].http->n_routes, CFG_HTTP_MAX_ROUTES);
	cfg_free(&st);
	free(text);
	text = generate_http(CFG_HTTP_MAX_ROUTES + 1, true, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), -EINVAL);
	assert_string_equal(err.field, "services[0].http.routes[1024]");
	assert_string_equal(err.message, "more than 1024 routes");
	free(text);

	/* 8 header matches fit */
	load_ok(ROUTES
		"        - match: {headers: {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}}\n"
		"          to: [{group: v2}, {group: default}]\n",
		&st);
	assert_int_equal(st.services[0].http->routes[0].n_headers, CFG_HTTP_MATCH_HEADERS);
	cfg_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_example),   cmocka_unit_test(test_proxy_defaults),
		cmocka_unit_test(test_http_defaults),  cmocka_unit_test(test_default_group),
		cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_write_without_http),
		cmocka_unit_test(test_remove_service), cmocka_unit_test(test_invalid_http),
		cmocka_unit_test(test_invalid_proxy),  cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests_name("config_http", tests, NULL, NULL);
}
