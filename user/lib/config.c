/* The YAML config parser (config.h): a recursive descent over libyaml's
 * event stream, one table of keys per mapping, that builds a cfg_state and
 * refuses the first thing wrong with its file position and field path.
 * Duplicate services and backends are found with open-addressing hash
 * tables so that 10,000 services cost linear time. The endpoints and
 * policies keys are parsed in config_policy.c, a service's http key in
 * config_http.c and the proxy key in config_proxy.c (config_internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "config_internal.h"
#include "lb.h"

#define CFG_FILE_MAX (64u << 20) /* refuse bigger files: a typo, not a config */
/* libyaml's scanner is quadratic in flow nesting (40,000 '[' take seconds);
 * refusing deep documents early keeps every input linear. */
#define CFG_DEPTH_MAX 64

/* Service hash slots: a power of two at least twice the limit, so probes
 * stay short and the table cannot fill (the limit is checked first). */
#define CFG_SVC_SLOTS 32768u
_Static_assert(CFG_SVC_SLOTS >= 2 * CFG_MAX_SERVICES, "service hash too small");
#define CFG_BE_SLOTS_MIN 16u

static int vfail_pos(struct cfg_parser *p, unsigned int line, unsigned int column, const char *fmt,
		     va_list ap)
{
	struct cfg_error *e = p->err;

	e->line = line;
	e->column = column;
	memcpy(e->field, p->path, p->path_len + 1);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	return -EINVAL;
}

/* Record the error (1-based position, current path); returns -EINVAL. */
int cfg_fail_pos(struct cfg_parser *p, unsigned int line, unsigned int column, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail_pos(p, line, column, fmt, ap);
	va_end(ap);
	return ret;
}

/* Record an error at the start of the current event. */
int cfg_fail(struct cfg_parser *p, const char *fmt, ...)
{
	yaml_mark_t mark = p->event.start_mark;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail_pos(p, mark.line + 1, mark.column + 1, fmt, ap);
	va_end(ap);
	return ret;
}

int cfg_oom(struct cfg_parser *p)
{
	p->err->line = p->err->column = 0;
	p->err->field[0] = '\0';
	snprintf(p->err->message, sizeof(p->err->message), "out of memory");
	return -ENOMEM;
}

/* Append @len bytes to the field path; returns the length to restore with
 * cfg_path_pop(). A path too long for cfg_error.field is cut, not overflowed.
 * This runs for every key and entry, hence no printf. */
static size_t path_append(struct cfg_parser *p, const char *s, size_t len)
{
	size_t old = p->path_len, room = sizeof(p->path) - 1 - old;

	if (len > room)
		len = room;
	memcpy(p->path + old, s, len);
	p->path_len = old + len;
	p->path[p->path_len] = '\0';
	return old;
}

/* ".key", or "key" at the top */
size_t cfg_path_push_key(struct cfg_parser *p, const char *key)
{
	size_t old = p->path_len;

	if (old)
		path_append(p, ".", 1);
	path_append(p, key, strnlen(key, CFG_KEY_SHOWN));
	return old;
}

/* "[i]" */
size_t cfg_path_push_index(struct cfg_parser *p, size_t i)
{
	char buf[24], *c = buf + sizeof(buf);

	*--c = ']';
	do {
		*--c = '0' + i % 10;
		i /= 10;
	} while (i);
	*--c = '[';
	return path_append(p, c, buf + sizeof(buf) - c);
}

void cfg_path_pop(struct cfg_parser *p, size_t old)
{
	p->path_len = old;
	p->path[old] = '\0';
}

/* Record an error about @key of the current mapping, found at @mark. */
int cfg_fail_key(struct cfg_parser *p, const char *key, yaml_mark_t mark, const char *fmt, ...)
{
	va_list ap;
	int ret;

	cfg_path_push_key(p, key);
	va_start(ap, fmt);
	ret = vfail_pos(p, mark.line + 1, mark.column + 1, fmt, ap);
	va_end(ap);
	return ret;
}

/* 1-based line and column of byte @offset of the input. */
static void offset_position(const struct cfg_parser *p, size_t offset, unsigned int *line,
			    unsigned int *column)
{
	size_t i, line_start = 0;

	*line = 1;
	for (i = 0; i < offset && i < p->len; i++) {
		if (p->text[i] == '\n') {
			(*line)++;
			line_start = i + 1;
		}
	}
	*column = offset - line_start + 1;
}

