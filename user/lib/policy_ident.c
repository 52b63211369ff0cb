/* Identities (policy.h): one per distinct endpoint label set and per CIDR
 * a rule names, kept stable across compilations, and the lookups of one by
 * its label set or CIDR. Also the hash table of item indices that these
 * lookups and the compiler (policy_compile.c) index things with. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "policy_internal.h"

/* ---- an open-addressing hash table of item indices ---- */

int pol_htab_init(struct pol_htab *h, size_t expect)
{
	size_t cap = 16;

	while (cap < 2 * expect)
		cap <<= 1;
	h->slots = calloc(cap, sizeof(*h->slots));
	h->cap = cap;
	h->n = 0;
	return h->slots ? 0 : -ENOMEM;
}

void pol_htab_free(struct pol_htab *h)
{
	free(h->slots);
	memset(h, 0, sizeof(*h));
}

struct pol_htab_slot *pol_htab_probe(const struct pol_htab *h, uint32_t hash, pol_htab_eq_fn eq,
				     const void *ctx)
{
	size_t mask = h->cap - 1, i;

	for (i = hash & mask;; i = (i + 1) & mask) {
		struct pol_htab_slot *s = &h->slots[i];

		if (!s->item || (s->hash == hash && eq(ctx, s->item - 1)))
			return s;
	}
}

static int htab_grow(struct pol_htab *h)
{
	struct pol_htab bigger = { .n = h->n };
	size_t i, j;

	bigger.cap = h->cap * 2;
	bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
	if (!bigger.slots)
		return -ENOMEM;
	for (i = 0; i < h->cap; i++) {
		if (!h->slots[i].item)
			continue;
		for (j = h->slots[i].hash & (bigger.cap - 1); bigger.slots[j].item;
		     j = (j + 1) & (bigger.cap - 1))
			;
		bigger.slots[j] = h->slots[i];
	}
	free(h->slots);
	*h = bigger;
	return 0;
}

int pol_htab_fill(struct pol_htab *h, struct pol_htab_slot *slot, uint32_t hash, size_t item)
{
	slot->item = (uint32_t)item + 1;
	slot->hash = hash;
	if (++h->n * 2 > h->cap)
		return htab_grow(h);
	return 0;
}

uint32_t pol_mix(uint64_t k)
{
	return (uint32_t)hash_fmix64(k);
}

/* ---- identities ---- */

static bool labels_equal(const struct pol_labels *a, const struct pol_labels *b)
{
	unsigned int i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++) {
		if (strcmp(a->l[i].key, b->l[i].key) || strcmp(a->l[i].value, b->l[i].value))
			return false;
	}
	return true;
}

