/* Building and saving config states (config.h): what the agent keeps as
 * its desired state and writes to its state file, in the config format so
 * that a saved state is read back by the same validating parser. The http
 * and proxy keys are written here too, their parser is config_http.c. */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"
#include "hash.h"

static const char *health_type_name(enum cfg_health_type type)
{
	return type == CFG_HEALTH_HTTP ? "http" : "tcp";
}

/* @text as a YAML double-quoted scalar: '"' and '\\' escaped. */
static void write_quoted(FILE *out, const char *text)
{
	fputc('"', out);
	for (const char *c = text; *c; c++) {
		if (*c == '"' || *c == '\\')
			fputc('\\', out);
		fputc(*c, out);
	}
	fputc('"', out);
}

static void write_health(FILE *out, const struct cfg_health *h)
{
	fprintf(out, "    health:\n      type: %s\n", health_type_name(h->type));
	if (h->type == CFG_HEALTH_HTTP) {
		fprintf(out, "      path: ");
		write_quoted(out, h->path);
		fprintf(out, "\n      expect_status: %u\n", h->expect_status);
	}
	fprintf(out,
		"      interval_ms: %u\n      timeout_ms: %u\n      healthy_threshold: %u\n"
		"      unhealthy_threshold: %u\n",
		h->interval_ms, h->timeout_ms, h->healthy_threshold, h->unhealthy_threshold);
}

static void write_http(FILE *out, const struct cfg_http *http, const struct cfg_proxy *px);

static void write_service(FILE *out, const struct cfg_service *svc, const struct cfg_proxy *px)
{
	char text[ADDR_STR_MAX];

	addr_format_service(&svc->key, text, sizeof(text));
	/* Quoted: an IPv6 VIP starts with '[', a YAML flow sequence. */
	fprintf(out, "  - vip: \"%s\"\n", text);
	if (svc->name[0])
		fprintf(out, "    name: \"%s\"\n", svc->name);
	if (svc->affinity_s)
		fprintf(out, "    affinity: %u\n", svc->affinity_s);
	if (svc->l7)
		fprintf(out, "    l7: http\n");
	if (svc->health.type != CFG_HEALTH_NONE)
		write_health(out, &svc->health);
	fprintf(out, "    backends:%s\n", svc->n_backends ? "" : " []");
	for (size_t i = 0; i < svc->n_backends; i++) {
		addr_format_endpoint(&svc->backends[i].addr, text, sizeof(text));
		fprintf(out, "      - { address: \"%s\", weight: %u }\n", text,
			svc->backends[i].weight);
	}
	if (svc->http)
		write_http(out, svc->http, px);
}

/* Whether YAML reads @text back, unquoted, as this very string: letters,
 * digits and . _ / = - from the second character, and not a null. Anything
 * else ('!' starts a tag, '*' an alias, ':' and ',' end a flow item, ...)
 * is quoted. */
static bool plain_safe(const char *text)
{
	static const char *const nulls[] = { "null", "Null", "NULL" };
	const char *c = text;

	if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
		if (!strcmp(text, nulls[i]))
			return false;
	}
	for (; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("._/=-", *c)))
			return false;
	}
	return true;
}

static void write_text(FILE *out, const char *text)
{
	if (plain_safe(text))
		fputs(text, out);
	else
		write_quoted(out, text);
}

static void write_endpoint(FILE *out, const struct pol_endpoint *ep)
{
	char addr[64];

	/* A full-length prefix is written bare: pol_prefix_parse(cidr = false). */
	pol_prefix_format(&ep->addr, addr, sizeof(addr));
	fprintf(out, "  - address: ");
	write_text(out, addr);
	if (ep->labels.n) {
		fprintf(out, "\n    labels: { ");
		for (unsigned int i = 0; i < ep->labels.n; i++) {
			fprintf(out, "%s", i ? ", " : "");
			write_text(out, ep->labels.l[i].key);
			fprintf(out, ": ");
			write_text(out, ep->labels.l[i].value);
		}
		fprintf(out, " }");
	}
	if (ep->netns[0]) {
		fprintf(out, "\n    netns: ");
		write_quoted(out, ep->netns);
	}
	fputc('\n', out);
}

