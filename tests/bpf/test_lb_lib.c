/* Tests of the LB library (user/lib/lb.c) against the real maps of a
 * loaded XDP load balancer: services, backends, Maglev publication and
 * conntrack flushing, read back from the maps themselves. Every failed
 * call must leave sl_svc, sl_be and sl_maglev exactly as they were.
 * Usage: test_lb_lib [name-substring]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "harness.h"
#include "lb_fixture.h"
#include "lb.h"
#include "loader.h"
#include "sluice/conntrack.h"
#include "sluice/limits.h"
#include "xdp_lb.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MAGLEV_SIZE 251 /* small: tables are read slot by slot */
#define SNAP_SVC 64 /* service ids the tests can reach */

static struct xdp_lb *skel;
static struct lb_maps maps;

static const struct sl_svc plain = { .name = "plain" };

/* ---- reading the maps ---- */

static __u32 svc_id_of(const struct sl_svc_key *key)
{
	struct sl_svc svc = {};

	return bpf_map_lookup_elem(maps.svc, key, &svc) ? 0 : svc.id;
}

/* Id of the inner Maglev map in slot @svc_id, 0 when the slot is empty. */
static __u32 maglev_inner_id(__u32 svc_id)
{
	__u32 id = 0;

	return bpf_map_lookup_elem(maps.maglev, &svc_id, &id) ? 0 : id;
}

/* Slots per backend id in service @svc_id's table; returns the table size
 * read, or -errno (-ENOENT: no table published). */
static int maglev_counts(__u32 svc_id, __u32 *counts, __u32 n_counts)
{
	__u32 inner = maglev_inner_id(svc_id), slot, be;
	int fd, size = 0;

	if (!inner)
		return -ENOENT;
	fd = bpf_map_get_fd_by_id(inner);
	if (fd < 0)
		return fd;
	memset(counts, 0, n_counts * sizeof(*counts));
	for (slot = 0; !bpf_map_lookup_elem(fd, &slot, &be); slot++, size++)
		counts[be < n_counts ? be : 0]++;
	close(fd);
	return size;
}

static int backend_read(__u32 id, struct sl_backend *be)
{
	return bpf_map_lookup_elem(maps.be, &id, be);
}

/* Id of @ip:@port in service @svc_id, 0 if absent. */
static __u32 backend_id(__u32 svc_id, const char *ip, uint16_t port)
{
	struct addr_port ap = ep(ip, port);
	struct sl_backend be;

	for (__u32 id = 1; id < 256; id++) {
		if (!backend_read(id, &be) && (be.flags & SL_BE_IN_USE) && be.svc_id == svc_id &&
		    be.port == ap.port && !memcmp(be.addr, ap.addr, 16))
			return id;
	}
	return 0;
}

/* Everything a library call may change, for before/after comparisons. */
struct snapshot {
	struct svc_entry {
		struct sl_svc_key key;
		struct sl_svc svc;
	} svc[SNAP_SVC];
	__u32 n_svc;
	__u32 maglev[SNAP_SVC]; /* inner map id per service id */
	struct sl_backend *be; /* all SL_MAX_BACKENDS slots */
	__u32 ct4, ct6;
};

static int svc_entry_cmp(const void *a, const void *b)
{
	const struct svc_entry *x = a, *y = b;

	return (x->svc.id > y->svc.id) - (x->svc.id < y->svc.id);
}

static void snapshot_take(struct snapshot *s)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys = calloc(SL_MAX_BACKENDS, sizeof(*keys));
	__u32 count = SL_MAX_BACKENDS, out_batch;
	struct sl_svc_key key, *prev = NULL;

	memset(s, 0, offsetof(struct snapshot, be));
	while (s->n_svc < SNAP_SVC && !bpf_map_get_next_key(maps.svc, prev, &key)) {
		s->svc[s->n_svc].key = key;
		bpf_map_lookup_elem(maps.svc, &key, &s->svc[s->n_svc].svc);
		prev = &s->svc[s->n_svc++].key;
	}
	qsort(s->svc, s->n_svc, sizeof(s->svc[0]), svc_entry_cmp);
	for (__u32 id = 0; id < SNAP_SVC; id++)
		s->maglev[id] = maglev_inner_id(id);
	s->be = calloc(SL_MAX_BACKENDS, sizeof(*s->be));
	if (!keys || !s->be ||
	    (bpf_map_lookup_batch(maps.be, NULL, &out_batch, keys, s->be, &count, &opts) &&
	     errno != ENOENT))
		ASSERT_OK(-errno, "snapshot: read sl_be");
	ASSERT_EQ(count, SL_MAX_BACKENDS, "snapshot: sl_be slots read");
	s->ct4 = map_count(maps.ct4);
	s->ct6 = map_count(maps.ct6);
	free(keys);
}

static void snapshot_free(struct snapshot *s)
{
	free(s->be);
	s->be = NULL;
}

