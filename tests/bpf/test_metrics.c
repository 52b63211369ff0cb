/* Tests of the agent's Prometheus endpoint (user/sluiced/metrics.c)
 * against the maps of a loaded, unattached XDP load balancer: the text
 * rendered from services, backends, health, the datapath counters (set
 * by hand and by packets run through BPF_PROG_TEST_RUN), map occupancy
 * and the agent's own counters; then the HTTP server on 127.0.0.1 with
 * an ephemeral port, driven by a client in this same thread (it writes
 * its request first, metrics_serve_one() answers into the socket buffer).
 * Usage: test_metrics [name-substring]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "harness.h"
#include "lb.h"
#include "lb_fixture.h"
#include "loader.h"
#include "metrics.h"
#include "pkt.h"
#include "sluice/conntrack.h"
#include "sluice/drop_reason.h"
#include "sluice/limits.h"
#include "xdp_lb.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MAGLEV_SIZE 251
#define CT_SIZE 16384
#define REPLY_MAX (1 << 20)

static struct xdp_lb *skel;
static struct lb_maps maps;
static int prog_fd, ncpus;

static const struct agent_stats stats = {
	.transactions = 7,
	.transaction_errors = 2,
	.transaction_seconds_sum = 1.5,
	.last_transaction_seconds = 0.25,
	.reloads = 3,
	.reload_errors = 1,
	.api_requests = 42,
	.api_errors = 5,
	.health_transitions = 9,
	.start_time = 1700000000.5,
};

static struct metrics_source source(struct health *health)
{
	return (struct metrics_source){
		.maps = &maps, .health = health, .stats = &stats, .version = "1.2.3-test"
	};
}

/* ---- the fixture: two services, three backends ---- */

#define SVC4 "198.19.0.10:80/tcp"
#define SVC6 "[fd00::10]:53/udp"
#define BE4_A "198.18.1.2:8080"
#define BE4_B "198.18.1.3:8080"
#define BE6 "[fd00:0:0:1::2]:5353"

/* The v6 name tests escaping: quote, backslash, newline, a byte that is
 * not UTF-8 (rendered '?') and a UTF-8 "é" (kept). */
#define NAME6 "dns\"a\\b\nc\xff\xc3\xa9"
#define NAME6_LABEL "dns\\\"a\\\\b\\nc?\xc3\xa9"

/* The labels each one's series carry. */
#define S4 "service=\"" SVC4 "\",name=\"web\""
#define S6 "service=\"" SVC6 "\",name=\"" NAME6_LABEL "\""
#define B4A "service=\"" SVC4 "\",backend=\"" BE4_A "\""
#define B4B "service=\"" SVC4 "\",backend=\"" BE4_B "\""
#define B6 "service=\"" SVC6 "\",backend=\"" BE6 "\""

static struct sl_svc_key k4, k6;
static struct addr_port be4_a, be4_b, be6;

static void zero_counters(int fd, __u32 n, size_t value_size)
{
	void *zeros = calloc(ncpus, value_size);

	for (__u32 i = 0; zeros && i < n; i++)
		bpf_map_update_elem(fd, &i, zeros, BPF_ANY);
	free(zeros);
}

/* No service, no flow, every counter zero. */
static void reset(void)
{
	struct sl_svc_key key;
	struct sl_affinity_key akey;

	while (!bpf_map_get_next_key(maps.svc, NULL, &key))
		if (!ASSERT_OK(lb_service_del(&maps, &key), "reset: lb_service_del"))
			break;
	map_clear(maps.ct4);
	map_clear(maps.ct6);
	while (!bpf_map_get_next_key(maps.affinity, NULL, &akey))
		bpf_map_delete_elem(maps.affinity, &akey);
	zero_counters(maps.proto_st, SL_PS_MAX, sizeof(__u64));
	zero_counters(maps.perr_st, SL_PERR_MAX, sizeof(__u64));
	zero_counters(maps.lb_st, SL_LB_STAT_MAX, sizeof(__u64));
	zero_counters(maps.drop_st, SL_DROP_MAX, sizeof(__u64));
	zero_counters(maps.svc_st, 64, sizeof(struct sl_traffic));
	zero_counters(maps.be_st, 64, sizeof(struct sl_traffic));
}

static void fixture_add(void)
{
	struct sl_svc web = { .name = "web" }, dns = { .name = NAME6 };

	reset();
	k4 = key_of("198.19.0.10", 80, IPPROTO_TCP);
	k6 = key_of("fd00::10", 53, IPPROTO_UDP);
	be4_a = ep("198.18.1.2", 8080);
	be4_b = ep("198.18.1.3", 8080);
	be6 = ep("fd00:0:0:1::2", 5353);
	ASSERT_OK(lb_service_add(&maps, &k4, &web), "add v4 service");
	ASSERT_OK(lb_service_add(&maps, &k6, &dns), "add v6 service");
	ASSERT_OK(lb_backend_add(&maps, &k4, &be4_a, 100), "add v4 backend A");
	ASSERT_OK(lb_backend_add(&maps, &k4, &be4_b, 0), "add v4 backend B (drained)");
	ASSERT_OK(lb_backend_add(&maps, &k6, &be6, 7), "add v6 backend");
}

static __u32 svc_id(const struct sl_svc_key *key)
{
	struct sl_svc svc = {};

	return lb_service_get(&maps, key, &svc) ? 0 : svc.id;
}