static void write_rule(FILE *out, const struct pol_rule *rule)
{
	char text[POL_LABELS_MAX * (POL_LABEL_KEY_MAX + POL_LABEL_VALUE_MAX + 2)];

	fprintf(out, "      - id: %u\n        action: %s\n        from: ", rule->id,
		pol_action_name(rule->action));
	pol_peer_format(&rule->from, text, sizeof(text));
	write_text(out, text);
	fprintf(out, "\n        to: ");
	pol_selector_format(&rule->to, text, sizeof(text));
	write_text(out, text);
	fputc('\n', out);
	/* Range by range, not pol_ports_format(): the list reads back as it is. */
	for (unsigned int i = 0; i < rule->n_ports; i++) {
		const struct pol_port_range *r = &rule->ports[i];

		fprintf(out, "%s", i ? ", " : "        ports: [");
		if (r->first == r->last)
			fprintf(out, "%u", r->first);
		else
			fprintf(out, "%u-%u", r->first, r->last);
	}
	fprintf(out, "%s", rule->n_ports ? "]\n" : "");
	if (rule->protos != POL_ANY_PROTO)
		fprintf(out, "        protocol: %s\n", pol_protos_name(rule->protos));
}

static void write_ruleset(FILE *out, const struct pol_ruleset *rs)
{
	fprintf(out, "  - name: ");
	write_text(out, rs->name);
	fputc('\n', out);
	if (rs->established != POL_EST_KEEP)
		fprintf(out, "    established: %s\n", pol_established_name(rs->established));
	fprintf(out, "    rules:%s\n", rs->n_rules ? "" : " []");
	for (size_t i = 0; i < rs->n_rules; i++)
		write_rule(out, &rs->rules[i]);
}

/* ---- http and proxy ---- */

static bool addr_equal(const struct addr_port *a, const struct addr_port *b)
{
	return a->family == b->family && a->port == b->port &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

/* Only called with some bit set: an empty list does not read back. */
static void write_methods(FILE *out, uint32_t methods)
{
	static const char *const names[] = { "GET",   "HEAD",	 "POST",  "PUT",    "DELETE",
					     "PATCH", "OPTIONS", "TRACE", "CONNECT" };
	const char *sep = "[";

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (methods & (1u << i)) {
			fprintf(out, "%s%s", sep, names[i]);
			sep = ", ";
		}
	}
	fputs("]", out);
}

static void write_path(FILE *out, const char *indent, enum cfg_path_match kind, const char *path)
{
	fprintf(out, "%s%s: ", indent, kind == CFG_PATH_EXACT ? "path" : "prefix");
	write_quoted(out, path);
	fputc('\n', out);
}

static bool group_is_default(const struct cfg_http_group *g)
{
	return g->lb == CFG_LB_ROUND_ROBIN && !g->max_connections && !g->max_pending &&
	       !g->max_requests && g->consecutive_5xx == 5 && g->base_ejection_ms == 30000 &&
	       g->max_ejection_percent == 50;
}

static void write_group(FILE *out, const struct cfg_http_group *g)
{
	static const char *const lb_names[] = { "round-robin", "least-request", "hash" };
	char text[ADDR_STR_MAX];

	fprintf(out, "        - name: ");
	write_text(out, g->name);
	fprintf(out, "\n          lb: %s\n", lb_names[g->lb]);
	if (g->lb == CFG_LB_HASH_HEADER) {
		fprintf(out, "          hash_header: ");
		write_text(out, g->hash_header);
		fputc('\n', out);
	}
	if (g->n_backends)
		fprintf(out, "          backends:\n");
	for (size_t i = 0; i < g->n_backends; i++) {
		addr_format_endpoint(&g->backends[i].addr, text, sizeof(text));
		fprintf(out, "            - { address: \"%s\", weight: %u }\n", text,
			g->backends[i].weight);
	}
	fprintf(out,
		"          circuit_breaker: { max_connections: %u, max_pending: %u, "
		"max_requests: %u }\n"
		"          outlier: { consecutive_5xx: %u, base_ejection_ms: %u, "
		"max_ejection_percent: %u }\n",
		g->max_connections, g->max_pending, g->max_requests, g->consecutive_5xx,
		g->base_ejection_ms, g->max_ejection_percent);
}