/* @after must equal @before; @what names the call in between. */
static void expect_unchanged(const struct snapshot *before, const char *what)
{
	struct snapshot after;
	char msg[160];
	__u32 id;

	snapshot_take(&after);
	snprintf(msg, sizeof(msg), "%s: sl_svc entries", what);
	ASSERT_BYTES(before->svc, before->n_svc * sizeof(before->svc[0]), after.svc,
		     after.n_svc * sizeof(after.svc[0]), msg);
	snprintf(msg, sizeof(msg), "%s: sl_maglev slots (inner map ids)", what);
	ASSERT_BYTES(before->maglev, sizeof(before->maglev), after.maglev, sizeof(after.maglev),
		     msg);
	for (id = 0; before->be && after.be && id < SL_MAX_BACKENDS; id++) {
		if (memcmp(&before->be[id], &after.be[id], sizeof(after.be[id]))) {
			snprintf(msg, sizeof(msg), "%s: sl_be[%u]", what, id);
			ASSERT_BYTES(&before->be[id], sizeof(before->be[id]), &after.be[id],
				     sizeof(after.be[id]), msg);
			break;
		}
	}
	snprintf(msg, sizeof(msg), "%s: sl_ct4 entries", what);
	ASSERT_EQ(after.ct4, before->ct4, msg);
	snprintf(msg, sizeof(msg), "%s: sl_ct6 entries", what);
	ASSERT_EQ(after.ct6, before->ct6, msg);
	snapshot_free(&after);
}

/* ---- reset between cases ---- */

/* No service, no backend, no flow. */
static void reset(void)
{
	struct sl_svc_key key;
	struct sl_backend be, empty = {};

	while (!bpf_map_get_next_key(maps.svc, NULL, &key))
		if (!ASSERT_OK(lb_service_del(&maps, &key), "reset: lb_service_del"))
			break;
	map_clear(maps.ct4);
	map_clear(maps.ct6);
	for (__u32 id = 0; id < 256; id++) {
		if (!backend_read(id, &be) && memcmp(&be, &empty, sizeof(be))) {
			ASSERT_EQ(id, 0, "reset: sl_be slot left behind by lb_service_del");
			bpf_map_update_elem(maps.be, &id, &empty, BPF_ANY);
		}
	}
}

/* ---- cases: services ---- */

static void test_service_add_get_del(void)
{
	struct sl_svc_key k4 = key_of("198.19.0.10", 80, IPPROTO_TCP);
	struct sl_svc_key k6 = key_of("fd00:ff::10", 53, IPPROTO_UDP);
	struct sl_svc want = { .flags = SL_SVC_AFFINITY, .affinity_timeout_s = 30, .name = "web" };
	struct sl_svc got = {};

	reset();
	ASSERT_OK(lb_service_add(&maps, &k4, &want), "add v4");
	ASSERT_OK(lb_service_add(&maps, &k6, &plain), "add v6");
	ASSERT_OK(lb_service_get(&maps, &k4, &got), "get v4");
	want.id = 1; /* the lowest free id */
	ASSERT_BYTES(&want, sizeof(want), &got, sizeof(got), "v4 service as stored");
	ASSERT_OK(lb_service_get(&maps, &k6, &got), "get v6");
	ASSERT_EQ(got.id, 2, "v6 service id");
	ASSERT_EQ(maglev_inner_id(1), 0, "no table before a backend");

	ASSERT_OK(lb_service_del(&maps, &k4), "del v4");
	ASSERT_EQ(lb_service_get(&maps, &k4, &got), -ENOENT, "get deleted");
	ASSERT_EQ(lb_service_del(&maps, &k4), -ENOENT, "del again");
	ASSERT_EQ(svc_id_of(&k6), 2, "other service untouched");
	ASSERT_OK(lb_service_add(&maps, &k4, &plain), "add v4 again");
	ASSERT_EQ(svc_id_of(&k4), 1, "freed id reused");
}

/* A reused service id starts with zero traffic. */
static void test_service_add_resets_traffic(void)
{
	struct sl_svc_key key = key_of("198.19.0.10", 80, IPPROTO_TCP);
	int ncpu = libbpf_num_possible_cpus();
	struct sl_traffic *junk = calloc(ncpu, sizeof(*junk)), sum = {}, zero = {};
	__u32 id = 1;

	reset();
	for (int cpu = 0; junk && cpu < ncpu; cpu++)
		junk[cpu] = (struct sl_traffic){ 1, 2, 3, 4, 5 };
	ASSERT_OK(bpf_map_update_elem(maps.svc_st, &id, junk, BPF_ANY), "old traffic in slot 1");
	ASSERT_OK(lb_read_traffic(maps.svc_st, id, &sum), "lb_read_traffic");
	ASSERT_EQ(sum.new_flows, 5ull * ncpu, "lb_read_traffic sums CPUs");
	ASSERT_OK(lb_service_add(&maps, &key, &plain), "add");
	ASSERT_EQ(svc_id_of(&key), 1, "service id");
	ASSERT_OK(lb_read_traffic(maps.svc_st, id, &sum), "lb_read_traffic");
	ASSERT_BYTES(&zero, sizeof(zero), &sum, sizeof(sum), "traffic of the new service");
	free(junk);
}

