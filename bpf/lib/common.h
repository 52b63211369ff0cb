/* What every Sluice BPF file needs first: kernel types from vmlinux.h, the
 * libbpf helpers, and the UAPI constants that are #defines (so not in BTF,
 * hence not in vmlinux.h). */
#ifndef SL_BPF_COMMON_H
#define SL_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_ALEN 6
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF
#define IP6_OFFSET_MASK 0xFFF8 /* frag_hdr.frag_off without the flag bits */

#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60

#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4

#define AF_INET 2
#define AF_INET6 10

#endif
