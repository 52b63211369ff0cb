/* The HTTP part of the config, read by sluice-proxy (the agent parses and
 * validates it with the rest, so one file is right or wrong for both):
 * per L7 service the backend groups, routes and access rules under its
 * `http:` key, and the proxy's own settings under the top-level `proxy:`
 * key. Types only; config_http.c parses them, docs/config.md and
 * docs/proxy.md describe them. */
#ifndef SLUICE_CFG_HTTP_H
#define SLUICE_CFG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "policy.h"

#define CFG_HTTP_NAME_MAX 64 /* group name, with the NUL */
#define CFG_HTTP_HOST_MAX 256 /* with the NUL */
#define CFG_HTTP_PATH_MAX 256 /* with the NUL */
#define CFG_HTTP_HNAME_MAX 64 /* header name, with the NUL */
#define CFG_HTTP_HVALUE_MAX 256 /* header value, with the NUL */
#define CFG_HTTP_MATCH_HEADERS 8 /* header matches per route */
#define CFG_HTTP_SPLITS 8 /* weighted groups per route */
#define CFG_HTTP_MAX_GROUPS 64 /* per service */
#define CFG_HTTP_MAX_ROUTES 1024 /* per service */
#define CFG_HTTP_MAX_ACCESS 1024 /* per service */
#define CFG_HTTP_MAX_ENDPOINTS 4096 /* per group */
#define CFG_HTTP_DEFAULT_GROUP "default" /* the service's own backends */

/* HTTP methods as bits; a route or access rule with none matches all. */
enum cfg_http_method {
	CFG_M_GET = 1 << 0,
	CFG_M_HEAD = 1 << 1,
	CFG_M_POST = 1 << 2,
	CFG_M_PUT = 1 << 3,
	CFG_M_DELETE = 1 << 4,
	CFG_M_PATCH = 1 << 5,
	CFG_M_OPTIONS = 1 << 6,
	CFG_M_TRACE = 1 << 7,
	CFG_M_CONNECT = 1 << 8,
	CFG_M_OTHER = 1 << 9, /* any extension method */
};

enum cfg_path_match {
	CFG_PATH_ANY = 0, /* no path key */
	CFG_PATH_EXACT, /* path: the whole path (query excluded) */
	CFG_PATH_PREFIX, /* prefix: the path starts with it */
};

enum cfg_lb_policy {
	CFG_LB_ROUND_ROBIN = 0, /* weighted, smooth (nginx's) */
	CFG_LB_LEAST_REQUEST, /* two random choices, fewer active requests wins */
	CFG_LB_HASH_HEADER, /* consistent (Maglev) hash of one request header */
};

/* When a failed attempt is tried again (route retries). */
enum cfg_retry_on {
	CFG_RETRY_CONNECT = 1 << 0, /* connect failed or timed out */
	CFG_RETRY_RESET = 1 << 1, /* upstream closed/reset before a response */
	CFG_RETRY_502 = 1 << 2,
	CFG_RETRY_503 = 1 << 3,
	CFG_RETRY_504 = 1 << 4, /* includes the proxy's own request timeout */
	CFG_RETRY_DEFAULT = CFG_RETRY_CONNECT | CFG_RETRY_RESET | CFG_RETRY_503,
};

/* A group of endpoints a route sends to (Envoy's cluster). */
struct cfg_http_group {
	char name[CFG_HTTP_NAME_MAX]; /* as cfg_name_valid() */
	enum cfg_lb_policy lb;
	char hash_header[CFG_HTTP_HNAME_MAX]; /* CFG_LB_HASH_HEADER: lower case */
	struct cfg_backend *backends; /* address + weight (0: never picked) */
	size_t n_backends;
	/* Circuit breaking per proxy worker; 0 = no limit. */
	uint32_t max_connections; /* open upstream connections */
	uint32_t max_pending; /* requests waiting for a connection */
	uint32_t max_requests; /* requests in flight */
	/* Outlier ejection: @consecutive_5xx in a row (0 = off) eject an
	 * endpoint for base_ejection_ms x times ejected (capped at 300 s), never
	 * more than max_ejection_percent of the group at once. */
	uint32_t consecutive_5xx; /* default 5 */
	uint32_t base_ejection_ms; /* default 30000 */
	uint32_t max_ejection_percent; /* default 50 */
	unsigned int line, column;
};

