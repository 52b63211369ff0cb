/* Building and saving config states (config.h): what the agent keeps as
 * its desired state and writes to its state file, in the config format so
 * that a saved state is read back by the same validating parser. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

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

int cfg_write(FILE *out, const struct cfg_state *state)
{
	fprintf(out, "services:%s\n", state->n_services ? "" : " []");
	for (size_t i = 0; i < state->n_services; i++)
		write_service(out, &state->services[i]);
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
	const unsigned char *byte = data;
	uint64_t hash = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		hash = (hash ^ byte[i]) * 0x100000001b3ull;
	return hash;
}
