/* The config parser's internals (config.c), shared with the parts of the
 * format that live in their own files (config_policy.c, config_http.c,
 * config_proxy.c, and config_write.c for cfg_http_free()): the parser
 * state, the table of keys of one mapping, the error helpers that record
 * position and field path, and the readers of scalars, mappings and
 * sequences. Not an API: only the config_*.c files include this. */
#ifndef SLUICE_CFG_INTERNAL_H
#define SLUICE_CFG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(n) (1u << (n))

#define CFG_FIELDS_MAX 8 /* keys in the largest mapping (health) */
#define CFG_KEY_SHOWN 40 /* characters of a user's key quoted in messages */

struct cfg_policy_parse; /* config_policy.c's duplicate indexes */

struct cfg_parser {
	yaml_parser_t yaml;
	yaml_event_t event; /* the current event, owned while have_event */
	bool have_event;
	unsigned int depth; /* open mappings and sequences */
	const char *text; /* the input, to place reader errors */
	size_t len;
	struct cfg_state state; /* what was parsed so far; freed on error */
	size_t backends_total;
	uint64_t *svc_slots; /* services by key: hash << 32 | index + 1, 0 = empty */
	/* The current service's backends by address (index + 1), in a table
	 * sized to the service: 10,000 small services stay in cache. */
	uint32_t *be_slots;
	size_t be_slots_len; /* in use, a power of two */
	size_t be_slots_cap; /* allocated */
	struct cfg_policy_parse *pol; /* NULL until endpoints or policies are read */
	/* proxy.default_service's value, checked once every service is read */
	yaml_mark_t default_service_mark;
	struct cfg_error *err;
	char path[128]; /* field path of the current event */
	size_t path_len;
};

/* A mapping key: its name and the parser of its value, which starts on the
 * value's first event and returns on its last one. Integer keys share one
 * parser that stores into @obj at @offset a field of @size bytes. */
struct cfg_field {
	const char *key;
	int (*parse)(struct cfg_parser *p, const struct cfg_field *f, void *obj);
	size_t offset;
	size_t size;
	uint32_t min, max;
};

#define CFG_UINT(name, type, member, lo, hi)                                                  \
	{                                                                                     \
		.key = name, .parse = cfg_parse_uint_field, .offset = offsetof(type, member), \
		.size = sizeof(((type *)0)->member), .min = lo, .max = hi                     \
	}

/* Which keys of one mapping were present and where, for the checks that
 * span keys (required keys, http-only keys, timeout against interval). */
struct cfg_seen {
	yaml_mark_t start;
	uint32_t mask; /* BIT(i): fields[i] was present */
	yaml_mark_t key[CFG_FIELDS_MAX];
};

/* ---- errors: each records position, field path and message in p->err
 * and returns -EINVAL (cfg_oom: -ENOMEM, no position) ---- */

/* At a 1-based position, with the current path. */
__attribute__((format(printf, 4, 5))) int cfg_fail_pos(struct cfg_parser *p, unsigned int line,
						       unsigned int column, const char *fmt, ...);
/* At the start of the current event. */
__attribute__((format(printf, 2, 3))) int cfg_fail(struct cfg_parser *p, const char *fmt, ...);
/* About @key of the current mapping, found at @mark. */
__attribute__((format(printf, 4, 5))) int cfg_fail_key(struct cfg_parser *p, const char *key,
						       yaml_mark_t mark, const char *fmt, ...);
int cfg_oom(struct cfg_parser *p);

/* ---- the field path: each push returns the length cfg_path_pop() restores ---- */

size_t cfg_path_push_key(struct cfg_parser *p, const char *key); /* ".key" */
size_t cfg_path_push_index(struct cfg_parser *p, size_t i); /* "[i]" */
void cfg_path_pop(struct cfg_parser *p, size_t old);

/* ---- events ---- */

/* Replace the current event with the next one (anchors, aliases, tags and
 * deep nesting refused). */
int cfg_next_event(struct cfg_parser *p);
bool cfg_event_is_null(const yaml_event_t *ev);
/* "a mapping", "a sequence", "a scalar", "null": for messages. */
const char *cfg_event_kind(const yaml_event_t *ev);
/* The current event as a string (not null, no NUL byte); @what names the
 * expected form. @text points into the event: valid until cfg_next_event(). */
