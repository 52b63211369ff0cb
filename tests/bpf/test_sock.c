/* Tests of the socket layer's userspace side (user/lib/sock.c): the
 * programs load over the load balancer's maps (one map per name), attach
 * to a cgroup through pinned links that a second attach swaps in place and
 * an attach to another cgroup moves, sockops only when it has work, a bad
 * cgroup refused with nothing changed, and detach removing the link pins.
 * The hooks themselves cannot be test-run (BPF_PROG_TEST_RUN refuses
 * sock_addr, sockops and sk_msg programs): tests/e2e/test_socket.sh runs
 * real sockets through them. Each case uses cgroups and a pin directory
 * of its own, removed at its end.
 * Usage: test_sock [name-substring]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "harness.h"
#include "lb.h"
#include "loader.h"
#include "log.h"
#include "sock.h"
#include "sock_lb.skel.h"
#include "sock_redir.skel.h"
#include "xdp_lb.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* What a case works with: the LB's maps, the socket programs over them,
 * two fresh cgroups and a pin directory. */
struct fixture {
	struct xdp_lb *lb;
	struct lb_maps maps;
	struct sock_layer sl;
	char cg[2][PATH_MAX];
	char pins[PATH_MAX];
};

static bool fixture_setup(struct fixture *f)
{
	struct loader_opts opts = { .maglev_size = 251, .ct_size = 1024, .version = 1 };
	char mount[PATH_MAX / 2];
	static int seq;

	memset(f, 0, sizeof(*f));
	if (!ASSERT_OK(cgroup2_mount(mount, sizeof(mount)), "cgroup2 mount found"))
		return false;
	for (int i = 0; i < 2; i++) {
		snprintf(f->cg[i], sizeof(f->cg[i]), "%s/sluice-test-sock-%d-%d-%d", mount,
			 (int)getpid(), seq, i);
		if (!ASSERT_OK(mkdir(f->cg[i], 0700) ? -errno : 0, "test cgroup made"))
			return false;
	}
	snprintf(f->pins, sizeof(f->pins), "/sys/fs/bpf/sluice-test-sock-%d-%d", (int)getpid(),
		 seq++);
	if (!ASSERT_OK(mkdir(f->pins, 0700) ? -errno : 0, "pin dir made"))
		return false;
	f->lb = loader_lb_load(&opts, &f->maps);
	if (!ASSERT_TRUE(f->lb, "LB loaded"))
		return false;
	return ASSERT_OK(sock_layer_load(&f->sl, f->lb->obj, 251), "socket layer loaded");
}

static void fixture_teardown(struct fixture *f)
{
	sock_layer_destroy(&f->sl);
	xdp_lb__destroy(f->lb);
	if (f->pins[0])
		loader_cleanup(f->pins);
	for (int i = 0; i < 2; i++) {
		if (f->cg[i][0])
			rmdir(f->cg[i]);
	}
}

/* Id of the program attached through the link pinned for @prog, 0 if none. */
static __u32 pinned_prog_id(struct fixture *f, const char *prog, __u64 *cgroup_id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX * 2];
	int fd;

	snprintf(path, sizeof(path), "%s/" SOCK_LINK_PREFIX "%s", f->pins, prog);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.prog_id = 0;
	close(fd);
	if (cgroup_id)
		*cgroup_id = info.cgroup.cgroup_id;
	return info.prog_id;
}

static __u32 prog_id(const struct bpf_program *prog)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return 0;
	return info.id;
}

/* The programs share the LB's maps: one sl_svc, one sl_maglev. */
static void test_maps_shared(void)
{
	struct fixture f;
	struct bpf_map_info a = {}, b = {};
	__u32 len = sizeof(a);

	if (fixture_setup(&f)) {
		bpf_obj_get_info_by_fd(bpf_map__fd(f.lb->maps.sl_svc), &a, &len);
		len = sizeof(b);
		bpf_obj_get_info_by_fd(bpf_map__fd(f.sl.lb->maps.sl_svc), &b, &len);
		ASSERT_EQ(b.id, a.id, "sock_lb uses the LB's sl_svc");
		len = sizeof(b);
		bpf_obj_get_info_by_fd(bpf_map__fd(f.sl.redir->maps.sl_sock_rev), &b, &len);
		len = sizeof(a);
		bpf_obj_get_info_by_fd(bpf_map__fd(f.lb->maps.sl_sock_rev), &a, &len);
		ASSERT_EQ(b.id, a.id, "sock_redir uses the LB's sl_sock_rev");
	}
	fixture_teardown(&f);
}

/* A first attach pins one link per hook; attaching new programs again
 * swaps them inside the same links; another cgroup moves them. */
