/* The top-level `proxy:` key (config_http.h, docs/config.md):
 * sluice-proxy's settings, read over the defaults cfg_load_buffer() puts in
 * the state, and what is checked once the whole file is read because
 * `proxy:` may come after the services: the default service, and the
 * route timeouts left to the proxy's values. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define CFG_BODY_MAX (1ull << 62)
#define CFG_LISTEN_DEFAULT "127.0.0.1:15001"

/* cfg_parse_uint() for a 64-bit value in 0..@max: plain decimal only. */
static int parse_u64(struct cfg_parser *p, uint64_t max, uint64_t *out)
{
	const yaml_event_t *ev = &p->event;
	const char *text, *c;
	uint64_t value = 0;

	if (ev->type != YAML_SCALAR_EVENT || cfg_event_is_null(ev))
		return cfg_fail(p, "expected an integer in 0..%llu, got %s",
				(unsigned long long)max, cfg_event_kind(ev));
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return cfg_fail(p, "expected an integer in 0..%llu, got a quoted string",
				(unsigned long long)max);
	text = (const char *)ev->data.scalar.value;
	for (c = text; *c >= '0' && *c <= '9'; c++) /* saturates, never wraps */
		value = value > (UINT64_MAX - 9) / 10 ? UINT64_MAX : value * 10 + (*c - '0');
	if (*c || c == text || (text[0] == '0' && text[1]))
		return cfg_fail(p, "expected a decimal integer in 0..%llu, got '%.40s'",
				(unsigned long long)max, text);
	if (value > max)
		return cfg_fail(p, "%.40s is out of range 0..%llu", text, (unsigned long long)max);
	*out = value;
	return 0;
}

void cfg_proxy_defaults(struct cfg_proxy *px)
{
	memset(px, 0, sizeof(*px));
	addr_parse_endpoint(CFG_LISTEN_DEFAULT, &px->listen[0]);
	px->n_listen = 1;
	px->max_request_line = 8192;
	px->max_header_bytes = 32768;
	px->max_headers = 100;
	px->max_body_bytes = 1ull << 30;
	px->header_timeout_ms = 10000;
	px->client_idle_ms = 60000;
	px->connect_timeout_ms = 1000;
	px->request_timeout_ms = 15000;
	px->idle_timeout_ms = 60000;
	px->upstream_idle_ms = 30000;
}

/* ---- proxy: sluice-proxy's settings ---- */

static int parse_listen_item(struct cfg_parser *p, void *obj)
{
	struct cfg_proxy *px = obj;
	char shown[ADDR_STR_MAX];
	struct addr_port ap = { 0 };
	int err;

	err = cfg_parse_endpoint(p, &ap);
	if (err)
		return err;
	for (unsigned int i = 0; i < px->n_listen; i++) {
		const struct addr_port *l = &px->listen[i];

		if (l->family == ap.family && l->port == ap.port &&
		    !memcmp(l->addr, ap.addr, sizeof(ap.addr))) {
			addr_format_endpoint(&ap, shown, sizeof(shown));
			return cfg_fail(p, "%s is listed twice", shown);
		}
	}
	if (px->n_listen == ARRAY_SIZE(px->listen))
		return cfg_fail(p, "more than %zu listen addresses", ARRAY_SIZE(px->listen));
	px->listen[px->n_listen++] = ap;
	return 0;
}

/* The key replaces the default address rather than adding to it. */
static int parse_listen(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_proxy *px = obj;

	(void)f;
	memset(px->listen, 0, sizeof(px->listen));
	px->n_listen = 0;
	return cfg_parse_list(p, parse_listen_item, px,
			      "leave 'listen' out for " CFG_LISTEN_DEFAULT);
}

