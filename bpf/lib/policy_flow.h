/* Policy for the packets the XDP program sees: a new flow is checked once
 * and its verdict kept in its conntrack entries; a tracked flow is looked
 * at again only when the generation changed and a re-check rule set
 * selects its destination. Flows are judged at their destination: the
 * backend a service picked, or the local endpoint addressed directly. */
#ifndef SL_BPF_POLICY_FLOW_H
#define SL_BPF_POLICY_FLOW_H

#include "lib/conntrack.h"
#include "lib/flow.h"
#include "lib/policy.h"

/* An event about @flow's client and the endpoint @daddr:@dport. */
static __always_inline void pol_flow_report(const struct sl_flow *flow, const __be32 *client,
					    __be16 client_port, const __be32 *daddr, __be16 dport,
					    const struct pol_result *res, __u8 site)
{
	struct sl_pol_event ev = { .sport = client_port,
				   .dport = dport,
				   .family = flow->family == AF_INET ? SL_AF_INET : SL_AF_INET6,
				   .proto = flow->proto };

	__builtin_memcpy(ev.saddr, client, 16);
	__builtin_memcpy(ev.daddr, daddr, 16);
	pol_report_denial(&ev, res, site);
}

/* The first packet of @flow, bound for @daddr:@dport (network order).
 * Returns 0 and sets *ct_gen to what its conntrack entries remember, or
 * -SL_DROP_POLICY. */
static __always_inline int pol_flow_new(const struct sl_flow *flow, const __be32 *daddr,
					__be16 dport, __u8 *ct_gen)
{
	__u32 gen = pol_active_gen();
	struct pol_result res;

	*ct_gen = SL_POL_CT_GEN(gen);
	if (!gen)
		return 0;
	pol_check(gen, pol_identity(gen, flow->family, flow->saddr), flow->family, daddr,
		  flow->proto, dport, &res);
	count_pol(SL_POL_ST_CHECKED);
	if (!pol_denied(&res)) {
		count_pol(SL_POL_ST_ALLOWED);
		return 0;
	}
	pol_flow_report(flow, flow->saddr, flow->sport, daddr, dport, &res, SL_POL_SITE_XDP);
	return -SL_DROP_POLICY;
}

/* A packet of the tracked flow @ct. Unless the policy changed since the
 * flow was last checked, nothing to do. Otherwise a flow whose endpoint a
 * re-check rule set selects is judged again (the original direction:
 * client -> endpoint, whichever way this packet goes); every other flow
 * keeps its verdict. A denied flow is dropped and forgotten (both
 * entries): its next packet is a new flow, judged as such, so nothing
 * later (a change of mode, a generation that wraps) can revive it.
 * Returns 0 or -SL_DROP_POLICY. */
static __always_inline int pol_flow_tracked(const struct sl_flow *flow, struct sl_ct_entry *ct)
{
	bool forward = ct_dir_forward(ct->dir);
	const __be32 *client = forward ? flow->saddr : flow->daddr;
	const __be32 *endpoint = forward ? ct->nat_addr : flow->saddr;
	__be16 port = forward ? ct->nat_port : flow->sport;
	__u32 gen = pol_active_gen();
	struct pol_result res = {};
	__u32 flags;

	if (!gen || (ct->pol_gen & ~SL_POL_CT_KEPT) == SL_POL_CT_GEN(gen))
		return 0;
	res.dst_id = pol_identity(gen, flow->family, endpoint);
	flags = pol_dst_flags(gen, res.dst_id);
	if (flags & SL_POL_DST_RECHECK) {
		res.src_id = pol_identity(gen, flow->family, client);
		pol_decide(gen, flags, &res, flow->proto, port);
		count_pol(SL_POL_ST_CHECKED);
		if (pol_denied(&res)) {
			pol_flow_report(flow, client, forward ? flow->sport : flow->dport, endpoint,
					port, &res, SL_POL_SITE_RECHECK);
			ct_forget(flow, ct);
			return -SL_DROP_POLICY;
		}
		ct->pol_gen = SL_POL_CT_GEN(gen);
		return 0;
	}
	ct->pol_gen = SL_POL_CT_GEN(gen) | SL_POL_CT_KEPT;
	return 0;
}

/* A TCP connection's first SYN, or a UDP datagram: what may begin a flow. */
static __always_inline bool pkt_opens_flow(const struct sl_pkt *pkt)
{
	if (pkt->l4_proto != IPPROTO_TCP)
		return true;
	/* Verifier: the l4 union loses the TCP bounds (see nat_rewrite). */
	if ((void *)(pkt->tcp + 1) > pkt->data_end)
		return false;
	return pkt->tcp->syn && !pkt->tcp->ack;
}

/* A SYN that finds a flow tracked under an older policy generation is a
 * new connection on a reused tuple: it must be judged, not inherit the
 * old connection's verdict. */
static __always_inline bool pol_syn_stale(const struct sl_pkt *pkt, const struct sl_ct_entry *ct)
{
	__u32 gen;

	if (pkt->l4_proto != IPPROTO_TCP || !ct_dir_forward(ct->dir) || !pkt_opens_flow(pkt))
		return false;
	gen = pol_active_gen();
	return gen && ct->pol_gen != SL_POL_CT_GEN(gen);
}

/* True when @id names a declared endpoint (not the world, a CIDR, the host). */
static __always_inline bool pol_is_endpoint(__u32 id)
{
	return id >= SL_ID_FIRST_ENDPOINT && id < SL_ID_FIRST_CIDR;
}

#endif