/* Turn libyaml's error into ours: its problem, context and position. */
static int fail_syntax(struct cfg_parser *p)
{
	const yaml_parser_t *y = &p->yaml;
	const char *problem = y->problem ? y->problem : "syntax error";
	unsigned int line, column;

	if (y->error == YAML_MEMORY_ERROR)
		return cfg_oom(p);
	cfg_path_pop(p, 0); /* libyaml reads ahead: a field would mislead */
	if (y->error == YAML_READER_ERROR) {
		offset_position(p, y->problem_offset, &line, &column);
		if (y->problem_value != -1)
			return cfg_fail_pos(p, line, column, "invalid YAML: %s (0x%02x)", problem,
					    (unsigned int)y->problem_value);
		return cfg_fail_pos(p, line, column, "invalid YAML: %s", problem);
	}
	line = y->problem_mark.line + 1;
	column = y->problem_mark.column + 1;
	if (y->context)
		return cfg_fail_pos(p, line, column, "invalid YAML: %s (%s at line %zu)", problem,
				    y->context, y->context_mark.line + 1);
	return cfg_fail_pos(p, line, column, "invalid YAML: %s", problem);
}

/* Anchors, aliases and tags are refused: a config is plain data, and an
 * alias would let a few bytes expand into millions of backends. */
static int check_event(struct cfg_parser *p)
{
	const yaml_event_t *ev = &p->event;
	const yaml_char_t *anchor, *tag;

	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return cfg_fail(p, "aliases (*%.40s) are not supported", ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default:
		return 0;
	}
	if (anchor)
		return cfg_fail(p, "anchors (&%.40s) are not supported", anchor);
	if (tag)
		return cfg_fail(p, "tags (%.40s) are not supported", tag);
	return 0;
}

/* Replace the current event with the next one. */
int cfg_next_event(struct cfg_parser *p)
{
	if (p->have_event) {
		yaml_event_delete(&p->event);
		p->have_event = false;
	}
	if (!yaml_parser_parse(&p->yaml, &p->event))
		return fail_syntax(p);
	p->have_event = true;
	if (p->event.type == YAML_MAPPING_END_EVENT || p->event.type == YAML_SEQUENCE_END_EVENT)
		p->depth--;
	if ((p->event.type == YAML_MAPPING_START_EVENT ||
	     p->event.type == YAML_SEQUENCE_START_EVENT) &&
	    ++p->depth > CFG_DEPTH_MAX)
		return cfg_fail(p, "nested deeper than %d levels", CFG_DEPTH_MAX);
	return check_event(p);
}

bool cfg_event_is_null(const yaml_event_t *ev)
{
	const char *v;

	if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)ev->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

const char *cfg_event_kind(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	case YAML_SEQUENCE_START_EVENT:
		return "a sequence";
	case YAML_SCALAR_EVENT:
		return cfg_event_is_null(ev) ? "null" : "a scalar";
	default:
		return "nothing";
	}
}

/* The current event as a string (not null, no NUL byte); @what names the
 * expected form. @text points into the event: valid until cfg_next_event(). */
int cfg_scalar_text(struct cfg_parser *p, const char *what, const char **text)
{
	const yaml_event_t *ev = &p->event;
	const char *value;

	if (ev->type != YAML_SCALAR_EVENT || cfg_event_is_null(ev)) {
		/* "vip: [fd00::1]:80/tcp" reads as a flow sequence */
		if (ev->type == YAML_SEQUENCE_START_EVENT && strchr(what, ':'))
			return cfg_fail(
				p,
				"expected %s, got a sequence (quote IPv6 addresses: \"[fd00::1]:80\")",
				what);
		return cfg_fail(p, "expected %s, got %s", what, cfg_event_kind(ev));
	}
	value = (const char *)ev->data.scalar.value;
	if (strlen(value) != ev->data.scalar.length)
		return cfg_fail(p, "expected %s, got a string with a NUL byte", what);
	*text = value;
	return 0;
}

int cfg_scalar_word(struct cfg_parser *p, const char *kind, const char *list,
		    const char *const *words, size_t n, unsigned int *index)
{
	const char *text;
	int err = cfg_scalar_text(p, list, &text);

	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(text, words[i])) {
			*index = (unsigned int)i;
			return 0;
		}
	}
	return cfg_fail(p, "unknown %s '%.40s' (%s)", kind, text, list);
}

/* A plain decimal integer in [min, max]: no sign, no leading zero (YAML
 * 1.1 reads 010 as octal), no float, no quotes. */
