/* Backends: the endpoints a service's Maglev table points at. Map sl_be is
 * an array indexed by backend id; written by the agent's LB library, read
 * by the XDP program when a new flow picks a backend. A backend belongs
 * to exactly one service, so its counters are per service and backend. */
#ifndef SLUICE_BACKEND_H
#define SLUICE_BACKEND_H

#include "sluice/types.h"

enum sl_be_flags {
	SL_BE_IN_USE = 1 << 0, /* slot holds a backend (array slots always exist) */
};

struct sl_backend {
	__be32 addr[4]; /* network order; IPv4 uses addr[0] */
	__be16 port; /* network order */
	__u8 family; /* SL_AF_INET or SL_AF_INET6 */
	__u8 flags; /* enum sl_be_flags */
	__u32 svc_id; /* owning service */
	__u32 weight; /* 0: no new flows, established ones continue */
};
_Static_assert(sizeof(struct sl_backend) == 28, "sl_backend is ABI");

#endif
