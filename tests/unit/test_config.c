/* Unit tests for the YAML config parser (user/lib/config.c): a full config
 * read into the expected structs, short forms and defaults, a table of
 * invalid configs each refused at an exact position with its field path and
 * reason (and an empty result), file I/O, and configs at the size limits.
 * The policy keys have theirs in test_config_policy.c. */
#define _GNU_SOURCE /* open_memstream */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "config.h"

static int load(const char *text, struct cfg_state *st, struct cfg_error *err)
{
	return cfg_load_buffer("test.yaml", text, strlen(text), st, err);
}

static void assert_endpoint(const struct addr_port *ap, const char *text)
{
	char buf[ADDR_STR_MAX];

	addr_format_endpoint(ap, buf, sizeof(buf));
	assert_string_equal(buf, text);
}

static void assert_service_key(const struct sl_svc_key *key, const char *text)
{
	char buf[ADDR_STR_MAX];

	addr_format_service(key, buf, sizeof(buf));
	assert_string_equal(buf, text);
}

static const char full_config[] =
	"# sluice.yaml\n"
	"services:\n"
	"  - name: web\n"
	"    vip: 198.19.0.10:80/tcp\n"
	"    affinity: 30\n"
	"    l7: http\n"
	"    health:\n"
	"      type: http\n"
	"      path: /healthz\n"
	"      expect_status: 204\n"
	"      interval_ms: 2000\n"
	"      timeout_ms: 700\n"
	"      healthy_threshold: 4\n"
	"      unhealthy_threshold: 5\n"
	"    backends:\n"
	"      - address: 198.18.1.2:8080\n"
	"        weight: 1000\n"
	"      - 198.18.2.2:8080\n"
	"      - { address: 198.18.3.2:8081, weight: 0 }\n"
	"  - name: dns.v6_x-1\n"
	"    vip: \"[fd00::53]:53/udp\"\n"
	"    health: { type: tcp, interval_ms: 100, healthy_threshold: 1 }\n"
	"    backends:\n"
	"      - \"[fd00:1::2]:5353\"\n"
	"endpoints: []\n"
	"policies: []\n";

static void test_full_example(void **state)
{
	struct cfg_state st;
	struct cfg_error err;
	const struct cfg_service *web, *dns;

	(void)state;
	assert_int_equal(load(full_config, &st, &err), 0);
	assert_int_equal(st.n_services, 2);
	web = &st.services[0];
	assert_service_key(&web->key, "198.19.0.10:80/tcp");
	assert_string_equal(web->name, "web");
	assert_int_equal(web->affinity_s, 30);
	assert_true(web->l7);
	assert_int_equal(web->line, 3);
	assert_int_equal(web->column, 5);
	assert_int_equal(web->health.type, CFG_HEALTH_HTTP);
	assert_string_equal(web->health.path, "/healthz");
	assert_int_equal(web->health.expect_status, 204);
	assert_int_equal(web->health.interval_ms, 2000);
	assert_int_equal(web->health.timeout_ms, 700);
	assert_int_equal(web->health.healthy_threshold, 4);
	assert_int_equal(web->health.unhealthy_threshold, 5);
	assert_int_equal(web->n_backends, 3);
	assert_endpoint(&web->backends[0].addr, "198.18.1.2:8080");
	assert_int_equal(web->backends[0].weight, 1000);
	assert_int_equal(web->backends[0].line, 16);
	assert_int_equal(web->backends[0].column, 9);
	assert_endpoint(&web->backends[1].addr, "198.18.2.2:8080");
	assert_int_equal(web->backends[1].weight, 1);
	assert_int_equal(web->backends[1].line, 18);
	assert_endpoint(&web->backends[2].addr, "198.18.3.2:8081");
	assert_int_equal(web->backends[2].weight, 0);

	dns = &st.services[1];
	assert_service_key(&dns->key, "[fd00::53]:53/udp");
	assert_int_equal(dns->key.family, SL_AF_INET6);
	assert_string_equal(dns->name, "dns.v6_x-1");
	assert_int_equal(dns->affinity_s, 0);
	assert_false(dns->l7);
	assert_int_equal(dns->health.type, CFG_HEALTH_TCP);
	assert_string_equal(dns->health.path, "");
	assert_int_equal(dns->health.expect_status, 0);
	assert_int_equal(dns->health.interval_ms, 100);
	assert_int_equal(dns->health.timeout_ms, 100); /* default 500, capped at the interval */
	assert_int_equal(dns->health.healthy_threshold, 1);
	assert_int_equal(dns->health.unhealthy_threshold, 3);
	assert_int_equal(dns->n_backends, 1);
	assert_endpoint(&dns->backends[0].addr, "[fd00:1::2]:5353");
	assert_int_equal(dns->backends[0].addr.family, SL_AF_INET6);
	cfg_free(&st);
	assert_null(st.services);
	assert_int_equal(st.n_services, 0);
}

