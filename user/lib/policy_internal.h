/* What the policy library's files share and nothing else uses
 * (policy_text.c, policy_state.c, policy_ident.c, policy_compile.c): the
 * error message helper, the open-addressing hash table of item indices
 * and its hash functions, and identity lookups by label set or CIDR. */
#ifndef SLUICE_POLICY_INTERNAL_H
#define SLUICE_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* Write the message to @err (when there is room) and return @ret. */
int pol_fail(int ret, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- an open-addressing hash table of item indices (policy_ident.c) ---- */

struct pol_htab_slot {
	uint32_t item; /* index + 1; 0: empty */
	uint32_t hash;
};

struct pol_htab {
	struct pol_htab_slot *slots;
	size_t cap; /* a power of two, at least twice the items */
	size_t n;
};

/* Does item @item equal the key @ctx describes? */
typedef bool (*pol_htab_eq_fn)(const void *ctx, uint32_t item);

/* Room for @expect items without growing. Returns 0 or -ENOMEM. */
int pol_htab_init(struct pol_htab *h, size_t expect);
void pol_htab_free(struct pol_htab *h);
/* The slot holding an item equal to @ctx's key, or the empty slot where it goes. */
struct pol_htab_slot *pol_htab_probe(const struct pol_htab *h, uint32_t hash, pol_htab_eq_fn eq,
				     const void *ctx);
/* Put @item into the empty @slot pol_htab_probe() returned. Invalidates
 * slots (the table may grow). Returns 0 or -ENOMEM. */
int pol_htab_fill(struct pol_htab *h, struct pol_htab_slot *slot, uint32_t hash, size_t item);

/* hash_fmix64() (hash.h) cut to a slot hash. */
uint32_t pol_mix(uint64_t k);

bool pol_prefix_equal(const struct pol_prefix *a, const struct pol_prefix *b);

/* ---- identities by label set or CIDR (policy_ident.c) ---- */

/* What an identity is looked up by, and the identities it is looked up in. */
struct pol_ident_key {
	enum pol_ident_kind kind;
	const struct pol_labels *labels; /* POL_IDENT_LABELS */
	const struct pol_prefix *cidr; /* POL_IDENT_CIDR */
	const struct pol_identity *items;
};

/* Index @ids[0..n) by label set and CIDR into @h (pol_htab_free() it,
 * error or not). Returns 0 or -ENOMEM. */
int pol_ident_index(struct pol_htab *h, const struct pol_identity *ids, size_t n);
/* Position of @k's identity in @ids as indexed in @h, -1 when absent. */
long pol_ident_find(const struct pol_htab *h, struct pol_ident_key *k,
		    const struct pol_identity *ids);

#endif