static void test_service_add_duplicate(void)
{
	struct sl_svc_key key = key_of("198.19.0.10", 80, IPPROTO_TCP);
	struct sl_svc other = { .flags = SL_SVC_AFFINITY, .affinity_timeout_s = 5, .name = "x" };
	struct addr_port be = ep("198.18.1.2", 8080);
	struct snapshot before;

	reset();
	ASSERT_OK(lb_service_add(&maps, &key, &plain), "add");
	ASSERT_OK(lb_backend_add(&maps, &key, &be, 1), "backend add");
	snapshot_take(&before);
	ASSERT_EQ(lb_service_add(&maps, &key, &other), -EEXIST, "add duplicate");
	expect_unchanged(&before, "duplicate service");
	snapshot_free(&before);
}

static void test_service_add_invalid(void)
{
	static const struct {
		const char *what;
		struct sl_svc_key key;
		struct sl_svc svc;
	} bad[] = {
		{ "port 0", { { 0x0a0013c6 }, 0, SL_PROTO_TCP, SL_AF_INET }, {} },
		{ "proto 1 (icmp)", { { 0x0a0013c6 }, 0x5000, SL_PROTO_ICMP, SL_AF_INET }, {} },
		{ "proto 0", { { 0x0a0013c6 }, 0x5000, 0, SL_AF_INET }, {} },
		{ "family 0", { { 0x0a0013c6 }, 0x5000, SL_PROTO_TCP, 0 }, {} },
		{ "family 3", { { 0x0a0013c6 }, 0x5000, SL_PROTO_TCP, 3 }, {} },
		{ "affinity without timeout",
		  { { 0x0a0013c6 }, 0x5000, SL_PROTO_TCP, SL_AF_INET },
		  { .flags = SL_SVC_AFFINITY } },
		{ "timeout without affinity",
		  { { 0x0a0013c6 }, 0x5000, SL_PROTO_TCP, SL_AF_INET },
		  { .affinity_timeout_s = 9 } },
		{ "unknown flag",
		  { { 0x0a0013c6 }, 0x5000, SL_PROTO_TCP, SL_AF_INET },
		  { .flags = 1u << 7 } },
		{ "name without NUL",
		  { { 0x0a0013c6 }, 0x5000, SL_PROTO_TCP, SL_AF_INET },
		  { .name = "0123456789abcdef0123456789abcdef" } },
		{ "IPv4 key with bytes past addr[0]",
		  { { 0x0a0013c6, 1 }, 0x5000, SL_PROTO_TCP, SL_AF_INET },
		  {} },
	};
	struct sl_svc_key ok = key_of("198.19.0.20", 443, IPPROTO_TCP);
	struct snapshot before;
	char what[96];

	reset();
	ASSERT_OK(lb_service_add(&maps, &ok, &plain), "add a valid service");
	snapshot_take(&before);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(what, sizeof(what), "service add, %s", bad[i].what);
		ASSERT_EQ(lb_service_add(&maps, &bad[i].key, &bad[i].svc), -EINVAL, what);
		expect_unchanged(&before, what);
	}
	snapshot_free(&before);
}

/* ---- cases: backends ---- */

