/* Unit tests for the policy library (user/lib/policy_*.c): the text forms
 * (accepted, refused with a message and the output untouched, formatted
 * back), selector matching, prefix containment, port prefixes checked
 * against every small range, identity allocation across compilations,
 * state validation, and the compiled entries of small policies, their
 * limits and the time a large one takes. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "policy.h"

#define SENTINEL 0x5a

/* ---- helpers ---- */

static struct pol_labels labels(const char *text)
{
	struct pol_labels l;
	char err[POL_ERR_MAX] = "";

	if (pol_labels_parse(text, &l, err, sizeof(err)))
		fail_msg("labels \"%s\": %s", text, err);
	return l;
}

static struct pol_selector selector(const char *text)
{
	struct pol_selector s;
	char err[POL_ERR_MAX] = "";

	if (pol_selector_parse(text, &s, err, sizeof(err)))
		fail_msg("selector \"%s\": %s", text, err);
	return s;
}

static struct pol_prefix prefix(const char *text)
{
	struct pol_prefix p;
	char err[POL_ERR_MAX] = "";

	if (pol_prefix_parse(text, strchr(text, '/') != NULL, &p, err, sizeof(err)))
		fail_msg("prefix \"%s\": %s", text, err);
	return p;
}

/* Room for element @n of *@array: capacity doubles at each power of two,
 * so thousands of appends stay cheap (under valgrind too). */
static void grow(void *array, size_t n, size_t size)
{
	void **p = array;

	if (n & (n - 1))
		return;
	*p = realloc(*p, (n ? 2 * n : 1) * size);
	assert_non_null(*p);
}

static void add_endpoint(struct pol_state *st, const char *addr, const char *lbl, const char *netns)
{
	struct pol_endpoint *ep;

	grow(&st->endpoints, st->n_endpoints, sizeof(*ep));
	ep = &st->endpoints[st->n_endpoints++];
	memset(ep, 0, sizeof(*ep));
	ep->addr = prefix(addr);
	ep->labels = labels(lbl);
	snprintf(ep->netns, sizeof(ep->netns), "%s", netns ? netns : "");
}

static struct pol_ruleset *add_ruleset(struct pol_state *st, const char *name,
				       enum pol_established est)
{
	struct pol_ruleset *rs;

	grow(&st->rulesets, st->n_rulesets, sizeof(*rs));
	rs = &st->rulesets[st->n_rulesets++];
	memset(rs, 0, sizeof(*rs));
	snprintf(rs->name, sizeof(rs->name), "%s", name);
	rs->established = est;
	return rs;
}

/* A rule in text form: "allow" or "deny", from, to, ports, protocols. */
static struct pol_rule *add_rule(struct pol_ruleset *rs, uint32_t id, const char *action,
				 const char *from, const char *to, const char *ports,
				 const char *protos)
{
	char err[POL_ERR_MAX] = "";
	struct pol_rule *r;

	grow(&rs->rules, rs->n_rules, sizeof(*r));
	r = &rs->rules[rs->n_rules++];
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->action = !strcmp(action, "allow") ? POL_ALLOW : POL_DENY;
	if (pol_peer_parse(from, &r->from, err, sizeof(err)) ||
	    pol_selector_parse(to, &r->to, err, sizeof(err)) ||
	    pol_ports_parse(ports, r->ports, &r->n_ports, err, sizeof(err)) ||
	    pol_protos_parse(protos, &r->protos, err, sizeof(err)))
		fail_msg("rule %u: %s", id, err);
	return r;
}

static uint32_t id_of(const struct pol_compiled *c, const char *lbl)
{
	struct pol_labels l = labels(lbl);

	return pol_ident_of_labels(&c->idents, &l);
}

static uint32_t cidr_id(const struct pol_compiled *c, const char *cidr)
{
	struct pol_prefix p = prefix(cidr);

	return pol_ident_of_cidr(&c->idents, &p);
}

/* The entry of @action for (dst, src, proto, port prefix), NULL if none. */
static const struct pol_rule_entry *find_entry(const struct pol_compiled *c, enum pol_action action,
					       uint32_t dst, uint32_t src, uint8_t proto,
					       uint16_t port, unsigned int bits)
{
	size_t i;

	for (i = 0; i < c->n_rules; i++) {
		const struct pol_rule_entry *e = &c->rules[i];

		if (e->action == action && e->key.dst_id == dst && e->key.src_id == src &&
		    e->key.proto == proto && e->key.dport == htons(port) &&
		    e->key.prefixlen == SL_POL_KEY_EXACT_BITS + bits)
			return e;
	}
	return NULL;
}

static uint32_t dst_flags(const struct pol_compiled *c, uint32_t dst)
{
	size_t i;

	for (i = 0; i < c->n_dsts; i++) {
		if (c->dsts[i].dst_id == dst)
			return c->dsts[i].flags;
	}
	return 0;
}

static void compile_ok(const struct pol_state *st, struct pol_compiled *c)
{
	char err[POL_ERR_MAX] = "";

	if (pol_compile(st, NULL, c, err, sizeof(err)))
		fail_msg("compile: %s", err);
}

/* Every entry: gen 0, pad 0, a known protocol; no (action, key) twice. */
static void assert_entries_sane(const struct pol_compiled *c)
{
	size_t i, j;

	for (i = 0; i < c->n_rules; i++) {
		const struct pol_rule_entry *e = &c->rules[i];

		assert_int_equal(e->key.gen, 0);
		assert_int_equal(e->key.pad, 0);
		assert_true(e->key.proto == SL_PROTO_TCP || e->key.proto == SL_PROTO_UDP);
		assert_in_range(e->key.prefixlen, SL_POL_KEY_EXACT_BITS, SL_POL_KEY_BITS);
		for (j = i + 1; j < c->n_rules && c->n_rules < 2000; j++)
			assert_false(c->rules[j].action == e->action &&
				     !memcmp(&c->rules[j].key, &e->key, sizeof(e->key)));
	}
}

/* ---- text forms ---- */

static void test_labels_parse(void **state)
{
	struct pol_labels a, b;
	char err[POL_ERR_MAX];

	(void)state;
	a = labels("env=prod,app=web");
	assert_int_equal(a.n, 2);
	assert_string_equal(a.l[0].key, "app");
	assert_string_equal(a.l[0].value, "web");
	assert_string_equal(a.l[1].key, "env");
	b = labels("  app = web ,\tenv=prod  ");
	assert_memory_equal(&a, &b, sizeof(a)); /* equal sets, equal bytes */
	a = labels("");
	assert_int_equal(a.n, 0);
	a = labels("   ");
	assert_int_equal(a.n, 0);
	a = labels("k8s.io/app-name=v1.2_x,empty=");
	assert_string_equal(a.l[1].key, "k8s.io/app-name");
	assert_string_equal(a.l[1].value, "v1.2_x");
	assert_string_equal(a.l[0].value, "");
	assert_int_equal(pol_labels_parse("a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11,l=12,"
					  "m=13,n=14,o=15,p=16",
					  &a, err, sizeof(err)),
			 0);
	assert_int_equal(a.n, POL_LABELS_MAX);
	assert_string_equal(a.l[15].key, "p");
}

struct bad_case {
	const char *text;
	const char *message;
};

