// SPDX-License-Identifier: GPL-2.0
/*
 * cmocka unit tests for the weighted Maglev table builder (user/lib/maglev.c):
 * argument validation, balance under equal and unequal weights, minimal
 * disruption on backend removal/addition, and order-independent determinism.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "maglev.h"

#define MAX_BACKENDS 128
#define KEY4_LEN 6 /* IPv4 address + port, network order */
#define KEY6_LEN 18 /* IPv6 address + port, network order */
#define TEST_PORT 8080

static uint8_t keys[MAX_BACKENDS][KEY6_LEN];
static struct maglev_backend backends[MAX_BACKENDS];
static struct maglev_backend scratch[MAX_BACKENDS];
static uint32_t table_a[MAGLEV_DEFAULT_SIZE];
static uint32_t table_b[MAGLEV_DEFAULT_SIZE];

/* Key for backend @i: 198.18.(i >> 8).(i & 0xff) port TEST_PORT, 6 bytes. */
static void make_key4(uint8_t *k, size_t i)
{
	k[0] = 198;
	k[1] = 18;
	k[2] = (uint8_t)(i >> 8);
	k[3] = (uint8_t)i;
	k[4] = TEST_PORT >> 8;
	k[5] = TEST_PORT & 0xff;
}

/* Key for backend @i: ::ffff:198.18.(i >> 8).(i & 0xff) port TEST_PORT, 18 bytes. */
static void make_key6(uint8_t *k, size_t i)
{
	memset(k, 0, 10);
	k[10] = 0xff;
	k[11] = 0xff;
	make_key4(k + 12, i);
}

/* Fill backends[0..n) with ids 1..n, weight 1 and 6- or 18-byte keys. */
static void make_backends(size_t n, size_t key_len)
{
	size_t i;

	assert_true(n <= MAX_BACKENDS);
	for (i = 0; i < n; i++) {
		if (key_len == KEY6_LEN)
			make_key6(keys[i], i);
		else
			make_key4(keys[i], i);
		backends[i].id = (uint32_t)i + 1;
		backends[i].weight = 1;
		backends[i].key = keys[i];
		backends[i].key_len = key_len;
	}
}

static size_t count_slots(const uint32_t *table, uint32_t size, uint32_t id)
{
	size_t i, count = 0;

	for (i = 0; i < size; i++)
		count += table[i] == id;
	return count;
}

static size_t count_changed(const uint32_t *a, const uint32_t *b, uint32_t size)
{
	size_t i, changed = 0;

	for (i = 0; i < size; i++)
		changed += a[i] != b[i];
	return changed;
}

/* |count - expected| <= tolerance * expected, printing the numbers on failure. */
static void assert_near(size_t count, double expected, double tolerance)
{
	double diff = (double)count - expected;

	if (diff < 0)
		diff = -diff;
	if (diff > tolerance * expected)
		fail_msg("count %zu, expected %.2f +/- %.2f", count, expected,
			 tolerance * expected);
}

/* Deterministic Fisher-Yates shuffle (xorshift32) so a failure reproduces. */
static void shuffle(struct maglev_backend *b, size_t n, uint32_t seed)
{
	struct maglev_backend tmp;
	size_t i, j;

	for (i = n - 1; i > 0; i--) {
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		j = seed % (i + 1);
		tmp = b[i];
		b[i] = b[j];
		b[j] = tmp;
	}
}

static void test_size_valid(void **state)
{
	static const uint32_t good[] = { 7, 11, 13, 251, 4099, 65537, MAGLEV_MAX_SIZE };
	/* 49 = 7 * 7 and 1022117 = 1009 * 1013 catch an off-by-one in the sqrt bound. */
	static const uint32_t bad[] = { 0,	 1,	  2,	   3,	    5,
					4,	 9,	  49,	   65535,   65536,
					1022117, 1048575, 1048576, 1048583, UINT32_MAX };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!maglev_size_valid(good[i]))
			fail_msg("size %u should be valid", good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (maglev_size_valid(bad[i]))
			fail_msg("size %u should be invalid", bad[i]);
	}
}