int cfg_parse_uint(struct cfg_parser *p, uint32_t min, uint32_t max, uint32_t *out)
{
	const yaml_event_t *ev = &p->event;
	const char *text, *c;
	uint64_t value = 0;

	if (ev->type != YAML_SCALAR_EVENT || cfg_event_is_null(ev))
		return cfg_fail(p, "expected an integer in %u..%u, got %s", min, max,
				cfg_event_kind(ev));
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return cfg_fail(p, "expected an integer in %u..%u, got a quoted string", min, max);
	text = (const char *)ev->data.scalar.value;
	for (c = text; *c >= '0' && *c <= '9'; c++) {
		if (value <= max) /* saturate: stays above max, never wraps */
			value = value * 10 + (*c - '0');
	}
	if (*c || c == text || (text[0] == '0' && text[1]))
		return cfg_fail(p, "expected a decimal integer in %u..%u, got '%.40s'", min, max,
				text);
	if (value < min || value > max)
		return cfg_fail(p, "%.40s is out of range %u..%u", text, min, max);
	*out = (uint32_t)value;
	return 0;
}

/* An integer key described by @f (CFG_UINT). */
int cfg_parse_uint_field(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	char *field = (char *)obj + f->offset;
	uint32_t value = 0;
	int err;

	err = cfg_parse_uint(p, f->min, f->max, &value);
	if (err)
		return err;
	if (f->size == sizeof(uint8_t))
		*(uint8_t *)field = value;
	else if (f->size == sizeof(uint16_t))
		*(uint16_t *)field = value;
	else
		*(uint32_t *)field = value;
	return 0;
}

/* Levenshtein distance of two short keys, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[CFG_KEY_SHOWN + 1], i, j;

	if (la > CFG_KEY_SHOWN || lb > CFG_KEY_SHOWN)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0], up;

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			row[j] = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < row[j])
				row[j] = up + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			diag = up;
		}
	}
	return row[lb];
}

/* Refuse the current key, suggesting the closest known one or listing all. */
static int fail_unknown_key(struct cfg_parser *p, const struct cfg_field *fields, size_t n,
			    const char *key)
{
	const char *best = NULL;
	size_t i, d, best_d = (size_t)-1, used = 0;
	char list[160];

	cfg_path_push_key(p, key);
	for (i = 0; i < n; i++) {
		d = edit_distance(key, fields[i].key);
		if (d < best_d && d <= (strlen(fields[i].key) + 2) / 3) {
			best = fields[i].key;
			best_d = d;
		}
	}
	if (best)
		return cfg_fail(p, "unknown key '%.40s' (did you mean '%s'?)", key, best);
	list[0] = '\0';
	for (i = 0; i < n && used < sizeof(list); i++)
		used += snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
				 fields[i].key);
	return cfg_fail(p, "unknown key '%.40s' (expected %s)", key, list);
}

/* Parse the mapping whose MAPPING_START is the current event, calling each
 * key's parser with @obj; unknown and repeated keys are errors. */
int cfg_parse_mapping(struct cfg_parser *p, const struct cfg_field *fields, size_t n, void *obj,
		      struct cfg_seen *seen)
{
	const char *key;
	size_t i, old;
	int err;

	memset(seen, 0, sizeof(*seen));
	seen->start = p->event.start_mark;
	for (;;) {
		err = cfg_next_event(p);
		if (err)
			return err;
		if (p->event.type == YAML_MAPPING_END_EVENT)
			return 0;
		err = cfg_scalar_text(p, "a key", &key);
		if (err)
			return err;
		for (i = 0; i < n && strcmp(fields[i].key, key); i++)
			;
		if (i == n)
			return fail_unknown_key(p, fields, n, key);
		if (seen->mask & BIT(i))
			return cfg_fail_key(p, fields[i].key, p->event.start_mark,
					    "duplicate key '%s' (first at line %zu)", fields[i].key,
					    seen->key[i].line + 1);
		seen->mask |= BIT(i);
		seen->key[i] = p->event.start_mark;
		old = cfg_path_push_key(p, fields[i].key);
		err = cfg_next_event(p);
		if (!err)
			err = fields[i].parse(p, &fields[i], obj);
		if (err)
			return err;
		cfg_path_pop(p, old);
	}
}

/* Parse the sequence whose SEQUENCE_START is the current event (or a null,
 * taken as empty), calling @item on each entry's first event. */