static void test_short_form_backends(void **state)
{
	struct cfg_state st;
	size_t i;

	(void)state;
	assert_int_equal(load("services:\n"
			      "- vip: 198.19.0.1:443/tcp\n"
			      "  backends: [198.18.0.1:443, 198.18.0.2:443, 198.18.0.3:443]\n",
			      &st, NULL),
			 0);
	assert_int_equal(st.n_services, 1);
	assert_int_equal(st.services[0].n_backends, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(st.services[0].backends[i].weight, 1);
		assert_int_equal(st.services[0].backends[i].addr.family, SL_AF_INET);
		assert_int_equal(st.services[0].backends[i].line, 3);
	}
	assert_endpoint(&st.services[0].backends[2].addr, "198.18.0.3:443");
	cfg_free(&st);
}

static void test_defaults(void **state)
{
	const struct cfg_service *svc;
	struct cfg_state st;

	(void)state;
	assert_int_equal(load("services:\n"
			      "  - backends:\n"
			      "      - address: 198.18.1.2:8080\n"
			      "    vip: 198.19.0.10:80/udp\n"
			      "    health:\n"
			      "      type: http\n"
			      "  - vip: 198.19.0.11:80/tcp\n",
			      &st, NULL),
			 0);
	assert_int_equal(st.n_services, 2);
	svc = &st.services[0];
	assert_int_equal(svc->key.proto, SL_PROTO_UDP);
	assert_string_equal(svc->name, "");
	assert_int_equal(svc->affinity_s, 0);
	assert_int_equal(svc->backends[0].weight, 1);
	assert_int_equal(svc->health.type, CFG_HEALTH_HTTP);
	assert_string_equal(svc->health.path, "/");
	assert_int_equal(svc->health.expect_status, 200);
	assert_int_equal(svc->health.interval_ms, 1000);
	assert_int_equal(svc->health.timeout_ms, 500);
	assert_int_equal(svc->health.healthy_threshold, 2);
	assert_int_equal(svc->health.unhealthy_threshold, 3);
	svc = &st.services[1];
	assert_int_equal(svc->health.type, CFG_HEALTH_NONE);
	assert_int_equal(svc->n_backends, 0);
	assert_null(svc->backends);
	cfg_free(&st);
}

/* Nothing, comments, an empty document and empty lists are all no services
 * and no policy. */
static void test_empty(void **state)
{
	static const char *const empty[] = {
		"",
		"# nothing yet\n\n",
		"---\n",
		"---\n...\n",
		"services: []\n",
		"services:\n",
		"services: ~\nendpoints:\npolicies: null\n",
		"{}\n",
		"endpoints: []\npolicies: []\n",
	};
	struct cfg_state st;
	struct cfg_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		memset(&st, 0xa5, sizeof(st));
		assert_int_equal(load(empty[i], &st, &err), 0);
		assert_int_equal(st.n_services, 0);
		assert_null(st.services);
		assert_int_equal(st.policy.n_endpoints, 0);
		assert_int_equal(st.policy.n_rulesets, 0);
		cfg_free(&st);
	}
	assert_int_equal(cfg_load_buffer(NULL, NULL, 0, &st, NULL), 0);
	assert_int_equal(st.n_services, 0);
}

struct bad_case {
	const char *desc;
	const char *text;
	unsigned int line, column;
	const char *field;
	const char *message; /* a substring */
};

#define SVC "services:\n  - vip: 198.19.0.10:80/tcp\n" /* services[0] starts on line 2 */

