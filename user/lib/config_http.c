/* A service's `http:` key (config_http.h, docs/config.md): backend groups,
 * routes and access rules, read with config.c's parser (config_internal.h),
 * and the helpers config_proxy.c shares. What spans keys is checked once
 * its parts are read: route groups at the end of `http:` (groups may
 * follow routes), backend families at the end of the service (the vip may
 * follow). The proxy key and the end-of-file checks are config_proxy.c's,
 * the writer and the deep copy config_write.c's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "lb.h"

#define CFG_SPLIT_WEIGHT_MAX 10000u
#define CFG_BREAKER_MAX 1000000u

/* ---- helpers ---- */

void cfg_http_free(struct cfg_http *http)
{
	if (!http)
		return;
	for (size_t i = 0; i < http->n_groups; i++)
		free(http->groups[i].backends);
	free(http->groups);
	free(http->routes);
	free(http->access);
	free(http);
}

/* A mapping key's value parsed with @fields into @obj: the mapping check
 * that every nested mapping starts with. */
int cfg_parse_submapping(struct cfg_parser *p, const struct cfg_field *fields, size_t n, void *obj,
			 struct cfg_seen *seen)
{
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected a mapping, got %s", cfg_event_kind(&p->event));
	return cfg_parse_mapping(p, fields, n, obj, seen);
}

struct list_parse {
	int (*item)(struct cfg_parser *p, void *obj);
	void *obj;
	size_t n;
};

static int list_item(struct cfg_parser *p, void *obj)
{
	struct list_parse *lp = obj;

	lp->n++;
	return lp->item(p, lp->obj);
}

/* A list key: a sequence, or one scalar standing for a list of itself.
 * Null and [] are refused with @hint: an empty `methods` read as "every
 * method" would surprise as much as "none". */
int cfg_parse_list(struct cfg_parser *p, int (*item)(struct cfg_parser *p, void *obj), void *obj,
		   const char *hint)
{
	struct list_parse lp = { .item = item, .obj = obj };
	yaml_mark_t start = p->event.start_mark;
	int err;

	if (cfg_event_is_null(&p->event))
		return cfg_fail(p, "expected a list, got null: %s", hint);
	if (p->event.type == YAML_SCALAR_EVENT)
		return item(p, obj);
	err = cfg_parse_sequence(p, list_item, &lp);
	if (!err && !lp.n)
		err = cfg_fail_pos(p, start.line + 1, start.column + 1, "an empty list: %s", hint);
	return err;
}

int cfg_parse_endpoint(struct cfg_parser *p, struct addr_port *out)
{
	const char *text;
	int err;

	/* [[::1]:80] reads as a list holding the mapping {[::1]: 80} */
	if (p->event.type == YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected ADDR:PORT, got a mapping (quote IPv6 addresses: "
				   "\"[fd00::1]:80\")");
	err = cfg_scalar_text(p, "ADDR:PORT", &text);
	if (err)
		return err;
	if (addr_parse_endpoint(text, out))
		return cfg_fail(p, "invalid address '%.64s': %s", text,
				cfg_endpoint_problem(text, strlen(text)));
	return 0;
}

/* The later of two keys of one mapping, both present. */
static int later_key(const struct cfg_seen *seen, int a, int b)
{
	const yaml_mark_t *x = &seen->key[a], *y = &seen->key[b];

	return x->line > y->line || (x->line == y->line && x->column > y->column) ? a : b;
}

/* `path` and `prefix` of a match or access rule: one at most. */
static int check_path_keys(struct cfg_parser *p, const struct cfg_seen *seen, int path, int prefix)
{
	int later;

	if (!(seen->mask & BIT(path)) || !(seen->mask & BIT(prefix)))
		return 0;
	later = later_key(seen, path, prefix);
	return cfg_fail_key(p, later == path ? "path" : "prefix", seen->key[later],
			    "'path' (exact) and 'prefix' exclude each other");
}

/* A key and the position of its entry, to find the first repeated key. */
struct dup_key {
	unsigned char key[20];
	uint32_t index;
};

static int dup_cmp(const void *a, const void *b)
{
	const struct dup_key *x = a, *y = b;
	int c = memcmp(x->key, y->key, sizeof(x->key));

	return c ? c : (x->index > y->index) - (x->index < y->index);
}

/*
 * first_repeat() - the entry of @keys whose key an earlier entry has, the
 * earliest in file order: its index (and the earlier one's in *@first),
 * or -1 when no key repeats. Sorts @keys: n log n where a scan per entry
 * would make 4096 backends cost 8 million compares.
 */
static long first_repeat(struct dup_key *keys, size_t n, uint32_t *first)
{
	long best = -1;

	qsort(keys, n, sizeof(*keys), dup_cmp);
	for (size_t i = 1; i < n; i++) {
		if (memcmp(keys[i].key, keys[i - 1].key, sizeof(keys[i].key)))
			continue;
		if (best < 0 || keys[i].index < (uint32_t)best) {
			best = keys[i].index;
			*first = keys[i - 1].index;
		}
	}
	return best;
}

/* ---- HTTP text: header names and values, hosts, paths, methods ---- */

static bool tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A field name (RFC 9110 token) into @out in lower case: the proxy lowers
 * what it reads, so names compare case-insensitively. */
static int copy_header_name(struct cfg_parser *p, const char *text, char *out)
{
	size_t len = strlen(text);

	if (!len)
		return cfg_fail(p, "empty header name");
	if (len >= CFG_HTTP_HNAME_MAX)
		return cfg_fail(p, "header name is %zu characters, the limit is %d", len,
				CFG_HTTP_HNAME_MAX - 1);
	for (const char *c = text; *c; c++) {
		if (tchar(*c))
			continue;
		if (*c >= ' ' && *c < 0x7f)
			return cfg_fail(p, "header name '%.40s': invalid character '%c'", text, *c);
		return cfg_fail(p, "header name '%.40s': invalid byte 0x%02x", text,
				(unsigned char)*c);
	}
	for (size_t i = 0; i <= len; i++)
		out[i] = text[i] >= 'A' && text[i] <= 'Z' ? text[i] + ('a' - 'A') : text[i];
	return 0;
}

/* A field value as HTTP carries it: no controls but HTAB, and no blank at
 * either end (parsers strip those, so such a value could never match). */
static int copy_header_value(struct cfg_parser *p, const char *text, char *out)
{
	size_t len = strlen(text);

	if (len >= CFG_HTTP_HVALUE_MAX)
		return cfg_fail(p, "header value is %zu bytes, the limit is %d", len,
				CFG_HTTP_HVALUE_MAX - 1);
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if ((*c < ' ' && *c != '\t') || *c == 0x7f)
			return cfg_fail(p, "header value: control byte 0x%02x", *c);
	}
	if (len && (strchr(" \t", text[0]) || strchr(" \t", text[len - 1])))
		return cfg_fail(p, "header value has a blank at an end, which HTTP strips");
	memcpy(out, text, len + 1);
	return 0;
}