int cfg_parse_sequence(struct cfg_parser *p, int (*item)(struct cfg_parser *p, void *obj),
		       void *obj)
{
	size_t i, old;
	int err;

	if (cfg_event_is_null(&p->event))
		return 0;
	if (p->event.type != YAML_SEQUENCE_START_EVENT)
		return cfg_fail(p, "expected a sequence, got %s", cfg_event_kind(&p->event));
	for (i = 0;; i++) {
		err = cfg_next_event(p);
		if (err)
			return err;
		if (p->event.type == YAML_SEQUENCE_END_EVENT)
			return 0;
		old = cfg_path_push_index(p, i);
		err = item(p, obj);
		if (err)
			return err;
		cfg_path_pop(p, old);
	}
}

/* Room for entry @n of an array grown by doubling from 4; returns the
 * (maybe moved) array, or NULL with @array untouched. */
void *cfg_grow(void *array, size_t n, size_t size)
{
	size_t cap = 4;

	while (cap < n)
		cap *= 2;
	if (n && n < cap)
		return array;
	return realloc(array, (n ? 2 * cap : cap) * size);
}

uint32_t cfg_hash_bytes(const void *data, size_t len, uint32_t h)
{
	const unsigned char *b = data;

	while (len--)
		h = (h ^ *b++) * 16777619u; /* FNV-1a */
	return h;
}

