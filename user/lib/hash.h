/* The two hashes userspace builds on: FNV-1a over bytes (endian- and
 * alignment-independent, so results agree across hosts: Maglev tables,
 * config digests, policy digests) and the murmur3 fmix64 finaliser, whose
 * full avalanche fixes FNV's weak low bits before a value is reduced to a
 * slot. */
#ifndef SLUICE_HASH_H
#define SLUICE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_OFFSET 0xcbf29ce484222325ull /* FNV-1a's 64-bit offset basis */

/* FNV-1a of @len bytes at @data, continuing from @h (HASH_FNV_OFFSET to start). */
static inline uint64_t hash_fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* murmur3 fmix64: every output bit depends on every input bit; a
 * bijection. Inline: the socket checker runs it per 8 bytes of a 1 GiB
 * stream. */
static inline uint64_t hash_fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

#endif