/* A DNS name, lower case, "*." before it for any subdomain. Checked for
 * its characters and labels only: the proxy compares it with Host. */
static int check_host(struct cfg_parser *p, const char *text)
{
	const char *name = strncmp(text, "*.", 2) ? text : text + 2, *c;

	if (!*text)
		return cfg_fail(p, "empty host: leave 'host' out for any host");
	if (strlen(text) >= CFG_HTTP_HOST_MAX)
		return cfg_fail(p, "host is %zu characters, the limit is %d", strlen(text),
				CFG_HTTP_HOST_MAX - 1);
	if (strchr(text, ':'))
		return cfg_fail(p, "host '%.40s' has a port: routes match Host without it", text);
	for (c = name; *c; c++) {
		if (*c == '*')
			return cfg_fail(p, "host '%.40s': a wildcard is '*.' before a domain",
					text);
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
			return cfg_fail(p, "host '%.40s': use A-Z a-z 0-9 - and .", text);
		if (*c == '.' && (c == name || c[1] == '.' || !c[1]))
			return cfg_fail(p, "host '%.40s' has an empty label", text);
	}
	if (c == name)
		return cfg_fail(p, "host '%.40s': a wildcard is '*.' before a domain", text);
	return 0;
}

static int parse_host(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_http_route *route = obj;
	const char *text;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "a host name", &text);
	if (!err)
		err = check_host(p, text);
	if (err)
		return err;
	for (size_t i = 0; text[i]; i++)
		route->host[i] = text[i] >= 'A' && text[i] <= 'Z' ? text[i] + ('a' - 'A') : text[i];
	return 0;
}

/* path (exact) or prefix, as f->key says, into *@kind and @path. The
 * path is compared with the request's before its query: '?' and '#'
 * could never match. */
static int parse_path_into(struct cfg_parser *p, const struct cfg_field *f,
			   enum cfg_path_match *kind, char *path)
{
	const char *text;
	size_t len;
	int err;

	err = cfg_scalar_text(p, "a path", &text);
	if (err)
		return err;
	len = strlen(text);
	if (text[0] != '/')
		return cfg_fail(p, "%s must start with '/'", f->key);
	if (len >= CFG_HTTP_PATH_MAX)
		return cfg_fail(p, "%s is %zu bytes, the limit is %d", f->key, len,
				CFG_HTTP_PATH_MAX - 1);
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c <= ' ' || *c >= 0x7f)
			return cfg_fail(p, "%s must be printable ASCII without spaces", f->key);
		if (*c == '?' || *c == '#')
			return cfg_fail(p, "%s has '%c': the query is not matched", f->key, *c);
	}
	*kind = strcmp(f->key, "path") ? CFG_PATH_PREFIX : CFG_PATH_EXACT;
	memcpy(path, text, len + 1);
	return 0;
}

static int parse_route_path(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_http_route *route = obj;

	return parse_path_into(p, f, &route->path_kind, route->path);
}

static int parse_access_path(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_http_access *rule = obj;

	return parse_path_into(p, f, &rule->path_kind, rule->path);
}