/* Which service is checked once every service is read: kept with its place. */
static int parse_default_service(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_proxy *px = obj;
	const char *text;
	size_t len;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "a service name", &text);
	if (err)
		return err;
	len = strlen(text);
	if (len >= sizeof(px->default_service))
		return cfg_fail(p, "name is %zu characters, the limit is %zu", len,
				sizeof(px->default_service) - 1);
	if (!cfg_name_valid(text))
		return cfg_fail(p, "name '%.40s' has characters other than A-Z a-z 0-9 . _ -",
				text);
	memcpy(px->default_service, text, len + 1);
	p->default_service_mark = p->event.start_mark;
	return 0;
}

static int parse_body_bytes(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return parse_u64(p, CFG_BODY_MAX, &((struct cfg_proxy *)obj)->max_body_bytes);
}

enum { LF_REQUEST_LINE, LF_HEADER_BYTES, LF_HEADERS, LF_BODY };

static const struct cfg_field limit_fields[] = {
	[LF_REQUEST_LINE] =
		CFG_UINT("request_line", struct cfg_proxy, max_request_line, 256, 65536),
	[LF_HEADER_BYTES] =
		CFG_UINT("header_bytes", struct cfg_proxy, max_header_bytes, 1024, 1048576),
	[LF_HEADERS] = CFG_UINT("headers", struct cfg_proxy, max_headers, 8, 1000),
	[LF_BODY] = { .key = "body_bytes", .parse = parse_body_bytes },
};

/* The head holds the request line: a smaller head limit would refuse
 * what the line limit lets through. Blamed on the key given. */
static int parse_limits(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_proxy *px = obj;
	struct cfg_seen seen;
	int err, key;

	(void)f;
	err = cfg_parse_submapping(p, limit_fields, ARRAY_SIZE(limit_fields), px, &seen);
	if (err || px->max_header_bytes >= px->max_request_line)
		return err;
	key = seen.mask & BIT(LF_HEADER_BYTES) ? LF_HEADER_BYTES : LF_REQUEST_LINE;
	return cfg_fail_key(
		p, limit_fields[key].key, seen.key[key],
		"header_bytes %u is less than request_line %u (the head holds the line)",
		px->max_header_bytes, px->max_request_line);
}

static const struct cfg_field proxy_timeout_fields[] = {
	CFG_UINT("header_ms", struct cfg_proxy, header_timeout_ms, 1, CFG_TIMEOUT_MAX),
	CFG_UINT("client_idle_ms", struct cfg_proxy, client_idle_ms, 1, CFG_TIMEOUT_MAX),
	CFG_UINT("connect_ms", struct cfg_proxy, connect_timeout_ms, 1, CFG_TIMEOUT_MAX),
	CFG_UINT("request_ms", struct cfg_proxy, request_timeout_ms, 1, CFG_TIMEOUT_MAX),
	CFG_UINT("idle_ms", struct cfg_proxy, idle_timeout_ms, 1, CFG_TIMEOUT_MAX),
	CFG_UINT("upstream_idle_ms", struct cfg_proxy, upstream_idle_ms, 1, CFG_TIMEOUT_MAX),
};
_Static_assert(ARRAY_SIZE(proxy_timeout_fields) <= CFG_FIELDS_MAX, "cfg_seen too small");

static int parse_proxy_timeouts(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_seen seen;

	(void)f;
	return cfg_parse_submapping(p, proxy_timeout_fields, ARRAY_SIZE(proxy_timeout_fields), obj,
				    &seen);
}

/* "" off, "-" stderr, else a file the proxy opens (any path it can). */
static int parse_log_path(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_proxy *px = obj;
	const char *text;
	size_t len;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "a path, \"-\" or \"\"", &text);
	if (err)
		return err;
	len = strlen(text);
	if (len >= sizeof(px->access_log))
		return cfg_fail(p, "path is %zu bytes, the limit is %zu", len,
				sizeof(px->access_log) - 1);
	for (const char *c = text; *c; c++) {
		if ((unsigned char)*c < ' ' || *c == 0x7f)
			return cfg_fail(p, "path must not hold control characters");
	}
	memcpy(px->access_log, text, len + 1);
	return 0;
}

