/* sluiced: the node agent. It loads Sluice's XDP load balancer (adopting
 * the maps and links already pinned under --bpffs, so a restart or upgrade
 * keeps every service and flow), attaches it to each --xdp interface,
 * publishes its desired state (state file, --config, or the maps as they
 * are), then serves the control API on a Unix socket, health checks and
 * Prometheus metrics until SIGTERM. Stopping leaves the data path in the
 * kernel, held by its pins; `--cleanup` removes it all. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <curl/curl.h>

#include "agent_api.h"
#include "agent_k8s.h"
#include "agent_sock.h"
#include "api.h"
#include "cgroup.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "sock.h"
#include "sluice/limits.h"
#include "sluice/maglev.h"
#include "xdp_lb.skel.h"

#define MAX_IFACES 16

struct agent_args {
	const char *bpffs;
	const char *ifaces[MAX_IFACES];
	int n_ifaces;
	bool generic;
	bool cleanup;
	const char *config;
	const char *socket;
	const char *state; /* NULL: next to the socket */
	const char *metrics; /* NULL: off */
	struct agent_sock_args sock;
	struct loader_opts load;
	char state_buf[4096];
	bool k8s;
	const char *kubeconfig; /* NULL: in-cluster credentials */
	struct k8s_node node;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluiced [OPTIONS]\n"
		"Load the Sluice data path, attach it, pin it under --bpffs, and serve the\n"
		"control API until SIGTERM (which leaves the data path in place).\n\n"
		"  --xdp IFACE[,IFACE]  attach the XDP load balancer to these interfaces\n"
		"                       (repeatable; an empty list attaches none)\n"
		"  --xdp-generic        allow generic (skb) XDP where native is missing\n"
		"  --bpffs DIR          pin directory (default %s)\n"
		"  --config FILE        desired services (YAML, docs/config.md); SIGHUP re-reads it\n"
		"  --socket PATH        control API socket (default %s, or $%s)\n"
		"  --state FILE         where the desired state is saved (default: the socket\n"
		"                       path with .state.yaml for .sock)\n"
		"  --metrics ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
		"  --cgroup DIR         attach the socket layer (connect-time load balancing,\n"
		"                       L7 steering, socket redirection) to this cgroup v2\n"
		"                       directory and everything under it (\"\": none)\n"
		"  --redirect MODE      socket-to-socket redirection: off, auto (default:\n"
		"                       loopback pairs to --redirect-ports) or all (every TCP\n"
		"                       socket in the cgroup); on only if the self-test passes\n"
		"  --redirect-ports P,P server ports whose loopback connections auto mode\n"
		"                       enrols (none by default: enrolling costs connection setup)\n"
		"  --l7-proxy ADDR:PORT sluice-proxy's listener, one per family: connections\n"
		"                       to L7 services are steered there\n"
		"  --k8s                follow Services, EndpointSlices and Pods of the\n"
		"                       Kubernetes API (docs/kubernetes.md); in-cluster\n"
		"                       credentials unless --kubeconfig\n"
		"  --kubeconfig FILE    credentials and server for --k8s (default $KUBECONFIG)\n"
		"  --k8s-node-name NAME this node, for traffic policy Local (default\n"
		"                       $NODE_NAME, else the host name)\n"
		"  --k8s-node-ip IP[,IP] this node's addresses: node ports are served on\n"
		"                       them (repeatable; default $NODE_IP)\n"
		"  --maglev-size N      Maglev table size, a prime (default %u)\n"
		"  --ct-size N          conntrack entries per family (default %u)\n"
		"  --datapath-version N build identity of the program (default %u)\n"
		"  --cleanup            detach and remove everything under --bpffs, the state\n"
		"                       file and the socket, then exit\n"
		"  --log-level LEVEL    error, warn, info (default) or debug\n"
		"  -h, --help           this text\n",
		LB_DEFAULT_PIN_DIR, API_DEFAULT_SOCKET, API_SOCKET_ENV, SL_MAGLEV_DEFAULT_SIZE,
		SL_CT_DEFAULT_SIZE, SL_DATAPATH_VERSION);
}

