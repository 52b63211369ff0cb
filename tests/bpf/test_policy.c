/* BPF_PROG_TEST_RUN tests of policy in the XDP program: a policy state is
 * compiled and published with the agent's own code (policy_compile.c,
 * policy_maps.c), then packets are run through sl_xdp_lb and the verdict,
 * the output bytes, conntrack, the counters and the ring-buffer events
 * are checked. Runs in a network namespace of its own, where the FIB knows
 * no route: an allowed packet comes out as XDP_PASS (DNAT'd when it was
 * for a service), a denied one as XDP_DROP, unchanged.
 *
 *   world 198.51.100.1 / 203.0.113.x      web 198.18.0.2, fd00::2 (app=web)
 *                 \                        /
 *                  sl_xdp_lb: VIP 198.19.0.10:80/tcp, [fd00:ff::10]:80/tcp
 *                  /                       \
 *   db 198.18.1.2:8080, fd00:0:0:1::2 (app=db)   cache 198.18.1.3 (app=cache)
 *
 * Usage: test_policy [name-substring]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "harness.h"
#include "lb.h"
#include "lb_fixture.h"
#include "loader.h"
#include "log.h"
#include "pkt.h"
#include "policy.h"
#include "policy_maps.h"
#include "sluice/conntrack.h"
#include "sluice/drop_reason.h"
#include "sluice/events.h"
#include "xdp_lb.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define WEB4 "198.18.0.2"
#define WEB6 "fd00::2"
#define DB4 "198.18.1.2"
#define DB6 "fd00:0:0:1::2"
#define CACHE4 "198.18.1.3"
#define WORLD4 "198.51.100.1"
#define VIP4 "198.19.0.10"
#define VIP6 "fd00:ff::10"
#define DB_PORT 8080

static struct xdp_lb *skel;
static struct lb_maps maps;
static int prog_fd;
static struct ring_buffer *events;
static struct sl_pol_event last_event;
static int n_events;

static const uint8_t mac_a[6] = { 0x02, 0, 0, 0, 0xaa, 0x01 };
static const uint8_t mac_b[6] = { 0x02, 0, 0, 0, 0xbb, 0x01 };

/* ---- policy states, written the way the config says them ---- */

struct state {
	struct pol_state st;
	struct pol_endpoint eps[8];
	struct pol_ruleset sets[2];
	struct pol_rule rules[2][8];
};

static void endpoint(struct state *s, const char *addr, const char *labels)
{
	struct pol_endpoint *ep = &s->eps[s->st.n_endpoints++];
	char why[POL_ERR_MAX];

	memset(ep, 0, sizeof(*ep));
	ASSERT_OK(pol_prefix_parse(addr, false, &ep->addr, why, sizeof(why)), addr);
	ASSERT_OK(pol_labels_parse(labels, &ep->labels, why, sizeof(why)), labels);
}

/* The usual endpoints, and empty rule sets "a" (keep) and "b" (@recheck_b). */
static void state_init(struct state *s, bool recheck_b)
{
	memset(s, 0, sizeof(*s));
	s->st.endpoints = s->eps;
	s->st.rulesets = s->sets;
	s->st.n_rulesets = 2;
	strcpy(s->sets[0].name, "a");
	strcpy(s->sets[1].name, "b");
	s->sets[1].established = recheck_b ? POL_EST_RECHECK : POL_EST_KEEP;
	s->sets[0].rules = s->rules[0];
	s->sets[1].rules = s->rules[1];
	endpoint(s, WEB4, "app=web");
	endpoint(s, WEB6, "app=web");
	endpoint(s, DB4, "app=db");
	endpoint(s, DB6, "app=db");
	endpoint(s, CACHE4, "app=cache");
}

/* Rule @id in rule set @set ("a" = 0, "b" = 1); @ports/@proto NULL: any. */
static void rule(struct state *s, int set, uint32_t id, enum pol_action action, const char *from,
		 const char *to, const char *ports, const char *proto)
{
	struct pol_ruleset *rs = &s->sets[set];
	struct pol_rule *r = &rs->rules[rs->n_rules++];
	char why[POL_ERR_MAX];

	memset(r, 0, sizeof(*r));
	r->id = id;
	r->action = action;
	r->protos = POL_ANY_PROTO;
	ASSERT_OK(pol_peer_parse(from, &r->from, why, sizeof(why)), from);
	ASSERT_OK(pol_selector_parse(to, &r->to, why, sizeof(why)), to);
	if (ports)
		ASSERT_OK(pol_ports_parse(ports, r->ports, &r->n_ports, why, sizeof(why)), ports);
	if (proto)
		ASSERT_OK(pol_protos_parse(proto, &r->protos, why, sizeof(why)), proto);
}

