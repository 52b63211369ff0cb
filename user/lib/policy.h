/* Policy in userspace: endpoints with labels, rule sets of allow/deny
 * rules, the identities the agent gives label sets and CIDRs, and the
 * compilation of all that into the entries of the policy maps
 * (include/sluice/policy.h). Pure logic: nothing here touches a map;
 * policy_maps.h publishes what pol_compile() produced.
 *
 * Semantics (docs/policy.md): deny wins over allow; a destination that no
 * allow rule selects is open; one that any allow rule selects is denied
 * everything no allow rule allows. Rules apply at the destination: `to`
 * selects endpoints, `from` selects endpoints, CIDRs of the world, the
 * world, the host or anything. */
#ifndef SLUICE_POLICY_USER_H
#define SLUICE_POLICY_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/policy.h"

#define POL_LABELS_MAX 16 /* labels per endpoint, terms per selector */
#define POL_LABEL_KEY_MAX 64 /* with the NUL */
#define POL_LABEL_VALUE_MAX 64 /* with the NUL */
#define POL_NAME_MAX 64 /* rule set name, with the NUL */
#define POL_PORTS_MAX 16 /* port ranges per rule */
#define POL_NETNS_MAX 256 /* netns path, with the NUL */
#define POL_MAX_ENDPOINTS 16384
#define POL_MAX_RULES 4096 /* over all rule sets */
#define POL_RULE_ID_MAX 2147483647u /* ids are 1..2^31-1, as the config takes them */
#define POL_ERR_MAX 256

/* Keys: [A-Za-z0-9] then [A-Za-z0-9._/-]*; values: [A-Za-z0-9._-]*, may be
 * empty (Kubernetes label syntax, without its length limits). */
struct pol_label {
	char key[POL_LABEL_KEY_MAX];
	char value[POL_LABEL_VALUE_MAX];
};

/* A label set, sorted by key, no key twice. Two equal sets are equal
 * byte for byte (unused entries zeroed). */
struct pol_labels {
	struct pol_label l[POL_LABELS_MAX];
	unsigned int n;
};

enum pol_sel_op {
	POL_SEL_EQ, /* key=value */
	POL_SEL_NE, /* key!=value: also true when the key is absent */
	POL_SEL_EXISTS, /* key */
	POL_SEL_ABSENT, /* !key */
};

struct pol_sel_term {
	enum pol_sel_op op;
	char key[POL_LABEL_KEY_MAX];
	char value[POL_LABEL_VALUE_MAX];
};

/* Terms ANDed; no term selects every endpoint. */
struct pol_selector {
	struct pol_sel_term t[POL_LABELS_MAX];
	unsigned int n;
};

/* An address or CIDR in map byte order; a single address has the full
 * prefix length (32 or 128). */
struct pol_prefix {
	__be32 addr[4]; /* IPv4 in addr[0], rest zero; bits past prefixlen zero */
	__u8 family; /* SL_AF_INET or SL_AF_INET6 */
	__u8 prefixlen;
};

enum pol_peer_kind {
	POL_PEER_ANY, /* "any": every source, endpoints, world and host */
	POL_PEER_SELECTOR, /* "app=web,env=prod": endpoints whose labels match */
	POL_PEER_CIDR, /* "203.0.113.0/24": world addresses in the range */
	POL_PEER_WORLD, /* "world": every address that is not an endpoint */
	POL_PEER_HOST, /* "host": local processes with no endpoint address */
};

struct pol_peer {
	enum pol_peer_kind kind;
	struct pol_selector sel; /* POL_PEER_SELECTOR */
	struct pol_prefix cidr; /* POL_PEER_CIDR */
};

struct pol_port_range {
	uint16_t first, last; /* host order, first <= last */
};

enum pol_action {
	POL_ALLOW = 1,
	POL_DENY = 2,
};

enum pol_proto_mask {
	POL_TCP = 1 << 0,
	POL_UDP = 1 << 1,
	POL_ANY_PROTO = POL_TCP | POL_UDP,
};

