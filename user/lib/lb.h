/* The load balancer's map-management library: services and backends in
 * the XDP program's maps, Maglev tables built aside and published with one
 * map-slot swap, and the counters read back. The agent and the CLI own an
 * struct lb_maps; every function returns 0 or -errno and, on error, leaves
 * the maps as they were. */
#ifndef SLUICE_LB_H
#define SLUICE_LB_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "sluice/backend.h"
#include "sluice/config.h"
#include "sluice/service.h"
#include "sluice/stats.h"

struct bpf_object;

/* File descriptors of every map the LB library touches. */
struct lb_maps {
	int svc, be, maglev, cfg;
	int ct4, ct6, affinity;
	int proto_st, perr_st, lb_st, drop_st, svc_st, be_st;
	int sock_rev, l7_pair, sockhash, sock_info, redir_sk, sock_cfg, redir_port,
		sock_st; /* sock.h */
	int ipcache4, ipcache6, pol_allow, pol_deny, pol_dst, pol_gen, pol_netns, pol_st,
		pol_rule_st, pol_events, pol_rl; /* policy.h, identity.h, events.h */
	__u32 maglev_size; /* read from sl_cfg */
	bool owned; /* fds were opened here and are closed by lb_maps_close */
};

#define LB_WEIGHT_MAX 1000 /* Maglev build time grows with the weight ratio */

/* Open the maps pinned by name under @dir (sluiced's --bpffs). */
int lb_maps_open_pinned(struct lb_maps *maps, const char *dir);
/* Use the maps of a loaded object (tests, the loader); not owned. */
int lb_maps_from_object(struct lb_maps *maps, struct bpf_object *obj);
void lb_maps_close(struct lb_maps *maps);
/* Write the loader's settings into sl_cfg (and maps->maglev_size). */
int lb_config_write(struct lb_maps *maps, const struct sl_config *cfg);

/* The pin directory sluiced and sluice use unless told otherwise, and the
 * name prefix of the XDP link pins in it (LB_LINK_PREFIX + ifname). */
#define LB_DEFAULT_PIN_DIR "/sys/fs/bpf/sluice"
#define LB_LINK_PREFIX "link_xdp_"

/* Name of the @i-th map the library uses (for pinning), NULL past the last. */
const char *lb_map_name(size_t i);

/* @svc gives flags, affinity timeout and name; its id and count are ours. */
int lb_service_add(struct lb_maps *maps, const struct sl_svc_key *key, const struct sl_svc *svc);
/* Removes the service, its backends, its table and its conntrack entries. */
int lb_service_del(struct lb_maps *maps, const struct sl_svc_key *key);
int lb_service_get(struct lb_maps *maps, const struct sl_svc_key *key, struct sl_svc *out);

typedef int (*lb_service_fn)(const struct sl_svc_key *key, const struct sl_svc *svc, void *ctx);
/* Calls @fn for every service in id order; stops at the first non-zero return. */
int lb_service_foreach(struct lb_maps *maps, lb_service_fn fn, void *ctx);

/* Backends: @ap must be of the service's family; weight 0..LB_WEIGHT_MAX. */
int lb_backend_add(struct lb_maps *maps, const struct sl_svc_key *key, const struct addr_port *ap,
		   __u32 weight);
int lb_backend_del(struct lb_maps *maps, const struct sl_svc_key *key, const struct addr_port *ap);
int lb_backend_set_weight(struct lb_maps *maps, const struct sl_svc_key *key,
			  const struct addr_port *ap, __u32 weight);

typedef int (*lb_backend_fn)(__u32 id, const struct sl_backend *be, void *ctx);
/* Calls @fn for each backend of service @svc_id (0: of every service) in
 * id order. Each call reads all backend slots: list many services with 0. */
int lb_backend_foreach(struct lb_maps *maps, __u32 svc_id, lb_backend_fn fn, void *ctx);

/* ---- bulk changes (lb_sync.c): many services, published in batches ---- */

/* Every service and backend slot as read once, indexed by service, and
 * kept up to date by the bulk calls below. Single-object calls above do
 * not update it: do not mix them while a snapshot is in use. */
struct lb_snapshot;

struct lb_backend_spec {
	struct addr_port addr;
	__u32 weight;
};

int lb_snapshot_read(struct lb_maps *maps, struct lb_snapshot **out);
void lb_snapshot_free(struct lb_snapshot *snap);
/* Which services a bulk change keeps (true) or prunes. */
typedef bool (*lb_keep_fn)(const struct sl_svc_key *key, void *ctx);

