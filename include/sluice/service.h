/* Services: the (VIP, port, protocol) triples the load balancer answers
 * for. Map sl_svc: key struct sl_svc_key, value struct sl_svc; written by
 * the agent's LB library, read by the XDP program for new flows. */
#ifndef SLUICE_SERVICE_H
#define SLUICE_SERVICE_H

#include "sluice/types.h"

/* IPv4 addresses use addr[0]; addr[1..3] are zero. */
struct sl_svc_key {
	__be32 addr[4]; /* VIP, network order */
	__be16 port; /* network order */
	__u8 proto; /* SL_PROTO_TCP or SL_PROTO_UDP */
	__u8 family; /* SL_AF_INET or SL_AF_INET6 */
};
_Static_assert(sizeof(struct sl_svc_key) == 20, "sl_svc_key is ABI");

enum sl_svc_flags {
	SL_SVC_AFFINITY = 1 << 0, /* client-IP session affinity */
	SL_SVC_L7 = 1 << 1, /* steered to sluice-proxy (socket layer) */
};

#define SL_SVC_NAME_MAX 32

/* The service's Maglev table lives at sl_maglev[id]: the id is the table
 * slot, so replacing that one slot publishes a new backend set. */
struct sl_svc {
	__u32 id; /* 1..SL_MAX_SERVICES-1; indexes sl_maglev and sl_svc_st */
	__u32 flags; /* enum sl_svc_flags */
	__u32 backend_count; /* backends with weight > 0; informational */
	__u32 affinity_timeout_s; /* with SL_SVC_AFFINITY */
	char name[SL_SVC_NAME_MAX]; /* NUL-terminated, may be empty */
};
_Static_assert(sizeof(struct sl_svc) == 48, "sl_svc is ABI");

#endif
