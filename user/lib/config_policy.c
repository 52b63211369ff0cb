/* The policy keys of the config format (docs/config.md): `endpoints` and
 * `policies`, read into cfg_state.policy with policy.h's text forms and
 * the parser of config.c (config_internal.h). Duplicate endpoint addresses,
 * rule set names and rule ids are found as they are read, in hash tables,
 * so errors come in file order and 16,384 endpoints cost linear time. Rules
 * without an id get theirs once the whole file is read (cfg_policy_finish). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "policy.h"

#define CFG_INDEX_MIN 64u /* slots of a table's first allocation */

/* An open-addressing table: slots hold key << 32 | value, 0 is empty and a
 * value is never 0. Endpoints and rule sets are keyed by the hash of their
 * address or name, the value their index + 1; rule ids are their own key,
 * the value the line they were given at. At most half full. */
struct cfg_pol_index {
	uint64_t *slots;
	size_t len; /* a power of two */
	size_t n;
};

struct cfg_policy_parse {
	struct cfg_pol_index endpoints; /* by address */
	struct cfg_pol_index netns; /* endpoints with a netns, by path and family */
	struct cfg_pol_index rulesets; /* by name */
	struct cfg_pol_index ids; /* the ids given */
	size_t n_rules; /* over all rule sets */
	uint32_t max_id; /* the highest id given, 0 for none */
};

/* Put @entry in the first free slot of its probe sequence. */
static void index_place(struct cfg_pol_index *ix, uint64_t entry)
{
	uint32_t slot = cfg_hash_finish(entry >> 32);

	while (ix->slots[slot & (ix->len - 1)])
		slot++;
	ix->slots[slot & (ix->len - 1)] = entry;
}

/* Room for one more entry, at most half full. 0 or -ENOMEM. */
static int index_reserve(struct cfg_pol_index *ix)
{
	size_t len = ix->len ? ix->len : CFG_INDEX_MIN, i;
	struct cfg_pol_index bigger;

	while (2 * (ix->n + 1) > len)
		len *= 2;
	if (len == ix->len)
		return 0;
	bigger.slots = calloc(len, sizeof(*bigger.slots));
	if (!bigger.slots)
		return -ENOMEM;
	bigger.len = len;
	bigger.n = ix->n;
	for (i = 0; i < ix->len; i++) {
		if (ix->slots[i])
			index_place(&bigger, ix->slots[i]);
	}
	free(ix->slots);
	*ix = bigger;
	return 0;
}

/*
 * index_add() - find the entry with hash @key that @same (NULL: the key says
 * all) takes for @obj, or add @key with @value. *@found is the value of the
 * earlier entry, or 0 when @value was added. Returns 0 or -ENOMEM.
 */
static int index_add(const struct cfg_parser *p, struct cfg_pol_index *ix, uint32_t key,
		     uint32_t value,
		     bool (*same)(const struct cfg_parser *p, uint32_t value, const void *obj),
		     const void *obj, uint32_t *found)
{
	uint32_t slot = cfg_hash_finish(key);
	uint64_t *s;

	if (index_reserve(ix))
		return -ENOMEM;
	for (;; slot++) {
		s = &ix->slots[slot & (ix->len - 1)];
		if (!*s)
			break;
		if (*s >> 32 == key && (!same || same(p, (uint32_t)*s, obj))) {
			*found = (uint32_t)*s;
			return 0;
		}
	}
	*s = (uint64_t)key << 32 | value;
	ix->n++;
	*found = 0;
	return 0;
}

static void index_free(struct cfg_pol_index *ix)
{
	free(ix->slots);
	memset(ix, 0, sizeof(*ix));
}

void cfg_policy_parse_free(struct cfg_parser *p)
{
	if (!p->pol)
		return;
	index_free(&p->pol->endpoints);
	index_free(&p->pol->netns);
	index_free(&p->pol->rulesets);
	index_free(&p->pol->ids);
	free(p->pol);
	p->pol = NULL;
}

static int policy_parse_get(struct cfg_parser *p)
{
	if (!p->pol)
		p->pol = calloc(1, sizeof(*p->pol));
	return p->pol ? 0 : cfg_oom(p);
}

/* ---- endpoints ---- */

static bool label_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/*
 * check_label_word() - the label grammar of policy.h (@key: a key, else a
 * value), in pol_labels_parse()'s words but at the offender's position: a
 * key starts with A-Z a-z 0-9 and goes on with those and . _ / -; a value
 * has A-Z a-z 0-9 . _ - only, and may be empty.
 */
