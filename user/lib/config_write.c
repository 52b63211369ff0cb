/* Building and saving config states (config.h): what the agent keeps as
 * its desired state and writes to its state file, in the config format so
 * that a saved state is read back by the same validating parser. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
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

static void write_service(FILE *out, const struct cfg_service *svc)
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

/* The policy keys are left out when empty: a state without a policy is
 * written as before policies existed. Every rule is written with its id,
 * so ids given by the parser stay. */
int cfg_write(FILE *out, const struct cfg_state *state)
{
	const struct pol_state *pol = &state->policy;

	fprintf(out, "services:%s\n", state->n_services ? "" : " []");
	for (size_t i = 0; i < state->n_services; i++)
		write_service(out, &state->services[i]);
	if (pol->n_endpoints)
		fprintf(out, "endpoints:\n");
	for (size_t i = 0; i < pol->n_endpoints; i++)
		write_endpoint(out, &pol->endpoints[i]);
	if (pol->n_rulesets)
		fprintf(out, "policies:\n");
	for (size_t i = 0; i < pol->n_rulesets; i++)
		write_ruleset(out, &pol->rulesets[i]);
	return ferror(out) ? -EIO : 0;
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
		to->backends = calloc(from->n_backends + 1, sizeof(*to->backends));
		if (!to->backends) {
			dst->n_services = i;
			cfg_free(dst);
			return -ENOMEM;
		}
		memcpy(to->backends, from->backends, from->n_backends * sizeof(*to->backends));
	}
	dst->n_services = src->n_services;
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

static bool addr_equal(const struct addr_port *a, const struct addr_port *b)
{
	return a->family == b->family && a->port == b->port &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
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
static void *grow_one(void *array, size_t n, size_t size)
{
	char *bigger = realloc(array, (n + 1) * size);

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

void cfg_remove_service(struct cfg_state *state, struct cfg_service *svc)
{
	size_t i = svc - state->services;

	free(svc->backends);
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