/* FNV's low bits are weak and the slot is taken from them: mix first. */
uint32_t cfg_hash_finish(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

/* Index services[@idx] by key; returns the index of an earlier service with
 * that key (and indexes nothing), or -1. */
static long svc_index(struct cfg_parser *p, size_t idx)
{
	const struct sl_svc_key *key = &p->state.services[idx].key;
	uint32_t hash = cfg_hash_finish(cfg_hash_bytes(key, sizeof(*key), 2166136261u)), slot;
	uint64_t *s;

	for (slot = hash;; slot++) {
		s = &p->svc_slots[slot & (CFG_SVC_SLOTS - 1)];
		if (!*s)
			break;
		/* Compare hashes first: a service's key is a cache miss away. */
		if (*s >> 32 == hash &&
		    !memcmp(&p->state.services[(uint32_t)*s - 1].key, key, sizeof(*key)))
			return (uint32_t)*s - 1;
	}
	*s = (uint64_t)hash << 32 | (idx + 1);
	return -1;
}

static bool same_endpoint(const struct addr_port *a, const struct addr_port *b)
{
	return a->family == b->family && a->port == b->port &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

static long be_slot_insert(struct cfg_parser *p, const struct cfg_backend *backends, uint32_t be)
{
	const struct addr_port *ap = &backends[be].addr;
	uint32_t slot, *s;

	slot = cfg_hash_bytes(ap->addr, sizeof(ap->addr), 2166136261u);
	slot = cfg_hash_finish(cfg_hash_bytes(&ap->port, sizeof(ap->port), slot));
	for (;; slot++) {
		s = &p->be_slots[slot & (p->be_slots_len - 1)];
		if (!*s)
			break;
		if (same_endpoint(&backends[*s - 1].addr, ap))
			return *s - 1;
	}
	*s = be + 1;
	return -1;
}

/* Index @svc's backends[@be] by address (backends[0] starts a new table);
 * *@first is the index of an earlier backend with that address, or -1.
 * Returns 0 or -ENOMEM. The table doubles to stay at most half full. */
static int be_index(struct cfg_parser *p, const struct cfg_service *svc, uint32_t be, long *first)
{
	size_t len = p->be_slots_len, i;
	uint32_t *slots;

	if (be == 0 || 2 * (be + 1) > len) {
		len = be == 0 ? CFG_BE_SLOTS_MIN : 2 * len;
		if (len > p->be_slots_cap) {
			slots = realloc(p->be_slots, len * sizeof(*slots));
			if (!slots)
				return -ENOMEM;
			p->be_slots = slots;
			p->be_slots_cap = len;
		}
		memset(p->be_slots, 0, len * sizeof(*p->be_slots));
		p->be_slots_len = len;
		for (i = 0; i < be; i++)
			be_slot_insert(p, svc->backends, i);
	}
	*first = be_slot_insert(p, svc->backends, be);
	return 0;
}

/* Why addr_parse_endpoint() refused the @len bytes at @text. */
const char *cfg_endpoint_problem(const char *text, size_t len)
{
	const char *c, *colon = NULL, *end = text + len;
	unsigned long port = 0;

	for (c = text; c < end; c++) {
		if (*c == ':')
			colon = c;
	}
	if (text[0] != '[' && colon && memchr(text, ':', colon - text))
		return "IPv6 addresses go in brackets: [ADDR]:PORT";
	if (!colon || colon == text || (text[0] == '[' && colon[-1] != ']'))
		return "expected ADDR:PORT";
	for (c = colon + 1; c < end && *c >= '0' && *c <= '9' && port <= 65535; c++)
		port = port * 10 + (*c - '0');
	if (c != end || c == colon + 1 || port < 1 || port > 65535)
		return "port must be 1..65535";
	return text[0] == '[' ? "not an IPv6 address" : "not an IPv4 address";
}

static int parse_vip_text(struct cfg_parser *p, const char *text, struct sl_svc_key *key)
{
	const char *slash = strrchr(text, '/');

	if (!slash)
		return cfg_fail(p, "invalid vip '%.64s': expected VIP:PORT/PROTO", text);
	if (strcmp(slash + 1, "tcp") && strcmp(slash + 1, "udp"))
		return cfg_fail(p, "invalid vip '%.64s': protocol must be tcp or udp", text);
	if (addr_parse_service(text, key))
		return cfg_fail(p, "invalid vip '%.64s': %s", text,
				cfg_endpoint_problem(text, slash - text));
	return 0;
}

/* The service being parsed is the last one, counted from its start. */
static struct cfg_service *current_service(struct cfg_parser *p)
{
	return &p->state.services[p->state.n_services - 1];
}

/* health: the active check of a service's backends. */
enum { HF_TYPE, HF_PATH, HF_STATUS, HF_INTERVAL, HF_TIMEOUT, HF_UP, HF_DOWN };

static int parse_health_type(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	static const char *const words[] = { "tcp", "http" };
	static const enum cfg_health_type types[] = { CFG_HEALTH_TCP, CFG_HEALTH_HTTP };
	struct cfg_health *h = obj;
	unsigned int i = 0;
	int err;

	(void)f;
	err = cfg_scalar_word(p, "health check type", "tcp or http", words, ARRAY_SIZE(words), &i);
	if (!err)
		h->type = types[i];
	return err;
}

/* The path goes into a request line verbatim: no spaces, no controls. */
static int parse_health_path(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_health *h = obj;
	const unsigned char *c;
	const char *text;
	size_t len;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "a path", &text);
	if (err)
		return err;
	len = strlen(text);
	if (text[0] != '/')
		return cfg_fail(p, "path must start with '/'");
	if (len >= sizeof(h->path))
		return cfg_fail(p, "path is %zu bytes, the limit is %zu", len, sizeof(h->path) - 1);
	for (c = (const unsigned char *)text; *c; c++) {
		if (*c <= ' ' || *c >= 0x7f)
			return cfg_fail(p, "path must be printable ASCII without spaces");
	}
	memcpy(h->path, text, len + 1);
	return 0;
}

/* timeout_ms is checked against interval_ms once both are known. */
static const struct cfg_field health_fields[] = {
	[HF_TYPE] = { .key = "type", .parse = parse_health_type },
	[HF_PATH] = { .key = "path", .parse = parse_health_path },
	[HF_STATUS] = CFG_UINT("expect_status", struct cfg_health, expect_status, 100, 599),
	[HF_INTERVAL] = CFG_UINT("interval_ms", struct cfg_health, interval_ms, 10, 3600000),
	[HF_TIMEOUT] = CFG_UINT("timeout_ms", struct cfg_health, timeout_ms, 1, 3600000),
	[HF_UP] = CFG_UINT("healthy_threshold", struct cfg_health, healthy_threshold, 1, 100),
	[HF_DOWN] = CFG_UINT("unhealthy_threshold", struct cfg_health, unhealthy_threshold, 1, 100),
};
_Static_assert(ARRAY_SIZE(health_fields) <= CFG_FIELDS_MAX, "cfg_seen too small");

/* The checks that span keys, once the health mapping is read. */
static int health_finish(struct cfg_parser *p, struct cfg_health *h, const struct cfg_seen *seen)
{
	static const int http_only[] = { HF_PATH, HF_STATUS };
	size_t i;

	if (!(seen->mask & BIT(HF_TYPE)))
		return cfg_fail_key(p, "type", seen->start, "missing required key 'type'");
	for (i = 0; i < ARRAY_SIZE(http_only) && h->type == CFG_HEALTH_TCP; i++) {
		const char *key = health_fields[http_only[i]].key;

		if (seen->mask & BIT(http_only[i]))
			return cfg_fail_key(p, key, seen->key[http_only[i]],
					    "'%s' applies only to type http", key);
	}
	if (h->type == CFG_HEALTH_TCP) {
		h->path[0] = '\0';
		h->expect_status = 0;
	}
	/* The default timeout must not make a short interval invalid. */
	if (!(seen->mask & BIT(HF_TIMEOUT)))
		h->timeout_ms = h->interval_ms < 500 ? h->interval_ms : 500;
	else if (h->timeout_ms > h->interval_ms)
		return cfg_fail_key(p, "timeout_ms", seen->key[HF_TIMEOUT],
				    "timeout_ms %u exceeds interval_ms %u", h->timeout_ms,
				    h->interval_ms);
	return 0;
}

static int parse_health(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_health *h = &((struct cfg_service *)obj)->health;
	struct cfg_seen seen;
	int err;

	(void)f;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected a mapping, got %s", cfg_event_kind(&p->event));
	memset(h, 0, sizeof(*h));
	strcpy(h->path, "/");
	h->expect_status = 200;
	h->interval_ms = 1000;
	h->healthy_threshold = 2;
	h->unhealthy_threshold = 3;
	err = cfg_parse_mapping(p, health_fields, ARRAY_SIZE(health_fields), h, &seen);
	if (err)
		return err;
	return health_finish(p, h, &seen);
}

/* backends[i].address, or the whole entry in the short form. The entry is
 * @obj, backends[n_backends] of the current service, counted once complete. */
static int parse_address(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_service *svc = current_service(p);
	struct cfg_backend *be = obj;
	char shown[ADDR_STR_MAX];
	const char *text;
	long first;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "ADDR:PORT", &text);
	if (err)
		return err;
	if (addr_parse_endpoint(text, &be->addr))
		return cfg_fail(p, "invalid address '%.64s': %s", text,
				cfg_endpoint_problem(text, strlen(text)));
	if (be_index(p, svc, svc->n_backends, &first))
		return cfg_oom(p);
	if (first >= 0) {
		addr_format_endpoint(&be->addr, shown, sizeof(shown));
		return cfg_fail(p, "duplicate backend %s (first at line %u)", shown,
				svc->backends[first].line);
	}
	return 0;
}

