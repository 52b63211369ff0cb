/* Tests of apply_config() (user/lib/apply.c) and the LB library's bulk
 * calls under it (user/lib/lb_sync.c: lb_snapshot_*, lb_service_sync,
 * lb_services_prune) against the real maps of a loaded XDP load balancer.
 * Configs are YAML strings parsed with cfg_load_buffer(); after each apply
 * the maps are read back whole (sl_svc, every sl_be slot, every sl_maglev
 * slot and the ids in each inner table) and must hold exactly the config.
 * Each case starts from freshly loaded, empty maps. The last case prints
 * how long applying 10,000 services takes (informational, not checked).
 * Usage: test_apply [name-substring]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "apply.h"
#include "config.h"
#include "harness.h"
#include "lb_fixture.h"
#include "lb.h"
#include "loader.h"
#include "sluice/conntrack.h"
#include "sluice/limits.h"
#include "xdp_lb.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MAGLEV_SIZE 251 /* the default for these tests: small, prime */
#define MAX_REPORTS 8 /* mismatches printed per verification */

static struct xdp_lb *skel;
static struct lb_maps maps;

/* ---- setup ---- */

/* Replace the loaded LB (if any) with a fresh one: every map empty. */
static bool fresh_maps(__u32 maglev_size)
{
	struct loader_opts opts = { .maglev_size = maglev_size, .ct_size = 16384, .version = 1 };

	if (skel)
		xdp_lb__destroy(skel);
	skel = loader_lb_load(&opts, &maps);
	return ASSERT_TRUE(skel != NULL, "loader_lb_load (fresh maps)");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- configs ---- */

static bool parse(const char *yaml, struct cfg_state *st)
{
	struct cfg_error cerr = {};
	char msg[1024];
	int err = cfg_load_buffer("test.yaml", yaml, strlen(yaml), st, &cerr);

	if (err) {
		cfg_error_format(&cerr, msg, sizeof(msg));
		printf("# config refused: %s\n", msg);
	}
	return ASSERT_OK(err, "cfg_load_buffer");
}

static double last_apply_s; /* how long the last apply_yaml()'s apply_config() took */

/* Parse @yaml and apply it; returns apply_config()'s result (-EBADMSG if
 * the config does not parse). @what receives apply_config()'s step. */
static int apply_yaml(const char *yaml, struct apply_summary *sum, char *what, size_t what_len)
{
	struct cfg_state st = {};
	double t0;
	int err;

	memset(sum, 0, sizeof(*sum));
	if (!parse(yaml, &st))
		return -EBADMSG;
	snprintf(what, what_len, "(not set)");
	t0 = now_s();
	err = apply_config(&maps, &st, NULL, sum, what, what_len);
	last_apply_s = now_s() - t0;
	cfg_free(&st);
	return err;
}

static void expect_summary(const struct apply_summary *sum, __u32 services, __u32 changed,
			   __u32 unchanged, __u32 deleted, const char *what)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "%s: summary.services", what);
	ASSERT_EQ(sum->services, services, msg);
	snprintf(msg, sizeof(msg), "%s: summary.changed", what);
	ASSERT_EQ(sum->changed, changed, msg);
	snprintf(msg, sizeof(msg), "%s: summary.unchanged", what);
	ASSERT_EQ(sum->unchanged, unchanged, msg);
	snprintf(msg, sizeof(msg), "%s: summary.deleted", what);
	ASSERT_EQ(sum->deleted, deleted, msg);
}

/* A growing string for generated configs. */
struct text {
	char *buf;
	size_t len;
	FILE *f;
};

static void text_open(struct text *t)
{
	t->buf = NULL;
	t->len = 0;
	t->f = open_memstream(&t->buf, &t->len);
}

static const char *text_close(struct text *t)
{
	fclose(t->f);
	t->f = NULL;
	return t->buf;
}

/* Service @i of a generated config, one line in flow style: VIP
 * 198.19.(i/256).(i%256):80/tcp (10.200.x.y with @alt), name s<i>, and @n
 * (at most 250) backends 10.(i/256).(i%256).(j+1):@port of weight
 * (j % 3) + 1 + @weight_shift. */
static void gen_service(FILE *f, __u32 i, __u32 n, bool alt, __u32 weight_shift, __u32 port)
{
	fprintf(f, "  - {vip: %s.%u.%u:80/tcp, name: s%u, backends: [", alt ? "10.200" : "198.19",
		i / 256, i % 256, i);
	for (__u32 j = 0; j < n; j++)
		fprintf(f, "%s{address: 10.%u.%u.%u:%u, weight: %u}", j ? ", " : "", i / 256,
			i % 256, j + 1, port, j % 3 + 1 + weight_shift);
	fprintf(f, "]}\n");
}

/* ---- reading the maps back ---- */

struct svc_entry {
	struct sl_svc_key key;
	struct sl_svc svc;
};

/* Everything apply may change: sl_svc (sorted by id), every sl_be slot and
 * every sl_maglev slot (inner map id, 0 when empty). */
struct maps_state {
	struct svc_entry *svc;
	__u32 n_svc;
	struct sl_backend *be;
	__u32 *inner;
};

static int svc_entry_cmp(const void *a, const void *b)
{
	const struct svc_entry *x = a, *y = b;

	return (x->svc.id > y->svc.id) - (x->svc.id < y->svc.id);
}

static bool state_read(struct maps_state *s)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys = calloc(SL_MAX_BACKENDS, sizeof(*keys));
	__u32 count = SL_MAX_BACKENDS, out_batch;
	struct sl_svc_key key, *prev = NULL;
	bool ok = true;

	s->svc = calloc(SL_MAX_SERVICES + 1, sizeof(*s->svc));
	s->be = calloc(SL_MAX_BACKENDS, sizeof(*s->be));
	s->inner = calloc(SL_MAX_SERVICES, sizeof(*s->inner));
	s->n_svc = 0;
	if (!keys || !s->svc || !s->be || !s->inner)
		return ASSERT_TRUE(false, "state_read: out of memory");
	while (s->n_svc <= SL_MAX_SERVICES && !bpf_map_get_next_key(maps.svc, prev, &key)) {
		s->svc[s->n_svc].key = key;
		if (bpf_map_lookup_elem(maps.svc, &key, &s->svc[s->n_svc].svc))
			continue;
		prev = &s->svc[s->n_svc++].key;
	}
	qsort(s->svc, s->n_svc, sizeof(s->svc[0]), svc_entry_cmp);
	if (bpf_map_lookup_batch(maps.be, NULL, &out_batch, keys, s->be, &count, &opts) &&
	    errno != ENOENT)
		ok = ASSERT_OK(-errno, "state_read: sl_be batch");
	ok &= ASSERT_EQ(count, SL_MAX_BACKENDS, "state_read: sl_be slots read");
	for (__u32 id = 0; id < SL_MAX_SERVICES; id++) {
		if (bpf_map_lookup_elem(maps.maglev, &id, &s->inner[id]))
			s->inner[id] = 0;
	}
	free(keys);
	return ok;
}

static void state_free(struct maps_state *s)
{
	free(s->svc);
	free(s->be);
	free(s->inner);
	memset(s, 0, sizeof(*s));
}

/* The maps must be byte for byte as in @before. */
static void expect_unchanged(const struct maps_state *before, const char *what)
{
	struct maps_state after;
	char msg[200];

	if (!state_read(&after))
		return;
	snprintf(msg, sizeof(msg), "%s: sl_svc entries", what);
	ASSERT_EQ(after.n_svc, before->n_svc, msg);
	for (__u32 i = 0; i < after.n_svc && i < before->n_svc; i++) {
		if (memcmp(&after.svc[i], &before->svc[i], sizeof(after.svc[i]))) {
			snprintf(msg, sizeof(msg), "%s: sl_svc entry of id %u", what,
				 before->svc[i].svc.id);
			ASSERT_BYTES(&before->svc[i], sizeof(before->svc[i]), &after.svc[i],
				     sizeof(after.svc[i]), msg);
			break;
		}
	}
	for (__u32 id = 0; id < SL_MAX_BACKENDS; id++) {
		if (memcmp(&before->be[id], &after.be[id], sizeof(after.be[id]))) {
			snprintf(msg, sizeof(msg), "%s: sl_be[%u]", what, id);
			ASSERT_BYTES(&before->be[id], sizeof(before->be[id]), &after.be[id],
				     sizeof(after.be[id]), msg);
			break;
		}
	}
	for (__u32 id = 0; id < SL_MAX_SERVICES; id++) {
		if (before->inner[id] != after.inner[id]) {
			snprintf(msg, sizeof(msg), "%s: sl_maglev[%u] inner map id", what, id);
			ASSERT_EQ(after.inner[id], before->inner[id], msg);
			break;
		}
	}
	state_free(&after);
}