static int parse_u32(const char *text, const char *what, __u32 *out)
{
	char *end;
	unsigned long value;

	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno || *end || !*text || value > UINT32_MAX || text[0] == '-') {
		fprintf(stderr, "Error: %s: not a number: '%s'\n", what, text);
		return -EINVAL;
	}
	*out = (__u32)value;
	return 0;
}

static int parse_level(const char *text)
{
	enum log_level level;

	if (log_parse_level(text, &level)) {
		fprintf(stderr, "Error: --log-level: unknown level '%s'\n", text);
		return -EINVAL;
	}
	log_set_level(level);
	return 0;
}

static int parse_redirect(const char *text, enum sl_redirect_mode *mode)
{
	if (!sock_redirect_mode_parse(text, mode))
		return 0;
	fprintf(stderr, "Error: --redirect: '%s' is not off, auto or all\n", text);
	return -EINVAL;
}

/* --redirect-ports 8080,9000: 1..65535 each, at most SL_REDIR_PORTS_MAX. */
static int parse_ports(const char *text, struct agent_sock_args *sock)
{
	const char *p = text;
	char *end;

	sock->n_ports = 0;
	do {
		unsigned long port;

		errno = 0;
		port = strtoul(p, &end, 10);
		if (errno || end == p || !port || port > 65535 || (*end && *end != ',') ||
		    sock->n_ports == SL_REDIR_PORTS_MAX) {
			fprintf(stderr,
				"Error: --redirect-ports: '%s' is not a list of at most %d ports "
				"(1-65535, comma-separated)\n",
				text, SL_REDIR_PORTS_MAX);
			return -EINVAL;
		}
		sock->ports[sock->n_ports++] = (__u16)port;
		p = end + 1;
	} while (*end);
	return 0;
}

/* --l7-proxy ADDR:PORT, at most one per family. */
static int parse_proxy(const char *text, struct agent_sock_args *sock)
{
	struct addr_port ap;
	struct addr_port *slot;

	if (addr_parse_endpoint(text, &ap) || !ap.port) {
		fprintf(stderr, "Error: --l7-proxy: '%s' is not ADDR:PORT\n", text);
		return -EINVAL;
	}
	slot = ap.family == SL_AF_INET ? &sock->proxy4 : &sock->proxy6;
	if (slot->port) {
		fprintf(stderr, "Error: --l7-proxy: one listener per address family\n");
		return -EINVAL;
	}
	*slot = ap;
	return 0;
}

/* --cgroup must name a cgroup v2 directory: refused before anything loads. */
static int check_cgroup(const char *dir)
{
	char mount[PATH_MAX];

	if (cgroup_id(dir))
		return 0;
	if (errno != EMEDIUMTYPE || cgroup2_mount(mount, sizeof(mount)))
		fprintf(stderr, "Error: --cgroup %s: %s\n", dir, strerror(errno));
	else
		fprintf(stderr,
			"Error: --cgroup %s: not a cgroup v2 directory (cgroup2 is at %s)\n", dir,
			mount);
	return -EINVAL;
}

/* --xdp eth0 or --xdp eth0,eth1 (a DaemonSet passes one variable; "" is none). */
static int add_ifaces(struct agent_args *args, char *list)
{
	for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		if (args->n_ifaces == MAX_IFACES) {
			fprintf(stderr, "Error: at most %d --xdp interfaces\n", MAX_IFACES);
			return -EINVAL;
		}
		args->ifaces[args->n_ifaces++] = name;
	}
	return 0;
}

/* Defaults from the environment a DaemonSet's downward API sets. */
static int k8s_defaults(struct agent_args *args)
{
	const char *name = getenv("NODE_NAME"), *ip = getenv("NODE_IP");
	char copy[256];

	if (!args->node.name[0] && name)
		snprintf(args->node.name, sizeof(args->node.name), "%s", name);
	if (!args->node.name[0])
		gethostname(args->node.name, sizeof(args->node.name) - 1);
	if (!args->kubeconfig && getenv("KUBECONFIG") && *getenv("KUBECONFIG"))
		args->kubeconfig = getenv("KUBECONFIG");
	if (args->node.n_ips || !ip || !*ip)
		return 0;
	snprintf(copy, sizeof(copy), "%s", ip);
	return agent_k8s_parse_node_ips(&args->node, copy);
}

