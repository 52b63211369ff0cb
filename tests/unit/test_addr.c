/* Unit tests for the text forms of services and backends (user/lib/addr.c):
 * what the CLI and the config accept, what they reject, and that a failed
 * parse leaves its output untouched. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "addr.h"

static void test_service_ipv4(void **state)
{
	struct sl_svc_key key;
	char text[ADDR_STR_MAX];

	(void)state;
	assert_int_equal(addr_parse_service("198.19.0.10:80/tcp", &key), 0);
	assert_int_equal(key.family, SL_AF_INET);
	assert_int_equal(key.addr[0], inet_addr("198.19.0.10"));
	assert_int_equal(key.addr[1] | key.addr[2] | key.addr[3], 0);
	assert_int_equal(key.port, htons(80));
	assert_int_equal(key.proto, SL_PROTO_TCP);
	addr_format_service(&key, text, sizeof(text));
	assert_string_equal(text, "198.19.0.10:80/tcp");
}

static void test_service_ipv6(void **state)
{
	struct sl_svc_key key;
	char text[ADDR_STR_MAX];
	struct in6_addr want;

	(void)state;
	assert_int_equal(addr_parse_service("[fd00:ffff::10]:53/udp", &key), 0);
	inet_pton(AF_INET6, "fd00:ffff::10", &want);
	assert_memory_equal(key.addr, &want, 16);
	assert_int_equal(key.family, SL_AF_INET6);
	assert_int_equal(key.proto, SL_PROTO_UDP);
	assert_int_equal(key.port, htons(53));
	addr_format_service(&key, text, sizeof(text));
	assert_string_equal(text, "[fd00:ffff::10]:53/udp");
}

static void test_service_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"198.19.0.10",
		"198.19.0.10:80",
		"198.19.0.10:80/",
		"198.19.0.10:80/sctp",
		"198.19.0.10:0/tcp",
		"198.19.0.10:65536/tcp",
		"198.19.0.10:-1/tcp",
		"198.19.0.10:+80/tcp",
		"198.19.0.10:8x/tcp",
		"198.19.0.10:/tcp",
		":80/tcp",
		"198.19.0.256:80/tcp",
		"fd00::10:80/tcp", /* IPv6 needs brackets */
		"[198.19.0.10]:80/tcp", /* IPv4 must not have them */
		"[fd00::10]80/tcp",
		"[fd00::10:80/tcp",
		"[]:80/tcp",
		"198.19.0.10:80/TCP",
		"198.19.0.10:80/tcp ",
	};
	struct sl_svc_key key, before;

	(void)state;
	memset(&key, 0xab, sizeof(key));
	before = key;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(addr_parse_service(bad[i], &key), -EINVAL);
		assert_memory_equal(&key, &before, sizeof(key)); /* untouched */
	}
}

static void test_endpoint(void **state)
{
	struct addr_port ap, before;
	char text[ADDR_STR_MAX];

	(void)state;
	assert_int_equal(addr_parse_endpoint("198.18.1.2:8080", &ap), 0);
	assert_int_equal(ap.family, SL_AF_INET);
	assert_int_equal(ap.port, htons(8080));
	addr_format_endpoint(&ap, text, sizeof(text));
	assert_string_equal(text, "198.18.1.2:8080");
	assert_int_equal(addr_parse_endpoint("[fd00:0:0:1::2]:65535", &ap), 0);
	assert_int_equal(ap.family, SL_AF_INET6);
	addr_format_endpoint(&ap, text, sizeof(text));
	assert_string_equal(text, "[fd00:0:0:1::2]:65535");

	before = ap;
	assert_int_equal(addr_parse_endpoint("198.18.1.2", &ap), -EINVAL);
	assert_int_equal(addr_parse_endpoint("198.18.1.2:0", &ap), -EINVAL);
	assert_int_equal(addr_parse_endpoint("198.18.1.2:80/tcp", &ap), -EINVAL);
	assert_int_equal(addr_parse_endpoint("host.example:80", &ap), -EINVAL);
	assert_memory_equal(&ap, &before, sizeof(ap));
}

static void test_longest_forms_fit(void **state)
{
	struct sl_svc_key key;
	char text[ADDR_STR_MAX];
	const char *longest = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535/udp";

	(void)state;
	assert_int_equal(addr_parse_service(longest, &key), 0);
	addr_format_service(&key, text, sizeof(text));
	assert_string_equal(text, longest);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_ipv4),	  cmocka_unit_test(test_service_ipv6),
		cmocka_unit_test(test_service_rejects),	  cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_longest_forms_fit),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
