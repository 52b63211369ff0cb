/* Identities: the numbers policy rules are written in. Every distinct
 * label set of the declared endpoints gets one (SL_ID_FIRST_ENDPOINT and
 * up); each CIDR a rule names gets one for the world addresses it covers
 * (SL_ID_FIRST_CIDR and up); any other address is SL_ID_WORLD. The agent
 * allocates them and fills the ipcache maps; the XDP and socket programs
 * look addresses up there. */
#ifndef SLUICE_IDENTITY_H
#define SLUICE_IDENTITY_H

#include "sluice/types.h"

enum sl_identity {
	SL_ID_ANY = 0, /* rule key wildcard: a rule whose `from` selects everything */
	SL_ID_HOST = 1, /* a local process whose source address is not known */
	SL_ID_WORLD = 2, /* an address that matches no endpoint and no rule's CIDR */
	SL_ID_FIRST_ENDPOINT = 256,
	SL_ID_FIRST_CIDR = 1 << 24,
};

/* sl_ipcache4 / sl_ipcache6 (LPM tries): address or CIDR -> identity. The
 * prefix always covers the generation: prefixlen = 32 + address bits. */
struct sl_ipcache4_key {
	__u32 prefixlen;
	__u32 gen;
	__be32 addr;
};
_Static_assert(sizeof(struct sl_ipcache4_key) == 12, "sl_ipcache4_key is ABI");

struct sl_ipcache6_key {
	__u32 prefixlen;
	__u32 gen;
	__be32 addr[4];
};
_Static_assert(sizeof(struct sl_ipcache6_key) == 24, "sl_ipcache6_key is ABI");

#define SL_POL_IPCACHE_SIZE 65536 /* addresses + CIDRs, per family, both generations */
#define SL_IPCACHE_GEN_BITS 32 /* the generation part of every ipcache prefix */

#endif
