/* Loading and attaching the socket layer (sock.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "loader.h"
#include "log.h"
#include "sock.h"
#include "sock_lb.skel.h"
#include "sock_redir.skel.h"

int sock_redirect_mode_parse(const char *text, enum sl_redirect_mode *mode)
{
	static const char *const names[] = { "off", "auto", "all" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(text, names[i])) {
			*mode = (enum sl_redirect_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *sock_redirect_mode_name(enum sl_redirect_mode mode)
{
	switch (mode) {
	case SL_REDIRECT_OFF:
		return "off";
	case SL_REDIRECT_AUTO:
		return "auto";
	case SL_REDIRECT_ALL:
		return "all";
	}
	return "?";
}

/* Hand @obj the maps of @from, by name, except those named in @own (NULL
 * terminated), which @obj creates for itself. */
int sock_maps_share(struct bpf_object *obj, struct bpf_object *from, const char *const *own)
{
	struct bpf_map *map;
	int fd, err;

	bpf_object__for_each_map(map, obj)
	{
		const char *name = bpf_map__name(map);
		bool private = bpf_map__is_internal(map);

		for (size_t i = 0; own && own[i] && !private; i++)
		private = !strcmp(name, own[i]);
		if (private)
			continue;
		fd = bpf_object__find_map_fd_by_name(from, name);
		if (fd < 0)
			return -ENOENT;
		err = bpf_map__reuse_fd(map, fd);
		if (err)
			return err;
	}
	return 0;
}

int sock_layer_load(struct sock_layer *sl, struct bpf_object *maps_from, __u32 maglev_size)
{
	int err;

	memset(sl, 0, sizeof(*sl));
	sl->lb = sock_lb__open();
	sl->redir = sock_redir__open();
	if (!sl->lb || !sl->redir) {
		err = -errno;
		goto destroy;
	}
	sl->lb->rodata->maglev_size = maglev_size;
	sl->redir->rodata->maglev_size = maglev_size;
	err = sock_maps_share(sl->lb->obj, maps_from, NULL);
	if (!err)
		err = sock_maps_share(sl->redir->obj, maps_from, NULL);
	if (!err)
		err = sock_lb__load(sl->lb);
	if (!err)
		err = sock_redir__load(sl->redir);
	if (err)
		goto destroy;
	sl->sockhash_fd = bpf_map__fd(sl->redir->maps.sl_sockhash);
	return 0;
destroy:
	sock_layer_destroy(sl);
	return err;
}

void sock_layer_destroy(struct sock_layer *sl)
{
	for (int i = 0; i < sl->n_links; i++)
		bpf_link__destroy(sl->links[i]);
	sock_lb__destroy(sl->lb);
	sock_redir__destroy(sl->redir);
	memset(sl, 0, sizeof(*sl));
}

static void link_path(char *path, size_t len, const char *pin_dir, const struct bpf_program *prog)
{
	snprintf(path, len, "%s/" SOCK_LINK_PREFIX "%s", pin_dir, bpf_program__name(prog));
}

/* The slot of the link held for @prog (NULL if none and @add is false). */
static struct bpf_link **held_link(struct sock_layer *sl, const struct bpf_program *prog, bool add)
{
	const char *name = bpf_program__name(prog);

	for (int i = 0; i < sl->n_links; i++) {
		if (!strcmp(sl->link_names[i], name))
			return &sl->links[i];
	}
	if (!add || sl->n_links == SOCK_MAX_LINKS)
		return NULL;
	sl->link_names[sl->n_links] = name;
	return &sl->links[sl->n_links++];
}

/* Attach @prog to the cgroup open at @cg_fd: swap the program of the link
 * pinned for it, or make a link and pin it. Without a pin directory the
 * link is held in @sl, replacing the one held for the same program. */
static int link_cgroup(struct sock_layer *sl, struct bpf_program *prog, int cg_fd, __u64 cg_id,
		       const char *pin_dir)
{
	struct bpf_link *link, **held = NULL;
	char path[PATH_MAX];
	int err;

	if (pin_dir) {
		link_path(path, sizeof(path), pin_dir, prog);
		err = loader_link_update(path, bpf_program__fd(prog), BPF_LINK_TYPE_CGROUP, cg_id);
		if (!err)
			return 0;
		if (err == -ESTALE)
			unlink(path); /* attached to another cgroup: that one detaches */
		else if (err != -ENOENT)
			return err;
	} else {
		held = held_link(sl, prog, true);
		if (!held)
			return -E2BIG;
		bpf_link__destroy(*held);
		*held = NULL;
	}
	link = bpf_program__attach_cgroup(prog, cg_fd);
	if (!link)
		return -errno;
	if (held) {
		*held = link;
		return 0;
	}
	err = bpf_link__pin(link, path);
	bpf_link__destroy(link); /* the pin holds the attachment */
	return err;
}

