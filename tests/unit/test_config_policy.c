/* Unit tests for the policy keys of the config (user/lib/config_policy.c,
 * config_write.c): a full policy read into the expected structs (ids given
 * after the highest one, defaults, every `from` form), the written state
 * read back to the same state, a table of invalid policies each refused at
 * an exact position with its field path and reason, and the limits. */
#define _GNU_SOURCE /* open_memstream */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "policy.h"

static int load(const char *text, struct cfg_state *st, struct cfg_error *err)
{
	return cfg_load_buffer("test.yaml", text, strlen(text), st, err);
}

struct bad_case {
	const char *desc;
	const char *text;
	unsigned int line, column;
	const char *field;
	const char *message; /* a substring */
};

static const char policy_config[] =
	"services: []\n"
	"endpoints:\n"
	"  - address: 198.18.1.2\n" /* line 3 */
	"    labels: { app: web, env: prod }\n"
	"    netns: /run/netns/web\n"
	"  - address: fd00::3\n" /* line 6 */
	"    labels:\n"
	"      tier: \"\"\n"
	"      k8s.io/app: db\n"
	"  - { address: 198.18.1.4, labels: ~ }\n" /* line 10 */
	"policies:\n"
	"  - name: db-access\n" /* line 12 */
	"    established: recheck\n"
	"    rules:\n"
	"      - action: allow\n" /* line 15: id 11 */
	"        from: app=web\n"
	"        to: k8s.io/app=db\n"
	"        ports: [5432, \"8000-8080\", 9000-9001]\n"
	"        protocol: tcp\n"
	"      - id: 10\n" /* line 20 */
	"        action: deny\n"
	"        from: \"!trusted\"\n"
	"        to: \"\"\n"
	"        ports: \"80,443\"\n"
	"  - name: world.in_1\n" /* line 25 */
	"    established: keep\n"
	"    rules:\n"
	"      - { action: allow, from: 203.0.113.0/24, to: app=web, ports: 443, protocol: udp }\n"
	"      - { id: 3, action: allow, from: world, to: \"env!=prod,tier\", ports: any }\n"
	"      - { action: allow, from: host, to: app=web }\n"
	"      - { action: deny, from: \"fd00:1::/64\", to: app=web, protocol: any }\n"
	"      - { action: allow, from: any, to: app }\n"
	"  - name: empty\n"
	"    rules:\n";

static void assert_labels(const struct pol_labels *got, const char *text)
{
	struct pol_labels want;
	char err[POL_ERR_MAX];

	assert_int_equal(pol_labels_parse(text, &want, err, sizeof(err)), 0);
	assert_memory_equal(got, &want, sizeof(want));
}

static void assert_selector(const struct pol_selector *got, const char *text)
{
	struct pol_selector want;
	char err[POL_ERR_MAX];

	assert_int_equal(pol_selector_parse(text, &want, err, sizeof(err)), 0);
	assert_memory_equal(got, &want, sizeof(want));
}

static void assert_prefix(const struct pol_prefix *got, const char *text)
{
	char buf[64];

	pol_prefix_format(got, buf, sizeof(buf));
	assert_string_equal(buf, text);
}

static void assert_ports(const struct pol_rule *rule, const char *text)
{
	char buf[256];

	pol_ports_format(rule->ports, rule->n_ports, buf, sizeof(buf));
	assert_string_equal(buf, text);
}

static void check_policy_endpoints(const struct pol_state *pol)
{
	const struct pol_endpoint *ep = pol->endpoints;

	assert_int_equal(pol->n_endpoints, 3);
	assert_prefix(&ep[0].addr, "198.18.1.2");
	assert_int_equal(ep[0].addr.family, SL_AF_INET);
	assert_int_equal(ep[0].addr.prefixlen, 32);
	assert_labels(&ep[0].labels, "env=prod,app=web");
	assert_string_equal(ep[0].netns, "/run/netns/web");
	assert_int_equal(ep[0].line, 3);
	assert_int_equal(ep[0].column, 5);
	assert_prefix(&ep[1].addr, "fd00::3");
	assert_int_equal(ep[1].addr.prefixlen, 128);
	assert_labels(&ep[1].labels, "k8s.io/app=db,tier=");
	assert_string_equal(ep[1].labels.l[0].key, "k8s.io/app"); /* sorted */
	assert_string_equal(ep[1].netns, "");
	assert_int_equal(ep[1].line, 6);
	assert_labels(&ep[2].labels, "");
	assert_int_equal(ep[2].line, 10);
	assert_int_equal(ep[2].column, 5);
}