static struct pol_ident_table idents;

/* Compile and publish @s; returns the generation now enforced. */
static uint32_t publish(const struct state *s)
{
	struct pol_compiled c;
	char why[POL_ERR_MAX] = "";
	uint32_t gen = 0;

	if (!ASSERT_OK(pol_state_validate(&s->st, why, sizeof(why)), why))
		return 0;
	if (!ASSERT_OK(pol_compile(&s->st, &idents, &c, why, sizeof(why)), why))
		return 0;
	ASSERT_OK(pol_publish(&maps, &c, &gen, why, sizeof(why)), why);
	pol_ident_table_free(&idents);
	idents = c.idents;
	memset(&c.idents, 0, sizeof(c.idents));
	pol_compiled_free(&c);
	return gen;
}

static uint32_t ident(const char *labels)
{
	struct pol_labels l;
	char why[POL_ERR_MAX];

	pol_labels_parse(labels, &l, why, sizeof(why));
	return pol_ident_of_labels(&idents, &l);
}

/* ---- packets ---- */

static void build_tcp(struct pkt *p, const char *src, uint16_t sport, const char *dst,
		      uint16_t dport, uint8_t flags)
{
	bool v6 = is_v6(src);

	pkt_init(p);
	pkt_eth(p, mac_b, mac_a, v6 ? 0x86dd : 0x0800);
	if (v6)
		pkt_ipv6(p, src, dst, IPPROTO_TCP);
	else
		pkt_ipv4(p, src, dst, IPPROTO_TCP, NULL, 0, 0);
	pkt_tcp(p, sport, dport, flags, "ping", 4);
	pkt_finish(p);
}

static void build_udp(struct pkt *p, const char *src, uint16_t sport, const char *dst,
		      uint16_t dport)
{
	pkt_init(p);
	pkt_eth(p, mac_b, mac_a, 0x0800);
	pkt_ipv4(p, src, dst, IPPROTO_UDP, NULL, 0, 0);
	pkt_udp(p, sport, dport, "ping", 4);
	pkt_finish(p);
}

/* The interface routes to db's subnets go through: packets from db come
 * in there (the reverse-path check of flows an endpoint opens). */
static uint32_t ifindex_db;

static uint32_t run_on(const struct pkt *in, struct pkt *out, uint32_t ifindex)
{
	struct xdp_md ctx = { .data_end = in->len, .ingress_ifindex = ifindex };
	size_t out_len = sizeof(out->data);
	uint32_t verdict = ~0u;

	pkt_init(out);
	ASSERT_OK(prog_run_ctx(prog_fd, in->data, in->len, out->data, &out_len, &ctx, sizeof(ctx),
			       &verdict),
		  "prog_run");
	out->len = out_len;
	return verdict;
}

/* From lo: where every source but db's subnets is routed. */
static uint32_t run(const struct pkt *in, struct pkt *out)
{
	return run_on(in, out, 1);
}

/* Send TCP @src:@sport -> @dst:@dport; expect @verdict and, for XDP_PASS,
 * the packet addressed to @want_dst:@want_port (the backend after DNAT,
 * or the same address when there was nothing to translate); for XDP_DROP
 * the packet unchanged. */
static void expect_tcp(const char *name, const char *src, uint16_t sport, const char *dst,
		       uint16_t dport, uint8_t flags, uint32_t verdict, const char *want_dst,
		       uint16_t want_port)
{
	struct pkt in, out, want;

	build_tcp(&in, src, sport, dst, dport, flags);
	ASSERT_EQ(run(&in, &out), verdict, name);
	if (verdict == XDP_DROP) {
		ASSERT_BYTES(in.data, in.len, out.data, out.len, name);
		return;
	}
	build_tcp(&want, src, sport, want_dst, want_port, flags);
	ASSERT_BYTES(want.data, want.len, out.data, out.len, name);
}

/* ---- counters and events ---- */

static uint64_t pol_stat(enum sl_pol_stat i)
{
	__u64 n = 0;

	lb_read_counter(maps.pol_st, i, &n);
	return n;
}

static uint64_t drop_stat(void)
{
	__u64 n = 0;

	lb_read_counter(maps.drop_st, SL_DROP_POLICY, &n);
	return n;
}

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size >= sizeof(last_event))
		memcpy(&last_event, data, sizeof(last_event));
	n_events++;
	return 0;
}