static const struct bad_case bad_cases[] = {
	{ "syntax: bad indentation", SVC "   backends: []\n", 3, 4, "",
	  "invalid YAML: did not find expected '-' indicator (while parsing a block collection at line 2)" },
	{ "syntax: unterminated quote", "services:\n  - name: \"web\n", 3, 1, "",
	  "found unexpected end of stream (while scanning a quoted scalar at line 2)" },
	{ "syntax: invalid UTF-8", "services:\n  - name: w\xff\n", 2, 12, "",
	  "invalid YAML: invalid leading UTF-8 octet (0xff)" },
	{ "unknown top-level key", "service:\n  - vip: 198.19.0.10:80/tcp\n", 1, 1, "service",
	  "unknown key 'service' (did you mean 'services'?)" },
	{ "unknown backend key, suggested",
	  SVC "    backends:\n      - address: 198.18.1.2:80\n"
	      "        wieght: 2\n",
	  5, 9, "services[0].backends[0].wieght", "unknown key 'wieght' (did you mean 'weight'?)" },
	{ "unknown service key, listed", SVC "    port: 80\n", 3, 5, "services[0].port",
	  "unknown key 'port' (expected name, vip, affinity, health, backends, l7, http)" },
	{ "unknown health key", SVC "    health: {type: tcp, retries: 3}\n", 3, 25,
	  "services[0].health.retries", "unknown key 'retries'" },
	{ "services is a mapping", "services:\n  web: {}\n", 2, 3, "services",
	  "expected a sequence, got a mapping" },
	{ "service is a scalar", "services:\n  - web\n", 2, 5, "services[0]",
	  "expected a service mapping, got a scalar" },
	{ "vip is a mapping", "services:\n  - vip: {addr: 198.19.0.10}\n", 2, 10, "services[0].vip",
	  "expected VIP:PORT/PROTO, got a mapping" },
	{ "health is a scalar", SVC "    health: tcp\n", 3, 13, "services[0].health",
	  "expected a mapping, got a scalar" },
	{ "backends is a mapping", SVC "    backends: {a: 1}\n", 3, 15, "services[0].backends",
	  "expected a sequence, got a mapping" },
	{ "backend is a sequence", SVC "    backends: [[198.18.1.2:80]]\n", 3, 16,
	  "services[0].backends[0]", "expected ADDR:PORT, got a sequence" },
	{ "key is not a scalar", "? [services]\n: []\n", 1, 3, "",
	  "expected a key, got a sequence" },
	{ "missing vip", "services:\n  - name: web\n    affinity: 5\n", 2, 5, "services[0].vip",
	  "missing required key 'vip'" },
	{ "missing backend address", SVC "    backends:\n      - weight: 2\n", 4, 9,
	  "services[0].backends[0].address", "missing required key 'address'" },
	{ "missing health type", SVC "    health:\n      interval_ms: 100\n", 4, 7,
	  "services[0].health.type", "missing required key 'type'" },
	{ "null vip", "services:\n  - vip:\n", 2, 9, "services[0].vip",
	  "expected VIP:PORT/PROTO, got null" },
	{ "vip: bad IPv4", "services:\n  - vip: 198.19.0.300:80/tcp\n", 2, 10, "services[0].vip",
	  "invalid vip '198.19.0.300:80/tcp': not an IPv4 address" },
	{ "vip: port 0", "services:\n  - vip: 198.19.0.10:0/tcp\n", 2, 10, "services[0].vip",
	  "port must be 1..65535" },
	{ "vip: port too big", "services:\n  - vip: 198.19.0.10:65536/tcp\n", 2, 10,
	  "services[0].vip", "port must be 1..65535" },
	{ "vip: protocol", "services:\n  - vip: 198.19.0.10:80/sctp\n", 2, 10, "services[0].vip",
	  "protocol must be tcp or udp" },
	{ "vip: no protocol", "services:\n  - vip: 198.19.0.10:80\n", 2, 10, "services[0].vip",
	  "expected VIP:PORT/PROTO" },
	{ "vip: unquoted IPv6", "services:\n  - vip: [fd00::10]:80/tcp\n", 2, 10, "services[0].vip",
	  "got a sequence (quote IPv6 addresses" },
	{ "vip: IPv6 without brackets", "services:\n  - vip: fd00::10:80/tcp\n", 2, 10,
	  "services[0].vip", "IPv6 addresses go in brackets" },
	{ "backend without port", SVC "    backends: [198.18.1.2]\n", 3, 16,
	  "services[0].backends[0]", "invalid address '198.18.1.2': expected ADDR:PORT" },
	{ "backend host name", SVC "    backends: [\"db.local:5432\"]\n", 3, 16,
	  "services[0].backends[0]", "not an IPv4 address" },
	{ "weight too big", SVC "    backends:\n      - {address: 198.18.1.2:80, weight: 1001}\n",
	  4, 42, "services[0].backends[0].weight", "1001 is out of range 0..1000" },
	{ "weight negative", SVC "    backends:\n      - {address: 198.18.1.2:80, weight: -1}\n", 4,
	  42, "services[0].backends[0].weight", "expected a decimal integer in 0..1000, got '-1'" },
	{ "weight float", SVC "    backends:\n      - {address: 198.18.1.2:80, weight: 1.5}\n", 4,
	  42, "services[0].backends[0].weight", "got '1.5'" },
	{ "weight with sign", SVC "    backends:\n      - {address: 198.18.1.2:80, weight: +5}\n",
	  4, 42, "services[0].backends[0].weight", "got '+5'" },
	{ "weight quoted", SVC "    backends:\n      - {address: 198.18.1.2:80, weight: \"5\"}\n",
	  4, 42, "services[0].backends[0].weight", "got a quoted string" },
	{ "weight octal-looking",
	  SVC "    backends:\n      - {address: 198.18.1.2:80, weight: 010}\n", 4, 42,
	  "services[0].backends[0].weight", "got '010'" },
	{ "weight hex", SVC "    backends:\n      - {address: 198.18.1.2:80, weight: 0x10}\n", 4,
	  42, "services[0].backends[0].weight", "got '0x10'" },
	{ "weight huge",
	  SVC "    backends:\n      - {address: 198.18.1.2:80, weight: 99999999999999999999}\n", 4,
	  42, "services[0].backends[0].weight", "99999999999999999999 is out of range" },
	{ "l7: unknown protocol", SVC "    l7: grpc\n", 3, 9, "services[0].l7",
	  "unknown L7 protocol 'grpc' (http)" },
	{ "l7 on a UDP service", "services:\n  - vip: 198.19.0.10:53/udp\n    l7: http\n", 3, 5,
	  "services[0].l7", "l7: http needs a TCP service" },
	{ "affinity 0", SVC "    affinity: 0\n", 3, 15, "services[0].affinity",
	  "0 is out of range 1..86400" },
	{ "affinity too long", SVC "    affinity: 86401\n", 3, 15, "services[0].affinity",
	  "86401 is out of range 1..86400" },
	{ "name too long", SVC "    name: abcdefghijklmnopqrstuvwxyz012345\n", 3, 11,
	  "services[0].name", "name is 32 characters, the limit is 31" },
	{ "name with a space", SVC "    name: web server\n", 3, 11, "services[0].name",
	  "has characters other than A-Z a-z 0-9 . _ -" },
	{ "IPv6 backend, IPv4 vip",
	  SVC "    backends:\n      - 198.18.1.2:80\n      - \"[fd00::2]:80\"\n", 5, 9,
	  "services[0].backends[1]", "IPv6 backend in an IPv4 service (198.19.0.10:80/tcp)" },
	{ "IPv4 backend, IPv6 vip given after",
	  "services:\n  - backends: [198.18.1.2:80]\n    vip: \"[fd00::10]:80/tcp\"\n", 2, 16,
	  "services[0].backends[0]", "IPv4 backend in an IPv6 service ([fd00::10]:80/tcp)" },
	{ "duplicate service", SVC "  - vip: 198.19.0.11:80/tcp\n  - vip: 198.19.0.10:80/tcp\n", 4,
	  10, "services[2].vip", "duplicate service 198.19.0.10:80/tcp (first at line 2)" },
	{ "duplicate IPv6 service, other spelling",
	  "services:\n  - vip: \"[fd00::10]:80/tcp\"\n  - vip: \"[fd00:0::0:10]:80/tcp\"\n", 3, 10,
	  "services[1].vip", "duplicate service [fd00::10]:80/tcp (first at line 2)" },
	{ "duplicate backend",
	  SVC "    backends:\n      - 198.18.1.2:80\n      - 198.18.1.3:80\n"
	      "      - address: 198.18.1.2:80\n",
	  6, 18, "services[0].backends[2].address",
	  "duplicate backend 198.18.1.2:80 (first at line 4)" },
	{ "duplicate key", SVC "    name: a\n    name: b\n", 4, 5, "services[0].name",
	  "duplicate key 'name' (first at line 3)" },
	{ "duplicate top-level key", "services: []\nservices: []\n", 2, 1, "services",
	  "duplicate key 'services' (first at line 1)" },
	{ "path with type tcp", SVC "    health:\n      path: /x\n      type: tcp\n", 4, 7,
	  "services[0].health.path", "'path' applies only to type http" },
	{ "expect_status with type tcp", SVC "    health: {type: tcp, expect_status: 200}\n", 3, 25,
	  "services[0].health.expect_status", "'expect_status' applies only to type http" },
	{ "timeout above interval",
	  SVC "    health: {type: tcp, interval_ms: 100, timeout_ms: 101}\n", 3, 43,
	  "services[0].health.timeout_ms", "timeout_ms 101 exceeds interval_ms 100" },
	{ "health type", SVC "    health: {type: udp}\n", 3, 20, "services[0].health.type",
	  "unknown health check type 'udp' (tcp or http)" },
	{ "expect_status range", SVC "    health: {type: http, expect_status: 600}\n", 3, 41,
	  "services[0].health.expect_status", "600 is out of range 100..599" },
	{ "interval range", SVC "    health: {type: tcp, interval_ms: 9}\n", 3, 38,
	  "services[0].health.interval_ms", "9 is out of range 10..3600000" },
	{ "threshold range", SVC "    health: {type: tcp, unhealthy_threshold: 101}\n", 3, 46,
	  "services[0].health.unhealthy_threshold", "101 is out of range 1..100" },
	{ "path without slash", SVC "    health: {type: http, path: healthz}\n", 3, 32,
	  "services[0].health.path", "path must start with '/'" },
	{ "path with a space", SVC "    health: {type: http, path: \"/a b\"}\n", 3, 32,
	  "services[0].health.path", "printable ASCII without spaces" },
	{ "path too long",
	  SVC
	  "    health: {type: http, path: /0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde}\n",
	  3, 32, "services[0].health.path", "path is 128 bytes, the limit is 127" },
	{ "NUL in a string", SVC "    name: \"a\\0b\"\n", 3, 11, "services[0].name",
	  "got a string with a NUL byte" },
	{ "anchor", "services:\n  - &web\n    vip: 198.19.0.10:80/tcp\n", 2, 5, "services",
	  "anchors (&web) are not supported" },
	{ "anchor on a list", "services: &all []\n", 1, 11, "services",
	  "anchors (&all) are not supported" },
	{ "alias use", SVC "    name: *web\n", 3, 11, "services[0].name",
	  "aliases (*web) are not supported" },
	{ "tag", SVC "    affinity: !!int 5\n", 3, 15, "services[0].affinity",
	  "tags (tag:yaml.org,2002:int) are not supported" },
	{ "two documents", "services: []\n---\nservices: []\n", 2, 1, "",
	  "expected one YAML document, found another" },
	{ "top level is a sequence", "- vip: 198.19.0.10:80/tcp\n", 1, 1, "",
	  "expected a mapping with 'services', got a sequence" },
	/* Every level now checks its type: deep nesting stops at the first
	 * wrong one, long before the depth limit. */
	{ "nested deep",
	  "endpoints: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 1,
	  13, "endpoints[0]", "expected an endpoint mapping, got a sequence" },
	{ "endpoints is a mapping", "endpoints: {a: 1}\n", 1, 12, "endpoints",
	  "expected a sequence, got a mapping" },
};

