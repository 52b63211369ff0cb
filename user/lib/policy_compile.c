/* From a declared policy to map entries (policy.h): with the identities
 * policy_ident.c assigns, the ipcache, rule, destination and netns
 * entries. Rules are expanded over identities, not endpoints, and
 * deduplicated through a hash table, so thousands of rules over ten
 * thousand endpoints compile in milliseconds. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "policy_internal.h"

#define RULE_LIMIT (SL_POL_RULE_SIZE / 2) /* per action and generation */
/* Past this many entries of one action a compilation stops counting: a
 * policy that large is refused anyway, and expanding it all could take
 * more memory than the agent should. */
#define RULE_COUNT_CAP (2 * RULE_LIMIT)
#define IPCACHE_LIMIT (SL_POL_IPCACHE_SIZE / 2) /* per family and generation */
#define DST_LIMIT (SL_POL_DST_SIZE / 2)
#define PORT_PREFIXES_MAX 30 /* for one range of 16-bit ports */

/* One compilation: the state, what it produced so far, scratch space. */
struct compile {
	const struct pol_state *st;
	struct pol_compiled *c;
	size_t n_lab; /* label identities: c->idents.ids[0..n_lab), CIDRs after */
	uint32_t *flags; /* per label identity: enum sl_pol_dst_flags */
	size_t *dst; /* the label identities a rule's `to` selects */
	uint32_t *src; /* the source ids a rule's `from` selects */
	struct pol_htab entries; /* (action, key) -> position in c->rules */
	size_t rules_cap;
	size_t n_allow, n_deny;
	char *err;
	size_t errlen;
};

struct prefix_key {
	const struct pol_prefix *p;
	const struct pol_ipcache_entry *items;
};

static uint32_t prefix_hash(const struct pol_prefix *p)
{
	uint64_t h = hash_fnv1a(HASH_FNV_OFFSET, p->addr, sizeof(p->addr));

	return pol_mix(h ^ ((uint64_t)p->family << 8 | p->prefixlen));
}

static bool prefix_key_eq(const void *ctx, uint32_t item)
{
	const struct prefix_key *k = ctx;

	return pol_prefix_equal(&k->items[item].prefix, k->p);
}

/*
 * ipcache_add_cidrs() - an entry per CIDR identity, after the @n_ep
 * endpoint entries; none for a CIDR that is exactly an endpoint's address:
 * the endpoint's entry has that key, and an endpoint is no world address.
 */
static int ipcache_add_cidrs(struct compile *cx, size_t n_ep)
{
	struct pol_compiled *c = cx->c;
	struct prefix_key k = { .items = c->ipcache };
	struct pol_htab_slot *slot;
	struct pol_htab eps;
	uint32_t hash;
	size_t i;
	int ret;

	ret = pol_htab_init(&eps, n_ep);
	for (i = 0; !ret && i < n_ep; i++) {
		k.p = &c->ipcache[i].prefix;
		hash = prefix_hash(k.p);
		slot = pol_htab_probe(&eps, hash, prefix_key_eq, &k);
		if (!slot->item)
			ret = pol_htab_fill(&eps, slot, hash, i);
	}
	for (i = cx->n_lab; !ret && i < c->idents.n; i++) {
		const struct pol_identity *id = &c->idents.ids[i];

		k.p = &id->cidr;
		if (pol_htab_probe(&eps, prefix_hash(k.p), prefix_key_eq, &k)->item)
			continue;
		c->ipcache[c->n_ipcache++] = (struct pol_ipcache_entry){ id->cidr, id->id };
	}
	pol_htab_free(&eps);
	return ret;
}

static int check_ipcache(struct compile *cx)
{
	size_t i, n4 = 0, n6 = 0;

	for (i = 0; i < cx->c->n_ipcache; i++) {
		if (cx->c->ipcache[i].prefix.family == SL_AF_INET)
			n4++;
		else
			n6++;
	}
	if (n4 > IPCACHE_LIMIT || n6 > IPCACHE_LIMIT)
		return pol_fail(
			-E2BIG, cx->err, cx->errlen,
			"policy compiles to %zu %s ipcache entries, the maps hold %d per generation",
			n4 > IPCACHE_LIMIT ? n4 : n6, n4 > IPCACHE_LIMIT ? "IPv4" : "IPv6",
			IPCACHE_LIMIT);
	return 0;
}