static void events_drain(void)
{
	ring_buffer__consume(events);
	n_events = 0;
	memset(&last_event, 0, sizeof(last_event));
}

/* Every case starts with no flow, no policy and fresh counters. */
static void reset(void)
{
	struct sl_pol_state zero_gen = {};
	struct pol_compiled none = {};
	char why[POL_ERR_MAX];
	__u32 zero = 0;
	uint32_t gen;

	map_clear(maps.ct4);
	map_clear(maps.ct6);
	/* An empty generation empties the maps; then back to "no policy". */
	pol_publish(&maps, &none, &gen, why, sizeof(why));
	bpf_map_update_elem(maps.pol_gen, &zero, &zero_gen, BPF_ANY);
	map_clear(maps.pol_rule_st);
	for (__u32 i = 0; i < SL_POL_ST_MAX; i++) {
		__u64 vals[256] = {};

		bpf_map_update_elem(maps.pol_st, &i, vals, BPF_ANY);
	}
	{
		__u32 i = SL_DROP_POLICY;
		__u64 vals[256] = {};

		bpf_map_update_elem(maps.drop_st, &i, vals, BPF_ANY);
	}
	pol_ident_table_free(&idents);
	events_drain();
}

static bool ct_has(const char *src, uint16_t sport, const char *dst, uint16_t dport,
		   struct sl_ct_entry *e)
{
	struct sl_ct4_key key = { .sport = htons(sport), .dport = htons(dport), .proto = 6 };

	inet_pton(AF_INET, src, &key.saddr);
	inet_pton(AF_INET, dst, &key.daddr);
	return !bpf_map_lookup_elem(maps.ct4, &key, e);
}

/* ---- cases ---- */

static void test_no_policy_checks_nothing(void)
{
	reset();
	expect_tcp("service flow DNAT'd", WORLD4, 40000, VIP4, 80, PKT_TCP_SYN, XDP_PASS, DB4,
		   DB_PORT);
	expect_tcp("direct flow passed", WORLD4, 40001, DB4, DB_PORT, PKT_TCP_SYN, XDP_PASS, DB4,
		   DB_PORT);
	ASSERT_EQ(map_count(maps.ct4), 2, "only the service flow tracked (2 entries)");
	ASSERT_EQ(pol_stat(SL_POL_ST_CHECKED), 0, "nothing checked");
}

static void test_allow_and_default_deny(void)
{
	struct state s;
	struct sl_ct_entry e;
	uint32_t gen;

	reset();
	state_init(&s, false);
	rule(&s, 0, 7, POL_ALLOW, "app=web", "app=db", "8080", "tcp");
	gen = publish(&s);
	ASSERT_EQ(gen, 1, "first generation");
	ASSERT_EQ(publish(&s), gen, "the same policy again: not published again");
	expect_tcp("web -> VIP allowed, DNAT'd", WEB4, 40000, VIP4, 80, PKT_TCP_SYN, XDP_PASS, DB4,
		   DB_PORT);
	ASSERT_TRUE(ct_has(WEB4, 40000, VIP4, 80, &e), "allowed flow tracked");
	ASSERT_EQ(e.pol_gen, SL_POL_CT_GEN(gen), "entry remembers the generation");
	expect_tcp("world -> VIP default-denied", WORLD4, 40001, VIP4, 80, PKT_TCP_SYN, XDP_DROP,
		   NULL, 0);
	ASSERT_FALSE(ct_has(WORLD4, 40001, VIP4, 80, &e), "denied flow not tracked");
	ASSERT_EQ(drop_stat(), 1, "drop reason policy");
	ASSERT_EQ(pol_stat(SL_POL_ST_DENY_DEFAULT), 1, "deny_default");
	ASSERT_EQ(pol_stat(SL_POL_ST_CHECKED), 2, "checked");
	ASSERT_EQ(pol_stat(SL_POL_ST_ALLOWED), 1, "allowed");
	ring_buffer__consume(events);
	ASSERT_EQ(n_events, 1, "one event");
	ASSERT_EQ(last_event.verdict, SL_POL_DENY_DEFAULT, "event verdict");
	ASSERT_EQ(last_event.site, SL_POL_SITE_XDP, "event site");
	ASSERT_EQ(last_event.rule_id, 0, "event rule: none");
	ASSERT_EQ(last_event.src_id, SL_ID_WORLD, "event source identity");
	ASSERT_EQ(last_event.dst_id, ident("app=db"), "event destination identity");
	ASSERT_EQ(ntohs(last_event.dport), DB_PORT, "event port: the backend's");
	ASSERT_EQ(ntohs(last_event.sport), 40001, "event source port");
	expect_tcp("web -> db:8081 direct: not allowed", WEB4, 40002, DB4, 8081, PKT_TCP_SYN,
		   XDP_DROP, NULL, 0);
}