static int parse_log_format(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	static const char *const words[] = { "text", "json" };
	struct cfg_proxy *px = obj;
	unsigned int i = 0;
	int err;

	(void)f;
	err = cfg_scalar_word(p, "format", "text or json", words, ARRAY_SIZE(words), &i);
	if (!err)
		px->access_log_json = i == 1;
	return err;
}

static const struct cfg_field log_fields[] = {
	{ .key = "path", .parse = parse_log_path },
	{ .key = "format", .parse = parse_log_format },
};

static int parse_access_log(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_seen seen;

	(void)f;
	return cfg_parse_submapping(p, log_fields, ARRAY_SIZE(log_fields), obj, &seen);
}

static int parse_metrics(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_endpoint(p, &((struct cfg_proxy *)obj)->metrics);
}

static const struct cfg_field proxy_fields[] = {
	{ .key = "listen", .parse = parse_listen },
	CFG_UINT("workers", struct cfg_proxy, workers, 0, 64),
	{ .key = "default_service", .parse = parse_default_service },
	{ .key = "limits", .parse = parse_limits },
	{ .key = "timeouts", .parse = parse_proxy_timeouts },
	{ .key = "access_log", .parse = parse_access_log },
	{ .key = "metrics", .parse = parse_metrics },
};
_Static_assert(ARRAY_SIZE(proxy_fields) <= CFG_FIELDS_MAX, "cfg_seen too small");

/* Over the defaults cfg_load_buffer() put in the state. */
int cfg_parse_proxy(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_seen seen;

	(void)f;
	(void)obj;
	return cfg_parse_submapping(p, proxy_fields, ARRAY_SIZE(proxy_fields), &p->state.proxy,
				    &seen);
}

/* ---- the file as a whole ---- */

/* One l7 service must have the name (names may repeat in a config). */
static int check_default_service(struct cfg_parser *p)
{
	const char *name = p->state.proxy.default_service;
	const struct cfg_service *found = NULL, *other = NULL;
	yaml_mark_t m = p->default_service_mark;

	if (!name[0])
		return 0;
	cfg_path_push_key(p, "proxy");
	cfg_path_push_key(p, "default_service");
	for (size_t i = 0; i < p->state.n_services; i++) {
		const struct cfg_service *svc = &p->state.services[i];

		if (strcmp(svc->name, name))
			continue;
		if (!svc->l7)
			other = other ? other : svc;
		else if (found)
			return cfg_fail_pos(p, m.line + 1, m.column + 1,
					    "services at lines %u and %u are both called '%s'",
					    found->line, svc->line, name);
		else
			found = svc;
	}
	if (!found && other)
		return cfg_fail_pos(p, m.line + 1, m.column + 1,
				    "service '%s' (line %u) is not l7: http", name, other->line);
	if (!found)
		return cfg_fail_pos(p, m.line + 1, m.column + 1, "no service called '%s'", name);
	cfg_path_pop(p, 0);
	return 0;
}

int cfg_proxy_finish(struct cfg_parser *p)
{
	const struct cfg_proxy *px = &p->state.proxy;
	int err = check_default_service(p);

	if (err)
		return err;
	for (size_t i = 0; i < p->state.n_services; i++) {
		struct cfg_http *http = p->state.services[i].http;

		for (size_t j = 0; http && j < http->n_routes; j++) {
			struct cfg_http_route *r = &http->routes[j];

			if (!r->connect_timeout_ms)
				r->connect_timeout_ms = px->connect_timeout_ms;
			if (!r->request_timeout_ms)
				r->request_timeout_ms = px->request_timeout_ms;
			if (!r->idle_timeout_ms)
				r->idle_timeout_ms = px->idle_timeout_ms;
		}
	}
	return 0;
}