static void unlink_program(struct sock_layer *sl, const char *pin_dir,
			   const struct bpf_program *prog)
{
	struct bpf_link **held;
	char path[PATH_MAX];

	if (!pin_dir) {
		held = held_link(sl, prog, false);
		if (held) {
			bpf_link__destroy(*held);
			*held = NULL;
		}
		return;
	}
	link_path(path, sizeof(path), pin_dir, prog);
	if (unlink(path) && errno != ENOENT)
		log_warn("sock", "cannot remove %s: %s", path, strerror(errno));
}

bool sock_redirect_enrols(enum sl_redirect_mode mode, size_t n_ports)
{
	return mode == SL_REDIRECT_ALL || (mode == SL_REDIRECT_AUTO && n_ports);
}

/* sl_redir_port holds exactly @opts' ports. */
static int ports_write(struct sock_layer *sl, const struct sock_attach_opts *opts)
{
	int fd = bpf_map__fd(sl->lb->maps.sl_redir_port);
	__be16 key, next;
	__u8 one = 1;

	while (!bpf_map_get_next_key(fd, NULL, &next)) {
		key = next;
		if (bpf_map_delete_elem(fd, &key))
			return -errno;
	}
	for (size_t i = 0; i < opts->n_ports; i++) {
		key = htons(opts->ports[i]);
		if (bpf_map_update_elem(fd, &key, &one, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int config_write(struct sock_layer *sl, const struct sock_attach_opts *opts)
{
	struct sl_sock_cfg cfg = { .redirect_mode = opts->redirect };
	__u32 zero = 0;

	if (opts->proxy4.port && opts->proxy4.family == SL_AF_INET) {
		cfg.proxy4 = opts->proxy4.addr[0];
		cfg.proxy4_port = opts->proxy4.port;
	}
	if (opts->proxy6.port && opts->proxy6.family == SL_AF_INET6) {
		memcpy(cfg.proxy6, opts->proxy6.addr, sizeof(cfg.proxy6));
		cfg.proxy6_port = opts->proxy6.port;
	}
	if (bpf_map_update_elem(bpf_map__fd(sl->lb->maps.sl_sock_cfg), &zero, &cfg, BPF_ANY))
		return -errno;
	return ports_write(sl, opts);
}

/* The hooks, in an order that never leaves an enrolled socket without a
 * verdict program: sk_msg on the map first, sockops last. */
static int attach_hooks(struct sock_layer *sl, const struct sock_attach_opts *opts, int cg_fd,
			__u64 cg_id)
{
	struct bpf_program *sockops = sl->redir->progs.sl_sockops, *prog;
	int err;

	if (bpf_prog_attach(bpf_program__fd(sl->redir->progs.sl_sk_msg), sl->sockhash_fd,
			    BPF_SK_MSG_VERDICT, 0))
		return -errno;
	bpf_object__for_each_program(prog, sl->lb->obj)
	{
		err = link_cgroup(sl, prog, cg_fd, cg_id, opts->pin_dir);
		if (err) {
			log_error("sock", "attaching %s to %s failed: %s", bpf_program__name(prog),
				  opts->cgroup, strerror(-err));
			return err;
		}
	}
	if (!sock_redirect_enrols(opts->redirect, opts->n_ports) && !opts->proxy4.port &&
	    !opts->proxy6.port) {
		/* Nothing for sockops to do, and having one attached at all
		 * costs every connection in the cgroup. */
		unlink_program(sl, opts->pin_dir, sockops);
		return 0;
	}
	return link_cgroup(sl, sockops, cg_fd, cg_id, opts->pin_dir);
}

int sock_layer_attach(struct sock_layer *sl, const struct sock_attach_opts *opts)
{
	__u64 cg_id = cgroup_id(opts->cgroup);
	int cg_fd, err;

	if (!cg_id)
		return -errno;
	err = config_write(sl, opts);
	if (err)
		return err;
	cg_fd = open(opts->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return -errno;
	err = attach_hooks(sl, opts, cg_fd, cg_id);
	close(cg_fd);
	return err;
}

int sock_layer_detach(const char *pin_dir)
{
	return loader_unpin(pin_dir, SOCK_LINK_PREFIX);
}
