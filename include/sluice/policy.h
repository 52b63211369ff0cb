/* Identity-based L3/L4 policy, shared by the agent (which compiles rule
 * sets into these maps) and the XDP and socket programs (which look them
 * up). A policy is published as a generation: every map entry carries the
 * generation it belongs to, the agent writes a whole new generation next to
 * the active one and then switches sl_pol_gen, so the kernel never
 * enforces half a rule set. Entries of the previous generation are removed
 * after the switch.
 * Identities are in identity.h, denial events in events.h. */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

#include "sluice/identity.h"
#include "sluice/types.h"

#define SL_POL_RULE_SIZE 262144 /* compiled entries per action, both generations */
#define SL_POL_DST_SIZE 65536 /* destination identities, both generations */
#define SL_POL_NETNS_SIZE 8192 /* namespaces with an endpoint, both generations */
#define SL_POL_RULE_STATS 65536 /* per-rule denial counters */

/* sl_pol_allow / sl_pol_deny (LPM tries): one entry per (destination
 * identity, source identity or SL_ID_ANY, protocol, port prefix). A port
 * range compiles to the few prefixes that cover it; "all ports" is the
 * prefix that stops before the port. Everything before dport is always
 * matched whole, so prefixlen = SL_POL_KEY_EXACT_BITS + port bits. */
struct sl_pol_key {
	__u32 prefixlen;
	__u32 gen;
	__u32 dst_id;
	__u32 src_id;
	__u8 proto; /* SL_PROTO_TCP or SL_PROTO_UDP */
	__u8 pad; /* zero */
	__be16 dport;
};
_Static_assert(sizeof(struct sl_pol_key) == 20, "sl_pol_key is ABI");

#define SL_POL_KEY_EXACT_BITS 112 /* gen, dst_id, src_id, proto, pad */
#define SL_POL_KEY_BITS 128

struct sl_pol_rule {
	__u32 rule_id; /* the agent's rule id: counters and events name it */
};
_Static_assert(sizeof(struct sl_pol_rule) == 4, "sl_pol_rule is ABI");

/* sl_pol_dst (hash): per generation, the destinations some rule selects.
 * A destination without an entry is open and costs one lookup. */
struct sl_pol_dst_key {
	__u32 gen;
	__u32 dst_id;
};
_Static_assert(sizeof(struct sl_pol_dst_key) == 8, "sl_pol_dst_key is ABI");

enum sl_pol_dst_flags {
	SL_POL_DST_ALLOW_SELECTED = 1 << 0, /* an allow rule selects it: default deny */
	SL_POL_DST_RECHECK = 1 << 1, /* a re-check rule set selects it */
	SL_POL_DST_DENY_SELECTED = 1 << 2, /* a deny rule selects it */
};

struct sl_pol_dst {
	__u32 flags; /* enum sl_pol_dst_flags */
};
_Static_assert(sizeof(struct sl_pol_dst) == 4, "sl_pol_dst is ABI");

/* sl_pol_gen (array, one entry): the generation being enforced. 0: no
 * policy was ever published, nothing is checked. The digest of what the
 * generation holds lets the agent leave an unchanged policy alone (a
 * restart, a reload with the same policy) instead of publishing it again. */
struct sl_pol_state {
	__u32 gen;
	__u32 pad; /* zero */
	__u64 digest; /* FNV-1a of the compiled entries and namespace cookies */
};
_Static_assert(sizeof(struct sl_pol_state) == 16, "sl_pol_state is ABI");

/* sl_ct_entry.pol_gen: the low 7 bits of the generation a flow was last
 * looked at under, and SL_POL_CT_KEPT when that look kept its old verdict
 * without judging it (keep mode): a SYN on such a tuple is a new
 * connection and is judged. A flow idle across exactly a multiple of 128
 * publications is not looked at again: documented. */
#define SL_POL_CT_GEN(gen) ((__u8)((gen)&0x7f))
#define SL_POL_CT_KEPT 0x80

/* sl_pol_netns (hash): (generation, network namespace cookie) -> the
 * addresses of the endpoint living in it. A local socket that connects
 * speaks for its namespace's endpoint (bpf/sock_lb.bpf.c says why). */
struct sl_pol_netns_key {
	__u64 cookie;
	__u32 gen;
	__u32 pad; /* zero */
};
_Static_assert(sizeof(struct sl_pol_netns_key) == 16, "sl_pol_netns_key is ABI");

struct sl_pol_netns {
	__be32 addr4; /* 0: none */
	__be32 addr6[4]; /* all zero: none */
};
_Static_assert(sizeof(struct sl_pol_netns) == 20, "sl_pol_netns is ABI");

/* Why a packet or a connect() was denied, and what the policy code saw. */
enum sl_pol_verdict {
	SL_POL_ALLOW_OPEN = 0, /* no allow rule selects the destination */
	SL_POL_ALLOW_RULE = 1, /* an allow rule matched */
	SL_POL_DENY_RULE = 2, /* a deny rule matched (deny wins) */
	SL_POL_DENY_DEFAULT = 3, /* selected by an allow rule, none matched */
};

/* sl_pol_st (per-CPU array): counters, indexed by this. Append-only. */
enum sl_pol_stat {
	SL_POL_ST_CHECKED = 0, /* new flows / connects evaluated */
	SL_POL_ST_ALLOWED,
	SL_POL_ST_DENY_RULE, /* denials by an explicit deny rule */
	SL_POL_ST_DENY_DEFAULT, /* denials by default-deny */
	SL_POL_ST_RECHECK_DROPS, /* established flows dropped by a re-check */
	SL_POL_ST_SOCK_DENIED, /* of the denials: at connect()/sendmsg() */
	SL_POL_ST_EVENTS, /* denial events written to sl_pol_events */
	SL_POL_ST_EVENTS_LIMITED, /* not written: rate limit */
	SL_POL_ST_EVENTS_LOST, /* not written: ring buffer full */
	SL_POL_ST_MAX, /* keep last */
};

#define SL_POL_STAT_NAMES                                                                          \
	{                                                                                          \
		"checked", "allowed", "deny_rule", "deny_default", "recheck_drops", "sock_denied", \
			"events", "events_limited", "events_lost"                                  \
	}

#endif
