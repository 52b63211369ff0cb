// SPDX-License-Identifier: GPL-2.0
/*
 * cmocka unit tests for the proxy's path normalization (path.c) and its
 * connection buffers (buf.c): what access rules and routes are matched
 * against, and the borrowed-scratch rule that keeps idle connections free
 * of memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "path.h"

struct path_case {
	const char *in, *want; /* want NULL: refused with -EINVAL */
};

static const struct path_case path_cases[] = {
	{ "/", "/" },
	{ "//", "/" },
	{ "/a", "/a" },
	{ "/a/", "/a/" },
	{ "/a//b", "/a/b" },
	{ "///admin", "/admin" },
	{ "/a/./b", "/a/b" },
	{ "/a/../b", "/b" },
	{ "/../a", "/a" },
	{ "/..", "/" },
	{ "/.", "/" },
	{ "/a/.", "/a/" },
	{ "/a/b/..", "/a/" },
	{ "/a/b/c/../../d", "/a/d" },
	{ "/./././x", "/x" },
	{ "/%61dmin", "/admin" },
	{ "/%2e%2e/admin", "/admin" },
	{ "/x%2e%2e/y", "/x../y" },
	{ "/%7e/%7E", "/~/~" },
	{ "/%2fadmin", "/%2Fadmin" }, /* an escaped '/' is data, not a separator */
	{ "/a%2Fb", "/a%2Fb" },
	{ "/%c3%a9", "/%C3%A9" },
	{ "/%zz", NULL },
	{ "/%4", NULL },
	{ "/%", NULL },
	{ "/%00", NULL },
	{ "a/b", NULL },
	{ "", NULL },
};

static void test_path_cases(void **state)
{
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		ssize_t n = path_normalize(c->in, strlen(c->in), out, sizeof(out));

		if (!c->want) {
			if (n != -EINVAL)
				fail_msg("'%s': want -EINVAL, got %zd", c->in, n);
			continue;
		}
		if (n < 0 || (size_t)n != strlen(c->want) || memcmp(out, c->want, n))
			fail_msg("'%s': want '%s', got '%.*s' (%zd)", c->in, c->want,
				 n > 0 ? (int)n : 0, out, n);
	}
}

/* The result is never longer than the input, and a second pass changes
 * nothing (matching and forwarding see one form). */
static void test_path_shrinks_and_is_idempotent(void **state)
{
	char once[256], twice[256];

	(void)state;
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const char *in = path_cases[i].in;
		ssize_t n = path_normalize(in, strlen(in), once, strlen(in) + 1), m;

		if (!path_cases[i].want)
			continue;
		assert_true(n > 0 && (size_t)n <= strlen(in) + 1);
		m = path_normalize(once, n, twice, sizeof(twice));
		assert_int_equal(m, n);
		assert_memory_equal(once, twice, n);
	}
	assert_int_equal(path_normalize("/abc", 4, once, 4), -ENOSPC);
}

static void test_buf_borrows_then_owns(void **state)
{
	static char scratch[64];
	struct buf b = { 0 };
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "hello world", 11), 11);
	assert_int_equal(buf_read(&b, sv[0], scratch, sizeof(scratch)), 11);
	assert_true(b.borrowed && b.data == scratch);
	buf_consume(&b, 6);
	assert_int_equal(buf_settle(&b), 0); /* 5 bytes left: copied out */
	assert_false(b.borrowed);
	assert_ptr_not_equal(b.data, scratch);
	assert_int_equal(buf_len(&b), 5);
	assert_memory_equal(buf_head(&b), "world", 5);
	assert_int_equal(write(sv[1], "!", 1), 1);
	assert_int_equal(buf_read(&b, sv[0], scratch, sizeof(scratch)), 1); /* appended */
	assert_memory_equal(buf_head(&b), "world!", 6);
	buf_consume(&b, 6);
	assert_int_equal(buf_settle(&b), 0); /* empty: memory freed */
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	close(sv[0]);
	close(sv[1]);
}

static void test_buf_reserve_compacts_and_grows(void **state)
{
	struct buf b = { 0 };
	char big[10000];

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(buf_append(&b, "abcdef", 6), 0);
	buf_consume(&b, 4);
	assert_int_equal(buf_reserve(&b, b.cap - 2), 0); /* fits once compacted */
	assert_int_equal(b.start, 0);
	assert_memory_equal(buf_head(&b), "ef", 2);
	assert_int_equal(buf_append(&b, big, sizeof(big)), 0); /* grows */
	assert_int_equal(buf_len(&b), 2 + sizeof(big));
	assert_true(b.cap >= buf_len(&b));
	assert_memory_equal(buf_head(&b), "ef", 2);
	buf_free(&b);
	assert_null(b.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_cases),
		cmocka_unit_test(test_path_shrinks_and_is_idempotent),
		cmocka_unit_test(test_buf_borrows_then_owns),
		cmocka_unit_test(test_buf_reserve_compacts_and_grows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