static int check_label_word(struct cfg_parser *p, const char *text, bool key)
{
	const char *what = key ? "label key" : "label value";
	size_t len = strlen(text), max = key ? POL_LABEL_KEY_MAX - 1 : POL_LABEL_VALUE_MAX - 1;

	if (key && !len)
		return cfg_fail(p, "empty label key");
	if (len > max)
		return cfg_fail(p, "%s \"%.40s...\": longer than %zu characters", what, text, max);
	if (key && !label_alnum(text[0]))
		return cfg_fail(p, "%s \"%.40s\": must start with A-Z a-z 0-9", what, text);
	for (const char *c = text; *c; c++) {
		if (label_alnum(*c) || strchr(key ? "._/-" : "._-", *c))
			continue;
		if (*c >= ' ' && *c < 0x7f)
			return cfg_fail(p, "%s \"%.40s\": invalid character '%c'", what, text, *c);
		return cfg_fail(p, "%s \"%.40s\": invalid byte 0x%02x", what, text,
				(unsigned char)*c);
	}
	return 0;
}

/* The labels read so far, as pol_labels_parse() text and by key. */
struct label_acc {
	char text[POL_LABELS_MAX * (POL_LABEL_KEY_MAX + POL_LABEL_VALUE_MAX)];
	size_t len;
	char keys[POL_LABELS_MAX][POL_LABEL_KEY_MAX];
	unsigned int lines[POL_LABELS_MAX];
	unsigned int n;
};

/* Sized for the longest set: never cut, but bounded all the same. */
static void acc_append(struct label_acc *acc, const char *s)
{
	size_t len = strnlen(s, sizeof(acc->text) - 1 - acc->len);

	memcpy(acc->text + acc->len, s, len);
	acc->len += len;
	acc->text[acc->len] = '\0';
}

/* One "key: value" of a labels mapping, the key the current event. */
static int parse_label(struct cfg_parser *p, struct label_acc *acc)
{
	const char *key, *value;
	unsigned int i, line = p->event.start_mark.line + 1;
	size_t old;
	int err;

	err = cfg_scalar_text(p, "a label key", &key);
	if (err)
		return err;
	old = cfg_path_push_key(p, key);
	err = check_label_word(p, key, true);
	for (i = 0; !err && i < acc->n; i++) {
		if (!strcmp(acc->keys[i], key))
			err = cfg_fail(p, "duplicate label key \"%s\" (first at line %u)", key,
				       acc->lines[i]);
	}
	if (!err && acc->n == POL_LABELS_MAX)
		err = cfg_fail(p, "more than %d labels", POL_LABELS_MAX);
	if (err)
		return err;
	strcpy(acc->keys[acc->n], key);
	acc->lines[acc->n++] = line;
	err = cfg_next_event(p);
	if (!err)
		err = cfg_scalar_text(p, "a label value (quote an empty one: \"\")", &value);
	if (!err)
		err = check_label_word(p, value, false);
	if (err)
		return err;
	if (acc->len)
		acc_append(acc, ",");
	acc_append(acc, acc->keys[acc->n - 1]);
	acc_append(acc, "=");
	acc_append(acc, value);
	cfg_path_pop(p, old);
	return 0;
}

/* labels: a mapping of label keys to values; null is no labels. The pairs
 * are checked one by one for their positions, then the whole set goes
 * through pol_labels_parse() for its one (sorted) form. */
static int parse_ep_labels(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct pol_endpoint *ep = obj;
	yaml_mark_t start = p->event.start_mark;
	char msg[POL_ERR_MAX];
	struct label_acc *acc;
	int err;

	(void)f;
	if (cfg_event_is_null(&p->event))
		return 0;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected a mapping of labels, got %s",
				cfg_event_kind(&p->event));
	acc = calloc(1, sizeof(*acc));
	if (!acc)
		return cfg_oom(p);
	for (;;) {
		err = cfg_next_event(p);
		if (err || p->event.type == YAML_MAPPING_END_EVENT)
			break;
		err = parse_label(p, acc);
		if (err)
			break;
	}
	if (!err && pol_labels_parse(acc->text, &ep->labels, msg, sizeof(msg)))
		err = cfg_fail_pos(p, start.line + 1, start.column + 1, "%s", msg);
	free(acc);
	return err;
}