static void test_backend_errors(void)
{
	struct sl_svc_key k4 = key_of("198.19.0.10", 80, IPPROTO_TCP);
	struct sl_svc_key k6 = key_of("fd00:ff::10", 80, IPPROTO_TCP);
	struct sl_svc_key missing = key_of("198.19.0.99", 80, IPPROTO_TCP);
	struct addr_port be4 = ep("198.18.1.2", 8080), be6 = ep("fd00:0:0:1::2", 8080);
	struct addr_port other = ep("198.18.1.3", 8080), port0 = ep("198.18.1.4", 0);
	struct snapshot before;

	reset();
	ASSERT_OK(lb_service_add(&maps, &k4, &plain), "add v4 service");
	ASSERT_OK(lb_service_add(&maps, &k6, &plain), "add v6 service");
	ASSERT_OK(lb_backend_add(&maps, &k4, &be4, 1), "add backend");
	ASSERT_OK(lb_backend_add(&maps, &k6, &be6, LB_WEIGHT_MAX), "weight LB_WEIGHT_MAX is fine");
	snapshot_take(&before);

	ASSERT_EQ(lb_backend_add(&maps, &missing, &other, 1), -ENOENT, "add to missing service");
	expect_unchanged(&before, "add to missing service");
	ASSERT_EQ(lb_backend_add(&maps, &k4, &be6, 1), -EAFNOSUPPORT, "v6 backend to v4 service");
	expect_unchanged(&before, "v6 backend to v4 service");
	ASSERT_EQ(lb_backend_add(&maps, &k6, &be4, 1), -EAFNOSUPPORT, "v4 backend to v6 service");
	expect_unchanged(&before, "v4 backend to v6 service");
	ASSERT_EQ(lb_backend_add(&maps, &k4, &other, LB_WEIGHT_MAX + 1), -EINVAL, "weight too big");
	expect_unchanged(&before, "weight too big");
	ASSERT_EQ(lb_backend_add(&maps, &k4, &port0, 1), -EINVAL, "backend port 0");
	expect_unchanged(&before, "backend port 0");
	ASSERT_EQ(lb_backend_add(&maps, &k4, &be4, 2), -EEXIST, "duplicate backend");
	expect_unchanged(&before, "duplicate backend");

	ASSERT_EQ(lb_backend_del(&maps, &k4, &other), -ENOENT, "del unknown backend");
	expect_unchanged(&before, "del unknown backend");
	ASSERT_EQ(lb_backend_del(&maps, &missing, &be4), -ENOENT, "del from missing service");
	expect_unchanged(&before, "del from missing service");
	be6.port = htons(8081);
	ASSERT_EQ(lb_backend_del(&maps, &k6, &be6), -ENOENT, "del: same address, other port");
	expect_unchanged(&before, "del: same address, other port");
	/* Last: IPv4 uses addr[0] only, so this is no other backend. */
	be4.addr[1] = htonl(1);
	ASSERT_EQ(lb_backend_add(&maps, &k4, &be4, 1), -EINVAL, "IPv4 backend, bytes past addr[0]");
	expect_unchanged(&before, "IPv4 backend, bytes past addr[0]");
	snapshot_free(&before);
}

static void test_weight_errors(void)
{
	struct sl_svc_key key = key_of("198.19.0.10", 80, IPPROTO_TCP);
	struct sl_svc_key key2 = key_of("198.19.0.11", 80, IPPROTO_TCP);
	struct addr_port be = ep("198.18.1.2", 8080), other = ep("198.18.1.3", 8080);
	struct snapshot before;

	reset();
	ASSERT_OK(lb_service_add(&maps, &key, &plain), "add service");
	ASSERT_OK(lb_service_add(&maps, &key2, &plain), "add second service");
	ASSERT_OK(lb_backend_add(&maps, &key, &be, 1), "add backend");
	snapshot_take(&before);
	ASSERT_EQ(lb_backend_set_weight(&maps, &key, &other, 1), -ENOENT, "unknown backend");
	expect_unchanged(&before, "set weight of unknown backend");
	ASSERT_EQ(lb_backend_set_weight(&maps, &key2, &be, 1), -ENOENT,
		  "backend of another service");
	expect_unchanged(&before, "set weight via another service");
	ASSERT_EQ(lb_backend_del(&maps, &key2, &be), -ENOENT, "del via another service");
	expect_unchanged(&before, "del via another service");
	ASSERT_EQ(lb_backend_set_weight(&maps, &key, &be, LB_WEIGHT_MAX + 1), -EINVAL,
		  "weight too big");
	expect_unchanged(&before, "set weight too big");
	snapshot_free(&before);
}

/* ---- cases: Maglev publication ---- */

/* @counts[id] must be @share of the table, give or take 1%. */
static void expect_share(const __u32 *counts, __u32 id, int size, double share, const char *what)
{
	double want = share * size, slack = size / 100.0 + 1;
	char msg[96];

	snprintf(msg, sizeof(msg), "%s: backend %u has %u of %d slots, want %.1f +- %.1f", what, id,
		 counts[id], size, want, slack);
	ASSERT_TRUE(counts[id] >= want - slack && counts[id] <= want + slack, msg);
}

/* Only the ids in @ids (0-terminated) appear in the table. */
static void expect_only(const __u32 *counts, __u32 n, const __u32 *ids, const char *what)
{
	char msg[96];

	for (__u32 id = 0; id < n; id++) {
		bool listed = false;

		for (const __u32 *p = ids; *p; p++)
			listed |= *p == id;
		if (!listed && counts[id]) {
			snprintf(msg, sizeof(msg), "%s: unexpected id %u in %u slots", what, id,
				 counts[id]);
			ASSERT_TRUE(false, msg);
		}
	}
}

