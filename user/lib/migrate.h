/* Upgrading over pinned maps whose size changed: a new build may give a
 * map more entries (or other flags) than the one pinned by the last. libbpf
 * would refuse to reuse it; instead the old pin is set aside, the new build
 * creates and pins its own map, and the entries are copied across, so the
 * upgrade keeps every service, backend, table and flow. A map whose key or
 * value layout changed has no converter yet and is refused by name. */
#ifndef SLUICE_MIGRATE_H
#define SLUICE_MIGRATE_H

#include <linux/bpf.h>

struct bpf_object;

/* The size the kernel gives a map of @type, @flags and @n entries: one with
 * per-CPU LRU lists (BPF_F_NO_COMMON_LRU) is rounded up to a multiple of
 * the possible CPUs. Ask for that size, or a pinned map never matches. */
__u32 migrate_kernel_entries(enum bpf_map_type type, __u32 flags, __u32 n);

/* Before load: for each map of @obj with a pin path whose pinned map
 * differs only in size or flags, rename the pin to NAME_old. Every pinned
 * map is checked before any is renamed. Returns how many were set aside,
 * or -errno (-EPROTO: a layout change, logged; nothing renamed). */
int migrate_prepare(struct bpf_object *obj);
/* After load, before the new program is attached: copy every entry of each
 * NAME_old pin under @dir into the map now pinned as NAME. */
int migrate_copy(const char *dir);
/* After a failed load: put every NAME_old pin back as NAME (dropping the
 * new map pinned there), so the old build's maps stay the ones in use. */
int migrate_abort(const char *dir);
/* After the new program is attached: remove the NAME_old pins. What the
 * old program wrote between the copy and the attach (milliseconds) is not
 * carried over: counters lose those increments, and a flow whose conntrack
 * entry is lost picks the same backend again (the tables were copied). */
int migrate_finish(const char *dir);

#endif