static const struct cfg_field backend_fields[] = {
	{ .key = "address", .parse = parse_address },
	CFG_UINT("weight", struct cfg_backend, weight, 0, LB_WEIGHT_MAX),
};

/* One backend of service @obj: "ADDR:PORT" (weight 1) or a mapping. */
static int parse_backend(struct cfg_parser *p, void *obj)
{
	struct cfg_service *svc = obj;
	struct cfg_backend *be;
	struct cfg_seen seen;
	int err;

	if (p->backends_total == CFG_MAX_BACKENDS)
		return cfg_fail(p, "more than %d backends in total", CFG_MAX_BACKENDS);
	be = cfg_grow(svc->backends, svc->n_backends, sizeof(*be));
	if (!be)
		return cfg_oom(p);
	svc->backends = be;
	be += svc->n_backends;
	memset(be, 0, sizeof(*be));
	be->weight = 1;
	be->line = p->event.start_mark.line + 1;
	be->column = p->event.start_mark.column + 1;
	if (p->event.type == YAML_MAPPING_START_EVENT) {
		err = cfg_parse_mapping(p, backend_fields, ARRAY_SIZE(backend_fields), be, &seen);
		if (!err && !(seen.mask & BIT(0)))
			err = cfg_fail_key(p, "address", seen.start,
					   "missing required key 'address'");
	} else {
		err = parse_address(p, NULL, be);
	}
	if (err)
		return err;
	svc->n_backends++;
	p->backends_total++;
	return 0;
}

static int parse_backends(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_sequence(p, parse_backend, obj);
}

/* services[i] */
enum { SF_NAME, SF_VIP, SF_AFFINITY, SF_HEALTH, SF_BACKENDS, SF_L7, SF_HTTP };

bool cfg_name_valid(const char *name)
{
	size_t len = strlen(name);

	for (const char *c = name; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
			return false;
	}
	return len < SL_SVC_NAME_MAX;
}

static int parse_name(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_service *svc = obj;
	const char *text;
	size_t len;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "a name", &text);
	if (err)
		return err;
	len = strlen(text);
	if (len >= sizeof(svc->name))
		return cfg_fail(p, "name is %zu characters, the limit is %zu", len,
				sizeof(svc->name) - 1);
	if (!cfg_name_valid(text))
		return cfg_fail(p, "name '%.40s' has characters other than A-Z a-z 0-9 . _ -",
				text);
	memcpy(svc->name, text, len + 1);
	return 0;
}

static int parse_vip(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct cfg_service *svc = obj;
	char shown[ADDR_STR_MAX];
	const char *text;
	long first;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "VIP:PORT/PROTO", &text);
	if (!err)
		err = parse_vip_text(p, text, &svc->key);
	if (err)
		return err;
	first = svc_index(p, p->state.n_services - 1);
	if (first >= 0) {
		addr_format_service(&svc->key, shown, sizeof(shown));
		return cfg_fail(p, "duplicate service %s (first at line %u)", shown,
				p->state.services[first].line);
	}
	return 0;
}

