/* The agent's Prometheus endpoint (metrics.h). A scrape first reads every
 * service and backend once (with their traffic and health), then writes
 * each metric family whole, HELP and TYPE before its samples, as the text
 * format requires. The HTTP side answers one request per connection and
 * bounds every wait: a scraper gets METRICS_IO_MS to send its request and
 * as long again to take the answer, so a stuck one cannot hold the loop. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "metrics.h"
#include "sluice/drop_reason.h"
#include "sluice/limits.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define METRICS_IO_MS 1000 /* to read a request, and again to send the answer */
#define METRICS_HEAD_MAX 8192 /* request line and headers */
#define METRICS_BACKLOG 16
#define COUNT_BATCH 4096 /* hash entries read per syscall when counting */
/* service="<ADDR_STR_MAX>",name="<31 bytes, each escaped to at most 2>" */
#define LABELS_MAX 192

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"

/* ---- label values ---- */

/* Length of the UTF-8 sequence at @s, 0 if it is not valid UTF-8 (bad
 * lead or continuation byte, overlong form, surrogate, past U+10FFFF). */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}

/* How @c is written inside a label value: "\\\\", "\\"" or "\\n", NULL as is. */
static const char *label_escape_of(unsigned char c)
{
	return c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\n' ? "\\n" : NULL;
}

/* Write @s into @buf (@len bytes, NUL-terminated) as a label value: \\,
 * \" and \n escaped as the format requires, and every byte that is not
 * UTF-8 replaced by '?', since Prometheus rejects the whole scrape over
 * one bad byte and a service name is whatever bytes the CLI was given.
 * Stops before a sequence that does not fit, so it never cuts one. */
static void label_escape(const char *s, char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t pos = 0;

	while (*p) {
		size_t n = utf8_len(p);
		const char *put = n ? label_escape_of(*p) : "?";
		size_t put_len = put ? strlen(put) : n;

		if (!put)
			put = (const char *)p;
		if (pos + put_len >= len)
			break;
		memcpy(buf + pos, put, put_len);
		pos += put_len;
		p += n ? n : 1;
	}
	if (len)
		buf[pos] = '\0';
}

/* ---- one scrape's snapshot ---- */

/* A service or a backend, as one scrape saw it. */
struct row {
	char labels[LABELS_MAX]; /* escaped: service="...",name="..." or ...,backend="..." */
	struct sl_traffic traffic;
	/* services only: what their backends need */
	__u32 id;
	struct sl_svc_key key;
	char where[ADDR_STR_MAX]; /* "198.19.0.10:80/tcp" */
	/* backends only */
	__u32 weight;
	bool checked; /* a health target: state and counts are set */
	enum health_state state;
	struct health_counts counts;
};

struct scrape {
	const struct metrics_source *src;
	struct row *svcs; /* in id order */
	size_t n_svc, cap_svc;
	struct row *bes; /* in id order; only those whose service was read */
	size_t n_be, cap_be;
	__u64 be_slots; /* backend slots in use, orphans included */
};

/* Make room for one more row in *@rows; 0 or -ENOMEM. */
static int rows_grow(struct row **rows, size_t n, size_t *cap)
{
	size_t want = *cap ? *cap * 2 : 64;
	struct row *more;

	if (n < *cap)
		return 0;
	more = realloc(*rows, want * sizeof(*more));
	if (!more)
		return -ENOMEM;
	*rows = more;
	*cap = want;
	return 0;
}

static int svc_collect(const struct sl_svc_key *key, const struct sl_svc *svc, void *ctx)
{
	char name[2 * SL_SVC_NAME_MAX];
	struct scrape *s = ctx;
	struct row *row;
	int err = rows_grow(&s->svcs, s->n_svc, &s->cap_svc);

	if (err)
		return err;
	row = &s->svcs[s->n_svc];
	memset(row, 0, sizeof(*row));
	row->id = svc->id;
	row->key = *key;
	err = lb_read_traffic(s->src->maps->svc_st, svc->id, &row->traffic);
	if (err)
		return err;
	addr_format_service(key, row->where, sizeof(row->where));
	label_escape(svc->name, name, sizeof(name));
	snprintf(row->labels, sizeof(row->labels), "service=\"%s\",name=\"%s\"", row->where, name);
	s->n_svc++;
	return 0;
}