bool pol_prefix_equal(const struct pol_prefix *a, const struct pol_prefix *b)
{
	return a->family == b->family && a->prefixlen == b->prefixlen &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

static uint32_t ident_hash(const struct pol_ident_key *k)
{
	uint64_t h = HASH_FNV_OFFSET ^ k->kind;
	unsigned int i;

	if (k->kind == POL_IDENT_CIDR) {
		h = hash_fnv1a(h, k->cidr->addr, sizeof(k->cidr->addr));
		return pol_mix(h ^ ((uint64_t)k->cidr->family << 8 | k->cidr->prefixlen));
	}
	for (i = 0; i < k->labels->n; i++) {
		/* The NULs keep "ab"="c" apart from "a"="bc". */
		h = hash_fnv1a(h, k->labels->l[i].key, strlen(k->labels->l[i].key) + 1);
		h = hash_fnv1a(h, k->labels->l[i].value, strlen(k->labels->l[i].value) + 1);
	}
	return pol_mix(h);
}

static bool ident_eq(const void *ctx, uint32_t item)
{
	const struct pol_ident_key *k = ctx;
	const struct pol_identity *id = &k->items[item];

	if (id->kind != k->kind)
		return false;
	if (k->kind == POL_IDENT_CIDR)
		return pol_prefix_equal(&id->cidr, k->cidr);
	return labels_equal(&id->labels, k->labels);
}

int pol_ident_index(struct pol_htab *h, const struct pol_identity *ids, size_t n)
{
	struct pol_ident_key k = { .items = ids };
	struct pol_htab_slot *slot;
	uint32_t hash;
	size_t i;
	int ret;

	ret = pol_htab_init(h, n);
	for (i = 0; !ret && i < n; i++) {
		k.kind = ids[i].kind;
		k.labels = &ids[i].labels;
		k.cidr = &ids[i].cidr;
		hash = ident_hash(&k);
		slot = pol_htab_probe(h, hash, ident_eq, &k);
		if (!slot->item)
			ret = pol_htab_fill(h, slot, hash, i);
	}
	return ret;
}

long pol_ident_find(const struct pol_htab *h, struct pol_ident_key *k,
		    const struct pol_identity *ids)
{
	struct pol_htab_slot *slot;

	k->items = ids;
	slot = pol_htab_probe(h, ident_hash(k), ident_eq, k);
	return slot->item ? (long)slot->item - 1 : -1;
}

/* The identities being assigned: distinct, in the order the state names them. */
struct ident_set {
	struct pol_identity *ids;
	size_t n, cap;
	struct pol_htab index;
};

static int ident_add(struct ident_set *set, struct pol_ident_key *k)
{
	struct pol_identity *id;
	struct pol_htab_slot *slot;
	uint32_t hash = ident_hash(k);

	k->items = set->ids;
	slot = pol_htab_probe(&set->index, hash, ident_eq, k);
	if (slot->item)
		return 0;
	if (set->n == set->cap) {
		size_t cap = set->cap ? 2 * set->cap : 64;

		id = realloc(set->ids, cap * sizeof(*id));
		if (!id)
			return -ENOMEM;
		set->ids = id;
		set->cap = cap;
	}
	id = &set->ids[set->n];
	memset(id, 0, sizeof(*id));
	id->kind = k->kind;
	if (k->kind == POL_IDENT_CIDR)
		id->cidr = *k->cidr;
	else
		memcpy(id->labels.l, k->labels->l, k->labels->n * sizeof(id->labels.l[0]));
	id->labels.n = k->kind == POL_IDENT_CIDR ? 0 : k->labels->n;
	return pol_htab_fill(&set->index, slot, hash, set->n++);
}

/* Every distinct endpoint label set (endpoint order), then every distinct
 * CIDR a rule's `from` names (rule order). */
static int ident_collect(const struct pol_state *st, struct ident_set *set)
{
	struct pol_ident_key k = { .kind = POL_IDENT_LABELS };
	size_t i, j;
	int ret;

	ret = pol_htab_init(&set->index, 64);
	for (i = 0; !ret && i < st->n_endpoints; i++) {
		k.labels = &st->endpoints[i].labels;
		ret = ident_add(set, &k);
	}
	k.kind = POL_IDENT_CIDR;
	for (i = 0; !ret && i < st->n_rulesets; i++) {
		for (j = 0; !ret && j < st->rulesets[i].n_rules; j++) {
			const struct pol_rule *r = &st->rulesets[i].rules[j];

			if (r->from.kind != POL_PEER_CIDR)
				continue;
			k.cidr = &r->from.cidr;
			ret = ident_add(set, &k);
		}
	}
	return ret;
}

static bool id_in_range(enum pol_ident_kind kind, uint32_t id)
{
	if (kind == POL_IDENT_CIDR)
		return id >= SL_ID_FIRST_CIDR;
	return id >= SL_ID_FIRST_ENDPOINT && id < SL_ID_FIRST_CIDR;
}

/* Give every identity of @set that @prev knows its id from @prev. */
static int ident_keep(struct ident_set *set, const struct pol_ident_table *prev)
{
	struct pol_ident_key k;
	struct pol_htab index;
	size_t i;
	long pos;
	int ret;

	if (!prev || !prev->n)
		return 0;
	ret = pol_ident_index(&index, prev->ids, prev->n);
	for (i = 0; !ret && i < set->n; i++) {
		k.kind = set->ids[i].kind;
		k.labels = &set->ids[i].labels;
		k.cidr = &set->ids[i].cidr;
		pos = pol_ident_find(&index, &k, prev->ids);
		if (pos >= 0 && id_in_range(k.kind, prev->ids[pos].id))
			set->ids[i].id = prev->ids[pos].id;
	}
	pol_htab_free(&index);
	return ret;
}

static int u32_cmp(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	return a < b ? -1 : a > b;
}

/*
 * ident_assign_new() - give the identities of @kind still without an id
 * the lowest ids from @first up that no other identity holds, in order.
 * With n identities the ids stay below @first + n: no range can run out.
 */
static int ident_assign_new(struct ident_set *set, enum pol_ident_kind kind, uint32_t first)
{
	size_t i, j = 0, n_used = 0;
	uint32_t next = first;
	uint32_t *used;

	used = malloc((set->n ? set->n : 1) * sizeof(*used));
	if (!used)
		return -ENOMEM;
	for (i = 0; i < set->n; i++) {
		if (set->ids[i].kind == kind && set->ids[i].id)
			used[n_used++] = set->ids[i].id;
	}
	qsort(used, n_used, sizeof(*used), u32_cmp);
	for (i = 0; i < set->n; i++) {
		if (set->ids[i].kind != kind || set->ids[i].id)
			continue;
		for (;;) {
			while (j < n_used && used[j] < next)
				j++;
			if (j == n_used || used[j] != next)
				break;
			next++;
		}
		set->ids[i].id = next++;
	}
	free(used);
	return 0;
}

static int ident_id_cmp(const void *pa, const void *pb)
{
	const struct pol_identity *a = pa, *b = pb;

	return a->id < b->id ? -1 : a->id > b->id;
}

int pol_identities_assign(const struct pol_state *state, const struct pol_ident_table *prev,
			  struct pol_ident_table *out)
{
	struct ident_set set = {};
	int ret;

	memset(out, 0, sizeof(*out));
	ret = ident_collect(state, &set);
	if (!ret)
		ret = ident_keep(&set, prev);
	if (!ret)
		ret = ident_assign_new(&set, POL_IDENT_LABELS, SL_ID_FIRST_ENDPOINT);
	if (!ret)
		ret = ident_assign_new(&set, POL_IDENT_CIDR, SL_ID_FIRST_CIDR);
	pol_htab_free(&set.index);
	if (ret) {
		free(set.ids);
		return ret;
	}
	qsort(set.ids, set.n, sizeof(*set.ids), ident_id_cmp);
	out->ids = set.ids;
	out->n = set.n;
	return 0;
}

void pol_ident_table_free(struct pol_ident_table *table)
{
	free(table->ids);
	memset(table, 0, sizeof(*table));
}

/* A linear scan: for one-off lookups. pol_compile() indexes the table. */
uint32_t pol_ident_of_labels(const struct pol_ident_table *table, const struct pol_labels *labels)
{
	size_t i;

	for (i = 0; i < table->n; i++) {
		if (table->ids[i].kind == POL_IDENT_LABELS &&
		    labels_equal(&table->ids[i].labels, labels))
			return table->ids[i].id;
	}
	return 0;
}

uint32_t pol_ident_of_cidr(const struct pol_ident_table *table, const struct pol_prefix *cidr)
{
	size_t i;

	for (i = 0; i < table->n; i++) {
		if (table->ids[i].kind == POL_IDENT_CIDR &&
		    pol_prefix_equal(&table->ids[i].cidr, cidr))
			return table->ids[i].id;
	}
	return 0;
}