/* l7: http, the only L7 protocol (the proxy speaks HTTP/1.1). */
static int parse_l7(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	static const char *const words[] = { "http" };
	struct cfg_service *svc = obj;
	unsigned int i = 0;
	int err;

	(void)f;
	err = cfg_scalar_word(p, "L7 protocol", "http", words, ARRAY_SIZE(words), &i);
	if (!err)
		svc->l7 = true;
	return err;
}

static const struct cfg_field service_fields[] = {
	[SF_NAME] = { .key = "name", .parse = parse_name },
	[SF_VIP] = { .key = "vip", .parse = parse_vip },
	[SF_AFFINITY] = CFG_UINT("affinity", struct cfg_service, affinity_s, 1, CFG_AFFINITY_MAX_S),
	[SF_HEALTH] = { .key = "health", .parse = parse_health },
	[SF_BACKENDS] = { .key = "backends", .parse = parse_backends },
	[SF_L7] = { .key = "l7", .parse = parse_l7 },
	[SF_HTTP] = { .key = "http", .parse = cfg_parse_http }, /* config_http.c */
};

/* Backends were read before or after the vip: compare families at the end. */
static int check_families(struct cfg_parser *p, const struct cfg_service *svc)
{
	char shown[ADDR_STR_MAX];
	size_t i;

	for (i = 0; i < svc->n_backends; i++) {
		const struct cfg_backend *be = &svc->backends[i];

		if (be->addr.family == svc->key.family)
			continue;
		addr_format_service(&svc->key, shown, sizeof(shown));
		cfg_path_push_key(p, "backends");
		cfg_path_push_index(p, i);
		return cfg_fail_pos(p, be->line, be->column,
				    "IPv%d backend in an IPv%d service (%s)",
				    be->addr.family == SL_AF_INET ? 4 : 6,
				    svc->key.family == SL_AF_INET ? 4 : 6, shown);
	}
	return 0;
}

static int parse_service(struct cfg_parser *p, void *obj)
{
	struct cfg_service *svc;
	struct cfg_seen seen;
	int err;

	(void)obj;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected a service mapping, got %s", cfg_event_kind(&p->event));
	if (p->state.n_services == CFG_MAX_SERVICES)
		return cfg_fail(p, "more than %d services", CFG_MAX_SERVICES);
	svc = cfg_grow(p->state.services, p->state.n_services, sizeof(*svc));
	if (!svc)
		return cfg_oom(p);
	p->state.services = svc;
	/* Counted now so that an error frees its backends with the rest. */
	svc += p->state.n_services++;
	memset(svc, 0, sizeof(*svc));
	svc->line = p->event.start_mark.line + 1;
	svc->column = p->event.start_mark.column + 1;
	err = cfg_parse_mapping(p, service_fields, ARRAY_SIZE(service_fields), svc, &seen);
	if (err)
		return err;
	if (!(seen.mask & BIT(SF_VIP)))
		return cfg_fail_key(p, "vip", seen.start, "missing required key 'vip'");
	if (svc->l7 && svc->key.proto != SL_PROTO_TCP)
		return cfg_fail_key(p, "l7", seen.key[SF_L7], "l7: http needs a TCP service");
	err = check_families(p, svc);
	/* After the whole mapping: l7 and vip may follow http. */
	if (!err && svc->http)
		err = cfg_http_service_finish(p, svc, seen.key[SF_HTTP]);
	return err;
}

static int parse_services(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_sequence(p, parse_service, obj);
}

static const struct cfg_field root_fields[] = {
	{ .key = "services", .parse = parse_services },
	{ .key = "endpoints", .parse = cfg_parse_endpoints },
	{ .key = "policies", .parse = cfg_parse_policies },
	{ .key = "proxy", .parse = cfg_parse_proxy },
};

/* The stream: nothing (an empty config) or one document holding a mapping
 * (or a null, also empty). */