static int find_backend(__u32 id, const struct sl_backend *be, void *ctx)
{
	const struct addr_port *ap = ctx;

	if (be->port == ap->port && !memcmp(be->addr, ap->addr, sizeof(be->addr)))
		return id;
	return 0;
}

static __u32 backend_id(const struct addr_port *ap)
{
	int id = lb_backend_foreach(&maps, 0, find_backend, (void *)ap);

	return id > 0 ? id : 0;
}

/* CPU c of slot @id holds @t scaled by c + 1: the sum is @t times
 * ncpus * (ncpus + 1) / 2, so reading one CPU only shows. */
static void traffic_put(int fd, __u32 id, struct sl_traffic t)
{
	struct sl_traffic *v = calloc(ncpus, sizeof(*v));

	for (int c = 0; v && c < ncpus; c++)
		v[c] = (struct sl_traffic){ t.fwd_packets * (c + 1), t.fwd_bytes * (c + 1),
					    t.rev_packets * (c + 1), t.rev_bytes * (c + 1),
					    t.new_flows * (c + 1) };
	ASSERT_OK(v && !bpf_map_update_elem(fd, &id, v, BPF_ANY) ? 0 : -errno, "traffic_put");
	free(v);
}

static void counter_put(int fd, __u32 index, __u64 value)
{
	__u64 *v = calloc(ncpus, sizeof(*v));

	for (int c = 0; v && c < ncpus; c++)
		v[c] = value * (c + 1);
	ASSERT_OK(v && !bpf_map_update_elem(fd, &index, v, BPF_ANY) ? 0 : -errno, "counter_put");
	free(v);
}

static unsigned long long scaled(unsigned long long v)
{
	return v * ncpus * (ncpus + 1) / 2;
}

/* ---- reading the text ---- */

/* metrics_render() into a NUL-terminated string the caller frees. */
static char *render(const struct metrics_source *src)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!ASSERT_TRUE(out, "open_memstream"))
		return strdup("");
	ASSERT_OK(metrics_render(out, src), "metrics_render");
	fclose(out);
	return text;
}

static bool has_line(const char *text, const char *line)
{
	size_t len = strlen(line);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, line, len) && p[len] == '\n')
			return true;
	}
	return false;
}

static bool has_prefix(const char *text, const char *prefix)
{
	size_t len = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, prefix, len))
			return true;
	}
	return false;
}

#define EXPECT_LINE(text, ...)                                                                \
	({                                                                                    \
		char ___l[512];                                                               \
		snprintf(___l, sizeof(___l), __VA_ARGS__);                                    \
		harness_check(has_line((text), ___l), __FILE__, __LINE__, "missing line: %s", \
			      ___l);                                                          \
	})

#define EXPECT_NO_PREFIX(text, prefix) \
	harness_check(!has_prefix((text), (prefix)), __FILE__, __LINE__, "unexpected: %s", (prefix))

/* ---- a checker of the text format, as Prometheus parses it ---- */

struct expo {
	char families[128][64];
	char types[128][16];
	size_t n;
	char **series; /* name{labels} of every sample, for duplicates */
	size_t n_series;
};

static bool metric_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

static size_t name_len(const char *p)
{
	size_t n = 0;

	while (metric_char(p[n], n == 0))
		n++;
	return n;
}

/* `{name="value",...}` at @p: its length, 0 when malformed. */
static size_t labels_len(const char *p)
{
	size_t i = 1, n;

	if (*p != '{')
		return 0;
	while (p[i] != '}') {
		n = name_len(p + i);
		if (!n || p[i + n] != '=' || p[i + n + 1] != '"')
			return 0;
		for (i += n + 2; p[i] != '"'; i++) {
			if (p[i] == '\n' || !p[i])
				return 0;
			if (p[i] == '\\' && !strchr("\\\"n", p[++i]))
				return 0;
		}
		if (p[++i] == ',')
			i++;
		else if (p[i] != '}')
			return 0;
	}
	return i + 1;
}

static const char *expo_comment(struct expo *e, const char *line)
{
	char name[64], type[16];

	if (sscanf(line, "# HELP %63s ", name) == 1) {
		for (size_t i = 0; i < e->n; i++)
			if (!strcmp(e->families[i], name))
				return "family appears twice";
		if (e->n == ARRAY_SIZE(e->families) || !strchr(line + 7, ' '))
			return "too many families, or HELP without text";
		snprintf(e->families[e->n++], sizeof(e->families[0]), "%s", name);
		e->types[e->n - 1][0] = '\0';
		return NULL;
	}
	if (sscanf(line, "# TYPE %63s %15s", name, type) != 2 || !e->n ||
	    strcmp(name, e->families[e->n - 1]) || e->types[e->n - 1][0])
		return "TYPE does not follow its HELP";
	if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "summary"))
		return "unknown type";
	snprintf(e->types[e->n - 1], sizeof(e->types[0]), "%s", type);
	return NULL;
}

/* Is sample @name of the current family (a summary's _sum and _count too)? */
static bool expo_of_family(const struct expo *e, const char *name, size_t len)
{
	const char *fam = e->families[e->n - 1], *suffix = name + strlen(fam);

	if (strncmp(name, fam, strlen(fam)) || len < strlen(fam))
		return false;
	if (len == strlen(fam))
		return strcmp(e->types[e->n - 1], "summary");
	return !strcmp(e->types[e->n - 1], "summary") &&
	       ((len - strlen(fam) == 4 && !strncmp(suffix, "_sum", 4)) ||
		(len - strlen(fam) == 6 && !strncmp(suffix, "_count", 6)));
}