static void test_deny_wins(void)
{
	struct state s;
	uint64_t n = 0;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "any", "app=db", NULL, NULL);
	rule(&s, 1, 2, POL_DENY, "app=web", "app=db", "8000-8100", "tcp");
	publish(&s);
	expect_tcp("web denied by the deny rule", WEB4, 40000, VIP4, 80, PKT_TCP_SYN, XDP_DROP,
		   NULL, 0);
	expect_tcp("world allowed by any", WORLD4, 40001, VIP4, 80, PKT_TCP_SYN, XDP_PASS, DB4,
		   DB_PORT);
	ASSERT_EQ(pol_stat(SL_POL_ST_DENY_RULE), 1, "deny_rule");
	ASSERT_OK(pol_rule_denials(&maps, 2, &n), "rule counter read");
	ASSERT_EQ(n, 1, "rule 2 denied once");
	ring_buffer__consume(events);
	ASSERT_EQ(last_event.rule_id, 2, "event names the deny rule");
	ASSERT_EQ(last_event.src_id, ident("app=web"), "event source identity");
	s.sets[1].n_rules = 0; /* rule 2 goes: its counter must not outlive it */
	publish(&s);
	ASSERT_OK(pol_rule_denials(&maps, 2, &n), "rule counter read");
	ASSERT_EQ(n, 0, "rule 2's counter is gone with it");
}

static void test_open_destination_tracked(void)
{
	struct state s;
	struct sl_ct_entry e;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "app=web", "app=db", NULL, NULL);
	publish(&s);
	expect_tcp("world -> cache: nobody selects it, open", WORLD4, 40000, CACHE4, 6379,
		   PKT_TCP_SYN, XDP_PASS, CACHE4, 6379);
	ASSERT_TRUE(ct_has(WORLD4, 40000, CACHE4, 6379, &e), "forward entry");
	ASSERT_EQ(e.dir, SL_CT_PASS_FORWARD, "no NAT: a pass entry");
	ASSERT_TRUE(ct_has(CACHE4, 6379, WORLD4, 40000, &e), "reply entry");
	ASSERT_EQ(e.dir, SL_CT_PASS_REPLY, "reply pass entry");
	expect_tcp("world -> db direct: default deny", WORLD4, 40001, DB4, DB_PORT, PKT_TCP_SYN,
		   XDP_DROP, NULL, 0);
	expect_tcp("world -> 198.18.9.9 (no endpoint): untouched, untracked", WORLD4, 40002,
		   "198.18.9.9", 80, PKT_TCP_SYN, XDP_PASS, "198.18.9.9", 80);
	ASSERT_FALSE(ct_has(WORLD4, 40002, "198.18.9.9", 80, &e), "not tracked");
}

static void test_reply_of_allowed_flow_passes(void)
{
	struct state s;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "app=web", "app=db", NULL, NULL);
	/* web is selected too: nothing may open a connection to it */
	rule(&s, 0, 2, POL_ALLOW, "app=db", "app=web", "9999", NULL);
	publish(&s);
	expect_tcp("web -> db direct allowed", WEB4, 40000, DB4, DB_PORT, PKT_TCP_SYN, XDP_PASS,
		   DB4, DB_PORT);
	expect_tcp("db's reply to web passes (tracked)", DB4, DB_PORT, WEB4, 40000,
		   PKT_TCP_SYN | PKT_TCP_ACK, XDP_PASS, WEB4, 40000);
	expect_tcp("db opening to web:40001: default deny", DB4, DB_PORT, WEB4, 40001, PKT_TCP_SYN,
		   XDP_DROP, NULL, 0);
}

/* Policy is ingress only: what a protected endpoint opens, it may, and
 * the replies to it are not new flows to it; but only a packet that comes
 * from where the endpoint lives, and only a SYN, opens such a flow. */
