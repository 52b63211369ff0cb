/* Address and port rewriting with incremental checksum updates: DNAT for
 * client -> VIP packets, the reverse for backend -> client replies. */
#ifndef SL_BPF_NAT_H
#define SL_BPF_NAT_H

#include "lib/csum.h"
#include "lib/parse.h"

/* Replace the IPv4 address at @field by @to; returns the L4 checksum delta
 * (the pseudo-header covers the address). */
static __always_inline __u64 nat_addr4(struct iphdr *ip, __be32 *field, __be32 to)
{
	__u64 delta = csum_delta4(*field, to);

	csum_apply(&ip->check, delta);
	*field = to;
	return delta;
}

static __always_inline __u64 nat_addr6(struct in6_addr *field, const __be32 *to)
{
	__u64 delta = csum_delta16(field->in6_u.u6_addr32, to);

	__builtin_memcpy(field->in6_u.u6_addr32, to, 16);
	return delta;
}

/* Rewrite the destination (@dst) or source address and port of a parsed
 * TCP or UDP packet to @addr:@port, keeping every checksum valid. */
static __always_inline void nat_rewrite(struct sl_pkt *pkt, bool dst, const __be32 *addr,
					__be16 port)
{
	__be16 *ports = pkt->l4; /* TCP and UDP both start with sport, dport */
	__be16 *port_field = dst ? &ports[1] : &ports[0];
	__u64 delta;

	if (pkt->l3_proto == ETH_P_IP)
		delta = nat_addr4(pkt->ip4, dst ? &pkt->ip4->daddr : &pkt->ip4->saddr, addr[0]);
	else
		delta = nat_addr6(dst ? &pkt->ip6->daddr : &pkt->ip6->saddr, addr);
	delta += csum_delta2(*port_field, port);
	*port_field = port;
	if (pkt->l4_proto != IPPROTO_TCP) {
		csum_apply_udp(&pkt->udp->check, delta);
		return;
	}
	/* The parser checked the TCP header, but the verifier merges the l4
	 * union's states across protocols and then rejects tcp->check as
	 * "invalid access to packet, off=30 size=2": check again here. */
	if ((void *)(pkt->tcp + 1) <= pkt->data_end)
		csum_apply(&pkt->tcp->check, delta);
}

/* Forwarding decrements the hop limit like any router. Returns false when
 * it would reach zero: the stack then answers with ICMP time exceeded. */
static __always_inline bool ip_decrement_ttl(struct sl_pkt *pkt)
{
	if (pkt->l3_proto == ETH_P_IPV6) {
		if (pkt->ip6->hop_limit <= 1)
			return false;
		pkt->ip6->hop_limit--;
		return true;
	}
	if (pkt->ip4->ttl <= 1)
		return false;
	/* TTL is the high byte of its 16-bit word: the checksum gains 0x0100. */
	csum_apply(&pkt->ip4->check, csum_delta2(bpf_htons(0x0100), 0));
	pkt->ip4->ttl--;
	return true;
}

#endif