/* Free service ids and backend slots in @snap once the services @keep
 * rejects are pruned (@keep NULL: as it is). */
void lb_snapshot_room(const struct lb_snapshot *snap, lb_keep_fn keep, void *ctx, __u32 *services,
		      __u32 *backends);
/* How many of @specs service @key does not have yet (slots it will take). */
__u32 lb_snapshot_new_backends(struct lb_maps *maps, const struct lb_snapshot *snap,
			       const struct sl_svc_key *key, const struct lb_backend_spec *specs,
			       size_t n);

/* The slot service @key holds for backend @addr: 0, or -ENOENT. */
int lb_snapshot_backend(struct lb_maps *maps, const struct lb_snapshot *snap,
			const struct sl_svc_key *key, const struct addr_port *addr,
			struct sl_backend *out);

/* Whether lb_service_sync() would take @key, @want and @specs: 0,
 * -EINVAL (invalid or duplicate backend, bad settings) or -E2BIG (more
 * active backends than the Maglev table has slots). Changes nothing. */
int lb_specs_check(const struct lb_maps *maps, const struct sl_svc_key *key,
		   const struct sl_svc *want, const struct lb_backend_spec *specs, size_t n);

/* Make service @key exist with @want's flags, affinity and name, and
 * exactly the backends @specs: its new table is built aside and staged,
 * and published by the next lb_snapshot_commit() (or _flush()). Returns
 * 1 when something changed, 0 when it already was so, or -errno (nothing
 * staged). Each service at most once between commits. */
int lb_service_sync(struct lb_maps *maps, struct lb_snapshot *snap, const struct sl_svc_key *key,
		    const struct sl_svc *want, const struct lb_backend_spec *specs, size_t n);
/* Commit what is staged, then delete every service of @snap for which
 * @keep(key, ctx) is false: their entries first (no new flow picks them),
 * then their tables and backend slots (committed before it returns), their
 * flows at the next lb_snapshot_flush(). Returns how many were deleted, or
 * -errno. */
int lb_services_prune(struct lb_maps *maps, struct lb_snapshot *snap, lb_keep_fn keep, void *ctx);
/* Do what the calls above staged, in a few batch syscalls and in an order
 * the data path can follow at any moment: new backend slots, then every
 * new table (one syscall), then every service entry (one syscall: a new
 * service appears with its table), then the slots no table uses any more.
 * Returns 0 or -errno; after an error the snapshot no longer matches the
 * maps: free it and read another. */
int lb_snapshot_commit(struct lb_maps *maps, struct lb_snapshot *snap);
/* Drop what is staged, uncommitted (a bulk change that failed half way:
 * the maps keep what they had; the snapshot no longer matches them). */
void lb_snapshot_abort(struct lb_snapshot *snap);
/* Carry the flows @from still has to remove into @to (a snapshot read
 * after @from stopped matching the maps). */
void lb_snapshot_take_flush(struct lb_snapshot *to, const struct lb_snapshot *from);
/* Commit, then remove the conntrack entries the changes left to remove:
 * every flow of a pruned service, and the UDP flows of a backend a sync
 * dropped (its TCP connections drain). One walk of each conntrack map. */
int lb_snapshot_flush(struct lb_maps *maps, struct lb_snapshot *snap);

/* Counters, summed over CPUs. */
int lb_read_counter(int map_fd, __u32 index, __u64 *sum);
int lb_read_traffic(int map_fd, __u32 id, struct sl_traffic *sum);
/* Number of entries in sl_ct4 and sl_ct6 (each flow has two). */
int lb_ct_count(struct lb_maps *maps, __u32 *v4, __u32 *v6);

/* Occupancy of each map the data path fills, against its capacity. */
enum {
	LB_USE_SVC,
	LB_USE_BE,
	LB_USE_CT4,
	LB_USE_CT6,
	LB_USE_AFFINITY,
	LB_USE_SOCK_REV, /* sockets with a translated destination */
	LB_USE_SOCKHASH, /* sockets enrolled for redirection */
	LB_USE_COUNT
};
struct lb_map_use {
	const char *name; /* the map's name, e.g. "sl_ct4" */
	__u64 used; /* sl_be: slots in use (weight 0 included); sl_ct4/6: two per flow */
	__u64 capacity; /* id-indexed maps: ids 1..max_entries-1 */
};
int lb_map_usage(struct lb_maps *maps, struct lb_map_use use[LB_USE_COUNT]);

#endif