static void check_policy_db(const struct pol_ruleset *rs)
{
	const struct pol_rule *r = rs->rules;

	assert_string_equal(rs->name, "db-access");
	assert_int_equal(rs->established, POL_EST_RECHECK);
	assert_int_equal(rs->line, 12);
	assert_int_equal(rs->n_rules, 2);
	assert_int_equal(r[0].id, 11); /* after 10, the highest id given */
	assert_int_equal(r[0].action, POL_ALLOW);
	assert_int_equal(r[0].from.kind, POL_PEER_SELECTOR);
	assert_selector(&r[0].from.sel, "app=web");
	assert_selector(&r[0].to, "k8s.io/app=db");
	assert_ports(&r[0], "5432,8000-8080,9000-9001");
	assert_int_equal(r[0].protos, POL_TCP);
	assert_int_equal(r[0].line, 15);
	assert_int_equal(r[0].column, 9);
	assert_int_equal(r[1].id, 10);
	assert_int_equal(r[1].action, POL_DENY);
	assert_selector(&r[1].from.sel, "!trusted");
	assert_int_equal(r[1].from.sel.t[0].op, POL_SEL_ABSENT);
	assert_int_equal(r[1].to.n, 0); /* every endpoint */
	assert_ports(&r[1], "80,443");
	assert_int_equal(r[1].protos, POL_ANY_PROTO);
	assert_int_equal(r[1].line, 20);
}

static void check_policy_world(const struct pol_ruleset *rs)
{
	const struct pol_rule *r = rs->rules;

	assert_string_equal(rs->name, "world.in_1");
	assert_int_equal(rs->established, POL_EST_KEEP);
	assert_int_equal(rs->n_rules, 5);
	assert_int_equal(r[0].id, 12);
	assert_int_equal(r[0].from.kind, POL_PEER_CIDR);
	assert_prefix(&r[0].from.cidr, "203.0.113.0/24");
	assert_ports(&r[0], "443");
	assert_int_equal(r[0].protos, POL_UDP);
	assert_int_equal(r[0].line, 28);
	assert_int_equal(r[0].column, 9);
	assert_int_equal(r[1].id, 3);
	assert_int_equal(r[1].from.kind, POL_PEER_WORLD);
	assert_selector(&r[1].to, "env!=prod,tier");
	assert_int_equal(r[1].n_ports, 0); /* "any" */
	assert_int_equal(r[2].id, 13);
	assert_int_equal(r[2].from.kind, POL_PEER_HOST);
	assert_int_equal(r[3].id, 14);
	assert_int_equal(r[3].action, POL_DENY);
	assert_int_equal(r[3].from.kind, POL_PEER_CIDR);
	assert_prefix(&r[3].from.cidr, "fd00:1::/64");
	assert_int_equal(r[4].id, 15);
	assert_int_equal(r[4].from.kind, POL_PEER_ANY);
	assert_int_equal(r[4].to.t[0].op, POL_SEL_EXISTS);
}

static void test_policy(void **state)
{
	struct cfg_state st;
	struct cfg_error err;
	char msg[1024];
	int ret;

	(void)state;
	ret = load(policy_config, &st, &err);
	cfg_error_format(&err, msg, sizeof(msg));
	assert_int_equal(ret, 0);
	assert_int_equal(st.n_services, 0);
	check_policy_endpoints(&st.policy);
	assert_int_equal(st.policy.n_rulesets, 3);
	check_policy_db(&st.policy.rulesets[0]);
	check_policy_world(&st.policy.rulesets[1]);
	assert_string_equal(st.policy.rulesets[2].name, "empty");
	assert_int_equal(st.policy.rulesets[2].n_rules, 0);
	assert_null(st.policy.rulesets[2].rules);
	assert_int_equal(pol_state_validate(&st.policy, msg, sizeof(msg)), 0);
	cfg_free(&st);
	assert_null(st.policy.endpoints);
	assert_null(st.policy.rulesets);
	assert_int_equal(st.policy.n_rulesets, 0);
}