static void test_invalid(void **state)
{
	char formatted[1024];
	struct cfg_state st;
	struct cfg_error err;
	size_t i, failed = 0;
	int ret;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];

		memset(&st, 0xa5, sizeof(st));
		ret = load(c->text, &st, &err);
		cfg_error_format(&err, formatted, sizeof(formatted));
		if (ret != -EINVAL || err.line != c->line || err.column != c->column ||
		    strcmp(err.field, c->field) || !strstr(err.message, c->message)) {
			print_error("%s: got %d \"%s\"\n  want %u:%u: %s: ...%s...\n", c->desc, ret,
				    formatted, c->line, c->column, c->field, c->message);
			failed++;
		}
		assert_null(st.services);
		assert_int_equal(st.n_services, 0);
		assert_null(st.policy.endpoints);
		assert_null(st.policy.rulesets);
		assert_string_equal(err.file, "test.yaml");
	}
	assert_int_equal(failed, 0);
}

static void test_error_format(void **state)
{
	struct cfg_error err = {
		.file = "a.yaml", .line = 3, .column = 7, .field = "services[0].vip"
	};
	char buf[512];

	(void)state;
	strcpy(err.message, "missing");
	cfg_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "a.yaml:3:7: services[0].vip: missing");
	err.field[0] = '\0';
	err.column = 0;
	cfg_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "a.yaml:3: missing");
	err.line = 0;
	cfg_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "a.yaml: missing");
	cfg_error_format(&err, buf, 4);
	assert_string_equal(buf, "a.y");
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/sluice-test-config-XXXXXX", buf[512];
	struct cfg_state st;
	struct cfg_error err;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, full_config, strlen(full_config)), (ssize_t)strlen(full_config));
	close(fd);
	assert_int_equal(cfg_load_file(path, &st, &err), 0);
	assert_int_equal(st.n_services, 2);
	assert_int_equal(st.services[0].n_backends, 3);
	cfg_free(&st);

	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "bogus: 1\n", 9), 9);
	close(fd);
	assert_int_equal(cfg_load_file(path, &st, &err), -EINVAL);
	assert_null(st.services);
	cfg_error_format(&err, buf, sizeof(buf));
	assert_non_null(strstr(buf, ":27:1: bogus: unknown key 'bogus'"));
	assert_string_equal(err.file, path);
	unlink(path);

	assert_int_equal(cfg_load_file(path, &st, &err), -ENOENT);
	assert_int_equal(err.line, 0);
	assert_non_null(strstr(err.message, "No such file or directory"));
	assert_null(st.services);
	assert_int_equal(cfg_load_file("/", &st, &err), -EISDIR);
}

