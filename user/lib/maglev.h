/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Weighted Maglev consistent-hashing table builder (Maglev paper, section 3.4).
 * The load balancer fills a lookup table of backend ids with maglev_build() and
 * indexes it with flow_hash % size; the table is what the data plane sees.
 */
#ifndef SLUICE_MAGLEV_H
#define SLUICE_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One backend as Maglev sees it: its id (written into the table, never 0),
 * its weight (0 = gets no slots), and the bytes that seed its permutation
 * (address + port in network order: stable across restarts and hosts).
 */
struct maglev_backend {
	uint32_t id;
	uint32_t weight;
	const void *key;
	size_t key_len;
};

#define MAGLEV_EMPTY 0u /* table slot value when no backend has weight */
#define MAGLEV_MIN_SIZE 7u /* smallest allowed prime: leaves room for distinct skips */
#define MAGLEV_DEFAULT_SIZE 65537u
#define MAGLEV_MAX_SIZE 1048573u /* largest allowed prime (largest prime below 2^20) */

/*
 * maglev_size_valid() - true iff @size is prime and
 * MAGLEV_MIN_SIZE <= @size <= MAGLEV_MAX_SIZE. Primality is what makes every
 * skip in [1, size - 1] generate a full permutation of the table.
 */
bool maglev_size_valid(uint32_t size);

/*
 * maglev_build() - fill @table[0..@size) with backend ids.
 *
 * Returns 0, -EINVAL (invalid @size, NULL @table, NULL @backends with @n > 0,
 * @n > @size, an id of 0, a NULL key or a key_len of 0) or -ENOMEM. On error
 * @table may have been partially written and must not be used.
 *
 * If no backend has weight > 0 every slot is MAGLEV_EMPTY and it returns 0.
 * Slot counts are proportional to weight. The result depends only on the set
 * of (key, weight, id) triples, not on their order in @backends: the builder
 * sorts by key internally, so every host computes the same table.
 */
int maglev_build(const struct maglev_backend *backends, size_t n, uint32_t *table, uint32_t size);

#endif /* SLUICE_MAGLEV_H */
