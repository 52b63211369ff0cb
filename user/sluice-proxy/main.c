/* sluice-proxy: the node's L7 (HTTP/1.1) proxy. Reads the same YAML as
 * the agent (services marked l7: http, their `http:` routes, groups and
 * access rules, and the `proxy:` settings), starts one worker thread per
 * CPU, serves Prometheus metrics, re-reads the config on SIGHUP without
 * dropping a request, and on SIGTERM stops accepting and lets in-flight
 * requests finish. docs/proxy.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "metrics_http.h"
#include "proxy.h"

#define MAX_WORKERS 64

/* Command-line settings; each given one overrides the config's. */
struct options {
	const char *config;
	const char *listen[4];
	unsigned int n_listen;
	int workers; /* -1: the config's */
	const char *metrics;
	const char *access_log;
	int access_log_json; /* -1: the config's */
	const char *default_service;
	bool check;
	bool takeover; /* share the listen addresses with a running proxy */
};

struct proxy {
	struct options opt;
	struct px_worker *workers;
	pthread_t *threads;
	int n_workers; /* initialised */
	int n_started; /* of them, running in their thread */
	uint64_t generation;
	struct metrics_server *metrics;
	char metrics_addr[ADDR_STR_MAX]; /* "" without metrics */
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluice-proxy --config FILE [OPTIONS]\n"
		"  -c, --config FILE       the Sluice YAML (services with l7: http, proxy:)\n"
		"  -l, --listen ADDR:PORT  accept here (repeatable; default the config's,\n"
		"                          else 127.0.0.1:15001)\n"
		"  -w, --workers N         worker threads (default the config's, 0 = one per CPU)\n"
		"      --metrics ADDR:PORT Prometheus endpoint (GET /metrics)\n"
		"      --access-log PATH   one line per request; '-' = stderr\n"
		"      --access-log-json   JSON lines\n"
		"      --default-service NAME  for connections the socket layer did not steer\n"
		"      --log-level LEVEL   error, warn, info (default), debug\n"
		"      --check             validate the config and exit\n"
		"      --takeover          start beside a running sluice-proxy on the same\n"
		"                          addresses (an upgrade: then SIGTERM the old one)\n"
		"Signals: SIGHUP re-reads the config (and reopens the access log);\n"
		"SIGTERM/SIGINT stop accepting, finish in-flight requests (10 s), exit.\n");
}

/* The host's addresses: clients from them are "host" for access rules. */
static int local_addresses(struct px_conf *conf)
{
	struct ifaddrs *ifs, *i;
	size_t n = 0;

	if (getifaddrs(&ifs))
		return -errno;
	for (i = ifs; i; i = i->ifa_next)
		n++;
	conf->local = calloc(n ? n : 1, sizeof(*conf->local));
	if (!conf->local) {
		freeifaddrs(ifs);
		return -ENOMEM;
	}
	for (i = ifs; i; i = i->ifa_next) {
		struct pol_prefix *p = &conf->local[conf->n_local];

		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			p->family = SL_AF_INET;
			p->prefixlen = 32;
			p->addr[0] = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
			conf->n_local++;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			p->family = SL_AF_INET6;
			p->prefixlen = 128;
			memcpy(p->addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
			conf->n_local++;
		}
	}
	freeifaddrs(ifs);
	return 0;
}

static int apply_options(const struct options *o, struct cfg_proxy *p)
{
	for (unsigned int i = 0; i < o->n_listen; i++)
		if (addr_parse_endpoint(o->listen[i], &p->listen[i])) {
			log_error("proxy", "--listen: '%s' is not ADDR:PORT", o->listen[i]);
			return -EINVAL;
		}
	if (o->n_listen)
		p->n_listen = o->n_listen;
	if (o->workers >= 0)
		p->workers = o->workers;
	if (o->access_log)
		snprintf(p->access_log, sizeof(p->access_log), "%s", o->access_log);
	if (o->access_log_json >= 0)
		p->access_log_json = o->access_log_json;
	if (o->default_service)
		snprintf(p->default_service, sizeof(p->default_service), "%s", o->default_service);
	return 0;
}