static void test_endpoint_outbound_replies_pass(void)
{
	struct pkt in, out;
	struct sl_ct_entry e;
	struct state s;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "app=web", "app=db", NULL, NULL);
	publish(&s);
	build_tcp(&in, DB4, 40000, WORLD4, 443, PKT_TCP_SYN);
	ASSERT_EQ(run_on(&in, &out, ifindex_db), XDP_PASS, "db's SYN to world:443 passes");
	ASSERT_BYTES(in.data, in.len, out.data, out.len, "unchanged");
	ASSERT_TRUE(ct_has(DB4, 40000, WORLD4, 443, &e), "tracked");
	expect_tcp("the world's reply to db passes", WORLD4, 443, DB4, 40000,
		   PKT_TCP_SYN | PKT_TCP_ACK, XDP_PASS, DB4, 40000);
	expect_tcp("but the world opening to db:40000 is denied", WORLD4, 444, DB4, 40000,
		   PKT_TCP_SYN, XDP_DROP, NULL, 0);
	ASSERT_EQ(pol_stat(SL_POL_ST_CHECKED), 1, "the outbound flow was not checked");

	build_tcp(&in, DB4, 40001, WORLD4, 443, PKT_TCP_SYN);
	ASSERT_EQ(run(&in, &out), XDP_PASS, "a SYN 'from db' on the wrong interface passes...");
	ASSERT_FALSE(ct_has(DB4, 40001, WORLD4, 443, &e), "...untracked (spoofed source)");
	expect_tcp("so the world cannot use it to open db:40001", WORLD4, 443, DB4, 40001,
		   PKT_TCP_SYN, XDP_DROP, NULL, 0);
	build_tcp(&in, DB4, 40002, WORLD4, 443, PKT_TCP_ACK);
	ASSERT_EQ(run_on(&in, &out, ifindex_db), XDP_PASS, "a bare ACK from db passes...");
	ASSERT_FALSE(ct_has(DB4, 40002, WORLD4, 443, &e), "...untracked (it opens nothing)");
}

/* A flow whose reply entry the LRU evicted: the reply is recognised by
 * the forward entry, not judged as a new flow to the endpoint. */
static void test_reply_entry_restored(void)
{
	struct sl_ct4_key key = { .sport = htons(DB_PORT), .dport = htons(40000), .proto = 6 };
	struct sl_ct_entry e;
	struct state s;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "app=web", "app=db", NULL, NULL);
	rule(&s, 0, 2, POL_ALLOW, "app=db", "app=web", "9999", NULL);
	publish(&s);
	expect_tcp("web -> db allowed", WEB4, 40000, DB4, DB_PORT, PKT_TCP_SYN, XDP_PASS, DB4,
		   DB_PORT);
	inet_pton(AF_INET, DB4, &key.saddr);
	inet_pton(AF_INET, WEB4, &key.daddr);
	ASSERT_OK(bpf_map_delete_elem(maps.ct4, &key) ? -errno : 0, "reply entry evicted");
	expect_tcp("db's reply still reaches web", DB4, DB_PORT, WEB4, 40000,
		   PKT_TCP_SYN | PKT_TCP_ACK, XDP_PASS, WEB4, 40000);
	ASSERT_TRUE(ct_has(DB4, DB_PORT, WEB4, 40000, &e), "reply entry back");
	ASSERT_EQ(e.dir, SL_CT_PASS_REPLY, "as a reply entry");
	ASSERT_EQ(pol_stat(SL_POL_ST_DENY_DEFAULT), 0, "nothing denied");
}

/* A new connection on a tuple tracked under an older policy is judged by
 * the current one, even in keep mode. */
static void test_reused_tuple_judged(void)
{
	struct state s;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "app=web", "app=db", NULL, NULL);
	publish(&s);
	expect_tcp("web:40000 -> VIP allowed", WEB4, 40000, VIP4, 80, PKT_TCP_SYN, XDP_PASS, DB4,
		   DB_PORT);
	expect_tcp("web:40001 -> db allowed", WEB4, 40001, DB4, DB_PORT, PKT_TCP_SYN, XDP_PASS, DB4,
		   DB_PORT);
	rule(&s, 0, 2, POL_DENY, "app=web", "app=db", NULL, NULL);
	publish(&s);
	expect_tcp("the old connection runs on (keep)", WEB4, 40000, VIP4, 80, PKT_TCP_ACK,
		   XDP_PASS, DB4, DB_PORT);
	expect_tcp("a new SYN on its tuple is denied", WEB4, 40000, VIP4, 80, PKT_TCP_SYN, XDP_DROP,
		   NULL, 0);
	expect_tcp("the same for a direct flow's tuple", WEB4, 40001, DB4, DB_PORT, PKT_TCP_SYN,
		   XDP_DROP, NULL, 0);
}

