/* Forwarding a rewritten packet: a FIB lookup on its new addresses, MAC
 * rewrite, then XDP_TX (same interface) or XDP_REDIRECT. Anything the FIB
 * cannot answer (no neighbour entry yet, MTU, no route) goes to the stack,
 * which resolves neighbours, sends ICMP errors and forwards it. */
#ifndef SL_BPF_FIB_H
#define SL_BPF_FIB_H

#include "lib/nat.h"
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

/* Returns the XDP action that sends the (already rewritten) packet on. */
static __always_inline int fib_forward(struct xdp_md *ctx, struct sl_pkt *pkt)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	fib_params(&fib, pkt, ctx->ingress_ifindex);
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS || !ip_decrement_ttl(pkt)) {
		count_lb(SL_LB_FIB_PASS);
		return XDP_PASS;
	}
	__builtin_memcpy(pkt->eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(pkt->eth->h_source, fib.smac, ETH_ALEN);
	if (fib.ifindex == ctx->ingress_ifindex) {
		count_lb(SL_LB_TX);
		return XDP_TX;
	}
	count_lb(SL_LB_REDIRECT);
	return bpf_redirect(fib.ifindex, 0);
}

#endif
