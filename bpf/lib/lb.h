/* Backend selection for new flows: the service's Maglev table by flow
 * hash, or the client's previous backend when the service has session
 * affinity and that backend still takes new flows. */
#ifndef SL_BPF_LB_H
#define SL_BPF_LB_H

#include "lib/flow.h"
#include "lib/maps.h"
#include "lib/stats.h"

/* Set by the agent from its --maglev-size; must equal the inner table size. */
const volatile __u32 maglev_size = SL_MAGLEV_DEFAULT_SIZE;

static __always_inline struct sl_svc *svc_lookup(const struct sl_flow *flow)
{
	struct sl_svc_key key = { .port = flow->dport,
				  .proto = flow->proto,
				  .family = flow->family };

	__builtin_memcpy(key.addr, flow->daddr, 16);
	return bpf_map_lookup_elem(&sl_svc, &key);
}

/* Backend id in slot @hash of the service's Maglev table, or SL_MAGLEV_EMPTY. */
static __always_inline __u32 maglev_lookup(const struct sl_svc *svc, __u32 hash)
{
	__u32 slot = hash % maglev_size;
	void *table = bpf_map_lookup_elem(&sl_maglev, &svc->id);
	__u32 *be_id;

	if (!table)
		return SL_MAGLEV_EMPTY;
	be_id = bpf_map_lookup_elem(table, &slot);
	return be_id ? *be_id : SL_MAGLEV_EMPTY;
}

static __always_inline __u32 maglev_pick(const struct sl_svc *svc, const struct sl_flow *flow)
{
	return maglev_lookup(svc, flow_hash(flow));
}

static __always_inline struct sl_backend *backend_lookup(__u32 be_id, __u32 svc_id, __u8 family)
{
	struct sl_backend *be = bpf_map_lookup_elem(&sl_be, &be_id);

	/* The agent publishes tables after backends, but check ownership so a
	 * reused id can never send a flow to another service's backend. */
	if (!be || !(be->flags & SL_BE_IN_USE) || be->svc_id != svc_id || be->family != family)
		return NULL;
	return be;
}

/* The client's previous backend if it is fresh and still takes new flows. */
static __always_inline __u32 affinity_lookup(const struct sl_affinity_key *key,
					     const struct sl_svc *svc, __u64 now, __u8 family)
{
	struct sl_affinity *aff = bpf_map_lookup_elem(&sl_affinity, key);
	struct sl_backend *be;

	if (!aff || now - aff->last_ns > (__u64)svc->affinity_timeout_s * 1000000000ull)
		return 0;
	be = backend_lookup(aff->backend_id, svc->id, family);
	if (!be || !be->weight)
		return 0;
	return aff->backend_id;
}

/* Pick a backend id for a new flow of @svc; SL_MAGLEV_EMPTY if none. */
static __always_inline __u32 backend_pick(const struct sl_svc *svc, const struct sl_flow *flow)
{
	struct sl_affinity_key key = { .svc_id = svc->id };
	struct sl_affinity aff = {};
	__u32 be_id;

	if (!(svc->flags & SL_SVC_AFFINITY))
		return maglev_pick(svc, flow);
	__builtin_memcpy(key.client, flow->saddr, 16);
	aff.last_ns = bpf_ktime_get_ns();
	be_id = affinity_lookup(&key, svc, aff.last_ns, flow->family);
	if (be_id)
		count_lb(SL_LB_AFFINITY_HIT);
	else
		be_id = maglev_pick(svc, flow);
	if (be_id == SL_MAGLEV_EMPTY)
		return be_id;
	aff.backend_id = be_id;
	bpf_map_update_elem(&sl_affinity, &key, &aff, BPF_ANY);
	return be_id;
}

#endif