struct cfg_http_header_match {
	char name[CFG_HTTP_HNAME_MAX]; /* lower case */
	char value[CFG_HTTP_HVALUE_MAX]; /* exact, case-sensitive; unused when @present */
	bool present; /* value "*": the header exists with any value */
};

struct cfg_http_split {
	uint32_t group; /* index into cfg_http.groups (0: "default") */
	uint32_t weight; /* 1..10000; shares are weight / sum of the route's */
};

struct cfg_http_route {
	char host[CFG_HTTP_HOST_MAX]; /* "" any; lower case; "*.example.com" a suffix */
	enum cfg_path_match path_kind;
	char path[CFG_HTTP_PATH_MAX]; /* starts with '/' */
	uint32_t methods; /* enum cfg_http_method bits, 0 = any */
	struct cfg_http_header_match headers[CFG_HTTP_MATCH_HEADERS]; /* all must match */
	unsigned int n_headers;
	struct cfg_http_split splits[CFG_HTTP_SPLITS]; /* never empty after parsing */
	unsigned int n_splits;
	/* Timeouts, ms; the defaults come from the proxy section. */
	uint32_t connect_timeout_ms; /* upstream connect, per attempt */
	uint32_t request_timeout_ms; /* request start to the response head, all attempts */
	uint32_t idle_timeout_ms; /* no byte either way while a request is active */
	uint32_t retries; /* extra attempts, 0..10 (default 1) */
	uint32_t retry_on; /* enum cfg_retry_on bits */
	unsigned int line, column;
};

/* Allow or deny requests by source, method and path (L7 policy). Deny
 * wins; a service with any allow rule denies what none allows. */
struct cfg_http_access {
	uint32_t id; /* 1.., unique in the service: counters name it */
	enum pol_action action;
	struct pol_peer from; /* any, world, host, CIDR or endpoint selector */
	uint32_t methods; /* 0 = any */
	enum cfg_path_match path_kind;
	char path[CFG_HTTP_PATH_MAX];
	unsigned int line, column;
};

/* A service's `http:` key. Routes are tried in file order; the first that
 * matches wins; with no routes every request goes to "default". groups[0]
 * is always the group "default": the service's own `backends` (its
 * backends array stays empty), with the settings of a `groups` entry
 * called "default" if there is one (which may not list backends). */
struct cfg_http {
	struct cfg_http_group *groups; /* n_groups >= 1 */
	size_t n_groups;
	struct cfg_http_route *routes;
	size_t n_routes;
	struct cfg_http_access *access;
	size_t n_access;
	/* Retry budget: retries in flight may be at most @retry_budget_percent
	 * of the requests in flight, but @retry_min_concurrent always may. */
	uint32_t retry_budget_percent; /* default 20 */
	uint32_t retry_min_concurrent; /* default 3 */
};

/* The top-level `proxy:` key: sluice-proxy's settings. Every field has a
 * default when the key is absent (cfg_proxy_defaults()). */
struct cfg_proxy {
	struct addr_port listen[4]; /* where it accepts; default 127.0.0.1:15001 */
	unsigned int n_listen;
	uint32_t workers; /* 0 = one per online CPU */
	uint32_t max_request_line; /* bytes, default 8192 (414 past it) */
	uint32_t max_header_bytes; /* whole head, default 32768 (431) */
	uint32_t max_headers; /* count, default 100 (431) */
	uint64_t max_body_bytes; /* request body, default 1 GiB, 0 = no limit (413) */
	uint32_t header_timeout_ms; /* a request head must arrive within, default 10000 (408) */
	uint32_t client_idle_ms; /* keep-alive client with no request, default 60000 */
	uint32_t connect_timeout_ms; /* route default, 1000 */
	uint32_t request_timeout_ms; /* route default, 15000 */
	uint32_t idle_timeout_ms; /* route default, 60000 */
	uint32_t upstream_idle_ms; /* pooled upstream connection kept, default 30000 */
	char access_log[256]; /* "" off, "-" stderr, else a file path */
	bool access_log_json;
	struct addr_port metrics; /* Prometheus; port 0 = off */
	/* The service of connections with no original destination (not
	 * steered by the socket layer: a plain reverse proxy), "" none (404). */
	char default_service[32]; /* SL_SVC_NAME_MAX */
};

#endif
