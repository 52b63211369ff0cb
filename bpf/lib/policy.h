/* Policy checks shared by the XDP program and the connect hooks: the
 * identity of an address, the verdict for (source, destination, protocol,
 * port) in the generation being enforced, and the accounting of a denial
 * (counters by reason and rule, a rate-limited ring-buffer event). */
#ifndef SL_BPF_POLICY_H
#define SL_BPF_POLICY_H

#include "lib/maps.h"
#include "lib/stats.h"

#define count_pol(stat) count_u64(&sl_pol_st, (stat))

/* What a check found; enough to account for it and report it. */
struct pol_result {
	__u32 verdict; /* enum sl_pol_verdict */
	__u32 rule_id;
	__u32 src_id;
	__u32 dst_id;
};

static __always_inline bool pol_denied(const struct pol_result *res)
{
	return res->verdict == SL_POL_DENY_RULE || res->verdict == SL_POL_DENY_DEFAULT;
}

/* The generation being enforced; 0 when no policy was ever published. */
static __always_inline __u32 pol_active_gen(void)
{
	struct sl_pol_state *st;
	__u32 zero = 0;

	st = bpf_map_lookup_elem(&sl_pol_gen, &zero);
	return st ? st->gen : 0;
}

/* The identity of @addr (IPv4 in addr[0]) in generation @gen. */
static __always_inline __u32 pol_identity(__u32 gen, __u8 family, const __be32 *addr)
{
	__u32 *id;

	if (family == AF_INET) {
		struct sl_ipcache4_key key = { .prefixlen = SL_IPCACHE_GEN_BITS + 32,
					       .gen = gen,
					       .addr = addr[0] };

		id = bpf_map_lookup_elem(&sl_ipcache4, &key);
	} else {
		struct sl_ipcache6_key key = { .prefixlen = SL_IPCACHE_GEN_BITS + 128, .gen = gen };

		__builtin_memcpy(key.addr, addr, 16);
		id = bpf_map_lookup_elem(&sl_ipcache6, &key);
	}
	return id ? *id : SL_ID_WORLD;
}

/* How @dst_id is selected in @gen (enum sl_pol_dst_flags); 0: open. */
static __always_inline __u32 pol_dst_flags(__u32 gen, __u32 dst_id)
{
	struct sl_pol_dst_key key = { .gen = gen, .dst_id = dst_id };
	struct sl_pol_dst *dst = bpf_map_lookup_elem(&sl_pol_dst, &key);

	return dst ? dst->flags : 0;
}

/* The rule of @map matching the flow from @src_id, or NULL. */
static __always_inline struct sl_pol_rule *pol_rule_match(void *map, __u32 gen, __u32 dst_id,
							  __u32 src_id, __u8 proto, __be16 dport)
{
	struct sl_pol_key key = { .prefixlen = SL_POL_KEY_BITS,
				  .gen = gen,
				  .dst_id = dst_id,
				  .src_id = src_id,
				  .proto = proto,
				  .dport = dport };

	return bpf_map_lookup_elem(map, &key);
}

/* A rule of @map for this flow, from its source's identity or from "any". */
static __always_inline struct sl_pol_rule *
pol_rule_find(void *map, __u32 gen, const struct pol_result *res, __u8 proto, __be16 dport)
{
	struct sl_pol_rule *rule;

	rule = pol_rule_match(map, gen, res->dst_id, res->src_id, proto, dport);
	if (!rule)
		rule = pol_rule_match(map, gen, res->dst_id, SL_ID_ANY, proto, dport);
	return rule;
}

/* Decide for res->src_id -> res->dst_id, given the destination's @flags:
 * deny rules first (deny wins), then allow rules, then the default of a
 * destination some allow rule selects (deny) or none does (open). */