static int parse_method(struct cfg_parser *p, void *obj)
{
	static const char *const words[] = { "GET",   "HEAD",	 "POST",  "PUT",    "DELETE",
					     "PATCH", "OPTIONS", "TRACE", "CONNECT" };
	uint32_t *methods = obj;
	unsigned int i = 0;
	int err;

	_Static_assert(CFG_M_CONNECT == 1 << 8, "words follow enum cfg_http_method");
	err = cfg_scalar_word(p, "method",
			      "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE or CONNECT",
			      words, ARRAY_SIZE(words), &i);
	if (err)
		return err;
	if (*methods & BIT(i))
		return cfg_fail(p, "method %s listed twice", words[i]);
	*methods |= BIT(i);
	return 0;
}

/* methods: at f->offset, a uint32_t of enum cfg_http_method bits. */
static int parse_methods(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	return cfg_parse_list(p, parse_method, (char *)obj + f->offset,
			      "leave 'methods' out for every method");
}

/* ---- groups ---- */

static void group_defaults(struct cfg_http_group *g)
{
	memset(g, 0, sizeof(*g));
	g->lb = CFG_LB_ROUND_ROBIN;
	g->consecutive_5xx = 5;
	g->base_ejection_ms = 30000;
	g->max_ejection_percent = 50;
}

static int parse_group_name(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_http_group *g = obj;
	const char *text;
	size_t len;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "a group name", &text);
	if (err)
		return err;
	len = strlen(text);
	if (!len)
		return cfg_fail(p, "name is empty");
	if (len >= SL_SVC_NAME_MAX)
		return cfg_fail(p, "name is %zu characters, the limit is %d", len,
				SL_SVC_NAME_MAX - 1);
	if (!cfg_name_valid(text))
		return cfg_fail(p, "name '%.40s' has characters other than A-Z a-z 0-9 . _ -",
				text);
	memcpy(g->name, text, len + 1);
	return 0;
}

static int parse_lb(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	static const char *const words[] = { "round-robin", "least-request", "hash" };
	static const enum cfg_lb_policy policies[] = { CFG_LB_ROUND_ROBIN, CFG_LB_LEAST_REQUEST,
						       CFG_LB_HASH_HEADER };
	struct cfg_http_group *g = obj;
	unsigned int i = 0;
	int err;

	(void)f;
	err = cfg_scalar_word(p, "lb policy", "round-robin, least-request or hash", words,
			      ARRAY_SIZE(words), &i);
	if (!err)
		g->lb = policies[i];
	return err;
}

static int parse_hash_header(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_http_group *g = obj;
	const char *text;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "a header name", &text);
	return err ? err : copy_header_name(p, text, g->hash_header);
}

static int parse_group_address(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_endpoint(p, &((struct cfg_backend *)obj)->addr);
}

static const struct cfg_field group_backend_fields[] = {
	{ .key = "address", .parse = parse_group_address },
	CFG_UINT("weight", struct cfg_backend, weight, 0, LB_WEIGHT_MAX),
};

/* One backend of group @obj, as a service's: "ADDR:PORT" or a mapping. */
static int parse_group_backend(struct cfg_parser *p, void *obj)
{
	struct cfg_http_group *g = obj;
	struct cfg_backend *be;
	struct cfg_seen seen;
	int err;

	if (g->n_backends == CFG_HTTP_MAX_ENDPOINTS)
		return cfg_fail(p, "more than %d backends in one group", CFG_HTTP_MAX_ENDPOINTS);
	be = cfg_grow(g->backends, g->n_backends, sizeof(*be));
	if (!be)
		return cfg_oom(p);
	g->backends = be;
	be += g->n_backends;
	memset(be, 0, sizeof(*be));
	be->weight = 1;
	be->line = p->event.start_mark.line + 1;
	be->column = p->event.start_mark.column + 1;
	if (p->event.type == YAML_MAPPING_START_EVENT) {
		err = cfg_parse_mapping(p, group_backend_fields, ARRAY_SIZE(group_backend_fields),
					be, &seen);
		if (!err && !(seen.mask & BIT(0)))
			err = cfg_fail_key(p, "address", seen.start,
					   "missing required key 'address'");
	} else {
		err = parse_group_address(p, NULL, be);
	}
	if (!err)
		g->n_backends++;
	return err;
}

/* No address twice in the group, blamed on its second entry. */
static int check_group_backends(struct cfg_parser *p, const struct cfg_http_group *g)
{
	struct dup_key *keys = calloc(g->n_backends, sizeof(*keys));
	const struct cfg_backend *be;
	char shown[ADDR_STR_MAX];
	uint32_t first = 0;
	long dup;

	if (!keys)
		return cfg_oom(p);
	for (size_t i = 0; i < g->n_backends; i++) {
		const struct addr_port *ap = &g->backends[i].addr;

		keys[i].key[0] = ap->family;
		memcpy(&keys[i].key[1], &ap->port, sizeof(ap->port));
		memcpy(&keys[i].key[3], ap->addr, sizeof(ap->addr));
		keys[i].index = i;
	}
	dup = first_repeat(keys, g->n_backends, &first);
	free(keys);
	if (dup < 0)
		return 0;
	be = &g->backends[dup];
	addr_format_endpoint(&be->addr, shown, sizeof(shown));
	cfg_path_push_index(p, dup);
	return cfg_fail_pos(p, be->line, be->column, "duplicate backend %s (first at line %u)",
			    shown, g->backends[first].line);
}