static void test_build_einval(void **state)
{
	(void)state;
	make_backends(8, KEY4_LEN);
	assert_int_equal(maglev_build(backends, 8, table_a, 11), 0); /* control: valid call */

	assert_int_equal(maglev_build(backends, 8, table_a, 0), -EINVAL);
	assert_int_equal(maglev_build(backends, 8, table_a, 65536), -EINVAL);
	assert_int_equal(maglev_build(backends, 8, table_a, 1048583), -EINVAL);
	assert_int_equal(maglev_build(backends, 8, table_a, 7), -EINVAL); /* n > size */
	assert_int_equal(maglev_build(backends, 8, NULL, 11), -EINVAL);
	assert_int_equal(maglev_build(NULL, 1, table_a, 11), -EINVAL);

	backends[3].id = 0;
	assert_int_equal(maglev_build(backends, 8, table_a, 11), -EINVAL);
	backends[3].id = 4;
	backends[5].key = NULL;
	assert_int_equal(maglev_build(backends, 8, table_a, 11), -EINVAL);
	backends[5].key = keys[5];
	backends[6].key_len = 0;
	assert_int_equal(maglev_build(backends, 8, table_a, 11), -EINVAL);
}

/* Smallest tables: one backend owns everything; n == size gives one slot each. */
static void test_small_tables(void **state)
{
	uint32_t table[7];
	uint32_t id;

	(void)state;
	make_backends(7, KEY4_LEN);
	assert_int_equal(maglev_build(backends, 1, table, 7), 0);
	assert_int_equal(count_slots(table, 7, 1), 7);
	assert_int_equal(maglev_build(backends, 7, table, 7), 0);
	for (id = 1; id <= 7; id++)
		assert_int_equal(count_slots(table, 7, id), 1);
}

/*
 * Equal weights at 65537, N = 3, 10, 100: for every backend
 * |count - size/N| <= 0.01 * size/N, and the counts sum to size (no empties).
 */
static void test_equal_weights(void **state)
{
	static const size_t ns[] = { 3, 10, 100 };
	const uint32_t size = MAGLEV_DEFAULT_SIZE;
	size_t i, total, count;
	uint32_t id;

	(void)state;
	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		make_backends(ns[i], KEY4_LEN);
		assert_int_equal(maglev_build(backends, ns[i], table_a, size), 0);
		total = 0;
		for (id = 1; id <= ns[i]; id++) {
			count = count_slots(table_a, size, id);
			assert_near(count, (double)size / ns[i], 0.01);
			total += count;
		}
		assert_int_equal(total, size);
	}
}

/* Weights 1:2:3: each count within 2% of size * w / 6. */
static void test_weights_proportional(void **state)
{
	const uint32_t size = MAGLEV_DEFAULT_SIZE;
	uint32_t id;

	(void)state;
	make_backends(3, KEY4_LEN);
	for (id = 1; id <= 3; id++)
		backends[id - 1].weight = id;
	assert_int_equal(maglev_build(backends, 3, table_a, size), 0);
	for (id = 1; id <= 3; id++)
		assert_near(count_slots(table_a, size, id), (double)size * id / 6, 0.02);
}

/* Weight 0 gets no slots; all-zero (and n == 0) leave every slot MAGLEV_EMPTY. */
static void test_zero_weight(void **state)
{
	const uint32_t size = MAGLEV_DEFAULT_SIZE;
	size_t i;

	(void)state;
	make_backends(4, KEY4_LEN);
	backends[2].weight = 0;
	assert_int_equal(maglev_build(backends, 4, table_a, size), 0);
	assert_int_equal(count_slots(table_a, size, 3), 0);
	assert_int_equal(count_slots(table_a, size, MAGLEV_EMPTY), 0);

	for (i = 0; i < 4; i++)
		backends[i].weight = 0;
	memset(table_a, 0xa5, sizeof(table_a)); /* stale contents must be overwritten */
	assert_int_equal(maglev_build(backends, 4, table_a, size), 0);
	assert_int_equal(count_slots(table_a, size, MAGLEV_EMPTY), size);

	memset(table_a, 0xa5, sizeof(table_a));
	assert_int_equal(maglev_build(backends, 0, table_a, size), 0);
	assert_int_equal(count_slots(table_a, size, MAGLEV_EMPTY), size);
}

/*
 * Remove backend id 4 of N = 10. Its slots must all move (it cannot appear in
 * the new table), the changed fraction must lie in [0.9/N, 1.3/N], and the
 * slots that moved between surviving backends must be <= 0.3/N of the table.
 */