static const struct svc_entry *state_svc(const struct maps_state *s, const struct sl_svc_key *key)
{
	for (__u32 i = 0; i < s->n_svc; i++) {
		if (!memcmp(&s->svc[i].key, key, sizeof(*key)))
			return &s->svc[i];
	}
	return NULL;
}

/* Service @key's entry; a zeroed one (id 0) when it does not exist. */
static struct sl_svc state_svc_val(const struct maps_state *s, const struct sl_svc_key *key)
{
	const struct svc_entry *e = state_svc(s, key);
	struct sl_svc none = {};

	return e ? e->svc : none;
}

static __u32 state_svc_id(const struct maps_state *s, const struct sl_svc_key *key)
{
	const struct svc_entry *e = state_svc(s, key);

	return e ? e->svc.id : 0;
}

/* Slot id of backend @ip:@port of service @svc_id, 0 if absent. */
static __u32 state_be_id(const struct maps_state *s, __u32 svc_id, const char *ip, uint16_t port)
{
	struct addr_port ap = ep(ip, port);

	for (__u32 id = 1; svc_id && id < SL_MAX_BACKENDS; id++) {
		const struct sl_backend *be = &s->be[id];

		if ((be->flags & SL_BE_IN_USE) && be->svc_id == svc_id && be->port == ap.port &&
		    be->family == ap.family && !memcmp(be->addr, ap.addr, 16))
			return id;
	}
	return 0;
}

static __u32 be_in_use(const struct maps_state *s)
{
	__u32 n = 0;

	for (__u32 id = 1; id < SL_MAX_BACKENDS; id++)
		n += !!(s->be[id].flags & SL_BE_IN_USE);
	return n;
}

/* Read the inner table @inner_id into @table (@size entries); returns the
 * number of entries read, or -errno. */
static int table_read(__u32 inner_id, __u32 *table, __u32 size)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys = calloc(size + 1, sizeof(*keys));
	__u32 count = size + 1, out_batch;
	int fd = bpf_map_get_fd_by_id(inner_id), ret;

	if (fd < 0 || !keys) {
		free(keys);
		return fd < 0 ? -errno : -ENOMEM;
	}
	ret = bpf_map_lookup_batch(fd, NULL, &out_batch, keys, table, &count, &opts);
	ret = ret && errno != ENOENT ? -errno : (int)count;
	close(fd);
	free(keys);
	return ret;
}

/* Slots per backend id in service @svc_id's table (@counts: SL_MAX_BACKENDS). */
static int table_counts(const struct maps_state *s, __u32 svc_id, __u32 *counts)
{
	__u32 *table = calloc(maps.maglev_size + 1, sizeof(*table));
	int n = table && s->inner[svc_id] ? table_read(s->inner[svc_id], table, maps.maglev_size)
					  : -ENOENT;

	memset(counts, 0, SL_MAX_BACKENDS * sizeof(*counts));
	for (int i = 0; i < n; i++)
		counts[table[i]]++;
	free(table);
	return n;
}

/* ---- verification: the maps hold exactly a config ---- */

struct verify {
	const char *what;
	__u32 fails;
};

