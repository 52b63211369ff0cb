/* Events the data path reports to the agent through ring buffers. Today:
 * policy denials (sl_pol_events), rate-limited per CPU so that a flood of
 * denied packets cannot starve the ring buffer or the agent reading it. */
#ifndef SLUICE_EVENTS_H
#define SLUICE_EVENTS_H

#include "sluice/types.h"

#define SL_POL_EVENTS_BYTES (256 * 1024) /* ring buffer of denial events */

/* Where a denial happened. */
enum sl_pol_site {
	SL_POL_SITE_XDP = 1,
	SL_POL_SITE_CONNECT = 2, /* connect() or sendmsg() of a local socket */
	SL_POL_SITE_RECHECK = 3, /* an established flow, after a policy change */
};

/* One denial, written to the ring buffer sl_pol_events. Addresses in
 * network order, IPv4 in addr[0]. rule_id 0: default deny. */
struct sl_pol_event {
	__u64 ts_ns; /* bpf_ktime_get_ns() */
	__be32 saddr[4];
	__be32 daddr[4];
	__u32 src_id;
	__u32 dst_id;
	__u32 rule_id;
	__be16 sport; /* 0 at connect(): not bound yet */
	__be16 dport;
	__u8 family; /* SL_AF_INET or SL_AF_INET6 */
	__u8 proto;
	__u8 verdict; /* enum sl_pol_verdict */
	__u8 site; /* enum sl_pol_site */
};
_Static_assert(sizeof(struct sl_pol_event) == 64, "sl_pol_event is ABI");

/* Events per second each CPU may write, and the burst it may save up: a
 * flood of denied packets must not starve the ring buffer or the agent. */
#define SL_POL_EVENTS_PER_SEC 200
#define SL_POL_EVENTS_BURST 50

/* sl_pol_rl (per-CPU array, one entry): the token bucket of that limit. */
struct sl_pol_ratelimit {
	__u64 last_ns;
	__u64 tokens;
};

#endif