static void test_remove_one(void **state)
{
	const uint32_t size = MAGLEV_DEFAULT_SIZE, gone = 4;
	const size_t n = 10;
	size_t i, m = 0, owned, changed;
	double frac;

	(void)state;
	make_backends(n, KEY4_LEN);
	assert_int_equal(maglev_build(backends, n, table_a, size), 0);
	for (i = 0; i < n; i++) {
		if (backends[i].id != gone)
			scratch[m++] = backends[i];
	}
	assert_int_equal(maglev_build(scratch, m, table_b, size), 0);

	owned = count_slots(table_a, size, gone);
	assert_int_equal(count_slots(table_b, size, gone), 0);
	changed = count_changed(table_a, table_b, size);
	frac = (double)changed / size;
	if (frac < 0.9 / n || frac > 1.3 / n)
		fail_msg("changed fraction %.4f outside [%.4f, %.4f]", frac, 0.9 / n, 1.3 / n);
	if ((double)(changed - owned) / size > 0.3 / n)
		fail_msg("%zu slots moved between surviving backends", changed - owned);
}

/*
 * Add an 11th backend to N = 10: it gets about size/11 slots, and the changed
 * fraction lies in [0.9/(N+1), 1.3/(N+1)].
 */
static void test_add_one(void **state)
{
	const uint32_t size = MAGLEV_DEFAULT_SIZE;
	const size_t n = 10;
	size_t changed;
	double frac;

	(void)state;
	make_backends(n + 1, KEY4_LEN);
	assert_int_equal(maglev_build(backends, n, table_a, size), 0);
	assert_int_equal(maglev_build(backends, n + 1, table_b, size), 0);

	assert_near(count_slots(table_b, size, n + 1), (double)size / (n + 1), 0.01);
	changed = count_changed(table_a, table_b, size);
	frac = (double)changed / size;
	if (frac < 0.9 / (n + 1) || frac > 1.3 / (n + 1))
		fail_msg("changed fraction %.4f outside [%.4f, %.4f]", frac, 0.9 / (n + 1),
			 1.3 / (n + 1));
}

/* Same input twice, and shuffled input order, give byte-identical tables. */
static void test_deterministic(void **state)
{
	static const size_t key_lens[] = { KEY4_LEN, KEY6_LEN };
	const uint32_t size = MAGLEV_DEFAULT_SIZE;
	const size_t n = 50;
	size_t i, k;

	(void)state;
	for (k = 0; k < sizeof(key_lens) / sizeof(key_lens[0]); k++) {
		make_backends(n, key_lens[k]);
		for (i = 0; i < n; i++)
			backends[i].weight = 1 + i % 4; /* uneven weights exercise credit order */
		assert_int_equal(maglev_build(backends, n, table_a, size), 0);
		assert_int_equal(maglev_build(backends, n, table_b, size), 0);
		assert_memory_equal(table_a, table_b, sizeof(table_a));

		memcpy(scratch, backends, n * sizeof(scratch[0]));
		shuffle(scratch, n, 0x12345678u + (uint32_t)k);
		assert_memory_not_equal(scratch, backends, n * sizeof(scratch[0]));
		assert_int_equal(maglev_build(scratch, n, table_b, size), 0);
		assert_memory_equal(table_a, table_b, sizeof(table_a));
	}
}

/* The key seeds the permutation: changing one backend's port moves slots. */
static void test_key_matters(void **state)
{
	const uint32_t size = MAGLEV_DEFAULT_SIZE;
	const size_t n = 10;

	(void)state;
	make_backends(n, KEY4_LEN);
	assert_int_equal(maglev_build(backends, n, table_a, size), 0);
	keys[0][5] ^= 1;
	assert_int_equal(maglev_build(backends, n, table_b, size), 0);
	assert_true(count_changed(table_a, table_b, size) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_valid),	     cmocka_unit_test(test_build_einval),
		cmocka_unit_test(test_small_tables),	     cmocka_unit_test(test_equal_weights),
		cmocka_unit_test(test_weights_proportional), cmocka_unit_test(test_zero_weight),
		cmocka_unit_test(test_remove_one),	     cmocka_unit_test(test_add_one),
		cmocka_unit_test(test_deterministic),	     cmocka_unit_test(test_key_matters),
	};

	return cmocka_run_group_tests_name("maglev", tests, NULL, NULL);
}