static bool vcheck(struct verify *v, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool vcheck(struct verify *v, bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return true;
	if (v->fails++ < MAX_REPORTS) {
		printf("#   %s: ", v->what);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		putchar('\n');
	}
	return false;
}

static const char *key_str(const struct sl_svc_key *key, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(key->family == SL_AF_INET6 ? AF_INET6 : AF_INET, key->addr, ip, sizeof(ip));
	snprintf(buf, len, key->family == SL_AF_INET6 ? "[%s]:%u/%s" : "%s:%u/%s", ip,
		 ntohs(key->port), key->proto == SL_PROTO_TCP ? "tcp" : "udp");
	return buf;
}

/* Service @cs against the maps: settings, backend slots, table. */
static void verify_service(struct verify *v, const struct maps_state *s, const __u32 *head,
			   const __u32 *next, unsigned char *claimed, __u32 *table,
			   const struct cfg_service *cs)
{
	const struct svc_entry *e = state_svc(s, &cs->key);
	__u32 id, n_slots = 0, active = 0, total_weight = 0,
		  flags = cs->affinity_s ? SL_SVC_AFFINITY : 0;
	char k[80];
	int n;

	key_str(&cs->key, k, sizeof(k));
	if (!vcheck(v, e != NULL, "service %s missing from sl_svc", k))
		return;
	id = e->svc.id;
	vcheck(v, !strncmp(e->svc.name, cs->name, SL_SVC_NAME_MAX), "%s: name '%.32s', want '%s'",
	       k, e->svc.name, cs->name);
	vcheck(v, e->svc.flags == flags, "%s: flags %#x, want %#x", k, e->svc.flags, flags);
	vcheck(v, e->svc.affinity_timeout_s == cs->affinity_s, "%s: affinity %u s, want %u s", k,
	       e->svc.affinity_timeout_s, cs->affinity_s);
	for (__u32 b = head[id]; b; b = next[b])
		n_slots++;
	vcheck(v, n_slots == cs->n_backends, "%s (id %u): %u backend slots, want %zu", k, id,
	       n_slots, cs->n_backends);
	for (size_t i = 0; i < cs->n_backends; i++) {
		const struct addr_port *ap = &cs->backends[i].addr;
		__u32 found = 0;

		for (__u32 b = head[id]; b && !found; b = next[b]) {
			const struct sl_backend *be = &s->be[b];

			if (be->port == ap->port && be->family == ap->family &&
			    !memcmp(be->addr, ap->addr, 16))
				found = b;
		}
		if (!vcheck(v, found, "%s: backend %zu (line %u) has no slot", k, i,
			    cs->backends[i].line))
			continue;
		vcheck(v, !claimed[found], "%s: slot %u claimed twice", k, found);
		claimed[found] = 1;
		vcheck(v, s->be[found].weight == cs->backends[i].weight,
		       "%s: slot %u weight %u, want %u", k, found, s->be[found].weight,
		       cs->backends[i].weight);
		active += cs->backends[i].weight > 0;
		total_weight += cs->backends[i].weight;
	}
	vcheck(v, e->svc.backend_count == active, "%s: backend_count %u, want %u", k,
	       e->svc.backend_count, active);
	if (!active) {
		vcheck(v, s->inner[id] == 0, "%s: no active backend, yet sl_maglev[%u] = map %u", k,
		       id, s->inner[id]);
		return;
	}
	if (!vcheck(v, s->inner[id], "%s: %u active backends, sl_maglev[%u] empty", k, active, id))
		return;
	n = table_read(s->inner[id], table, maps.maglev_size);
	vcheck(v, n == (int)maps.maglev_size, "%s: table of %d entries, want %u", k, n,
	       maps.maglev_size);
	/* The set of ids in the table is exactly the active backends' slots. */
	for (int i = 0; i < n; i++) {
		__u32 b = table[i];

		if (!vcheck(v,
			    b && b < SL_MAX_BACKENDS && s->be[b].svc_id == id &&
				    (s->be[b].flags & SL_BE_IN_USE) && s->be[b].weight,
			    "%s: table slot %d names backend %u (not an active one of id %u)", k, i,
			    b, id))
			break;
		claimed[b] |= 2;
	}
	/* Each active backend has slots, if its share is big enough that
	 * Maglev must give it some (4 or more expected). */
	for (__u32 b = head[id]; b; b = next[b]) {
		if (s->be[b].weight && maps.maglev_size * s->be[b].weight >= 4 * total_weight)
			vcheck(v, claimed[b] & 2, "%s: active backend %u has no table slot", k, b);
	}
}

/* The maps must hold exactly @cfg: its services and nothing else, each
 * with its settings, exactly its backends (one slot each, with their
 * weights), a table whose set of ids is its active backends (none: no
 * table), no other slot in use and every free slot zero. */
static void expect_maps_hold(const struct cfg_state *cfg, const char *what)
{
	__u32 *head = calloc(SL_MAX_SERVICES, sizeof(*head));
	__u32 *next = calloc(SL_MAX_BACKENDS, sizeof(*next));
	unsigned char *claimed = calloc(SL_MAX_BACKENDS, 1);
	unsigned char *svc_ids = calloc(SL_MAX_SERVICES, 1);
	__u32 *table = calloc(maps.maglev_size + 1, sizeof(*table));
	struct verify v = { .what = what };
	static const struct sl_backend empty;
	struct maps_state s;
	size_t want_slots = 0;
	char msg[200];

	if (!head || !next || !claimed || !svc_ids || !table || !state_read(&s)) {
		ASSERT_TRUE(false, "expect_maps_hold: setup");
		goto free_all;
	}
	vcheck(&v, s.n_svc == cfg->n_services, "%u services in sl_svc, want %zu", s.n_svc,
	       cfg->n_services);
	for (__u32 i = 0; i < s.n_svc; i++) {
		__u32 id = s.svc[i].svc.id;

		if (vcheck(&v, id && id < SL_MAX_SERVICES && !svc_ids[id],
			   "sl_svc entry %u has bad or duplicate id %u", i, id))
			svc_ids[id] = 1;
	}
	/* Group the slots by service, in id order. */
	for (__u32 b = SL_MAX_BACKENDS - 1; b > 0; b--) {
		const struct sl_backend *be = &s.be[b];

		if (!(be->flags & SL_BE_IN_USE)) {
			vcheck(&v, !memcmp(be, &empty, sizeof(*be)), "free slot %u is not zero", b);
			continue;
		}
		if (!vcheck(&v, be->svc_id < SL_MAX_SERVICES && svc_ids[be->svc_id],
			    "slot %u in use by service id %u, which does not exist", b, be->svc_id))
			continue;
		next[b] = head[be->svc_id];
		head[be->svc_id] = b;
	}
	vcheck(&v, !memcmp(&s.be[0], &empty, sizeof(empty)), "slot 0 is not zero");
	for (__u32 id = 0; id < SL_MAX_SERVICES; id++)
		vcheck(&v, svc_ids[id] || !s.inner[id], "sl_maglev[%u] holds map %u, no service",
		       id, s.inner[id]);
	for (size_t i = 0; i < cfg->n_services; i++) {
		verify_service(&v, &s, head, next, claimed, table, &cfg->services[i]);
		want_slots += cfg->services[i].n_backends;
	}
	vcheck(&v, be_in_use(&s) == want_slots, "%u sl_be slots in use, want %zu", be_in_use(&s),
	       want_slots);
	snprintf(msg, sizeof(msg), "%s: the maps hold exactly the config (mismatches)", what);
	ASSERT_EQ(v.fails, 0, msg);
	state_free(&s);
free_all:
	free(head);
	free(next);
	free(claimed);
	free(svc_ids);
	free(table);
}

static void expect_maps_hold_yaml(const char *yaml, const char *what)
{
	struct cfg_state st = {};

	if (parse(yaml, &st))
		expect_maps_hold(&st, what);
	cfg_free(&st);
}

/* Apply @yaml, expecting success and the summary given, then verify. */
static bool apply_ok(const char *yaml, __u32 changed, __u32 unchanged, __u32 deleted,
		     const char *what)
{
	struct apply_summary sum;
	char step[256], msg[200];
	int err = apply_yaml(yaml, &sum, step, sizeof(step));

	snprintf(msg, sizeof(msg), "%s: apply_config", what);
	if (!ASSERT_OK(err, msg)) {
		printf("#   failed step: %s\n", step);
		return false;
	}
	expect_summary(&sum, changed + unchanged, changed, unchanged, deleted, what);
	expect_maps_hold_yaml(yaml, what);
	return true;
}

/* ---- counters made by hand ---- */

/* Give traffic slot @id of per-CPU map @fd some counts; 0 or -errno. */
static int traffic_put(int fd, __u32 id)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sl_traffic *vals = calloc(ncpu, sizeof(*vals));
	int err;

	for (int cpu = 0; vals && cpu < ncpu; cpu++)
		vals[cpu] = (struct sl_traffic){ 1, 100, 2, 200, 1 };
	err = !vals ? -ENOMEM : bpf_map_update_elem(fd, &id, vals, BPF_ANY) ? -errno : 0;
	free(vals);
	return err;
}

static __u64 traffic_packets(int fd, __u32 id)
{
	struct sl_traffic t = {};

	lb_read_traffic(fd, id, &t);
	return t.fwd_packets + t.rev_packets;
}

/* ---- the config most cases start from ---- */

static const char CFG_BASE[] = "services:\n"
			       "  - name: web\n"
			       "    vip: 198.19.0.10:80/tcp\n"
			       "    affinity: 30\n"
			       "    health: { type: tcp }\n"
			       "    backends:\n"
			       "      - 198.18.1.2:8080\n"
			       "      - { address: 198.18.2.2:8080, weight: 2 }\n"
			       "      - { address: 198.18.3.2:8080, weight: 0 }\n"
			       "  - name: dns6\n"
			       "    vip: \"[fd00:ffff::10]:53/udp\"\n"
			       "    backends: [\"[fd00:0:0:1::2]:53\", \"[fd00:0:0:2::2]:53\"]\n"
			       "  - vip: 198.19.0.11:443/tcp\n";

/* CFG_BASE with web's affinity line @web_extra and its backends
 * @web_backends (a flow list). */
static const char *cfg_web(char *buf, size_t len, const char *web_extra, const char *web_backends)
{
	snprintf(buf, len,
		 "services:\n"
		 "  - name: web\n"
		 "    vip: 198.19.0.10:80/tcp\n"
		 "%s"
		 "    backends: %s\n"
		 "  - name: dns6\n"
		 "    vip: \"[fd00:ffff::10]:53/udp\"\n"
		 "    backends: [\"[fd00:0:0:1::2]:53\", \"[fd00:0:0:2::2]:53\"]\n"
		 "  - vip: 198.19.0.11:443/tcp\n",
		 web_extra, web_backends);
	return buf;
}

#define WEB_AFF "    affinity: 30\n"
#define WEB_BASE                                                              \
	"[198.18.1.2:8080, {address: 198.18.2.2:8080, weight: 2}, {address: " \
	"198.18.3.2:8080, weight: 0}]"

static struct sl_svc_key k_web, k_dns6, k_third;

/* ---- cases ---- */

static void test_apply_empty_maps(void)
{
	static __u32 counts[SL_MAX_BACKENDS];
	struct apply_summary sum;
	struct maps_state s;
	char step[256];
	int size;

	if (!fresh_maps(MAGLEV_SIZE))
		return;
	ASSERT_OK(apply_yaml(CFG_BASE, &sum, step, sizeof(step)), "first apply");
	expect_summary(&sum, 3, 3, 0, 0, "first apply");
	ASSERT_EQ(sum.health_checks, 1, "summary.health_checks (counted, not run)");
	expect_maps_hold_yaml(CFG_BASE, "first apply");
	if (!state_read(&s))
		return;
	/* Ids are handed out lowest first, in file order. */
	ASSERT_EQ(state_svc_id(&s, &k_web), 1, "web has service id 1");
	ASSERT_EQ(state_svc_id(&s, &k_dns6), 2, "dns6 has service id 2");
	ASSERT_EQ(state_svc_id(&s, &k_third), 3, "the unnamed service has id 3");
	ASSERT_EQ(state_be_id(&s, 1, "198.18.1.2", 8080), 1, "web backend 1 in slot 1");
	ASSERT_EQ(state_be_id(&s, 1, "198.18.3.2", 8080), 3, "web backend 3 in slot 3");
	ASSERT_EQ(state_be_id(&s, 2, "fd00:0:0:2::2", 53), 5, "dns6 backend 2 in slot 5");
	/* Weights shape the table: 1:2, the weight-0 one has nothing. */
	size = table_counts(&s, 1, counts);
	ASSERT_EQ(size, MAGLEV_SIZE, "web's table size");
	ASSERT_TRUE(counts[1] + counts[2] == (__u32)size && counts[3] == 0,
		    "web's table: only slots 1 and 2");
	ASSERT_TRUE(counts[2] > counts[1] * 3 / 2 && counts[2] < counts[1] * 5 / 2,
		    "web's table: weight 2 gets about twice weight 1's share");
	state_free(&s);
}

