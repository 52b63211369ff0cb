/* Settings the loader chose, for the tools that open the pinned maps later.
 * Map sl_cfg: a one-slot array. Writer: sluiced at load. Readers: the LB
 * library and CLI (the XDP program has its own copy in read-only data). */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include "sluice/types.h"

struct sl_config {
	__u32 maglev_size; /* entries per Maglev table, a prime */
	__u32 version; /* datapath build, SL_DATAPATH_VERSION when loaded */
};
_Static_assert(sizeof(struct sl_config) == 8, "sl_config is ABI");

#define SL_DATAPATH_VERSION 1

#endif
