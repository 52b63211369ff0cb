/* Helpers the LB library's files share (lb.c, lb_sync.c); not part of
 * its API. Same conventions: 0 or -errno. */
#ifndef SLUICE_LB_INTERNAL_H
#define SLUICE_LB_INTERNAL_H

#include "lb.h"

/* Read every sl_be slot into @all (SL_MAX_BACKENDS entries). */
int lb_backends_read(struct lb_maps *maps, struct sl_backend *all);
/* Build the Maglev table of backends @ids of @all into a new inner map,
 * its fd in @fd (the caller closes it; -1 when no backend takes new flows:
 * no table). @active gets the number that take new flows. 0 or -errno. */
int lb_table_build(struct lb_maps *maps, const struct sl_backend *all, const __u32 *ids,
		   size_t n_ids, __u32 *active, int *fd);
/* An address of @family as the maps hold it: IPv4 in word 0, the rest zero. */
bool lb_addr_valid(const __be32 *addr, __u8 family);
/* Key and settings a service may have (flags, affinity, NUL-terminated name). */
bool lb_service_valid(const struct sl_svc_key *key, const struct sl_svc *svc);
/* Remove the conntrack entries of the services marked in @svc_ids and the
 * UDP entries of the backends marked in @udp_be_ids (a byte per id; either
 * may be NULL), in one walk of each conntrack map. */
int lb_ct_flush(struct lb_maps *maps, const unsigned char *svc_ids,
		const unsigned char *udp_be_ids);

#endif