static bool same_endpoint(const struct cfg_parser *p, uint32_t value, const void *obj)
{
	const struct pol_prefix *a = &p->state.policy.endpoints[value - 1].addr, *b = obj;

	return a->family == b->family && !memcmp(a->addr, b->addr, sizeof(a->addr));
}

static int parse_ep_address(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct pol_endpoint *ep = obj;
	const struct pol_state *pol = &p->state.policy;
	char msg[POL_ERR_MAX], shown[64];
	const char *text;
	uint32_t hash, first;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "an IPv4 or IPv6 address", &text);
	if (err)
		return err;
	if (pol_prefix_parse(text, false, &ep->addr, msg, sizeof(msg)))
		return cfg_fail(p, "%s", msg);
	hash = cfg_hash_bytes(ep->addr.addr, sizeof(ep->addr.addr), 2166136261u);
	hash = cfg_hash_bytes(&ep->addr.family, sizeof(ep->addr.family), hash);
	if (index_add(p, &p->pol->endpoints, hash, ep - pol->endpoints + 1, same_endpoint,
		      &ep->addr, &first))
		return cfg_oom(p);
	if (!first)
		return 0;
	pol_prefix_format(&ep->addr, shown, sizeof(shown));
	return cfg_fail(p, "duplicate endpoint %s (first at line %u)", shown,
			pol->endpoints[first - 1].line);
}

static int parse_ep_netns(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct pol_endpoint *ep = obj;
	const char *text;
	size_t len;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "a path", &text);
	if (err)
		return err;
	len = strlen(text);
	if (text[0] != '/')
		return cfg_fail(p, "netns must be an absolute path");
	if (len >= sizeof(ep->netns))
		return cfg_fail(p, "netns is %zu bytes, the limit is %zu", len,
				sizeof(ep->netns) - 1);
	for (const char *c = text; *c; c++) {
		if ((unsigned char)*c < ' ' || *c == 0x7f)
			return cfg_fail(p, "netns must not hold control characters");
	}
	memcpy(ep->netns, text, len + 1);
	return 0;
}

static bool same_netns(const struct cfg_parser *p, uint32_t value, const void *obj)
{
	const struct pol_endpoint *a = &p->state.policy.endpoints[value - 1], *b = obj;

	return a->addr.family == b->addr.family && !strcmp(a->netns, b->netns);
}

/* The agent keeps one address per family of a namespace (the sl_pol_netns
 * map): a second one is refused at its netns key @mark. */
static int check_netns(struct cfg_parser *p, const struct pol_endpoint *ep, yaml_mark_t mark)
{
	const struct pol_state *pol = &p->state.policy;
	uint32_t hash, first;

	hash = cfg_hash_bytes(ep->netns, strlen(ep->netns), 2166136261u);
	hash = cfg_hash_bytes(&ep->addr.family, sizeof(ep->addr.family), hash);
	if (index_add(p, &p->pol->netns, hash, ep - pol->endpoints + 1, same_netns, ep, &first))
		return cfg_oom(p);
	if (!first)
		return 0;
	return cfg_fail_key(p, "netns", mark, "netns %.64s already has an IPv%d endpoint (line %u)",
			    ep->netns, ep->addr.family == SL_AF_INET ? 4 : 6,
			    pol->endpoints[first - 1].line);
}

enum { EF_ADDRESS, EF_LABELS, EF_NETNS };

static const struct cfg_field endpoint_fields[] = {
	[EF_ADDRESS] = { .key = "address", .parse = parse_ep_address },
	[EF_LABELS] = { .key = "labels", .parse = parse_ep_labels },
	[EF_NETNS] = { .key = "netns", .parse = parse_ep_netns },
};

static int parse_endpoint(struct cfg_parser *p, void *obj)
{
	struct pol_state *pol = &p->state.policy;
	struct pol_endpoint *ep;
	struct cfg_seen seen;
	int err;

	(void)obj;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected an endpoint mapping, got %s",
				cfg_event_kind(&p->event));
	if (pol->n_endpoints == POL_MAX_ENDPOINTS)
		return cfg_fail(p, "more than %d endpoints", POL_MAX_ENDPOINTS);
	ep = cfg_grow(pol->endpoints, pol->n_endpoints, sizeof(*ep));
	if (!ep)
		return cfg_oom(p);
	pol->endpoints = ep;
	ep += pol->n_endpoints++;
	memset(ep, 0, sizeof(*ep));
	ep->line = p->event.start_mark.line + 1;
	ep->column = p->event.start_mark.column + 1;
	err = cfg_parse_mapping(p, endpoint_fields, ARRAY_SIZE(endpoint_fields), ep, &seen);
	if (!err && !(seen.mask & BIT(EF_ADDRESS)))
		err = cfg_fail_key(p, "address", seen.start, "missing required key 'address'");
	if (!err && ep->netns[0])
		err = check_netns(p, ep, seen.key[EF_NETNS]);
	return err;
}

