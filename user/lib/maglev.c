// SPDX-License-Identifier: GPL-2.0
/*
 * Weighted Maglev table builder (Maglev paper, section 3.4): per-backend
 * permutations seeded from the backend key, filled round-robin with credit
 * proportional to weight. Pure userspace computation; the result is pushed
 * into the data plane's lookup map by the caller.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "maglev.h"

/*
 * The seeds are part of the on-the-wire contract: every control-plane host
 * must compute the same table for the same backends, so changing them
 * reshuffles every flow. They differ in all bit positions so the offset and
 * skip hashes start FNV from unrelated states.
 */
#define MAGLEV_SEED_OFFSET 0x9e3779b97f4a7c15ull
#define MAGLEV_SEED_SKIP 0xc2b2ae3d27d4eb4full

/* Per-backend build state; kept compact so the round loop stays in cache. */
struct maglev_state {
	const struct maglev_backend *be;
	uint64_t credit; /* weight earned but not yet spent on slots */
	uint32_t id;
	uint32_t weight;
	uint32_t cur; /* next slot of this backend's permutation to try */
	uint32_t skip;
};

/*
 * maglev_hash() - seeded 64-bit hash of @len bytes at @key.
 *
 * FNV-1a is byte-at-a-time, so it is endian- and alignment-independent (the
 * table must be identical on every host), but its low bits mix poorly and we
 * reduce with % size; the fmix64 finaliser fixes that. Seeding the FNV basis
 * (rather than hashing once and mixing the seed in afterwards) means an FNV
 * collision under one seed is not a collision under the other.
 */
static uint64_t maglev_hash(const void *key, size_t len, uint64_t seed)
{
	return hash_fmix64(hash_fnv1a(HASH_FNV_OFFSET ^ seed, key, len));
}

bool maglev_size_valid(uint32_t size)
{
	uint32_t d;

	if (size < MAGLEV_MIN_SIZE || size > MAGLEV_MAX_SIZE || size % 2 == 0)
		return false;
	/* Trial division is enough: sqrt(MAGLEV_MAX_SIZE) < 1024, and d * d cannot overflow. */
	for (d = 3; d * d <= size; d += 2) {
		if (size % d == 0)
			return false;
	}
	return true;
}

/*
 * maglev_check_args() - validate maglev_build() arguments before touching
 * @table. Returns 0 or -EINVAL; see maglev_build() for the rules.
 */
static int maglev_check_args(const struct maglev_backend *backends, size_t n, const uint32_t *table,
			     uint32_t size)
{
	size_t i;

	if (!maglev_size_valid(size) || !table || n > size)
		return -EINVAL;
	if (n && !backends)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		/* id 0 is MAGLEV_EMPTY; empty keys would all share one permutation. */
		if (backends[i].id == MAGLEV_EMPTY || !backends[i].key || !backends[i].key_len)
			return -EINVAL;
	}
	return 0;
}

/*
 * maglev_state_cmp() - qsort order: key bytes, then key length, then id, then
 * weight. A total order on the triple is what makes the table independent of
 * the caller's array order, even for (misconfigured) duplicate keys.
 */
static int maglev_state_cmp(const void *pa, const void *pb)
{
	const struct maglev_backend *a = ((const struct maglev_state *)pa)->be;
	const struct maglev_backend *b = ((const struct maglev_state *)pb)->be;
	size_t len = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c = memcmp(a->key, b->key, len);

	if (c)
		return c;
	if (a->key_len != b->key_len)
		return a->key_len < b->key_len ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	if (a->weight != b->weight)
		return a->weight < b->weight ? -1 : 1;
	return 0;
}

/*
 * maglev_init_state() - fill @st with the backends of weight > 0, sorted by
 * key, with their permutation start (offset) and stride (skip). Sets *@active
 * to how many were kept and *@max_weight to their largest weight.
 * @st must have room for @n entries; @size must be valid.
 */
static void maglev_init_state(struct maglev_state *st, const struct maglev_backend *backends,
			      size_t n, uint32_t size, size_t *active, uint32_t *max_weight)
{
	size_t i, k = 0;

	*max_weight = 0;
	for (i = 0; i < n; i++) {
		if (!backends[i].weight)
			continue;
		st[k++].be = &backends[i];
	}
	qsort(st, k, sizeof(*st), maglev_state_cmp);
	for (i = 0; i < k; i++) {
		const struct maglev_backend *be = st[i].be;

		st[i].id = be->id;
		st[i].weight = be->weight;
		st[i].credit = 0;
		st[i].cur = maglev_hash(be->key, be->key_len, MAGLEV_SEED_OFFSET) % size;
		/* skip in [1, size - 1]: coprime with the prime size, so a full permutation. */
		st[i].skip = maglev_hash(be->key, be->key_len, MAGLEV_SEED_SKIP) % (size - 1) + 1;
		if (be->weight > *max_weight)
			*max_weight = be->weight;
	}
	*active = k;
}

/*
 * maglev_claim() - give @s its next preferred slot that is still empty and
 * advance its permutation past it. Caller guarantees @table has an empty slot,
 * so the walk terminates (the permutation visits every slot). Table entries
 * double as the filled marker because ids are never MAGLEV_EMPTY.
 */
static void maglev_claim(struct maglev_state *s, uint32_t *table, uint32_t size)
{
	uint32_t cur = s->cur;

	while (table[cur] != MAGLEV_EMPTY) {
		/* cur, skip < size <= 2^20: the sum cannot overflow, one subtraction wraps it. */
		cur += s->skip;
		if (cur >= size)
			cur -= size;
	}
	table[cur] = s->id;
	cur += s->skip;
	if (cur >= size)
		cur -= size;
	s->cur = cur;
}

/*
 * maglev_populate() - fill an all-empty @table from @n (>= 1) weighted states.
 *
 * Each round every backend earns its weight in credit and spends @max_weight
 * per slot, so slot counts are proportional to weight. The heaviest backend
 * claims a slot every round, which bounds the number of rounds by @size.
 * Stops the moment the table is full, even mid-round. Cost is O(rounds * n)
 * plus the claim walks: about 1 ms for 1000 equal weights at 65537, but a
 * heavily skewed set (one backend 1000x the rest) needs ~size/2 rounds (~20 ms).
 */
static void maglev_populate(struct maglev_state *st, size_t n, uint32_t max_weight, uint32_t *table,
			    uint32_t size)
{
	uint32_t filled = 0;
	size_t i;

	for (;;) {
		for (i = 0; i < n; i++) {
			st[i].credit += st[i].weight;
			while (st[i].credit >= max_weight) {
				st[i].credit -= max_weight;
				maglev_claim(&st[i], table, size);
				if (++filled == size)
					return;
			}
		}
	}
}

int maglev_build(const struct maglev_backend *backends, size_t n, uint32_t *table, uint32_t size)
{
	struct maglev_state *st = NULL;
	uint32_t max_weight;
	size_t active, i;
	int err;

	err = maglev_check_args(backends, n, table, size);
	if (err)
		return err;
	for (i = 0; i < size; i++)
		table[i] = MAGLEV_EMPTY;
	/* calloc(0) may return NULL, which would read as -ENOMEM. */
	if (!n)
		return 0;
	st = calloc(n, sizeof(*st));
	if (!st)
		return -ENOMEM;
	maglev_init_state(st, backends, n, size, &active, &max_weight);
	if (!active)
		goto out;
	maglev_populate(st, active, max_weight, table, size);
out:
	free(st);
	return 0;
}
