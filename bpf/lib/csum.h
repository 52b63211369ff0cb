/* Incremental Internet checksum updates (RFC 1624: HC' = ~(~HC + ~m + m')).
 * Sums are taken over raw memory words, so they work in network order
 * without byte swapping. */
#ifndef SL_BPF_CSUM_H
#define SL_BPF_CSUM_H

#include "lib/common.h"

static __always_inline __u16 csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Partial sum of replacing 32-bit word @from by @to, to add to ~HC. */
static __always_inline __u64 csum_delta4(__be32 from, __be32 to)
{
	return (__u64)(__u32)~from + (__u32)to;
}

static __always_inline __u64 csum_delta16(const __be32 *from, const __be32 *to)
{
	__u64 sum = 0;

#pragma unroll
	for (int i = 0; i < 4; i++)
		sum += csum_delta4(from[i], to[i]);
	return sum;
}

static __always_inline __u64 csum_delta2(__be16 from, __be16 to)
{
	return (__u64)(__u16)~from + (__u16)to;
}

/* Apply a delta from csum_delta*() to the checksum field at @sum. */
static __always_inline void csum_apply(__sum16 *sum, __u64 delta)
{
	*sum = ~csum_fold64((__u16) ~*sum + delta);
}

/* UDP: a zero checksum means "none" (IPv4) and must stay zero; a computed
 * zero is sent as 0xffff (RFC 768). */
static __always_inline void csum_apply_udp(__sum16 *sum, __u64 delta)
{
	if (!*sum)
		return;
	csum_apply(sum, delta);
	if (!*sum)
		*sum = 0xffff;
}

#endif
