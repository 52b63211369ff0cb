/* Forwarding a rewritten packet: the flow's cached next hop or a FIB
 * lookup on its new addresses, MAC rewrite, then XDP_TX (same interface)
 * or XDP_REDIRECT. Anything the FIB cannot answer (no neighbour entry
 * yet, MTU, no route) goes to the stack, which resolves neighbours, sends
 * ICMP errors and forwards it. */
#ifndef SL_BPF_FIB_H
#define SL_BPF_FIB_H

#include "lib/flow.h"
#include "lib/nat.h"
#include "sluice/conntrack.h"
#include "lib/stats.h"

static __always_inline void fib_params(struct bpf_fib_lookup *fib, const struct sl_pkt *pkt,
				       __u32 ifindex)
{
	fib->ifindex = ifindex;
	fib->l4_protocol = pkt->l4_proto;
	if (pkt->l3_proto == ETH_P_IP) {
		fib->family = AF_INET;
		fib->tos = pkt->ip4->tos;
		fib->tot_len = bpf_ntohs(pkt->ip4->tot_len);
		fib->ipv4_src = pkt->ip4->saddr;
		fib->ipv4_dst = pkt->ip4->daddr;
		return;
	}
	fib->family = AF_INET6;
	fib->flowinfo = *(__be32 *)pkt->ip6 & bpf_htonl(0x0FFFFFFF);
	fib->tot_len = bpf_ntohs(pkt->ip6->payload_len) + sizeof(struct ipv6hdr);
	addr6_copy(fib->ipv6_src, &pkt->ip6->saddr);
	addr6_copy(fib->ipv6_dst, &pkt->ip6->daddr);
}

static __always_inline __u32 nexthop_now(void)
{
	return bpf_ktime_get_coarse_ns() >> SL_NEXTHOP_SHIFT;
}

static __always_inline bool nexthop_fresh(const struct sl_nexthop *nh, __u32 now)
{
	return nh->ifindex && (__s32)(nh->expires - now) > 0;
}

/* Ask the FIB where the rewritten packet goes; on success fill @nh (and
 * give it a lifetime) and return true. */
static __always_inline bool nexthop_lookup(struct xdp_md *ctx, const struct sl_pkt *pkt,
					   struct sl_nexthop *nh, __u32 now)
{
	struct bpf_fib_lookup fib = {};

	fib_params(&fib, pkt, ctx->ingress_ifindex);
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return false;
	nh->ifindex = fib.ifindex;
	__builtin_memcpy(nh->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(nh->smac, fib.smac, ETH_ALEN);
	nh->expires = now + SL_NEXTHOP_TTL;
	return true;
}

/* Whether the answer to @flow's source would leave through the interface
 * its packet came in on: the reverse-path check rp_filter makes, which
 * the stack runs only after XDP. A source not reachable there is spoofed
 * (or routed asymmetrically) and must not be trusted to open a flow. */
static __always_inline bool fib_source_behind(struct xdp_md *ctx, const struct sl_flow *flow)
{
	struct bpf_fib_lookup fib = { .ifindex = ctx->ingress_ifindex,
				      .l4_protocol = flow->proto,
				      .sport = flow->dport,
				      .dport = flow->sport };

	if (flow->family == AF_INET) {
		fib.family = AF_INET;
		fib.ipv4_src = flow->daddr[0];
		fib.ipv4_dst = flow->saddr[0];
	} else {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, flow->daddr, 16);
		__builtin_memcpy(fib.ipv6_dst, flow->saddr, 16);
	}
	/* An output lookup bound to the ingress interface: only a route
	 * through it answers. (bpf_fib_lookup() also wants forwarding on
	 * for the interface, as a node that balances has it.) */
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib),
			   BPF_FIB_LOOKUP_OUTPUT | BPF_FIB_LOOKUP_SKIP_NEIGH) !=
	    BPF_FIB_LKUP_RET_SUCCESS)
		return false;
	return fib.ifindex == ctx->ingress_ifindex;
}

/* Returns the XDP action that sends the (already rewritten) packet on.
 * @nh is the flow's next-hop cache: used while fresh, refreshed from the
 * FIB when stale. */
static __always_inline int fib_forward(struct xdp_md *ctx, struct sl_pkt *pkt,
				       struct sl_nexthop *nh)
{
	__u32 now = nexthop_now();

	if (!nexthop_fresh(nh, now) && !nexthop_lookup(ctx, pkt, nh, now))
		goto pass;
	if (!ip_decrement_ttl(pkt))
		goto pass;
	__builtin_memcpy(pkt->eth->h_dest, nh->dmac, ETH_ALEN);
	__builtin_memcpy(pkt->eth->h_source, nh->smac, ETH_ALEN);
	if (nh->ifindex == ctx->ingress_ifindex) {
		count_lb(SL_LB_TX);
		return XDP_TX;
	}
	count_lb(SL_LB_REDIRECT);
	return bpf_redirect(nh->ifindex, 0);
pass:
	count_lb(SL_LB_FIB_PASS);
	return XDP_PASS;
}

#endif
