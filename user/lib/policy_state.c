/* The declared policy as a whole (policy.h): the checks a state must pass
 * before it is compiled (names, ids, addresses, limits; messages name the
 * offender), and its deep copy and release. */
#define _GNU_SOURCE /* qsort_r */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static unsigned int family_bits(__u8 family)
{
	return family == SL_AF_INET ? 32 : family == SL_AF_INET6 ? 128 : 0;
}

/* A known family, a length that fits it, no bit set past the length. */
static bool prefix_valid(const struct pol_prefix *p)
{
	const unsigned char *b = (const unsigned char *)p->addr;
	unsigned int i;

	if (!family_bits(p->family) || p->prefixlen > family_bits(p->family))
		return false;
	for (i = p->prefixlen; i < 128; i++) {
		if (b[i / 8] & (0x80 >> (i % 8)))
			return false;
	}
	return true;
}

/* As cfg_name_valid(), and not empty. */
static bool name_valid(const char *name)
{
	const char *c;

	if (!terminated(name, POL_NAME_MAX) || !name[0])
		return false;
	for (c = name; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
			return false;
	}
	return true;
}

/* Strings terminated, keys in strictly increasing order: the form
 * pol_labels_parse() gives, which identities rely on. */
static bool labels_valid(const struct pol_labels *labels)
{
	unsigned int i;

	if (labels->n > POL_LABELS_MAX)
		return false;
	for (i = 0; i < labels->n; i++) {
		const struct pol_label *l = &labels->l[i];

		if (!terminated(l->key, sizeof(l->key)) || !terminated(l->value, sizeof(l->value)))
			return false;
		if (i && strcmp(labels->l[i - 1].key, l->key) >= 0)
			return false;
	}
	return true;
}

static bool selector_valid(const struct pol_selector *sel)
{
	unsigned int i;

	if (sel->n > POL_LABELS_MAX)
		return false;
	for (i = 0; i < sel->n; i++) {
		const struct pol_sel_term *t = &sel->t[i];

		if (t->op > POL_SEL_ABSENT || !terminated(t->key, sizeof(t->key)) ||
		    !terminated(t->value, sizeof(t->value)))
			return false;
	}
	return true;
}

/*
 * "" or an absolute path of printable characters, as the config parser
 * takes it: the state file is written in the config format, and its YAML
 * writer escapes only '"' and '\\', so a control character would leave
 * the agent a state file it cannot read back.
 */
static bool netns_valid(const char *netns)
{
	if (!netns[0])
		return true;
	if (netns[0] != '/')
		return false;
	for (const char *c = netns; *c; c++) {
		/* Printable ASCII: the YAML reader refuses other bytes too. */
		if ((unsigned char)*c < ' ' || (unsigned char)*c > '~')
			return false;
	}
	return true;
}

static int check_endpoint(const struct pol_endpoint *ep, size_t i, char *err, size_t errlen)
{
	char addr[64];

	if (!prefix_valid(&ep->addr) || ep->addr.prefixlen != family_bits(ep->addr.family))
		return pol_fail(-EINVAL, err, errlen,
				"endpoint #%zu: not a single IPv4 or IPv6 address", i);
	pol_prefix_format(&ep->addr, addr, sizeof(addr));
	if (!labels_valid(&ep->labels))
		return pol_fail(-EINVAL, err, errlen, "endpoint %s: malformed label set", addr);
	if (!terminated(ep->netns, sizeof(ep->netns)))
		return pol_fail(-EINVAL, err, errlen, "endpoint %s: netns path too long", addr);
	if (!netns_valid(ep->netns))
		return pol_fail(
			-EINVAL, err, errlen,
			"endpoint %s: netns must be an absolute path of printable ASCII, without control characters",
			addr);
	return 0;
}

static int check_peer(const struct pol_peer *peer)
{
	switch (peer->kind) {
	case POL_PEER_ANY:
	case POL_PEER_WORLD:
	case POL_PEER_HOST:
		return 0;
	case POL_PEER_SELECTOR:
		return selector_valid(&peer->sel) ? 0 : -EINVAL;
	case POL_PEER_CIDR:
		return prefix_valid(&peer->cidr) ? 0 : -EINVAL;
	}
	return -EINVAL;
}

