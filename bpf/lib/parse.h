/* Cursor-style packet parser for XDP: walks Ethernet, up to two VLAN tags,
 * IPv4 (with options) or IPv6 (with extension headers), then TCP, UDP,
 * ICMP or ICMPv6. Every header is bounds-checked against data_end before
 * it is read; the result is a struct sl_pkt of typed pointers. */
#ifndef SL_BPF_PARSE_H
#define SL_BPF_PARSE_H

#include "lib/common.h"
#include "sluice/stats.h"

#define SL_VLAN_MAX_DEPTH 2
#define SL_IPV6_EXT_MAX 6

struct sl_pkt {
	void *data_end;
	struct ethhdr *eth;
	union {
		struct iphdr *ip4;
		struct ipv6hdr *ip6;
		void *l3;
	};
	union {
		struct tcphdr *tcp;
		struct udphdr *udp;
		struct icmphdr *icmp;
		struct icmp6hdr *icmp6;
		void *l4; /* NULL: no L4 header (other protocol, later fragment) */
	};
	__u16 l3_proto; /* ETH_P_IP, ETH_P_IPV6 or 0; host order */
	__u8 l4_proto; /* IPPROTO_*, after IPv6 extension headers */
	__u8 vlan_depth;
	__u8 fragment; /* any IPv4/IPv6 fragment, first included */
	__u8 later_fragment; /* offset > 0: payload, no L4 header */
	__u8 ip_options; /* IPv4 IHL > 5 */
	__u8 ipv6_ext; /* IPv6 extension headers seen */
};

struct sl_cursor {
	void *pos;
	void *end;
};

/* Advance past a header of @len bytes; NULL when it does not fit. */
static __always_inline void *cursor_pull(struct sl_cursor *c, __u32 len)
{
	void *hdr = c->pos;

	if (hdr + len > c->end)
		return NULL;
	c->pos = hdr + len;
	return hdr;
}

static __always_inline bool eth_is_vlan(__u16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD);
}

/* Returns 0 and the host-order ethertype after any VLAN tags, or a parse error. */
static __always_inline int parse_eth(struct sl_cursor *c, struct sl_pkt *pkt)
{
	struct vlan_hdr *vlan;
	__be16 proto;

	pkt->eth = cursor_pull(c, sizeof(*pkt->eth));
	if (!pkt->eth)
		return SL_PERR_ETH_TRUNC;
	proto = pkt->eth->h_proto;
#pragma unroll
	for (int i = 0; i < SL_VLAN_MAX_DEPTH; i++) {
		if (!eth_is_vlan(proto))
			break;
		vlan = cursor_pull(c, sizeof(*vlan));
		if (!vlan)
			return SL_PERR_VLAN_TRUNC;
		proto = vlan->h_vlan_encapsulated_proto;
		pkt->vlan_depth++;
	}
	if (eth_is_vlan(proto))
		return SL_PERR_VLAN_DEPTH;
	pkt->l3_proto = bpf_ntohs(proto);
	return 0;
}

static __always_inline int parse_ipv4(struct sl_cursor *c, struct sl_pkt *pkt)
{
	struct iphdr *ip = c->pos;
	__u32 hlen;

	if ((void *)(ip + 1) > c->end)
		return SL_PERR_IPV4_TRUNC;
	if (ip->version != 4 || ip->ihl < 5)
		return SL_PERR_IPV4_IHL;
	hlen = ip->ihl * 4;
	if (!cursor_pull(c, hlen))
		return SL_PERR_IPV4_TRUNC;
	if (bpf_ntohs(ip->tot_len) < hlen || (void *)ip + bpf_ntohs(ip->tot_len) > c->end)
		return SL_PERR_IPV4_LEN;
	pkt->ip4 = ip;
	pkt->ip_options = hlen > sizeof(*ip);
	pkt->l4_proto = ip->protocol;
	pkt->fragment = (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
	pkt->later_fragment = (ip->frag_off & bpf_htons(IP_OFFSET)) != 0;
	return 0;
}

static __always_inline bool ipv6_is_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_FRAGMENT;
}