/* @n_services services, each with @n_backends backends, all distinct; the
 * last service repeats the first one's vip when @dup_last. */
static char *generate(size_t n_services, size_t n_backends, int dup_last, size_t *len)
{
	char *text = NULL;
	FILE *f;
	size_t i, j, v;

	f = open_memstream(&text, len);
	assert_non_null(f);
	fputs("services:\n", f);
	for (i = 0; i < n_services; i++) {
		v = dup_last && i == n_services - 1 ? 0 : i;
		fprintf(f, "  - name: svc-%zu\n    vip: 198.19.%zu.%zu:80/tcp\n", i, v / 256,
			v % 256);
		fputs("    health: {type: http, path: /healthz}\n", f);
		fputs(n_backends ? "    backends:\n" : "", f);
		for (j = 0; j < n_backends; j++)
			fprintf(f, "      - address: 10.%zu.%zu.%zu:8080\n        weight: %zu\n",
				i / 256, i % 256, j + 1, j + 1);
	}
	fclose(f);
	return text;
}

/* 10,000 services with 6 backends each: 60,000 backends, within the limit. */
static void test_many_services(void **state)
{
	struct cfg_state st;
	struct cfg_error err;
	size_t len;
	char *text;

	(void)state;
	text = generate(10000, 6, 0, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), 0);
	assert_int_equal(st.n_services, 10000);
	assert_int_equal(st.services[9999].n_backends, 6);
	assert_service_key(&st.services[9999].key, "198.19.39.15:80/tcp");
	assert_endpoint(&st.services[9999].backends[5].addr, "10.39.15.6:8080");
	assert_int_equal(st.services[9999].backends[5].weight, 6);
	cfg_free(&st);
	free(text);

	text = generate(10000, 6, 1, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), -EINVAL);
	assert_int_equal(err.line, 16 * 9999 + 3); /* 16 lines a service */
	assert_string_equal(err.field, "services[9999].vip");
	assert_string_equal(err.message, "duplicate service 198.19.0.0:80/tcp (first at line 2)");
	assert_null(st.services);
	free(text);
}

