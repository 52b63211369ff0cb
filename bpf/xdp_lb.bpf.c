// SPDX-License-Identifier: GPL-2.0
/* The north-south L4 load balancer, attached at XDP to the node's uplinks
 * and to the interfaces replies arrive on. Per packet: parse, then either
 * a tracked flow (DNAT to its backend, or restore the VIP on a reply), or
 * a new flow to a service (Maglev pick, conntrack, DNAT), then a FIB
 * lookup decides TX, redirect or the stack. Anything else passes. */
#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/fib.h"
#include "lib/icmp.h"
#include "lib/lb.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/policy_flow.h"
#include "lib/stats.h"

/* Build identity, set by the loader: lets an upgrade test tell two builds apart. */
const volatile __u32 sl_version = 1;

/* Count the headers the parser saw; @parsed: it reached the end without
 * an error, so a missing L4 header means "another protocol". */
static __always_inline void count_headers(const struct sl_pkt *pkt, bool parsed)
{
	count_proto(SL_PS_PACKETS);
	if (pkt->vlan_depth)
		count_proto(SL_PS_VLAN);
	if (pkt->l3_proto == ETH_P_IP) {
		count_proto(SL_PS_IPV4);
		if (pkt->ip_options)
			count_proto(SL_PS_IPV4_OPTIONS);
	} else if (pkt->l3_proto == ETH_P_IPV6) {
		count_proto(SL_PS_IPV6);
		if (pkt->ipv6_ext)
			count_proto(SL_PS_IPV6_EXT);
	} else {
		count_proto(SL_PS_OTHER_L3);
		return;
	}
	if (pkt->fragment)
		count_proto(SL_PS_FRAGMENT);
	if (!pkt->l4) {
		if (parsed && !pkt->later_fragment)
			count_proto(SL_PS_OTHER_L4);
		return;
	}
	switch (pkt->l4_proto) {
	case IPPROTO_TCP:
		count_proto(SL_PS_TCP);
		break;
	case IPPROTO_UDP:
		count_proto(SL_PS_UDP);
		break;
	case IPPROTO_ICMP:
		count_proto(SL_PS_ICMP);
		break;
	case IPPROTO_ICMPV6:
		count_proto(SL_PS_ICMPV6);
		break;
	}
}

static __always_inline void count_flow_traffic(const struct sl_ct_entry *ct, __u64 bytes, bool new)
{
	count_traffic(&sl_svc_st, ct->svc_id, bytes, ct->dir, new);
	count_traffic(&sl_be_st, ct->backend_id, bytes, ct->dir, new);
}

/* A packet of a tracked flow: DNAT (forward) or restore the VIP (reply),
 * then on to the flow's next hop; a flow to a local endpoint goes to the
 * stack as it is. Policy first, in case it changed since the flow began.
 * Returns the XDP action or a negative drop reason. */
static __always_inline int lb_tracked(struct xdp_md *ctx, struct sl_pkt *pkt,
				      const struct sl_flow *flow, struct sl_ct_entry *ct,
				      __u64 bytes)
{
	bool forward = ct->dir == SL_CT_FORWARD;
	int err = pol_flow_tracked(flow, ct);

	if (err)
		return err;
	if (ct->dir == SL_CT_PASS_FORWARD || ct->dir == SL_CT_PASS_REPLY) {
		count_lb(SL_LB_ENDPOINT_PASS);
		return XDP_PASS;
	}
	nat_rewrite(pkt, forward, ct->nat_addr, ct->nat_port);
	count_lb(forward ? SL_LB_FORWARD : SL_LB_REPLY);
	count_flow_traffic(ct, bytes, false);
	return fib_forward(ctx, pkt, &ct->nh);
}

/* A SYN that matches a forward entry is a client reusing its port for a
 * new connection. If that entry's backend no longer takes new flows
 * (removed, or weight 0), balance the SYN afresh rather than send it to a
 * backend that is draining or gone. Only SYNs pay for this lookup. */
static __always_inline bool ct_syn_rebalance(const struct sl_pkt *pkt, const struct sl_ct_entry *ct,
					     __u8 family)
{
	struct sl_backend *be;

	if (ct->dir != SL_CT_FORWARD || pkt->l4_proto != IPPROTO_TCP || !pkt_opens_flow(pkt))
		return false;
	be = backend_lookup(ct->backend_id, ct->svc_id, family);
	return !be || !be->weight || be->port != ct->nat_port ||
	       !addr_equal(be->addr, ct->nat_addr);
}

/* The first packet of a flow to @svc: pick a backend, DNAT, ask the FIB
 * once for the next hop (kept in the forward entry), track the flow.
 * Returns the XDP action or a negative drop reason. */
static __always_inline int lb_new(struct xdp_md *ctx, struct sl_pkt *pkt,
				  const struct sl_flow *flow, const struct sl_svc *svc, __u64 bytes)
{
	struct sl_ct_entry fwd = { .dir = SL_CT_FORWARD, .svc_id = svc->id };
	struct sl_backend *be;
	int err;

	fwd.backend_id = backend_pick(svc, flow);
	if (fwd.backend_id == SL_MAGLEV_EMPTY)
		return -SL_DROP_NO_BACKEND;
	be = backend_lookup(fwd.backend_id, svc->id, flow->family);
	if (!be)
		return -SL_DROP_BACKEND_MISSING;
	err = pol_flow_new(flow, be->addr, be->port, &fwd.pol_gen);
	if (err)
		return err;
	__builtin_memcpy(fwd.nat_addr, be->addr, sizeof(fwd.nat_addr));
	fwd.nat_port = be->port;
	nat_rewrite(pkt, true, fwd.nat_addr, fwd.nat_port);
	/* A failed lookup leaves nh empty: fib_forward() then passes. */
	nexthop_lookup(ctx, pkt, &fwd.nh, nexthop_now());
	err = ct_create(flow, &fwd);
	if (err)
		return err;
	count_lb(SL_LB_NEW_FLOW);
	count_flow_traffic(&fwd, bytes, true);
	return fib_forward(ctx, pkt, &fwd.nh);
}

