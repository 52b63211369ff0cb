// SPDX-License-Identifier: GPL-2.0
/* xdp_bench: per-packet cost of the XDP load balancer in ns above a bare
 * XDP_PASS program, measured with BPF_PROG_TEST_RUN. Method, definitions
 * and figures: docs/benchmarks.md. In short:
 *   - the process pins itself to one CPU and moves to a network namespace
 *     of its own, with an uplink veth and a backend veth whose neighbours
 *     are permanent, so the LB's FIB lookup succeeds as on a real node;
 *   - bare programs (xdp_pass, xdp_tx_swap) run as they are; the LB runs
 *     behind the bench_reset shim (bpf/bench.bpf.c), which restores the
 *     packet every iteration, and is compared with the shim in front of
 *     xdp_pass: LB cost = (shim -> LB) - (shim -> xdp_pass);
 *   - established and new flows run against an LB whose conntrack has the
 *     agent's default size (SL_CT_DEFAULT_SIZE), the 1M-flow cycle against
 *     a second LB sized to hold the cycle on one CPU;
 *   - with a policy of 10,000 endpoints and 1,000 rules published
 *     (bench_policy.c), established and new flows are timed with the
 *     generation switched off and on run by run: what policy adds;
 *   - every timed run is checked (verdict, output headers, LB counters):
 *     a figure for a packet that was not load-balanced is worse than none,
 *     so the benchmark aborts instead of printing it.
 * Usage: xdp_bench [--runs N] [--repeat N] [--cpu N] [--backends N] [--only NAME] [--no-policy]
 *                  [--ct-size N] [--cycle-ct-size N] [--profile] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>

#include "../../tests/bpf/harness.h"
#include "../../tests/bpf/pkt.h"
#include "bench.skel.h"
#include "bench_policy.h"
#include "lb.h"
#include "loader.h"
#include "policy_maps.h"
#include "log.h"
#include "sluice/drop_reason.h"
#include "sluice/limits.h"
#include "sluice/maglev.h"
#include "sluice/stats.h"
#include "xdp_lb.skel.h"

/* Shim modes and slots: keep in sync with bpf/bench.bpf.c. */
#define BENCH_FIXED 0
#define BENCH_UNIQUE 1
#define BENCH_CYCLE 2
#define BENCH_SLOT_LB 0
#define BENCH_SLOT_PASS 1
#define BENCH_SLOT_FIB 2
#define BENCH_HDR_LEN 54

#define UPLINK "slb-up0"
#define BACKLINK "slb-be0"
#define PARKING "slb-park" /* veth pair, kept down: programs parked there */
#define CLIENT_ADDR "198.18.0.2"
#define CLIENT_PORT 40000
#define VIP_ADDR "198.19.0.10"
#define VIP_MISS_ADDR "198.19.0.99" /* no service there: the LB's miss path */
#define VIP_PORT 80
#define BE_PORT 8080
#define BE_HOST_BASE 2 /* backend i is 198.18.1.(2 + i) */
#define BE_MAX 100

#define CYCLE_FLOWS 1000000
/* Visits the cycle's flows in another order than the prefill made them;
 * any stride coprime with CYCLE_FLOWS (not even, not a multiple of 5)
 * is a permutation. */
#define CYCLE_STRIDE 611953

#define RUNS_MIN 5
#define RUNS_DEFAULT 7
#define REPEAT_DEFAULT 1000000
#define RETRIES 3 /* re-runs of a run another task disturbed */

#define TARGET_ESTABLISHED 85.0
#define TARGET_NEW_FLOW 350.0
#define TARGET_CYCLE 260.0

/* What a run must show to count; anything else aborts the benchmark. */
enum expect {
	EXPECT_PASS, /* bare xdp_pass: XDP_PASS */
	EXPECT_TX, /* bare xdp_tx_swap: XDP_TX */
	EXPECT_SHIM, /* shim -> xdp_pass: XDP_PASS, valid headers, LB idle */
	EXPECT_LB_FORWARD, /* every packet balanced as an established flow */
	EXPECT_LB_NEW, /* every packet balanced as a new flow */
	EXPECT_LB_MISS, /* every packet passed as "not a service" */
	EXPECT_FIB, /* prof_fib: XDP_REDIRECT, LB idle */
};

struct env {
	struct bench *skel;
	struct pkt tmpl;
	int uplink_ifindex;
	int cpu;
	unsigned int runs;
	__u32 repeat;
	bool profile;
	bool with_policy; /* time established and new flows with policy too */
	const char *only; /* run just this LB scenario (for perf), NULL: all */
	unsigned int groups[2]; /* backend counts; 0 ends the list */
	__u32 ct_size; /* conntrack entries per family, established and new flow */
	__u32 cycle_ct_size; /* the same for the 1M-flow cycle */
	/* The LB under test, NULL between loads. */
	struct xdp_lb *lb;
	struct lb_maps maps;
	unsigned int backends;
	__u32 lb_ct_size; /* the conntrack size it was loaded with */
	unsigned int disturbed; /* runs redone because another task ran */
};

/* One program as a run target: the fd test_run gets, and for the shim
 * the slot and mode it must use. */
struct target {
	int prog_fd;
	int slot; /* -1: not the shim */
	__u32 mode;
	enum expect expect;
	bool set_gen; /* enforce policy generation pol_gen for this run (0: none) */
	__u32 pol_gen;
};