static void test_cidr_rules(void)
{
	struct state s;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "203.0.113.0/24", "app=db", NULL, NULL);
	rule(&s, 0, 2, POL_DENY, "203.0.113.128/25", "app=db", NULL, NULL);
	publish(&s);
	expect_tcp("203.0.113.5 in the allowed CIDR", "203.0.113.5", 40000, VIP4, 80, PKT_TCP_SYN,
		   XDP_PASS, DB4, DB_PORT);
	expect_tcp("203.0.113.200 in the denied /25", "203.0.113.200", 40001, VIP4, 80, PKT_TCP_SYN,
		   XDP_DROP, NULL, 0);
	ring_buffer__consume(events);
	ASSERT_EQ(last_event.rule_id, 2, "denied by the /25 rule");
	ASSERT_TRUE(last_event.src_id >= SL_ID_FIRST_CIDR, "source has a CIDR identity");
	expect_tcp("198.51.100.1 outside both", WORLD4, 40002, VIP4, 80, PKT_TCP_SYN, XDP_DROP,
		   NULL, 0);
	expect_tcp("web is an endpoint, not world", WEB4, 40003, VIP4, 80, PKT_TCP_SYN, XDP_DROP,
		   NULL, 0);
}

static void test_port_ranges_and_protocols(void)
{
	struct pkt in, out;
	struct state s;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "any", "app=db", "1000-8080", "tcp");
	rule(&s, 0, 2, POL_ALLOW, "any", "app=db", "53", "udp");
	publish(&s);
	expect_tcp("8080: last port of the range", WORLD4, 40000, DB4, 8080, PKT_TCP_SYN, XDP_PASS,
		   DB4, 8080);
	expect_tcp("1000: first port", WORLD4, 40001, DB4, 1000, PKT_TCP_SYN, XDP_PASS, DB4, 1000);
	expect_tcp("999: below", WORLD4, 40002, DB4, 999, PKT_TCP_SYN, XDP_DROP, NULL, 0);
	expect_tcp("8081: above", WORLD4, 40003, DB4, 8081, PKT_TCP_SYN, XDP_DROP, NULL, 0);
	expect_tcp("tcp 53: udp only", WORLD4, 40004, DB4, 53, PKT_TCP_SYN, XDP_DROP, NULL, 0);
	build_udp(&in, WORLD4, 40005, DB4, 53);
	ASSERT_EQ(run(&in, &out), XDP_PASS, "udp 53 allowed");
	ASSERT_BYTES(in.data, in.len, out.data, out.len, "udp 53 unchanged");
	build_udp(&in, WORLD4, 40006, DB4, 8080);
	ASSERT_EQ(run(&in, &out), XDP_DROP, "udp 8080: tcp only");
}

static void test_ipv6(void)
{
	struct state s;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "app=web", "app=db", "8080", "tcp");
	publish(&s);
	expect_tcp("v6 web -> VIP6 allowed", WEB6, 40000, VIP6, 80, PKT_TCP_SYN, XDP_PASS, DB6,
		   DB_PORT);
	expect_tcp("v6 world -> VIP6 denied", "fd00:99::1", 40001, VIP6, 80, PKT_TCP_SYN, XDP_DROP,
		   NULL, 0);
	expect_tcp("v6 world -> db direct denied", "fd00:99::1", 40002, DB6, DB_PORT, PKT_TCP_SYN,
		   XDP_DROP, NULL, 0);
	ring_buffer__consume(events);
	ASSERT_EQ(last_event.family, SL_AF_INET6, "event family");
}

/* A flow allowed, then a policy that denies it: keep mode lets it run. */
static void test_established_kept(void)
{
	struct state s;
	uint64_t before;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "app=web", "app=db", NULL, NULL);
	publish(&s);
	expect_tcp("flow allowed", WEB4, 40000, VIP4, 80, PKT_TCP_SYN, XDP_PASS, DB4, DB_PORT);
	rule(&s, 0, 2, POL_DENY, "app=web", "app=db", NULL, NULL);
	publish(&s);
	before = pol_stat(SL_POL_ST_CHECKED);
	expect_tcp("established flow keeps its verdict", WEB4, 40000, VIP4, 80, PKT_TCP_ACK,
		   XDP_PASS, DB4, DB_PORT);
	ASSERT_EQ(pol_stat(SL_POL_ST_CHECKED), before, "not checked again (one lookup)");
	expect_tcp("a new flow is judged by the new policy", WEB4, 40001, VIP4, 80, PKT_TCP_SYN,
		   XDP_DROP, NULL, 0);
}

