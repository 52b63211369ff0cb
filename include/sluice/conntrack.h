/* Connection tracking: LRU hash maps sl_ct4 and sl_ct6, written and read by
 * the XDP program (the agent only reads and flushes them). Each flow has
 * two entries: the forward one keyed by client -> VIP says where to DNAT,
 * the reply one keyed by backend -> client says which VIP to restore. */
#ifndef SLUICE_CONNTRACK_H
#define SLUICE_CONNTRACK_H

#include "sluice/types.h"

struct sl_ct4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};
_Static_assert(sizeof(struct sl_ct4_key) == 16, "sl_ct4_key is ABI");

struct sl_ct6_key {
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};
_Static_assert(sizeof(struct sl_ct6_key) == 40, "sl_ct6_key is ABI");

enum sl_ct_dir {
	SL_CT_FORWARD = 1, /* client -> VIP: rewrite destination */
	SL_CT_REPLY = 2, /* backend -> client: rewrite source */
	SL_CT_PASS_FORWARD = 3, /* client -> local endpoint, no service: policy only */
	SL_CT_PASS_REPLY = 4, /* its reply: passed to the stack untouched */
};

/* The FIB's answer for one direction of a flow, reused until it expires so
 * established packets skip bpf_fib_lookup(). Whichever CPU finds it stale
 * refreshes it; concurrent refreshes write the same answer. */
struct sl_nexthop {
	__u32 ifindex; /* egress; 0: nothing cached yet */
	__u8 dmac[6];
	__u8 smac[6];
	__u32 expires; /* bpf_ktime_get_coarse_ns() >> SL_NEXTHOP_SHIFT */
};
_Static_assert(sizeof(struct sl_nexthop) == 20, "sl_nexthop is ABI");

#define SL_NEXTHOP_SHIFT 20 /* time unit of sl_nexthop.expires: ~1.05 ms */
#define SL_NEXTHOP_TTL 954 /* ~1 s: how long a route or MAC change may go unseen */

struct sl_ct_entry {
	__be32 nat_addr[4]; /* forward: backend; reply: VIP */
	__be16 nat_port; /* forward: backend port; reply: VIP port */
	__u8 dir; /* enum sl_ct_dir */
	__u8 pol_gen; /* SL_POL_CT_GEN of the policy generation it was checked against */
	__u32 svc_id;
	__u32 backend_id;
	struct sl_nexthop nh;
};
_Static_assert(sizeof(struct sl_ct_entry) == 48, "sl_ct_entry is ABI");

/* Client-IP session affinity (LRU hash sl_affinity), written by the XDP
 * program on a new flow to an affinity service, read on the next one. */
struct sl_affinity_key {
	__be32 client[4];
	__u32 svc_id;
};
_Static_assert(sizeof(struct sl_affinity_key) == 20, "sl_affinity_key is ABI");

struct sl_affinity {
	__u64 last_ns; /* bpf_ktime_get_ns() of the last new flow */
	__u32 backend_id;
	__u32 pad;
};
_Static_assert(sizeof(struct sl_affinity) == 16, "sl_affinity is ABI");

#endif