static void test_labels_reject(void **state)
{
	static const struct bad_case bad[] = {
		{ "9x!=a", "label key \"9x!\": invalid character '!'" },
		{ "-a=b", "label key \"-a\": must start with A-Z a-z 0-9" },
		{ "=v", "label key: empty key" },
		{ "app", "label \"app\": expected key=value" },
		{ "a=b,a=c", "label key \"a\" given twice" },
		{ "a=b,,c=d", "empty label in \"a=b,,c=d\"" },
		{ "a=b,", "empty label in \"a=b,\"" },
		{ "a=b c", "label value \"b c\": invalid character ' '" },
		{ "a=b=c", "label value \"b=c\": invalid character '='" },
		{ "a/=x:y", "label value \"x:y\": invalid character ':'" },
		{ "a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11,l=12,m=13,n=14,o=15,p=16,q=17",
		  "more than 16 labels" },
		{ "k=0123456789012345678901234567890123456789012345678901234567890123",
		  "label value \"0123456789012345678901234567890123456789012345678901234567890123...\": longer than 63 characters" },
	};
	struct pol_labels out, before;
	char err[POL_ERR_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&out, SENTINEL, sizeof(out));
		before = out;
		err[0] = '\0';
		assert_int_equal(pol_labels_parse(bad[i].text, &out, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, bad[i].message);
		assert_memory_equal(&out, &before, sizeof(out));
	}
	/* No room for a message: still refused. */
	assert_int_equal(pol_labels_parse("!", &out, NULL, 0), -EINVAL);
}

static void test_selector_parse(void **state)
{
	static const struct bad_case bad[] = {
		{ "!", "selector key: empty key" },
		{ "!=x", "selector key: empty key" },
		{ "a==b", "selector value \"=b\": invalid character '='" },
		{ "a,,b", "empty selector term in \"a,,b\"" },
		{ "a b", "selector key \"a b\": invalid character ' '" },
		{ "!a=b", "selector key \"!a\": must start with A-Z a-z 0-9" },
		{ "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "more than 16 selector terms" },
	};
	struct pol_selector s, before;
	char err[POL_ERR_MAX];
	size_t i;

	(void)state;
	s = selector("app=web, env != prod ,tier,! canary,v=");
	assert_int_equal(s.n, 5);
	assert_int_equal(s.t[0].op, POL_SEL_EQ);
	assert_string_equal(s.t[0].key, "app");
	assert_string_equal(s.t[0].value, "web");
	assert_int_equal(s.t[1].op, POL_SEL_NE);
	assert_string_equal(s.t[1].key, "env");
	assert_string_equal(s.t[1].value, "prod");
	assert_int_equal(s.t[2].op, POL_SEL_EXISTS);
	assert_string_equal(s.t[2].key, "tier");
	assert_int_equal(s.t[3].op, POL_SEL_ABSENT);
	assert_string_equal(s.t[3].key, "canary");
	assert_int_equal(s.t[4].op, POL_SEL_EQ);
	assert_string_equal(s.t[4].value, "");
	assert_int_equal(selector("").n, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&s, SENTINEL, sizeof(s));
		before = s;
		assert_int_equal(pol_selector_parse(bad[i].text, &s, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, bad[i].message);
		assert_memory_equal(&s, &before, sizeof(s));
	}
}

static void test_peer_parse(void **state)
{
	static const struct bad_case bad[] = {
		{ "198.18.0.1/16", "CIDR \"198.18.0.1/16\": host bits set" },
		{ "fd00::1/8", "CIDR \"fd00::1/8\": host bits set" },
		{ "198.18.0.0/33", "CIDR \"198.18.0.0/33\": invalid prefix length (0-32)" },
		{ "300.0.0.0/8", "\"300.0.0.0/8\": invalid IP address" },
		{ "app=w b", "selector value \"w b\": invalid character ' '" },
		{ "10.1.2.3", "\"10.1.2.3\": a CIDR needs a length (\"10.1.2.3/32\")" },
		{ " fd00::1 ", "\"fd00::1\": a CIDR needs a length (\"fd00::1/128\")" },
	};
	struct pol_peer p, before;
	char err[POL_ERR_MAX];
	size_t i;

	(void)state;
	assert_int_equal(pol_peer_parse("any", &p, err, sizeof(err)), 0);
	assert_int_equal(p.kind, POL_PEER_ANY);
	assert_int_equal(pol_peer_parse(" * ", &p, err, sizeof(err)), 0);
	assert_int_equal(p.kind, POL_PEER_ANY);
	assert_int_equal(pol_peer_parse("world", &p, err, sizeof(err)), 0);
	assert_int_equal(p.kind, POL_PEER_WORLD);
	assert_int_equal(pol_peer_parse("host", &p, err, sizeof(err)), 0);
	assert_int_equal(p.kind, POL_PEER_HOST);
	assert_int_equal(pol_peer_parse("198.18.0.0/16", &p, err, sizeof(err)), 0);
	assert_int_equal(p.kind, POL_PEER_CIDR);
	assert_int_equal(p.cidr.family, SL_AF_INET);
	assert_int_equal(p.cidr.prefixlen, 16);
	assert_int_equal(p.cidr.addr[0], inet_addr("198.18.0.0"));
	assert_int_equal(pol_peer_parse("fd00::/8", &p, err, sizeof(err)), 0);
	assert_int_equal(p.kind, POL_PEER_CIDR);
	assert_int_equal(p.cidr.family, SL_AF_INET6);
	assert_int_equal(p.cidr.prefixlen, 8);
	assert_int_equal(pol_peer_parse("app=web,!canary", &p, err, sizeof(err)), 0);
	assert_int_equal(p.kind, POL_PEER_SELECTOR);
	assert_int_equal(p.sel.n, 2);
	/* A label key with a '/' is a selector, not a CIDR. */
	assert_int_equal(pol_peer_parse("k8s.io/app=web", &p, err, sizeof(err)), 0);
	assert_int_equal(p.kind, POL_PEER_SELECTOR);
	assert_string_equal(p.sel.t[0].key, "k8s.io/app");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&p, SENTINEL, sizeof(p));
		before = p;
		assert_int_equal(pol_peer_parse(bad[i].text, &p, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, bad[i].message);
		assert_memory_equal(&p, &before, sizeof(p));
	}
}