int cfg_parse_endpoints(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	if (policy_parse_get(p))
		return -ENOMEM;
	return cfg_parse_sequence(p, parse_endpoint, obj);
}

/* ---- rules ---- */

static int parse_rule_id(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct pol_rule *rule = obj;
	uint32_t first;
	int err;

	(void)f;
	err = cfg_parse_uint(p, 1, POL_RULE_ID_MAX, &rule->id);
	if (err)
		return err;
	if (index_add(p, &p->pol->ids, rule->id, p->event.start_mark.line + 1, NULL, NULL, &first))
		return cfg_oom(p);
	if (first)
		return cfg_fail(p, "duplicate rule id %u (first at line %u)", rule->id, first);
	if (rule->id > p->pol->max_id)
		p->pol->max_id = rule->id;
	return 0;
}

int cfg_parse_action(struct cfg_parser *p, enum pol_action *out)
{
	static const char *const words[] = { "allow", "deny" };
	static const enum pol_action actions[] = { POL_ALLOW, POL_DENY };
	unsigned int i = 0;
	int err;

	err = cfg_scalar_word(p, "action", "allow or deny", words, ARRAY_SIZE(words), &i);
	if (!err)
		*out = actions[i];
	return err;
}

int cfg_parse_peer(struct cfg_parser *p, struct pol_peer *out)
{
	char msg[POL_ERR_MAX];
	const char *text;
	int err;

	err = cfg_scalar_text(p, "any, world, host, a CIDR or a selector", &text);
	if (err)
		return err;
	if (pol_peer_parse(text, out, msg, sizeof(msg)))
		return cfg_fail(p, "%s", msg);
	return 0;
}

static int parse_action(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_action(p, &((struct pol_rule *)obj)->action);
}

static int parse_from(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_peer(p, &((struct pol_rule *)obj)->from);
}

static int parse_to(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct pol_rule *rule = obj;
	char msg[POL_ERR_MAX];
	const char *text;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "a selector (\"\" for every endpoint)", &text);
	if (err)
		return err;
	if (pol_selector_parse(text, &rule->to, msg, sizeof(msg)))
		return cfg_fail(p, "%s", msg);
	return 0;
}

static bool all_digits(const char *text)
{
	const char *c = text;

	while (*c >= '0' && *c <= '9')
		c++;
	return c != text && !*c;
}

/* One port or range of a ports list, or a whole ports string, appended to
 * @rule's ranges. A plain number is an integer of the format (no leading
 * zero); anything else is pol_ports_parse() text. *@any says the text was
 * "any" (every port). */
static int parse_port_text(struct cfg_parser *p, struct pol_rule *rule, bool *any)
{
	const yaml_event_t *ev = &p->event;
	struct pol_port_range ranges[POL_PORTS_MAX];
	char msg[POL_ERR_MAX];
	const char *text;
	unsigned int n;
	uint32_t port;
	int err;

	err = cfg_scalar_text(p, "a port, a range \"first-last\" or a list of them", &text);
	if (err)
		return err;
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && all_digits(text)) {
		err = cfg_parse_uint(p, 1, 65535, &port);
		if (err)
			return err;
		ranges[0].first = ranges[0].last = port;
		n = 1;
	} else if (pol_ports_parse(text, ranges, &n, msg, sizeof(msg))) {
		return cfg_fail(p, "%s", msg);
	}
	*any = !n;
	if (rule->n_ports + n > POL_PORTS_MAX)
		return cfg_fail(p, "more than %d port ranges", POL_PORTS_MAX);
	memcpy(&rule->ports[rule->n_ports], ranges, n * sizeof(ranges[0]));
	rule->n_ports += n;
	return 0;
}

static int parse_port_item(struct cfg_parser *p, void *obj)
{
	bool any;
	int err;

	err = parse_port_text(p, obj, &any);
	if (!err && any)
		return cfg_fail(p, "'any' inside a list: leave 'ports' out for every port");
	return err;
}