static int parse_group_backends(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_http_group *g = obj;
	int err;

	(void)f;
	err = cfg_parse_sequence(p, parse_group_backend, g);
	if (!err && g->n_backends > 1)
		err = check_group_backends(p, g);
	return err;
}

static const struct cfg_field breaker_fields[] = {
	CFG_UINT("max_connections", struct cfg_http_group, max_connections, 0, CFG_BREAKER_MAX),
	CFG_UINT("max_pending", struct cfg_http_group, max_pending, 0, CFG_BREAKER_MAX),
	CFG_UINT("max_requests", struct cfg_http_group, max_requests, 0, CFG_BREAKER_MAX),
};

static const struct cfg_field outlier_fields[] = {
	CFG_UINT("consecutive_5xx", struct cfg_http_group, consecutive_5xx, 0, 1000),
	CFG_UINT("base_ejection_ms", struct cfg_http_group, base_ejection_ms, 1, CFG_TIMEOUT_MAX),
	CFG_UINT("max_ejection_percent", struct cfg_http_group, max_ejection_percent, 0, 100),
};

static int parse_breaker(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_seen seen;

	(void)f;
	return cfg_parse_submapping(p, breaker_fields, ARRAY_SIZE(breaker_fields), obj, &seen);
}

static int parse_outlier(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_seen seen;

	(void)f;
	return cfg_parse_submapping(p, outlier_fields, ARRAY_SIZE(outlier_fields), obj, &seen);
}

enum { GF_NAME, GF_LB, GF_HASH_HEADER, GF_BACKENDS, GF_BREAKER, GF_OUTLIER };

static const struct cfg_field group_fields[] = {
	[GF_NAME] = { .key = "name", .parse = parse_group_name },
	[GF_LB] = { .key = "lb", .parse = parse_lb },
	[GF_HASH_HEADER] = { .key = "hash_header", .parse = parse_hash_header },
	[GF_BACKENDS] = { .key = "backends", .parse = parse_group_backends },
	[GF_BREAKER] = { .key = "circuit_breaker", .parse = parse_breaker },
	[GF_OUTLIER] = { .key = "outlier", .parse = parse_outlier },
};
_Static_assert(ARRAY_SIZE(group_fields) <= CFG_FIELDS_MAX, "cfg_seen too small");

/* An entry called "default" sets groups[0], whose backends are the
 * service's own: it may not list any, and comes once. */
static int place_default_group(struct cfg_parser *p, struct cfg_http *http,
			       const struct cfg_http_group *g, const struct cfg_seen *seen)
{
	if (seen->mask & BIT(GF_BACKENDS))
		return cfg_fail_key(p, "backends", seen->key[GF_BACKENDS],
				    "group 'default' is the service's own backends: "
				    "list them under the service's 'backends'");
	if (http->groups[0].line)
		return cfg_fail_key(p, "name", seen->key[GF_NAME],
				    "duplicate group 'default' (first at line %u)",
				    http->groups[0].line);
	http->groups[0] = *g;
	return 0;
}

/* The checks that span a group's keys; then @g (and its backends) goes
 * into @http. Returns 0 (@g now owned by @http) or an error (@g not). */
static int group_finish(struct cfg_parser *p, struct cfg_http *http, const struct cfg_http_group *g,
			const struct cfg_seen *seen)
{
	struct cfg_http_group *groups;

	if (!(seen->mask & BIT(GF_NAME)))
		return cfg_fail_key(p, "name", seen->start, "missing required key 'name'");
	if (g->lb == CFG_LB_HASH_HEADER && !(seen->mask & BIT(GF_HASH_HEADER)))
		return cfg_fail_key(p, "lb", seen->key[GF_LB],
				    "lb: hash needs 'hash_header', the header to hash");
	if (g->lb != CFG_LB_HASH_HEADER && (seen->mask & BIT(GF_HASH_HEADER)))
		return cfg_fail_key(p, "hash_header", seen->key[GF_HASH_HEADER],
				    "'hash_header' applies only to lb: hash");
	if (!strcmp(g->name, CFG_HTTP_DEFAULT_GROUP))
		return place_default_group(p, http, g, seen);
	if (!(seen->mask & BIT(GF_BACKENDS)))
		return cfg_fail_key(p, "backends", seen->start, "missing required key 'backends'");
	if (!g->n_backends)
		return cfg_fail_key(p, "backends", seen->key[GF_BACKENDS],
				    "group '%s' has no backends", g->name);
	for (size_t i = 1; i < http->n_groups; i++) {
		if (!strcmp(http->groups[i].name, g->name))
			return cfg_fail_key(p, "name", seen->key[GF_NAME],
					    "duplicate group '%s' (first at line %u)", g->name,
					    http->groups[i].line);
	}
	if (http->n_groups == CFG_HTTP_MAX_GROUPS)
		return cfg_fail_pos(p, seen->start.line + 1, seen->start.column + 1,
				    "more than %d groups (with 'default')", CFG_HTTP_MAX_GROUPS);
	groups = cfg_grow(http->groups, http->n_groups, sizeof(*groups));
	if (!groups)
		return cfg_oom(p);
	http->groups = groups;
	groups[http->n_groups++] = *g;
	return 0;
}

