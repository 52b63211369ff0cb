/* The agent's Prometheus metrics, rendered (metrics.h; the HTTP side is
 * metrics_http.c). A scrape first reads every service and backend once
 * (with their traffic and health), then writes each metric family whole,
 * HELP and TYPE before its samples, as the text format requires. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "metrics.h"
#include "sluice/drop_reason.h"
#include "sluice/policy.h"
#include "sluice/sock.h"
#include "sluice/limits.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* service="<ADDR_STR_MAX>",name="<31 bytes, each escaped to at most 2>" */
#define LABELS_MAX 192

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
static const char *const sock_names[] = SL_SOCK_STAT_NAMES;
static const char *const pol_names[] = SL_POL_STAT_NAMES;

_Static_assert(ARRAY_SIZE(proto_names) == SL_PS_MAX, "names");
_Static_assert(ARRAY_SIZE(perr_names) == SL_PERR_MAX, "names");
_Static_assert(ARRAY_SIZE(lb_names) == SL_LB_STAT_MAX, "names");
_Static_assert(ARRAY_SIZE(drop_names) == SL_DROP_MAX, "names");
_Static_assert(ARRAY_SIZE(sock_names) == SL_SOCK_STAT_MAX, "names");
_Static_assert(ARRAY_SIZE(pol_names) == SL_POL_ST_MAX, "names");

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
	{ "sluice_socket_events_total",
	  "What the socket layer did: connect-time translation, L7 steering, redirection.", "event",
	  offsetof(struct lb_maps, sock_st), sock_names, 0, SL_SOCK_REDIR_BYTES },
	{ "sluice_socket_redirected_bytes_total",
	  "Bytes sent from one local socket straight to its peer.", NULL,
	  offsetof(struct lb_maps, sock_st), sock_names, SL_SOCK_REDIR_BYTES,
	  SL_SOCK_REDIR_BYTES + 1 },
	{ "sluice_policy_events_total",
	  "Policy checks and their outcomes (new flows at XDP, connect()/sendmsg(), re-checks), "
	  "and the denial events reported or held back by the rate limit.",
	  "event", offsetof(struct lb_maps, pol_st), pol_names, 0, SL_POL_ST_MAX },
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

/* What each map holds against what it can hold (lb_map_usage()). */
static int render_maps(FILE *out, const struct scrape *s)
{
	struct lb_map_use use[LB_USE_COUNT];
	int err = lb_map_usage(s->src->maps, use);

	if (err)
		return err;
	family(out, "sluice_map_entries", "gauge",
	       "Entries in a BPF map (sl_be: backend slots in use; sl_ct4/6: two per flow).");
	for (size_t i = 0; i < LB_USE_COUNT; i++)
		sample(out, "sluice_map_entries", NULL, "map", use[i].name, use[i].used);
	family(out, "sluice_map_capacity", "gauge",
	       "Entries a BPF map can hold (id-indexed maps: ids 1..max_entries-1).");
	for (size_t i = 0; i < LB_USE_COUNT; i++)
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
	if (src->extra)
		err = src->extra(out, src->extra_ctx);
	if (err || !src->maps)
		return err;
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

int metrics_render_agent(FILE *out, const void *src)
{
	return metrics_render(out, src);
}