/* The same with a re-check rule set: dropped, counted, resumed. */
static void test_established_rechecked(void)
{
	struct pkt in, out, want;
	struct sl_ct_entry e;
	struct state s;
	uint32_t gen;

	reset();
	state_init(&s, true);
	rule(&s, 1, 1, POL_ALLOW, "app=web", "app=db", NULL, NULL);
	publish(&s);
	expect_tcp("flow allowed", WEB4, 40000, VIP4, 80, PKT_TCP_SYN, XDP_PASS, DB4, DB_PORT);
	build_tcp(&in, DB4, DB_PORT, WEB4, 40000, PKT_TCP_SYN | PKT_TCP_ACK);
	build_tcp(&want, VIP4, 80, WEB4, 40000, PKT_TCP_SYN | PKT_TCP_ACK);
	ASSERT_EQ(run(&in, &out), XDP_PASS, "reply passes");
	ASSERT_BYTES(want.data, want.len, out.data, out.len, "reply from the VIP");
	rule(&s, 1, 2, POL_DENY, "app=web", "app=db", NULL, NULL);
	publish(&s);
	events_drain();
	expect_tcp("established flow re-checked: dropped", WEB4, 40000, VIP4, 80, PKT_TCP_ACK,
		   XDP_DROP, NULL, 0);
	ASSERT_EQ(pol_stat(SL_POL_ST_RECHECK_DROPS), 1, "recheck_drops");
	ASSERT_FALSE(ct_has(WEB4, 40000, VIP4, 80, &e), "the flow is forgotten...");
	ASSERT_FALSE(ct_has(DB4, DB_PORT, WEB4, 40000, &e), "...in both directions");
	ring_buffer__consume(events);
	ASSERT_EQ(last_event.site, SL_POL_SITE_RECHECK, "event site");
	ASSERT_EQ(last_event.rule_id, 2, "event rule");
	ASSERT_EQ(ntohs(last_event.dport), DB_PORT, "event destination: the backend");
	expect_tcp("its next packet is a new flow: denied", WEB4, 40000, VIP4, 80, PKT_TCP_ACK,
		   XDP_DROP, NULL, 0);
	ASSERT_EQ(pol_stat(SL_POL_ST_DENY_RULE), 2, "denied by the rule both times");
	s.sets[1].established = POL_EST_KEEP; /* nothing re-checks it any more... */
	publish(&s);
	expect_tcp("...and it stays denied", WEB4, 40000, VIP4, 80, PKT_TCP_ACK, XDP_DROP, NULL, 0);
	s.sets[1].n_rules = 1; /* the deny rule goes away */
	gen = publish(&s);
	expect_tcp("allowed again: flows on", WEB4, 40000, VIP4, 80, PKT_TCP_ACK, XDP_PASS, DB4,
		   DB_PORT);
	ASSERT_TRUE(ct_has(WEB4, 40000, VIP4, 80, &e), "tracked again");
	ASSERT_EQ(e.pol_gen, SL_POL_CT_GEN(gen), "under the new generation");
}

static void test_failed_publish_changes_nothing(void)
{
	struct pol_compiled c;
	char why[POL_ERR_MAX];
	struct state s;
	uint32_t gen, now = 0, before_allow;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "app=web", "app=db", NULL, NULL);
	gen = publish(&s);
	before_allow = map_count(maps.pol_allow);
	strcpy(s.eps[0].netns, "/run/netns/sluice-test-no-such-netns");
	ASSERT_OK(pol_compile(&s.st, &idents, &c, why, sizeof(why)), "compiles");
	ASSERT_EQ(pol_publish(&maps, &c, &now, why, sizeof(why)), -ENOENT, "publish refused");
	ASSERT_TRUE(strstr(why, "sluice-test-no-such-netns") != NULL, "error names the netns");
	pol_compiled_free(&c);
	ASSERT_OK(pol_gen_read(&maps, &now), "gen read");
	ASSERT_EQ(now, gen, "generation unchanged");
	ASSERT_EQ(map_count(maps.pol_allow), before_allow, "allow entries unchanged");
	expect_tcp("old policy still enforced", WORLD4, 40000, VIP4, 80, PKT_TCP_SYN, XDP_DROP,
		   NULL, 0);
}