static int row_id_cmp(const void *key, const void *elem)
{
	__u32 id = *(const __u32 *)key, other = ((const struct row *)elem)->id;

	return (id > other) - (id < other);
}

static void be_health(struct scrape *s, const struct sl_svc_key *key, struct row *row,
		      const struct addr_port *ap)
{
	row->checked =
		s->src->health && !health_get(s->src->health, key, ap, &row->state, &row->counts);
}

static int be_collect(__u32 id, const struct sl_backend *be, void *ctx)
{
	struct addr_port ap = { .port = be->port, .family = be->family };
	char where[ADDR_STR_MAX];
	struct scrape *s = ctx;
	const struct row *owner;
	struct row *row;
	int err;

	s->be_slots++;
	/* A backend whose service is gone (or not yet read) is mid-change:
	 * without its service it has no labels, and the next scrape has it. */
	owner = bsearch(&be->svc_id, s->svcs, s->n_svc, sizeof(*s->svcs), row_id_cmp);
	if (!owner)
		return 0;
	err = rows_grow(&s->bes, s->n_be, &s->cap_be);
	if (err)
		return err;
	row = &s->bes[s->n_be];
	memset(row, 0, sizeof(*row));
	row->weight = be->weight;
	err = lb_read_traffic(s->src->maps->be_st, id, &row->traffic);
	if (err)
		return err;
	memcpy(ap.addr, be->addr, sizeof(ap.addr));
	addr_format_endpoint(&ap, where, sizeof(where));
	snprintf(row->labels, sizeof(row->labels), "service=\"%s\",backend=\"%s\"", owner->where,
		 where);
	be_health(s, &owner->key, row, &ap);
	s->n_be++;
	return 0;
}

static int scrape_read(struct scrape *s)
{
	int err = lb_service_foreach(s->src->maps, svc_collect, s);

	/* 0: every backend in one pass over the slots, not one per service. */
	return err ? err : lb_backend_foreach(s->src->maps, 0, be_collect, s);
}

static void scrape_free(struct scrape *s)
{
	free(s->svcs);
	free(s->bes);
}

/* ---- writing samples ---- */

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: @name{@labels,@key="@value"} @v. @labels (escaped already)
 * and @key may be NULL; @value is one of our own names, never escaped. */
static void sample(FILE *out, const char *name, const char *labels, const char *key,
		   const char *value, unsigned long long v)
{
	bool has = labels && *labels;

	fputs(name, out);
	if (has || key)
		fprintf(out, "{%s%s", has ? labels : "", has && key ? "," : "");
	if (key)
		fprintf(out, "%s=\"%s\"", key, value);
	if (has || key)
		fputc('}', out);
	fprintf(out, " %llu\n", v);
}

/* A float as Prometheus parses it: the shortest of %.15g and %.17g that
 * reads back exactly, and NaN/+Inf/-Inf rather than libc's nan/inf. */