static int parse_stream(struct cfg_parser *p)
{
	struct cfg_seen seen;
	int err;

	err = cfg_next_event(p); /* STREAM-START */
	if (!err)
		err = cfg_next_event(p);
	if (err || p->event.type == YAML_STREAM_END_EVENT)
		return err;
	err = cfg_next_event(p); /* the root node, after DOCUMENT-START */
	if (err)
		return err;
	if (p->event.type == YAML_MAPPING_START_EVENT) {
		err = cfg_parse_mapping(p, root_fields, ARRAY_SIZE(root_fields), NULL, &seen);
		if (!err)
			err = cfg_policy_finish(p);
		if (!err)
			err = cfg_proxy_finish(p);
	} else if (!cfg_event_is_null(&p->event)) {
		err = cfg_fail(p, "expected a mapping with 'services', got %s",
			       cfg_event_kind(&p->event));
	}
	if (!err)
		err = cfg_next_event(p); /* DOCUMENT-END */
	if (!err)
		err = cfg_next_event(p);
	if (!err && p->event.type != YAML_STREAM_END_EVENT)
		err = cfg_fail(p, "expected one YAML document, found another");
	return err;
}

int cfg_load_buffer(const char *name, const char *text, size_t len, struct cfg_state *out,
		    struct cfg_error *err)
{
	struct cfg_parser p = { .text = text ? text : "", .len = text ? len : 0 };
	struct cfg_error scratch;
	int ret;

	memset(out, 0, sizeof(*out));
	cfg_proxy_defaults(&p.state.proxy); /* an empty config has them too */
	p.err = err ? err : &scratch;
	memset(p.err, 0, sizeof(*p.err));
	snprintf(p.err->file, sizeof(p.err->file), "%s", name ? name : "<buffer>");
	p.svc_slots = calloc(CFG_SVC_SLOTS, sizeof(*p.svc_slots));
	if (!p.svc_slots || !yaml_parser_initialize(&p.yaml)) {
		ret = cfg_oom(&p);
		goto free_slots;
	}
	yaml_parser_set_input_string(&p.yaml, (const unsigned char *)p.text, p.len);
	ret = parse_stream(&p);
	if (p.have_event)
		yaml_event_delete(&p.event);
	yaml_parser_delete(&p.yaml);
	if (ret)
		cfg_free(&p.state);
	else
		*out = p.state;
free_slots:
	cfg_policy_parse_free(&p);
	free(p.be_slots);
	free(p.svc_slots);
	return ret;
}

/* Read all of @path (a pipe too) into a malloc'ed buffer. */
int cfg_read_file(const char *path, char **text, size_t *len)
{
	size_t cap = 65536, used = 0;
	char *buf, *bigger;
	struct stat st;
	ssize_t n;
	int fd, ret = -ENOMEM;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* A regular file is read with one allocation, a pipe by doubling. */
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size < CFG_FILE_MAX)
		cap = st.st_size + 1;
	buf = malloc(cap);
	if (!buf)
		goto close_fd;
	for (;;) {
		if (used == cap) {
			ret = -ENOMEM;
			bigger = realloc(buf, 2 * cap);
			if (!bigger)
				goto free_buf;
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + used, cap - used);
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		ret = -errno;
		if (n < 0)
			goto free_buf;
		used += n;
		ret = -EFBIG;
		if (used > CFG_FILE_MAX)
			goto free_buf;
	}
	close(fd);
	*text = buf;
	*len = used;
	return 0;
free_buf:
	free(buf);
close_fd:
	close(fd);
	return ret;
}

int cfg_load_file(const char *path, struct cfg_state *out, struct cfg_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = cfg_read_file(path, &text, &len);
	if (ret) {
		if (err) {
			memset(err, 0, sizeof(*err));
			snprintf(err->file, sizeof(err->file), "%s", path);
			snprintf(err->message, sizeof(err->message), "cannot read the config: %s",
				 strerror(-ret));
		}
		return ret;
	}
	ret = cfg_load_buffer(path, text, len, out, err);
	free(text);
	return ret;
}

void cfg_free(struct cfg_state *state)
{
	size_t i;

	for (i = 0; i < state->n_services; i++) {
		free(state->services[i].backends);
		cfg_http_free(state->services[i].http);
	}
	free(state->services);
	pol_state_free(&state->policy);
	memset(state, 0, sizeof(*state));
}

void cfg_error_format(const struct cfg_error *err, char *buf, size_t len)
{
	int n;

	if (!len)
		return;
	if (err->line && err->column)
		n = snprintf(buf, len, "%s:%u:%u: ", err->file, err->line, err->column);
	else if (err->line)
		n = snprintf(buf, len, "%s:%u: ", err->file, err->line);
	else
		n = snprintf(buf, len, "%s: ", err->file);
	if (n < 0 || (size_t)n >= len)
		return;
	snprintf(buf + n, len - n, "%s%s%s", err->field, err->field[0] ? ": " : "", err->message);
}