static void test_ports_parse(void **state)
{
	static const struct bad_case bad[] = {
		{ "0", "port \"0\": not in 1-65535" },
		{ "65536", "port \"65536\": not in 1-65535" },
		{ "99999999999999999999", "port \"99999999999999999999\": not in 1-65535" },
		{ "90-80", "port range \"90-80\": first above last" },
		{ "", "no ports (\"any\" means every port)" },
		{ "80,", "empty port in \"80,\"" },
		{ "http", "port \"http\": not a number" },
		{ "-5", "empty port" },
		{ "1-", "empty port" },
		{ "+80", "port \"+80\": not a number" },
		{ "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "more than 16 port ranges" },
	};
	struct pol_port_range r[POL_PORTS_MAX], before[POL_PORTS_MAX];
	char err[POL_ERR_MAX];
	unsigned int n;
	size_t i;

	(void)state;
	assert_int_equal(pol_ports_parse("80", r, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(r[0].first, 80);
	assert_int_equal(r[0].last, 80);
	assert_int_equal(pol_ports_parse("80, 443 ,8000 - 8080,65535", r, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	assert_int_equal(r[1].first, 443);
	assert_int_equal(r[2].first, 8000);
	assert_int_equal(r[2].last, 8080);
	assert_int_equal(r[3].last, 65535);
	assert_int_equal(pol_ports_parse(" any ", r, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(r, SENTINEL, sizeof(r));
		memcpy(before, r, sizeof(r));
		n = 77;
		assert_int_equal(pol_ports_parse(bad[i].text, r, &n, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, bad[i].message);
		assert_memory_equal(r, before, sizeof(r));
		assert_int_equal(n, 77);
	}
}

static void test_protos(void **state)
{
	char err[POL_ERR_MAX];
	uint8_t p = 0;

	(void)state;
	assert_int_equal(pol_protos_parse("tcp", &p, err, sizeof(err)), 0);
	assert_int_equal(p, POL_TCP);
	assert_int_equal(pol_protos_parse(" udp", &p, err, sizeof(err)), 0);
	assert_int_equal(p, POL_UDP);
	assert_int_equal(pol_protos_parse("any", &p, err, sizeof(err)), 0);
	assert_int_equal(p, POL_ANY_PROTO);
	p = 99;
	assert_int_equal(pol_protos_parse("icmp", &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "protocol \"icmp\": expected tcp, udp or any");
	assert_int_equal(p, 99);
	assert_int_equal(pol_protos_parse("TCP", &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(pol_protos_name(POL_TCP), "tcp");
	assert_string_equal(pol_protos_name(POL_UDP), "udp");
	assert_string_equal(pol_protos_name(POL_ANY_PROTO), "any");
	assert_string_equal(pol_protos_name(0), "?");
	assert_string_equal(pol_action_name(POL_ALLOW), "allow");
	assert_string_equal(pol_action_name(POL_DENY), "deny");
	assert_string_equal(pol_established_name(POL_EST_KEEP), "keep");
	assert_string_equal(pol_established_name(POL_EST_RECHECK), "recheck");
}

static void test_prefix_parse(void **state)
{
	static const struct {
		const char *text;
		bool cidr;
		const char *message;
	} bad[] = {
		{ "198.18.1.2/32", false, "\"198.18.1.2/32\": expected an address, not a CIDR" },
		{ "198.18.1.2", true, "\"198.18.1.2\": expected a CIDR (ADDRESS/LENGTH)" },
		{ "198.18.1", false, "\"198.18.1\": invalid IP address" },
		{ "", false, "\"\": invalid IP address" },
		{ "fd00::/129", true, "CIDR \"fd00::/129\": invalid prefix length (0-128)" },
		{ "10.0.0.0/", true, "CIDR \"10.0.0.0/\": invalid prefix length (0-32)" },
		{ "10.0.0.0/-8", true, "CIDR \"10.0.0.0/-8\": invalid prefix length (0-32)" },
		{ "10.0.0.64/25", true, "CIDR \"10.0.0.64/25\": host bits set" },
		{ "::1/127", true, "CIDR \"::1/127\": host bits set" },
		{ "::ffff:198.18.1.2", false,
		  "\"::ffff:198.18.1.2\": an IPv4-mapped IPv6 address; write the IPv4 address" },
		{ "::ffff:198.18.0.0/112", true,
		  "\"::ffff:198.18.0.0/112\": an IPv4-mapped IPv6 address; write the IPv4 address" },
	};
	struct pol_prefix p, before;
	struct in6_addr six;
	char err[POL_ERR_MAX];
	size_t i;

	(void)state;
	assert_int_equal(pol_prefix_parse("198.18.1.2", false, &p, err, sizeof(err)), 0);
	assert_int_equal(p.family, SL_AF_INET);
	assert_int_equal(p.prefixlen, 32);
	assert_int_equal(p.addr[0], htonl(0xc6120102));
	assert_int_equal(p.addr[1] | p.addr[2] | p.addr[3], 0);
	assert_int_equal(pol_prefix_parse("fd00::2", false, &p, err, sizeof(err)), 0);
	inet_pton(AF_INET6, "fd00::2", &six);
	assert_memory_equal(p.addr, &six, 16);
	assert_int_equal(p.prefixlen, 128);
	assert_int_equal(pol_prefix_parse("0.0.0.0/0", true, &p, err, sizeof(err)), 0);
	assert_int_equal(p.prefixlen, 0);
	assert_int_equal(pol_prefix_parse("::/0", true, &p, err, sizeof(err)), 0);
	assert_int_equal(p.family, SL_AF_INET6);
	assert_int_equal(pol_prefix_parse("10.0.0.128/25", false, &p, err, sizeof(err)), -EINVAL);
	assert_int_equal(pol_prefix_parse("10.0.0.128/32", true, &p, err, sizeof(err)), 0);
	assert_int_equal(p.prefixlen, 32);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&p, SENTINEL, sizeof(p));
		before = p;
		assert_int_equal(pol_prefix_parse(bad[i].text, bad[i].cidr, &p, err, sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, bad[i].message);
		assert_memory_equal(&p, &before, sizeof(p));
	}
}

static void test_format_round_trip(void **state)
{
	static const char *const peers[] = {
		"any",
		"world",
		"host",
		"198.18.0.0/16",
		"fd00::/8",
		"198.18.1.2/32",
		"app=web,env!=prod,tier,!canary",
		"",
	};
	struct pol_labels l, l2;
	struct pol_selector s, s2;
	struct pol_peer p, p2;
	struct pol_port_range r[POL_PORTS_MAX];
	struct pol_prefix x;
	char buf[256], small[8], err[POL_ERR_MAX];
	unsigned int n;
	size_t i;

	(void)state;
	l = labels("z=1, app=web ,e=");
	pol_labels_format(&l, buf, sizeof(buf));
	assert_string_equal(buf, "app=web,e=,z=1");
	l2 = labels(buf);
	assert_memory_equal(&l, &l2, sizeof(l));
	s = selector("app=web , env!=prod,tier,!canary");
	pol_selector_format(&s, buf, sizeof(buf));
	assert_string_equal(buf, "app=web,env!=prod,tier,!canary");
	s2 = selector(buf);
	assert_memory_equal(&s, &s2, sizeof(s));
	for (i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
		assert_int_equal(pol_peer_parse(peers[i], &p, err, sizeof(err)), 0);
		pol_peer_format(&p, buf, sizeof(buf));
		assert_string_equal(buf, peers[i]);
		assert_int_equal(pol_peer_parse(buf, &p2, err, sizeof(err)), 0);
		assert_memory_equal(&p, &p2, sizeof(p));
	}
	assert_int_equal(pol_ports_parse("80,443,8000-8080", r, &n, err, sizeof(err)), 0);
	pol_ports_format(r, n, buf, sizeof(buf));
	assert_string_equal(buf, "80,443,8000-8080");
	pol_ports_format(r, 0, buf, sizeof(buf));
	assert_string_equal(buf, "any");
	x = prefix("198.18.1.2");
	pol_prefix_format(&x, buf, sizeof(buf));
	assert_string_equal(buf, "198.18.1.2");
	x = prefix("fd00:1::/32");
	pol_prefix_format(&x, buf, sizeof(buf));
	assert_string_equal(buf, "fd00:1::/32");
	/* Truncated, always terminated; a zero-length buffer is left alone. */
	pol_labels_format(&l, small, sizeof(small));
	assert_string_equal(small, "app=web");
	pol_ports_format(r, n, small, sizeof(small));
	assert_string_equal(small, "80,443,");
	small[0] = 'x';
	pol_labels_format(&l, small, 0);
	assert_int_equal(small[0], 'x');
}

static void test_selector_match(void **state)
{
	static const struct {
		const char *sel, *labels;
		bool match;
	} cases[] = {
		{ "", "", true },
		{ "", "app=web", true },
		{ "app=web", "app=web,env=prod", true },
		{ "app=web", "app=db", false },
		{ "app=web", "", false },
		{ "app=web", "app=", false },
		{ "app=", "app=", true },
		{ "env!=prod", "app=web", true }, /* absent: true */
		{ "env!=prod", "env=dev", true },
		{ "env!=prod", "env=prod", false },
		{ "tier", "tier=", true },
		{ "tier", "app=web", false },
		{ "!canary", "app=web", true },
		{ "!canary", "canary=yes", false },
		{ "!canary", "canary=", false },
		{ "app=web,env!=prod,tier,!canary", "app=web,tier=1", true },
		{ "app=web,env!=prod,tier,!canary", "app=web,tier=1,canary=x", false },
		{ "app=web,env!=prod,tier,!canary", "app=web,tier=1,env=prod", false },
		{ "app=web,env!=prod,tier,!canary", "app=web", false },
		{ "k8s.io/app=a", "k8s.io/app=a", true },
	};
	struct pol_selector s;
	struct pol_labels l;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = selector(cases[i].sel);
		l = labels(cases[i].labels);
		if (pol_selector_match(&s, &l) != cases[i].match)
			fail_msg("\"%s\" on \"%s\": expected %d", cases[i].sel, cases[i].labels,
				 cases[i].match);
	}
}

static void test_prefix_within(void **state)
{
	static const struct {
		const char *inner, *outer;
		bool within;
	} cases[] = {
		{ "10.1.0.0/16", "10.0.0.0/8", true },
		{ "10.0.0.0/8", "10.0.0.0/8", true },
		{ "10.0.0.0/8", "10.1.0.0/16", false },
		{ "11.0.0.0/16", "10.0.0.0/8", false },
		{ "10.255.255.255", "10.0.0.0/8", true },
		{ "10.0.0.0/8", "0.0.0.0/0", true },
		{ "10.0.0.128/25", "10.0.0.0/25", false },
		{ "10.0.0.0/25", "10.0.0.0/24", true },
		{ "fd00:1::/32", "fd00::/8", true },
		{ "fe00::/8", "fd00::/8", false },
		{ "fd00::/8", "::/0", true },
		{ "10.0.0.0/8", "::/0", false }, /* families differ */
		{ "::/0", "0.0.0.0/0", false },
	};
	struct pol_prefix a, b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		a = prefix(cases[i].inner);
		b = prefix(cases[i].outer);
		if (pol_prefix_within(&a, &b) != cases[i].within)
			fail_msg("%s within %s: expected %d", cases[i].inner, cases[i].outer,
				 cases[i].within);
	}
}

/* The prefixes of [first, last] are aligned, disjoint, cover exactly the
 * range, number at most 30, and no two are buddies (else one would do). */
static void check_port_prefixes(uint32_t first, uint32_t last)
{
	uint16_t values[40];
	__u8 bits[40];
	uint32_t next = first, size, prev_size = 0;
	unsigned int n, i;

	n = pol_port_prefixes((uint16_t)first, (uint16_t)last, values, bits);
	if (n < 1 || n > 30)
		fail_msg("[%u, %u]: %u prefixes", first, last, n);
	for (i = 0; i < n; i++) {
		assert_true(bits[i] <= 16);
		size = 1u << (16 - bits[i]);
		if (values[i] != next || values[i] % size)
			fail_msg("[%u, %u]: prefix %u is %u/%u, expected start %u", first, last, i,
				 values[i], bits[i], next);
		/* Buddies: equal size, the first one aligned to twice the size. */
		if (i && size == prev_size && (values[i - 1] % (2 * size)) == 0)
			fail_msg("[%u, %u]: prefixes %u and %u merge", first, last, i - 1, i);
		prev_size = size;
		next = values[i] + size;
	}
	if (next != last + 1)
		fail_msg("[%u, %u]: prefixes end at %u", first, last, next - 1);
}

static void test_port_prefixes(void **state)
{
	uint16_t values[40];
	__u8 bits[40];
	uint32_t a, b, seed = 12345;
	int i;

	(void)state;
	for (a = 0; a < 300; a++) {
		for (b = a; b < 300; b++)
			check_port_prefixes(a, b);
	}
	for (a = 65535 - 300; a <= 65535; a++) {
		for (b = a; b <= 65535; b++)
			check_port_prefixes(a, b);
	}
	for (i = 0; i < 100000; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		a = seed & 0xffff;
		b = (seed >> 16) & 0xffff;
		check_port_prefixes(a < b ? a : b, a < b ? b : a);
	}
	assert_int_equal(pol_port_prefixes(0, 65535, values, bits), 1);
	assert_int_equal(values[0], 0);
	assert_int_equal(bits[0], 0);
	assert_int_equal(pol_port_prefixes(1, 65535, values, bits), 16);
	assert_int_equal(pol_port_prefixes(1, 65534, values, bits), 30);
	assert_int_equal(pol_port_prefixes(80, 80, values, bits), 1);
	assert_int_equal(bits[0], 16);
	assert_int_equal(pol_port_prefixes(1024, 65535, values, bits), 6);
	assert_int_equal(pol_port_prefixes(8000, 8080, values, bits), 3); /* /10, /12, /16 */
	assert_int_equal(values[1], 8064);
	assert_int_equal(bits[1], 12);
	assert_int_equal(pol_port_prefixes(90, 80, values, bits), 0);
}

/* ---- identities ---- */

static void test_identities(void **state)
{
	struct pol_state st = {};
	struct pol_ident_table t1, t2, t3;
	struct pol_labels a = labels("app=a"), b = labels("app=b"), c = labels("app=c"),
			  d = labels("app=d");
	struct pol_prefix c1 = prefix("203.0.113.0/24"), c2 = prefix("fd00::/8");
	struct pol_ruleset *rs;
	size_t i;

	(void)state;
	add_endpoint(&st, "198.18.1.1", "app=a", NULL);
	add_endpoint(&st, "198.18.1.2", "app=b", NULL);
	add_endpoint(&st, "198.18.1.3", "app=a", NULL);
	add_endpoint(&st, "fd00::4", "app=c", NULL);
	rs = add_ruleset(&st, "r", POL_EST_KEEP);
	add_rule(rs, 1, "allow", "203.0.113.0/24", "", "any", "any");
	add_rule(rs, 2, "allow", "fd00::/8", "", "any", "any");
	add_rule(rs, 3, "allow", "203.0.113.0/24", "", "80", "any");
	assert_int_equal(pol_identities_assign(&st, NULL, &t1), 0);
	assert_int_equal(t1.n, 5);
	for (i = 1; i < t1.n; i++)
		assert_true(t1.ids[i - 1].id < t1.ids[i].id);
	assert_int_equal(pol_ident_of_labels(&t1, &a), SL_ID_FIRST_ENDPOINT);
	assert_int_equal(pol_ident_of_labels(&t1, &b), SL_ID_FIRST_ENDPOINT + 1);
	assert_int_equal(pol_ident_of_labels(&t1, &c), SL_ID_FIRST_ENDPOINT + 2);
	assert_int_equal(pol_ident_of_labels(&t1, &d), 0);
	assert_int_equal(pol_ident_of_cidr(&t1, &c1), SL_ID_FIRST_CIDR);
	assert_int_equal(pol_ident_of_cidr(&t1, &c2), SL_ID_FIRST_CIDR + 1);
	assert_int_equal(t1.ids[3].kind, POL_IDENT_CIDR);

	/* b and 203.0.113.0/24 go; d is new, named first, and takes b's id. */
	pol_state_free(&st);
	add_endpoint(&st, "198.18.1.1", "app=d", NULL);
	add_endpoint(&st, "fd00::4", "app=c", NULL);
	add_endpoint(&st, "198.18.1.3", "app=a", NULL);
	rs = add_ruleset(&st, "r", POL_EST_KEEP);
	add_rule(rs, 9, "allow", "fd00::/8", "", "any", "any");
	assert_int_equal(pol_identities_assign(&st, &t1, &t2), 0);
	assert_int_equal(t2.n, 4);
	assert_int_equal(pol_ident_of_labels(&t2, &a), SL_ID_FIRST_ENDPOINT);
	assert_int_equal(pol_ident_of_labels(&t2, &c), SL_ID_FIRST_ENDPOINT + 2);
	assert_int_equal(pol_ident_of_labels(&t2, &d), SL_ID_FIRST_ENDPOINT + 1);
	assert_int_equal(pol_ident_of_labels(&t2, &b), 0);
	assert_int_equal(pol_ident_of_cidr(&t2, &c2), SL_ID_FIRST_CIDR + 1);
	assert_int_equal(pol_ident_of_cidr(&t2, &c1), 0);

	/* The CIDR comes back: the lowest free CIDR id, its old one. */
	add_rule(rs, 10, "deny", "203.0.113.0/24", "", "any", "any");
	assert_int_equal(pol_identities_assign(&st, &t2, &t3), 0);
	assert_int_equal(pol_ident_of_cidr(&t3, &c1), SL_ID_FIRST_CIDR);
	assert_int_equal(pol_ident_of_cidr(&t3, &c2), SL_ID_FIRST_CIDR + 1);
	assert_int_equal(pol_ident_of_labels(&t3, &d), SL_ID_FIRST_ENDPOINT + 1);
	pol_ident_table_free(&t3);
	/* Assigning again from itself changes nothing. */
	assert_int_equal(pol_identities_assign(&st, &t2, &t3), 0);
	pol_ident_table_free(&t2);
	assert_int_equal(pol_identities_assign(&st, &t3, &t2), 0);
	assert_int_equal(t2.n, t3.n);
	assert_memory_equal(t2.ids, t3.ids, t2.n * sizeof(*t2.ids));
	pol_ident_table_free(&t1);
	pol_ident_table_free(&t2);
	pol_ident_table_free(&t3);
	assert_null(t3.ids);
	pol_state_free(&st);
}

/* ---- validation and copies ---- */

static void expect_invalid(struct pol_state *st, const char *message)
{
	struct pol_compiled c;
	char err[POL_ERR_MAX] = "";

	assert_int_equal(pol_state_validate(st, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, message);
	memset(&c, SENTINEL, sizeof(c));
	assert_int_equal(pol_compile(st, NULL, &c, err, sizeof(err)), -EINVAL);
	assert_null(c.rules);
	assert_int_equal(c.n_ipcache, 0);
	pol_state_free(st);
}

/* Two endpoints, rule sets "a" (rules 1, 2) and "b" (rule 3): valid. */
static void base_state(struct pol_state *st)
{
	struct pol_ruleset *rs;
	char err[POL_ERR_MAX] = "";

	memset(st, 0, sizeof(*st));
	add_endpoint(st, "198.18.1.2", "app=web", "/run/netns/web");
	add_endpoint(st, "fd00::2", "app=web", "/run/netns/web");
	rs = add_ruleset(st, "a", POL_EST_KEEP);
	add_rule(rs, 1, "allow", "app=web", "app=web", "80", "tcp");
	add_rule(rs, 2, "deny", "world", "app=web", "any", "any");
	rs = add_ruleset(st, "b.x_y-z", POL_EST_RECHECK);
	add_rule(rs, 3, "allow", "any", "", "any", "udp");
	if (pol_state_validate(st, err, sizeof(err)))
		fail_msg("base state: %s", err);
}

static void test_validate(void **state)
{
	struct pol_state st;
	size_t i;

	(void)state;
	base_state(&st);
	add_ruleset(&st, "a", POL_EST_KEEP);
	expect_invalid(&st, "rule set a given twice (rule sets #0 and #2)");
	base_state(&st);
	add_rule(&st.rulesets[1], 2, "allow", "any", "", "any", "any");
	expect_invalid(&st, "rule id 2 given twice (rule sets a and b.x_y-z)");
	base_state(&st);
	add_endpoint(&st, "fd00::2", "app=db", NULL);
	expect_invalid(&st, "endpoint fd00::2 given twice (endpoints #1 and #2)");
	base_state(&st);
	add_endpoint(&st, "198.18.1.3", "app=db", "/run/netns/web");
	expect_invalid(&st, "netns /run/netns/web has two IPv4 endpoints (endpoints #0 and #2)");
	base_state(&st);
	st.rulesets[1].rules[0].id = 0;
	expect_invalid(&st, "rule set b.x_y-z: rule #0 has id 0");
	base_state(&st);
	st.rulesets[1].rules[0].id = POL_RULE_ID_MAX + 1; /* the config could not read it back */
	expect_invalid(&st, "rule 2147483648: ids go up to 2147483647");
	base_state(&st);
	snprintf(st.rulesets[0].name, POL_NAME_MAX, "a b");
	expect_invalid(
		&st,
		"rule set name \"a b\": empty, too long or with characters other than A-Z a-z 0-9 . _ -");
	base_state(&st);
	st.rulesets[0].name[0] = '\0';
	expect_invalid(
		&st,
		"rule set name \"\": empty, too long or with characters other than A-Z a-z 0-9 . _ -");
	base_state(&st);
	st.rulesets[0].rules[1].protos = 0;
	expect_invalid(&st, "rule 2: invalid protocols 0x0");
	base_state(&st);
	st.rulesets[0].rules[0].ports[0].first = 81;
	expect_invalid(&st, "rule 1: invalid port range 81-80");
	base_state(&st);
	st.rulesets[0].rules[0].action = 0;
	expect_invalid(&st, "rule 1: invalid action 0");
	base_state(&st);
	st.rulesets[0].rules[0].from.cidr = prefix("10.0.0.0/8");
	st.rulesets[0].rules[0].from.kind = POL_PEER_CIDR;
	st.rulesets[0].rules[0].from.cidr.prefixlen = 6; /* 10.0.0.0/6: host bits */
	expect_invalid(&st, "rule 1: malformed from");
	base_state(&st);
	st.endpoints[0].addr.prefixlen = 24;
	expect_invalid(&st, "endpoint #0: not a single IPv4 or IPv6 address");
	base_state(&st);
	for (i = 0; i < POL_MAX_RULES - 2; i++)
		add_rule(&st.rulesets[1], 100 + (uint32_t)i, "deny", "any", "", "any", "any");
	expect_invalid(&st, "4097 rules, the limit is 4096");
}

/* An endpoint's netns: "" or an absolute path of printable ASCII (the
 * state file's YAML writer escapes nothing else, and its reader refuses
 * control characters and bad UTF-8). */
static void test_validate_netns(void **state)
{
	static const char *const bad[] = { "run/netns/web",	  "web",
					   "/run/netns/a\nb",	  "/run/netns/\tweb",
					   "/run/netns/web\r",	  "/run/netns/\x7f",
					   "/run/netns/\x1b[0m",  "/run/netns/\xc3\xa9",
					   "/run/netns/\xc2\x85", "/run/netns/\xff" };
	static const char *const good[] = { "", "/", "/run/netns/web 2", "/run/netns/a~b",
					    "/proc/1/ns/net" };
	char err[POL_ERR_MAX] = "";
	struct pol_state st;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		base_state(&st);
		snprintf(st.endpoints[0].netns, POL_NETNS_MAX, "%s", bad[i]);
		expect_invalid(
			&st,
			"endpoint 198.18.1.2: netns must be an absolute path of printable ASCII, "
			"without control characters");
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		base_state(&st);
		snprintf(st.endpoints[0].netns, POL_NETNS_MAX, "%s", good[i]);
		if (pol_state_validate(&st, err, sizeof(err)))
			fail_msg("netns \"%s\": %s", good[i], err);
		pol_state_free(&st);
	}
}

static void test_state_copy(void **state)
{
	struct pol_state st, copy;
	char err[POL_ERR_MAX] = "";
	size_t i;

	(void)state;
	base_state(&st);
	assert_int_equal(pol_state_copy(&copy, &st), 0);
	assert_int_equal(copy.n_endpoints, 2);
	assert_int_equal(copy.n_rulesets, 2);
	assert_ptr_not_equal(copy.endpoints, st.endpoints);
	assert_memory_equal(copy.endpoints, st.endpoints, 2 * sizeof(*st.endpoints));
	for (i = 0; i < 2; i++) {
		assert_ptr_not_equal(copy.rulesets[i].rules, st.rulesets[i].rules);
		assert_int_equal(copy.rulesets[i].n_rules, st.rulesets[i].n_rules);
		assert_memory_equal(copy.rulesets[i].rules, st.rulesets[i].rules,
				    st.rulesets[i].n_rules * sizeof(struct pol_rule));
	}
	pol_state_free(&st);
	assert_null(st.rulesets);
	assert_int_equal(pol_state_validate(&copy, err, sizeof(err)), 0);
	pol_state_free(&copy);
	memset(&st, 0, sizeof(st));
	assert_int_equal(pol_state_copy(&copy, &st), 0);
	assert_null(copy.endpoints);
	assert_int_equal(pol_state_validate(&copy, err, sizeof(err)), 0);
	pol_state_free(&copy);
}

/* ---- compilation ---- */

static void test_compile_allow(void **state)
{
	struct pol_state st = {};
	struct pol_compiled c, c2;
	const struct pol_rule_entry *e;
	uint32_t web, db;

	(void)state;
	add_endpoint(&st, "198.18.1.2", "app=web", NULL);
	add_endpoint(&st, "198.18.1.3", "app=db", NULL);
	add_endpoint(&st, "fd00::3", "app=db", NULL);
	add_rule(add_ruleset(&st, "db", POL_EST_KEEP), 7, "allow", "app=web", "app=db", "5432",
		 "tcp");
	compile_ok(&st, &c);
	web = id_of(&c, "app=web");
	db = id_of(&c, "app=db");
	assert_int_equal(web, SL_ID_FIRST_ENDPOINT);
	assert_int_equal(db, SL_ID_FIRST_ENDPOINT + 1);
	assert_int_equal(c.n_rules, 1);
	e = &c.rules[0];
	assert_int_equal(e->action, POL_ALLOW);
	assert_int_equal(e->rule_id, 7);
	assert_int_equal(e->key.prefixlen, SL_POL_KEY_BITS);
	assert_int_equal(e->key.dst_id, db);
	assert_int_equal(e->key.src_id, web);
	assert_int_equal(e->key.proto, SL_PROTO_TCP);
	assert_int_equal(e->key.dport, htons(5432));
	assert_entries_sane(&c);
	assert_int_equal(c.n_dsts, 1);
	assert_int_equal(c.dsts[0].dst_id, db);
	assert_int_equal(c.dsts[0].flags, SL_POL_DST_ALLOW_SELECTED);
	assert_int_equal(c.n_ipcache, 3);
	assert_int_equal(c.ipcache[0].identity, web);
	assert_int_equal(c.ipcache[0].prefix.addr[0], inet_addr("198.18.1.2"));
	assert_int_equal(c.ipcache[0].prefix.prefixlen, 32);
	assert_int_equal(c.ipcache[2].identity, db);
	assert_int_equal(c.ipcache[2].prefix.family, SL_AF_INET6);
	assert_int_equal(c.n_netns, 0);

	/* Without web, db keeps its identity when compiled against the last. */
	st.endpoints[0] = st.endpoints[2];
	st.n_endpoints = 2;
	assert_int_equal(pol_compile(&st, &c.idents, &c2, NULL, 0), 0);
	assert_int_equal(id_of(&c2, "app=db"), db);
	assert_int_equal(id_of(&c2, "app=web"), 0);
	assert_int_equal(c2.n_rules, 0);
	assert_int_equal(c2.n_dsts, 1);
	pol_compiled_free(&c2);
	pol_compiled_free(&c);
	assert_null(c.rules);
	pol_state_free(&st);
}

static void test_compile_deny_any(void **state)
{
	struct pol_state st = {};
	struct pol_compiled c;
	uint32_t db;

	(void)state;
	add_endpoint(&st, "198.18.1.3", "app=db", NULL);
	add_rule(add_ruleset(&st, "db", POL_EST_KEEP), 1, "deny", "any", "app=db", "any", "any");
	compile_ok(&st, &c);
	db = id_of(&c, "app=db");
	/* Every source, both protocols, every port: two entries stopping before the port. */
	assert_int_equal(c.n_rules, 2);
	assert_non_null(find_entry(&c, POL_DENY, db, SL_ID_ANY, SL_PROTO_TCP, 0, 0));
	assert_non_null(find_entry(&c, POL_DENY, db, SL_ID_ANY, SL_PROTO_UDP, 0, 0));
	assert_int_equal(c.rules[0].key.prefixlen, SL_POL_KEY_EXACT_BITS);
	/* A deny rule alone leaves it open: only its deny entries are looked up. */
	assert_int_equal(c.n_dsts, 1);
	assert_int_equal(c.dsts[0].dst_id, db);
	assert_int_equal(c.dsts[0].flags, SL_POL_DST_DENY_SELECTED);
	pol_compiled_free(&c);

	add_rule(&st.rulesets[0], 2, "allow", "host", "app=db", "1-65535", "udp");
	compile_ok(&st, &c);
	assert_int_equal(c.n_rules, 2 + 16);
	assert_non_null(find_entry(&c, POL_ALLOW, db, SL_ID_HOST, SL_PROTO_UDP, 1, 16));
	assert_non_null(find_entry(&c, POL_ALLOW, db, SL_ID_HOST, SL_PROTO_UDP, 32768, 1));
	assert_null(find_entry(&c, POL_ALLOW, db, SL_ID_HOST, SL_PROTO_TCP, 32768, 1));
	assert_entries_sane(&c);
	pol_compiled_free(&c);
	pol_state_free(&st);
}

static void test_compile_world_cidr(void **state)
{
	struct pol_state st = {};
	struct pol_ruleset *rs;
	struct pol_compiled c;
	uint32_t db, c8, c16, c6, c32;

	(void)state;
	add_endpoint(&st, "198.18.1.3", "app=db", NULL);
	add_endpoint(&st, "10.1.2.3", "app=x", NULL);
	rs = add_ruleset(&st, "db", POL_EST_KEEP);
	add_rule(rs, 1, "allow", "10.0.0.0/8", "app=db", "80", "tcp");
	add_rule(rs, 2, "allow", "10.1.0.0/16", "app=db", "81", "tcp");
	add_rule(rs, 3, "allow", "fd00::/8", "app=db", "82", "tcp");
	add_rule(rs, 4, "allow", "world", "app=db", "83", "tcp");
	add_rule(rs, 5, "allow", "10.1.2.3/32", "app=db", "84", "tcp");
	compile_ok(&st, &c);
	db = id_of(&c, "app=db");
	c8 = cidr_id(&c, "10.0.0.0/8");
	c16 = cidr_id(&c, "10.1.0.0/16");
	c6 = cidr_id(&c, "fd00::/8");
	c32 = cidr_id(&c, "10.1.2.3/32");
	assert_int_equal(c8, SL_ID_FIRST_CIDR);
	assert_int_equal(c16, SL_ID_FIRST_CIDR + 1);
	assert_int_equal(c6, SL_ID_FIRST_CIDR + 2);
	assert_int_equal(c32, SL_ID_FIRST_CIDR + 3);
	/* 10/8 covers its own identity, 10.1/16's and the /32's; not the IPv6 one. */
	assert_non_null(find_entry(&c, POL_ALLOW, db, c8, SL_PROTO_TCP, 80, 16));
	assert_non_null(find_entry(&c, POL_ALLOW, db, c16, SL_PROTO_TCP, 80, 16));
	assert_non_null(find_entry(&c, POL_ALLOW, db, c32, SL_PROTO_TCP, 80, 16));
	assert_null(find_entry(&c, POL_ALLOW, db, c6, SL_PROTO_TCP, 80, 16));
	assert_null(find_entry(&c, POL_ALLOW, db, c8, SL_PROTO_TCP, 81, 16));
	assert_non_null(find_entry(&c, POL_ALLOW, db, c16, SL_PROTO_TCP, 81, 16));
	assert_non_null(find_entry(&c, POL_ALLOW, db, c6, SL_PROTO_TCP, 82, 16));
	/* world: SL_ID_WORLD and every CIDR identity. */
	assert_non_null(find_entry(&c, POL_ALLOW, db, SL_ID_WORLD, SL_PROTO_TCP, 83, 16));
	assert_non_null(find_entry(&c, POL_ALLOW, db, c8, SL_PROTO_TCP, 83, 16));
	assert_non_null(find_entry(&c, POL_ALLOW, db, c6, SL_PROTO_TCP, 83, 16));
	assert_int_equal(c.n_rules, 3 + 2 + 1 + 5 + 1);
	/* ipcache: the endpoints, then the CIDRs but the one that is an endpoint. */
	assert_int_equal(c.n_ipcache, 2 + 3);
	assert_int_equal(c.ipcache[1].identity, id_of(&c, "app=x"));
	assert_int_equal(c.ipcache[2].identity, c8);
	assert_int_equal(c.ipcache[2].prefix.prefixlen, 8);
	assert_int_equal(c.ipcache[4].identity, c6);
	assert_entries_sane(&c);
	pol_compiled_free(&c);
	pol_state_free(&st);
}

static void test_compile_dedupe(void **state)
{
	struct pol_state st = {};
	struct pol_ruleset *rs;
	struct pol_compiled c;
	const struct pol_rule_entry *e;
	uint32_t web, db;

	(void)state;
	add_endpoint(&st, "198.18.1.2", "app=web", NULL);
	add_endpoint(&st, "198.18.1.3", "app=db,tier=2", NULL);
	add_endpoint(&st, "198.18.1.4", "app=db,tier=2", NULL); /* same identity */
	rs = add_ruleset(&st, "first", POL_EST_KEEP);
	add_rule(rs, 20, "allow", "app=web", "app=db", "80", "tcp");
	add_rule(rs, 30, "allow", "app", "tier=2", "80,80,64-127", "tcp");
	rs = add_ruleset(&st, "second", POL_EST_KEEP);
	add_rule(rs, 10, "allow", "app=web", "app=db", "80", "tcp");
	add_rule(rs, 40, "deny", "app=web", "app=db", "80", "tcp");
	compile_ok(&st, &c);
	web = id_of(&c, "app=web");
	db = id_of(&c, "app=db,tier=2");
	e = find_entry(&c, POL_ALLOW, db, web, SL_PROTO_TCP, 80, 16);
	assert_non_null(e);
	assert_int_equal(e->rule_id, 10); /* the lower id, though rule 20 came first */
	assert_non_null(find_entry(&c, POL_DENY, db, web, SL_PROTO_TCP, 80, 16));
	assert_int_equal(find_entry(&c, POL_DENY, db, web, SL_PROTO_TCP, 80, 16)->rule_id, 40);
	e = find_entry(&c, POL_ALLOW, db, db, SL_PROTO_TCP, 64, 10);
	assert_non_null(e);
	assert_int_equal(e->rule_id, 30);
	/* Rule 30: sources web and db, ports 80 and 64/10 once each. */
	assert_int_equal(c.n_rules, 2 * 2 + 1);
	assert_entries_sane(&c);
	pol_compiled_free(&c);
	pol_state_free(&st);
}

static void test_compile_dsts(void **state)
{
	struct pol_state st = {};
	struct pol_ruleset *keep, *recheck;
	struct pol_compiled c;

	(void)state;
	add_endpoint(&st, "198.18.1.1", "app=a", NULL);
	add_endpoint(&st, "198.18.1.2", "app=b", NULL);
	add_endpoint(&st, "198.18.1.3", "app=c", NULL);
	add_endpoint(&st, "198.18.1.4", "app=d", NULL);
	keep = add_ruleset(&st, "keep", POL_EST_KEEP);
	add_rule(keep, 1, "allow", "any", "app=a", "any", "any");
	add_rule(keep, 2, "allow", "any", "app=c", "any", "any");
	add_rule(keep, 3, "deny", "any", "app=d", "any", "any");
	recheck = add_ruleset(&st, "recheck", POL_EST_RECHECK);
	add_rule(recheck, 4, "deny", "any", "app=b", "any", "any");
	add_rule(recheck, 5, "deny", "host", "app=c", "any", "any");
	compile_ok(&st, &c);
	assert_int_equal(c.n_dsts, 4);
	assert_int_equal(dst_flags(&c, id_of(&c, "app=a")), SL_POL_DST_ALLOW_SELECTED);
	assert_int_equal(dst_flags(&c, id_of(&c, "app=b")),
			 SL_POL_DST_DENY_SELECTED | SL_POL_DST_RECHECK);
	assert_int_equal(dst_flags(&c, id_of(&c, "app=c")),
			 SL_POL_DST_ALLOW_SELECTED | SL_POL_DST_DENY_SELECTED | SL_POL_DST_RECHECK);
	assert_int_equal(dst_flags(&c, id_of(&c, "app=d")), SL_POL_DST_DENY_SELECTED);
	assert_true(c.dsts[0].dst_id < c.dsts[1].dst_id && c.dsts[1].dst_id < c.dsts[2].dst_id &&
		    c.dsts[2].dst_id < c.dsts[3].dst_id);
	pol_compiled_free(&c);

	/* A destination no rule selects has no entry. */
	st.rulesets[0].rules[2].to = selector("app=nothing");
	compile_ok(&st, &c);
	assert_int_equal(c.n_dsts, 3);
	assert_int_equal(dst_flags(&c, id_of(&c, "app=d")), 0);
	pol_compiled_free(&c);
	pol_state_free(&st);
}

static void test_compile_netns(void **state)
{
	struct pol_state st = {};
	struct pol_compiled c;
	struct in6_addr six;
	size_t i;

	(void)state;
	add_endpoint(&st, "198.18.1.2", "app=b", "/run/netns/b");
	add_endpoint(&st, "198.18.1.3", "app=a", "/run/netns/a");
	add_endpoint(&st, "fd00::3", "app=a", "/run/netns/a");
	add_endpoint(&st, "198.18.1.4", "app=c", NULL);
	add_endpoint(&st, "fd00::5", "app=d", "/run/netns/d");
	compile_ok(&st, &c);
	assert_int_equal(c.n_netns, 3);
	assert_string_equal(c.netns[0].path, "/run/netns/a");
	assert_int_equal(c.netns[0].addrs.addr4, inet_addr("198.18.1.3"));
	inet_pton(AF_INET6, "fd00::3", &six);
	assert_memory_equal(c.netns[0].addrs.addr6, &six, 16);
	assert_string_equal(c.netns[1].path, "/run/netns/b");
	assert_int_equal(c.netns[1].addrs.addr4, inet_addr("198.18.1.2"));
	for (i = 0; i < 4; i++)
		assert_int_equal(c.netns[1].addrs.addr6[i], 0);
	assert_string_equal(c.netns[2].path, "/run/netns/d");
	assert_int_equal(c.netns[2].addrs.addr4, 0);
	assert_int_equal(c.n_rules, 0);
	assert_int_equal(c.n_dsts, 0);
	pol_compiled_free(&c);
	pol_state_free(&st);
}

/* @n endpoints of @n label sets, one rule: everyone to everyone, both
 * protocols, 1-65535 (16 prefixes): 32 n^2 allow entries. */
static void all_to_all(struct pol_state *st, unsigned int n)
{
	char addr[32], lbl[32];
	unsigned int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < n; i++) {
		snprintf(addr, sizeof(addr), "198.18.%u.%u", i / 250, i % 250 + 1);
		snprintf(lbl, sizeof(lbl), "app=a%u", i);
		add_endpoint(st, addr, lbl, NULL);
	}
	add_rule(add_ruleset(st, "all", POL_EST_KEEP), 1, "allow", "", "", "1-65535", "any");
}

static void expect_e2big(struct pol_state *st, const char *message)
{
	struct pol_compiled c;
	char err[POL_ERR_MAX] = "";

	memset(&c, SENTINEL, sizeof(c));
	assert_int_equal(pol_compile(st, NULL, &c, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, message);
	assert_null(c.rules);
	assert_null(c.idents.ids);
	assert_int_equal(c.n_rules, 0);
	pol_state_free(st);
}

static void test_compile_limits(void **state)
{
	struct pol_state st;
	struct pol_compiled c;
	char path[64];
	unsigned int i;

	(void)state;
	all_to_all(&st, 64); /* 131072: just fits */
	compile_ok(&st, &c);
	assert_int_equal(c.n_rules, SL_POL_RULE_SIZE / 2);
	pol_compiled_free(&c);
	pol_state_free(&st);
	all_to_all(&st, 70);
	expect_e2big(
		&st,
		"policy compiles to 156800 allow entries, the maps hold 131072 per generation");
	all_to_all(&st, 100);
	expect_e2big(
		&st,
		"policy compiles to more than 262144 allow entries, the maps hold 131072 per generation");

	memset(&st, 0, sizeof(st));
	for (i = 0; i <= SL_POL_NETNS_SIZE / 2; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "198.18.%u.%u", i / 250, i % 250 + 1);
		snprintf(path, sizeof(path), "/run/netns/n%u", i);
		add_endpoint(&st, addr, "app=x", path);
	}
	expect_e2big(&st, "policy has 4097 network namespaces, the map holds 4096 per generation");
}

/* 10,000 endpoints of 100 label sets, 1,000 rules: compile and print the time. */
static void test_compile_scale(void **state)
{
	struct pol_state st = {};
	struct pol_ruleset *rs = NULL;
	struct timespec t0, t1;
	struct pol_compiled c;
	char addr[32], lbl[64], from[32], to[32];
	double ms;
	unsigned int i;

	(void)state;
	for (i = 0; i < 10000; i++) {
		snprintf(addr, sizeof(addr), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		snprintf(lbl, sizeof(lbl), "app=a%u,tier=t%u,env=prod", i % 100, i % 10);
		add_endpoint(&st, addr, lbl, NULL);
	}
	for (i = 0; i < 1000; i++) {
		if (i % 100 == 0) {
			snprintf(lbl, sizeof(lbl), "set%u", i / 100);
			rs = add_ruleset(&st, lbl, i % 200 ? POL_EST_KEEP : POL_EST_RECHECK);
		}
		/* From 10 label sets to 1, a different pair for each rule. */
		snprintf(from, sizeof(from), "tier=t%u", (i / 100) % 10);
		snprintf(to, sizeof(to), "app=a%u", i % 100);
		add_rule(rs, i + 1, i % 5 ? "allow" : "deny", from, to, "80,8000-8080", "any");
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	compile_ok(&st, &c);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	printf("compile: 10000 endpoints, 100 label sets, 1000 rules -> %zu entries, %zu dsts "
	       "in %.1f ms\n",
	       c.n_rules, c.n_dsts, ms);
	assert_int_equal(c.idents.n, 100);
	assert_int_equal(c.n_ipcache, 10000);
	assert_int_equal(c.n_dsts, 100);
	/* 1000 rules x 10 sources x 2 protocols x 4 port prefixes, no two alike. */
	assert_int_equal(c.n_rules, 1000 * 10 * 2 * 4);
	pol_compiled_free(&c);
	pol_state_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_labels_parse),	 cmocka_unit_test(test_labels_reject),
		cmocka_unit_test(test_selector_parse),	 cmocka_unit_test(test_peer_parse),
		cmocka_unit_test(test_ports_parse),	 cmocka_unit_test(test_protos),
		cmocka_unit_test(test_prefix_parse),	 cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_selector_match),	 cmocka_unit_test(test_prefix_within),
		cmocka_unit_test(test_port_prefixes),	 cmocka_unit_test(test_identities),
		cmocka_unit_test(test_validate),	 cmocka_unit_test(test_validate_netns),
		cmocka_unit_test(test_state_copy),	 cmocka_unit_test(test_compile_allow),
		cmocka_unit_test(test_compile_deny_any), cmocka_unit_test(test_compile_world_cidr),
		cmocka_unit_test(test_compile_dedupe),	 cmocka_unit_test(test_compile_dsts),
		cmocka_unit_test(test_compile_netns),	 cmocka_unit_test(test_compile_limits),
		cmocka_unit_test(test_compile_scale),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