static const char *fmt_double(double v, char *buf, size_t len)
{
	if (isnan(v))
		return "NaN";
	if (isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	snprintf(buf, len, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, len, "%.17g", v);
	return buf;
}

static void sample_double(FILE *out, const char *name, double v)
{
	char buf[32];

	fprintf(out, "%s %s\n", name, fmt_double(v, buf, sizeof(buf)));
}

/* ---- services and backends ---- */

#define NO_DIRECTION SIZE_MAX

/* The struct sl_traffic counters, each a family per kind (service, backend). */
static const struct traffic_metric {
	const char *suffix; /* after "sluice_service_" or "sluice_backend_" */
	const char *help;
	size_t fwd_off, rev_off; /* offsetof(struct sl_traffic, ...); NO_DIRECTION */
} traffic_metrics[] = {
	{ "packets_total",
	  "Packets balanced, by direction (forward: client to VIP, reverse: backend to client).",
	  offsetof(struct sl_traffic, fwd_packets), offsetof(struct sl_traffic, rev_packets) },
	{ "bytes_total", "Bytes of the frames balanced (as XDP saw them), by direction.",
	  offsetof(struct sl_traffic, fwd_bytes), offsetof(struct sl_traffic, rev_bytes) },
	{ "new_flows_total", "Flows opened (conntrack entries made for a first packet).",
	  offsetof(struct sl_traffic, new_flows), NO_DIRECTION },
};

static unsigned long long traffic_at(const struct sl_traffic *t, size_t off)
{
	return *(const __u64 *)((const char *)t + off);
}

static void render_traffic(FILE *out, const char *kind, const struct row *rows, size_t n)
{
	char name[64];

	for (size_t m = 0; m < ARRAY_SIZE(traffic_metrics); m++) {
		const struct traffic_metric *tm = &traffic_metrics[m];

		snprintf(name, sizeof(name), "sluice_%s_%s", kind, tm->suffix);
		family(out, name, "counter", tm->help);
		for (size_t i = 0; i < n; i++) {
			const struct row *r = &rows[i];

			if (tm->rev_off == NO_DIRECTION) {
				sample(out, name, r->labels, NULL, NULL,
				       traffic_at(&r->traffic, tm->fwd_off));
				continue;
			}
			sample(out, name, r->labels, "direction", "forward",
			       traffic_at(&r->traffic, tm->fwd_off));
			sample(out, name, r->labels, "direction", "reverse",
			       traffic_at(&r->traffic, tm->rev_off));
		}
	}
}

/* Health as a state set: one series per state, 1 for the current one, so
 * both "is it down" and "how many are up" are plain selectors and sums. */
static void render_health_state(FILE *out, const struct scrape *s)
{
	static const enum health_state states[] = { HEALTH_UP, HEALTH_DOWN, HEALTH_UNKNOWN };

	family(out, "sluice_backend_health", "gauge",
	       "Health-check state of a checked backend: one series per state (up, down, "
	       "unknown: not probed enough yet), 1 for the current one. Unchecked backends "
	       "have none.");
	for (size_t i = 0; i < s->n_be; i++) {
		for (size_t j = 0; s->bes[i].checked && j < ARRAY_SIZE(states); j++)
			sample(out, "sluice_backend_health", s->bes[i].labels, "state",
			       health_state_name(states[j]), s->bes[i].state == states[j]);
	}
}

static const struct health_metric {
	const char *name, *help;
	size_t off; /* offsetof(struct health_counts, ...) */
} health_metrics[] = {
	{ "sluice_backend_health_probes_total", "Health probes sent to the backend.",
	  offsetof(struct health_counts, probes) },
	{ "sluice_backend_health_failures_total", "Health probes the backend failed.",
	  offsetof(struct health_counts, failures) },
	{ "sluice_backend_health_transitions_total", "Times the backend went up or down.",
	  offsetof(struct health_counts, transitions) },
};

static void render_health(FILE *out, const struct scrape *s)
{
	render_health_state(out, s);
	for (size_t m = 0; m < ARRAY_SIZE(health_metrics); m++) {
		family(out, health_metrics[m].name, "counter", health_metrics[m].help);
		for (size_t i = 0; i < s->n_be; i++) {
			const char *c = (const char *)&s->bes[i].counts + health_metrics[m].off;

			if (s->bes[i].checked)
				sample(out, health_metrics[m].name, s->bes[i].labels, NULL, NULL,
				       *(const uint64_t *)c);
		}
	}
}

static void render_lb(FILE *out, const struct scrape *s)
{
	render_traffic(out, "service", s->svcs, s->n_svc);
	render_traffic(out, "backend", s->bes, s->n_be);
	family(out, "sluice_backend_weight", "gauge",
	       "Weight of the backend in the load balancer (0: no new flows, e.g. drained or down).");
	for (size_t i = 0; i < s->n_be; i++)
		sample(out, "sluice_backend_weight", s->bes[i].labels, NULL, NULL,
		       s->bes[i].weight);
	if (s->src->health)
		render_health(out, s);
}

/* ---- datapath counters ---- */

static const char *const proto_names[] = SL_PROTO_STAT_NAMES;
static const char *const perr_names[] = SL_PARSE_ERR_NAMES;
static const char *const lb_names[] = SL_LB_STAT_NAMES;
static const char *const drop_names[] = SL_DROP_REASON_NAMES;

_Static_assert(ARRAY_SIZE(proto_names) == SL_PS_MAX, "names");
_Static_assert(ARRAY_SIZE(perr_names) == SL_PERR_MAX, "names");
_Static_assert(ARRAY_SIZE(lb_names) == SL_LB_STAT_MAX, "names");
_Static_assert(ARRAY_SIZE(drop_names) == SL_DROP_MAX, "names");

/* A family over indices [first, n) of a per-CPU u64 counter map, one
 * series per index labelled @label="<name>" (@label NULL: one index). */
static const struct counter_set {
	const char *name, *help, *label;
	size_t fd_off; /* offsetof(struct lb_maps, ...) */
	const char *const *names;
	__u32 first, n;
} counter_sets[] = {
	{ "sluice_packets_total", "Packets the XDP program saw.", NULL,
	  offsetof(struct lb_maps, proto_st), proto_names, SL_PS_PACKETS, SL_PS_PACKETS + 1 },
	{ "sluice_protocol_packets_total",
	  "Packets by header type; a packet counts once for each header it has (e.g. ipv4 and tcp).",
	  "protocol", offsetof(struct lb_maps, proto_st), proto_names, SL_PS_VLAN, SL_PS_MAX },
	{ "sluice_parse_errors_total", "Packets the parser rejected, by cause (they are passed).",
	  "reason", offsetof(struct lb_maps, perr_st), perr_names, 1, SL_PERR_MAX },
	{ "sluice_lb_packets_total", "What the load balancer did with a packet, by action.",
	  "action", offsetof(struct lb_maps, lb_st), lb_names, 0, SL_LB_STAT_MAX },
	{ "sluice_drops_total", "Packets dropped, by reason.", "reason",
	  offsetof(struct lb_maps, drop_st), drop_names, 1, SL_DROP_MAX },
};

static int render_counter_set(FILE *out, struct lb_maps *maps, const struct counter_set *set)
{
	int fd = *(const int *)((const char *)maps + set->fd_off);
	__u64 sum;
	int err;

	family(out, set->name, "counter", set->help);
	for (__u32 i = set->first; i < set->n; i++) {
		err = lb_read_counter(fd, i, &sum);
		if (err)
			return err;
		sample(out, set->name, NULL, set->label, set->names[i], sum);
	}
	return 0;
}

/* ---- map occupancy ---- */

/* Entries of hash map @fd, read in batches (a syscall per COUNT_BATCH
 * entries, not per entry); @info gives the key and value sizes. */
static int hash_count(int fd, const struct bpf_map_info *info, __u64 *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	void *keys = calloc(COUNT_BATCH, info->key_size);
	void *vals = calloc(COUNT_BATCH, info->value_size);
	__u64 in_batch = 0, out_batch = 0;
	bool first = true, done = false;
	int err = keys && vals ? 0 : -ENOMEM;

	*count = 0;
	while (!err && !done) {
		__u32 n = COUNT_BATCH;

		if (bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, keys, vals, &n,
					 &opts)) {
			if (errno != ENOENT)
				err = -errno;
			done = true; /* ENOENT: this was the last batch */
		}
		*count += n;
		in_batch = out_batch;
		first = false;
	}
	free(keys);
	free(vals);
	return err;
}