static void write_match(FILE *out, const struct cfg_http_route *r)
{
	if (!r->host[0] && r->path_kind == CFG_PATH_ANY && !r->methods && !r->n_headers)
		return;
	fprintf(out, "          match:\n");
	if (r->host[0]) {
		fprintf(out, "            host: ");
		write_text(out, r->host);
		fputc('\n', out);
	}
	if (r->path_kind != CFG_PATH_ANY)
		write_path(out, "            ", r->path_kind, r->path);
	if (r->methods) {
		fprintf(out, "            methods: ");
		write_methods(out, r->methods);
		fputc('\n', out);
	}
	for (unsigned int i = 0; i < r->n_headers; i++) {
		fprintf(out, "%s", i ? ", " : "            headers: { ");
		write_text(out, r->headers[i].name);
		fprintf(out, ": ");
		write_quoted(out, r->headers[i].present ? "*" : r->headers[i].value);
	}
	fprintf(out, "%s", r->n_headers ? " }\n" : "");
}

/* Timeouts the proxy section gives are left out: they read back so. */
static void write_route_tail(FILE *out, const struct cfg_http_route *r, const struct cfg_proxy *px)
{
	static const char *const on_names[] = { "connect-failure", "reset", "502", "503", "504" };
	static const char *const keys[] = { "connect_ms", "request_ms", "idle_ms" };
	const uint32_t mine[] = { r->connect_timeout_ms, r->request_timeout_ms,
				  r->idle_timeout_ms };
	const uint32_t theirs[] = { px->connect_timeout_ms, px->request_timeout_ms,
				    px->idle_timeout_ms };
	const char *sep = "          timeouts: { ";
	bool any = false;

	for (size_t i = 0; i < 3; i++) {
		if (mine[i] && mine[i] != theirs[i]) {
			fprintf(out, "%s%s: %u", sep, keys[i], mine[i]);
			sep = ", ";
			any = true;
		}
	}
	fprintf(out, "%s", any ? " }\n" : "");
	if (r->retries == 1 && r->retry_on == CFG_RETRY_DEFAULT)
		return;
	fprintf(out, "          retries: { attempts: %u", r->retries);
	sep = ", on: [";
	for (size_t i = 0; i < 5; i++) {
		if (r->retry_on & (1u << i)) {
			fprintf(out, "%s%s", sep, on_names[i]);
			sep = ", ";
		}
	}
	fprintf(out, "%s }\n", r->retry_on ? "]" : "");
}

static void write_route(FILE *out, const struct cfg_http_route *r, const struct cfg_http *http,
			const struct cfg_proxy *px)
{
	fprintf(out, "        - to: ");
	if (r->n_splits == 1 && r->splits[0].weight == 1) {
		write_text(out, http->groups[r->splits[0].group].name);
	} else {
		for (unsigned int i = 0; i < r->n_splits; i++) {
			fprintf(out, "%s{ group: ", i ? ", " : "[");
			write_text(out, http->groups[r->splits[i].group].name);
			fprintf(out, ", weight: %u }", r->splits[i].weight);
		}
		fputc(']', out);
	}
	fputc('\n', out);
	write_match(out, r);
	write_route_tail(out, r, px);
}

static void write_access(FILE *out, const struct cfg_http_access *a)
{
	char text[POL_LABELS_MAX * (POL_LABEL_KEY_MAX + POL_LABEL_VALUE_MAX + 2)];

	fprintf(out, "        - id: %u\n          action: %s\n          from: ", a->id,
		pol_action_name(a->action));
	pol_peer_format(&a->from, text, sizeof(text));
	write_text(out, text);
	fputc('\n', out);
	if (a->methods) {
		fprintf(out, "          methods: ");
		write_methods(out, a->methods);
		fputc('\n', out);
	}
	if (a->path_kind != CFG_PATH_ANY)
		write_path(out, "          ", a->path_kind, a->path);
}

/* groups[0] is written only when its settings are not the defaults;
 * retry_budget always is, so the key never stays empty. */
static void write_http(FILE *out, const struct cfg_http *http, const struct cfg_proxy *px)
{
	bool first_group = !group_is_default(&http->groups[0]);

	fprintf(out, "    http:\n      retry_budget: { percent: %u, min_concurrent: %u }\n",
		http->retry_budget_percent, http->retry_min_concurrent);
	if (http->n_groups > 1 || first_group)
		fprintf(out, "      groups:\n");
	for (size_t i = first_group ? 0 : 1; i < http->n_groups; i++)
		write_group(out, &http->groups[i]);
	if (http->n_routes)
		fprintf(out, "      routes:\n");
	for (size_t i = 0; i < http->n_routes; i++)
		write_route(out, &http->routes[i], http, px);
	if (http->n_access)
		fprintf(out, "      access:\n");
	for (size_t i = 0; i < http->n_access; i++)
		write_access(out, &http->access[i]);
}