static void test_reapply_same(void)
{
	static const char reordered[] =
		"services:\n"
		"  - vip: 198.19.0.11:443/tcp\n"
		"  - name: dns6\n"
		"    vip: \"[fd00:ffff::10]:53/udp\"\n"
		"    backends: [\"[fd00:0:0:2::2]:53\", \"[fd00:0:0:1::2]:53\"]\n"
		"  - name: web\n"
		"    affinity: 30\n"
		"    vip: 198.19.0.10:80/tcp\n"
		"    backends:\n"
		"      - { weight: 0, address: 198.18.3.2:8080 }\n"
		"      - 198.18.1.2:8080\n"
		"      - { address: 198.18.2.2:8080, weight: 2 }\n";
	struct maps_state before;

	if (!fresh_maps(MAGLEV_SIZE) || !apply_ok(CFG_BASE, 3, 0, 0, "first apply"))
		return;
	if (!state_read(&before))
		return;
	if (apply_ok(CFG_BASE, 0, 3, 0, "same config again"))
		expect_unchanged(&before, "same config again (no republication)");
	if (apply_ok(reordered, 0, 3, 0, "same config, services and backends reordered"))
		expect_unchanged(&before, "reordered config");
	state_free(&before);
}

static void test_weight_change(void)
{
	struct maps_state before, after;
	__u32 web, dns6, third, b1, b2, b3;
	char buf[2048];

	if (!fresh_maps(MAGLEV_SIZE) || !apply_ok(CFG_BASE, 3, 0, 0, "first apply"))
		return;
	if (!state_read(&before))
		return;
	web = state_svc_id(&before, &k_web);
	dns6 = state_svc_id(&before, &k_dns6);
	third = state_svc_id(&before, &k_third);
	b1 = state_be_id(&before, web, "198.18.1.2", 8080);
	b2 = state_be_id(&before, web, "198.18.2.2", 8080);
	b3 = state_be_id(&before, web, "198.18.3.2", 8080);
	ASSERT_OK(traffic_put(maps.be_st, b1), "traffic on web's backend 1");
	ASSERT_OK(traffic_put(maps.be_st, b2), "traffic on web's backend 2");
	ASSERT_OK(traffic_put(maps.svc_st, web), "traffic on web");

	cfg_web(buf, sizeof(buf), WEB_AFF,
		"[{address: 198.18.1.2:8080, weight: 5}, {address: 198.18.2.2:8080, weight: 2}, "
		"{address: 198.18.3.2:8080, weight: 0}]");
	if (!apply_ok(buf, 1, 2, 0, "web's backend 1 to weight 5") || !state_read(&after))
		goto free_before;
	ASSERT_NEQ(after.inner[web], before.inner[web], "web's table republished");
	ASSERT_EQ(after.inner[dns6], before.inner[dns6], "dns6's table not republished");
	ASSERT_EQ(after.inner[third], 0, "the service without backends has no table");
	ASSERT_EQ(state_be_id(&after, web, "198.18.1.2", 8080), b1, "backend 1 keeps its id");
	ASSERT_EQ(state_be_id(&after, web, "198.18.2.2", 8080), b2, "backend 2 keeps its id");
	ASSERT_EQ(state_be_id(&after, web, "198.18.3.2", 8080), b3, "backend 3 keeps its id");
	ASSERT_EQ(after.be[b1].weight, 5, "backend 1's slot has weight 5");
	after.be[b1].weight = before.be[b1].weight;
	ASSERT_BYTES(before.be, SL_MAX_BACKENDS * sizeof(*before.be), after.be,
		     SL_MAX_BACKENDS * sizeof(*after.be), "sl_be: nothing else changed");
	ASSERT_EQ(after.n_svc, before.n_svc, "sl_svc: as many services");
	ASSERT_BYTES(before.svc, before.n_svc * sizeof(*before.svc), after.svc,
		     after.n_svc * sizeof(*after.svc), "sl_svc: entries unchanged");
	/* Stable ids: the counters were not reset, they continue. */
	ASSERT_NEQ(traffic_packets(maps.be_st, b1), 0, "backend 1's counters continue");
	ASSERT_NEQ(traffic_packets(maps.be_st, b2), 0, "backend 2's counters continue");
	ASSERT_NEQ(traffic_packets(maps.svc_st, web), 0, "web's counters continue");
	state_free(&after);
free_before:
	state_free(&before);
}

static void test_backend_add_remove(void)
{
	struct maps_state before, after;
	__u32 web, b1, b2, b3, b4;
	char buf[2048];

	if (!fresh_maps(MAGLEV_SIZE) || !apply_ok(CFG_BASE, 3, 0, 0, "first apply"))
		return;
	if (!state_read(&before))
		return;
	web = state_svc_id(&before, &k_web);
	b1 = state_be_id(&before, web, "198.18.1.2", 8080);
	b2 = state_be_id(&before, web, "198.18.2.2", 8080);
	b3 = state_be_id(&before, web, "198.18.3.2", 8080);
	/* A new backend's counters start from zero whichever slot it gets. */
	for (__u32 id = 6; id < 10; id++)
		ASSERT_OK(traffic_put(maps.be_st, id), "stale traffic in free slots");

	/* Drop 198.18.2.2, add 198.18.4.2. */
	cfg_web(buf, sizeof(buf), WEB_AFF,
		"[198.18.1.2:8080, {address: 198.18.3.2:8080, weight: 0}, "
		"{address: 198.18.4.2:8080, weight: 3}]");
	if (!apply_ok(buf, 1, 2, 0, "swap a backend") || !state_read(&after))
		goto free_before;
	b4 = state_be_id(&after, web, "198.18.4.2", 8080);
	ASSERT_EQ(state_be_id(&after, web, "198.18.1.2", 8080), b1, "kept backend keeps its id");
	ASSERT_EQ(state_be_id(&after, web, "198.18.3.2", 8080), b3, "kept weight-0 backend too");
	ASSERT_TRUE(b4 && b4 != b1 && b4 != b3, "new backend has a slot of its own");
	ASSERT_EQ(after.be[b2].flags, 0, "dropped backend's slot freed");
	ASSERT_EQ(traffic_packets(maps.be_st, b4), 0, "new backend's counters start at zero");
	ASSERT_NEQ(after.inner[web], before.inner[web], "web's table republished");
	state_free(&after);

	/* Add one more, then remove two at once. */
	cfg_web(buf, sizeof(buf), WEB_AFF,
		"[198.18.1.2:8080, {address: 198.18.3.2:8080, weight: 0}, "
		"{address: 198.18.4.2:8080, weight: 3}, 198.18.5.2:8080]");
	apply_ok(buf, 1, 2, 0, "add a fourth backend");
	cfg_web(buf, sizeof(buf), WEB_AFF, "[{address: 198.18.4.2:8080, weight: 3}]");
	if (apply_ok(buf, 1, 2, 0, "remove three backends") && state_read(&after)) {
		ASSERT_EQ(state_be_id(&after, web, "198.18.4.2", 8080), b4,
			  "remaining backend keeps its id");
		state_free(&after);
	}
	cfg_web(buf, sizeof(buf), WEB_AFF, "[]");
	if (apply_ok(buf, 1, 2, 0, "remove the last backend") && state_read(&after)) {
		ASSERT_EQ(after.inner[web], 0, "no backend: no table");
		ASSERT_EQ(state_svc_id(&after, &k_web), web, "the service stays, with its id");
		state_free(&after);
	}
free_before:
	state_free(&before);
}