struct map_use {
	const char *name;
	int fd;
	bool by_id; /* an array indexed by id: slot 0 is never used */
	bool count; /* count its entries here (else: already known) */
	__u64 entries, capacity;
};

static int map_use_read(struct map_use *use)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(use->fd, &info, &len))
		return -errno;
	use->capacity = use->by_id ? info.max_entries - 1 : info.max_entries;
	return use->count ? hash_count(use->fd, &info, &use->entries) : 0;
}

static int render_maps(FILE *out, const struct scrape *s)
{
	struct lb_maps *maps = s->src->maps;
	struct map_use use[] = {
		{ "sl_svc", maps->svc, true, false, s->n_svc, 0 },
		{ "sl_be", maps->be, true, false, s->be_slots, 0 },
		{ "sl_ct4", maps->ct4, false, false, 0, 0 },
		{ "sl_ct6", maps->ct6, false, false, 0, 0 },
		{ "sl_affinity", maps->affinity, false, true, 0, 0 },
	};
	__u32 v4, v6;
	int err = lb_ct_count(maps, &v4, &v6);

	use[2].entries = v4;
	use[3].entries = v6;
	for (size_t i = 0; !err && i < ARRAY_SIZE(use); i++)
		err = map_use_read(&use[i]);
	if (err)
		return err;
	family(out, "sluice_map_entries", "gauge",
	       "Entries in a BPF map (sl_be: backend slots in use; sl_ct4/6: two per flow).");
	for (size_t i = 0; i < ARRAY_SIZE(use); i++)
		sample(out, "sluice_map_entries", NULL, "map", use[i].name, use[i].entries);
	family(out, "sluice_map_capacity", "gauge",
	       "Entries a BPF map can hold (id-indexed maps: ids 1..max_entries-1).");
	for (size_t i = 0; i < ARRAY_SIZE(use); i++)
		sample(out, "sluice_map_capacity", NULL, "map", use[i].name, use[i].capacity);
	return 0;
}