static void test_maglev_publication(void)
{
	struct sl_svc_key key = key_of("198.19.0.10", 80, IPPROTO_TCP);
	struct addr_port a = ep("198.18.1.2", 8080), b = ep("198.18.1.3", 8080),
			 c = ep("198.18.1.4", 8080);
	struct sl_backend be = {}, want_b = { .port = htons(8080),
					      .family = SL_AF_INET,
					      .flags = SL_BE_IN_USE };
	__u32 counts[256], id_a, id_b, id_c, svc, inner;
	struct sl_svc got = {};
	int size;

	reset();
	ASSERT_OK(lb_service_add(&maps, &key, &plain), "add service");
	svc = svc_id_of(&key);
	ASSERT_OK(lb_backend_add(&maps, &key, &a, 1), "add a");
	ASSERT_OK(lb_backend_add(&maps, &key, &b, 1), "add b");
	ASSERT_OK(lb_backend_add(&maps, &key, &c, 1), "add c");
	id_a = backend_id(svc, "198.18.1.2", 8080);
	id_b = backend_id(svc, "198.18.1.3", 8080);
	id_c = backend_id(svc, "198.18.1.4", 8080);
	ASSERT_TRUE(id_a && id_b && id_c, "three backend ids in sl_be");
	ASSERT_OK(backend_read(id_b, &be), "read sl_be[b]");
	want_b.svc_id = svc;
	want_b.weight = 1;
	want_b.addr[0] = b.addr[0];
	ASSERT_BYTES(&want_b, sizeof(want_b), &be, sizeof(be), "sl_be[b]");

	size = maglev_counts(svc, counts, ARRAY_SIZE(counts));
	ASSERT_EQ(size, MAGLEV_SIZE, "table size");
	expect_only(counts, ARRAY_SIZE(counts), (const __u32[]){ id_a, id_b, id_c, 0 },
		    "3 backends");
	expect_share(counts, id_a, size, 1 / 3.0, "3 backends");
	expect_share(counts, id_b, size, 1 / 3.0, "3 backends");
	expect_share(counts, id_c, size, 1 / 3.0, "3 backends");
	ASSERT_OK(lb_service_get(&maps, &key, &got), "get");
	ASSERT_EQ(got.backend_count, 3, "backend_count");

	inner = maglev_inner_id(svc);
	ASSERT_OK(lb_backend_set_weight(&maps, &key, &b, 0), "weight b 0");
	ASSERT_NEQ(maglev_inner_id(svc), inner, "a new table was swapped in");
	size = maglev_counts(svc, counts, ARRAY_SIZE(counts));
	expect_only(counts, ARRAY_SIZE(counts), (const __u32[]){ id_a, id_c, 0 }, "b at weight 0");
	expect_share(counts, id_a, size, 1 / 2.0, "b at weight 0");
	expect_share(counts, id_c, size, 1 / 2.0, "b at weight 0");
	ASSERT_OK(backend_read(id_b, &be), "read sl_be[b]");
	want_b.weight = 0;
	ASSERT_BYTES(&want_b, sizeof(want_b), &be, sizeof(be), "sl_be[b] at weight 0");
	ASSERT_OK(lb_service_get(&maps, &key, &got), "get");
	ASSERT_EQ(got.backend_count, 2, "backend_count with b at weight 0");

	ASSERT_OK(lb_backend_set_weight(&maps, &key, &b, 2), "weight b 2");
	size = maglev_counts(svc, counts, ARRAY_SIZE(counts));
	expect_share(counts, id_a, size, 1 / 4.0, "weights 1:2:1");
	expect_share(counts, id_b, size, 2 / 4.0, "weights 1:2:1");
	expect_share(counts, id_c, size, 1 / 4.0, "weights 1:2:1");

	ASSERT_OK(lb_backend_del(&maps, &key, &a), "del a");
	ASSERT_OK(backend_read(id_a, &be), "read sl_be[a]");
	ASSERT_EQ(be.flags & SL_BE_IN_USE, 0, "sl_be[a] freed");
	size = maglev_counts(svc, counts, ARRAY_SIZE(counts));
	expect_only(counts, ARRAY_SIZE(counts), (const __u32[]){ id_b, id_c, 0 }, "a deleted");
	ASSERT_OK(lb_backend_del(&maps, &key, &b), "del b");
	ASSERT_OK(lb_backend_del(&maps, &key, &c), "del c");
	ASSERT_EQ(bpf_map_lookup_elem(maps.maglev, &svc, &inner), -ENOENT,
		  "sl_maglev slot empty once the last backend is gone");
	ASSERT_OK(lb_service_get(&maps, &key, &got), "get");
	ASSERT_EQ(got.backend_count, 0, "backend_count");
	ASSERT_EQ(backend_id(svc, "198.18.1.4", 8080), 0, "sl_be[c] freed");
}