/* groups[i]: read aside, since "default" goes to groups[0] and its name
 * may come after the other keys. */
static int parse_group(struct cfg_parser *p, void *obj)
{
	struct cfg_http *http = obj;
	struct cfg_http_group g;
	struct cfg_seen seen;
	int err;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected a group mapping, got %s", cfg_event_kind(&p->event));
	group_defaults(&g);
	g.line = p->event.start_mark.line + 1;
	g.column = p->event.start_mark.column + 1;
	err = cfg_parse_mapping(p, group_fields, ARRAY_SIZE(group_fields), &g, &seen);
	if (!err)
		err = group_finish(p, http, &g, &seen);
	if (err)
		free(g.backends);
	return err;
}

/* ---- routes ---- */

/* A group a route names, resolved once the whole `http:` is read. */
struct split_ref {
	uint32_t route, split;
	bool list; /* to: [{group: NAME}] rather than to: NAME */
	yaml_mark_t mark;
	char name[CFG_HTTP_NAME_MAX];
};

/* One service's `http:` while it is read. */
struct http_parse {
	struct cfg_http *http;
	struct split_ref *refs;
	size_t n_refs;
};

struct route_parse {
	struct http_parse *hp;
	struct cfg_http_route *route;
	uint32_t index;
};

/* Note the group named by the current event for the route's split
 * @split; a group twice in one route is refused here. */
static int add_split_ref(struct cfg_parser *p, struct route_parse *rp, uint32_t split, bool list)
{
	struct http_parse *hp = rp->hp;
	struct split_ref *ref;
	const char *text;
	int err;

	err = cfg_scalar_text(p, "a group name", &text);
	if (err)
		return err;
	if (strlen(text) >= CFG_HTTP_NAME_MAX)
		return cfg_fail(p, "unknown group '%.40s...'", text);
	for (size_t i = hp->n_refs; i-- && hp->refs[i].route == rp->index;) {
		if (!strcmp(hp->refs[i].name, text))
			return cfg_fail(p, "group '%s' twice in one route", text);
	}
	ref = cfg_grow(hp->refs, hp->n_refs, sizeof(*ref));
	if (!ref)
		return cfg_oom(p);
	hp->refs = ref;
	ref += hp->n_refs++;
	memset(ref, 0, sizeof(*ref));
	ref->route = rp->index;
	ref->split = split;
	ref->list = list;
	ref->mark = p->event.start_mark;
	strcpy(ref->name, text);
	return 0;
}

struct split_parse {
	struct route_parse *rp;
	struct cfg_http_split split;
};

static int parse_split_group(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct split_parse *sp = obj;

	(void)f;
	return add_split_ref(p, sp->rp, sp->rp->route->n_splits, true);
}

static const struct cfg_field split_fields[] = {
	{ .key = "group", .parse = parse_split_group },
	CFG_UINT("weight", struct split_parse, split.weight, 1, CFG_SPLIT_WEIGHT_MAX),
};

static int parse_split(struct cfg_parser *p, void *obj)
{
	struct route_parse *rp = obj;
	struct split_parse sp = { .rp = rp, .split = { .weight = 1 } };
	struct cfg_seen seen;
	int err;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected {group: NAME, weight: N}, got %s",
				cfg_event_kind(&p->event));
	if (rp->route->n_splits == CFG_HTTP_SPLITS)
		return cfg_fail(p, "more than %d groups in one route", CFG_HTTP_SPLITS);
	err = cfg_parse_mapping(p, split_fields, ARRAY_SIZE(split_fields), &sp, &seen);
	if (!err && !(seen.mask & BIT(0)))
		err = cfg_fail_key(p, "group", seen.start, "missing required key 'group'");
	if (!err)
		rp->route->splits[rp->route->n_splits++] = sp.split;
	return err;
}

/* to: NAME (weight 1), or [{group: NAME, weight: N}, ...]. */
static int parse_to(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct route_parse *rp = obj;
	struct cfg_http_route *route = rp->route;
	yaml_mark_t start = p->event.start_mark;
	int err;

	(void)f;
	if (p->event.type == YAML_SCALAR_EVENT && !cfg_event_is_null(&p->event)) {
		route->splits[0].weight = 1;
		err = add_split_ref(p, rp, 0, false);
		route->n_splits = !err;
		return err;
	}
	if (p->event.type != YAML_SEQUENCE_START_EVENT)
		return cfg_fail(p, "expected a group name or a list of {group, weight}, got %s",
				cfg_event_kind(&p->event));
	err = cfg_parse_sequence(p, parse_split, rp);
	if (!err && !route->n_splits)
		err = cfg_fail_pos(p, start.line + 1, start.column + 1,
				   "an empty list: leave 'to' out for the group 'default'");
	return err;
}

enum { MF_HOST, MF_PREFIX, MF_PATH, MF_METHODS, MF_HEADERS };