/* ports: a list of ports and ranges, or one string of them ("80,443",
 * "any"). An empty list or a null would read as "no port" to some and
 * "every port" to others: both are refused. */
static int parse_ports(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct pol_rule *rule = obj;
	yaml_mark_t start = p->event.start_mark;
	bool any;
	int err;

	(void)f;
	if (cfg_event_is_null(&p->event))
		return cfg_fail(p, "expected ports, got null: leave 'ports' out for every port");
	if (p->event.type != YAML_SEQUENCE_START_EVENT)
		return parse_port_text(p, rule, &any);
	err = cfg_parse_sequence(p, parse_port_item, rule);
	if (!err && !rule->n_ports)
		err = cfg_fail_pos(p, start.line + 1, start.column + 1,
				   "an empty list: leave 'ports' out for every port");
	return err;
}

static int parse_protocol(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct pol_rule *rule = obj;
	char msg[POL_ERR_MAX];
	const char *text;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "tcp, udp or any", &text);
	if (err)
		return err;
	if (pol_protos_parse(text, &rule->protos, msg, sizeof(msg)))
		return cfg_fail(p, "%s", msg);
	return 0;
}

enum { RF_ID, RF_ACTION, RF_FROM, RF_TO, RF_PORTS, RF_PROTOCOL };

static const struct cfg_field rule_fields[] = {
	[RF_ID] = { .key = "id", .parse = parse_rule_id },
	[RF_ACTION] = { .key = "action", .parse = parse_action },
	[RF_FROM] = { .key = "from", .parse = parse_from },
	[RF_TO] = { .key = "to", .parse = parse_to },
	[RF_PORTS] = { .key = "ports", .parse = parse_ports },
	[RF_PROTOCOL] = { .key = "protocol", .parse = parse_protocol },
};
_Static_assert(ARRAY_SIZE(rule_fields) <= CFG_FIELDS_MAX, "cfg_seen too small");

/* One rule of rule set @obj, counted from its start like a service. */
static int parse_rule(struct cfg_parser *p, void *obj)
{
	static const int required[] = { RF_ACTION, RF_FROM, RF_TO };
	struct pol_ruleset *rs = obj;
	struct pol_rule *rule;
	struct cfg_seen seen;
	size_t i;
	int err;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected a rule mapping, got %s", cfg_event_kind(&p->event));
	if (p->pol->n_rules == POL_MAX_RULES)
		return cfg_fail(p, "more than %d rules in total", POL_MAX_RULES);
	rule = cfg_grow(rs->rules, rs->n_rules, sizeof(*rule));
	if (!rule)
		return cfg_oom(p);
	rs->rules = rule;
	rule += rs->n_rules++;
	p->pol->n_rules++;
	memset(rule, 0, sizeof(*rule));
	rule->protos = POL_ANY_PROTO;
	rule->line = p->event.start_mark.line + 1;
	rule->column = p->event.start_mark.column + 1;
	err = cfg_parse_mapping(p, rule_fields, ARRAY_SIZE(rule_fields), rule, &seen);
	for (i = 0; !err && i < ARRAY_SIZE(required); i++) {
		const char *key = rule_fields[required[i]].key;

		if (!(seen.mask & BIT(required[i])))
			err = cfg_fail_key(p, key, seen.start, "missing required key '%s'", key);
	}
	return err;
}

/* ---- rule sets ---- */

static bool same_ruleset(const struct cfg_parser *p, uint32_t value, const void *obj)
{
	return !strcmp(p->state.policy.rulesets[value - 1].name, obj);
}

/* cfg_name_valid()'s characters; the length is the rule set's own (63, not
 * a service's 31), as pol_state_validate() has it. */
static bool name_chars_valid(const char *name)
{
	for (const char *c = name; *c; c++) {
		if (!label_alnum(*c) && !strchr("._-", *c))
			return false;
	}
	return true;
}

static int parse_ruleset_name(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	struct pol_ruleset *rs = obj;
	const struct pol_state *pol = &p->state.policy;
	const char *text;
	uint32_t first;
	size_t len;
	int err;

	(void)f;
	err = cfg_scalar_text(p, "a name", &text);
	if (err)
		return err;
	len = strlen(text);
	if (len >= sizeof(rs->name))
		return cfg_fail(p, "name is %zu characters, the limit is %zu", len,
				sizeof(rs->name) - 1);
	if (!len)
		return cfg_fail(p, "name is empty");
	if (!name_chars_valid(text))
		return cfg_fail(p, "name '%.40s' has characters other than A-Z a-z 0-9 . _ -",
				text);
	memcpy(rs->name, text, len + 1);
	if (index_add(p, &p->pol->rulesets, cfg_hash_bytes(text, len, 2166136261u),
		      rs - pol->rulesets + 1, same_ruleset, rs->name, &first))
		return cfg_oom(p);
	if (first)
		return cfg_fail(p, "duplicate policy '%s' (first at line %u)", rs->name,
				pol->rulesets[first - 1].line);
	return 0;
}