/* Every endpoint's address -> its label set's identity, then the CIDRs. */
static int compile_ipcache(struct compile *cx)
{
	const struct pol_ident_table *t = &cx->c->idents;
	struct pol_ident_key k = { .kind = POL_IDENT_LABELS };
	struct pol_compiled *c = cx->c;
	struct pol_htab index;
	size_t i;
	long pos;
	int ret;

	c->ipcache = calloc(cx->st->n_endpoints + t->n + 1, sizeof(*c->ipcache));
	if (!c->ipcache)
		return -ENOMEM;
	ret = pol_ident_index(&index, t->ids, t->n);
	for (i = 0; !ret && i < cx->st->n_endpoints; i++) {
		k.labels = &cx->st->endpoints[i].labels;
		pos = pol_ident_find(&index, &k, t->ids);
		if (pos < 0) {
			ret = -EINVAL; /* pol_identities_assign() gave every label set one */
			break;
		}
		c->ipcache[c->n_ipcache++] =
			(struct pol_ipcache_entry){ cx->st->endpoints[i].addr, t->ids[pos].id };
	}
	pol_htab_free(&index);
	if (!ret)
		ret = ipcache_add_cidrs(cx, c->n_ipcache);
	return ret ? ret : check_ipcache(cx);
}

/* By path, then by position in the state (the array order). */
static int netns_cmp(const void *pa, const void *pb)
{
	const struct pol_endpoint *a = *(const struct pol_endpoint *const *)pa;
	const struct pol_endpoint *b = *(const struct pol_endpoint *const *)pb;
	int c = strcmp(a->netns, b->netns);

	return c ? c : a < b ? -1 : a > b;
}

/* One entry per netns path, with its IPv4 and its IPv6 endpoint address. */
static int compile_netns(struct compile *cx)
{
	const struct pol_endpoint **eps;
	struct pol_compiled *c = cx->c;
	struct pol_netns_entry *e = NULL;
	size_t i, n = 0;

	eps = malloc((cx->st->n_endpoints + 1) * sizeof(*eps));
	c->netns = calloc(cx->st->n_endpoints + 1, sizeof(*c->netns));
	if (!eps || !c->netns) {
		free(eps);
		return -ENOMEM;
	}
	for (i = 0; i < cx->st->n_endpoints; i++) {
		if (cx->st->endpoints[i].netns[0])
			eps[n++] = &cx->st->endpoints[i];
	}
	qsort(eps, n, sizeof(*eps), netns_cmp);
	for (i = 0; i < n; i++) {
		if (!e || strcmp(e->path, eps[i]->netns)) {
			e = &c->netns[c->n_netns++];
			memcpy(e->path, eps[i]->netns, strlen(eps[i]->netns) + 1);
		}
		if (eps[i]->addr.family == SL_AF_INET)
			e->addrs.addr4 = eps[i]->addr.addr[0];
		else
			memcpy(e->addrs.addr6, eps[i]->addr.addr, sizeof(e->addrs.addr6));
	}
	free(eps);
	if (c->n_netns > SL_POL_NETNS_SIZE / 2)
		return pol_fail(
			-E2BIG, cx->err, cx->errlen,
			"policy has %zu network namespaces, the map holds %d per generation",
			c->n_netns, SL_POL_NETNS_SIZE / 2);
	return 0;
}

struct entry_key {
	const struct pol_rule_entry *e;
	const struct pol_rule_entry *items;
};

static uint32_t entry_hash(const struct pol_rule_entry *e)
{
	uint64_t a = (uint64_t)e->key.dst_id << 32 | e->key.src_id;
	uint64_t b = (uint64_t)e->key.prefixlen << 32 | (uint64_t)e->action << 24 |
		     (uint64_t)e->key.proto << 16 | e->key.dport;

	return pol_mix(a ^ hash_fmix64(b));
}

static bool entry_eq(const void *ctx, uint32_t item)
{
	const struct entry_key *k = ctx;
	const struct pol_rule_entry *old = &k->items[item];

	return old->action == k->e->action && !memcmp(&old->key, &k->e->key, sizeof(old->key));
}

/* Add @e unless an entry with its action and key is there: then the lower
 * rule id of the two stays. -E2BIG past RULE_COUNT_CAP of one action. */
static int add_entry(struct compile *cx, const struct pol_rule_entry *e)
{
	struct pol_compiled *c = cx->c;
	struct entry_key k = { e, c->rules };
	size_t *count = e->action == POL_ALLOW ? &cx->n_allow : &cx->n_deny;
	uint32_t hash = entry_hash(e);
	struct pol_htab_slot *slot = pol_htab_probe(&cx->entries, hash, entry_eq, &k);

	if (slot->item) {
		struct pol_rule_entry *old = &c->rules[slot->item - 1];

		if (e->rule_id < old->rule_id)
			old->rule_id = e->rule_id;
		return 0;
	}
	if (*count == RULE_COUNT_CAP)
		return -E2BIG;
	if (c->n_rules == cx->rules_cap) {
		size_t cap = cx->rules_cap ? 2 * cx->rules_cap : 1024;
		struct pol_rule_entry *rules = realloc(c->rules, cap * sizeof(*rules));

		if (!rules)
			return -ENOMEM;
		c->rules = rules;
		cx->rules_cap = cap;
	}
	c->rules[c->n_rules] = *e;
	(*count)++;
	return pol_htab_fill(&cx->entries, slot, hash, c->n_rules++);
}