/* Everything but the file positions. */
static void assert_rules_same(const struct pol_ruleset *a, const struct pol_ruleset *b)
{
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->established, b->established);
	assert_int_equal(a->n_rules, b->n_rules);
	for (size_t j = 0; j < a->n_rules; j++) {
		const struct pol_rule *x = &a->rules[j], *y = &b->rules[j];

		assert_int_equal(x->id, y->id);
		assert_int_equal(x->action, y->action);
		assert_int_equal(x->from.kind, y->from.kind);
		assert_memory_equal(&x->from.sel, &y->from.sel, sizeof(x->from.sel));
		assert_int_equal(x->from.cidr.family, y->from.cidr.family);
		assert_int_equal(x->from.cidr.prefixlen, y->from.cidr.prefixlen);
		assert_memory_equal(x->from.cidr.addr, y->from.cidr.addr,
				    sizeof(x->from.cidr.addr));
		assert_memory_equal(&x->to, &y->to, sizeof(x->to));
		assert_int_equal(x->n_ports, y->n_ports);
		assert_memory_equal(x->ports, y->ports, x->n_ports * sizeof(x->ports[0]));
		assert_int_equal(x->protos, y->protos);
	}
}

static void assert_policy_same(const struct pol_state *a, const struct pol_state *b)
{
	assert_int_equal(a->n_endpoints, b->n_endpoints);
	for (size_t i = 0; i < a->n_endpoints; i++) {
		const struct pol_endpoint *x = &a->endpoints[i], *y = &b->endpoints[i];

		assert_int_equal(x->addr.family, y->addr.family);
		assert_int_equal(x->addr.prefixlen, y->addr.prefixlen);
		assert_memory_equal(x->addr.addr, y->addr.addr, sizeof(x->addr.addr));
		assert_memory_equal(&x->labels, &y->labels, sizeof(x->labels));
		assert_string_equal(x->netns, y->netns);
	}
	assert_int_equal(a->n_rulesets, b->n_rulesets);
	for (size_t i = 0; i < a->n_rulesets; i++)
		assert_rules_same(&a->rulesets[i], &b->rulesets[i]);
}

static char *write_state(const struct cfg_state *st)
{
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(cfg_write(f, st), 0);
	fclose(f);
	return text;
}

/* cfg_write() gives what parses back to the same state (the agent's state
 * file), quoting what YAML would misread; cfg_copy() copies it all. */
static void test_policy_round_trip(void **state)
{
	struct cfg_state st, again, copy;
	struct cfg_error err;
	char *text, *text2;

	(void)state;
	assert_int_equal(load(policy_config, &st, NULL), 0);
	text = write_state(&st);
	assert_non_null(strstr(text, "endpoints:\n  - address: 198.18.1.2\n"
				     "    labels: { app: web, env: prod }\n"
				     "    netns: \"/run/netns/web\"\n"
				     "  - address: \"fd00::3\"\n"
				     "    labels: { k8s.io/app: db, tier: \"\" }\n"));
	assert_non_null(strstr(text, "        from: \"!trusted\"\n        to: \"\"\n"));
	assert_non_null(strstr(text, "        ports: [5432, 8000-8080, 9000-9001]\n"));
	assert_non_null(strstr(text, "        from: \"fd00:1::/64\"\n"));
	assert_non_null(strstr(text, "  - name: empty\n    rules: []\n"));
	assert_int_equal(load(text, &again, &err), 0);
	assert_policy_same(&st.policy, &again.policy);
	text2 = write_state(&again);
	assert_string_equal(text, text2); /* a fixed point */
	assert_int_equal(cfg_copy(&copy, &st), 0);
	assert_policy_same(&st.policy, &copy.policy);
	assert_ptr_not_equal(copy.policy.rulesets[0].rules, st.policy.rulesets[0].rules);
	free(text);
	free(text2);
	cfg_free(&copy);
	cfg_free(&again);
	cfg_free(&st);
}

