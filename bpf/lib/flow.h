/* The 5-tuple of a parsed packet, in one shape for IPv4 and IPv6 (IPv4
 * uses word 0 of each address), and the hash that picks its backend. */
#ifndef SL_BPF_FLOW_H
#define SL_BPF_FLOW_H

#include "lib/parse.h"

struct sl_flow {
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family; /* AF_INET or AF_INET6 */
};

static __always_inline void addr6_copy(__be32 *dst, const struct in6_addr *src)
{
	__builtin_memcpy(dst, src->in6_u.u6_addr32, 16);
}

/* clang 14 emits a call for __builtin_memcmp, which BPF cannot link. */
static __always_inline bool addr_equal(const __be32 *a, const __be32 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

/* Fill @flow from the outer headers of a parsed TCP or UDP packet. */
static __always_inline void flow_from_pkt(struct sl_flow *flow, const struct sl_pkt *pkt)
{
	const __be16 *ports = pkt->l4; /* TCP and UDP both start with sport, dport */

	if (pkt->l3_proto == ETH_P_IP) {
		flow->saddr[0] = pkt->ip4->saddr;
		flow->daddr[0] = pkt->ip4->daddr;
		flow->family = AF_INET;
	} else {
		addr6_copy(flow->saddr, &pkt->ip6->saddr);
		addr6_copy(flow->daddr, &pkt->ip6->daddr);
		flow->family = AF_INET6;
	}
	flow->sport = ports[0];
	flow->dport = ports[1];
	flow->proto = pkt->l4_proto;
}

/* The same flow seen from the other end. */
static __always_inline void flow_reverse(struct sl_flow *rev, const struct sl_flow *flow)
{
	__builtin_memcpy(rev->saddr, flow->daddr, 16);
	__builtin_memcpy(rev->daddr, flow->saddr, 16);
	rev->sport = flow->dport;
	rev->dport = flow->sport;
	rev->proto = flow->proto;
	rev->family = flow->family;
}

static __always_inline __u32 rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

/* Bob Jenkins' final mix (lookup3), as the kernel's jhash_3words uses. */
static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += initval;
	b += initval;
	c += initval;
	c ^= b;
	c -= rol32(b, 14);
	a ^= c;
	a -= rol32(c, 11);
	b ^= a;
	b -= rol32(a, 25);
	c ^= b;
	c -= rol32(b, 16);
	a ^= c;
	a -= rol32(c, 4);
	b ^= a;
	b -= rol32(a, 14);
	c ^= b;
	c -= rol32(b, 24);
	return c;
}

/* Hash of the client-side tuple. IPv6 addresses are XOR-folded to one
 * word each: Maglev needs spread, not cryptographic strength. */
static __always_inline __u32 flow_hash(const struct sl_flow *flow)
{
	__u32 src = flow->saddr[0] ^ flow->saddr[1] ^ flow->saddr[2] ^ flow->saddr[3];
	__u32 dst = flow->daddr[0] ^ flow->daddr[1] ^ flow->daddr[2] ^ flow->daddr[3];
	__u32 ports = ((__u32)flow->sport << 16) | flow->dport;

	return jhash_3words(src, dst, ports, 0x5e1ce000 + flow->proto);
}

#endif