/* Skip one extension header; returns 0 or a parse error. */
static __always_inline int skip_ipv6_ext(struct sl_cursor *c, struct sl_pkt *pkt)
{
	struct ipv6_opt_hdr *opt = c->pos;
	struct frag_hdr *frag;

	if (pkt->l4_proto == IPPROTO_FRAGMENT) {
		frag = cursor_pull(c, sizeof(*frag));
		if (!frag)
			return SL_PERR_IPV6_EXT_TRUNC;
		pkt->fragment = 1;
		pkt->l4_proto = frag->nexthdr;
		pkt->later_fragment = (frag->frag_off & bpf_htons(IP6_OFFSET_MASK)) != 0;
		return 0;
	}
	if ((void *)(opt + 1) > c->end)
		return SL_PERR_IPV6_EXT_TRUNC;
	if (!cursor_pull(c, (opt->hdrlen + 1) * 8))
		return SL_PERR_IPV6_EXT_TRUNC;
	pkt->l4_proto = opt->nexthdr;
	return 0;
}

static __always_inline int parse_ipv6(struct sl_cursor *c, struct sl_pkt *pkt)
{
	struct ipv6hdr *ip6 = cursor_pull(c, sizeof(*ip6));
	int err;

	if (!ip6)
		return SL_PERR_IPV6_TRUNC;
	if (ip6->version != 6)
		return SL_PERR_IPV6_VERSION;
	pkt->ip6 = ip6;
	pkt->l4_proto = ip6->nexthdr;
#pragma unroll
	for (int i = 0; i < SL_IPV6_EXT_MAX; i++) {
		/* A later fragment's next header names the payload's first
		 * header, which is not in this packet. */
		if (pkt->later_fragment || !ipv6_is_ext(pkt->l4_proto))
			return 0;
		pkt->ipv6_ext = 1;
		err = skip_ipv6_ext(c, pkt);
		if (err)
			return err;
	}
	return !pkt->later_fragment && ipv6_is_ext(pkt->l4_proto) ? SL_PERR_IPV6_EXT_DEPTH : 0;
}

static __always_inline int parse_tcp(struct sl_cursor *c, struct sl_pkt *pkt)
{
	struct tcphdr *tcp = c->pos;

	if ((void *)(tcp + 1) > c->end)
		return SL_PERR_TCP_TRUNC;
	if (tcp->doff < 5)
		return SL_PERR_TCP_DOFF;
	if (!cursor_pull(c, tcp->doff * 4))
		return SL_PERR_TCP_TRUNC;
	pkt->tcp = tcp;
	return 0;
}

static __always_inline int parse_l4(struct sl_cursor *c, struct sl_pkt *pkt)
{
	switch (pkt->l4_proto) {
	case IPPROTO_TCP:
		return parse_tcp(c, pkt);
	case IPPROTO_UDP:
		pkt->udp = cursor_pull(c, sizeof(struct udphdr));
		return pkt->udp ? 0 : SL_PERR_UDP_TRUNC;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* ICMP inside IPv6 or ICMPv6 inside IPv4 is another protocol
		 * here: its type codes and checksum rules would be misread. */
		if ((pkt->l4_proto == IPPROTO_ICMP) != (pkt->l3_proto == ETH_P_IP))
			return 0;
		/* icmphdr and icmp6hdr are both 8 bytes: type, code, csum, rest. */
		pkt->icmp = cursor_pull(c, sizeof(struct icmphdr));
		return pkt->icmp ? 0 : SL_PERR_ICMP_TRUNC;
	}
	return 0;
}

/* Parse the frame in @ctx into @pkt. Returns SL_PERR_NONE (0) when every
 * header present was well formed (pkt->l3_proto is 0 for non-IP frames;
 * pkt->l4 is NULL for a later fragment or a protocol other than TCP, UDP,
 * ICMP and ICMPv6), else the first error. */
static __always_inline int sl_parse(struct xdp_md *ctx, struct sl_pkt *pkt)
{
	struct sl_cursor c = { .pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end };
	int err;

	pkt->data_end = c.end;
	err = parse_eth(&c, pkt);
	if (err)
		return err;
	if (pkt->l3_proto == ETH_P_IP)
		err = parse_ipv4(&c, pkt);
	else if (pkt->l3_proto == ETH_P_IPV6)
		err = parse_ipv6(&c, pkt);
	else
		return 0;
	if (err || pkt->later_fragment)
		return err;
	return parse_l4(&c, pkt);
}

#endif