static const char *expo_sample(struct expo *e, const char *line, const char *end)
{
	size_t n = name_len(line), l = 0;
	char *num_end;

	if (!n || !e->n || !e->types[e->n - 1][0] || !expo_of_family(e, line, n))
		return "sample outside its family";
	if (!strcmp(e->types[e->n - 1], "counter") && strncmp(line + n - 6, "_total", 6))
		return "counter without _total";
	if (line[n] == '{' && !(l = labels_len(line + n)))
		return "bad labels";
	if (line[n + l] != ' ')
		return "no space before the value";
	for (size_t i = 0; i < e->n_series; i++)
		if (strlen(e->series[i]) == n + l && !strncmp(e->series[i], line, n + l))
			return "duplicate series";
	e->series = realloc(e->series, (e->n_series + 1) * sizeof(*e->series));
	e->series[e->n_series++] = strndup(line, n + l);
	strtod(line + n + l + 1, &num_end);
	return num_end == end && num_end != line + n + l + 1 ? NULL : "bad value";
}

/* Check @text line by line; returns the first problem, NULL when none. */
static const char *expo_check(const char *text, int *bad_line)
{
	struct expo *e = calloc(1, sizeof(*e));
	const char *why = NULL, *p = text, *end;

	for (*bad_line = 1; !why && *p; p = end + 1, ++*bad_line) {
		end = strchr(p, '\n');
		if (!end)
			why = "no newline at the end";
		else if (*p == '#')
			why = expo_comment(e, p);
		else
			why = expo_sample(e, p, end);
	}
	for (size_t i = 0; i < e->n_series; i++)
		free(e->series[i]);
	free(e->series);
	free(e);
	return why;
}

static void expect_exposition(const char *text)
{
	int line;
	const char *why = expo_check(text, &line);

	harness_check(!why, __FILE__, __LINE__, "exposition format: line %d: %s", line,
		      why ? why : "");
}

/* ---- cases: rendering ---- */

static void test_render_services(void)
{
	char *text;

	fixture_add();
	traffic_put(maps.svc_st, svc_id(&k4), (struct sl_traffic){ 11, 1100, 22, 2200, 4 });
	traffic_put(maps.svc_st, svc_id(&k6), (struct sl_traffic){ 1, 2, 3, 4, 5 });
	traffic_put(maps.be_st, backend_id(&be4_a), (struct sl_traffic){ 10, 1000, 20, 2000, 3 });
	traffic_put(maps.be_st, backend_id(&be6), (struct sl_traffic){ 6, 7, 8, 9, 1 });
	text = render(&(struct metrics_source){ .maps = &maps, .stats = &stats });
	expect_exposition(text);

	EXPECT_LINE(text, "# TYPE sluice_service_packets_total counter");
	EXPECT_LINE(text, "# TYPE sluice_backend_weight gauge");
	EXPECT_LINE(text, "sluice_service_packets_total{" S4 ",direction=\"forward\"} %llu",
		    scaled(11));
	EXPECT_LINE(text, "sluice_service_packets_total{" S4 ",direction=\"reverse\"} %llu",
		    scaled(22));
	EXPECT_LINE(text, "sluice_service_bytes_total{" S4 ",direction=\"forward\"} %llu",
		    scaled(1100));
	EXPECT_LINE(text, "sluice_service_bytes_total{" S4 ",direction=\"reverse\"} %llu",
		    scaled(2200));
	EXPECT_LINE(text, "sluice_service_new_flows_total{" S4 "} %llu", scaled(4));
	EXPECT_LINE(text, "sluice_service_bytes_total{" S6 ",direction=\"reverse\"} %llu",
		    scaled(4));
	EXPECT_LINE(text, "sluice_service_new_flows_total{" S6 "} %llu", scaled(5));

	EXPECT_LINE(text, "sluice_backend_packets_total{" B4A ",direction=\"forward\"} %llu",
		    scaled(10));
	EXPECT_LINE(text, "sluice_backend_bytes_total{" B4A ",direction=\"reverse\"} %llu",
		    scaled(2000));
	EXPECT_LINE(text, "sluice_backend_new_flows_total{" B4A "} %llu", scaled(3));
	EXPECT_LINE(text, "sluice_backend_packets_total{" B4B ",direction=\"forward\"} 0");
	EXPECT_LINE(text, "sluice_backend_packets_total{" B6 ",direction=\"reverse\"} %llu",
		    scaled(8));
	EXPECT_LINE(text, "sluice_backend_weight{" B4A "} 100");
	EXPECT_LINE(text, "sluice_backend_weight{" B4B "} 0");
	EXPECT_LINE(text, "sluice_backend_weight{" B6 "} 7");
	EXPECT_NO_PREFIX(text, "sluice_backend_health");
	EXPECT_NO_PREFIX(text, "# HELP sluice_backend_health");
	free(text);
}