static void test_maglev_only_backend_weight0(void)
{
	struct sl_svc_key key = key_of("fd00:ff::10", 53, IPPROTO_UDP);
	struct addr_port a = ep("fd00:0:0:1::2", 5353);
	__u32 counts[256], svc;
	struct sl_svc got = {};

	reset();
	ASSERT_OK(lb_service_add(&maps, &key, &plain), "add service");
	svc = svc_id_of(&key);
	ASSERT_OK(lb_backend_add(&maps, &key, &a, 0), "add at weight 0");
	ASSERT_EQ(maglev_counts(svc, counts, ARRAY_SIZE(counts)), -ENOENT,
		  "no table without weight");
	ASSERT_OK(lb_backend_set_weight(&maps, &key, &a, 5), "weight 5");
	ASSERT_EQ(maglev_counts(svc, counts, ARRAY_SIZE(counts)), MAGLEV_SIZE, "table published");
	ASSERT_EQ(counts[backend_id(svc, "fd00:0:0:1::2", 5353)], MAGLEV_SIZE, "every slot");
	ASSERT_OK(lb_backend_set_weight(&maps, &key, &a, 0), "weight 0");
	ASSERT_EQ(maglev_counts(svc, counts, ARRAY_SIZE(counts)), -ENOENT, "table removed");
	ASSERT_OK(lb_service_get(&maps, &key, &got), "get");
	ASSERT_EQ(got.backend_count, 0, "backend_count");
	ASSERT_NEQ(backend_id(svc, "fd00:0:0:1::2", 5353), 0, "sl_be keeps the backend");
}

/* ---- cases: service removal ---- */

static void test_service_del_cleans_up(void)
{
	struct sl_svc_key ka = key_of("198.19.0.10", 80, IPPROTO_TCP);
	struct sl_svc_key kb = key_of("198.19.0.11", 80, IPPROTO_TCP);
	struct addr_port a1 = ep("198.18.1.2", 8080), a2 = ep("198.18.1.3", 8080);
	struct addr_port b1 = ep("198.18.1.2", 8080);
	__u32 ida, idb, inner_b, be_b;
	struct sl_backend be;
	__u32 v4, v6;

	reset();
	ASSERT_OK(lb_service_add(&maps, &ka, &plain), "add a");
	ASSERT_OK(lb_service_add(&maps, &kb, &plain), "add b");
	ida = svc_id_of(&ka);
	idb = svc_id_of(&kb);
	ASSERT_OK(lb_backend_add(&maps, &ka, &a1, 1), "add a1");
	ASSERT_OK(lb_backend_add(&maps, &kb, &b1, 1), "add b1 (same address, other service)");
	ASSERT_OK(lb_backend_add(&maps, &ka, &a2, 1), "add a2");
	be_b = backend_id(idb, "198.18.1.2", 8080);
	inner_b = maglev_inner_id(idb);
	/* More than one CT_BATCH (4096) of entries: the flush walks batches. */
	ASSERT_OK(ct4_put(maps.ct4, ida, 3000), "a's ct4 entries");
	ASSERT_OK(ct4_put(maps.ct4, idb, 3000), "b's ct4 entries");
	ASSERT_OK(ct6_put(maps.ct6, ida, 5), "a's ct6 entries");
	ASSERT_OK(ct6_put(maps.ct6, idb, 7), "b's ct6 entries");
	ASSERT_OK(lb_ct_count(&maps, &v4, &v6), "lb_ct_count");
	ASSERT_EQ(v4, 6000, "lb_ct_count v4");
	ASSERT_EQ(v6, 12, "lb_ct_count v6");

	ASSERT_OK(lb_service_del(&maps, &ka), "del a");
	ASSERT_EQ(svc_id_of(&ka), 0, "a gone from sl_svc");
	ASSERT_EQ(maglev_inner_id(ida), 0, "a's sl_maglev slot empty");
	ASSERT_EQ(backend_id(ida, "198.18.1.2", 8080) + backend_id(ida, "198.18.1.3", 8080), 0,
		  "a's backends gone from sl_be");
	ASSERT_EQ(ct_count_svc(maps.ct4, ida), 0, "a's ct4 entries flushed");
	ASSERT_EQ(ct_count_svc(maps.ct6, ida), 0, "a's ct6 entries flushed");
	ASSERT_EQ(ct_count_svc(maps.ct4, idb), 3000, "b's ct4 entries kept");
	ASSERT_EQ(ct_count_svc(maps.ct6, idb), 7, "b's ct6 entries kept");
	ASSERT_EQ(svc_id_of(&kb), idb, "b kept");
	ASSERT_EQ(maglev_inner_id(idb), inner_b, "b's table untouched");
	ASSERT_OK(backend_read(be_b, &be), "read b's backend");
	ASSERT_EQ(be.svc_id, idb, "b's backend kept");
	ASSERT_OK(lb_ct_count(&maps, &v4, &v6), "lb_ct_count");
	ASSERT_EQ(v4, 3000, "lb_ct_count v4 after");
	ASSERT_EQ(v6, 7, "lb_ct_count v6 after");
}

/* ---- cases: walking ---- */

struct visit {
	__u32 ids[SNAP_SVC];
	__u32 n, stop_after;
};

static int visit_one(const struct sl_svc_key *key, const struct sl_svc *svc, void *ctx)
{
	struct visit *v = ctx;

	ASSERT_EQ(svc_id_of(key), svc->id, "key and service agree");
	v->ids[v->n++] = svc->id;
	return v->n == v->stop_after ? 42 : 0;
}