/* One "name: value" of a headers mapping, the name the current event. */
static int parse_header_match(struct cfg_parser *p, struct cfg_http_route *route)
{
	struct cfg_http_header_match *hm = &route->headers[route->n_headers];
	const char *text;
	size_t old;
	int err;

	err = cfg_scalar_text(p, "a header name", &text);
	if (err)
		return err;
	old = cfg_path_push_key(p, text);
	if (route->n_headers == CFG_HTTP_MATCH_HEADERS)
		return cfg_fail(p, "more than %d header matches", CFG_HTTP_MATCH_HEADERS);
	err = copy_header_name(p, text, hm->name);
	for (unsigned int i = 0; !err && i < route->n_headers; i++) {
		if (!strcmp(route->headers[i].name, hm->name))
			err = cfg_fail(p, "header '%s' matched twice", hm->name);
	}
	if (!err)
		err = cfg_next_event(p);
	if (!err)
		err = cfg_scalar_text(p, "a header value, or \"*\" for any", &text);
	if (!err && !strcmp(text, "*"))
		hm->present = true;
	else if (!err)
		err = copy_header_value(p, text, hm->value);
	if (err)
		return err;
	route->n_headers++;
	cfg_path_pop(p, old);
	return 0;
}

static int parse_match_headers(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	int err;

	(void)f;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected a mapping of header names to values, got %s",
				cfg_event_kind(&p->event));
	for (;;) {
		err = cfg_next_event(p);
		if (err || p->event.type == YAML_MAPPING_END_EVENT)
			return err;
		err = parse_header_match(p, obj);
		if (err)
			return err;
	}
}

static const struct cfg_field match_fields[] = {
	[MF_HOST] = { .key = "host", .parse = parse_host },
	[MF_PREFIX] = { .key = "prefix", .parse = parse_route_path },
	[MF_PATH] = { .key = "path", .parse = parse_route_path },
	[MF_METHODS] = { .key = "methods",
			 .parse = parse_methods,
			 .offset = offsetof(struct cfg_http_route, methods) },
	[MF_HEADERS] = { .key = "headers", .parse = parse_match_headers },
};
_Static_assert(ARRAY_SIZE(match_fields) <= CFG_FIELDS_MAX, "cfg_seen too small");

static int parse_match(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct route_parse *rp = obj;
	struct cfg_seen seen;
	int err;

	(void)f;
	err = cfg_parse_submapping(p, match_fields, ARRAY_SIZE(match_fields), rp->route, &seen);
	return err ? err : check_path_keys(p, &seen, MF_PATH, MF_PREFIX);
}

/* 0 until the end of the file, when the proxy's values fill them in. */
static const struct cfg_field route_timeout_fields[] = {
	CFG_UINT("connect_ms", struct cfg_http_route, connect_timeout_ms, 1, CFG_TIMEOUT_MAX),
	CFG_UINT("request_ms", struct cfg_http_route, request_timeout_ms, 1, CFG_TIMEOUT_MAX),
	CFG_UINT("idle_ms", struct cfg_http_route, idle_timeout_ms, 1, CFG_TIMEOUT_MAX),
};

static int parse_route_timeouts(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct route_parse *rp = obj;
	struct cfg_seen seen;

	(void)f;
	return cfg_parse_submapping(p, route_timeout_fields, ARRAY_SIZE(route_timeout_fields),
				    rp->route, &seen);
}

/* 502..504 may be YAML integers or strings: both are the scalar's text. */
static int parse_retry_on_item(struct cfg_parser *p, void *obj)
{
	static const char *const words[] = { "connect-failure", "reset", "502", "503", "504" };
	static const uint32_t bits[] = { CFG_RETRY_CONNECT, CFG_RETRY_RESET, CFG_RETRY_502,
					 CFG_RETRY_503, CFG_RETRY_504 };
	struct cfg_http_route *route = obj;
	unsigned int i = 0;
	int err;

	err = cfg_scalar_word(p, "retry condition", "connect-failure, reset, 502, 503 or 504",
			      words, ARRAY_SIZE(words), &i);
	if (err)
		return err;
	if (route->retry_on & bits[i])
		return cfg_fail(p, "%s listed twice", words[i]);
	route->retry_on |= bits[i];
	return 0;
}

static int parse_retry_on(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_http_route *route = obj;

	(void)f;
	route->retry_on = 0;
	return cfg_parse_list(p, parse_retry_on_item, route, "set attempts: 0 for no retries");
}

static const struct cfg_field retry_fields[] = {
	CFG_UINT("attempts", struct cfg_http_route, retries, 0, 10),
	{ .key = "on", .parse = parse_retry_on },
};

static int parse_retries(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct route_parse *rp = obj;
	struct cfg_seen seen;

	(void)f;
	return cfg_parse_submapping(p, retry_fields, ARRAY_SIZE(retry_fields), rp->route, &seen);
}

static const struct cfg_field route_fields[] = {
	{ .key = "match", .parse = parse_match },
	{ .key = "to", .parse = parse_to },
	{ .key = "timeouts", .parse = parse_route_timeouts },
	{ .key = "retries", .parse = parse_retries },
};