static void test_attach_update_move(void)
{
	static const __u16 ports[] = { 8080 };
	struct sock_attach_opts opts = { .redirect = SL_REDIRECT_AUTO,
					 .ports = ports,
					 .n_ports = 1 };
	struct sock_layer second;
	struct fixture f;
	__u64 cg_id = 0;
	__u32 first_id;

	if (!fixture_setup(&f))
		goto out;
	opts.cgroup = f.cg[0];
	opts.pin_dir = f.pins;
	if (!ASSERT_OK(sock_layer_attach(&f.sl, &opts), "attach"))
		goto out;
	first_id = pinned_prog_id(&f, "sl_connect4", &cg_id);
	ASSERT_EQ(first_id, prog_id(f.sl.lb->progs.sl_connect4), "connect4 link pinned");
	ASSERT_EQ(cg_id, cgroup_id(f.cg[0]), "on the first cgroup");
	ASSERT_NEQ(pinned_prog_id(&f, "sl_sockops", NULL), 0, "sockops attached (auto, a port)");
	ASSERT_NEQ(pinned_prog_id(&f, "sl_orig_dst", NULL), 0, "getsockopt hook attached");

	if (!ASSERT_OK(sock_layer_load(&second, f.lb->obj, 251), "second load"))
		goto out;
	ASSERT_OK(sock_layer_attach(&second, &opts), "attach again (an upgrade)");
	ASSERT_EQ(pinned_prog_id(&f, "sl_connect4", NULL), prog_id(second.lb->progs.sl_connect4),
		  "the same pin now runs the new program");
	opts.cgroup = f.cg[1];
	ASSERT_OK(sock_layer_attach(&second, &opts), "attach to another cgroup");
	pinned_prog_id(&f, "sl_connect4", &cg_id);
	ASSERT_EQ(cg_id, cgroup_id(f.cg[1]), "the link moved to the second cgroup");
	sock_layer_destroy(&second);
out:
	fixture_teardown(&f);
}

/* With nothing to enrol (redirection off, or auto without ports) and no
 * proxy, sockops has nothing to do: its link goes, the others stay. A
 * proxy brings it back (L7 pairing). */
static void test_sockops_only_with_work(void)
{
	struct sock_attach_opts opts = { .redirect = SL_REDIRECT_ALL };
	struct fixture f;

	if (!fixture_setup(&f))
		goto out;
	opts.cgroup = f.cg[0];
	opts.pin_dir = f.pins;
	ASSERT_OK(sock_layer_attach(&f.sl, &opts), "attach, redirect all");
	ASSERT_NEQ(pinned_prog_id(&f, "sl_sockops", NULL), 0, "sockops attached");
	opts.redirect = SL_REDIRECT_AUTO;
	ASSERT_OK(sock_layer_attach(&f.sl, &opts), "attach, auto without ports");
	ASSERT_EQ(pinned_prog_id(&f, "sl_sockops", NULL), 0, "sockops removed: nothing to enrol");
	opts.redirect = SL_REDIRECT_OFF;
	ASSERT_OK(sock_layer_attach(&f.sl, &opts), "attach, redirect off");
	ASSERT_EQ(pinned_prog_id(&f, "sl_sockops", NULL), 0, "sockops link removed");
	ASSERT_NEQ(pinned_prog_id(&f, "sl_connect4", NULL), 0, "connect4 still attached");
	ASSERT_OK(addr_parse_endpoint("127.0.0.1:15001", &opts.proxy4), "proxy address");
	ASSERT_OK(sock_layer_attach(&f.sl, &opts), "attach, redirect off, proxy");
	ASSERT_NEQ(pinned_prog_id(&f, "sl_sockops", NULL), 0, "sockops back for the proxy");
out:
	fixture_teardown(&f);
}

/* A cgroup that does not exist: -ENOENT, no pin made, config unchanged. */
static void test_bad_cgroup(void)
{
	struct sock_attach_opts opts = { .redirect = SL_REDIRECT_ALL };
	struct sl_sock_cfg cfg = { .redirect_mode = 99 };
	struct fixture f;
	__u32 zero = 0;

	if (!fixture_setup(&f))
		goto out;
	bpf_map_update_elem(f.maps.sock_cfg, &zero, &cfg, 0);
	opts.cgroup = "/nonexistent/cgroup";
	opts.pin_dir = f.pins;
	ASSERT_EQ(sock_layer_attach(&f.sl, &opts), -ENOENT, "attach refused");
	ASSERT_EQ(pinned_prog_id(&f, "sl_connect4", NULL), 0, "no link pinned");
	memset(&cfg, 0, sizeof(cfg));
	bpf_map_lookup_elem(f.maps.sock_cfg, &zero, &cfg);
	ASSERT_EQ(cfg.redirect_mode, 99, "sl_sock_cfg untouched");
	opts.cgroup = f.pins; /* a directory, but not a cgroup */
	ASSERT_EQ(sock_layer_attach(&f.sl, &opts), -EMEDIUMTYPE, "a non-cgroup directory refused");
	bpf_map_lookup_elem(f.maps.sock_cfg, &zero, &cfg);
	ASSERT_EQ(cfg.redirect_mode, 99, "sl_sock_cfg still untouched");
	ASSERT_EQ(pinned_prog_id(&f, "sl_connect4", NULL), 0, "still no link pinned");
out:
	fixture_teardown(&f);
}