static void test_weight_zero(void)
{
	static __u32 counts[SL_MAX_BACKENDS];
	struct maps_state before, s;
	__u32 web, b1, b2, b3;
	char buf[2048];

	if (!fresh_maps(MAGLEV_SIZE) || !apply_ok(CFG_BASE, 3, 0, 0, "first apply"))
		return;
	if (!state_read(&before))
		return;
	web = state_svc_id(&before, &k_web);
	b1 = state_be_id(&before, web, "198.18.1.2", 8080);
	b2 = state_be_id(&before, web, "198.18.2.2", 8080);
	b3 = state_be_id(&before, web, "198.18.3.2", 8080);

	cfg_web(buf, sizeof(buf), WEB_AFF,
		"[{address: 198.18.1.2:8080, weight: 0}, {address: 198.18.2.2:8080, weight: 2}, "
		"{address: 198.18.3.2:8080, weight: 0}]");
	if (apply_ok(buf, 1, 2, 0, "backend 1 to weight 0") && state_read(&s)) {
		ASSERT_EQ(table_counts(&s, web, counts), MAGLEV_SIZE, "web still has a table");
		ASSERT_EQ(counts[b2], MAGLEV_SIZE, "only backend 2 is in it");
		ASSERT_EQ(state_be_id(&s, web, "198.18.1.2", 8080), b1,
			  "backend 1 keeps its slot (established flows)");
		ASSERT_EQ(s.be[b1].weight, 0, "... with weight 0");
		state_free(&s);
	}
	cfg_web(buf, sizeof(buf), WEB_AFF,
		"[{address: 198.18.1.2:8080, weight: 0}, {address: 198.18.2.2:8080, weight: 0}, "
		"{address: 198.18.3.2:8080, weight: 0}]");
	if (apply_ok(buf, 1, 2, 0, "every backend at weight 0") && state_read(&s)) {
		ASSERT_EQ(s.inner[web], 0, "no active backend: sl_maglev slot empty");
		ASSERT_TRUE(state_be_id(&s, web, "198.18.1.2", 8080) == b1 &&
				    state_be_id(&s, web, "198.18.2.2", 8080) == b2 &&
				    state_be_id(&s, web, "198.18.3.2", 8080) == b3,
			    "all three slots kept");
		state_free(&s);
	}
	if (apply_ok(CFG_BASE, 1, 2, 0, "weights back") && state_read(&s)) {
		ASSERT_EQ(table_counts(&s, web, counts), MAGLEV_SIZE, "web has a table again");
		ASSERT_TRUE(counts[b1] && counts[b2] && !counts[b3], "backends 1 and 2 in it");
		state_free(&s);
	}
	state_free(&before);
}

static void test_service_removed(void)
{
	static const char without_web[] =
		"services:\n"
		"  - name: dns6\n"
		"    vip: \"[fd00:ffff::10]:53/udp\"\n"
		"    backends: [\"[fd00:0:0:1::2]:53\", \"[fd00:0:0:2::2]:53\"]\n"
		"  - vip: 198.19.0.11:443/tcp\n";
	struct maps_state before, after;
	__u32 web, dns6, third;

	if (!fresh_maps(MAGLEV_SIZE) || !apply_ok(CFG_BASE, 3, 0, 0, "first apply"))
		return;
	if (!state_read(&before))
		return;
	web = state_svc_id(&before, &k_web);
	dns6 = state_svc_id(&before, &k_dns6);
	third = state_svc_id(&before, &k_third);
	/* Over one CT_BATCH (4096) of web's entries: the flush walks batches. */
	ASSERT_OK(ct4_put(maps.ct4, web, 5000), "web's ct4 entries");
	ASSERT_OK(ct6_put(maps.ct6, web, 20), "web's ct6 entries");
	ASSERT_OK(ct4_put(maps.ct4, third, 300), "the third service's ct4 entries");
	ASSERT_OK(ct6_put(maps.ct6, dns6, 40), "dns6's ct6 entries");

	if (!apply_ok(without_web, 0, 2, 1, "web left out") || !state_read(&after))
		goto free_before;
	ASSERT_EQ(state_svc_id(&after, &k_web), 0, "web gone from sl_svc");
	ASSERT_EQ(after.inner[web], 0, "web's sl_maglev slot empty");
	for (__u32 id = 1; id <= 3; id++)
		ASSERT_EQ(after.be[id].flags, 0, "web's backend slots freed");
	ASSERT_EQ(ct_count_svc(maps.ct4, web), 0, "web's ct4 entries flushed");
	ASSERT_EQ(ct_count_svc(maps.ct6, web), 0, "web's ct6 entries flushed");
	ASSERT_EQ(ct_count_svc(maps.ct4, third), 300, "the third service's ct4 entries kept");
	ASSERT_EQ(ct_count_svc(maps.ct6, dns6), 40, "dns6's ct6 entries kept");
	ASSERT_EQ(map_count(maps.ct4) + map_count(maps.ct6), 340, "nothing else in conntrack");
	ASSERT_EQ(after.inner[dns6], before.inner[dns6], "dns6's table untouched");
	ASSERT_EQ(state_svc_id(&after, &k_dns6), dns6, "dns6 keeps its id");
	for (__u32 id = 4; id <= 5; id++)
		ASSERT_BYTES(&before.be[id], sizeof(before.be[id]), &after.be[id],
			     sizeof(after.be[id]), "dns6's slots untouched");
	state_free(&after);

	/* Back again: a new service (lowest free id), counters from zero. */
	ASSERT_OK(traffic_put(maps.svc_st, web), "stale traffic in web's old slot");
	if (apply_ok(CFG_BASE, 1, 2, 0, "web back") && state_read(&after)) {
		ASSERT_EQ(state_svc_id(&after, &k_web), web, "web gets the lowest free id again");
		ASSERT_EQ(traffic_packets(maps.svc_st, web), 0, "its counters start at zero");
		state_free(&after);
	}
	apply_ok("services: []\n", 0, 0, 3, "empty config");
	ASSERT_EQ(map_count(maps.ct4) + map_count(maps.ct6), 0, "every flow flushed");
free_before:
	state_free(&before);
}

static void test_settings_change(void)
{
	struct maps_state before, after;
	char buf[2048];
	__u32 web, dns6;

	if (!fresh_maps(MAGLEV_SIZE) || !apply_ok(CFG_BASE, 3, 0, 0, "first apply"))
		return;
	if (!state_read(&before))
		return;
	web = state_svc_id(&before, &k_web);
	dns6 = state_svc_id(&before, &k_dns6);

	snprintf(buf, sizeof(buf), "%s", CFG_BASE);
	memcpy(strstr(buf, "name: web"), "name: www", 9);
	if (apply_ok(buf, 1, 2, 0, "web renamed www") && state_read(&after)) {
		ASSERT_EQ(strcmp(state_svc_val(&after, &k_web).name, "www"), 0, "new name stored");
		ASSERT_EQ(state_svc_id(&after, &k_web), web, "same service id");
		ASSERT_EQ(after.inner[dns6], before.inner[dns6], "dns6 not republished");
		ASSERT_BYTES(before.be, SL_MAX_BACKENDS * sizeof(*before.be), after.be,
			     SL_MAX_BACKENDS * sizeof(*after.be), "sl_be unchanged");
		state_free(&after);
	}
	memcpy(strstr(buf, "affinity: 30"), "affinity: 60", 12);
	apply_ok(buf, 1, 2, 0, "web's affinity 30 -> 60");
	cfg_web(buf, sizeof(buf), "", WEB_BASE);
	if (apply_ok(buf, 1, 2, 0, "web's affinity removed") && state_read(&after)) {
		ASSERT_EQ(state_svc_val(&after, &k_web).flags, 0, "affinity flag cleared");
		state_free(&after);
	}
	snprintf(buf, sizeof(buf),
		 "services:\n"
		 "  - {name: web, vip: 198.19.0.10:80/tcp, backends: %s}\n"
		 "  - name: dns6\n"
		 "    vip: \"[fd00:ffff::10]:53/udp\"\n"
		 "    affinity: 86400\n"
		 "    backends: [\"[fd00:0:0:1::2]:53\", \"[fd00:0:0:2::2]:53\"]\n"
		 "  - {vip: 198.19.0.11:443/tcp, name: third-svc_0.9}\n",
		 WEB_BASE);
	if (apply_ok(buf, 2, 1, 0, "dns6 gains affinity, the third a name") && state_read(&after)) {
		ASSERT_EQ(state_svc_val(&after, &k_dns6).flags, SL_SVC_AFFINITY, "dns6 affinity");
		ASSERT_BYTES(before.be, SL_MAX_BACKENDS * sizeof(*before.be), after.be,
			     SL_MAX_BACKENDS * sizeof(*after.be), "sl_be still unchanged");
		state_free(&after);
	}
	state_free(&before);
}