/* Without a policy the output is what it was before policies existed. */
static void test_write_without_policy(void **state)
{
	struct cfg_state st;
	char *text;

	(void)state;
	assert_int_equal(load("services:\n  - vip: 198.19.0.1:80/tcp\nendpoints: []\n", &st, NULL),
			 0);
	text = write_state(&st);
	assert_string_equal(text, "services:\n  - vip: \"198.19.0.1:80/tcp\"\n    backends: []\n");
	free(text);
	cfg_free(&st);
}

#define POL "policies:\n  - name: db\n    rules:\n" /* rules[0] on line 4 */
#define EPS "endpoints:\n  - address: 198.18.1.2\n" /* endpoints[0] on line 2 */

static const struct bad_case bad_policy_cases[] = {
	{ "missing action", POL "      - from: app=web\n        to: app=db\n", 4, 9,
	  "policies[0].rules[0].action", "missing required key 'action'" },
	{ "missing to", POL "      - { action: deny, from: any }\n", 4, 9,
	  "policies[0].rules[0].to", "missing required key 'to'" },
	{ "bad action", POL "      - { action: drop, from: any, to: \"\" }\n", 4, 19,
	  "policies[0].rules[0].action", "unknown action 'drop' (allow or deny)" },
	{ "bad source selector", POL "      - { action: allow, from: \"app=web,,x\", to: \"\" }\n",
	  4, 32, "policies[0].rules[0].from", "empty selector term" },
	{ "bad destination selector",
	  POL "      - action: allow\n        from: any\n        to: app=d b\n", 6, 13,
	  "policies[0].rules[0].to", "selector value \"d b\": invalid character ' '" },
	{ "bad CIDR", POL "      - { action: allow, from: 10.0.0.1/8, to: \"\" }\n", 4, 32,
	  "policies[0].rules[0].from", "host bits set" },
	{ "port out of range",
	  POL "      - { action: allow, from: any, to: \"\", ports: [80, 70000] }\n", 4, 57,
	  "policies[0].rules[0].ports[1]", "70000 is out of range 1..65535" },
	{ "port range reversed",
	  POL "      - { action: allow, from: any, to: \"\", ports: 90-80 }\n", 4, 52,
	  "policies[0].rules[0].ports", "first above last" },
	{ "empty port list", POL "      - { action: allow, from: any, to: \"\", ports: [] }\n", 4,
	  52, "policies[0].rules[0].ports", "an empty list: leave 'ports' out for every port" },
	{ "any in a port list",
	  POL "      - { action: allow, from: any, to: \"\", ports: [any] }\n", 4, 53,
	  "policies[0].rules[0].ports[0]", "'any' inside a list" },
	{ "bad protocol", POL "      - { action: allow, from: any, to: \"\", protocol: icmp }\n", 4,
	  55, "policies[0].rules[0].protocol", "expected tcp, udp or any" },
	{ "unknown rule key", POL "      - { acton: allow, from: any, to: \"\" }\n", 4, 11,
	  "policies[0].rules[0].acton", "unknown key 'acton' (did you mean 'action'?)" },
	{ "unknown policy key", "policies:\n  - name: a\n    rule: []\n", 3, 5, "policies[0].rule",
	  "unknown key 'rule' (did you mean 'rules'?)" },
	{ "unknown endpoint key", EPS "    label: {}\n", 3, 5, "endpoints[0].label",
	  "unknown key 'label' (did you mean 'labels'?)" },
	{ "missing name", "policies:\n  - rules: []\n", 2, 5, "policies[0].name",
	  "missing required key 'name'" },
	{ "bad name", "policies:\n  - name: db access\n", 2, 11, "policies[0].name",
	  "has characters other than A-Z a-z 0-9 . _ -" },
	{ "duplicate rule set name", "policies:\n  - name: db\n  - name: web\n  - name: db\n", 4,
	  11, "policies[2].name", "duplicate policy 'db' (first at line 2)" },
	{ "duplicate endpoint", EPS "  - address: 198.18.1.3\n  - address: 198.18.1.2\n", 4, 14,
	  "endpoints[2].address", "duplicate endpoint 198.18.1.2 (first at line 2)" },
	{ "duplicate IPv6 endpoint, other spelling",
	  "endpoints:\n  - address: fd00::2\n  - address: \"fd00:0::0:2\"\n", 3, 14,
	  "endpoints[1].address", "duplicate endpoint fd00::2 (first at line 2)" },
	{ "duplicate rule id",
	  POL "      - { id: 7, action: allow, from: any, to: \"\" }\n"
	      "  - name: web\n    rules:\n      - { id: 7, action: deny, from: any, to: \"\" }\n",
	  7, 15, "policies[1].rules[0].id", "duplicate rule id 7 (first at line 4)" },
	{ "rule id 0", POL "      - { id: 0, action: allow, from: any, to: \"\" }\n", 4, 15,
	  "policies[0].rules[0].id", "0 is out of range 1..2147483647" },
	{ "no id left",
	  POL "      - { id: 2147483647, action: allow, from: any, to: \"\" }\n"
	      "      - { action: allow, from: any, to: \"\" }\n",
	  5, 9, "policies[0].rules[1]", "no rule id left after 2147483647" },
	{ "bad established", "policies:\n  - name: a\n    established: drop\n", 3, 18,
	  "policies[0].established", "unknown mode 'drop' (keep or recheck)" },
	{ "labels not a mapping", EPS "    labels: \"app=web\"\n", 3, 13, "endpoints[0].labels",
	  "expected a mapping of labels, got a scalar" },
	{ "labels a sequence", EPS "    labels: [app]\n", 3, 13, "endpoints[0].labels",
	  "expected a mapping of labels, got a sequence" },
	{ "bad label key", EPS "    labels: { \"-app\": web }\n", 3, 15, "endpoints[0].labels.-app",
	  "label key \"-app\": must start with A-Z a-z 0-9" },
	{ "bad label value", EPS "    labels:\n      app: web/1\n", 4, 12,
	  "endpoints[0].labels.app", "label value \"web/1\": invalid character '/'" },
	{ "label value with a space", EPS "    labels: { app: \"a b\" }\n", 3, 20,
	  "endpoints[0].labels.app", "label value \"a b\": invalid character ' '" },
	{ "label key too long",
	  EPS
	  "    labels: { k123456789012345678901234567890123456789012345678901234567890123: v }\n",
	  3, 15, "endpoints[0].labels.k123456789012345678901234567890123456789",
	  "longer than 63 characters" },
	{ "null label value", EPS "    labels: { app: }\n", 3, 20, "endpoints[0].labels.app",
	  "got null" },
	{ "label key twice", EPS "    labels:\n      app: a\n      env: b\n      app: c\n", 6, 7,
	  "endpoints[0].labels.app", "duplicate label key \"app\" (first at line 4)" },
	{ "endpoint address is a CIDR", "endpoints:\n  - address: 198.18.1.0/24\n", 2, 14,
	  "endpoints[0].address", "expected an address, not a CIDR" },
	{ "endpoint address with port", "endpoints:\n  - address: 198.18.1.2:80\n", 2, 14,
	  "endpoints[0].address", "invalid IP address" },
	{ "missing address", "endpoints:\n  - labels: {app: web}\n", 2, 5, "endpoints[0].address",
	  "missing required key 'address'" },
	{ "endpoint is a scalar", "endpoints:\n  - 198.18.1.2\n", 2, 5, "endpoints[0]",
	  "expected an endpoint mapping, got a scalar" },
	{ "relative netns", EPS "    netns: web\n", 3, 12, "endpoints[0].netns",
	  "netns must be an absolute path" },
	{ "two IPv4 endpoints in a netns",
	  EPS "    netns: /run/netns/a\n  - address: 198.18.1.3\n    netns: /run/netns/a\n", 5, 5,
	  "endpoints[1].netns", "netns /run/netns/a already has an IPv4 endpoint (line 2)" },
	{ "policies is a mapping", "policies: {db: {}}\n", 1, 11, "policies",
	  "expected a sequence, got a mapping" },
	{ "rule is a scalar", POL "      - allow\n", 4, 9, "policies[0].rules[0]",
	  "expected a rule mapping, got a scalar" },
	{ "tag-like selector unquoted", POL "      - { action: deny, from: !web, to: \"\" }\n", 4,
	  31, "policies[0].rules[0].from", "tags (!web) are not supported" },
};