struct figure {
	double med, min, max;
};

struct run {
	__u32 retval;
	__u32 out_len;
	__u8 out[256];
	double ns; /* wall clock per iteration */
	__u32 kernel_ns; /* the kernel's own per-iteration figure, truncated */
};

struct lb_counts {
	uint64_t st[SL_LB_STAT_MAX];
	uint64_t drops;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("xdp_bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- setup: CPU, namespace, topology ---- */

/* Pin to @want, or to the last CPU we may run on (CPU 0 takes most of
 * the housekeeping interrupts). */
static int pin_cpu(int want)
{
	cpu_set_t set;
	int cpu = want;

	if (cpu < 0) {
		if (sched_getaffinity(0, sizeof(set), &set))
			die("sched_getaffinity: %s", strerror(errno));
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				cpu = i;
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("cannot pin to CPU %d: %s", cpu, strerror(errno));
	return cpu;
}

/* Write @value to sysctl @path; a missing file is fatal only if @required
 * (no IPv6 sysctls on a kernel without IPv6 is fine). */
static void sysctl_write(const char *path, const char *value, bool required)
{
	FILE *f = fopen(path, "w");

	if (!f && errno == ENOENT && !required)
		return;
	if (!f || fputs(value, f) < 0 || fclose(f))
		die("%s: %s", path, strerror(errno));
}

/* Uplink 198.18.0.1/24 where packets arrive, backends on 198.18.1.0/24
 * behind a second veth, each with a permanent neighbour entry: the FIB
 * lookup then answers SUCCESS and the LB redirects, as on a node whose
 * neighbours are resolved. Everything dies with the namespace. */
static void topology_setup(struct env *env)
{
	FILE *ip;

	if (unshare(CLONE_NEWNET))
		die("unshare(CLONE_NEWNET): %s (run as root)", strerror(errno));
	/* No IPv6 autoconfiguration: no packet of its own may ever reach a
	 * program here and skew the counters the benchmark checks. */
	sysctl_write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1", false);
	sysctl_write("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1", false);
	ip = popen("ip -batch -", "w");
	if (!ip)
		die("ip: %s", strerror(errno));
	fprintf(ip, "link set lo up\n");
	fprintf(ip, "link add %s type veth peer name %sp\n", UPLINK, UPLINK);
	fprintf(ip, "link add %s type veth peer name %sp\n", BACKLINK, BACKLINK);
	fprintf(ip, "link set %s up\nlink set %sp up\n", UPLINK, UPLINK);
	fprintf(ip, "link set %s up\nlink set %sp up\n", BACKLINK, BACKLINK);
	fprintf(ip, "link add %s0 type veth peer name %s1\n", PARKING, PARKING);
	fprintf(ip, "addr add 198.18.0.1/24 dev %s\n", UPLINK);
	fprintf(ip, "addr add 198.18.1.1/24 dev %s\n", BACKLINK);
	for (int i = 0; i < BE_MAX; i++)
		fprintf(ip,
			"neigh replace 198.18.1.%d lladdr 02:00:c6:12:01:%02x dev %s nud permanent\n",
			BE_HOST_BASE + i, BE_HOST_BASE + i, BACKLINK);
	if (pclose(ip))
		die("setting up the veth topology with ip failed");
	sysctl_write("/proc/sys/net/ipv4/conf/all/forwarding", "1", true);
	env->uplink_ifindex = if_nametoindex(UPLINK);
	if (!env->uplink_ifindex)
		die("%s: %s", UPLINK, strerror(errno));
}

/* The frame every run sends: TCP/IPv4 client -> VIP, 54 bytes, valid
 * checksums. The shim's template is the same bytes. */
static void tmpl_build(struct pkt *p, const char *daddr)
{
	static const uint8_t mac_dst[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	static const uint8_t mac_src[6] = { 0x02, 0, 0, 0, 0, 0x02 };

	pkt_init(p);
	pkt_eth(p, mac_dst, mac_src, 0x0800);
	pkt_ipv4(p, CLIENT_ADDR, daddr, IPPROTO_TCP, NULL, 0, PKT_IP_DF);
	pkt_tcp(p, CLIENT_PORT, VIP_PORT, PKT_TCP_ACK, NULL, 0);
	pkt_finish(p);
	if (p->err || p->len != BENCH_HDR_LEN)
		die("building the template packet failed (%d)", p->err);
}

static void shim_set_tmpl(struct env *env, const char *daddr)
{
	tmpl_build(&env->tmpl, daddr);
	memcpy(env->skel->bss->bench_tmpl, env->tmpl.data, BENCH_HDR_LEN);
}

static void shim_slot_set(struct env *env, __u32 slot, int prog_fd)
{
	int map_fd = bpf_map__fd(env->skel->maps.bench_jmp);

	if (prog_fd < 0 ? bpf_map_delete_elem(map_fd, &slot)
			: bpf_map_update_elem(map_fd, &slot, &prog_fd, BPF_ANY))
		die("prog array slot %u: %s", slot, strerror(errno));
}

/* Restart the shim's flow index at @start on every CPU. */
static void shim_ctr_set(struct env *env, __u64 start)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu];
	__u32 zero = 0;

	for (int i = 0; i < ncpu; i++)
		vals[i] = start;
	if (bpf_map_update_elem(bpf_map__fd(env->skel->maps.bench_ctr), &zero, vals, BPF_ANY))
		die("bench_ctr: %s", strerror(errno));
}

/* test_run with repeat > 1 adds the program to the kernel's XDP
 * dispatcher and removes it afterwards, each a synchronize_rcu(): about
 * half a millisecond per run that the wall clock would count. A program
 * already in the dispatcher (attached in native mode somewhere) skips
 * both, so each timed entry program is parked on an interface that is
 * down and never sees a packet. */
static void park(const char *ifname, const struct bpf_program *prog)
{
	int ifindex = if_nametoindex(ifname);
	int err = bpf_xdp_attach(ifindex, bpf_program__fd(prog), XDP_FLAGS_DRV_MODE, NULL);

	if (!ifindex || err)
		die("attaching %s to %s: %s", bpf_program__name(prog), ifname,
		    strerror(ifindex ? -err : errno));
}

static void bench_setup(struct env *env)
{
	env->skel = bench__open_and_load();
	if (!env->skel)
		die("loading bpf/bench.bpf.c: %s", strerror(errno));
	park(PARKING "0", env->skel->progs.xdp_pass);
	park(PARKING "1", env->skel->progs.xdp_tx_swap);
	park(BACKLINK "p", env->skel->progs.bench_reset);
	shim_set_tmpl(env, VIP_ADDR);
	shim_slot_set(env, BENCH_SLOT_PASS, bpf_program__fd(env->skel->progs.xdp_pass));
	shim_slot_set(env, BENCH_SLOT_FIB, bpf_program__fd(env->skel->progs.prof_fib));
	env->skel->bss->bench_cycle_len = CYCLE_FLOWS;
	env->skel->bss->bench_fib_dst = inet_addr("198.18.1.2");
}

/* ---- the LB under test ---- */

/* Conntrack holds two entries per flow, and its LRU lists are per CPU
 * (BPF_F_NO_COMMON_LRU): one CPU only ever gets ct_size / ncpus of them.
 * The cycle's LB is sized so the pinned CPU alone holds the 1M flows, plus
 * 10%. The other scenarios get what the agent loads by default. */
static __u32 cycle_ct_size(void)
{
	return (__u32)libbpf_num_possible_cpus() * (2 * CYCLE_FLOWS + CYCLE_FLOWS / 5);
}

static void backend_addr(unsigned int i, char *buf, size_t len)
{
	snprintf(buf, len, "198.18.1.%u:%u", BE_HOST_BASE + i, BE_PORT);
}

static void lb_setup(struct env *env, unsigned int backends, __u32 ct_entries)
{
	struct loader_opts opts = { .maglev_size = SL_MAGLEV_DEFAULT_SIZE,
				    .ct_size = ct_entries,
				    .version = SL_DATAPATH_VERSION };
	struct sl_svc svc = { .name = "bench" };
	struct sl_svc_key key;
	struct addr_port ap;
	char text[ADDR_STR_MAX];
	int err;

	env->lb = loader_lb_load(&opts, &env->maps);
	if (!env->lb)
		die("loading the LB: %s", strerror(errno));
	snprintf(text, sizeof(text), "%s:%u/tcp", VIP_ADDR, VIP_PORT);
	err = addr_parse_service(text, &key);
	if (!err)
		err = lb_service_add(&env->maps, &key, &svc);
	for (unsigned int i = 0; !err && i < backends; i++) {
		backend_addr(i, text, sizeof(text));
		err = addr_parse_endpoint(text, &ap);
		if (!err)
			err = lb_backend_add(&env->maps, &key, &ap, 1);
	}
	if (err)
		die("configuring the service with %u backends: %s", backends, strerror(-err));
	env->backends = backends;
	env->lb_ct_size = ct_entries;
	shim_slot_set(env, BENCH_SLOT_LB, bpf_program__fd(env->lb->progs.sl_xdp_lb));
}

/* The prog array holds a reference to the LB: drop it first, or its maps
 * (for the cycle, a gigabyte of conntrack) would outlive the skeleton. */
static void lb_teardown(struct env *env)
{
	shim_slot_set(env, BENCH_SLOT_LB, -1);
	xdp_lb__destroy(env->lb);
	env->lb = NULL;
}

static void counts_read(const struct env *env, struct lb_counts *c)
{
	uint64_t v;
	int err = 0;

	memset(c, 0, sizeof(*c));
	if (!env->lb)
		return;
	for (__u32 i = 0; !err && i < SL_LB_STAT_MAX; i++)
		err = percpu_sum_u64(env->maps.lb_st, i, 1, &c->st[i]);
	for (__u32 i = 0; !err && i < SL_DROP_MAX; i++) {
		err = percpu_sum_u64(env->maps.drop_st, i, 1, &v);
		c->drops += v;
	}
	if (err)
		die("reading the LB counters: %s", strerror(-err));
}

/* ---- one checked run ---- */

/* Switch the LB to policy generation @gen (0: nothing checked), as the
 * agent's publication does: the entries of both stay in the maps. */
static void policy_enforce(const struct env *env, __u32 gen)
{
	struct sl_pol_state st = { .gen = gen };
	__u32 zero = 0;

	if (bpf_map_update_elem(env->maps.pol_gen, &zero, &st, BPF_ANY))
		die("switching sl_pol_gen: %s", strerror(errno));
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void test_run(const struct env *env, int prog_fd, __u32 repeat, struct run *r)
{
	struct xdp_md ctx = { .data_end = env->tmpl.len, .ingress_ifindex = env->uplink_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = env->tmpl.data,
		    .data_size_in = env->tmpl.len, .data_out = r->out,
		    .data_size_out = sizeof(r->out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = repeat);
	double t0 = now_ns();

	if (bpf_prog_test_run_opts(prog_fd, &opts))
		die("BPF_PROG_TEST_RUN: %s", strerror(errno));
	r->ns = (now_ns() - t0) / repeat;
	r->kernel_ns = opts.duration;
	r->retval = opts.retval;
	r->out_len = opts.data_size_out;
}

static const char *verdict_name(__u32 v)
{
	static const char *const names[] = { "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX",
					     "XDP_REDIRECT" };

	return v < sizeof(names) / sizeof(names[0]) ? names[v] : "unknown";
}

static void want_verdict(const struct run *r, __u32 want, const char *what)
{
	if (r->retval != want)
		die("%s: verdict %s, want %s", what, verdict_name(r->retval), verdict_name(want));
}

static __u16 get16(const __u8 *b)
{
	return (__u16)(b[0] << 8 | b[1]);
}

/* The last output frame is a correct DNAT to one of the backends. */
static void check_balanced(const struct env *env, const struct run *r, const char *what)
{
	const __u8 *ip = r->out + 14, *tcp = ip + 20;
	__u32 host = ntohl(*(const __be32 *)(ip + 16)) - ntohl(inet_addr("198.18.1.0"));

	if (r->retval != XDP_REDIRECT && r->retval != XDP_TX)
		die("%s: verdict %s, want XDP_REDIRECT or XDP_TX: the packet was not load-balanced",
		    what, verdict_name(r->retval));
	if (r->out_len != BENCH_HDR_LEN)
		die("%s: output is %u bytes, want %u", what, r->out_len, BENCH_HDR_LEN);
	if (host < BE_HOST_BASE || host >= BE_HOST_BASE + env->backends)
		die("%s: output daddr %u.%u.%u.%u is not a backend", what, ip[16], ip[17], ip[18],
		    ip[19]);
	if (get16(tcp + 2) != BE_PORT)
		die("%s: output dport %u, want backend port %u", what, get16(tcp + 2), BE_PORT);
	if (r->out[5] != host || ip[8] != PKT_IP_TTL - 1)
		die("%s: output MAC or TTL not forwarded (dst mac ..:%02x, ttl %u)", what,
		    r->out[5], ip[8]);
	if (!csum_ipv4_hdr_ok(ip) || !csum_l4_ok(r->out, r->out_len))
		die("%s: output checksum wrong", what);
}

#define DELTA(a, b, stat) ((a)->st[stat] - (b)->st[stat])

/* The LB counted exactly @n packets, all of the kind @e expects. */
static void check_counts(const struct lb_counts *b, const struct lb_counts *a, __u64 n,
			 enum expect e, const char *what)
{
	__u64 fwd = DELTA(a, b, SL_LB_FORWARD), nf = DELTA(a, b, SL_LB_NEW_FLOW);
	__u64 out = DELTA(a, b, SL_LB_TX) + DELTA(a, b, SL_LB_REDIRECT);
	__u64 miss = DELTA(a, b, SL_LB_NOT_SERVICE);
	__u64 want_fwd = e == EXPECT_LB_FORWARD ? n : 0, want_new = e == EXPECT_LB_NEW ? n : 0;
	__u64 want_out = want_fwd + want_new, want_miss = e == EXPECT_LB_MISS ? n : 0;

	if (fwd == want_fwd && nf == want_new && out == want_out && miss == want_miss &&
	    a->drops == b->drops)
		return;
	die("%s: LB counters over %llu packets: forward %llu (want %llu), new_flow %llu "
	    "(want %llu), tx+redirect %llu (want %llu), not_service %llu (want %llu), "
	    "fib_pass %llu, drops %llu%s",
	    what, (unsigned long long)n, (unsigned long long)fwd, (unsigned long long)want_fwd,
	    (unsigned long long)nf, (unsigned long long)want_new, (unsigned long long)out,
	    (unsigned long long)want_out, (unsigned long long)miss, (unsigned long long)want_miss,
	    (unsigned long long)DELTA(a, b, SL_LB_FIB_PASS),
	    (unsigned long long)(a->drops - b->drops),
	    e == EXPECT_LB_FORWARD && nf ? " (conntrack lost flows: LRU eviction?)" : "");
}

static void check_run(const struct env *env, const struct target *t, const struct run *r,
		      const struct lb_counts *b, const struct lb_counts *a, __u32 n,
		      const char *what)
{
	switch (t->expect) {
	case EXPECT_PASS:
		want_verdict(r, XDP_PASS, what);
		break;
	case EXPECT_TX:
		want_verdict(r, XDP_TX, what);
		break;
	case EXPECT_FIB:
		want_verdict(r, XDP_REDIRECT, what);
		break;
	case EXPECT_SHIM:
	case EXPECT_LB_MISS:
		want_verdict(r, XDP_PASS, what);
		if (!csum_ipv4_hdr_ok(r->out + 14) || !csum_l4_ok(r->out, r->out_len))
			die("%s: the shim's output checksums are wrong", what);
		break;
	case EXPECT_LB_FORWARD:
	case EXPECT_LB_NEW:
		check_balanced(env, r, what);
		break;
	}
	/* Programs other than the LB must leave its counters alone. */
	check_counts(b, a, n,
		     t->expect == EXPECT_SHIM || t->expect == EXPECT_FIB ? EXPECT_PASS : t->expect,
		     what);
}

/* Another task ran on our CPU during the run when the wall clock exceeds
 * the kernel's figure (which leaves out time given away in cond_resched)
 * by more than its truncation and the syscall's own cost. */
static bool disturbed(const struct run *r)
{
	return r->ns > r->kernel_ns + 1.0 + 0.02 * r->kernel_ns;
}

/* Run @t once with @n iterations, checked; returns ns per iteration. A
 * disturbed run is redone when @retry (not for runs that must happen
 * exactly once, such as a prefill). */
static double run_checked(struct env *env, const struct target *t, __u32 n, bool retry,
			  const char *what)
{
	struct lb_counts before, after;
	struct run r;

	for (int attempt = 0;; attempt++) {
		if (t->slot >= 0) {
			env->skel->bss->bench_slot = t->slot;
			env->skel->bss->bench_mode = t->mode;
		}
		if (t->set_gen)
			policy_enforce(env, t->pol_gen);
		counts_read(env, &before);
		test_run(env, t->prog_fd, n, &r);
		counts_read(env, &after);
		check_run(env, t, &r, &before, &after, n, what);
		if (!retry || !disturbed(&r) || attempt == RETRIES)
			return r.ns;
		env->disturbed++;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static struct figure figure_of(double *ns, unsigned int n)
{
	struct figure f;

	qsort(ns, n, sizeof(*ns), cmp_double);
	f.min = ns[0];
	f.max = ns[n - 1];
	f.med = n % 2 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2;
	return f;
}

/* One warm-up run of each target, then env->runs timed runs of each,
 * interleaved so drift (frequency, other tasks) hits all alike. */
static void measure(struct env *env, const struct target *t, unsigned int nt, struct figure *out,
		    const char *what)
{
	double ns[nt][env->runs];

	for (unsigned int i = 0; i < nt; i++)
		run_checked(env, &t[i], env->repeat, true, what);
	for (unsigned int r = 0; r < env->runs; r++)
		for (unsigned int i = 0; i < nt; i++)
			ns[i][r] = run_checked(env, &t[i], env->repeat, true, what);
	for (unsigned int i = 0; i < nt; i++)
		out[i] = figure_of(ns[i], env->runs);
}

/* ---- scenarios ---- */

enum row_kind { ROW_BARE, ROW_LB };

struct row {
	char name[64];
	enum row_kind kind;
	struct figure fig; /* bare: the program; LB: shim -> LB */
	struct figure ref; /* LB: shim -> xdp_pass in the same mode */
	unsigned int backends; /* LB rows */
	__u32 ct_size; /* LB rows: conntrack entries per family */
	double target; /* 0: none */
	const char *target_name;
};

#define ROWS_MAX 20

struct report {
	struct row rows[ROWS_MAX];
	unsigned int n;
	double pass_ns;
	/* established and new flow rows without and with policy, -1: none */
	int pol_est[2], pol_new[2];
	size_t pol_entries;
};

static struct row *row_add(struct report *rep, enum row_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct row *row_add(struct report *rep, enum row_kind kind, const char *fmt, ...)
{
	struct row *row = &rep->rows[rep->n++];
	va_list ap;

	memset(row, 0, sizeof(*row));
	row->kind = kind;
	va_start(ap, fmt);
	vsnprintf(row->name, sizeof(row->name), fmt, ap);
	va_end(ap);
	return row;
}

static double row_above(const struct report *rep, const struct row *row)
{
	return row->kind == ROW_LB ? row->fig.med - row->ref.med : row->fig.med - rep->pass_ns;
}

static void bench_bare(struct env *env, struct report *rep)
{
	struct target t[2] = {
		{ bpf_program__fd(env->skel->progs.xdp_pass), -1, 0, EXPECT_PASS, false, 0 },
		{ bpf_program__fd(env->skel->progs.xdp_tx_swap), -1, 0, EXPECT_TX, false, 0 },
	};
	struct figure f[2];
	struct run r;

	/* One iteration first: the swap must really swap. */
	test_run(env, t[1].prog_fd, 1, &r);
	if (r.retval != XDP_TX || memcmp(r.out, env->tmpl.data + 6, 6) ||
	    memcmp(r.out + 6, env->tmpl.data, 6))
		die("xdp_tx_swap did not swap the MAC addresses");
	measure(env, t, 2, f, "bare programs");
	row_add(rep, ROW_BARE, "bare XDP_PASS")->fig = f[0];
	row_add(rep, ROW_BARE, "MAC-swap XDP_TX")->fig = f[1];
	rep->pass_ns = f[0].med;
}

/* Time shim -> @slot against shim -> xdp_pass in shim mode @mode. */
static struct row *bench_shim(struct env *env, struct report *rep, __u32 slot, __u32 mode,
			      enum expect e, const char *name)
{
	int shim = bpf_program__fd(env->skel->progs.bench_reset);
	struct target t[2] = {
		{ shim, BENCH_SLOT_PASS, mode, EXPECT_SHIM, false, 0 },
		{ shim, slot, mode, e, false, 0 },
	};
	struct figure f[2];
	struct row *row;

	measure(env, t, 2, f, name);
	row = row_add(rep, ROW_LB, "%s (%u backends)", name, env->backends);
	row->ref = f[0];
	row->fig = f[1];
	row->backends = env->backends;
	row->ct_size = env->lb_ct_size;
	return row;
}

static struct row *bench_lb(struct env *env, struct report *rep, __u32 mode, enum expect e,
			    const char *name)
{
	return bench_shim(env, rep, BENCH_SLOT_LB, mode, e, name);
}

/* One packet makes the flow, then every timed packet is that flow's. */
/* The packet that makes the established flow: a new flow, checked. */
static void first_packet(struct env *env, const char *what)
{
	struct target first = { bpf_program__fd(env->skel->progs.bench_reset),
				BENCH_SLOT_LB,
				BENCH_FIXED,
				EXPECT_LB_NEW,
				false,
				0 };

	run_checked(env, &first, 1, false, what);
}

static void bench_established(struct env *env, struct report *rep, const char *name)
{
	struct row *row;

	first_packet(env, "first packet of the established flow");
	row = bench_lb(env, rep, BENCH_FIXED, EXPECT_LB_FORWARD, name);
	row->target = TARGET_ESTABLISHED;
	row->target_name = "established flow";
}

/* Make the 1M flows first (each a new flow, in index order), then time
 * lookups of them in a permuted order: every timed packet is a conntrack
 * hit in a table of 2M entries. Runs on an LB of its own, loaded empty. */
static void bench_cycle(struct env *env, struct report *rep)
{
	struct target prefill = { bpf_program__fd(env->skel->progs.bench_reset),
				  BENCH_SLOT_LB,
				  BENCH_CYCLE,
				  EXPECT_LB_NEW,
				  false,
				  0 };
	struct row *row;

	env->skel->bss->bench_cycle_mult = 1;
	shim_ctr_set(env, 0);
	run_checked(env, &prefill, CYCLE_FLOWS, false, "1M-flow prefill");
	env->skel->bss->bench_cycle_mult = CYCLE_STRIDE;
	row = bench_lb(env, rep, BENCH_CYCLE, EXPECT_LB_FORWARD, "LB 1M-flow cycle");
	row->target = TARGET_CYCLE;
	row->target_name = "1M-flow cycle";
	if (!env->profile)
		return;
	/* Profile: the same lookups in the order the entries were allocated,
	 * to show how much of the cycle is memory locality. */
	env->skel->bss->bench_cycle_mult = 1;
	bench_lb(env, rep, BENCH_CYCLE, EXPECT_LB_FORWARD, "  cycle in allocation order");
}

/* A tuple never seen before every packet. The warm-up run alone makes
 * 1M flows, far more than one CPU's share of a default-sized conntrack:
 * every timed insert evicts an old entry, as on a busy node. */
static void bench_new_flow(struct env *env, struct report *rep, const char *name)
{
	struct row *row;

	shim_ctr_set(env, 0);
	row = bench_lb(env, rep, BENCH_UNIQUE, EXPECT_LB_NEW, name);
	row->target = TARGET_NEW_FLOW;
	row->target_name = "new flow";
}

/* Time @mode through the LB with no policy and with generation @gen
 * enforced, alternating run by run on the same LB and the same flows: the
 * cost policy adds, free of drift between separate measurements. */
static void bench_policy_pair(struct env *env, struct report *rep, __u32 mode, enum expect e,
			      __u32 gen, const char *name, int rows[2])
{
	int shim = bpf_program__fd(env->skel->progs.bench_reset);
	struct target t[3] = {
		{ shim, BENCH_SLOT_PASS, mode, EXPECT_SHIM, false, 0 },
		{ shim, BENCH_SLOT_LB, mode, e, true, 0 },
		{ shim, BENCH_SLOT_LB, mode, e, true, gen },
	};
	struct figure f[3];

	measure(env, t, 3, f, name);
	for (int i = 0; i < 2; i++) {
		struct row *row = row_add(rep, ROW_LB, "%s, policy %s (%u backends)", name,
					  i ? "on" : "off", env->backends);

		row->ref = f[0];
		row->fig = f[1 + i];
		row->backends = env->backends;
		row->ct_size = env->lb_ct_size;
		rows[i] = (int)(row - rep->rows);
	}
}

/* A node's worth of policy (bench_policy.h) on the LB: established and
 * new flows with and without it. The conntrack is emptied first so the
 * established flow begins (allowed) under the policy. */
static void bench_policy(struct env *env, struct report *rep)
{
	char why[256] = "";
	__u32 gen;

	map_clear(env->maps.ct4);
	if (bench_policy_load(&env->maps, env->backends, &rep->pol_entries, why, sizeof(why)) ||
	    pol_gen_read(&env->maps, &gen))
		die("loading the benchmark policy: %s", why);
	first_packet(env, "first packet of the established flow, policy on");
	bench_policy_pair(env, rep, BENCH_FIXED, EXPECT_LB_FORWARD, gen, "LB established",
			  rep->pol_est);
	shim_ctr_set(env, 0);
	bench_policy_pair(env, rep, BENCH_UNIQUE, EXPECT_LB_NEW, gen, "LB new flow", rep->pol_new);
	policy_enforce(env, gen);
}

/* Where the time goes: the LB's path for a packet to no service (parse,
 * counters, a conntrack miss, a service miss), and the FIB lookup and
 * redirect alone, which the established path adds to a conntrack hit. */
static void bench_profile(struct env *env, struct report *rep)
{
	shim_set_tmpl(env, VIP_MISS_ADDR);
	bench_lb(env, rep, BENCH_FIXED, EXPECT_LB_MISS, "  miss: not a service");
	shim_set_tmpl(env, VIP_ADDR);
	bench_shim(env, rep, BENCH_SLOT_FIB, BENCH_FIXED, EXPECT_FIB,
		   "  FIB lookup + redirect only");
}

static bool selected(const struct env *env, const char *name)
{
	return !env->only || !strcmp(env->only, name);
}

/* Established and new flows (and the miss path) on an LB with the
 * agent's conntrack size, then the cycle on one sized for it. */
static void bench_group(struct env *env, struct report *rep, unsigned int backends)
{
	/* The miss path is a profiling figure: only on request. */
	bool miss = (env->profile || env->only) && selected(env, "miss");
	bool policy = env->with_policy && selected(env, "policy");

	if (selected(env, "established") || selected(env, "new") || miss || policy) {
		lb_setup(env, backends, env->ct_size);
		if (selected(env, "established"))
			bench_established(env, rep, "LB established");
		if (selected(env, "new"))
			bench_new_flow(env, rep, "LB new flow");
		if (miss)
			bench_profile(env, rep);
		/* Policy once, with the first backend count; last: it stays. */
		if (policy && rep->pol_est[0] < 0)
			bench_policy(env, rep);
		lb_teardown(env);
	}
	if (selected(env, "cycle")) {
		lb_setup(env, backends, env->cycle_ct_size);
		bench_cycle(env, rep);
		lb_teardown(env);
	}
}

/* ---- report ---- */

static void print_table(const struct env *env, const struct report *rep)
{
	printf("\nSluice XDP LB: BPF_PROG_TEST_RUN, %u iterations/run, median of %u runs, CPU %d\n",
	       env->repeat, env->runs, env->cpu);
	printf("Maglev tables of %u slots; ct: conntrack entries per family, of which the\n"
	       "pinned CPU gets 1/%d (the agent's default is %u)\n\n",
	       SL_MAGLEV_DEFAULT_SIZE, libbpf_num_possible_cpus(), SL_CT_DEFAULT_SIZE);
	printf("%-44s %7s %8s %15s   %s\n", "scenario", "ct", "ns/pkt", "above XDP_PASS", "target");
	for (unsigned int i = 0; i < rep->n; i++) {
		const struct row *row = &rep->rows[i];
		double above = row_above(rep, row);
		char ct[16] = "";

		if (row->kind == ROW_LB)
			snprintf(ct, sizeof(ct), "%u", row->ct_size);
		if (i == 0) {
			/* "—" is 3 bytes and one column wide. */
			printf("%-44s %7s %8.1f %17s\n", row->name, ct, row->fig.med, "—");
			continue;
		}
		printf("%-44s %7s %8.1f %15.1f", row->name, ct, rep->pass_ns + above, above);
		if (row->target)
			printf("   ≤ %.0f %s", row->target,
			       above <= row->target ? "met" : "NOT met");
		putchar('\n');
	}
}

static void print_details(const struct env *env, const struct report *rep)
{
	printf("\nraw test_run figures, ns/pkt: median [min, max] of %u runs\n", env->runs);
	for (unsigned int i = 0; i < rep->n; i++) {
		const struct row *row = &rep->rows[i];

		if (row->kind == ROW_BARE) {
			printf("  %-46s %7.1f [%.1f, %.1f]\n", row->name, row->fig.med,
			       row->fig.min, row->fig.max);
			continue;
		}
		printf("  %-46s %7.1f [%.1f, %.1f]\n", row->name, row->fig.med, row->fig.min,
		       row->fig.max);
		printf("    %-44s %7.1f [%.1f, %.1f]\n", "shim -> xdp_pass, same mode",
		       row->ref.med, row->ref.min, row->ref.max);
	}
	if (env->disturbed)
		printf("  (%u runs were redone: another task ran on the CPU)\n", env->disturbed);
}

static void print_targets(const struct report *rep)
{
	static const char *const kinds[] = { "established flow", "new flow", "1M-flow cycle" };

	putchar('\n');
	for (unsigned int k = 0; k < 3; k++) {
		bool met = true, any = false;
		double target = 0;
		char figs[128] = "";

		for (unsigned int i = 0; i < rep->n; i++) {
			const struct row *row = &rep->rows[i];
			size_t len = strlen(figs);

			if (!row->target_name || strcmp(row->target_name, kinds[k]))
				continue;
			any = true;
			target = row->target;
			met &= row_above(rep, row) <= row->target;
			snprintf(figs + len, sizeof(figs) - len, "%s%u backends %.1f",
				 len ? ", " : "", row->backends, row_above(rep, row));
		}
		if (any)
			printf("target %-17s ≤ %3.0f ns above XDP_PASS: %-7s (%s ns)\n", kinds[k],
			       target, met ? "met" : "NOT met", figs);
	}
}

/* What policy added, against the same scenarios without it. */
static void print_policy(const struct report *rep)
{
	const int *pairs[2] = { rep->pol_est, rep->pol_new };
	static const char *const names[] = { "established flow", "new flow" };

	if (rep->pol_est[0] < 0)
		return;
	printf("\npolicy: %d endpoints, %d rules (%zu map entries); off and on alternate run by run\n",
	       BENCH_POL_ENDPOINTS, BENCH_POL_RULES, rep->pol_entries);
	for (int i = 0; i < 2; i++) {
		double off = rep->pass_ns + row_above(rep, &rep->rows[pairs[i][0]]);
		double on = rep->pass_ns + row_above(rep, &rep->rows[pairs[i][1]]);

		printf("  %-17s %7.1f ns -> %7.1f ns per packet: %+.1f ns, ratio on/off %.2f\n",
		       names[i], off, on, on - off, on / off);
	}
}

/* ---- main ---- */

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--runs N] [--repeat N] [--cpu N] [--backends N] [--only NAME]\n"
		"          [--ct-size N] [--cycle-ct-size N] [--profile]\n"
		"  --runs N      timed runs per figure, median taken (default %d, at least %d)\n"
		"  --repeat N    iterations per run (default %d)\n"
		"  --cpu N       CPU to pin to (default: the last one allowed)\n"
		"  --backends N  one service of N backends (1..%d) instead of 10, then 100\n"
		"  --only NAME   one LB scenario: established, cycle, new, miss or policy\n"
		"  --ct-size N   conntrack entries per family for established, new flow\n"
		"                and miss (default %u, the agent's default)\n"
		"  --cycle-ct-size N  the same for the 1M-flow cycle (default: what it\n"
		"                needs on one CPU, %u here)\n"
		"  --profile     also time LB variants that show where the time goes\n"
		"  --no-policy   leave out established and new flows with policy enforced\n",
		prog, RUNS_DEFAULT, RUNS_MIN, REPEAT_DEFAULT, BE_MAX, SL_CT_DEFAULT_SIZE,
		cycle_ct_size());
	exit(2);
}

static void parse_args(struct env *env, int argc, char **argv)
{
	static const struct option opts[] = { { "runs", required_argument, NULL, 'r' },
					      { "repeat", required_argument, NULL, 'n' },
					      { "cpu", required_argument, NULL, 'c' },
					      { "profile", no_argument, NULL, 'p' },
					      { "backends", required_argument, NULL, 'b' },
					      { "only", required_argument, NULL, 'o' },
					      { "ct-size", required_argument, NULL, 's' },
					      { "cycle-ct-size", required_argument, NULL, 'C' },
					      { "no-policy", no_argument, NULL, 'P' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	int c;

	env->runs = RUNS_DEFAULT;
	env->repeat = REPEAT_DEFAULT;
	env->cpu = -1;
	env->groups[0] = 10;
	env->groups[1] = 100;
	env->ct_size = SL_CT_DEFAULT_SIZE;
	env->cycle_ct_size = cycle_ct_size();
	env->with_policy = true;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			env->runs = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			env->repeat = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			env->cpu = atoi(optarg);
			break;
		case 'p':
			env->profile = true;
			break;
		case 'P':
			env->with_policy = false;
			break;
		case 'b':
			env->groups[0] = strtoul(optarg, NULL, 10);
			env->groups[1] = 0;
			if (!env->groups[0] || env->groups[0] > BE_MAX)
				usage(argv[0]);
			break;
		case 'o':
			env->only = optarg;
			break;
		case 's':
			env->ct_size = strtoul(optarg, NULL, 10);
			if (!env->ct_size)
				usage(argv[0]);
			break;
		case 'C':
			env->cycle_ct_size = strtoul(optarg, NULL, 10);
			if (!env->cycle_ct_size)
				usage(argv[0]);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc || env->runs < RUNS_MIN || env->runs > 99 || !env->repeat)
		usage(argv[0]);
	if (env->only && strcmp(env->only, "established") && strcmp(env->only, "cycle") &&
	    strcmp(env->only, "new") && strcmp(env->only, "miss") && strcmp(env->only, "policy"))
		usage(argv[0]);
}

int main(int argc, char **argv)
{
	static struct env env;
	static struct report rep = { .pol_est = { -1, -1 }, .pol_new = { -1, -1 } };

	parse_args(&env, argc, argv);
	log_set_level(LOG_WARN);
	env.cpu = pin_cpu(env.cpu);
	topology_setup(&env);
	bench_setup(&env);
	fprintf(stderr, "xdp_bench: CPU %d, %u runs of %u iterations per figure\n", env.cpu,
		env.runs, env.repeat);
	bench_bare(&env, &rep);
	for (unsigned int i = 0; i < 2 && env.groups[i]; i++)
		bench_group(&env, &rep, env.groups[i]);
	print_table(&env, &rep);
	print_details(&env, &rep);
	print_targets(&rep);
	print_policy(&rep);
	bench__destroy(env.skel);
	return 0;
}