static int parse_route(struct cfg_parser *p, void *obj)
{
	struct http_parse *hp = obj;
	struct cfg_http *http = hp->http;
	struct route_parse rp = { .hp = hp, .index = http->n_routes };
	struct cfg_http_route *route;
	struct cfg_seen seen;
	int err;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected a route mapping, got %s", cfg_event_kind(&p->event));
	if (http->n_routes == CFG_HTTP_MAX_ROUTES)
		return cfg_fail(p, "more than %d routes", CFG_HTTP_MAX_ROUTES);
	route = cfg_grow(http->routes, http->n_routes, sizeof(*route));
	if (!route)
		return cfg_oom(p);
	http->routes = route;
	route += http->n_routes++;
	memset(route, 0, sizeof(*route));
	route->retries = 1;
	route->retry_on = CFG_RETRY_DEFAULT;
	route->line = p->event.start_mark.line + 1;
	route->column = p->event.start_mark.column + 1;
	rp.route = route;
	err = cfg_parse_mapping(p, route_fields, ARRAY_SIZE(route_fields), &rp, &seen);
	if (!err && !route->n_splits) {
		route->splits[0].weight = 1; /* to "default", groups[0] */
		route->n_splits = 1;
	}
	return err;
}

/* Give each split its group's index, now that every group is known. */
static int resolve_splits(struct cfg_parser *p, const struct http_parse *hp)
{
	const struct cfg_http *http = hp->http;
	char known[160];
	size_t used = 0, g;

	for (size_t i = 0; i < hp->n_refs; i++) {
		const struct split_ref *ref = &hp->refs[i];

		for (g = 0; g < http->n_groups && strcmp(http->groups[g].name, ref->name); g++)
			;
		if (g < http->n_groups) {
			http->routes[ref->route].splits[ref->split].group = g;
			continue;
		}
		for (g = 0; g < http->n_groups && used < sizeof(known); g++)
			used += snprintf(known + used, sizeof(known) - used, "%s%s", g ? ", " : "",
					 http->groups[g].name);
		cfg_path_push_key(p, "routes");
		cfg_path_push_index(p, ref->route);
		cfg_path_push_key(p, "to");
		if (ref->list) {
			cfg_path_push_index(p, ref->split);
			cfg_path_push_key(p, "group");
		}
		return cfg_fail_pos(p, ref->mark.line + 1, ref->mark.column + 1,
				    "unknown group '%s' (groups: %s)", ref->name, known);
	}
	return 0;
}

/* ---- access rules ---- */

static int parse_access_action(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_action(p, &((struct cfg_http_access *)obj)->action);
}

static int parse_access_from(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_peer(p, &((struct cfg_http_access *)obj)->from);
}

enum { AF_ID, AF_ACTION, AF_FROM, AF_METHODS, AF_PREFIX, AF_PATH };

static const struct cfg_field access_fields[] = {
	[AF_ID] = CFG_UINT("id", struct cfg_http_access, id, 1, POL_RULE_ID_MAX),
	[AF_ACTION] = { .key = "action", .parse = parse_access_action },
	[AF_FROM] = { .key = "from", .parse = parse_access_from },
	[AF_METHODS] = { .key = "methods",
			 .parse = parse_methods,
			 .offset = offsetof(struct cfg_http_access, methods) },
	[AF_PREFIX] = { .key = "prefix", .parse = parse_access_path },
	[AF_PATH] = { .key = "path", .parse = parse_access_path },
};
_Static_assert(ARRAY_SIZE(access_fields) <= CFG_FIELDS_MAX, "cfg_seen too small");

static int parse_access_rule(struct cfg_parser *p, void *obj)
{
	struct cfg_http *http = obj;
	struct cfg_http_access *rule;
	struct cfg_seen seen;
	int err;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected an access rule mapping, got %s",
				cfg_event_kind(&p->event));
	if (http->n_access == CFG_HTTP_MAX_ACCESS)
		return cfg_fail(p, "more than %d access rules", CFG_HTTP_MAX_ACCESS);
	rule = cfg_grow(http->access, http->n_access, sizeof(*rule));
	if (!rule)
		return cfg_oom(p);
	http->access = rule;
	rule += http->n_access++;
	memset(rule, 0, sizeof(*rule)); /* from: any */
	rule->line = p->event.start_mark.line + 1;
	rule->column = p->event.start_mark.column + 1;
	err = cfg_parse_mapping(p, access_fields, ARRAY_SIZE(access_fields), rule, &seen);
	if (!err && !(seen.mask & BIT(AF_ACTION)))
		err = cfg_fail_key(p, "action", seen.start, "missing required key 'action'");
	return err ? err : check_path_keys(p, &seen, AF_PATH, AF_PREFIX);
}

/* Rules without an id take their 1-based position; no id twice in the
 * service, given or taken (the second in file order is blamed). */