int cfg_scalar_text(struct cfg_parser *p, const char *what, const char **text);
/* The current event as one of the @n @words: its index in *@index, else
 * the error "unknown KIND 'TEXT' (LIST)"; @list says them for messages
 * ("keep or recheck"). For keys that take one word of a small set. */
int cfg_scalar_word(struct cfg_parser *p, const char *kind, const char *list,
		    const char *const *words, size_t n, unsigned int *index);
/* A plain decimal integer in [min, max]. */
int cfg_parse_uint(struct cfg_parser *p, uint32_t min, uint32_t max, uint32_t *out);
/* The parser of CFG_UINT keys. */
int cfg_parse_uint_field(struct cfg_parser *p, const struct cfg_field *f, void *obj);

/* Parse the mapping whose MAPPING_START is the current event, calling each
 * key's parser with @obj; unknown and repeated keys are errors. */
int cfg_parse_mapping(struct cfg_parser *p, const struct cfg_field *fields, size_t n, void *obj,
		      struct cfg_seen *seen);
/* Parse the sequence whose SEQUENCE_START is the current event (or a null,
 * taken as empty), calling @item on each entry's first event. */
int cfg_parse_sequence(struct cfg_parser *p, int (*item)(struct cfg_parser *p, void *obj),
		       void *obj);

/* ---- helpers ---- */

/* Room for entry @n of an array grown by doubling from 4; returns the
 * (maybe moved) array, or NULL with @array untouched. */
void *cfg_grow(void *array, size_t n, size_t size);
/* FNV-1a over @len bytes from @h (2166136261u to start), and the mix that
 * makes its low bits fit to pick a slot. */
uint32_t cfg_hash_bytes(const void *data, size_t len, uint32_t h);
uint32_t cfg_hash_finish(uint32_t h);

/* Why addr_parse_endpoint() refused the @len bytes at @text, for messages. */
const char *cfg_endpoint_problem(const char *text, size_t len);

/* ---- config_policy.c: the endpoints and policies keys ---- */

int cfg_parse_endpoints(struct cfg_parser *p, const struct cfg_field *f, void *obj);
int cfg_parse_policies(struct cfg_parser *p, const struct cfg_field *f, void *obj);
/* An `action` (allow or deny) and a `from` peer (pol_peer_parse() text):
 * shared by policy rules and the proxy's access rules. */
int cfg_parse_action(struct cfg_parser *p, enum pol_action *out);
int cfg_parse_peer(struct cfg_parser *p, struct pol_peer *out);
/* Once the whole file is read: give rules without an id theirs and check
 * the policy as a whole. */
int cfg_policy_finish(struct cfg_parser *p);
/* Release what the policy parsing kept aside (not the state). */
void cfg_policy_parse_free(struct cfg_parser *p);

/* ---- config_http.c: a service's http key ---- */

#define CFG_TIMEOUT_MAX 3600000u /* ms, an hour: every http and proxy timeout */

/* The http key of the service @obj (svc->http, set first: freed with the
 * service on error). */
int cfg_parse_http(struct cfg_parser *p, const struct cfg_field *f, void *obj);
/* At the end of a service with an http key (found at @http_key): it must
 * be l7, and its groups' backends of its vip's family. */
int cfg_http_service_finish(struct cfg_parser *p, const struct cfg_service *svc,
			    yaml_mark_t http_key);
/* Release @http (may be NULL) and all it holds. */
void cfg_http_free(struct cfg_http *http);
/* Helpers the proxy key shares: a nested mapping (refused if the current
 * event is not one); a list, given as a sequence or as one scalar, whose
 * null or [] is refused with @hint; an ADDR:PORT. */
int cfg_parse_submapping(struct cfg_parser *p, const struct cfg_field *fields, size_t n, void *obj,
			 struct cfg_seen *seen);
int cfg_parse_list(struct cfg_parser *p, int (*item)(struct cfg_parser *p, void *obj), void *obj,
		   const char *hint);
int cfg_parse_endpoint(struct cfg_parser *p, struct addr_port *out);

/* ---- config_proxy.c: the proxy key ---- */

/* Into p->state.proxy, which holds the defaults before. */
int cfg_parse_proxy(struct cfg_parser *p, const struct cfg_field *f, void *obj);
/* Once the whole file is read: proxy.default_service names an l7
 * service, and routes take the proxy's timeouts they did not set. */
int cfg_proxy_finish(struct cfg_parser *p);

#endif