/* ---- the agent ---- */

static void render_u64(FILE *out, const char *name, const char *type, const char *help, uint64_t v)
{
	family(out, name, type, help);
	sample(out, name, NULL, NULL, NULL, v);
}

static void render_double(FILE *out, const char *name, const char *type, const char *help, double v)
{
	family(out, name, type, help);
	sample_double(out, name, v);
}

static void render_agent(FILE *out, const struct metrics_source *src)
{
	const struct agent_stats *st = src->stats;
	char version[128];

	label_escape(src->version ? src->version : "unknown", version, sizeof(version));
	family(out, "sluice_agent_info", "gauge", "Always 1; the agent's version in a label.");
	fprintf(out, "sluice_agent_info{version=\"%s\"} 1\n", version);
	if (!st)
		return;
	render_double(out, "sluice_agent_start_time_seconds", "gauge",
		      "When the agent started, in seconds since the Unix epoch.", st->start_time);
	render_u64(out, "sluice_agent_transactions_total", "counter",
		   "Changes published to the datapath (CLI verbs, apply, reload).",
		   st->transactions);
	render_u64(out, "sluice_agent_transaction_errors_total", "counter",
		   "Changes refused or failed, nothing published.", st->transaction_errors);
	family(out, "sluice_agent_transaction_seconds", "summary",
	       "Wall time of the published changes.");
	sample_double(out, "sluice_agent_transaction_seconds_sum", st->transaction_seconds_sum);
	sample(out, "sluice_agent_transaction_seconds_count", NULL, NULL, NULL, st->transactions);
	render_double(out, "sluice_agent_last_transaction_seconds", "gauge",
		      "Wall time of the last published change.", st->last_transaction_seconds);
	render_u64(out, "sluice_agent_reloads_total", "counter",
		   "Config reloads applied (SIGHUP or the reload request).", st->reloads);
	render_u64(out, "sluice_agent_reload_errors_total", "counter",
		   "Config reloads that failed.", st->reload_errors);
	render_u64(out, "sluice_agent_api_requests_total", "counter",
		   "Requests on the agent's control socket.", st->api_requests);
	render_u64(out, "sluice_agent_api_errors_total", "counter",
		   "Requests answered with an error.", st->api_errors);
	render_u64(out, "sluice_agent_health_transitions_total", "counter",
		   "Backend health transitions the agent applied.", st->health_transitions);
}

int metrics_render(FILE *out, const struct metrics_source *src)
{
	struct scrape s = { .src = src };
	int err = 0;

	render_agent(out, src);
	if (!src->maps)
		return 0;
	for (size_t i = 0; !err && i < ARRAY_SIZE(counter_sets); i++)
		err = render_counter_set(out, src->maps, &counter_sets[i]);
	if (!err)
		err = scrape_read(&s);
	if (!err)
		render_lb(out, &s);
	if (!err)
		err = render_maps(out, &s);
	scrape_free(&s);
	return err;
}

/* ---- HTTP: parsing a request head ---- */

struct http_request {
	const char *method, *target;
	size_t method_len, target_len;
};

/* RFC 9110 token characters. */
static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The line ending at @p: its length (CRLF or a bare LF), -2 incomplete, -1 not one. */
static int line_end(const char *p, size_t len)
{
	if (!len)
		return -2;
	if (p[0] == '\n')
		return 1;
	if (p[0] != '\r')
		return -1;
	return len < 2 ? -2 : p[1] == '\n' ? 2 : -1;
}