static void test_invalid_policy(void **state)
{
	char formatted[1024];
	struct cfg_state st;
	struct cfg_error err;
	size_t i, failed = 0;
	int ret;

	(void)state;
	for (i = 0; i < sizeof(bad_policy_cases) / sizeof(bad_policy_cases[0]); i++) {
		const struct bad_case *c = &bad_policy_cases[i];

		memset(&st, 0xa5, sizeof(st));
		ret = load(c->text, &st, &err);
		cfg_error_format(&err, formatted, sizeof(formatted));
		if (ret != -EINVAL || err.line != c->line || err.column != c->column ||
		    strcmp(err.field, c->field) || !strstr(err.message, c->message)) {
			print_error("%s: got %d \"%s\"\n  want %u:%u: %s: ...%s...\n", c->desc, ret,
				    formatted, c->line, c->column, c->field, c->message);
			failed++;
		}
		assert_null(st.policy.endpoints);
		assert_null(st.policy.rulesets);
		assert_int_equal(st.policy.n_endpoints, 0);
	}
	assert_int_equal(failed, 0);
}

/* @n endpoints, or one rule set of @n rules. */
static char *generate_policy(size_t n, bool rules, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	assert_non_null(f);
	fputs(rules ? "policies:\n  - name: many\n    rules:\n" : "endpoints:\n", f);
	for (size_t i = 0; i < n; i++) {
		if (rules)
			fprintf(f, "      - { action: allow, from: \"app=a%zu\", to: app=db }\n",
				i);
		else
			fprintf(f, "  - { address: 10.0.%zu.%zu, labels: { app: a%zu } }\n",
				i / 256, i % 256, i);
	}
	fclose(f);
	return text;
}