/* The proxy key, with only what differs from the defaults: written once
 * something is, the flow mapping of limits or timeouts once opened. */
struct proxy_out {
	FILE *out;
	bool started;
	bool open;
};

static void proxy_key(struct proxy_out *w, const char *key)
{
	if (!w->started)
		fputs("proxy:\n", w->out);
	w->started = true;
	fprintf(w->out, "  %s: ", key);
}

static void flow_uint(struct proxy_out *w, const char *map, const char *key, uint64_t value,
		      uint64_t def)
{
	if (value == def)
		return;
	if (!w->open)
		proxy_key(w, map);
	fprintf(w->out, "%s%s: %llu", w->open ? ", " : "{ ", key, (unsigned long long)value);
	w->open = true;
}

static void flow_end(struct proxy_out *w)
{
	if (w->open)
		fputs(" }\n", w->out);
	w->open = false;
}

static void write_proxy_sinks(struct proxy_out *w, const struct cfg_proxy *px)
{
	char text[ADDR_STR_MAX];

	if (px->access_log[0] || px->access_log_json) {
		proxy_key(w, "access_log");
		fputs("{ path: ", w->out);
		write_quoted(w->out, px->access_log);
		fprintf(w->out, ", format: %s }\n", px->access_log_json ? "json" : "text");
	}
	if (px->metrics.port) {
		addr_format_endpoint(&px->metrics, text, sizeof(text));
		proxy_key(w, "metrics");
		fprintf(w->out, "\"%s\"\n", text);
	}
}

/* A state that no load made (adopted from the maps) has no listen
 * address: it has no proxy settings to keep either. */
static void write_proxy(FILE *out, const struct cfg_proxy *px)
{
	struct proxy_out w = { .out = out };
	char text[ADDR_STR_MAX];
	struct cfg_proxy d;

	if (!px->n_listen)
		return;
	cfg_proxy_defaults(&d);
	if (px->n_listen != 1 || !addr_equal(&px->listen[0], &d.listen[0])) {
		proxy_key(&w, "listen");
		for (unsigned int i = 0; i < px->n_listen; i++) {
			addr_format_endpoint(&px->listen[i], text, sizeof(text));
			fprintf(out, "%s\"%s\"", i ? ", " : "[", text);
		}
		fputs("]\n", out);
	}
	if (px->workers) {
		proxy_key(&w, "workers");
		fprintf(out, "%u\n", px->workers);
	}
	if (px->default_service[0]) {
		proxy_key(&w, "default_service");
		write_text(out, px->default_service);
		fputc('\n', out);
	}
	flow_uint(&w, "limits", "request_line", px->max_request_line, d.max_request_line);
	flow_uint(&w, "limits", "header_bytes", px->max_header_bytes, d.max_header_bytes);
	flow_uint(&w, "limits", "headers", px->max_headers, d.max_headers);
	flow_uint(&w, "limits", "body_bytes", px->max_body_bytes, d.max_body_bytes);
	flow_end(&w);
	flow_uint(&w, "timeouts", "header_ms", px->header_timeout_ms, d.header_timeout_ms);
	flow_uint(&w, "timeouts", "client_idle_ms", px->client_idle_ms, d.client_idle_ms);
	flow_uint(&w, "timeouts", "connect_ms", px->connect_timeout_ms, d.connect_timeout_ms);
	flow_uint(&w, "timeouts", "request_ms", px->request_timeout_ms, d.request_timeout_ms);
	flow_uint(&w, "timeouts", "idle_ms", px->idle_timeout_ms, d.idle_timeout_ms);
	flow_uint(&w, "timeouts", "upstream_idle_ms", px->upstream_idle_ms, d.upstream_idle_ms);
	flow_end(&w);
	write_proxy_sinks(&w, px);
}

/* The policy keys are left out when empty: a state without a policy is
 * written as before policies existed. Every rule is written with its id,
 * so ids given by the parser stay. */
