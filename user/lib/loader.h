/* Loading the XDP load balancer through its skeleton, adopting maps that
 * are already pinned (so a restart or upgrade keeps every service and
 * flow), and attaching it to interfaces through pinned bpf_links that an
 * upgrade replaces atomically with bpf_link_update(). */
#ifndef SLUICE_LOADER_H
#define SLUICE_LOADER_H

#include <stdbool.h>

#include "lb.h"

struct xdp_lb;

struct loader_opts {
	__u32 maglev_size; /* prime; must match what is pinned */
	__u32 ct_size; /* entries per conntrack map */
	__u32 version; /* datapath build identity (rodata sl_version) */
	const char *pin_dir; /* NULL: nothing pinned or adopted (tests) */
};

/* Open, size, load and configure the LB. Returns the skeleton and fills
 * @maps (not owned: valid while the skeleton lives), or NULL with errno. */
struct xdp_lb *loader_lb_load(const struct loader_opts *opts, struct lb_maps *maps);

/* Attach the loaded program to @ifname through a link pinned in @pin_dir,
 * or swap the program of the link already pinned there. Native mode only
 * unless @generic. Returns 0 or -errno. */
int loader_attach_xdp(struct xdp_lb *skel, const char *pin_dir, const char *ifname, bool generic);

/* Swap the program of the link pinned at @path when it is a link of
 * @type to @target (XDP: ifindex; cgroup: cgroup id). Returns 0, -ENOENT
 * when nothing is pinned there, -ESTALE when the pin is for another
 * target (the interface or cgroup was recreated), or -errno. */
int loader_link_update(const char *path, int prog_fd, __u32 type, __u64 target);

/* Remove the pins under @pin_dir whose names start with @prefix ("": all).
 * Returns 0 (also when @pin_dir does not exist) or the first -errno. */
int loader_unpin(const char *pin_dir, const char *prefix);

/* Remove every pin under @pin_dir (links detach, maps are freed once no
 * program uses them) and the directory. Returns 0 or -errno. */
int loader_cleanup(const char *pin_dir);

#endif
