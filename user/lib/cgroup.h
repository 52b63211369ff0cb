/* cgroup v2 helpers: where the hierarchy is mounted (hosts differ:
 * /sys/fs/cgroup, /sys/fs/cgroup/unified, ...), a cgroup's id as BPF sees
 * it, and private child cgroups for work that must run inside one. */
#ifndef SLUICE_CGROUP_H
#define SLUICE_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

/* The first cgroup2 mount point from /proc/self/mounts into @buf.
 * Returns 0, -ENOENT when there is none, or -errno. */
int cgroup2_mount(char *buf, size_t len);

/* The id the kernel gives the cgroup directory @path (its inode number on
 * cgroup2), or 0 with errno set: EMEDIUMTYPE when @path is not a
 * directory of a cgroup v2 hierarchy. */
unsigned long long cgroup_id(const char *path);

/* Move process @pid into the cgroup directory @path. Returns 0 or -errno. */
int cgroup_enter(const char *path, pid_t pid);

#endif