static int open_access_log(struct px_conf *conf)
{
	const char *path = conf->cfg.proxy.access_log;

	conf->log_fd = -1;
	if (!path[0])
		return 0;
	if (!strcmp(path, "-")) {
		conf->log_fd = STDERR_FILENO;
		return 0;
	}
	conf->log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (conf->log_fd < 0) {
		log_error("proxy", "cannot open the access log %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Read and check the config; NULL (logged) when it cannot be used. */
static struct px_conf *conf_load(struct proxy *px)
{
	struct px_conf *conf = calloc(1, sizeof(*conf));
	struct cfg_error err;
	char msg[700];

	if (!conf)
		return NULL;
	conf->log_fd = -1;
	atomic_init(&conf->refs, 1);
	conf->generation = ++px->generation;
	if (cfg_load_file(px->opt.config, &conf->cfg, &err)) {
		cfg_error_format(&err, msg, sizeof(msg));
		log_error("proxy", "config refused: %s", msg);
		free(conf);
		return NULL;
	}
	if (apply_options(&px->opt, &conf->cfg.proxy) || local_addresses(conf) ||
	    (!px->opt.check && open_access_log(conf))) {
		px_conf_put(conf);
		return NULL;
	}
	return conf;
}

static int conf_check_default(const struct px_conf *conf)
{
	const char *name = conf->cfg.proxy.default_service;

	if (!name[0])
		return 0;
	for (size_t i = 0; i < conf->cfg.n_services; i++)
		if (conf->cfg.services[i].l7 && !strcmp(conf->cfg.services[i].name, name))
			return 0;
	log_error("proxy", "default service '%s' is not an l7: http service of the config", name);
	return -EINVAL;
}

static int n_workers_for(const struct cfg_proxy *p)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (p->workers)
		return p->workers > MAX_WORKERS ? MAX_WORKERS : (int)p->workers;
	return cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
}

static int workers_start(struct proxy *px, struct px_conf *conf)
{
	int err;

	px->n_workers = n_workers_for(&conf->cfg.proxy);
	px->workers = calloc(px->n_workers, sizeof(*px->workers));
	px->threads = calloc(px->n_workers, sizeof(*px->threads));
	if (!px->workers || !px->threads)
		return -ENOMEM;
	for (int i = 0; i < px->n_workers; i++) {
		atomic_fetch_add(&conf->refs, 1);
		err = px_worker_init(&px->workers[i], i, conf);
		if (err) {
			px->n_workers = i + 1; /* so that it is freed too */
			return err;
		}
	}
	for (int i = 0; i < px->n_workers; i++) {
		err = pthread_create(&px->threads[i], NULL, px_worker_run, &px->workers[i]);
		if (err)
			return -err;
		px->n_started++;
	}
	return 0;
}

static void reload(struct proxy *px, const struct cfg_proxy *running)
{
	struct px_conf *conf = conf_load(px);

	if (!conf || conf_check_default(conf)) {
		log_error("proxy", "reload refused: the running config stays");
		px_conf_put(conf);
		return;
	}
	if (conf->cfg.proxy.n_listen != running->n_listen ||
	    memcmp(conf->cfg.proxy.listen, running->listen, sizeof(running->listen)) ||
	    n_workers_for(&conf->cfg.proxy) != px->n_workers)
		log_warn("proxy", "listeners and workers change only with a restart");
	for (int i = 0; i < px->n_workers; i++) {
		atomic_fetch_add(&conf->refs, 1);
		px_worker_post_conf(&px->workers[i], conf);
	}
	log_info("proxy", "config %s reloaded (generation %llu)", px->opt.config,
		 (unsigned long long)conf->generation);
	px_conf_put(conf);
}

static int render_metrics(FILE *out, const void *ctx)
{
	const struct proxy *px = ctx;
	struct pm_worker *stats[MAX_WORKERS];

	for (int i = 0; i < px->n_workers; i++)
		stats[i] = &px->workers[i].stats;
	return pm_render(out, stats, px->n_workers);
}

static int signals_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Blocked before the workers start, so they inherit the mask. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

/* The metrics listener (--metrics, else proxy.metrics), if any. When
 * taking over from a running proxy, its address is free only once the
 * old proxy exits: px->metrics_addr is then kept and tried again. */
static int metrics_open(struct proxy *px, const struct cfg_proxy *p)
{
	const char *where = px->opt.metrics;
	char why[256];

	if (!where && !p->metrics.port)
		return 0;
	if (!where)
		addr_format_endpoint(&p->metrics, px->metrics_addr, sizeof(px->metrics_addr));
	else
		snprintf(px->metrics_addr, sizeof(px->metrics_addr), "%s", where);
	px->metrics = metrics_listen(px->metrics_addr, why, sizeof(why));
	if (px->metrics || (errno == EADDRINUSE && px->opt.takeover)) {
		if (!px->metrics)
			log_info("proxy", "%s: retrying until the old proxy lets go", why);
		return 0;
	}
	log_error("proxy", "%s", why);
	return -errno;
}

static void metrics_retry(struct proxy *px)
{
	char why[256];

	px->metrics = metrics_listen(px->metrics_addr, why, sizeof(why));
	if (px->metrics)
		log_info("proxy", "metrics on %s", px->metrics_addr);
}

/* Signals and scrapes until SIGTERM or SIGINT. */
static void main_loop(struct proxy *px, int sig_fd, struct cfg_proxy *running)
{
	struct pollfd fds[2] = { { .fd = sig_fd, .events = POLLIN }, { .fd = -1 } };
	struct signalfd_siginfo si;

	for (;;) {
		bool waiting = !px->metrics && px->metrics_addr[0];

		fds[1] = (struct pollfd){ .fd = px->metrics ? metrics_fd(px->metrics) : -1,
					  .events = POLLIN };
		if (poll(fds, 2, waiting ? 250 : -1) < 0 && errno != EINTR)
			return;
		if (waiting)
			metrics_retry(px);
		if (fds[1].revents & POLLIN)
			metrics_serve_one(px->metrics, render_metrics, px);
		if (!(fds[0].revents & POLLIN) || read(sig_fd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo != SIGHUP) {
			log_info("proxy", "signal %u: draining", si.ssi_signo);
			return;
		}
		reload(px, running);
	}
}

static void workers_stop(struct proxy *px)
{
	for (int i = 0; i < px->n_started; i++)
		px_worker_post_stop(&px->workers[i]);
	for (int i = 0; i < px->n_started; i++)
		pthread_join(px->threads[i], NULL);
	for (int i = 0; px->workers && i < px->n_workers; i++)
		px_worker_free(&px->workers[i]);
	free(px->workers);
	free(px->threads);
}

enum {
	O_METRICS = 256,
	O_ACCESS_LOG,
	O_ACCESS_LOG_JSON,
	O_DEFAULT_SERVICE,
	O_LOG_LEVEL,
	O_CHECK,
	O_TAKEOVER,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "listen", required_argument, NULL, 'l' },
	{ "workers", required_argument, NULL, 'w' },
	{ "metrics", required_argument, NULL, O_METRICS },
	{ "access-log", required_argument, NULL, O_ACCESS_LOG },
	{ "access-log-json", no_argument, NULL, O_ACCESS_LOG_JSON },
	{ "default-service", required_argument, NULL, O_DEFAULT_SERVICE },
	{ "log-level", required_argument, NULL, O_LOG_LEVEL },
	{ "check", no_argument, NULL, O_CHECK },
	{ "takeover", no_argument, NULL, O_TAKEOVER },
	{ "help", no_argument, NULL, 'h' },
	{}
};

/* The options that take a value that needs checking. 0 or 2 (usage). */
static int parse_checked(int opt, const char *arg, struct options *o)
{
	enum log_level level;
	char *end;

	if (opt == 'l') {
		if (o->n_listen == 4) {
			fprintf(stderr, "Error: --listen: at most 4 listeners\n");
			return 2;
		}
		o->listen[o->n_listen++] = arg;
		return 0;
	}
	if (opt == 'w') {
		o->workers = strtol(arg, &end, 10);
		if (*end || end == arg || o->workers < 0 || o->workers > MAX_WORKERS) {
			fprintf(stderr, "Error: --workers: want 0..%d, got '%s'\n", MAX_WORKERS,
				arg);
			return 2;
		}
		return 0;
	}
	if (log_parse_level(arg, &level)) { /* O_LOG_LEVEL */
		fprintf(stderr, "Error: --log-level: '%s' (error, warn, info, debug)\n", arg);
		return 2;
	}
	log_set_level(level);
	return 0;
}

/* 0, or the exit status for a usage error (2) or help (-1: exit 0). */
static int parse_args(int argc, char **argv, struct options *o)
{
	int c, err;

	*o = (struct options){ .workers = -1, .access_log_json = -1 };
	while ((c = getopt_long(argc, argv, "c:l:w:h", long_options, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case O_METRICS:
			o->metrics = optarg;
			break;
		case O_ACCESS_LOG:
			o->access_log = optarg;
			break;
		case O_ACCESS_LOG_JSON:
			o->access_log_json = 1;
			break;
		case O_DEFAULT_SERVICE:
			o->default_service = optarg;
			break;
		case O_CHECK:
			o->check = true;
			break;
		case O_TAKEOVER:
			o->takeover = true;
			break;
		case 'l':
		case 'w':
		case O_LOG_LEVEL:
			err = parse_checked(c, optarg, o);
			if (err)
				return err;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !o->config) {
		fprintf(stderr, "Error: %s\n",
			optind < argc ? "unexpected argument" : "--config FILE is required");
		usage(stderr);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct proxy px = { 0 };
	struct px_conf *conf;
	struct cfg_proxy running;
	int sig_fd, err, status = parse_args(argc, argv, &px.opt);

	if (status)
		return status < 0 ? 0 : status;
	conf = conf_load(&px);
	if (!conf || conf_check_default(conf)) {
		px_conf_put(conf);
		return 1;
	}
	if (px.opt.check) {
		printf("%s: ok (%zu services)\n", px.opt.config, conf->cfg.n_services);
		px_conf_put(conf);
		return 0;
	}
	running = conf->cfg.proxy;
	sig_fd = signals_fd();
	/* A second proxy on our addresses would share them silently
	 * (SO_REUSEPORT): refused, unless that is the point (an upgrade). */
	err = sig_fd < 0 ? -errno : px.opt.takeover ? 0 : px_listen_probe(&conf->cfg.proxy);
	if (!err)
		err = metrics_open(&px, &conf->cfg.proxy);
	if (!err)
		err = workers_start(&px, conf);
	px_conf_put(conf);
	if (err) {
		log_error("proxy", "cannot start: %s", strerror(-err));
		workers_stop(&px);
		return 1;
	}
	log_info("proxy", "%d workers serving %s", px.n_workers, px.opt.config);
	main_loop(&px, sig_fd, &running);
	workers_stop(&px);
	metrics_close(px.metrics);
	log_info("proxy", "stopped");
	return 0;
}
