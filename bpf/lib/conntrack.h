/* Conntrack lookups and inserts over the per-family LRU maps. A flow is
 * keyed in one struct sl_flow shape; these helpers build the map key of
 * the right family so callers never care which map they touch. */
#ifndef SL_BPF_CONNTRACK_H
#define SL_BPF_CONNTRACK_H

#include "lib/flow.h"
#include "lib/maps.h"

static __always_inline void ct4_key(struct sl_ct4_key *key, const struct sl_flow *flow)
{
	key->saddr = flow->saddr[0];
	key->daddr = flow->daddr[0];
	key->sport = flow->sport;
	key->dport = flow->dport;
	key->proto = flow->proto;
}

static __always_inline void ct6_key(struct sl_ct6_key *key, const struct sl_flow *flow)
{
	__builtin_memcpy(key->saddr, flow->saddr, 16);
	__builtin_memcpy(key->daddr, flow->daddr, 16);
	key->sport = flow->sport;
	key->dport = flow->dport;
	key->proto = flow->proto;
}

static __always_inline struct sl_ct_entry *ct_lookup(const struct sl_flow *flow)
{
	if (flow->family == AF_INET) {
		struct sl_ct4_key key = {};

		ct4_key(&key, flow);
		return bpf_map_lookup_elem(&sl_ct4, &key);
	}
	struct sl_ct6_key key = {};

	ct6_key(&key, flow);
	return bpf_map_lookup_elem(&sl_ct6, &key);
}

/* Returns 0 or the negative error of the map update. */
static __always_inline int ct_insert(const struct sl_flow *flow, const struct sl_ct_entry *entry)
{
	if (flow->family == AF_INET) {
		struct sl_ct4_key key = {};

		ct4_key(&key, flow);
		return bpf_map_update_elem(&sl_ct4, &key, entry, BPF_ANY);
	}
	struct sl_ct6_key key = {};

	ct6_key(&key, flow);
	return bpf_map_update_elem(&sl_ct6, &key, entry, BPF_ANY);
}

static __always_inline void ct_delete(const struct sl_flow *flow)
{
	if (flow->family == AF_INET) {
		struct sl_ct4_key key = {};

		ct4_key(&key, flow);
		bpf_map_delete_elem(&sl_ct4, &key);
		return;
	}
	struct sl_ct6_key key = {};

	ct6_key(&key, flow);
	bpf_map_delete_elem(&sl_ct6, &key);
}

static __always_inline bool ct_dir_forward(__u8 dir)
{
	return dir == SL_CT_FORWARD || dir == SL_CT_PASS_FORWARD;
}

/* Forget the flow @ct (found for @flow's packet) in both directions: its
 * partner entry is keyed by what this one translates to. */
static __always_inline void ct_forget(const struct sl_flow *flow, const struct sl_ct_entry *ct)
{
	struct sl_flow other = { .proto = flow->proto, .family = flow->family };

	if (ct_dir_forward(ct->dir)) {
		__builtin_memcpy(other.saddr, ct->nat_addr, 16);
		other.sport = ct->nat_port;
		__builtin_memcpy(other.daddr, flow->saddr, 16);
		other.dport = flow->sport;
	} else {
		__builtin_memcpy(other.saddr, flow->daddr, 16);
		other.sport = flow->dport;
		__builtin_memcpy(other.daddr, ct->nat_addr, 16);
		other.dport = ct->nat_port;
	}
	ct_delete(&other);
	ct_delete(flow);
}

/* Track a new flow: @fwd (client -> VIP) says where to DNAT; the reply
 * entry (backend -> client) made from it says which VIP to put back. A
 * flow to a local endpoint (SL_CT_PASS_FORWARD) is tracked the same way,
 * without NAT, so that its packets keep the verdict policy gave it.
 * Returns 0 or -SL_DROP_CT_INSERT. */
static __always_inline int ct_create(const struct sl_flow *flow, const struct sl_ct_entry *fwd)
{
	struct sl_ct_entry rev = { .nat_port = flow->dport,
				   .dir = fwd->dir == SL_CT_PASS_FORWARD ? SL_CT_PASS_REPLY
									 : SL_CT_REPLY,
				   .pol_gen = fwd->pol_gen,
				   .svc_id = fwd->svc_id,
				   .backend_id = fwd->backend_id };
	struct sl_flow reply = { .sport = fwd->nat_port,
				 .dport = flow->sport,
				 .proto = flow->proto,
				 .family = flow->family };

	__builtin_memcpy(rev.nat_addr, flow->daddr, 16);
	__builtin_memcpy(reply.saddr, fwd->nat_addr, 16);
	__builtin_memcpy(reply.daddr, flow->saddr, 16);
	/* Reply entry first: once the forward entry exists the backend may
	 * answer, and its reply must already find its VIP. */
	if (ct_insert(&reply, &rev) || ct_insert(flow, fwd))
		return -SL_DROP_CT_INSERT;
	return 0;
}

#endif