/* Services @from..@n-1 with @per backends each (service @swap's on port
 * 9000 instead of 8000, service @heavier's weights + 1), then @extra. */
static const char *gen_config(struct text *t, __u32 from, __u32 n, __u32 per, __u32 swap,
			      __u32 heavier, const char *extra)
{
	text_open(t);
	fprintf(t->f, "services:\n");
	for (__u32 i = from; i < n; i++)
		gen_service(t->f, i, per, false, i == heavier, i == swap ? 9000 : 8000);
	fputs(extra, t->f);
	return text_close(t);
}

/* One service 198.19.9.@vip:80/tcp with backends 10.99.@vip.1..@n:1. */
static const char *gen_small(char *buf, size_t len, __u32 vip, __u32 n)
{
	size_t off = snprintf(buf, len, "  - {vip: 198.19.9.%u:80/tcp, backends: [", vip);

	for (__u32 j = 1; j <= n && off < len; j++)
		off += snprintf(buf + off, len - off, "%s10.99.%u.%u:1", j > 1 ? ", " : "", vip, j);
	if (off < len)
		snprintf(buf + off, len - off, "]}\n");
	return buf;
}

/* Every config holds at most SL_MAX_BACKENDS - 1 backends, the slots
 * there are, and the services it leaves out are pruned first: what can run
 * out is room for a service's new backends while its old ones still hold
 * their slots (they are freed only once the table without them is
 * published). The maps are filled to 3 free slots with services of 250
 * backends and one of the rest. */
#define NO_ROOM_BIG ((SL_MAX_BACKENDS - 4) / 250)
#define NO_ROOM_LAST ((SL_MAX_BACKENDS - 4) % 250)

static void test_no_room(void)
{
	char step[256], last[8192], extra[16384], four[512], last_be[32], moved_be[32];
	struct text base, t;
	struct apply_summary sum;
	struct maps_state before, s;
	int err;

	if (!fresh_maps(MAGLEV_SIZE))
		return;
	gen_small(last, sizeof(last), 9, NO_ROOM_LAST);
	gen_config(&base, 0, NO_ROOM_BIG, 250, UINT32_MAX, UINT32_MAX, last);
	if (!apply_ok(base.buf, NO_ROOM_BIG + 1, 0, 0, "all but 3 backend slots in use") ||
	    !state_read(&before))
		goto free_base;
	ASSERT_EQ(be_in_use(&before), SL_MAX_BACKENDS - 4, "slots in use");

	/* Service 5 moves its 250 backends to other ports: 250 new slots
	 * needed, 3 free. Service 7's new weights must not be applied either. */
	gen_config(&t, 0, NO_ROOM_BIG, 250, 5, 7, last);
	err = apply_yaml(t.buf, &sum, step, sizeof(step));
	ASSERT_EQ(err, -ENOSPC, "250 backends replaced, 3 free slots: -ENOSPC");
	ASSERT_TRUE(strstr(step, "no room") && strstr(step, "250 backend slots (3 free)"),
		    "the step says why");
	printf("# -ENOSPC: %s\n", step);
	expect_unchanged(&before, "-ENOSPC (250 replaced)");
	free(t.buf);

	/* A new service of 3 and one backend of the last service replaced:
	 * 4 new slots needed, 3 free (every slot's worth of backends in the config). */
	snprintf(extra, sizeof(extra), "%s", last);
	snprintf(last_be, sizeof(last_be), "10.99.9.%u:1]", NO_ROOM_LAST);
	snprintf(moved_be, sizeof(moved_be), "10.99.8.%u:1]", NO_ROOM_LAST);
	memcpy(strstr(extra, last_be), moved_be, strlen(moved_be));
	strcat(extra, gen_small(four, sizeof(four), 10, 3));
	gen_config(&t, 0, NO_ROOM_BIG, 250, UINT32_MAX, 7, extra);
	err = apply_yaml(t.buf, &sum, step, sizeof(step));
	ASSERT_EQ(err, -ENOSPC, "4 new slots, 3 free: -ENOSPC");
	expect_unchanged(&before, "-ENOSPC (4 new)");
	free(t.buf);

	/* Exactly full: a new service of 3, every slot in use. */
	snprintf(extra, sizeof(extra), "%s%s", last, gen_small(four, sizeof(four), 10, 3));
	gen_config(&t, 0, NO_ROOM_BIG, 250, UINT32_MAX, UINT32_MAX, extra);
	if (apply_ok(t.buf, 1, NO_ROOM_BIG + 1, 0, "3 more: every slot in use") && state_read(&s)) {
		ASSERT_EQ(be_in_use(&s), SL_MAX_BACKENDS - 1, "every slot in use");
		state_free(&s);
	}
	free(t.buf);
	/* Full, but the slots of a pruned service are room: service 0 (250)
	 * left out, service 5's 250 backends replaced. */
	gen_config(&t, 1, NO_ROOM_BIG, 250, 5, UINT32_MAX, extra);
	apply_ok(t.buf, 1, NO_ROOM_BIG, 1, "full: a pruned service's slots are room");
	free(t.buf);
	state_free(&before);
free_base:
	free(base.buf);
}

/* A valid config whose service has more active backends than a Maglev
 * table has entries cannot be published: apply must refuse it before it
 * changes anything ("validated and checked for room before anything
 * changes", apply.h), as it does for -ENOSPC. */
static void test_more_backends_than_table(void)
{
	char yaml[2048], small[512], big[512], step[256];
	struct apply_summary sum;
	struct maps_state before;
	int err;

	if (!fresh_maps(7))
		return;
	snprintf(yaml, sizeof(yaml), "services:\n%s", gen_small(small, sizeof(small), 1, 2));
	if (!apply_ok(yaml, 1, 0, 0, "a service of 2") || !state_read(&before))
		return;
	/* The first service changes (a third backend), the second has 8. */
	snprintf(yaml, sizeof(yaml), "services:\n%s%s", gen_small(small, sizeof(small), 1, 3),
		 gen_small(big, sizeof(big), 2, 8));
	err = apply_yaml(yaml, &sum, step, sizeof(step));
	printf("# 8 active backends, Maglev size 7: %d (%s), step: %s\n", err, strerror(-err),
	       step);
	ASSERT_TRUE(err < 0, "8 active backends with Maglev size 7: refused");
	expect_unchanged(&before, "8 active backends with Maglev size 7");
	state_free(&before);
	/* 8 backends of which 7 are active fit (the last one at weight 0);
	 * from fresh maps, whatever the refused apply left behind. */
	snprintf(yaml, sizeof(yaml), "services:\n%s", gen_small(small, sizeof(small), 1, 2));
	if (!fresh_maps(7) || !apply_ok(yaml, 1, 0, 0, "a service of 2, again"))
		return;
	gen_small(big, sizeof(big), 2, 8);
	snprintf(strstr(big, "10.99.2.8:1"), 64, "{address: 10.99.2.8:1, weight: 0}]}\n");
	snprintf(yaml, sizeof(yaml), "services:\n%s%s", gen_small(small, sizeof(small), 1, 3), big);
	apply_ok(yaml, 2, 0, 0, "8 backends, 7 active, Maglev size 7");
}