static void test_policy_limits(void **state)
{
	struct cfg_state st;
	struct cfg_error err;
	size_t len;
	char *text;

	(void)state;
	text = generate_policy(POL_MAX_ENDPOINTS, false, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), 0);
	assert_int_equal(st.policy.n_endpoints, POL_MAX_ENDPOINTS);
	cfg_free(&st);
	free(text);
	text = generate_policy(POL_MAX_ENDPOINTS + 1, false, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), -EINVAL);
	assert_string_equal(err.field, "endpoints[16384]");
	assert_string_equal(err.message, "more than 16384 endpoints");
	free(text);

	text = generate_policy(POL_MAX_RULES, true, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), 0);
	assert_int_equal(st.policy.rulesets[0].n_rules, POL_MAX_RULES);
	assert_int_equal(st.policy.rulesets[0].rules[POL_MAX_RULES - 1].id, POL_MAX_RULES);
	cfg_free(&st);
	free(text);
	text = generate_policy(POL_MAX_RULES + 1, true, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), -EINVAL);
	assert_string_equal(err.field, "policies[0].rules[4096]");
	assert_string_equal(err.message, "more than 4096 rules in total");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_policy_round_trip),
		cmocka_unit_test(test_write_without_policy),
		cmocka_unit_test(test_invalid_policy),
		cmocka_unit_test(test_policy_limits),
	};

	return cmocka_run_group_tests_name("config_policy", tests, NULL, NULL);
}