/* A deleted service takes its series with it. */
static void test_render_after_delete(void)
{
	char *text;

	fixture_add();
	ASSERT_OK(lb_service_del(&maps, &k6), "delete v6 service");
	text = render(&(struct metrics_source){ .maps = &maps, .stats = &stats });
	expect_exposition(text);
	EXPECT_LINE(text, "sluice_backend_weight{" B4A "} 100");
	ASSERT_FALSE(strstr(text, SVC6), "no series of the deleted service");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_svc\"} 1");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_be\"} 2");
	free(text);
}

static void test_render_datapath_counters(void)
{
	char *text;

	fixture_add();
	counter_put(maps.proto_st, SL_PS_PACKETS, 100);
	counter_put(maps.proto_st, SL_PS_IPV6, 40);
	counter_put(maps.proto_st, SL_PS_OTHER_L4, 2);
	counter_put(maps.perr_st, SL_PERR_TCP_DOFF, 3);
	counter_put(maps.lb_st, SL_LB_REDIRECT, 17);
	counter_put(maps.drop_st, SL_DROP_BACKEND_MISSING, 5);
	text = render(&(struct metrics_source){ .maps = &maps });
	expect_exposition(text);
	EXPECT_LINE(text, "# TYPE sluice_packets_total counter");
	EXPECT_LINE(text, "sluice_packets_total %llu", scaled(100));
	EXPECT_LINE(text, "sluice_protocol_packets_total{protocol=\"ipv6\"} %llu", scaled(40));
	EXPECT_LINE(text, "sluice_protocol_packets_total{protocol=\"other_l4\"} %llu", scaled(2));
	EXPECT_LINE(text, "sluice_protocol_packets_total{protocol=\"ipv4\"} 0");
	EXPECT_LINE(text, "sluice_parse_errors_total{reason=\"tcp_doff\"} %llu", scaled(3));
	EXPECT_LINE(text, "sluice_parse_errors_total{reason=\"icmp_trunc\"} 0");
	EXPECT_LINE(text, "sluice_lb_packets_total{action=\"redirect\"} %llu", scaled(17));
	EXPECT_LINE(text, "sluice_lb_packets_total{action=\"not_service\"} 0");
	EXPECT_LINE(text, "sluice_drops_total{reason=\"backend_missing\"} %llu", scaled(5));
	EXPECT_LINE(text, "sluice_drops_total{reason=\"no_backend\"} 0");
	/* Index 0 of these enums is "none": never counted, never shown. */
	EXPECT_NO_PREFIX(text, "sluice_parse_errors_total{reason=\"none\"}");
	EXPECT_NO_PREFIX(text, "sluice_drops_total{reason=\"unspec\"}");
	EXPECT_NO_PREFIX(text, "sluice_protocol_packets_total{protocol=\"packets\"}");
	free(text);
}

/* Run one frame through the program; its verdict does not matter here. */
static void run_frame(struct pkt *p, const char *what)
{
	uint8_t out[PKT_MAX];
	size_t out_len = sizeof(out);

	ASSERT_OK(p->err, what);
	ASSERT_OK(xdp_run(prog_fd, p->data, p->len, out, &out_len, NULL), what);
}

static size_t syn_to(const char *vip, uint16_t sport)
{
	static const uint8_t mac_a[6] = { 2, 0, 0, 0, 0, 1 }, mac_b[6] = { 2, 0, 0, 0, 0, 2 };
	struct pkt p;

	pkt_init(&p);
	pkt_eth(&p, mac_a, mac_b, 0x0800);
	pkt_ipv4(&p, "198.18.0.2", vip, IPPROTO_TCP, NULL, 0, 0);
	pkt_tcp(&p, sport, 80, PKT_TCP_SYN, NULL, 0);
	pkt_finish(&p);
	run_frame(&p, vip);
	return p.len;
}

/* The counters the XDP program itself keeps, end to end: a new flow to
 * the v4 service, one to a service with no backend, one truncated IPv4. */
static void test_render_packets(void)
{
	struct sl_svc_key empty = key_of("198.19.0.11", 80, IPPROTO_TCP);
	struct sl_svc plain = { .name = "empty" };
	uint8_t trunc[14 + 10] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45 };
	uint8_t out[64];
	size_t len, out_len = sizeof(out);
	char *text;

	fixture_add();
	ASSERT_OK(lb_service_add(&maps, &empty, &plain), "add a service with no backend");
	len = syn_to("198.19.0.10", 40000);
	syn_to("198.19.0.11", 40001);
	ASSERT_OK(xdp_run(prog_fd, trunc, sizeof(trunc), out, &out_len, NULL), "truncated IPv4");
	text = render(&(struct metrics_source){ .maps = &maps });
	expect_exposition(text);
	EXPECT_LINE(text, "sluice_packets_total 3");
	EXPECT_LINE(text, "sluice_protocol_packets_total{protocol=\"tcp\"} 2");
	EXPECT_LINE(text, "sluice_protocol_packets_total{protocol=\"udp\"} 0");
	EXPECT_LINE(text, "sluice_parse_errors_total{reason=\"ipv4_trunc\"} 1");
	EXPECT_LINE(text, "sluice_lb_packets_total{action=\"new_flow\"} 1");
	EXPECT_LINE(text, "sluice_drops_total{reason=\"no_backend\"} 1");
	EXPECT_LINE(text, "sluice_service_packets_total{" S4 ",direction=\"forward\"} 1");
	EXPECT_LINE(text, "sluice_service_bytes_total{" S4 ",direction=\"forward\"} %zu", len);
	EXPECT_LINE(text, "sluice_service_new_flows_total{" S4 "} 1");
	/* B is drained (weight 0): the flow went to A. */
	EXPECT_LINE(text, "sluice_backend_new_flows_total{" B4A "} 1");
	EXPECT_LINE(text, "sluice_backend_new_flows_total{" B4B "} 0");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_ct4\"} 2"); /* forward + reply */
	free(text);
}