static void test_max_services(void)
{
	struct text t;

	if (!fresh_maps(7)) /* 16383 tables of 7 entries */
		return;
	text_open(&t);
	fprintf(t.f, "services:\n");
	for (__u32 i = 0; i < CFG_MAX_SERVICES; i++)
		gen_service(t.f, i, 4, false, 0, 8000);
	text_close(&t);
	apply_ok(t.buf, CFG_MAX_SERVICES, 0, 0, "16383 services x 4 backends");
	printf("# 16383 services x 4 backends (maglev 7): apply_config %.2f s\n", last_apply_s);
	apply_ok(t.buf, 0, CFG_MAX_SERVICES, 0, "16383 services again: unchanged");
	printf("# ... again, unchanged: %.2f s\n", last_apply_s);
	/* All replaced by 16383 others: every old one pruned first. */
	free(t.buf);
	text_open(&t);
	fprintf(t.f, "services:\n");
	for (__u32 i = 0; i < CFG_MAX_SERVICES; i++)
		gen_service(t.f, i, 4, true, 0, 8000);
	text_close(&t);
	apply_ok(t.buf, CFG_MAX_SERVICES, 0, CFG_MAX_SERVICES, "16383 other services");
	printf("# ... replaced by 16383 others: %.2f s\n", last_apply_s);
	apply_ok("", 0, 0, CFG_MAX_SERVICES, "empty file: every service pruned");
	printf("# ... all pruned: %.2f s\n", last_apply_s);
	free(t.buf);
}

static void test_sync_validation(void)
{
	struct sl_svc want = { .flags = SL_SVC_AFFINITY, .affinity_timeout_s = 30, .name = "web" };
	struct sl_svc_key new_key = key_of("198.19.0.99", 80, IPPROTO_TCP);
	struct lb_backend_spec good = { .addr = ep("198.18.1.2", 8080), .weight = 1 };
	struct lb_backend_spec bad[] = {
		{ .addr = ep("fd00:0:0:1::2", 8080), .weight = 1 }, /* wrong family */
		{ .addr = ep("198.18.7.2", 8080), .weight = LB_WEIGHT_MAX + 1 },
		{ .addr = ep("198.18.7.2", 8080), .weight = 1 }, /* addr[1] set below */
		{ .addr = ep("198.18.7.2", 0), .weight = 1 }, /* port 0 */
	};
	static const char *const bad_what[] = { "IPv6 backend in an IPv4 service",
						"weight LB_WEIGHT_MAX + 1",
						"IPv4 backend with addr[1] set", "backend port 0" };
	struct sl_svc bad_svc = { .flags = SL_SVC_AFFINITY, .name = "x" }; /* no timeout */
	struct lb_backend_spec pair[2];
	struct lb_snapshot *snap = NULL;
	struct maps_state before;
	char what[1024];

	bad[2].addr.addr[1] = htonl(1);
	if (!fresh_maps(MAGLEV_SIZE) || !apply_ok(CFG_BASE, 3, 0, 0, "first apply"))
		return;
	if (!state_read(&before))
		return;
	if (!ASSERT_OK(lb_snapshot_read(&maps, &snap), "lb_snapshot_read"))
		goto free_before;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		pair[0] = good;
		pair[1] = bad[i];
		snprintf(what, sizeof(what), "sync web with %s", bad_what[i]);
		ASSERT_EQ(lb_service_sync(&maps, snap, &k_web, &want, pair, 2), -EINVAL, what);
		expect_unchanged(&before, what);
		snprintf(what, sizeof(what), "sync a new service with %s", bad_what[i]);
		ASSERT_EQ(lb_service_sync(&maps, snap, &new_key, &want, pair, 2), -EINVAL, what);
		expect_unchanged(&before, what);
	}
	ASSERT_EQ(lb_service_sync(&maps, snap, &k_web, &bad_svc, &good, 1), -EINVAL,
		  "sync web with affinity but no timeout");
	expect_unchanged(&before, "affinity without timeout");
	ASSERT_EQ(lb_service_sync(&maps, snap, &k_dns6, &want, &good, 1), -EINVAL,
		  "sync dns6 (IPv6) with an IPv4 backend");
	expect_unchanged(&before, "IPv4 backend in dns6");
	/* Refusals stage nothing: the commit changes nothing. */
	ASSERT_OK(lb_snapshot_commit(&maps, snap), "commit after the refusals");
	expect_unchanged(&before, "commit after the refusals");
	/* The snapshot is still good: a valid sync through it works. */
	ASSERT_EQ(lb_service_sync(&maps, snap, &k_web, &want, &good, 1), 1,
		  "valid sync after the refusals");
	ASSERT_OK(lb_snapshot_commit(&maps, snap), "commit");
	lb_snapshot_free(snap);
	cfg_web(what, sizeof(what), WEB_AFF, "[198.18.1.2:8080]");
	expect_maps_hold_yaml(what, "after the valid sync");
free_before:
	state_free(&before);
}

static void test_after_single_object_changes(void)
{
	struct sl_svc_key k_extra = key_of("198.19.0.99", 99, IPPROTO_UDP);
	struct addr_port be9 = ep("198.18.9.2", 8080), be3 = ep("198.18.3.2", 8080);
	struct addr_port dns_be = ep("fd00:0:0:1::2", 53);
	struct sl_svc plain = { .name = "manual" };
	struct maps_state before, after;
	__u32 web;

	if (!fresh_maps(MAGLEV_SIZE) || !apply_ok(CFG_BASE, 3, 0, 0, "first apply"))
		return;
	if (!state_read(&before))
		return;
	web = state_svc_id(&before, &k_web);
	ASSERT_OK(lb_backend_add(&maps, &k_web, &be9, 5), "lb_backend_add to web");
	ASSERT_OK(lb_backend_del(&maps, &k_web, &be3), "lb_backend_del from web");
	ASSERT_OK(lb_backend_set_weight(&maps, &k_dns6, &dns_be, 7), "lb_backend_set_weight dns6");
	ASSERT_OK(lb_service_add(&maps, &k_extra, &plain), "lb_service_add");
	ASSERT_OK(lb_backend_add(&maps, &k_extra, &be9, 1), "lb_backend_add to it");
	/* The config again: web and dns6 put back, the extra service pruned. */
	if (apply_ok(CFG_BASE, 2, 1, 1, "the config after single-object changes") &&
	    state_read(&after)) {
		ASSERT_EQ(state_be_id(&after, web, "198.18.1.2", 8080),
			  state_be_id(&before, web, "198.18.1.2", 8080),
			  "an untouched backend keeps its id");
		state_free(&after);
	}
	/* And the other way round: a single-object change after an apply. */
	ASSERT_OK(lb_backend_add(&maps, &k_web, &be9, 5), "lb_backend_add after the apply");
	apply_ok(CFG_BASE, 1, 2, 0, "the config once more");
	state_free(&before);
}

/* The snapshot is "kept up to date by the bulk calls" (lb.h): a second
 * call in the same snapshot must see what the first one did. */
static void test_snapshot_stays_current(void)
{
	struct sl_svc want = { .name = "web" };
	struct lb_backend_spec specs[3] = {
		{ .addr = ep("198.18.1.2", 8080), .weight = 1 },
		{ .addr = ep("198.18.2.2", 8080), .weight = 1 },
		{ .addr = ep("198.18.3.2", 8080), .weight = 1 },
	};
	struct lb_snapshot *snap = NULL;
	struct maps_state s;
	__u32 svcs, bes, b1 = 0;

	if (!fresh_maps(MAGLEV_SIZE) || !ASSERT_OK(lb_snapshot_read(&maps, &snap), "snapshot"))
		return;
	lb_snapshot_room(snap, NULL, NULL, &svcs, &bes);
	ASSERT_EQ(svcs, SL_MAX_SERVICES - 1, "room: every service id free");
	ASSERT_EQ(bes, SL_MAX_BACKENDS - 1, "room: every backend slot free");
	ASSERT_EQ(lb_service_sync(&maps, snap, &k_web, &want, specs, 2), 1, "sync web [1, 2]");
	ASSERT_OK(lb_snapshot_commit(&maps, snap), "commit web [1, 2]");
	if (state_read(&s)) {
		b1 = state_be_id(&s, 1, "198.18.1.2", 8080);
		state_free(&s);
	}
	lb_snapshot_room(snap, NULL, NULL, &svcs, &bes);
	ASSERT_EQ(bes, SL_MAX_BACKENDS - 3, "room after the sync: 2 slots taken");
	ASSERT_EQ(lb_snapshot_new_backends(&maps, snap, &k_web, specs, 3), 1,
		  "new_backends after the sync: only backend 3 is new");
	ASSERT_EQ(lb_service_sync(&maps, snap, &k_web, &want, specs, 2), 0,
		  "the same sync again in the same snapshot: unchanged");
	ASSERT_EQ(lb_service_sync(&maps, snap, &k_web, &want, specs, 3), 1,
		  "sync web [1, 2, 3] in the same snapshot");
	ASSERT_OK(lb_snapshot_commit(&maps, snap), "commit web [1, 2, 3]");
	expect_maps_hold_yaml("services:\n  - name: web\n    vip: 198.19.0.10:80/tcp\n"
			      "    backends: [198.18.1.2:8080, 198.18.2.2:8080, 198.18.3.2:8080]\n",
			      "after two syncs in one snapshot");
	if (state_read(&s)) {
		ASSERT_EQ(state_be_id(&s, 1, "198.18.1.2", 8080), b1,
			  "backend 1 kept its id across the two syncs");
		state_free(&s);
	}
	lb_snapshot_free(snap);
}