/* Positions of the label identities @to selects, into cx->dst. */
static size_t select_dsts(struct compile *cx, const struct pol_selector *to)
{
	size_t i, n = 0;

	for (i = 0; i < cx->n_lab; i++) {
		if (pol_selector_match(to, &cx->c->idents.ids[i].labels))
			cx->dst[n++] = i;
	}
	return n;
}

/* The source ids @from selects, into cx->src. */
static size_t select_srcs(struct compile *cx, const struct pol_peer *from)
{
	const struct pol_identity *ids = cx->c->idents.ids;
	size_t i, n = 0;

	switch (from->kind) {
	case POL_PEER_ANY:
		cx->src[n++] = SL_ID_ANY;
		break;
	case POL_PEER_HOST:
		cx->src[n++] = SL_ID_HOST;
		break;
	case POL_PEER_WORLD:
		/* A world address in a rule's CIDR has that CIDR's identity. */
		cx->src[n++] = SL_ID_WORLD;
		for (i = cx->n_lab; i < cx->c->idents.n; i++)
			cx->src[n++] = ids[i].id;
		break;
	case POL_PEER_CIDR:
		for (i = cx->n_lab; i < cx->c->idents.n; i++) {
			if (pol_prefix_within(&ids[i].cidr, &from->cidr))
				cx->src[n++] = ids[i].id;
		}
		break;
	case POL_PEER_SELECTOR:
		for (i = 0; i < cx->n_lab; i++) {
			if (pol_selector_match(&from->sel, &ids[i].labels))
				cx->src[n++] = ids[i].id;
		}
		break;
	}
	return n;
}

/* Port prefixes of a rule; no ports: the one prefix that stops before the port. */
struct rule_ports {
	uint16_t values[POL_PORTS_MAX * PORT_PREFIXES_MAX];
	__u8 bits[POL_PORTS_MAX * PORT_PREFIXES_MAX];
	size_t n;
};

static void rule_ports(const struct pol_rule *r, struct rule_ports *p)
{
	unsigned int i;

	p->n = 0;
	if (!r->n_ports) {
		p->values[0] = 0;
		p->bits[0] = 0;
		p->n = 1;
	}
	for (i = 0; i < r->n_ports; i++)
		p->n += pol_port_prefixes(r->ports[i].first, r->ports[i].last, p->values + p->n,
					  p->bits + p->n);
}