struct pol_rule {
	uint32_t id; /* 1.., unique over every rule set: counters and events name it */
	enum pol_action action;
	struct pol_peer from;
	struct pol_selector to;
	struct pol_port_range ports[POL_PORTS_MAX];
	unsigned int n_ports; /* 0: every port */
	uint8_t protos; /* enum pol_proto_mask, never 0 */
	unsigned int line, column; /* config position, 0 when added by the API */
};

/* What happens to established flows when a policy change denies them. */
enum pol_established {
	POL_EST_KEEP = 0, /* they run on: a verdict holds for a flow's life (default) */
	POL_EST_RECHECK, /* re-checked on their next packet; now denied: dropped, counted */
};

struct pol_ruleset {
	char name[POL_NAME_MAX]; /* as cfg_name_valid() */
	enum pol_established established;
	struct pol_rule *rules;
	size_t n_rules;
	unsigned int line, column;
};

struct pol_endpoint {
	struct pol_prefix addr; /* one address: full prefix length */
	struct pol_labels labels;
	char netns[POL_NETNS_MAX]; /* "" or the path of its network namespace */
	unsigned int line, column;
};

/* The whole declared policy: endpoints (no address twice) and rule sets
 * (no name twice, no rule id twice). */
struct pol_state {
	struct pol_endpoint *endpoints;
	size_t n_endpoints;
	struct pol_ruleset *rulesets;
	size_t n_rulesets;
};

/* ---- text forms (CLI and config); 0 or -EINVAL, @err says why, the
 * output is untouched on error ---- */

/* "k=v,k2=v2" (may be empty: no labels). */
int pol_labels_parse(const char *text, struct pol_labels *out, char *err, size_t errlen);
/* "k=v,k2!=v,k3,!k4" (empty: every endpoint). */
int pol_selector_parse(const char *text, struct pol_selector *out, char *err, size_t errlen);
/* "any", "world", "host", a CIDR or a selector. */
int pol_peer_parse(const char *text, struct pol_peer *out, char *err, size_t errlen);
/* "80", "80,443,8000-8080", "any" (no ranges). Overlaps are allowed. */
int pol_ports_parse(const char *text, struct pol_port_range *out, unsigned int *n, char *err,
		    size_t errlen);
/* "tcp", "udp", "any". */
int pol_protos_parse(const char *text, uint8_t *out, char *err, size_t errlen);
/* "198.18.1.2" or "fd00::2" (full length) or with "/len" when @cidr. */
int pol_prefix_parse(const char *text, bool cidr, struct pol_prefix *out, char *err, size_t errlen);
/* The inverse forms, for `sluice policy list` and the state file. Each
 * writes a NUL-terminated string, truncated to @len. */
void pol_labels_format(const struct pol_labels *labels, char *buf, size_t len);
void pol_selector_format(const struct pol_selector *sel, char *buf, size_t len);
void pol_peer_format(const struct pol_peer *peer, char *buf, size_t len);
void pol_ports_format(const struct pol_port_range *ports, unsigned int n, char *buf, size_t len);
const char *pol_protos_name(uint8_t protos); /* "tcp", "udp", "any" */
void pol_prefix_format(const struct pol_prefix *p, char *buf, size_t len);
const char *pol_action_name(enum pol_action action);
const char *pol_established_name(enum pol_established mode);

/* An order of prefixes for qsort()/bsearch(), field by field (struct
 * pol_prefix has padding). */
int pol_prefix_cmp(const void *a, const void *b);

bool pol_selector_match(const struct pol_selector *sel, const struct pol_labels *labels);
/* @inner lies within @outer (same family, longer or equal prefix). */
bool pol_prefix_within(const struct pol_prefix *inner, const struct pol_prefix *outer);

/* Check a whole state: names, no duplicates, ids, limits. */
int pol_state_validate(const struct pol_state *state, char *err, size_t errlen);
/* Byte for byte the same endpoints and rule sets, in the same order. A
 * false answer may be wrong (equal content, different padding or
 * positions): callers use it to skip work that an answer of true makes
 * useless, never to decide that something changed. */