/* The state file next to the socket: /run/sluice/sluiced.sock gives
 * /run/sluice/sluiced.state.yaml, so instances with their own socket
 * have their own state. */
static void default_state_path(struct agent_args *args)
{
	size_t len = strlen(args->socket);

	if (len > 5 && !strcmp(args->socket + len - 5, ".sock"))
		len -= 5;
	snprintf(args->state_buf, sizeof(args->state_buf), "%.*s.state.yaml", (int)len,
		 args->socket);
	args->state = args->state_buf;
}

/* Returns 0, or 2 for a usage error (the exit status). */
static int parse_args(int argc, char **argv, struct agent_args *args)
{
	enum {
		O_XDP = 256,
		O_GENERIC,
		O_BPFFS,
		O_MAGLEV,
		O_CT,
		O_VERSION,
		O_CLEANUP,
		O_LOG,
		O_CONFIG,
		O_SOCKET,
		O_STATE,
		O_METRICS,
		O_CGROUP,
		O_REDIRECT,
		O_L7_PROXY,
		O_REDIRECT_PORTS,
		O_SELFTEST_FAULT,
		O_K8S,
		O_KUBECONFIG,
		O_NODE_NAME,
		O_NODE_IP
	};
	static const struct option opts[] = {
		{ "xdp", required_argument, NULL, O_XDP },
		{ "xdp-generic", no_argument, NULL, O_GENERIC },
		{ "bpffs", required_argument, NULL, O_BPFFS },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "state", required_argument, NULL, O_STATE },
		{ "metrics", required_argument, NULL, O_METRICS },
		{ "cgroup", required_argument, NULL, O_CGROUP },
		{ "redirect", required_argument, NULL, O_REDIRECT },
		{ "l7-proxy", required_argument, NULL, O_L7_PROXY },
		{ "redirect-ports", required_argument, NULL, O_REDIRECT_PORTS },
		{ "redirect-selftest-fault", required_argument, NULL, O_SELFTEST_FAULT },
		{ "k8s", no_argument, NULL, O_K8S },
		{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
		{ "k8s-node-name", required_argument, NULL, O_NODE_NAME },
		{ "k8s-node-ip", required_argument, NULL, O_NODE_IP },
		{ "maglev-size", required_argument, NULL, O_MAGLEV },
		{ "ct-size", required_argument, NULL, O_CT },
		{ "datapath-version", required_argument, NULL, O_VERSION },
		{ "cleanup", no_argument, NULL, O_CLEANUP },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int opt, err = 0;

	while (!err && (opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case O_XDP:
			err = add_ifaces(args, optarg);
			break;
		case O_K8S:
			args->k8s = true;
			break;
		case O_KUBECONFIG:
			args->kubeconfig = optarg;
			break;
		case O_NODE_NAME:
			snprintf(args->node.name, sizeof(args->node.name), "%s", optarg);
			break;
		case O_NODE_IP:
			err = agent_k8s_parse_node_ips(&args->node, optarg);
			break;
		case O_GENERIC:
			args->generic = true;
			break;
		case O_BPFFS:
			args->bpffs = optarg;
			break;
		case O_CONFIG:
			args->config = optarg;
			break;
		case O_SOCKET:
			args->socket = optarg;
			break;
		case O_STATE:
			args->state = optarg;
			break;
		case O_METRICS:
			args->metrics = optarg;
			break;
		case O_CGROUP:
			args->sock.cgroup = *optarg ? optarg : NULL;
			break;
		case O_REDIRECT:
			err = parse_redirect(optarg, &args->sock.redirect);
			break;
		case O_L7_PROXY:
			err = parse_proxy(optarg, &args->sock);
			break;
		case O_REDIRECT_PORTS:
			err = parse_ports(optarg, &args->sock);
			break;
		case O_SELFTEST_FAULT:
			err = parse_u32(optarg, "--redirect-selftest-fault",
					&args->sock.selftest_fault);
			break;
		case O_MAGLEV:
			err = parse_u32(optarg, "--maglev-size", &args->load.maglev_size);
			break;
		case O_CT:
			err = parse_u32(optarg, "--ct-size", &args->load.ct_size);
			break;
		case O_VERSION:
			err = parse_u32(optarg, "--datapath-version", &args->load.version);
			break;
		case O_CLEANUP:
			args->cleanup = true;
			break;
		case O_LOG:
			err = parse_level(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!err && optind < argc) {
		fprintf(stderr, "Error: unexpected argument '%s'\n", argv[optind]);
		err = -EINVAL;
	}
	if (!err && args->sock.cgroup)
		err = check_cgroup(args->sock.cgroup);
	if (!err && args->k8s)
		err = k8s_defaults(args);
	args->socket = api_socket_path(args->socket);
	if (!args->state)
		default_state_path(args);
	return err ? 2 : 0;
}

/* ---- the control socket ---- */

/* mkdir -p for the socket's directory, 0700: only root reaches the socket. */
static int make_parent_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (!mkdir(dir, 0700) || errno == EEXIST)
		return 0;
	if (errno != ENOENT || make_parent_dir(dir))
		return -errno;
	return mkdir(dir, 0700) ? -errno : 0;
}

/* An exclusive flock on @path, opened with @flags: the fd that holds it,
 * @busy when another process does, or -errno. */
static int lock_exclusive(const char *path, int flags, int busy)
{
	int fd = open(path, flags | O_CLOEXEC, 0600), err;

	if (fd < 0)
		return -errno;
	if (!flock(fd, LOCK_EX | LOCK_NB))
		return fd;
	err = errno == EWOULDBLOCK ? busy : -errno;
	close(fd);
	return err;
}

/* One agent per socket: a lock file next to it, held while the agent runs
 * (checking for a live socket alone would let two agents that start at
 * once both unlink and bind). Returns the lock's fd or -EADDRINUSE. */
static int socket_lock(const char *path)
{
	char lock[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];

	snprintf(lock, sizeof(lock), "%s.lock", path);
	return lock_exclusive(lock, O_RDWR | O_CREAT, -EADDRINUSE);
}

/* One agent per pin directory too: two agents with sockets of their own
 * on one bpffs would each hand out ids from their own snapshot. Returns
 * the locked directory's fd, or -EBUSY when another agent holds it. */
static int pins_lock(const char *dir)
{
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return lock_exclusive(dir, O_RDONLY | O_DIRECTORY, -EBUSY);
}

/* A listening socket at @path that only root can connect to. */
static int socket_bind(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old_umask;
	int fd, err = 0;

	strcpy(sun.sun_path, path);
	unlink(path); /* a stale socket of an agent that died */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Bound under a 0177 umask: never reachable by others, not even briefly. */
	old_umask = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 64))
		err = -errno;
	umask(old_umask);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* The API socket's fd, with its lock's in @lock_fd; refuses to steal the
 * socket of another agent. */
static int api_listen(const char *path, int *lock_fd)
{
	int fd, err;

	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	err = make_parent_dir(path);
	if (err)
		return err;
	*lock_fd = socket_lock(path);
	if (*lock_fd < 0)
		return *lock_fd;
	fd = socket_bind(path);
	if (fd < 0) {
		close(*lock_fd);
		*lock_fd = -1;
	}
	return fd;
}

static void reply_and_close(int fd, struct json_object *reply)
{
	/* A client that stops reading must not hold the agent: the whole reply
	 * within the request timeout. */
	int err = api_send_within(fd, reply, API_REQUEST_TIMEOUT_MS);

	if (err)
		log_debug("api", "the client left before the reply: %s", strerror(-err));
	json_object_put(reply);
	close(fd);
}

/* Read one request from a new client, answer it, close. */
static void serve_api_client(struct agent *a, int listen_fd)
{
	struct json_object *req, *reply;
	char why[256];
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC), err;

	if (fd < 0)
		return;
	err = api_recv(fd, API_REQUEST_TIMEOUT_MS, &req, why, sizeof(why));
	if (err == -EMSGSIZE)
		reply = agent_api_error(2, "request larger than %u bytes", API_MAX_MESSAGE);
	else if (err == -EPROTO)
		reply = agent_api_error(2, "malformed request: %s", why);
	else if (err)
		reply = agent_api_error(2, "no request read: %s", strerror(-err));
	else
		reply = agent_api_handle(a, req);
	if (err) {
		a->stats.api_requests++;
		a->stats.api_errors++;
		log_warn("api", "%s",
			 json_object_get_string(json_object_object_get(reply, "error")));
	} else {
		json_object_put(req);
	}
	/* On disk before the caller hears "ok": a crash after the reply must
	 * not undo an acknowledged change at the next start. */
	if (agent_save_state(a) && json_object_get_boolean(json_object_object_get(reply, "ok")))
		json_object_object_add(reply, "warning",
				       json_object_new_string("published, but the state file could "
							      "not be written (see the agent's "
							      "log): a restart would lose it"));
	reply_and_close(fd, reply);
}