/* One IPv4 conntrack entry of service 1, backend @be_id, from port @sport. */
static int ct4_put_one(__u8 proto, __u16 sport, __u32 be_id)
{
	struct sl_ct_entry e = { .dir = SL_CT_FORWARD, .svc_id = 1, .backend_id = be_id };
	struct sl_ct4_key k = { .saddr = htonl(0xc6120002),
				.daddr = htonl(0xc613000a),
				.sport = htons(sport),
				.dport = htons(53),
				.proto = proto };

	return bpf_map_update_elem(maps.ct4, &k, &e, BPF_NOEXIST) ? -errno : 0;
}

static bool ct4_has(__u8 proto, __u16 sport)
{
	struct sl_ct4_key k = { .saddr = htonl(0xc6120002),
				.daddr = htonl(0xc613000a),
				.sport = htons(sport),
				.dport = htons(53),
				.proto = proto };
	struct sl_ct_entry e;

	return !bpf_map_lookup_elem(maps.ct4, &k, &e);
}

/* A removed backend's UDP flows never end on their own: they are flushed
 * (and rebalanced by their next packet); its TCP connections drain. */
static void test_backend_del_flushes_udp(void)
{
	struct sl_svc_key k = key_of("198.19.0.10", 53, IPPROTO_UDP);
	struct addr_port a = ep("198.18.1.2", 53), b = ep("198.18.2.2", 53);

	reset();
	ASSERT_OK(lb_service_add(&maps, &k, &plain), "add service");
	ASSERT_OK(lb_backend_add(&maps, &k, &a, 1), "add backend 1");
	ASSERT_OK(lb_backend_add(&maps, &k, &b, 1), "add backend 2");
	ASSERT_OK(ct4_put_one(IPPROTO_UDP, 1000, 1), "udp flow to backend 1");
	ASSERT_OK(ct4_put_one(IPPROTO_UDP, 1001, 2), "udp flow to backend 2");
	ASSERT_OK(ct4_put_one(IPPROTO_TCP, 1002, 1), "tcp flow to backend 1");
	ASSERT_OK(lb_backend_del(&maps, &k, &a), "del backend 1");
	ASSERT_FALSE(ct4_has(IPPROTO_UDP, 1000), "its udp flow flushed");
	ASSERT_TRUE(ct4_has(IPPROTO_UDP, 1001), "the other backend's udp flow kept");
	ASSERT_TRUE(ct4_has(IPPROTO_TCP, 1002), "its tcp connection drains");
}

static void test_service_foreach_order(void)
{
	static const char *const vips[] = { "198.19.0.1", "198.19.0.2", "fd00:ff::3",
					    "198.19.0.4", "198.19.0.5", "fd00:ff::6" };
	struct visit v = {};
	struct sl_svc_key key;

	reset();
	for (size_t i = 0; i < ARRAY_SIZE(vips); i++) {
		key = key_of(vips[i], 80, IPPROTO_TCP);
		ASSERT_OK(lb_service_add(&maps, &key, &plain), "add");
	}
	/* Free id 2, then reuse it for a service added last. */
	key = key_of(vips[1], 80, IPPROTO_TCP);
	ASSERT_OK(lb_service_del(&maps, &key), "del id 2");
	key = key_of("198.19.0.7", 80, IPPROTO_UDP);
	ASSERT_OK(lb_service_add(&maps, &key, &plain), "add into id 2");
	ASSERT_EQ(svc_id_of(&key), 2, "reused id");

	ASSERT_OK(lb_service_foreach(&maps, visit_one, &v), "foreach");
	ASSERT_BYTES(((const __u32[]){ 1, 2, 3, 4, 5, 6 }), 6 * sizeof(__u32), v.ids,
		     v.n * sizeof(__u32), "ids visited");
	v = (struct visit){ .stop_after = 3 };
	ASSERT_EQ(lb_service_foreach(&maps, visit_one, &v), 42, "foreach returns fn's value");
	ASSERT_EQ(v.n, 3, "foreach stops at the first non-zero return");
}

static int count_backend(__u32 id, const struct sl_backend *be, void *ctx)
{
	__u32 *n = ctx;

	ASSERT_NEQ(id, 0, "backend id");
	ASSERT_EQ(be->flags & SL_BE_IN_USE, SL_BE_IN_USE, "visited slot in use");
	(*n)++;
	return 0;
}

static void test_backend_foreach(void)
{
	struct sl_svc_key ka = key_of("198.19.0.10", 80, IPPROTO_TCP);
	struct sl_svc_key kb = key_of("198.19.0.11", 80, IPPROTO_TCP);
	struct addr_port a1 = ep("198.18.1.2", 8080), a2 = ep("198.18.1.3", 8080);
	__u32 na = 0, nb = 0;

	reset();
	ASSERT_OK(lb_service_add(&maps, &ka, &plain), "add a");
	ASSERT_OK(lb_service_add(&maps, &kb, &plain), "add b");
	ASSERT_OK(lb_backend_add(&maps, &ka, &a1, 1), "add a1");
	ASSERT_OK(lb_backend_add(&maps, &ka, &a2, 0), "add a2 at weight 0");
	ASSERT_OK(lb_backend_add(&maps, &kb, &a1, 1), "add b1");
	ASSERT_OK(lb_backend_foreach(&maps, svc_id_of(&ka), count_backend, &na), "foreach a");
	ASSERT_OK(lb_backend_foreach(&maps, svc_id_of(&kb), count_backend, &nb), "foreach b");
	ASSERT_EQ(na, 2, "a's backends (weight 0 included)");
	ASSERT_EQ(nb, 1, "b's backends");
}