static int check_rule(const struct pol_ruleset *rs, size_t i, char *err, size_t errlen)
{
	const struct pol_rule *r = &rs->rules[i];
	unsigned int p;

	if (!r->id)
		return pol_fail(-EINVAL, err, errlen, "rule set %s: rule #%zu has id 0", rs->name,
				i);
	/* The state file is read back by the config parser, which stops there. */
	if (r->id > POL_RULE_ID_MAX)
		return pol_fail(-EINVAL, err, errlen, "rule %u: ids go up to %u", r->id,
				POL_RULE_ID_MAX);
	if (r->action != POL_ALLOW && r->action != POL_DENY)
		return pol_fail(-EINVAL, err, errlen, "rule %u: invalid action %d", r->id,
				(int)r->action);
	if (!r->protos || (r->protos & ~POL_ANY_PROTO))
		return pol_fail(-EINVAL, err, errlen, "rule %u: invalid protocols 0x%x", r->id,
				r->protos);
	if (r->n_ports > POL_PORTS_MAX)
		return pol_fail(-EINVAL, err, errlen, "rule %u: more than %d port ranges", r->id,
				POL_PORTS_MAX);
	for (p = 0; p < r->n_ports; p++) {
		if (!r->ports[p].first || r->ports[p].first > r->ports[p].last)
			return pol_fail(-EINVAL, err, errlen, "rule %u: invalid port range %u-%u",
					r->id, r->ports[p].first, r->ports[p].last);
	}
	if (check_peer(&r->from))
		return pol_fail(-EINVAL, err, errlen, "rule %u: malformed from", r->id);
	if (!selector_valid(&r->to))
		return pol_fail(-EINVAL, err, errlen, "rule %u: malformed to", r->id);
	return 0;
}

static int check_each(const struct pol_state *st, char *err, size_t errlen)
{
	size_t i, j, n_rules = 0;
	int ret;

	if (st->n_endpoints > POL_MAX_ENDPOINTS)
		return pol_fail(-EINVAL, err, errlen, "%zu endpoints, the limit is %d",
				st->n_endpoints, POL_MAX_ENDPOINTS);
	for (i = 0; i < st->n_endpoints; i++) {
		ret = check_endpoint(&st->endpoints[i], i, err, errlen);
		if (ret)
			return ret;
	}
	for (i = 0; i < st->n_rulesets; i++) {
		const struct pol_ruleset *rs = &st->rulesets[i];

		if (!name_valid(rs->name))
			return pol_fail(
				-EINVAL, err, errlen,
				"rule set name \"%.*s\": empty, too long or with characters other than A-Z a-z 0-9 . _ -",
				POL_NAME_MAX - 1, rs->name);
		if (rs->established != POL_EST_KEEP && rs->established != POL_EST_RECHECK)
			return pol_fail(-EINVAL, err, errlen,
					"rule set %s: invalid established mode %d", rs->name,
					(int)rs->established);
		n_rules += rs->n_rules;
		for (j = 0; j < rs->n_rules; j++) {
			ret = check_rule(rs, j, err, errlen);
			if (ret)
				return ret;
		}
	}
	if (n_rules > POL_MAX_RULES)
		return pol_fail(-EINVAL, err, errlen, "%zu rules, the limit is %d", n_rules,
				POL_MAX_RULES);
	return 0;
}

/* One object in a uniqueness check. */
struct ref {
	const void *obj;
	size_t order; /* position in the state: breaks ties, picks the message */
	const struct pol_ruleset *rs; /* rule ids: the rule set of the rule */
};

typedef int (*key_cmp_fn)(const void *a, const void *b);

static int ref_cmp(const void *pa, const void *pb, void *arg)
{
	const struct ref *a = pa, *b = pb;
	int c = (*(key_cmp_fn *)arg)(a->obj, b->obj);

	if (c)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

/*
 * find_twice() - sort @refs and find two equal under @cmp. Of all such
 * pairs, the one whose later member comes first in the state, so the
 * message names the first repetition a reader meets. NULL when none.
 */
static const struct ref *find_twice(struct ref *refs, size_t n, key_cmp_fn cmp,
				    const struct ref **later)
{
	const struct ref *first = NULL;
	size_t i;

	qsort_r(refs, n, sizeof(*refs), ref_cmp, &cmp);
	for (i = 1; i < n; i++) {
		if (cmp(refs[i - 1].obj, refs[i].obj))
			continue;
		/* Within a run of equal keys, the run's head is the earliest. */
		if (!first || refs[i].order < (*later)->order) {
			size_t h = i - 1;

			while (h && !cmp(refs[h - 1].obj, refs[i].obj))
				h--;
			first = &refs[h];
			*later = &refs[i];
		}
	}
	return first;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pol_ruleset *)a)->name, ((const struct pol_ruleset *)b)->name);
}