static __always_inline void pol_decide(__u32 gen, __u32 flags, struct pol_result *res, __u8 proto,
				       __be16 dport)
{
	struct sl_pol_rule *rule;

	if (flags & SL_POL_DST_DENY_SELECTED) {
		rule = pol_rule_find(&sl_pol_deny, gen, res, proto, dport);
		if (rule) {
			res->verdict = SL_POL_DENY_RULE;
			res->rule_id = rule->rule_id;
			return;
		}
	}
	if (!(flags & SL_POL_DST_ALLOW_SELECTED)) {
		res->verdict = SL_POL_ALLOW_OPEN;
		return;
	}
	rule = pol_rule_find(&sl_pol_allow, gen, res, proto, dport);
	res->verdict = rule ? SL_POL_ALLOW_RULE : SL_POL_DENY_DEFAULT;
	res->rule_id = rule ? rule->rule_id : 0;
}

/* The verdict for @src_id -> @daddr:@dport in @gen. Returns the
 * destination's flags (0: open, decided with one lookup). */
static __always_inline __u32 pol_check(__u32 gen, __u32 src_id, __u8 family, const __be32 *daddr,
				       __u8 proto, __be16 dport, struct pol_result *res)
{
	__u32 flags;

	res->src_id = src_id;
	res->dst_id = pol_identity(gen, family, daddr);
	res->verdict = SL_POL_ALLOW_OPEN;
	res->rule_id = 0;
	flags = pol_dst_flags(gen, res->dst_id);
	if (flags)
		pol_decide(gen, flags, res, proto, dport);
	return flags;
}

/* Take one token from this CPU's bucket; false when it is empty. */
static __always_inline bool pol_event_allowed(void)
{
	struct sl_pol_ratelimit *rl;
	__u64 now, refill;
	__u32 zero = 0;

	rl = bpf_map_lookup_elem(&sl_pol_rl, &zero);
	if (!rl)
		return false;
	now = bpf_ktime_get_ns();
	refill = (now - rl->last_ns) * SL_POL_EVENTS_PER_SEC / 1000000000ULL;
	if (refill) {
		rl->tokens += refill;
		if (rl->tokens > SL_POL_EVENTS_BURST)
			rl->tokens = SL_POL_EVENTS_BURST;
		rl->last_ns = now;
	}
	if (!rl->tokens)
		return false;
	rl->tokens--;
	return true;
}

static __always_inline void pol_count_rule(__u32 rule_id)
{
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&sl_pol_rule_st, &rule_id);
	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&sl_pol_rule_st, &rule_id, &one, BPF_NOEXIST);
}

/* Account a denial of @ev's flow (addresses, ports, family, proto filled
 * by the caller) found by @res at @site: counters always, an event when
 * the rate limit and the ring buffer allow. */
static __always_inline void pol_report_denial(struct sl_pol_event *ev, const struct pol_result *res,
					      __u8 site)
{
	count_pol(res->verdict == SL_POL_DENY_RULE ? SL_POL_ST_DENY_RULE : SL_POL_ST_DENY_DEFAULT);
	if (site == SL_POL_SITE_CONNECT)
		count_pol(SL_POL_ST_SOCK_DENIED);
	if (site == SL_POL_SITE_RECHECK)
		count_pol(SL_POL_ST_RECHECK_DROPS);
	if (res->rule_id)
		pol_count_rule(res->rule_id);
	if (!pol_event_allowed()) {
		count_pol(SL_POL_ST_EVENTS_LIMITED);
		return;
	}
	ev->ts_ns = bpf_ktime_get_ns();
	ev->src_id = res->src_id;
	ev->dst_id = res->dst_id;
	ev->rule_id = res->rule_id;
	ev->verdict = res->verdict;
	ev->site = site;
	if (bpf_ringbuf_output(&sl_pol_events, ev, sizeof(*ev), 0)) {
		count_pol(SL_POL_ST_EVENTS_LOST);
		return;
	}
	count_pol(SL_POL_ST_EVENTS);
}

#endif