static void test_ct_count(void)
{
	__u32 v4 = 99, v6 = 99;

	reset();
	ASSERT_OK(lb_ct_count(&maps, &v4, &v6), "empty");
	ASSERT_EQ(v4, 0, "v4 empty");
	ASSERT_EQ(v6, 0, "v6 empty");
	ASSERT_OK(ct4_put(maps.ct4, 3, 5000), "5000 v4 entries");
	ASSERT_OK(ct6_put(maps.ct6, 3, 3), "3 v6 entries");
	ASSERT_OK(lb_ct_count(&maps, &v4, &v6), "count");
	ASSERT_EQ(v4, 5000, "v4");
	ASSERT_EQ(v6, 3, "v6");
}

/* ---- cases: counters and config ---- */

static void test_read_counter(void)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals = calloc(ncpu, sizeof(*vals)), sum = 0;
	__u32 idx = SL_LB_REDIRECT;

	for (int cpu = 0; vals && cpu < ncpu; cpu++)
		vals[cpu] = cpu + 1;
	ASSERT_OK(bpf_map_update_elem(maps.lb_st, &idx, vals, BPF_ANY), "write per-CPU values");
	ASSERT_OK(lb_read_counter(maps.lb_st, idx, &sum), "lb_read_counter");
	ASSERT_EQ(sum, (__u64)ncpu * (ncpu + 1) / 2, "sum over CPUs");
	idx = SL_LB_STAT_MAX;
	ASSERT_EQ(lb_read_counter(maps.lb_st, idx, &sum), -ENOENT, "index past the end");
	free(vals);
}

static void test_config(void)
{
	struct sl_config cfg = {}, bad = { .maglev_size = 250, .version = 1 };
	__u32 zero = 0;

	ASSERT_EQ(maps.maglev_size, MAGLEV_SIZE, "maps.maglev_size from sl_cfg");
	ASSERT_OK(bpf_map_lookup_elem(maps.cfg, &zero, &cfg), "read sl_cfg");
	ASSERT_EQ(cfg.maglev_size, MAGLEV_SIZE, "sl_cfg maglev_size");
	ASSERT_EQ(cfg.version, 1, "sl_cfg version");
	ASSERT_EQ(lb_config_write(&maps, &bad), -EINVAL, "non-prime size refused");
	ASSERT_OK(bpf_map_lookup_elem(maps.cfg, &zero, &cfg), "read sl_cfg");
	ASSERT_EQ(cfg.maglev_size, MAGLEV_SIZE, "sl_cfg unchanged");
	ASSERT_EQ(maps.maglev_size, MAGLEV_SIZE, "maps.maglev_size unchanged");
}

static const struct test_case cases[] = {
	{ "service add, get, del", test_service_add_get_del },
	{ "service add resets its traffic slot", test_service_add_resets_traffic },
	{ "service add duplicate: -EEXIST, maps unchanged", test_service_add_duplicate },
	{ "service add invalid: -EINVAL, maps unchanged", test_service_add_invalid },
	{ "backend add/del errors: maps unchanged", test_backend_errors },
	{ "backend set_weight errors: maps unchanged", test_weight_errors },
	{ "maglev: 3 backends, weight 0, weights, deletes", test_maglev_publication },
	{ "maglev: only backend at weight 0 has no table", test_maglev_only_backend_weight0 },
	{ "service del: backends, table and conntrack go", test_service_del_cleans_up },
	{ "backend del: its udp flows flushed, tcp drains", test_backend_del_flushes_udp },
	{ "service foreach: id order, early stop", test_service_foreach_order },
	{ "backend foreach: per service", test_backend_foreach },
	{ "ct count", test_ct_count },
	{ "read counter sums CPUs", test_read_counter },
	{ "config from the loader", test_config },
};

int main(int argc, char **argv)
{
	struct loader_opts opts = { .maglev_size = MAGLEV_SIZE, .ct_size = 16384, .version = 1 };
	int ret;

	skel = loader_lb_load(&opts, &maps);
	if (!skel) {
		fprintf(stderr, "setup: loader_lb_load: %s (run as root)\n", strerror(errno));
		return 1;
	}
	ret = run_tests(cases, ARRAY_SIZE(cases), argc > 1 ? argv[1] : NULL, "bpf/lb_lib");
	xdp_lb__destroy(skel);
	return ret;
}