static int addr_cmp(const void *pa, const void *pb)
{
	const struct pol_prefix *a = &((const struct pol_endpoint *)pa)->addr;
	const struct pol_prefix *b = &((const struct pol_endpoint *)pb)->addr;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

static int id_cmp(const void *pa, const void *pb)
{
	uint32_t a = ((const struct pol_rule *)pa)->id, b = ((const struct pol_rule *)pb)->id;

	return a < b ? -1 : a > b;
}

/* Same netns path and same family: the netns map holds one of each. */
static int netns_cmp(const void *pa, const void *pb)
{
	const struct pol_endpoint *a = pa, *b = pb;
	int c = strcmp(a->netns, b->netns);

	if (c)
		return c;
	return a->addr.family < b->addr.family ? -1 : a->addr.family > b->addr.family;
}

static int check_names(struct ref *refs, const struct pol_state *st, char *err, size_t errlen)
{
	const struct ref *first, *later = NULL;
	size_t i;

	for (i = 0; i < st->n_rulesets; i++)
		refs[i] = (struct ref){ &st->rulesets[i], i, NULL };
	first = find_twice(refs, st->n_rulesets, name_cmp, &later);
	if (first)
		return pol_fail(-EINVAL, err, errlen,
				"rule set %s given twice (rule sets #%zu and #%zu)",
				st->rulesets[first->order].name, first->order, later->order);
	return 0;
}

static int check_ids(struct ref *refs, const struct pol_state *st, char *err, size_t errlen)
{
	const struct ref *first, *later = NULL;
	size_t i, j, n = 0;

	for (i = 0; i < st->n_rulesets; i++) {
		for (j = 0; j < st->rulesets[i].n_rules; j++, n++)
			refs[n] = (struct ref){ &st->rulesets[i].rules[j], n, &st->rulesets[i] };
	}
	first = find_twice(refs, n, id_cmp, &later);
	if (first)
		return pol_fail(-EINVAL, err, errlen,
				"rule id %u given twice (rule sets %s and %s)",
				((const struct pol_rule *)first->obj)->id, first->rs->name,
				later->rs->name);
	return 0;
}

static int check_addrs(struct ref *refs, const struct pol_state *st, char *err, size_t errlen)
{
	const struct ref *first, *later = NULL;
	char addr[64];
	size_t i;

	for (i = 0; i < st->n_endpoints; i++)
		refs[i] = (struct ref){ &st->endpoints[i], i, NULL };
	first = find_twice(refs, st->n_endpoints, addr_cmp, &later);
	if (!first)
		return 0;
	pol_prefix_format(&st->endpoints[first->order].addr, addr, sizeof(addr));
	return pol_fail(-EINVAL, err, errlen, "endpoint %s given twice (endpoints #%zu and #%zu)",
			addr, first->order, later->order);
}

static int check_netns(struct ref *refs, const struct pol_state *st, char *err, size_t errlen)
{
	const struct ref *first, *later = NULL;
	const struct pol_endpoint *ep;
	size_t i, n = 0;

	for (i = 0; i < st->n_endpoints; i++) {
		if (st->endpoints[i].netns[0])
			refs[n++] = (struct ref){ &st->endpoints[i], i, NULL };
	}
	first = find_twice(refs, n, netns_cmp, &later);
	if (!first)
		return 0;
	ep = first->obj;
	return pol_fail(-EINVAL, err, errlen,
			"netns %.*s has two %s endpoints (endpoints #%zu and #%zu)", 128, ep->netns,
			ep->addr.family == SL_AF_INET ? "IPv4" : "IPv6", first->order,
			later->order);
}

/* No rule set name, endpoint address or rule id twice; one endpoint per
 * family and netns. Runs after check_each(): the counts are bounded. */
static int check_unique(const struct pol_state *st, char *err, size_t errlen)
{
	size_t i, n = st->n_endpoints > st->n_rulesets ? st->n_endpoints : st->n_rulesets;
	size_t n_rules = 0;
	struct ref *refs;
	int ret;

	for (i = 0; i < st->n_rulesets; i++)
		n_rules += st->rulesets[i].n_rules;
	if (n_rules > n)
		n = n_rules;
	refs = calloc(n ? n : 1, sizeof(*refs));
	if (!refs)
		return pol_fail(-ENOMEM, err, errlen, "out of memory");
	ret = check_names(refs, st, err, errlen);
	if (!ret)
		ret = check_ids(refs, st, err, errlen);
	if (!ret)
		ret = check_addrs(refs, st, err, errlen);
	if (!ret)
		ret = check_netns(refs, st, err, errlen);
	free(refs);
	return ret;
}

int pol_state_validate(const struct pol_state *state, char *err, size_t errlen)
{
	int ret;

	if ((state->n_endpoints && !state->endpoints) || (state->n_rulesets && !state->rulesets))
		return pol_fail(-EINVAL, err, errlen, "state without its arrays");
	ret = check_each(state, err, errlen);
	if (!ret)
		ret = check_unique(state, err, errlen);
	return ret;
}

static void *dup_array(const void *src, size_t n, size_t size)
{
	void *p;

	if (!n)
		return NULL;
	p = calloc(n, size);
	if (p)
		memcpy(p, src, n * size);
	return p;
}

int pol_prefix_cmp(const void *a, const void *b)
{
	const struct pol_prefix *x = a, *y = b;
	int d = memcmp(x->addr, y->addr, sizeof(x->addr));

	if (d)
		return d;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return (int)x->prefixlen - (int)y->prefixlen;
}

static bool rulesets_same(const struct pol_ruleset *a, const struct pol_ruleset *b)
{
	return !strcmp(a->name, b->name) && a->established == b->established &&
	       a->n_rules == b->n_rules &&
	       (!a->n_rules || !memcmp(a->rules, b->rules, a->n_rules * sizeof(*a->rules)));
}

bool pol_state_same(const struct pol_state *a, const struct pol_state *b)
{
	if (a->n_endpoints != b->n_endpoints || a->n_rulesets != b->n_rulesets)
		return false;
	if (a->n_endpoints &&
	    memcmp(a->endpoints, b->endpoints, a->n_endpoints * sizeof(*a->endpoints)))
		return false;
	for (size_t i = 0; i < a->n_rulesets; i++)
		if (!rulesets_same(&a->rulesets[i], &b->rulesets[i]))
			return false;
	return true;
}

int pol_state_copy(struct pol_state *dst, const struct pol_state *src)
{
	struct pol_state st = {};
	size_t i;

	st.n_endpoints = src->n_endpoints;
	st.endpoints = dup_array(src->endpoints, src->n_endpoints, sizeof(*src->endpoints));
	if (st.n_endpoints && !st.endpoints)
		goto free_state;
	/* Rule arrays are copied one by one below: until then, none is owned. */
	st.rulesets = dup_array(src->rulesets, src->n_rulesets, sizeof(*src->rulesets));
	if (src->n_rulesets && !st.rulesets)
		goto free_state;
	for (i = 0; i < src->n_rulesets; i++) {
		st.rulesets[i].rules = NULL;
		st.rulesets[i].n_rules = 0;
	}
	st.n_rulesets = src->n_rulesets;
	for (i = 0; i < src->n_rulesets; i++) {
		const struct pol_ruleset *rs = &src->rulesets[i];

		st.rulesets[i].rules = dup_array(rs->rules, rs->n_rules, sizeof(*rs->rules));
		if (rs->n_rules && !st.rulesets[i].rules)
			goto free_state;
		st.rulesets[i].n_rules = rs->n_rules;
	}
	*dst = st;
	return 0;

free_state:
	pol_state_free(&st);
	memset(dst, 0, sizeof(*dst));
	return -ENOMEM;
}

void pol_state_free(struct pol_state *state)
{
	size_t i;

	for (i = 0; i < state->n_rulesets; i++)
		free(state->rulesets[i].rules);
	free(state->rulesets);
	free(state->endpoints);
	memset(state, 0, sizeof(*state));
}
