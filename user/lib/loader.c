/* Skeleton loading, map adoption and XDP link management (loader.h). */
#include <errno.h>
#include <dirent.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "loader.h"
#include "log.h"
#include "maglev.h"
#include "migrate.h"
#include "xdp_lb.skel.h"

/* The Maglev size of maps already pinned in @dir, or 0 when none are. */
static __u32 pinned_maglev_size(const char *dir)
{
	struct sl_config cfg = {};
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/sl_cfg", dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	bpf_map_lookup_elem(fd, &zero, &cfg);
	close(fd);
	return cfg.maglev_size;
}

/* Point every map at its pin path: libbpf reuses a compatible pinned map
 * and pins the ones that are missing. */
static int pin_maps(struct xdp_lb *skel, const char *dir)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int err;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	for (size_t i = 0; lb_map_name(i); i++) {
		map = bpf_object__find_map_by_name(skel->obj, lb_map_name(i));
		if (!map)
			return -ENOENT;
		snprintf(path, sizeof(path), "%s/%s", dir, lb_map_name(i));
		err = bpf_map__set_pin_path(map, path);
		if (err)
			return err;
	}
	return 0;
}

/* A Maglev table of @size to serve as sl_maglev's inner-map template;
 * every table the LB library creates must match it. */
static int maglev_template(__u32 size)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sl_maglev_tpl", sizeof(__u32), sizeof(__u32),
				size, &opts);

	return fd < 0 ? -errno : fd;
}

/* --ct-size as the kernel will size the map (libbpf's reuse check and
 * the migration compare the pinned size with it). */
static __u32 ct_entries(const struct bpf_map *map, const struct loader_opts *opts)
{
	return migrate_kernel_entries(bpf_map__type(map), bpf_map__map_flags(map), opts->ct_size);
}

/* Apply the sizes of @opts; @template_fd receives the fd to close after load. */
static int lb_size(struct xdp_lb *skel, const struct loader_opts *opts, int *template_fd)
{
	int err;

	skel->rodata->maglev_size = opts->maglev_size;
	skel->rodata->sl_version = opts->version;
	*template_fd = maglev_template(opts->maglev_size);
	if (*template_fd < 0)
		return *template_fd;
	/* libbpf 1.1's bpf_map__inner_map() cannot resize a declared inner map
	 * (it crashes in set_max_entries): hand it a template fd instead. */
	err = bpf_map__set_inner_map_fd(skel->maps.sl_maglev, *template_fd);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.sl_ct4,
					       ct_entries(skel->maps.sl_ct4, opts));
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.sl_ct6,
					       ct_entries(skel->maps.sl_ct6, opts));
	return err;
}

/* The pinned Maglev tables are adopted only at the size they were built
 * for (the program hashes into that many slots): say which option differs
 * instead of libbpf's "couldn't reuse pinned map". Other size changes
 * (--ct-size, a build with bigger maps) are migrated (migrate.h). */
static int lb_check_pinned(const struct loader_opts *opts)
{
	__u32 maglev = opts->pin_dir ? pinned_maglev_size(opts->pin_dir) : 0;

	if (maglev && maglev != opts->maglev_size) {
		log_error("loader",
			  "maps pinned in %s use Maglev size %u, not %u; "
			  "restart with --maglev-size %u or remove them (sluiced --cleanup)",
			  opts->pin_dir, maglev, opts->maglev_size, maglev);
		return -EEXIST;
	}
	return 0;
}

struct xdp_lb *loader_lb_load(const struct loader_opts *opts, struct lb_maps *maps)
{
	struct sl_config cfg = { .maglev_size = opts->maglev_size, .version = opts->version };
	struct xdp_lb *skel;
	int err, template_fd = -1;

