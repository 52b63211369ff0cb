/* Every map of Sluice's BPF programs, in one place: each object declares
 * them all and the loader hands the later objects the first one's maps,
 * so there is one map per name. Names carry the sl_ prefix and stay
 * within 15 characters (the kernel truncates longer ones); the agent pins
 * each one by name under its bpffs directory. */
#ifndef SL_BPF_MAPS_H
#define SL_BPF_MAPS_H

#include "lib/common.h"
#include "sluice/backend.h"
#include "sluice/config.h"
#include "sluice/conntrack.h"
#include "sluice/drop_reason.h"
#include "sluice/events.h"
#include "sluice/identity.h"
#include "sluice/limits.h"
#include "sluice/maglev.h"
#include "sluice/policy.h"
#include "sluice/service.h"
#include "sluice/sock.h"
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

/* sl_sock_rev: {socket cookie, backend} -> the VIP it asked for. Writer:
 * connect/sendmsg hooks. Reader: getpeername/recvmsg hooks, sockops (L7).
 * LRU: a closed socket's entry ages out instead of needing a close hook. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_SOCK_REV_SIZE);
	__type(key, struct sl_sock_rev_key);
	__type(value, struct sl_vip);
} sl_sock_rev SEC(".maps");

/* sl_l7_pair: steered connection (client side of it) -> VIP. Writer:
 * sockops when the client's connection is established. Reader: the
 * getsockopt hook answering the proxy's SO_ORIGINAL_DST. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_L7_PAIR_SIZE);
	__type(key, struct sl_l7_pair_key);
	__type(value, struct sl_vip);
} sl_l7_pair SEC(".maps");

/* sl_sockhash: enrolled TCP sockets. Writer: sockops (insert); the kernel
 * removes a socket when it closes. Reader: sk_msg (redirect target). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SL_SOCKHASH_SIZE);
	__type(key, struct sl_sock_key);
	__type(value, __u64);
} sl_sockhash SEC(".maps");

/* sl_sock_info: enrolled socket -> its kernel addresses and write streak.
 * Writer: sockops (insert), sk_msg (streaks). Reader: sk_msg (the peer's
 * entry). LRU: entries of closed sockets age out; a stale one is never
 * used, since a redirect needs the peer in sl_sockhash too. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_SOCKHASH_SIZE);
	__type(key, struct sl_sock_key);
	__type(value, struct sl_sock_info);
} sl_sock_info SEC(".maps");

/* sl_redir_sk: per-socket redirection state, freed with the socket.
 * Writer and reader: sk_msg. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sl_redir_sk);
} sl_redir_sk SEC(".maps");

/* sl_redir_port: server port (network order) -> 1, the ports whose
 * loopback connections auto mode enrols. Writer: agent. Reader: sockops. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_REDIR_PORTS_MAX);
	__type(key, __be16);
	__type(value, __u8);
} sl_redir_port SEC(".maps");

/* sl_sock_cfg: proxy address and redirect mode. Writer: agent. Reader:
 * the socket programs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_sock_cfg);
} sl_sock_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_SOCK_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sl_sock_st SEC(".maps");

/* sl_ipcache4/6: (generation, address or CIDR) -> identity. Writer: agent
 * (a whole generation before it switches sl_pol_gen). Reader: XDP and the
 * connect hooks (identity.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SL_POL_IPCACHE_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_ipcache4_key);
	__type(value, __u32);
} sl_ipcache4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SL_POL_IPCACHE_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_ipcache6_key);
	__type(value, __u32);
} sl_ipcache6 SEC(".maps");

/* sl_pol_allow/sl_pol_deny: compiled rules (policy.h). Writer: agent.
 * Reader: XDP and the connect hooks, deny first. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SL_POL_RULE_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_pol_key);
	__type(value, struct sl_pol_rule);
} sl_pol_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SL_POL_RULE_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_pol_key);
	__type(value, struct sl_pol_rule);
} sl_pol_deny SEC(".maps");

/* sl_pol_dst: (generation, destination identity) -> what selects it.
 * Writer: agent. Reader: XDP and the connect hooks; a destination with no
 * entry is open, which costs one lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_POL_DST_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_pol_dst_key);
	__type(value, struct sl_pol_dst);
} sl_pol_dst SEC(".maps");

/* sl_pol_gen: the generation enforced; 0 = no policy. Writer: agent (the
 * switch that publishes a policy). Reader: everything that checks. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_pol_state);
} sl_pol_gen SEC(".maps");

/* sl_pol_netns: (generation, network namespace cookie) -> its endpoint's
 * addresses. Writer: agent. Reader: the connect hooks. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_POL_NETNS_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_pol_netns_key);
	__type(value, struct sl_pol_netns);
} sl_pol_netns SEC(".maps");

/* Policy counters: by enum sl_pol_stat, and denials by rule id (an entry
 * appears with a rule's first denial). Writer: XDP, connect hooks. Reader:
 * agent, CLI. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_POL_ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sl_pol_st SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SL_POL_RULE_STATS);
	__type(key, __u32);
	__type(value, __u64);
} sl_pol_rule_st SEC(".maps");

/* sl_pol_events: denial events (events.h). Writer: XDP, connect hooks,
 * through the per-CPU token bucket sl_pol_rl. Reader: the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SL_POL_EVENTS_BYTES);
} sl_pol_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_pol_ratelimit);
} sl_pol_rl SEC(".maps");

#endif