/* The entries of one rule for one (destination, source) pair. */
static int emit_pair(struct compile *cx, const struct pol_rule *r, uint32_t dst, uint32_t src,
		     const struct rule_ports *ports)
{
	static const uint8_t proto_mask[] = { POL_TCP, POL_UDP };
	static const uint8_t proto_num[] = { SL_PROTO_TCP, SL_PROTO_UDP };
	struct pol_rule_entry e = { .rule_id = r->id, .action = r->action };
	size_t i, p;
	int ret;

	for (i = 0; i < sizeof(proto_mask); i++) {
		if (!(r->protos & proto_mask[i]))
			continue;
		for (p = 0; p < ports->n; p++) {
			e.key = (struct sl_pol_key){
				.prefixlen = SL_POL_KEY_EXACT_BITS + ports->bits[p],
				.dst_id = dst,
				.src_id = src,
				.proto = proto_num[i],
				.dport = htons(ports->values[p]),
			};
			ret = add_entry(cx, &e);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int compile_rule(struct compile *cx, const struct pol_ruleset *rs, const struct pol_rule *r)
{
	struct rule_ports ports;
	size_t n_dst, n_src, d, s;
	int ret;

	/* The flags spare the data path the lookups no rule could answer. */
	n_dst = select_dsts(cx, &r->to);
	for (d = 0; d < n_dst; d++) {
		if (r->action == POL_ALLOW)
			cx->flags[cx->dst[d]] |= SL_POL_DST_ALLOW_SELECTED;
		else
			cx->flags[cx->dst[d]] |= SL_POL_DST_DENY_SELECTED;
		if (rs->established == POL_EST_RECHECK)
			cx->flags[cx->dst[d]] |= SL_POL_DST_RECHECK;
	}
	n_src = select_srcs(cx, &r->from);
	rule_ports(r, &ports);
	for (d = 0; d < n_dst; d++) {
		for (s = 0; s < n_src; s++) {
			ret = emit_pair(cx, r, cx->c->idents.ids[cx->dst[d]].id, cx->src[s],
					&ports);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int compile_rules(struct compile *cx)
{
	const struct pol_state *st = cx->st;
	size_t i, j, over;
	int ret = 0;

	for (i = 0; !ret && i < st->n_rulesets; i++) {
		for (j = 0; !ret && j < st->rulesets[i].n_rules; j++)
			ret = compile_rule(cx, &st->rulesets[i], &st->rulesets[i].rules[j]);
	}
	if (ret == -E2BIG)
		return pol_fail(
			ret, cx->err, cx->errlen,
			"policy compiles to more than %d %s entries, the maps hold %d per generation",
			RULE_COUNT_CAP, cx->n_allow == RULE_COUNT_CAP ? "allow" : "deny",
			RULE_LIMIT);
	if (ret)
		return ret;
	over = cx->n_allow > RULE_LIMIT ? cx->n_allow : cx->n_deny;
	if (over > RULE_LIMIT)
		return pol_fail(
			-E2BIG, cx->err, cx->errlen,
			"policy compiles to %zu %s entries, the maps hold %d per generation", over,
			over == cx->n_allow ? "allow" : "deny", RULE_LIMIT);
	return 0;
}

/* The destinations some rule selects, in identity order. */
static int compile_dsts(struct compile *cx)
{
	struct pol_compiled *c = cx->c;
	size_t i, n = 0;

	for (i = 0; i < cx->n_lab; i++)
		n += !!cx->flags[i];
	if (n > DST_LIMIT)
		return pol_fail(
			-E2BIG, cx->err, cx->errlen,
			"policy compiles to %zu destination identities, the map holds %d per generation",
			n, DST_LIMIT);
	c->dsts = calloc(n + 1, sizeof(*c->dsts));
	if (!c->dsts)
		return -ENOMEM;
	for (i = 0; i < cx->n_lab; i++) {
		if (cx->flags[i])
			c->dsts[c->n_dsts++] =
				(struct pol_dst_entry){ c->idents.ids[i].id, cx->flags[i] };
	}
	return 0;
}

/* Scratch space for compile_rules(), sized by the identities. */
static int compile_init(struct compile *cx)
{
	const struct pol_ident_table *t = &cx->c->idents;

	while (cx->n_lab < t->n && t->ids[cx->n_lab].kind == POL_IDENT_LABELS)
		cx->n_lab++;
	cx->flags = calloc(t->n + 1, sizeof(*cx->flags));
	cx->dst = calloc(t->n + 1, sizeof(*cx->dst));
	cx->src = calloc(t->n + 1, sizeof(*cx->src));
	if (!cx->flags || !cx->dst || !cx->src)
		return -ENOMEM;
	return pol_htab_init(&cx->entries, 1024);
}

static void compile_fini(struct compile *cx)
{
	free(cx->flags);
	free(cx->dst);
	free(cx->src);
	pol_htab_free(&cx->entries);
}

int pol_compile(const struct pol_state *state, const struct pol_ident_table *prev_idents,
		struct pol_compiled *out, char *err, size_t errlen)
{
	struct pol_compiled c = {};
	struct compile cx = { .st = state, .c = &c, .err = err, .errlen = errlen };
	int ret;

	ret = pol_state_validate(state, err, errlen);
	if (!ret)
		ret = pol_identities_assign(state, prev_idents, &c.idents);
	if (!ret)
		ret = compile_init(&cx);
	if (!ret)
		ret = compile_ipcache(&cx);
	if (!ret)
		ret = compile_netns(&cx);
	if (!ret)
		ret = compile_rules(&cx);
	if (!ret)
		ret = compile_dsts(&cx);
	compile_fini(&cx);
	if (ret == -ENOMEM)
		pol_fail(ret, err, errlen, "out of memory");
	if (ret) {
		pol_compiled_free(&c);
		memset(out, 0, sizeof(*out));
		return ret;
	}
	*out = c;
	return 0;
}

void pol_compiled_free(struct pol_compiled *c)
{
	pol_ident_table_free(&c->idents);
	free(c->ipcache);
	free(c->rules);
	free(c->dsts);
	free(c->netns);
	memset(c, 0, sizeof(*c));
}

/*
 * The largest aligned block that starts at the low end and stays inside
 * the range, again and again: the classic range-to-prefix split, at most
 * 2 * 16 - 2 = 30 blocks.
 */
unsigned int pol_port_prefixes(uint16_t first, uint16_t last, uint16_t *values, __u8 *bits)
{
	uint32_t lo = first, hi = last;
	unsigned int n = 0, k;

	while (lo <= hi) {
		/* Alignment of lo: 16 for port 0, else its trailing zero bits. */
		k = lo ? (unsigned int)__builtin_ctz(lo) : 16;
		while (lo + (1u << k) - 1 > hi)
			k--;
		values[n] = (uint16_t)lo;
		bits[n] = (__u8)(16 - k);
		n++;
		lo += 1u << k;
	}
	return n;
}