static void test_events_rate_limited(void)
{
	struct state s;
	struct pkt in, out;

	reset();
	state_init(&s, false);
	rule(&s, 0, 1, POL_ALLOW, "app=web", "app=db", NULL, NULL);
	publish(&s);
	for (int i = 0; i < 500; i++) {
		build_tcp(&in, WORLD4, (uint16_t)(20000 + i), VIP4, 80, PKT_TCP_SYN);
		run(&in, &out);
	}
	ring_buffer__consume(events);
	ASSERT_EQ(drop_stat(), 500, "every packet dropped");
	ASSERT_EQ(pol_stat(SL_POL_ST_DENY_DEFAULT), 500, "every denial counted");
	ASSERT_TRUE(n_events <= SL_POL_EVENTS_BURST + 2, "events held to the burst");
	ASSERT_EQ(pol_stat(SL_POL_ST_EVENTS), n_events, "events counted");
	ASSERT_EQ(pol_stat(SL_POL_ST_EVENTS_LIMITED), 500 - n_events,
		  "the rest counted as limited");
}

static const struct test_case cases[] = {
	{ "no_policy_checks_nothing", test_no_policy_checks_nothing },
	{ "allow_and_default_deny", test_allow_and_default_deny },
	{ "deny_wins", test_deny_wins },
	{ "open_destination_tracked", test_open_destination_tracked },
	{ "reply_of_allowed_flow_passes", test_reply_of_allowed_flow_passes },
	{ "endpoint_outbound_replies_pass", test_endpoint_outbound_replies_pass },
	{ "reply_entry_restored", test_reply_entry_restored },
	{ "reused_tuple_judged", test_reused_tuple_judged },
	{ "cidr_rules", test_cidr_rules },
	{ "port_ranges_and_protocols", test_port_ranges_and_protocols },
	{ "ipv6", test_ipv6 },
	{ "established_kept", test_established_kept },
	{ "established_rechecked", test_established_rechecked },
	{ "failed_publish_changes_nothing", test_failed_publish_changes_nothing },
	{ "events_rate_limited", test_events_rate_limited },
};

static int setup(void)
{
	struct loader_opts opts = { .maglev_size = 251, .ct_size = 1024, .version = 1 };
	struct sl_svc svc = {};
	struct sl_svc_key k4 = key_of(VIP4, 80, IPPROTO_TCP), k6 = key_of(VIP6, 80, IPPROTO_TCP);
	struct addr_port db4 = ep(DB4, DB_PORT), db6 = ep(DB6, DB_PORT);

	/* A namespace whose FIB knows only db's subnets, on a veth
	 * without neighbours: allowed packets pass, unchanged but for NAT.
	 * Forwarding on, as on a node: bpf_fib_lookup() requires it. */
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "setup: unshare(CLONE_NEWNET): %s (run as root)\n",
			strerror(errno));
		return -1;
	}
	if (system("ip link add sl-db type veth peer name sl-db-p && ip link set sl-db-p up && "
		   "ip link set sl-db up && sysctl -qw net.ipv4.ip_forward=1 "
		   "net.ipv6.conf.all.forwarding=1 && "
		   "ip route add 198.18.1.0/24 dev sl-db && ip -6 route add fd00:0:0:1::/64 dev sl-db")) {
		fprintf(stderr, "setup: the veth for db's subnets failed\n");
		return -1;
	}
	ifindex_db = if_nametoindex("sl-db");
	skel = loader_lb_load(&opts, &maps);
	if (!skel) {
		fprintf(stderr, "setup: loading the XDP program: %s\n", strerror(errno));
		return -1;
	}
	prog_fd = bpf_program__fd(skel->progs.sl_xdp_lb);
	events = ring_buffer__new(maps.pol_events, on_event, NULL, NULL);
	if (!events || lb_service_add(&maps, &k4, &svc) || lb_backend_add(&maps, &k4, &db4, 1) ||
	    lb_service_add(&maps, &k6, &svc) || lb_backend_add(&maps, &k6, &db6, 1)) {
		fprintf(stderr, "setup: services: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int ret;

	log_set_level(LOG_WARN);
	if (setup())
		return 1;
	ret = run_tests(cases, ARRAY_SIZE(cases), argc > 1 ? argv[1] : NULL, "bpf/policy");
	ring_buffer__free(events);
	pol_ident_table_free(&idents);
	xdp_lb__destroy(skel);
	return ret;
}