static int run_cleanup(const struct agent_args *args)
{
	int lock = socket_lock(args->socket), pins = pins_lock(args->bpffs), err;

	/* A running agent holds the links: stop it first, or they stay. Both
	 * locks are held to the end, so no agent starts meanwhile. */
	if (lock == -EADDRINUSE || pins == -EBUSY) {
		log_error("agent", "a sluiced runs on %s: stop it first (SIGTERM), then --cleanup",
			  lock == -EADDRINUSE ? args->socket : args->bpffs);
		err = -EBUSY;
	} else {
		unlink(args->socket); /* left by an agent that was killed */
		err = loader_cleanup(args->bpffs);
		if (err)
			log_error("agent", "cleanup of %s failed: %s", args->bpffs, strerror(-err));
	}
	if (!err && unlink(args->state) && errno != ENOENT)
		log_warn("agent", "cannot remove the state file %s: %s", args->state,
			 strerror(errno));
	if (!err)
		log_info("agent",
			 "removed every pin under %s and the state file %s; the data path is "
			 "detached",
			 args->bpffs, args->state);
	if (lock >= 0)
		close(lock);
	if (pins >= 0)
		close(pins);
	return err ? 1 : 0;
}

/* ---- signals and the loop ---- */

static int signals_open(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void reload_on_hup(struct agent *a)
{
	struct apply_summary sum;
	struct agent_error e;

	log_info("agent", "SIGHUP: reloading %s", a->config_path ? a->config_path : "(no config)");
	if (agent_reload(a, &sum, &e))
		log_error("agent", "reload refused, the previous state stays: %s", e.message);
}

/* Returns true when the agent must stop. */
static bool handle_signal(struct agent *a, int sig_fd)
{
	struct signalfd_siginfo si;

	if (read(sig_fd, &si, sizeof(si)) != sizeof(si))
		return false;
	if (si.ssi_signo == SIGHUP) {
		reload_on_hup(a);
		return false;
	}
	log_info("agent", "signal %u: stopping; the data path stays in place", si.ssi_signo);
	return true;
}

static void drain_health_events(struct agent *a)
{
	struct health_event ev;

	while (health_next_event(a->health, &ev) == 1)
		agent_health_changed(a, &ev);
	agent_health_publish(a);
}

enum { FD_API, FD_SIGNAL, FD_HEALTH, FD_METRICS, FD_POLICY, FD_K8S, FD_COUNT };

static int render_k8s(FILE *out, const void *agent)
{
	return agent_k8s_metrics(out, agent);
}

static void event_loop(struct agent *a, int api_fd, int sig_fd, struct metrics_server *metrics)
{
	struct metrics_source src = { .maps = a->maps,
				      .health = a->health,
				      .stats = &a->stats,
				      .version = AGENT_VERSION,
				      .extra = render_k8s,
				      .extra_ctx = a };
	struct pollfd fds[FD_COUNT] = {
		[FD_API] = { .fd = api_fd, .events = POLLIN },
		[FD_SIGNAL] = { .fd = sig_fd, .events = POLLIN },
		[FD_HEALTH] = { .fd = health_event_fd(a->health), .events = POLLIN },
		[FD_METRICS] = { .fd = metrics ? metrics_fd(metrics) : -1, .events = POLLIN },
		[FD_POLICY] = { .fd = agent_policy_events_fd(&a->policy), .events = POLLIN },
		[FD_K8S] = { .fd = agent_k8s_fd(a), .events = POLLIN },
	};

	for (;;) {
		if (poll(fds, FD_COUNT, -1) < 0 && errno != EINTR) {
			log_error("agent", "poll: %s", strerror(errno));
			return;
		}
		if ((fds[FD_SIGNAL].revents & POLLIN) && handle_signal(a, sig_fd)) {
			agent_save_state(a);
			return;
		}
		if (fds[FD_HEALTH].revents & POLLIN)
			drain_health_events(a);
		if (fds[FD_API].revents & POLLIN)
			serve_api_client(a, api_fd);
		if (fds[FD_METRICS].revents & POLLIN)
			metrics_serve_one(metrics, metrics_render_agent, &src);
		if (fds[FD_POLICY].revents & POLLIN)
			agent_policy_events_read(&a->policy);
		if (fds[FD_K8S].revents & POLLIN)
			agent_k8s_publish(a);
		agent_save_state(a);
	}
}

/* ---- start-up ---- */

static struct xdp_lb *load_and_attach(struct agent_args *args, struct lb_maps *maps,
				      struct agent_sock_status *sock_status)
{
	struct xdp_lb *skel;
	int err = 0;

	args->load.pin_dir = args->bpffs;
	skel = loader_lb_load(&args->load, maps);
	if (!skel) {
		log_error("agent", "loading the XDP load balancer failed: %s", strerror(errno));
		return NULL;
	}
	for (int i = 0; i < args->n_ifaces && !err; i++) {
		err = loader_attach_xdp(skel, args->bpffs, args->ifaces[i], args->generic);
		if (err)
			log_error("agent", "attaching to %s failed: %s", args->ifaces[i],
				  strerror(-err));
	}
	/* The old program no longer runs: take what it wrote since the copy. */
	if (!err) {
		err = migrate_finish(args->bpffs);
		if (err)
			log_error("agent", "moving entries from the old maps failed: %s",
				  strerror(-err));
	}
	if (!err)
		err = agent_sock_start(&args->sock, skel->obj, args->load.maglev_size, args->bpffs,
				       sock_status);
	if (err) {
		xdp_lb__destroy(skel);
		return NULL;
	}
	log_info("agent", "data path v%u ready: maps and links pinned under %s", args->load.version,
		 args->bpffs);
	return skel;
}

/* The credentials --k8s needs, read before anything loads: a pod without
 * its service account must fail at once, not after attaching. */
static int k8s_credentials_check(const struct agent_args *args)
{
	struct k8s_creds creds;
	int err = agent_k8s_credentials(args->kubeconfig, &creds);

	if (!err)
		k8s_creds_free(&creds);
	return err;
}

/* What the agent listens on; the lock makes the socket its own. */
struct listeners {
	int api_fd, lock_fd, pins_fd;
	struct metrics_server *metrics; /* NULL without --metrics */
};

static void close_listeners(const struct agent_args *args, struct listeners *l)
{
	metrics_close(l->metrics);
	if (l->api_fd >= 0) {
		close(l->api_fd);
		unlink(args->socket); /* before the lock goes: it is still ours */
	}
	if (l->lock_fd >= 0)
		close(l->lock_fd);
	if (l->pins_fd >= 0)
		close(l->pins_fd);
}

static int open_listeners(const struct agent_args *args, struct listeners *l)
{
	char why[256];

	*l = (struct listeners){ .lock_fd = -1, .pins_fd = -1 };
	l->api_fd = api_listen(args->socket, &l->lock_fd);
	if (l->api_fd == -EADDRINUSE)
		log_error("agent", "another sluiced serves %s; stop it or pass --socket",
			  args->socket);
	else if (l->api_fd < 0)
		log_error("agent", "cannot listen on %s: %s", args->socket, strerror(-l->api_fd));
	if (l->api_fd < 0)
		return l->api_fd;
	l->pins_fd = pins_lock(args->bpffs);
	if (l->pins_fd < 0) {
		log_error("agent", "%s: %s", args->bpffs,
			  l->pins_fd == -EBUSY ? "another sluiced uses it; stop it or pass --bpffs"
					       : strerror(-l->pins_fd));
		close_listeners(args, l);
		return -EBUSY;
	}
	if (!args->metrics)
		return 0;
	l->metrics = metrics_listen(args->metrics, why, sizeof(why));
	if (!l->metrics) {
		log_error("agent", "--metrics %s: %s", args->metrics, why);
		close_listeners(args, l);
		return -EINVAL;
	}
	log_info("agent", "metrics at http://%s/metrics", args->metrics);
	return 0;
}

static int run_agent(struct agent_args *args)
{
	struct health *health = NULL;
	int sig_fd = -1, status = 1;
	struct listeners listen;
	struct agent_error e;
	struct agent_sock_status sock_status;
	struct lb_maps maps;
	struct xdp_lb *skel;
	struct agent a;

	/* The socket first: a second agent must be refused before it touches
	 * the data path or the first one's state file. Requests that arrive
	 * during the start wait in the listen queue. */
	if (open_listeners(args, &listen))
		return 1;
	if (args->k8s && k8s_credentials_check(args)) {
		close_listeners(args, &listen);
		return 1;
	}
	sig_fd = signals_open();
	skel = sig_fd < 0 ? NULL : load_and_attach(args, &maps, &sock_status);
	if (!skel)
		goto out_listeners;
	health = health_start();
	if (!health || agent_init(&a, &maps, health, args->config, args->state)) {
		log_error("agent", "cannot start: %s", strerror(errno));
		goto out_skel;
	}
	a.sock = &sock_status;
	if (listen.metrics)
		metrics_set_ready(listen.metrics, agent_ready, &a);
	if (args->k8s && agent_k8s_start(&a, args->kubeconfig, &args->node))
		goto out_agent;
	if (agent_restore(&a, &e)) {
		log_error("agent", "%s%s%s", e.message, e.hint[0] ? "; " : "", e.hint);
		goto out_agent;
	}
	log_info("agent", "sluiced %s serving %s (state %s)", AGENT_VERSION, args->socket,
		 args->state);
	event_loop(&a, listen.api_fd, sig_fd, listen.metrics);
	status = 0;
out_agent:
	agent_k8s_stop(&a);
	agent_fini(&a);
out_skel:
	health_stop(health);
	/* Destroying the skeleton closes our fds only: pins keep it all alive. */
	xdp_lb__destroy(skel);
out_listeners:
	if (sig_fd >= 0)
		close(sig_fd);
	close_listeners(args, &listen);
	return status;
}

int main(int argc, char **argv)
{
	struct agent_args args = {
		.bpffs = LB_DEFAULT_PIN_DIR,
		.sock = { .redirect = SL_REDIRECT_AUTO },
		.load = { .maglev_size = SL_MAGLEV_DEFAULT_SIZE,
			  .ct_size = SL_CT_DEFAULT_SIZE,
			  .version = SL_DATAPATH_VERSION },
	};
	int status = parse_args(argc, argv, &args);

	if (status)
		return status;
	/* Keep freed memory in the heap: every change allocates and frees
	 * table-sized buffers (256 KiB at 65537 slots), and fresh pages from
	 * mmap cost a fault each, dear on a VM with shadow paging. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	log_route_libbpf();
	/* Before any thread: libcurl's global state is not thread-safe to set up. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (args.cleanup)
		return run_cleanup(&args);
	return run_agent(&args);
}