int cfg_write(FILE *out, const struct cfg_state *state)
{
	const struct pol_state *pol = &state->policy;

	fprintf(out, "services:%s\n", state->n_services ? "" : " []");
	for (size_t i = 0; i < state->n_services; i++)
		write_service(out, &state->services[i], &state->proxy);
	if (pol->n_endpoints)
		fprintf(out, "endpoints:\n");
	for (size_t i = 0; i < pol->n_endpoints; i++)
		write_endpoint(out, &pol->endpoints[i]);
	if (pol->n_rulesets)
		fprintf(out, "policies:\n");
	for (size_t i = 0; i < pol->n_rulesets; i++)
		write_ruleset(out, &pol->rulesets[i]);
	write_proxy(out, &state->proxy);
	return ferror(out) ? -EIO : 0;
}

/* @n elements of @size at @src in a new array (never NULL for n = 0). */
static void *dup_array(const void *src, size_t n, size_t size)
{
	void *copy = calloc(n + 1, size);

	if (copy && n)
		memcpy(copy, src, n * size);
	return copy;
}

/* A deep copy of @src (NULL: none) into *@dst. 0, or -ENOMEM with *@dst NULL. */
static int http_copy(struct cfg_http **dst, const struct cfg_http *src)
{
	struct cfg_http *h;

	*dst = NULL;
	if (!src)
		return 0;
	h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	memcpy(h, src, sizeof(*h));
	h->groups = calloc(src->n_groups + 1, sizeof(*h->groups));
	h->n_groups = 0; /* counted as their backends are copied, for cfg_http_free() */
	h->routes = dup_array(src->routes, src->n_routes, sizeof(*h->routes));
	h->access = dup_array(src->access, src->n_access, sizeof(*h->access));
	if (!h->groups || !h->routes || !h->access)
		goto free_http;
	for (size_t i = 0; i < src->n_groups; i++) {
		const struct cfg_http_group *g = &src->groups[i];

		memcpy(&h->groups[i], g, sizeof(*g));
		h->groups[i].backends = dup_array(g->backends, g->n_backends, sizeof(*g->backends));
		if (!h->groups[i].backends)
			goto free_http;
		h->n_groups++;
	}
	*dst = h;
	return 0;
free_http:
	cfg_http_free(h);
	return -ENOMEM;
}

int cfg_copy(struct cfg_state *dst, const struct cfg_state *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->services = calloc(src->n_services + 1, sizeof(*dst->services));
	if (!dst->services)
		return -ENOMEM;
	for (size_t i = 0; i < src->n_services; i++) {
		const struct cfg_service *from = &src->services[i];
		struct cfg_service *to = &dst->services[i];

		*to = *from;
		to->http = NULL;
		to->backends = calloc(from->n_backends + 1, sizeof(*to->backends));
		if (!to->backends) {
			dst->n_services = i;
			cfg_free(dst);
			return -ENOMEM;
		}
		if (from->n_backends) /* memcpy(NULL, 0) is undefined */
			memcpy(to->backends, from->backends,
			       from->n_backends * sizeof(*to->backends));
		if (http_copy(&to->http, from->http)) {
			dst->n_services = i + 1;
			cfg_free(dst);
			return -ENOMEM;
		}
	}
	dst->n_services = src->n_services;
	dst->proxy = src->proxy;
	if (pol_state_copy(&dst->policy, &src->policy)) {
		cfg_free(dst);
		return -ENOMEM;
	}
	return 0;
}

struct cfg_service *cfg_find_service(const struct cfg_state *state, const struct sl_svc_key *key)
{
	for (size_t i = 0; i < state->n_services; i++) {
		if (!memcmp(&state->services[i].key, key, sizeof(*key)))
			return &state->services[i];
	}
	return NULL;
}

struct cfg_backend *cfg_find_backend(const struct cfg_service *svc, const struct addr_port *addr)
{
	for (size_t i = 0; i < svc->n_backends; i++) {
		if (addr_equal(&svc->backends[i].addr, addr))
			return &svc->backends[i];
	}
	return NULL;
}

/* Grow @array (of @n elements of @size) by one, zeroed. */
/* Room for element @n of @array: doubled when full (whoever allocated it:
 * the parser and cfg_copy() allocate exactly), so that building a state of
 * N entries one by one (the Kubernetes translation) copies O(N), not O(N^2). */
static void *grow_one(void *array, size_t n, size_t size)
{
	char *bigger = array;

	if (!array || malloc_usable_size(array) < (n + 1) * size)
		bigger = realloc(array, 2 * (n + 1) * size);
	if (bigger)
		memset(bigger + n * size, 0, size);
	return bigger;
}

