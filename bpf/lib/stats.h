/* Counter updates for the BPF programs. Per-CPU arrays, so plain adds are
 * safe: no other CPU writes this CPU's slot. */
#ifndef SL_BPF_STATS_H
#define SL_BPF_STATS_H

#include "lib/maps.h"

static __always_inline void count_u64(void *map, __u32 index)
{
	__u64 *counter = bpf_map_lookup_elem(map, &index);

	if (counter)
		*counter += 1;
}

#define count_proto(stat) count_u64(&sl_proto_st, (stat))
#define count_parse_err(err) count_u64(&sl_perr_st, (err))
#define count_lb(stat) count_u64(&sl_lb_st, (stat))
#define count_drop(reason) count_u64(&sl_drop_st, (reason))
#define count_sock(stat) count_u64(&sl_sock_st, (stat))

static __always_inline void count_sock_add(__u32 stat, __u64 n)
{
	__u64 *counter = bpf_map_lookup_elem(&sl_sock_st, &stat);

	if (counter)
		*counter += n;
}

/* Account one packet of @bytes to a service or backend traffic slot. */
static __always_inline void count_traffic(void *map, __u32 id, __u64 bytes, __u8 dir, bool new_flow)
{
	struct sl_traffic *t = bpf_map_lookup_elem(map, &id);

	if (!t)
		return;
	if (dir == SL_CT_FORWARD) {
		t->fwd_packets++;
		t->fwd_bytes += bytes;
	} else {
		t->rev_packets++;
		t->rev_bytes += bytes;
	}
	t->new_flows += new_flow;
}

#endif