/* "HTTP/1.0" or "HTTP/1.1" and the line end: bytes, -2 or -1. */
static int http_version(const char *p, size_t len)
{
	static const char want[] = "HTTP/1.";
	size_t n = len < sizeof(want) - 1 ? len : sizeof(want) - 1;
	int end;

	if (memcmp(p, want, n))
		return -1;
	if (len <= sizeof(want) - 1)
		return -2;
	if (p[7] != '0' && p[7] != '1')
		return -1;
	end = line_end(p + 8, len - 8);
	return end < 0 ? end : 8 + end;
}

/* One header line at @p (name ":" value, no control bytes but tab): its
 * length, -2 incomplete, -1 malformed. Values are not kept: the answer
 * depends on the method and path only. */
static int http_header(const char *p, size_t len)
{
	const char *nl = memchr(p, '\n', len);
	size_t end, i = 0;

	while (i < len && is_tchar(p[i]))
		i++;
	if (i < len && (!i || p[i] != ':'))
		return -1;
	if (!nl)
		return -2;
	end = nl - p;
	if (end && p[end - 1] == '\r')
		end--;
	for (i++; i < end; i++) {
		if (((unsigned char)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return -1;
	}
	return nl - p + 1;
}

/* Parse the request line of @buf[0, @len) into @req: bytes through its
 * line end, -2 when more is needed, -1 as soon as it cannot be HTTP/1.x
 * (so a TLS hello or junk is refused without waiting for more). */
static int http_request_line(const char *buf, size_t len, struct http_request *req)
{
	size_t i = 0;
	int ver;

	/* RFC 9112 2.2: empty lines before the request line are ignored. */
	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	req->method = buf + i;
	while (i < len && is_tchar(buf[i]))
		i++;
	req->method_len = buf + i - req->method;
	if (i == len)
		return -2;
	if (buf[i] != ' ' || !req->method_len)
		return -1;
	req->target = buf + ++i;
	while (i < len && (unsigned char)buf[i] > ' ' && buf[i] != 0x7f)
		i++;
	req->target_len = buf + i - req->target;
	if (i == len)
		return -2;
	if (buf[i] != ' ' || !req->target_len)
		return -1;
	ver = http_version(buf + i + 1, len - i - 1);
	return ver < 0 ? ver : (int)(i + 1 + ver);
}

/* Parse the request head in @buf[0, @len), picohttpparser style: bytes
 * through the empty line that ends it, -2 incomplete, -1 malformed. */
static int http_parse_head(const char *buf, size_t len, struct http_request *req)
{
	int n = http_request_line(buf, len, req);
	size_t pos;

	if (n < 0)
		return n;
	for (pos = n;;) {
		int end = line_end(buf + pos, len - pos);

		if (end != -1)
			return end > 0 ? (int)(pos + end) : end;
		n = http_header(buf + pos, len - pos);
		if (n < 0)
			return n;
		pos += n;
	}
}

/* ---- HTTP: one connection ---- */

struct metrics_server {
	int fd;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Wait for @events on @fd until @deadline (now_ms() time): 1 ready, 0 the
 * deadline passed, or -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return 0;
		n = poll(&pfd, 1, (int)left);
		if (n >= 0)
			return n > 0;
		if (errno != EINTR)
			return -errno;
	}
}

enum head_result {
	HEAD_OK,
	HEAD_BAD, /* not HTTP/1.x */
	HEAD_TOO_BIG, /* no end within METRICS_HEAD_MAX */
	HEAD_TIMEOUT, /* the deadline passed first */
	HEAD_CLOSED, /* the peer closed or failed first */
};

/* Read the request head from @fd into @buf (@cap bytes) until it parses
 * into @req or @deadline passes; *@got is how much arrived. */
static enum head_result read_head(int fd, char *buf, size_t cap, size_t *got,
				  struct http_request *req, long long deadline)
{
	for (*got = 0;;) {
		ssize_t n = recv(fd, buf + *got, cap - *got, 0);
		int ret;

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			ret = wait_fd(fd, POLLIN, deadline);
			if (ret <= 0)
				return ret ? HEAD_CLOSED : HEAD_TIMEOUT;
			continue;
		}
		if (n <= 0)
			return HEAD_CLOSED;
		*got += n;
		ret = http_parse_head(buf, *got, req);
		if (ret > 0)
			return HEAD_OK;
		if (ret == -1)
			return HEAD_BAD;
		if (*got == cap)
			return HEAD_TOO_BIG;
	}
}