static int parse_established(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	static const char *const words[] = { "keep", "recheck" };
	static const enum pol_established modes[] = { POL_EST_KEEP, POL_EST_RECHECK };
	struct pol_ruleset *rs = obj;
	unsigned int i = 0;
	int err;

	(void)f;
	err = cfg_scalar_word(p, "mode", "keep or recheck", words, ARRAY_SIZE(words), &i);
	if (!err)
		rs->established = modes[i];
	return err;
}

static int parse_rules(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	return cfg_parse_sequence(p, parse_rule, obj);
}

enum { PF_NAME, PF_ESTABLISHED, PF_RULES };

static const struct cfg_field ruleset_fields[] = {
	[PF_NAME] = { .key = "name", .parse = parse_ruleset_name },
	[PF_ESTABLISHED] = { .key = "established", .parse = parse_established },
	[PF_RULES] = { .key = "rules", .parse = parse_rules },
};

static int parse_ruleset(struct cfg_parser *p, void *obj)
{
	struct pol_state *pol = &p->state.policy;
	struct pol_ruleset *rs;
	struct cfg_seen seen;
	int err;

	(void)obj;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return cfg_fail(p, "expected a policy mapping, got %s", cfg_event_kind(&p->event));
	rs = cfg_grow(pol->rulesets, pol->n_rulesets, sizeof(*rs));
	if (!rs)
		return cfg_oom(p);
	pol->rulesets = rs;
	/* Counted now so that an error frees its rules with the rest. */
	rs += pol->n_rulesets++;
	memset(rs, 0, sizeof(*rs));
	rs->line = p->event.start_mark.line + 1;
	rs->column = p->event.start_mark.column + 1;
	err = cfg_parse_mapping(p, ruleset_fields, ARRAY_SIZE(ruleset_fields), rs, &seen);
	if (!err && !(seen.mask & BIT(PF_NAME)))
		err = cfg_fail_key(p, "name", seen.start, "missing required key 'name'");
	return err;
}

int cfg_parse_policies(struct cfg_parser *p, const struct cfg_field *f, void *obj)
{
	(void)f;
	if (policy_parse_get(p))
		return -ENOMEM;
	return cfg_parse_sequence(p, parse_ruleset, obj);
}

/* ---- the policy as a whole ---- */

/* Rules without an id get the ones after the highest id given, in file
 * order, so they never collide with a given one. Such ids move when rules
 * are added before them: rules whose counters and events must keep their
 * names across edits are given ids. */
static int assign_ids(struct cfg_parser *p)
{
	struct pol_state *pol = &p->state.policy;
	uint32_t next = p->pol->max_id;
	size_t i, j;

	for (i = 0; i < pol->n_rulesets; i++) {
		for (j = 0; j < pol->rulesets[i].n_rules; j++) {
			struct pol_rule *rule = &pol->rulesets[i].rules[j];

			if (rule->id)
				continue;
			if (next == POL_RULE_ID_MAX) {
				cfg_path_push_key(p, "policies");
				cfg_path_push_index(p, i);
				cfg_path_push_key(p, "rules");
				cfg_path_push_index(p, j);
				return cfg_fail_pos(
					p, rule->line, rule->column,
					"no rule id left after %u: give this rule an id", next);
			}
			rule->id = ++next;
		}
	}
	return 0;
}

int cfg_policy_finish(struct cfg_parser *p)
{
	char msg[POL_ERR_MAX];
	int err;

	if (!p->pol)
		return 0;
	err = assign_ids(p);
	if (err)
		return err;
	/* Everything it checks was checked with positions above: this is the
	 * contract with the agent that every state it is given is valid. */
	err = pol_state_validate(&p->state.policy, msg, sizeof(msg));
	if (err == -ENOMEM)
		return cfg_oom(p);
	if (err)
		return cfg_fail_pos(p, 0, 0, "invalid policy: %s", msg);
	return 0;
}
