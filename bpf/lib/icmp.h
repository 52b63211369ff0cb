/* ICMP and ICMPv6 errors about tracked flows. An error quotes the packet
 * that caused it; both the outer header and the quote must be translated
 * so the client sees only the VIP and the backend only the client:
 *   quote of a DNATed packet (backend -> client error): restore the VIP;
 *   quote of a reply (error sent to the VIP): point it at the backend.
 * Quoted IPv4 headers with options and quoted IPv6 extension headers are
 * not followed: such errors pass to the stack untouched. The quoted L4
 * checksum is left as is (receivers do not verify it). */
#ifndef SL_BPF_ICMP_H
#define SL_BPF_ICMP_H

#include "lib/conntrack.h"
#include "lib/nat.h"
#include "lib/stats.h"

static __always_inline bool icmp_is_error(const struct sl_pkt *pkt)
{
	__u8 type = pkt->icmp->type;

	if (pkt->l4_proto == IPPROTO_ICMP)
		return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH ||
		       type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
	       type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
}

/* The quoted packet: its L3 header and the first 4 bytes of its L4 header. */
struct sl_quote {
	void *l3;
	__be16 *ports;
	__u8 proto;
};

static __always_inline bool quote_parse(const struct sl_pkt *pkt, struct sl_quote *q)
{
	void *inner = (void *)pkt->icmp + sizeof(struct icmphdr);

	if (pkt->l3_proto == ETH_P_IP) {
		struct iphdr *ip = inner;

		if ((void *)(ip + 1) + 4 > pkt->data_end || ip->ihl != 5)
			return false;
		q->proto = ip->protocol;
		q->ports = (void *)(ip + 1);
	} else {
		struct ipv6hdr *ip6 = inner;

		if ((void *)(ip6 + 1) + 4 > pkt->data_end)
			return false;
		q->proto = ip6->nexthdr;
		q->ports = (void *)(ip6 + 1);
	}
	q->l3 = inner;
	return q->proto == IPPROTO_TCP || q->proto == IPPROTO_UDP;
}

/* The flow the quoted packet belongs to, seen from the error's receiver. */
static __always_inline void quote_flow(const struct sl_pkt *pkt, const struct sl_quote *q,
				       struct sl_flow *flow)
{
	if (pkt->l3_proto == ETH_P_IP) {
		struct iphdr *ip = q->l3;

		flow->saddr[0] = ip->daddr;
		flow->daddr[0] = ip->saddr;
		flow->family = AF_INET;
	} else {
		struct ipv6hdr *ip6 = q->l3;

		addr6_copy(flow->saddr, &ip6->daddr);
		addr6_copy(flow->daddr, &ip6->saddr);
		flow->family = AF_INET6;
	}
	flow->sport = q->ports[1];
	flow->dport = q->ports[0];
	flow->proto = q->proto;
}

/* Rewrite the quote's source (@src) or destination to @addr:@port.
 * Returns the ICMP checksum delta of every quoted byte changed. */
static __always_inline __u64 quote_rewrite(struct sl_pkt *pkt, struct sl_quote *q, bool src,
					   const __be32 *addr, __be16 port)
{
	__be16 *port_field = src ? &q->ports[0] : &q->ports[1];
	__u64 delta = csum_delta2(*port_field, port);

	*port_field = port;
	if (pkt->l3_proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = q->l3;

		return delta + nat_addr6(src ? &ip6->saddr : &ip6->daddr, addr);
	}
	struct iphdr *ip = q->l3;
	__be16 old_check = ip->check;

	delta += nat_addr4(ip, src ? &ip->saddr : &ip->daddr, addr[0]);
	return delta + csum_delta2(old_check, ip->check);
}

/* Translate an ICMP error about a tracked flow. Returns 0 when rewritten
 * (forward it), XDP_PASS when it is not about a flow Sluice tracks. */
static __always_inline int icmp_translate(struct sl_pkt *pkt)
{
	struct sl_flow flow = {};
	struct sl_quote q = {};
	struct sl_ct_entry *ct;
	bool to_backend;
	__u64 delta;

	if (!icmp_is_error(pkt) || !quote_parse(pkt, &q))
		goto not_ours;
	quote_flow(pkt, &q, &flow);
	ct = ct_lookup(&flow);
	/* A flow to or from an endpoint (policy only) has no NAT to undo. */
	if (!ct || ct->dir == SL_CT_PASS_FORWARD || ct->dir == SL_CT_PASS_REPLY)
		goto not_ours;
	/* A forward entry: the error travels client -> VIP like the flow. */
	to_backend = ct->dir == SL_CT_FORWARD;
	delta = quote_rewrite(pkt, &q, to_backend, ct->nat_addr, ct->nat_port);
	if (pkt->l3_proto == ETH_P_IP) {
		nat_addr4(pkt->ip4, to_backend ? &pkt->ip4->daddr : &pkt->ip4->saddr,
			  ct->nat_addr[0]);
	} else {
		/* ICMPv6 checksums cover the pseudo-header: add the outer change. */
		delta += nat_addr6(to_backend ? &pkt->ip6->daddr : &pkt->ip6->saddr, ct->nat_addr);
	}
	csum_apply(&pkt->icmp->checksum, delta);
	count_lb(SL_LB_ICMP_ERROR);
	return 0;
not_ours:
	count_lb(SL_LB_NOT_SERVICE);
	return XDP_PASS;
}

#endif