/* A service whose table went missing (a change that failed half way) is
 * republished by the next apply, though its backends are as asked. */
static void test_lost_table_republished(void)
{
	struct sl_svc svc;
	__u32 inner_id;

	if (!fresh_maps(MAGLEV_SIZE) || !apply_ok(CFG_BASE, 3, 0, 0, "first apply") ||
	    !ASSERT_OK(lb_service_get(&maps, &k_web, &svc), "web's id"))
		return;
	ASSERT_OK(bpf_map_delete_elem(maps.maglev, &svc.id), "remove web's table by hand");
	apply_ok(CFG_BASE, 1, 2, 0, "re-apply: web republished, the others unchanged");
	ASSERT_OK(bpf_map_lookup_elem(maps.maglev, &svc.id, &inner_id), "web has a table again");
}

static bool keep_none(const struct sl_svc_key *key, void *ctx)
{
	(void)key;
	(void)ctx;
	return false;
}

/* Services synced through a snapshot and then pruned through it leave
 * nothing behind. */
static void test_snapshot_prune_after_sync(void)
{
	struct sl_svc want = { .name = "web" };
	struct sl_svc_key k_new = key_of("198.19.0.99", 80, IPPROTO_TCP);
	struct lb_backend_spec specs[2] = {
		{ .addr = ep("198.18.1.2", 8080), .weight = 1 },
		{ .addr = ep("198.18.7.2", 8080), .weight = 1 },
	};
	struct lb_snapshot *snap = NULL;
	__u32 svcs, bes;

	if (!fresh_maps(MAGLEV_SIZE) || !apply_ok(CFG_BASE, 3, 0, 0, "first apply") ||
	    !ASSERT_OK(lb_snapshot_read(&maps, &snap), "snapshot"))
		return;
	/* web (existing: one backend kept, one new) and a new service. */
	ASSERT_EQ(lb_service_sync(&maps, snap, &k_web, &want, specs, 2), 1, "sync web");
	ASSERT_EQ(lb_service_sync(&maps, snap, &k_new, &want, specs, 2), 1, "sync a new service");
	lb_snapshot_room(snap, keep_none, NULL, &svcs, &bes);
	ASSERT_EQ(svcs, SL_MAX_SERVICES - 1, "room once all are pruned: every service id");
	ASSERT_EQ(bes, SL_MAX_BACKENDS - 1, "room once all are pruned: every backend slot");
	ASSERT_EQ(lb_services_prune(&maps, snap, keep_none, NULL), 4, "prune every service");
	ASSERT_OK(lb_snapshot_flush(&maps, snap), "flush");
	lb_snapshot_free(snap);
	expect_maps_hold_yaml("services: []\n", "after sync + prune in one snapshot");
}

static void time_apply(__u32 maglev_size)
{
	struct text t, t2;
	double t0, t_parse, t_apply, t_again, t_weights, t_prune;
	struct apply_summary sum;
	struct cfg_state st = {}, st2 = {};
	char step[256];
	struct cfg_error cerr;

	if (!fresh_maps(maglev_size))
		return;
	text_open(&t);
	text_open(&t2);
	fprintf(t.f, "services:\n");
	fprintf(t2.f, "services:\n");
	for (__u32 i = 0; i < 10000; i++) {
		gen_service(t.f, i, 6, false, 0, 8000);
		gen_service(t2.f, i, 6, false, 1, 8000);
	}
	text_close(&t);
	text_close(&t2);
	t0 = now_s();
	if (!ASSERT_OK(cfg_load_buffer("big.yaml", t.buf, t.len, &st, &cerr), "parse 10000 x 6"))
		goto free_text;
	t_parse = now_s() - t0;
	ASSERT_OK(cfg_load_buffer("big2.yaml", t2.buf, t2.len, &st2, &cerr), "parse the other");
	t0 = now_s();
	ASSERT_OK(apply_config(&maps, &st, NULL, &sum, step, sizeof(step)), "apply 10000 x 6");
	t_apply = now_s() - t0;
	expect_maps_hold(&st, "10000 services x 6 backends");
	t0 = now_s();
	ASSERT_OK(apply_config(&maps, &st, NULL, &sum, step, sizeof(step)), "apply again");
	t_again = now_s() - t0;
	ASSERT_EQ(sum.unchanged, 10000, "again: unchanged");
	t0 = now_s();
	ASSERT_OK(apply_config(&maps, &st2, NULL, &sum, step, sizeof(step)), "apply new weights");
	t_weights = now_s() - t0;
	ASSERT_EQ(sum.changed, 10000, "new weights: all changed");
	expect_maps_hold(&st2, "10000 services, every weight changed");
	cfg_free(&st2);
	t0 = now_s();
	ASSERT_OK(apply_config(&maps, &st2, NULL, &sum, step, sizeof(step)), "apply empty");
	t_prune = now_s() - t0;
	ASSERT_EQ(sum.deleted, 10000, "empty: all deleted");
	printf("# maglev %u: 10000 services x 6 backends (%zu KiB of YAML): parse %.3f s, "
	       "apply to empty maps %.3f s, re-apply unchanged %.3f s, every weight changed "
	       "%.3f s, prune all %.3f s\n",
	       maglev_size, t.len / 1024, t_parse, t_apply, t_again, t_weights, t_prune);
	cfg_free(&st);
free_text:
	free(t.buf);
	free(t2.buf);
}

static void test_timing(void)
{
	time_apply(251);
	time_apply(1021);
}

static const struct test_case cases[] = {
	{ "apply to empty maps", test_apply_empty_maps },
	{ "re-apply same config: unchanged, no republication", test_reapply_same },
	{ "weight change: only that service republished, ids kept", test_weight_change },
	{ "backends added and removed", test_backend_add_remove },
	{ "weight 0: out of the table, slot kept", test_weight_zero },
	{ "service left out: pruned with slots, table, flows", test_service_removed },
	{ "rename and affinity change: settings republished", test_settings_change },
	{ "no room: -ENOSPC, maps unchanged", test_no_room },
	{ "more active backends than Maglev entries: refused", test_more_backends_than_table },
	{ "16383 services (the maximum)", test_max_services },
	{ "lb_service_sync validation: -EINVAL changes nothing", test_sync_validation },
	{ "apply after single-object changes", test_after_single_object_changes },
	{ "a lost table is republished", test_lost_table_republished },
	{ "snapshot stays current across syncs", test_snapshot_stays_current },
	{ "snapshot: prune after sync frees everything", test_snapshot_prune_after_sync },
	{ "timing: 10000 services x 6 backends", test_timing },
};

int main(int argc, char **argv)
{
	int ret;

	k_web = key_of("198.19.0.10", 80, IPPROTO_TCP);
	k_dns6 = key_of("fd00:ffff::10", 53, IPPROTO_UDP);
	k_third = key_of("198.19.0.11", 443, IPPROTO_TCP);
	ret = run_tests(cases, ARRAY_SIZE(cases), argc > 1 ? argv[1] : NULL, "bpf/apply");
	if (skel)
		xdp_lb__destroy(skel);
	return ret;
}