	if (!maglev_size_valid(opts->maglev_size) || !opts->ct_size) {
		errno = EINVAL;
		return NULL;
	}
	err = lb_check_pinned(opts);
	if (err) {
		errno = -err;
		return NULL;
	}
	skel = xdp_lb__open();
	if (!skel)
		return NULL;
	err = lb_size(skel, opts, &template_fd);
	if (!err && opts->pin_dir)
		err = pin_maps(skel, opts->pin_dir);
	if (!err && opts->pin_dir)
		err = migrate_prepare(skel->obj);
	if (err >= 0)
		err = xdp_lb__load(skel);
	/* Before the new program is attached: it must find every service. */
	if (!err && opts->pin_dir)
		err = migrate_copy(opts->pin_dir);
	if (err && opts->pin_dir && migrate_abort(opts->pin_dir))
		log_error("loader", "cannot put the old maps back under %s", opts->pin_dir);
	if (template_fd >= 0)
		close(template_fd);
	if (!err)
		err = lb_maps_from_object(maps, skel->obj);
	if (!err)
		err = lb_config_write(maps, &cfg);
	if (err) {
		xdp_lb__destroy(skel);
		errno = -err;
		return NULL;
	}
	return skel;
}

int loader_link_update(const char *path, int prog_fd, __u32 type, __u64 target)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path), err = 0;
	__u64 pinned_target;

	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto close_link;
	}
	pinned_target = info.type == BPF_LINK_TYPE_XDP ? info.xdp.ifindex : info.cgroup.cgroup_id;
	if (info.type != type || pinned_target != target)
		err = -ESTALE;
	else if (bpf_link_update(fd, prog_fd, NULL))
		err = -errno;
close_link:
	close(fd);
	return err;
}

static int link_create(const char *path, int prog_fd, int ifindex, bool generic)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts,
		    .flags = generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
	int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts), err = 0;

	if (fd < 0)
		return -errno;
	if (bpf_obj_pin(fd, path))
		err = -errno;
	close(fd); /* the pin keeps the link, and so the attachment, alive */
	return err;
}

/* True when @ifname is a veth (ETHTOOL_GDRVINFO names the driver). */
static bool iface_is_veth(const char *ifname)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr = { .ifr_data = (void *)&info };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool veth;

	if (fd < 0)
		return false;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	veth = !ioctl(fd, SIOCETHTOOL, &ifr) && !strcmp(info.driver, "veth");
	close(fd);
	return veth;
}

int loader_attach_xdp(struct xdp_lb *skel, const char *pin_dir, const char *ifname, bool generic)
{
	int prog_fd = bpf_program__fd(skel->progs.sl_xdp_lb);
	int ifindex = if_nametoindex(ifname);
	char path[PATH_MAX];
	int err;

	if (!ifindex)
		return -ENODEV;
	snprintf(path, sizeof(path), "%s/" LB_LINK_PREFIX "%s", pin_dir, ifname);
	err = loader_link_update(path, prog_fd, BPF_LINK_TYPE_XDP, ifindex);
	if (err == -ESTALE) {
		log_warn("loader", "%s: pinned link is for another interface; replacing it",
			 ifname);
		unlink(path);
	}
	if (!err) {
		log_info("loader", "%s: program replaced in place (bpf_link_update)", ifname);
		return 0;
	}
	if (err != -ENOENT && err != -ESTALE)
		return err;
	err = link_create(path, prog_fd, ifindex, generic);
	if (err == -EOPNOTSUPP && !generic)
		log_error("loader",
			  "%s: driver has no native XDP; use --xdp-generic to accept "
			  "the slower generic mode",
			  ifname);
	else if (!err)
		log_info("loader", "%s: attached in %s mode", ifname,
			 generic ? "generic" : "native");
	/* The kernel drops frames redirected into a veth whose peer runs no
	 * NAPI; the peer is often in another namespace, so we can only warn. */
	if (!err && iface_is_veth(ifname))
		log_warn("loader",
			 "%s is a veth: frames redirected into it are dropped unless its peer "
			 "has GRO on (set after the link is up) or an XDP program",
			 ifname);
	return err;
}

int loader_unpin(const char *pin_dir, const char *prefix)
{
	char path[PATH_MAX];
	struct dirent *entry;
	DIR *dir = opendir(pin_dir);
	int err = 0;

	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((entry = readdir(dir))) {
		if (entry->d_name[0] == '.' || strncmp(entry->d_name, prefix, strlen(prefix)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, entry->d_name);
		if (unlink(path) && !err)
			err = -errno;
	}
	closedir(dir);
	return err;
}

int loader_cleanup(const char *pin_dir)
{
	int err = loader_unpin(pin_dir, "");

	if (!err && rmdir(pin_dir) && errno != ENOENT)
		err = -errno;
	return err;
}