static void test_render_maps(void)
{
	struct sl_affinity_key akey = { .svc_id = 1 };
	struct sl_affinity aff = { .backend_id = 1 };
	char *text;

	fixture_add();
	ASSERT_OK(ct4_put(maps.ct4, 1, 5), "5 ct4 entries");
	ASSERT_OK(ct6_put(maps.ct6, 2, 3), "3 ct6 entries");
	for (__u32 i = 0; i < 2; i++) {
		akey.client[0] = htonl(0xc6120000 + i);
		ASSERT_OK(bpf_map_update_elem(maps.affinity, &akey, &aff, BPF_NOEXIST) ? -errno : 0,
			  "affinity entry");
	}
	text = render(&(struct metrics_source){ .maps = &maps });
	expect_exposition(text);
	EXPECT_LINE(text, "# TYPE sluice_map_entries gauge");
	EXPECT_LINE(text, "# TYPE sluice_map_capacity gauge");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_svc\"} 2");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_be\"} 3");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_ct4\"} 5");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_ct6\"} 3");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_affinity\"} 2");
	EXPECT_LINE(text, "sluice_map_capacity{map=\"sl_svc\"} %d", SL_MAX_SERVICES - 1);
	EXPECT_LINE(text, "sluice_map_capacity{map=\"sl_be\"} %d", SL_MAX_BACKENDS - 1);
	EXPECT_LINE(text, "sluice_map_capacity{map=\"sl_ct4\"} %d", CT_SIZE);
	EXPECT_LINE(text, "sluice_map_capacity{map=\"sl_ct6\"} %d", CT_SIZE);
	EXPECT_LINE(text, "sluice_map_capacity{map=\"sl_affinity\"} %d", SL_AFFINITY_SIZE);
	free(text);
}

/* More entries than one counting batch (4096) must all be counted. */
static void test_render_maps_many(void)
{
	struct sl_affinity_key akey = { .svc_id = 1 };
	struct sl_affinity aff = { .backend_id = 1 };
	__u32 added = 0;
	char *text;

	reset();
	ASSERT_OK(ct4_put(maps.ct4, 1, 5000), "5000 ct4 entries");
	for (__u32 i = 0; i < 5000; i++) {
		akey.client[0] = htonl(0xc6120000 + i);
		added += !bpf_map_update_elem(maps.affinity, &akey, &aff, BPF_NOEXIST);
	}
	ASSERT_EQ(added, 5000, "5000 affinity entries");
	ASSERT_EQ(map_count(maps.affinity), 5000, "affinity entries (none evicted)");
	text = render(&(struct metrics_source){ .maps = &maps });
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_ct4\"} 5000");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_affinity\"} 5000");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sl_svc\"} 0");
	free(text);
}

static void test_render_agent(void)
{
	struct metrics_source src = { .stats = &stats, .version = "1.2\"x\\y\n" };
	char *text;

	text = render(&src); /* no maps: the agent's metrics alone */
	expect_exposition(text);
	EXPECT_LINE(text, "# TYPE sluice_agent_info gauge");
	EXPECT_LINE(text, "sluice_agent_info{version=\"1.2\\\"x\\\\y\\n\"} 1");
	EXPECT_LINE(text, "sluice_agent_start_time_seconds 1700000000.5");
	EXPECT_LINE(text, "sluice_agent_transactions_total 7");
	EXPECT_LINE(text, "sluice_agent_transaction_errors_total 2");
	EXPECT_LINE(text, "# TYPE sluice_agent_transaction_seconds summary");
	EXPECT_LINE(text, "sluice_agent_transaction_seconds_sum 1.5");
	EXPECT_LINE(text, "sluice_agent_transaction_seconds_count 7");
	EXPECT_LINE(text, "sluice_agent_last_transaction_seconds 0.25");
	EXPECT_LINE(text, "sluice_agent_reloads_total 3");
	EXPECT_LINE(text, "sluice_agent_reload_errors_total 1");
	EXPECT_LINE(text, "sluice_agent_api_requests_total 42");
	EXPECT_LINE(text, "sluice_agent_api_errors_total 5");
	EXPECT_LINE(text, "sluice_agent_health_transitions_total 9");
	EXPECT_NO_PREFIX(text, "sluice_map_");
	free(text);

	text = render(&(struct metrics_source){ .maps = &maps });
	EXPECT_LINE(text, "sluice_agent_info{version=\"unknown\"} 1");
	EXPECT_NO_PREFIX(text, "sluice_agent_transactions_total");
	free(text);
}

/* A thresholds of 100 at a one-hour interval: nothing probed in the test
 * can move these targets off their initial state. */
static struct health_target target(const struct sl_svc_key *svc, const struct addr_port *ap,
				   enum health_state initial)
{
	return (struct health_target){
		.svc = *svc,
		.addr = *ap,
		.check = { .type = CFG_HEALTH_TCP,
			   .interval_ms = 3600000,
			   .timeout_ms = 100,
			   .healthy_threshold = 100,
			   .unhealthy_threshold = 100 },
		.initial = initial,
	};
}

