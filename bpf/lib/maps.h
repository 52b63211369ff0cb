/* Every map of the XDP load balancer, in one place. Names carry the sl_
 * prefix and stay within 15 characters (the kernel truncates longer ones);
 * the agent pins each one by name under its bpffs directory. */
#ifndef SL_BPF_MAPS_H
#define SL_BPF_MAPS_H

#include "lib/common.h"
#include "sluice/backend.h"
#include "sluice/config.h"
#include "sluice/conntrack.h"
#include "sluice/drop_reason.h"
#include "sluice/limits.h"
#include "sluice/maglev.h"
#include "sluice/service.h"
#include "sluice/stats.h"

/* sl_svc: VIP:port/proto -> service. Writer: agent. Reader: XDP (new flows). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, struct sl_svc_key);
	__type(value, struct sl_svc);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sl_svc SEC(".maps");

/* sl_be: backend id -> backend. Writer: agent. Reader: XDP (new flows). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sl_backend);
} sl_be SEC(".maps");

/* Inner Maglev table: slot -> backend id. The agent sizes it at load time
 * (its --maglev-size) and creates one per service; mmapable so a whole
 * table is written with one memcpy instead of 65537 syscalls. */
struct sl_maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SL_MAGLEV_DEFAULT_SIZE);
	__type(key, __u32);
	__type(value, __u32);
};

/* sl_maglev: service id -> its Maglev table. Writer: agent (one slot
 * swap publishes a backend set). Reader: XDP (new flows). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, __u32);
	__array(values, struct sl_maglev_table);
} sl_maglev SEC(".maps");

/* sl_ct4/sl_ct6: flow -> NAT target, two entries per flow (conntrack.h).
 * Writer and reader: XDP. The agent reads and flushes. Per-CPU LRU lists
 * avoid a global lock on insert; lookups still see every CPU's entries. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_CT_DEFAULT_SIZE);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct sl_ct4_key);
	__type(value, struct sl_ct_entry);
} sl_ct4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_CT_DEFAULT_SIZE);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct sl_ct6_key);
	__type(value, struct sl_ct_entry);
} sl_ct6 SEC(".maps");

/* sl_affinity: (service, client IP) -> last backend. Writer and reader: XDP. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_AFFINITY_SIZE);
	__type(key, struct sl_affinity_key);
	__type(value, struct sl_affinity);
} sl_affinity SEC(".maps");

/* sl_cfg: the loader's settings (config.h). Writer: sluiced. Reader: tools. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_config);
} sl_cfg SEC(".maps");

/* Counters (stats.h, drop_reason.h). Writer: XDP. Reader: agent, CLI. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_PS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sl_proto_st SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_PERR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sl_perr_st SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_LB_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sl_lb_st SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sl_drop_st SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct sl_traffic);
} sl_svc_st SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sl_traffic);
} sl_be_st SEC(".maps");

#endif