/* Detach removes every cgroup link pin and nothing else. */
static void test_detach(void)
{
	struct sock_attach_opts opts = { .redirect = SL_REDIRECT_AUTO };
	char path[PATH_MAX * 2];
	struct fixture f;

	if (!fixture_setup(&f))
		goto out;
	opts.cgroup = f.cg[0];
	opts.pin_dir = f.pins;
	ASSERT_OK(sock_layer_attach(&f.sl, &opts), "attach");
	snprintf(path, sizeof(path), "%s/keep", f.pins);
	ASSERT_OK(bpf_obj_pin(f.maps.svc, path) ? -errno : 0, "an unrelated pin");
	ASSERT_OK(sock_layer_detach(f.pins), "detach");
	ASSERT_EQ(pinned_prog_id(&f, "sl_connect4", NULL), 0, "connect4 link gone");
	ASSERT_EQ(pinned_prog_id(&f, "sl_sockops", NULL), 0, "sockops link gone");
	ASSERT_OK(access(path, F_OK) ? -errno : 0, "the unrelated pin stays");
	ASSERT_OK(sock_layer_detach(f.pins), "detach with nothing attached");
out:
	fixture_teardown(&f);
}

/* sl_redir_port holds exactly the ports of the last attach. */
static void test_redirect_ports(void)
{
	static const __u16 first[] = { 80, 8080, 9000 }, second[] = { 9000 };
	struct sock_attach_opts opts = { .redirect = SL_REDIRECT_AUTO };
	struct fixture f;
	__be16 port = htons(9000);
	__u8 one;

	if (!fixture_setup(&f))
		goto out;
	opts.cgroup = f.cg[0];
	opts.ports = first;
	opts.n_ports = 3;
	ASSERT_OK(sock_layer_attach(&f.sl, &opts), "attach with 3 ports");
	ASSERT_EQ(map_count(f.maps.redir_port), 3, "3 ports in sl_redir_port");
	opts.ports = second;
	opts.n_ports = 1;
	ASSERT_OK(sock_layer_attach(&f.sl, &opts), "attach with 1 port");
	ASSERT_EQ(map_count(f.maps.redir_port), 1, "1 port left");
	ASSERT_OK(bpf_map_lookup_elem(f.maps.redir_port, &port, &one), "it is 9000, network order");
out:
	fixture_teardown(&f);
}

static void test_redirect_mode_names(void)
{
	enum sl_redirect_mode mode = SL_REDIRECT_ALL;

	for (int m = SL_REDIRECT_OFF; m <= SL_REDIRECT_ALL; m++) {
		ASSERT_OK(sock_redirect_mode_parse(sock_redirect_mode_name(m), &mode),
			  "parse name");
		ASSERT_EQ(mode, m, "round trip");
	}
	ASSERT_EQ(sock_redirect_mode_parse("on", &mode), -EINVAL, "'on' refused");
	ASSERT_EQ(sock_redirect_mode_parse("", &mode), -EINVAL, "'' refused");
	ASSERT_EQ(mode, SL_REDIRECT_ALL, "mode untouched by a refused name");
}

static const struct test_case cases[] = {
	{ "maps_shared", test_maps_shared },
	{ "attach_update_move", test_attach_update_move },
	{ "sockops_only_with_work", test_sockops_only_with_work },
	{ "bad_cgroup", test_bad_cgroup },
	{ "detach", test_detach },
	{ "redirect_ports", test_redirect_ports },
	{ "redirect_mode_names", test_redirect_mode_names },
};

int main(int argc, char **argv)
{
	if (geteuid()) {
		fprintf(stderr, "setup: run as root (cgroups, pins under /sys/fs/bpf)\n");
		return 1;
	}
	log_set_level(LOG_WARN);
	return run_tests(cases, ARRAY_SIZE(cases), argc > 1 ? argv[1] : NULL, "bpf/sock");
}
