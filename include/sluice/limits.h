/* Capacities of Sluice's BPF maps. The agent may lower or raise the
 * conntrack and Maglev sizes at load time; the rest are fixed by the ABI
 * because ids index arrays of exactly this size. */
#ifndef SLUICE_LIMITS_H
#define SLUICE_LIMITS_H

#define SL_MAX_SERVICES 16384 /* service ids are 1..SL_MAX_SERVICES-1 */
#define SL_MAX_BACKENDS 131072 /* backend ids are 1..SL_MAX_BACKENDS-1: 10,000 services x 10 fit */
#define SL_CT_DEFAULT_SIZE 262144 /* entries per family; 2 per flow */
#define SL_AFFINITY_SIZE 65536 /* client-IP affinity entries */

#endif