/* A packet to an endpoint that answers a flow it was allowed to open, or
 * that the endpoint opened, whose reply entry the LRU evicted: put the
 * entry back rather than judge the reply as a new flow to the endpoint. */
static __always_inline bool endpoint_reply_restore(const struct sl_flow *flow)
{
	struct sl_ct_entry reply = { .dir = SL_CT_PASS_REPLY, .nat_port = flow->sport };
	struct sl_ct_entry *fwd;
	struct sl_flow back;

	flow_reverse(&back, flow);
	fwd = ct_lookup(&back);
	if (!fwd || fwd->dir != SL_CT_PASS_FORWARD)
		return false;
	reply.pol_gen = fwd->pol_gen;
	__builtin_memcpy(reply.nat_addr, flow->saddr, sizeof(reply.nat_addr));
	return !ct_insert(flow, &reply);
}

/* A flow an endpoint opens: its first packet (SYN or datagram) from where
 * the endpoint lives. Tracking it is what lets its replies in. */
static __always_inline bool endpoint_opens(struct xdp_md *ctx, const struct sl_pkt *pkt,
					   const struct sl_flow *flow, __u32 gen)
{
	return pkt_opens_flow(pkt) &&
	       pol_is_endpoint(pol_identity(gen, flow->family, flow->saddr)) &&
	       fib_source_behind(ctx, flow);
}

/* The first packet of a flow to no service. Once a policy is enforced, a
 * flow to a local endpoint is checked, and a flow to or from one is
 * tracked (without NAT): its later packets keep their verdict, and the
 * replies to an endpoint's own connections are not judged as new flows
 * to it (policy is ingress only: what an endpoint opens, it may).
 * Anything else passes untouched. Returns an XDP action or a negative
 * drop reason. */
static __always_inline int endpoint_new(struct xdp_md *ctx, const struct sl_pkt *pkt,
					const struct sl_flow *flow)
{
	struct sl_ct_entry fwd = { .dir = SL_CT_PASS_FORWARD, .nat_port = flow->dport };
	__u32 gen = pol_active_gen();
	int err = 0;

	if (!gen)
		goto untracked;
	fwd.pol_gen = SL_POL_CT_GEN(gen);
	if (pol_is_endpoint(pol_identity(gen, flow->family, flow->daddr))) {
		if (endpoint_reply_restore(flow))
			goto passed;
		err = pol_flow_new(flow, flow->daddr, flow->dport, &fwd.pol_gen);
	} else if (!endpoint_opens(ctx, pkt, flow, gen)) {
		goto untracked;
	}
	__builtin_memcpy(fwd.nat_addr, flow->daddr, sizeof(fwd.nat_addr));
	if (!err)
		err = ct_create(flow, &fwd);
	if (err)
		return err;
passed:
	count_lb(SL_LB_ENDPOINT_PASS);
	return XDP_PASS;
untracked:
	count_lb(SL_LB_NOT_SERVICE);
	return XDP_PASS;
}

/* Returns an XDP action or a negative drop reason. */
static __always_inline int lb_process(struct xdp_md *ctx, struct sl_pkt *pkt)
{
	__u64 bytes = ctx->data_end - ctx->data;
	struct sl_nexthop untracked = {};
	struct sl_flow flow = {};
	struct sl_ct_entry *ct;
	struct sl_svc *svc;

	if (pkt->vlan_depth) {
		count_lb(SL_LB_VLAN_PASS);
		return XDP_PASS;
	}
	if (pkt->fragment) {
		count_lb(SL_LB_FRAGMENT_PASS);
		return XDP_PASS;
	}
	/* The parser sets l4 only for TCP, UDP, ICMP (v4) and ICMPv6 (v6). */
	if (!pkt->l4) {
		count_lb(SL_LB_NOT_SERVICE);
		return XDP_PASS;
	}
	if (pkt->l4_proto == IPPROTO_ICMP || pkt->l4_proto == IPPROTO_ICMPV6) {
		/* ICMP errors are rare: no next-hop cache, ask the FIB. */
		return icmp_translate(pkt) ?: fib_forward(ctx, pkt, &untracked);
	}
	flow_from_pkt(&flow, pkt);
	ct = ct_lookup(&flow);
	if (ct && !ct_syn_rebalance(pkt, ct, flow.family) && !pol_syn_stale(pkt, ct))
		return lb_tracked(ctx, pkt, &flow, ct, bytes);
	svc = svc_lookup(&flow);
	if (!svc)
		return endpoint_new(ctx, pkt, &flow);
	return lb_new(ctx, pkt, &flow, svc, bytes);
}

SEC("xdp")
int sl_xdp_lb(struct xdp_md *ctx)
{
	struct sl_pkt pkt = {};
	int ret = sl_parse(ctx, &pkt);

	count_headers(&pkt, ret == 0);
	if (ret) {
		count_parse_err(ret);
		count_lb(SL_LB_PARSE_PASS);
		return XDP_PASS;
	}
	ret = lb_process(ctx, &pkt);
	if (ret < 0) {
		count_drop(-ret);
		return XDP_DROP;
	}
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