struct cfg_service *cfg_add_service(struct cfg_state *state, const struct cfg_service *svc)
{
	struct cfg_service *services =
		grow_one(state->services, state->n_services, sizeof(*services));

	if (!services)
		return NULL;
	state->services = services;
	services[state->n_services] = *svc;
	services[state->n_services].backends = NULL;
	services[state->n_services].n_backends = 0;
	services[state->n_services].http = NULL; /* owned by the caller's @svc */
	return &services[state->n_services++];
}

struct cfg_backend *cfg_add_backend(struct cfg_service *svc, const struct cfg_backend *be)
{
	struct cfg_backend *backends = grow_one(svc->backends, svc->n_backends, sizeof(*backends));

	if (!backends)
		return NULL;
	svc->backends = backends;
	backends[svc->n_backends] = *be;
	return &backends[svc->n_backends++];
}

struct cfg_service *cfg_add_service_copy(struct cfg_state *state, const struct cfg_service *svc)
{
	struct cfg_service *copy = cfg_add_service(state, svc);

	for (size_t i = 0; copy && i < svc->n_backends; i++) {
		if (!cfg_add_backend(copy, &svc->backends[i])) {
			cfg_remove_service(state, copy);
			return NULL;
		}
	}
	return copy;
}

int cfg_svc_key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sl_svc_key));
}

/* The keys of @state's services, sorted: the sets merged here hold a
 * cluster's services. NULL when out of memory. */
static struct sl_svc_key *sorted_keys(const struct cfg_state *state)
{
	struct sl_svc_key *keys = malloc((state->n_services + 1) * sizeof(*keys));

	if (!keys)
		return NULL;
	for (size_t i = 0; i < state->n_services; i++)
		keys[i] = state->services[i].key;
	qsort(keys, state->n_services, sizeof(*keys), cfg_svc_key_cmp);
	return keys;
}

int cfg_add_missing_services(struct cfg_state *dst, const struct cfg_state *src)
{
	size_t n_held = dst->n_services;
	struct sl_svc_key *held = sorted_keys(dst);
	int err = held ? 0 : -ENOMEM;

	for (size_t i = 0; i < src->n_services && !err; i++) {
		if (!bsearch(&src->services[i].key, held, n_held, sizeof(*held), cfg_svc_key_cmp) &&
		    !cfg_add_service_copy(dst, &src->services[i]))
			err = -ENOMEM;
	}
	free(held);
	return err;
}

int cfg_add_missing_endpoints(struct cfg_state *dst, const struct cfg_state *src)
{
	struct pol_state *pol = &dst->policy;
	size_t n_held = pol->n_endpoints;
	struct pol_prefix *held = malloc((n_held + 1) * sizeof(*held));
	int err = 0;

	if (!held)
		return -ENOMEM;
	for (size_t i = 0; i < n_held; i++)
		held[i] = pol->endpoints[i].addr;
	qsort(held, n_held, sizeof(*held), pol_prefix_cmp);
	for (size_t i = 0; i < src->policy.n_endpoints && !err; i++) {
		const struct pol_endpoint *ep = &src->policy.endpoints[i];
		struct pol_endpoint *grown;

		if (bsearch(&ep->addr, held, n_held, sizeof(*held), pol_prefix_cmp))
			continue;
		grown = grow_one(pol->endpoints, pol->n_endpoints, sizeof(*grown));
		if (grown) {
			pol->endpoints = grown;
			pol->endpoints[pol->n_endpoints++] = *ep;
		}
		err = grown ? 0 : -ENOMEM;
	}
	free(held);
	return err;
}

void cfg_remove_service(struct cfg_state *state, struct cfg_service *svc)
{
	size_t i = svc - state->services;

	free(svc->backends);
	cfg_http_free(svc->http);
	memmove(svc, svc + 1, (state->n_services - i - 1) * sizeof(*svc));
	state->n_services--;
}

void cfg_remove_backend(struct cfg_service *svc, struct cfg_backend *be)
{
	size_t i = be - svc->backends;

	memmove(be, be + 1, (svc->n_backends - i - 1) * sizeof(*be));
	svc->n_backends--;
}

uint64_t cfg_digest(const void *data, size_t len)
{
	return hash_fnv1a(HASH_FNV_OFFSET, data, len);
}