static void test_limits(void **state)
{
	struct cfg_state st;
	struct cfg_error err;
	size_t len;
	char *text;

	(void)state;
	text = generate(CFG_MAX_SERVICES, 0, 0, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), 0);
	assert_int_equal(st.n_services, CFG_MAX_SERVICES);
	cfg_free(&st);
	free(text);

	text = generate(CFG_MAX_SERVICES + 1, 0, 0, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), -EINVAL);
	assert_string_equal(err.field, "services[16383]");
	assert_string_equal(err.message, "more than 16383 services");
	assert_null(st.services);
	free(text);

	/* 13,107 services of 10 backends, then one of 2: the 131,072nd fails */
	text = generate(CFG_MAX_BACKENDS / 10 + 1, 10, 0, &len);
	assert_int_equal(cfg_load_buffer("gen.yaml", text, len, &st, &err), -EINVAL);
	assert_string_equal(err.field, "services[13107].backends[1]");
	assert_string_equal(err.message, "more than 131071 backends in total");
	assert_null(st.services);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_example), cmocka_unit_test(test_short_form_backends),
		cmocka_unit_test(test_defaults),     cmocka_unit_test(test_empty),
		cmocka_unit_test(test_invalid),	     cmocka_unit_test(test_error_format),
		cmocka_unit_test(test_load_file),    cmocka_unit_test(test_many_services),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