/* Drop the first @n bytes of @msg's iovecs. */
static void iov_advance(struct msghdr *msg, size_t n)
{
	while (msg->msg_iovlen && n >= msg->msg_iov->iov_len) {
		n -= msg->msg_iov->iov_len;
		msg->msg_iov++;
		msg->msg_iovlen--;
	}
	if (msg->msg_iovlen) {
		msg->msg_iov->iov_base = (char *)msg->msg_iov->iov_base + n;
		msg->msg_iov->iov_len -= n;
	}
}

/* Send @iov[0, @n) before @deadline. MSG_NOSIGNAL: a scraper that went
 * away is an EPIPE here, not a SIGPIPE that kills the agent. 0 or -errno. */
static int send_all(int fd, struct iovec *iov, size_t n, long long deadline)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n };

	iov_advance(&msg, 0);
	while (msg.msg_iovlen) {
		ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
		int ret;

		if (sent >= 0) {
			iov_advance(&msg, sent);
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		ret = wait_fd(fd, POLLOUT, deadline);
		if (ret <= 0)
			return ret ? ret : -ETIMEDOUT;
	}
	return 0;
}

struct http_answer {
	const char *status; /* "200 OK" */
	const char *type; /* Content-Type */
	const char *extra; /* more header lines, each ending in CRLF, or NULL */
	const char *body;
	size_t len;
	bool head_only; /* HEAD: headers as for GET, no body */
};

/* Send @a with its headers in one sendmsg() where it fits, so the body does
 * not wait behind Nagle for the header segment's ACK. 0 or -errno. */
static int http_send(int fd, const struct http_answer *a)
{
	char head[512];
	struct iovec iov[2];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n%s\r\n",
			 a->status, a->type, a->len, a->extra ? a->extra : "");

	iov[0] = (struct iovec){ .iov_base = head, .iov_len = n };
	iov[1] =
		(struct iovec){ .iov_base = (void *)a->body, .iov_len = a->head_only ? 0 : a->len };
	return send_all(fd, iov, 2, now_ms() + METRICS_IO_MS);
}

static void http_error(int fd, const char *status, const char *extra, bool head_only)
{
	char body[64];
	struct http_answer a = { .status = status,
				 .type = CONTENT_TYPE_TEXT,
				 .extra = extra,
				 .body = body,
				 .head_only = head_only };

	a.len = snprintf(body, sizeof(body), "%s\n", status);
	http_send(fd, &a);
}

/* Render into memory first: the length goes in the headers, and a map
 * read that fails midway becomes a 500 rather than a truncated scrape. */
static void serve_metrics(int fd, const struct metrics_source *src, bool head_only)
{
	struct http_answer a = { .status = "200 OK",
				 .type = CONTENT_TYPE_METRICS,
				 .head_only = head_only };
	char *body = NULL;
	FILE *out = open_memstream(&body, &a.len);
	int err = out ? metrics_render(out, src) : -errno;

	if (out && fclose(out) && !err)
		err = -errno;
	if (err) {
		log_warn("metrics", "cannot render the metrics: %s", strerror(-err));
		http_error(fd, "500 Internal Server Error", NULL, head_only);
	} else {
		a.body = body;
		http_send(fd, &a);
	}
	free(body);
}

static bool token_is(const char *p, size_t len, const char *want)
{
	return len == strlen(want) && !memcmp(p, want, len);
}