static int assign_access_ids(struct cfg_parser *p, struct cfg_http *http)
{
	struct dup_key *keys = calloc(http->n_access + 1, sizeof(*keys));
	const struct cfg_http_access *rule, *other;
	uint32_t first = 0, id;
	long dup;

	if (!keys)
		return cfg_oom(p);
	for (size_t i = 0; i < http->n_access; i++) {
		id = http->access[i].id ? http->access[i].id : i + 1;
		for (int b = 0; b < 4; b++) /* big-endian: sorted as numbers */
			keys[i].key[b] = id >> (24 - 8 * b);
		keys[i].index = i;
	}
	dup = first_repeat(keys, http->n_access, &first);
	free(keys);
	if (dup < 0) {
		for (size_t i = 0; i < http->n_access; i++)
			http->access[i].id = http->access[i].id ? http->access[i].id : i + 1;
		return 0;
	}
	rule = &http->access[dup];
	other = &http->access[first];
	cfg_path_push_index(p, dup);
	if (rule->id && other->id)
		return cfg_fail_pos(p, rule->line, rule->column,
				    "duplicate access rule id %u (first at line %u)", rule->id,
				    other->line);
	return cfg_fail_pos(p, rule->line, rule->column,
			    "access rule id %u is also the rule's at line %u (a rule without "
			    "an id takes its position): give ids",
			    rule->id ? rule->id : (uint32_t)dup + 1, other->line);
}

static int parse_access(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct http_parse *hp = obj;
	int err;

	(void)f;
	err = cfg_parse_sequence(p, parse_access_rule, hp->http);
	return err ? err : assign_access_ids(p, hp->http);
}

/* ---- a service's http key ---- */

static const struct cfg_field budget_fields[] = {
	CFG_UINT("percent", struct cfg_http, retry_budget_percent, 0, 100),
	CFG_UINT("min_concurrent", struct cfg_http, retry_min_concurrent, 0, 10000),
};

static int parse_retry_budget(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct http_parse *hp = obj;
	struct cfg_seen seen;

	(void)f;
	return cfg_parse_submapping(p, budget_fields, ARRAY_SIZE(budget_fields), hp->http, &seen);
}

static int parse_groups(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_sequence(p, parse_group, ((struct http_parse *)obj)->http);
}

static int parse_routes(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_sequence(p, parse_route, obj);
}

static const struct cfg_field http_fields[] = {
	{ .key = "retry_budget", .parse = parse_retry_budget },
	{ .key = "groups", .parse = parse_groups },
	{ .key = "routes", .parse = parse_routes },
	{ .key = "access", .parse = parse_access },
};

/* The http key of service @obj. svc->http is set before anything else, so
 * that an error frees what was read with the service. */
int cfg_parse_http(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_service *svc = obj;
	struct http_parse hp = { 0 };
	struct cfg_seen seen;
	int err;

	(void)f;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected a mapping, got %s", cfg_event_kind(&p->event));
	hp.http = calloc(1, sizeof(*hp.http));
	if (!hp.http)
		return cfg_oom(p);
	svc->http = hp.http;
	hp.http->groups = cfg_grow(NULL, 0, sizeof(*hp.http->groups));
	if (!hp.http->groups)
		return cfg_oom(p);
	group_defaults(&hp.http->groups[0]);
	strcpy(hp.http->groups[0].name, CFG_HTTP_DEFAULT_GROUP);
	hp.http->n_groups = 1;
	hp.http->retry_budget_percent = 20;
	hp.http->retry_min_concurrent = 3;
	err = cfg_parse_mapping(p, http_fields, ARRAY_SIZE(http_fields), &hp, &seen);
	if (!err)
		err = resolve_splits(p, &hp);
	free(hp.refs);
	return err;
}

/* The index groups[@j] (j >= 1) had in the file's list: a "default" entry
 * before it was taken out into groups[0]. */
static size_t group_file_index(const struct cfg_http *http, size_t j)
{
	const struct cfg_http_group *d = &http->groups[0], *g = &http->groups[j];

	if (d->line && (d->line < g->line || (d->line == g->line && d->column < g->column)))
		return j;
	return j - 1;
}

int cfg_http_service_finish(struct cfg_parser *p, const struct cfg_service *svc,
			    yaml_mark_t http_key)
{
	const struct cfg_http *http = svc->http;
	char shown[ADDR_STR_MAX];

	if (!svc->l7)
		return cfg_fail_key(p, "http", http_key, "'http' needs 'l7: http'");
	for (size_t j = 1; j < http->n_groups; j++) {
		for (size_t k = 0; k < http->groups[j].n_backends; k++) {
			const struct cfg_backend *be = &http->groups[j].backends[k];

			if (be->addr.family == svc->key.family)
				continue;
			addr_format_service(&svc->key, shown, sizeof(shown));
			cfg_path_push_key(p, "http");
			cfg_path_push_key(p, "groups");
			cfg_path_push_index(p, group_file_index(http, j));
			cfg_path_push_key(p, "backends");
			cfg_path_push_index(p, k);
			return cfg_fail_pos(p, be->line, be->column,
					    "IPv%d backend in an IPv%d service (%s)",
					    be->addr.family == SL_AF_INET ? 4 : 6,
					    svc->key.family == SL_AF_INET ? 4 : 6, shown);
		}
	}
	return 0;
}