static void test_render_health(void)
{
	struct health *h = health_start();
	struct health_target targets[2];
	struct metrics_source src = source(h);
	char *text, want[256];

	if (!ASSERT_TRUE(h, "health_start"))
		return;
	fixture_add();
	targets[0] = target(&k4, &be4_a, HEALTH_UP);
	targets[1] = target(&k4, &be4_b, HEALTH_DOWN);
	ASSERT_OK(health_set_targets(h, targets, 2), "health_set_targets");
	text = render(&src);
	expect_exposition(text);
	EXPECT_LINE(text, "# TYPE sluice_backend_health gauge");
	EXPECT_LINE(text, "sluice_backend_health{" B4A ",state=\"up\"} 1");
	EXPECT_LINE(text, "sluice_backend_health{" B4A ",state=\"down\"} 0");
	EXPECT_LINE(text, "sluice_backend_health{" B4A ",state=\"unknown\"} 0");
	EXPECT_LINE(text, "sluice_backend_health{" B4B ",state=\"up\"} 0");
	EXPECT_LINE(text, "sluice_backend_health{" B4B ",state=\"down\"} 1");
	EXPECT_LINE(text, "sluice_backend_health_transitions_total{" B4A "} 0");
	EXPECT_LINE(text, "# TYPE sluice_backend_health_probes_total counter");
	ASSERT_TRUE(has_prefix(text, "sluice_backend_health_probes_total{" B4B "} "),
		    "probe count of B");
	ASSERT_TRUE(has_prefix(text, "sluice_backend_health_failures_total{" B4A "} "),
		    "failure count of A");
	/* The v6 backend is not a target: no health series at all. */
	snprintf(want, sizeof(want), "sluice_backend_health{%s", B6);
	EXPECT_NO_PREFIX(text, want);
	EXPECT_NO_PREFIX(text, "sluice_backend_health_probes_total{" B6);
	free(text);
	health_stop(h);
}

