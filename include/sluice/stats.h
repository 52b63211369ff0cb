/* Counters the XDP program keeps, all per-CPU arrays the agent sums:
 *   sl_proto_st[enum sl_proto_stat]   packets seen by header type
 *   sl_perr_st[enum sl_parse_err]     packets the parser rejected, by cause
 *   sl_lb_st[enum sl_lb_stat]         what the load balancer did
 *   sl_svc_st[svc id], sl_be_st[be id] struct sl_traffic per service/backend
 * Every index enum is append-only (ABI). */
#ifndef SLUICE_STATS_H
#define SLUICE_STATS_H

#include "sluice/types.h"

enum sl_proto_stat {
	SL_PS_PACKETS = 0, /* every packet the program saw */
	SL_PS_VLAN, /* carried at least one 802.1Q/802.1ad tag */
	SL_PS_IPV4,
	SL_PS_IPV4_OPTIONS, /* IPv4 with IHL > 5 */
	SL_PS_IPV6,
	SL_PS_IPV6_EXT, /* IPv6 with at least one extension header */
	SL_PS_FRAGMENT, /* IPv4 or IPv6 fragment (any) */
	SL_PS_TCP,
	SL_PS_UDP,
	SL_PS_ICMP,
	SL_PS_ICMPV6,
	SL_PS_OTHER_L3, /* ARP, LLDP, ...: passed untouched */
	SL_PS_OTHER_L4, /* SCTP, GRE, ...: passed untouched */
	SL_PS_MAX,
};

#define SL_PROTO_STAT_NAMES                                                                       \
	{                                                                                         \
		"packets", "vlan", "ipv4", "ipv4_options", "ipv6", "ipv6_ext", "fragment", "tcp", \
			"udp", "icmp", "icmpv6", "other_l3", "other_l4"                           \
	}

enum sl_parse_err {
	SL_PERR_NONE = 0, /* never counted */
	SL_PERR_ETH_TRUNC, /* shorter than an Ethernet header */
	SL_PERR_VLAN_TRUNC, /* tag cut short */
	SL_PERR_VLAN_DEPTH, /* more tags than the parser follows (2) */
	SL_PERR_IPV4_TRUNC, /* shorter than 20 bytes or than IHL says */
	SL_PERR_IPV4_IHL, /* IHL < 5 or version != 4 */
	SL_PERR_IPV4_LEN, /* total length < IHL or beyond the packet */
	SL_PERR_IPV6_TRUNC,
	SL_PERR_IPV6_VERSION,
	SL_PERR_IPV6_EXT_TRUNC, /* extension header cut short */
	SL_PERR_IPV6_EXT_DEPTH, /* more extension headers than followed (6) */
	SL_PERR_TCP_TRUNC, /* shorter than 20 bytes or than data offset */
	SL_PERR_TCP_DOFF, /* data offset < 5 */
	SL_PERR_UDP_TRUNC,
	SL_PERR_ICMP_TRUNC,
	SL_PERR_MAX,
};

#define SL_PARSE_ERR_NAMES                                                                   \
	{                                                                                    \
		"none", "eth_trunc", "vlan_trunc", "vlan_depth", "ipv4_trunc", "ipv4_ihl",   \
			"ipv4_len", "ipv6_trunc", "ipv6_version", "ipv6_ext_trunc",          \
			"ipv6_ext_depth", "tcp_trunc", "tcp_doff", "udp_trunc", "icmp_trunc" \
	}

enum sl_lb_stat {
	SL_LB_NOT_SERVICE = 0, /* not to a VIP, not a tracked reply: passed */
	SL_LB_NEW_FLOW, /* backend picked, conntrack entries made */
	SL_LB_FORWARD, /* established flow, DNAT to its backend */
	SL_LB_REPLY, /* reply, source restored to the VIP */
	SL_LB_ICMP_ERROR, /* ICMP error about a tracked flow translated */
	SL_LB_AFFINITY_HIT, /* new flow reused the client's backend */
	SL_LB_FRAGMENT_PASS, /* fragments are never balanced: passed */
	SL_LB_VLAN_PASS, /* tagged frames are not balanced: passed */
	SL_LB_PARSE_PASS, /* malformed L2/L3: passed, the stack decides */
	SL_LB_TX, /* FIB egress is the ingress interface */
	SL_LB_REDIRECT, /* FIB egress is another interface */
	SL_LB_FIB_PASS, /* FIB said no neighbour / too big / ...: stack forwards */
	SL_LB_ENDPOINT_PASS, /* to a local endpoint, no service: policy allowed, passed */
	SL_LB_STAT_MAX,
};

#define SL_LB_STAT_NAMES                                                                          \
	{                                                                                         \
		"not_service", "new_flow", "forward", "reply", "icmp_error", "affinity_hit",      \
			"fragment_pass", "vlan_pass", "parse_pass", "tx", "redirect", "fib_pass", \
			"endpoint_pass"                                                           \
	}

/* Traffic through one service or one backend. Forward is client -> VIP,
 * reverse is backend -> client. */
struct sl_traffic {
	__u64 fwd_packets;
	__u64 fwd_bytes;
	__u64 rev_packets;
	__u64 rev_bytes;
	__u64 new_flows;
};
_Static_assert(sizeof(struct sl_traffic) == 40, "sl_traffic is ABI");

#endif