static void serve_request(int fd, const struct http_request *req, const struct metrics_source *src)
{
	bool head = token_is(req->method, req->method_len, "HEAD");
	const char *query = memchr(req->target, '?', req->target_len);
	size_t path_len = query ? (size_t)(query - req->target) : req->target_len;

	if (!head && !token_is(req->method, req->method_len, "GET"))
		http_error(fd, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", false);
	else if (!token_is(req->target, path_len, "/metrics"))
		http_error(fd, "404 Not Found", NULL, head);
	else
		serve_metrics(fd, src, head);
}

/* Close after answering: shut our side, then drain what the client sent
 * that we did not read, so close() sends a FIN rather than a RST that
 * can destroy the answer in flight (e.g. after an oversized request). */
static void http_close(int fd)
{
	char sink[4096];

	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

void metrics_serve_one(struct metrics_server *srv, const struct metrics_source *src)
{
	char buf[METRICS_HEAD_MAX];
	struct http_request req;
	enum head_result r;
	size_t got;
	int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		/* Nothing pending, or a client that gave up before we got to it. */
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("metrics", "accept: %s", strerror(errno));
		return;
	}
	r = read_head(fd, buf, sizeof(buf), &got, &req, now_ms() + METRICS_IO_MS);
	if (r == HEAD_OK)
		serve_request(fd, &req, src);
	else if (r == HEAD_BAD || r == HEAD_TOO_BIG || (r == HEAD_CLOSED && got))
		http_error(fd, "400 Bad Request", NULL, false);
	else if (r == HEAD_TIMEOUT && got)
		http_error(fd, "408 Request Timeout", NULL, false);
	/* else: the client sent nothing; there is nothing to answer. */
	http_close(fd);
}

/* ---- HTTP: the listening socket ---- */

static int parse_port(const char *text, __u16 *port)
{
	char *end;
	unsigned long v;

	if (*text < '0' || *text > '9' || strlen(text) > 5)
		return -EINVAL;
	v = strtoul(text, &end, 10);
	if (*end || v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

/* "ADDR:PORT", "[V6]:PORT" or ":PORT" (every address: *@any, given as
 * IPv6 [::]) into @ss. Port 0 asks for an ephemeral port (tests read it
 * back with getsockname()). 0 or -EINVAL. */
static int listen_addr_parse(const char *text, struct sockaddr_storage *ss, bool *any)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(text, ':');
	char host[INET6_ADDRSTRLEN + 2];
	size_t len = colon ? (size_t)(colon - text) : 0;
	__u16 port;

	if (!colon || len >= sizeof(host) || parse_port(colon + 1, &port))
		return -EINVAL;
	memcpy(host, text, len);
	host[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	*any = len == 0;
	if (*any || host[0] == '[') {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		if (*any)
			return 0; /* in6addr_any is all zeros */
		if (len < 3 || host[len - 1] != ']')
			return -EINVAL;
		host[len - 1] = '\0';
		return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	/* A bare IPv6 address is refused: is "::1:80" port 80 or ::1:80? */
	in4->sin_family = AF_INET;
	in4->sin_port = htons(port);
	return inet_pton(AF_INET, host, &in4->sin_addr) == 1 ? 0 : -EINVAL;
}

/* A nonblocking listening socket on @ss; @dual: IPv6 that takes IPv4 too.
 * The fd or -errno. */
static int listener_open(const struct sockaddr_storage *ss, bool dual)
{
	socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, zero = 0, err = 0;

	if (fd < 0)
		return -errno;
	/* Restarting the agent must not wait out TIME_WAIT of old scrapes. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) ||
	    bind(fd, (const struct sockaddr *)ss, len) || listen(fd, METRICS_BACKLOG))
		err = -errno;
	if (!err)
		return fd;
	close(fd);
	return err;
}

struct metrics_server *metrics_listen(const char *addr_port, char *err, size_t err_len)
{
	struct sockaddr_storage ss;
	struct metrics_server *srv;
	bool any;
	int fd;

	if (listen_addr_parse(addr_port, &ss, &any)) {
		snprintf(err, err_len,
			 "bad metrics address '%s': want ADDR:PORT, [ADDR]:PORT or :PORT",
			 addr_port);
		errno = EINVAL;
		return NULL;
	}
	fd = listener_open(&ss, any);
	if (fd == -EAFNOSUPPORT && any) {
		/* IPv6 disabled on this host: every IPv4 address, then. */
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		__be16 port = ((struct sockaddr_in6 *)&ss)->sin6_port;

		memset(&ss, 0, sizeof(ss));
		in4->sin_family = AF_INET;
		in4->sin_port = port;
		fd = listener_open(&ss, false);
	}
	srv = fd >= 0 ? calloc(1, sizeof(*srv)) : NULL;
	if (!srv) {
		errno = fd < 0 ? -fd : ENOMEM;
		snprintf(err, err_len, "cannot listen on %s: %s", addr_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	srv->fd = fd;
	return srv;
}

int metrics_fd(const struct metrics_server *srv)
{
	return srv->fd;
}

void metrics_close(struct metrics_server *srv)
{
	if (!srv)
		return;
	close(srv->fd);
	free(srv);
}