bool pol_state_same(const struct pol_state *a, const struct pol_state *b);
/* Deep copy (@dst zeroed on error; 0 or -ENOMEM) and release. */
int pol_state_copy(struct pol_state *dst, const struct pol_state *src);
void pol_state_free(struct pol_state *state);

/* ---- identities ---- */

enum pol_ident_kind {
	POL_IDENT_LABELS, /* an endpoint label set: SL_ID_FIRST_ENDPOINT.. */
	POL_IDENT_CIDR, /* a CIDR some rule names: SL_ID_FIRST_CIDR.. */
};

struct pol_identity {
	uint32_t id;
	enum pol_ident_kind kind;
	struct pol_labels labels; /* POL_IDENT_LABELS */
	struct pol_prefix cidr; /* POL_IDENT_CIDR */
};

/* Sorted by id. */
struct pol_ident_table {
	struct pol_identity *ids;
	size_t n;
};

/*
 * pol_identities_assign() - the identities @state needs: one per distinct
 * endpoint label set, one per distinct CIDR named by a rule's `from`. A
 * label set or CIDR that @prev (may be NULL) knows keeps its id; a new
 * one gets the lowest free id of its range; ones @state no longer uses
 * are dropped (garbage collected). Returns 0 or -ENOMEM (@out zeroed).
 */
int pol_identities_assign(const struct pol_state *state, const struct pol_ident_table *prev,
			  struct pol_ident_table *out);
void pol_ident_table_free(struct pol_ident_table *table);
/* The identity of @labels or @cidr in @table, 0 when absent. */
uint32_t pol_ident_of_labels(const struct pol_ident_table *table, const struct pol_labels *labels);
uint32_t pol_ident_of_cidr(const struct pol_ident_table *table, const struct pol_prefix *cidr);

/* ---- compilation ---- */

struct pol_ipcache_entry {
	struct pol_prefix prefix;
	uint32_t identity;
};

/* key.gen is 0 here: the publisher sets it. */
struct pol_rule_entry {
	struct sl_pol_key key;
	uint32_t rule_id;
	enum pol_action action;
};

struct pol_dst_entry {
	uint32_t dst_id;
	uint32_t flags; /* enum sl_pol_dst_flags */
};

struct pol_netns_entry {
	char path[POL_NETNS_MAX];
	struct sl_pol_netns addrs;
};

struct pol_compiled {
	struct pol_ident_table idents;
	struct pol_ipcache_entry *ipcache; /* endpoints, then CIDR identities */
	size_t n_ipcache;
	struct pol_rule_entry *rules; /* no two with one (action, key) */
	size_t n_rules;
	struct pol_dst_entry *dsts; /* no dst_id twice */
	size_t n_dsts;
	struct pol_netns_entry *netns; /* no path twice */
	size_t n_netns;
};

/*
 * pol_compile() - turn a validated @state into map entries, keeping the
 * identities of @prev_idents (may be NULL) where it can. Per rule: every
 * destination identity `to` selects x every source identity `from`
 * selects (SL_ID_ANY for "any") x each protocol x the port prefixes that
 * cover its ranges. When two rules of one action give the same key the
 * lower rule id is kept. Returns 0, -E2BIG when the entries would not fit
 * the maps (half of each map: two generations live side by side while
 * one is published; @err says which), or -ENOMEM. @out is zeroed on error.
 */
int pol_compile(const struct pol_state *state, const struct pol_ident_table *prev_idents,
		struct pol_compiled *out, char *err, size_t errlen);
void pol_compiled_free(struct pol_compiled *c);

/* The prefixes (value, bits) that exactly cover [first, last]: at most 30.
 * Returns how many were written to @out. */
unsigned int pol_port_prefixes(uint16_t first, uint16_t last, uint16_t *values, __u8 *bits);

#endif