/* ---- cases: HTTP ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static struct metrics_server *server(const char *addr)
{
	char err[256] = "";
	struct metrics_server *srv = metrics_listen(addr, err, sizeof(err));

	harness_check(srv != NULL, __FILE__, __LINE__, "metrics_listen(%s): %s", addr, err);
	return srv;
}

static uint16_t port_of(const struct metrics_server *srv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(metrics_fd(srv), (struct sockaddr *)&ss, &len))
		return 0;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
}

/* A blocking client connected to @ip:@port, reads bounded by 3 s. */
static int client(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss = {};
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	struct timeval tv = { .tv_sec = 3 };
	int fd;

	if (is_v6(ip)) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &in6->sin6_addr);
	} else {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		inet_pton(AF_INET, ip, &in4->sin_addr);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&ss, sizeof(ss))) {
		ASSERT_OK(-errno, "client connect");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct reply {
	char *data; /* NUL-terminated */
	size_t len;
	int status; /* 0: no status line */
	const char *body; /* after the blank line, NULL if none */
	long long served_ms; /* how long metrics_serve_one() took */
};

/* Read until EOF into @r and split it. */
static void reply_read(int fd, struct reply *r)
{
	ssize_t n;

	r->data = calloc(1, REPLY_MAX + 1);
	r->len = 0;
	while (r->data && r->len < REPLY_MAX &&
	       (n = recv(fd, r->data + r->len, REPLY_MAX - r->len, 0)) > 0)
		r->len += n;
	if (!r->data)
		return;
	if (sscanf(r->data, "HTTP/1.1 %d ", &r->status) != 1)
		r->status = 0;
	r->body = strstr(r->data, "\r\n\r\n");
	if (r->body)
		r->body += 4;
}

/* Send @req (@len bytes, may be 0) from a new client on 127.0.0.1, let
 * the server answer once, then read the whole reply. */
static void exchange(struct metrics_server *srv, const char *ip, const void *req, size_t len,
		     struct reply *r)
{
	const struct metrics_source src = source(NULL);
	int fd = client(ip, port_of(srv));
	long long t0;

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return;
	if (len)
		ASSERT_EQ(send(fd, req, len, MSG_NOSIGNAL), len, "client send");
	t0 = now_ms();
	metrics_serve_one(srv, metrics_render_agent, &src);
	r->served_ms = now_ms() - t0;
	reply_read(fd, r);
	close(fd);
}

static void reply_free(struct reply *r)
{
	free(r->data);
	r->data = NULL;
}

/* Value of header @name in @r (into @buf), "" when absent. */
static const char *header(const struct reply *r, const char *name, char *buf, size_t len)
{
	const char *end = r->body ? r->body - 2 : r->data + r->len;
	size_t n = strlen(name);

	buf[0] = '\0';
	for (const char *p = r->data ? strstr(r->data, "\r\n") : NULL; p && p < end;
	     p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2, *eol = strstr(line, "\r\n");

		if (strncasecmp(line, name, n) || line[n] != ':' || !eol)
			continue;
		line += n + 1 + strspn(line + n + 1, " ");
		snprintf(buf, len, "%.*s", (int)(eol - line), line);
		break;
	}
	return buf;
}

static void test_http_metrics(void)
{
	static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
	static const char head[] = "HEAD /metrics HTTP/1.0\r\n\r\n";
	static const char query[] = "\r\nGET /metrics?x=1 HTTP/1.1\nHost: x\n\n";
	struct metrics_server *srv = server("127.0.0.1:0");
	char value[256];
	struct reply r;
	int flags;

	fixture_add();
	if (!srv)
		return;
	flags = fcntl(metrics_fd(srv), F_GETFL);
	ASSERT_TRUE(flags & O_NONBLOCK, "listening fd is nonblocking");
	ASSERT_TRUE(fcntl(metrics_fd(srv), F_GETFD) & FD_CLOEXEC, "listening fd is CLOEXEC");
	ASSERT_NEQ(port_of(srv), 0, "ephemeral port bound");

	exchange(srv, "127.0.0.1", get, strlen(get), &r);
	ASSERT_EQ(r.status, 200, "GET /metrics");
	ASSERT_TRUE(!strcmp(header(&r, "Content-Type", value, sizeof(value)),
			    "text/plain; version=0.0.4; charset=utf-8"),
		    "Content-Type");
	ASSERT_TRUE(!strcmp(header(&r, "Connection", value, sizeof(value)), "close"),
		    "Connection: close");
	ASSERT_TRUE(r.body, "a body");
	if (r.body) {
		ASSERT_EQ(atol(header(&r, "Content-Length", value, sizeof(value))),
			  r.len - (r.body - r.data), "Content-Length is the body's");
		expect_exposition(r.body);
		EXPECT_LINE(r.body, "sluice_backend_weight{" B4A "} 100");
		EXPECT_LINE(r.body, "sluice_agent_info{version=\"1.2.3-test\"} 1");
	}
	reply_free(&r);

	exchange(srv, "127.0.0.1", head, strlen(head), &r);
	ASSERT_EQ(r.status, 200, "HEAD /metrics");
	ASSERT_TRUE(atol(header(&r, "Content-Length", value, sizeof(value))) > 1000,
		    "HEAD: the GET's length");
	ASSERT_TRUE(r.body && !*r.body, "HEAD: no body");
	reply_free(&r);

	exchange(srv, "127.0.0.1", query, strlen(query), &r);
	ASSERT_EQ(r.status, 200, "query string, bare LF, leading empty line");
	reply_free(&r);

	metrics_close(srv);
}

static void test_http_errors(void)
{
	static const struct {
		const char *req;
		int status;
	} table[] = {
		{ "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404 },
		{ "GET /metricsx HTTP/1.1\r\n\r\n", 404 },
		{ "HEAD /nope HTTP/1.1\r\n\r\n", 404 },
		{ "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405 },
		{ "DELETE / HTTP/1.1\r\n\r\n", 405 },
		{ "hello\r\n\r\n", 400 },
		{ "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400 }, /* TLS hello: at once */
		{ "GET /metrics HTTP/2.0\r\n\r\n", 400 },
		{ "GET  /metrics HTTP/1.1\r\n\r\n", 400 },
		{ "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", 400 },
		{ "GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", 400 },
		{ "GET /metrics\r\n\r\n", 400 },
		{ " GET /metrics HTTP/1.1\r\n\r\n", 400 },
	};
	struct metrics_server *srv = server("127.0.0.1:0");
	char what[128], value[64];
	struct reply r;

	reset();
	for (size_t i = 0; srv && i < ARRAY_SIZE(table); i++) {
		snprintf(what, sizeof(what), "request %zu (%.20s...)", i, table[i].req);
		exchange(srv, "127.0.0.1", table[i].req, strlen(table[i].req), &r);
		ASSERT_EQ(r.status, table[i].status, what);
		ASSERT_TRUE(r.served_ms < 500, what); /* complete or refused: no waiting */
		ASSERT_TRUE(!strcmp(header(&r, "Connection", value, sizeof(value)), "close"), what);
		if (table[i].status == 405)
			ASSERT_TRUE(!strcmp(header(&r, "Allow", value, sizeof(value)), "GET, HEAD"),
				    "405 names the methods allowed");
		reply_free(&r);
	}
	metrics_close(srv);
}

/* A head past 8 KiB: refused when the cap is reached, not after a wait. */
static void test_http_oversized(void)
{
	struct metrics_server *srv = server("127.0.0.1:0");
	size_t len = 9000;
	char *req = malloc(len);
	struct reply r;

	if (srv && req) {
		memset(req, 'a', len);
		memcpy(req, "GET /metrics HTTP/1.1\r\nX-Long: ", 31);
		exchange(srv, "127.0.0.1", req, len, &r);
		ASSERT_EQ(r.status, 400, "oversized head");
		ASSERT_TRUE(r.served_ms < 500, "oversized head refused at once");
		reply_free(&r);
	}
	free(req);
	metrics_close(srv);
}

/* Silent and slow clients cost the caller the deadline (~1 s), no more. */
static void test_http_deadline(void)
{
	static const char partial[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
	struct metrics_server *srv = server("127.0.0.1:0");
	const struct metrics_source src = source(NULL);
	struct reply r;
	long long t0;

	reset();
	if (!srv)
		return;
	t0 = now_ms();
	metrics_serve_one(srv, metrics_render_agent, &src);
	ASSERT_TRUE(now_ms() - t0 < 100, "nothing pending: returns at once");

	exchange(srv, "127.0.0.1", NULL, 0, &r);
	ASSERT_TRUE(r.served_ms >= 900 && r.served_ms < 1500, "silent client: ~1 s");
	ASSERT_EQ(r.len, 0, "silent client: closed without an answer");
	reply_free(&r);

	exchange(srv, "127.0.0.1", partial, strlen(partial), &r);
	ASSERT_TRUE(r.served_ms >= 900 && r.served_ms < 1500, "partial head: ~1 s");
	ASSERT_EQ(r.status, 408, "partial head: 408");
	reply_free(&r);
	metrics_close(srv);
}

/* A client that half-closes after a partial head gets its 400 at once. */
static void test_http_client_gone(void)
{
	struct metrics_server *srv = server("127.0.0.1:0");
	const struct metrics_source src = source(NULL);
	struct reply r = {};
	long long t0;
	int fd;

	reset();
	fd = srv ? client("127.0.0.1", port_of(srv)) : -1;
	if (fd < 0)
		goto close_srv;
	send(fd, "GET /met", 8, MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	t0 = now_ms();
	metrics_serve_one(srv, metrics_render_agent, &src);
	ASSERT_TRUE(now_ms() - t0 < 500, "half-closed client: no wait");
	reply_read(fd, &r);
	ASSERT_EQ(r.status, 400, "half-closed mid-request");
	reply_free(&r);
	close(fd);

	/* Gone entirely before the answer: no SIGPIPE, no hang. */
	fd = client("127.0.0.1", port_of(srv));
	if (fd >= 0) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		send(fd, "GET /metrics HTTP/1.1\r\n\r\n", 25, MSG_NOSIGNAL);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd); /* RST */
		t0 = now_ms();
		metrics_serve_one(srv, metrics_render_agent, &src);
		ASSERT_TRUE(now_ms() - t0 < 500, "reset client: no wait");
	}
close_srv:
	metrics_close(srv);
}

static void test_listen_addresses(void)
{
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",	  "127.0.0.1:8x",
		"::1:9090",  "[::1:9090",  "[::1]9090",	      "[127.0.0.1]:9090", "localhost:9090",
		"",	     ":",	   "1.2.3.4.5:80",    "127.0.0.1:+80",
	};
	struct metrics_server *any = server(":0"), *v6 = server("[::1]:0"), *again;
	char err[256], what[64], addr[32];
	struct reply r;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(what, sizeof(what), "metrics_listen(\"%s\")", bad[i]);
		err[0] = '\0';
		errno = 0;
		again = metrics_listen(bad[i], err, sizeof(err));
		ASSERT_TRUE(!again && errno == EINVAL && err[0], what);
		metrics_close(again);
	}
	if (any) { /* dual stack: IPv4 clients too */
		exchange(any, "127.0.0.1", "GET /x HTTP/1.1\r\n\r\n", 19, &r);
		ASSERT_EQ(r.status, 404, "\":PORT\" answers on 127.0.0.1");
		reply_free(&r);
		exchange(any, "::1", "GET /x HTTP/1.1\r\n\r\n", 19, &r);
		ASSERT_EQ(r.status, 404, "\":PORT\" answers on ::1");
		reply_free(&r);
	}
	if (v6) {
		exchange(v6, "::1", "GET /x HTTP/1.1\r\n\r\n", 19, &r);
		ASSERT_EQ(r.status, 404, "[::1]:PORT answers");
		reply_free(&r);
		snprintf(addr, sizeof(addr), "[::1]:%u", port_of(v6));
		errno = 0;
		again = metrics_listen(addr, err, sizeof(err));
		ASSERT_TRUE(!again && errno == EADDRINUSE && strstr(err, addr),
			    "a port in use: EADDRINUSE, named in the message");
		metrics_close(again);
	}
	metrics_close(any);
	metrics_close(v6);
	metrics_close(NULL);
}

static const struct test_case cases[] = {
	{ "render: services and backends, labels escaped", test_render_services },
	{ "render: a deleted service's series go", test_render_after_delete },
	{ "render: datapath counters by index", test_render_datapath_counters },
	{ "render: counters of packets run through XDP", test_render_packets },
	{ "render: map occupancy and capacity", test_render_maps },
	{ "render: occupancy past one batch", test_render_maps_many },
	{ "render: agent counters and build info", test_render_agent },
	{ "render: health state set and probe counters", test_render_health },
	{ "http: GET and HEAD /metrics", test_http_metrics },
	{ "http: 404, 405, 400", test_http_errors },
	{ "http: oversized head", test_http_oversized },
	{ "http: silent and slow clients bounded", test_http_deadline },
	{ "http: clients that leave", test_http_client_gone },
	{ "listen: addresses", test_listen_addresses },
};

int main(int argc, char **argv)
{
	struct loader_opts opts = { .maglev_size = MAGLEV_SIZE, .ct_size = CT_SIZE, .version = 1 };
	int ret;

	ncpus = libbpf_num_possible_cpus();
	skel = loader_lb_load(&opts, &maps);
	if (!skel || ncpus < 1) {
		fprintf(stderr, "setup: loader_lb_load: %s (run as root)\n", strerror(errno));
		return 1;
	}
	prog_fd = bpf_program__fd(skel->progs.sl_xdp_lb);
	ret = run_tests(cases, ARRAY_SIZE(cases), argc > 1 ? argv[1] : NULL, "bpf/metrics");
	xdp_lb__destroy(skel);
	return ret;
}
