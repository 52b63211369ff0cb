/* A proxy worker: one thread with its own epoll, its own SO_REUSEPORT
 * listeners (the kernel spreads connections over the workers), route
 * table and upstream pools, so no request touches a lock. The loop
 * dispatches events, parses pipelined requests left over, checks
 * timeouts every PROXY_SCAN_MS, and takes a new config or a stop request
 * from the main thread through an eventfd. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proxy.h"

#define LISTEN_BACKLOG 4096
#define EVENTS_PER_WAIT 256

static uint64_t clock_ms(void)
{
	struct timespec ts;

	/* COARSE: a vDSO read with no TSC work; timeouts are 50 ms grained. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t px_random(struct px_worker *w)
{
	/* xorshift64*: the weighted splits need speed, not secrecy. */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return (uint32_t)((w->rng * 0x2545f4914f6cdd1dull) >> 32);
}

int px_watch(struct px_worker *w, int fd, void *obj, uint32_t *have, uint32_t want)
{
	struct epoll_event ev = { .events = want, .data.ptr = obj };
	int op = EPOLL_CTL_ADD;

	if (*have & PX_REGISTERED) {
		if ((*have & ~PX_REGISTERED) == want)
			return 0;
		op = EPOLL_CTL_MOD;
	}
	if (epoll_ctl(w->epfd, op, fd, &ev))
		return -errno;
	*have = want | PX_REGISTERED;
	return 0;
}

void px_conf_put(struct px_conf *conf)
{
	if (!conf || atomic_fetch_sub(&conf->refs, 1) != 1)
		return;
	cfg_free(&conf->cfg);
	free(conf->local);
	if (conf->log_fd > 2)
		close(conf->log_fd);
	free(conf);
}

void px_routes_put(struct px_routes *r)
{
	if (!r || --r->refs)
		return;
	for (size_t i = 0; r->metrics && i < r->table.n_services; i++)
		free(r->metrics[i].routes);
	free(r->metrics);
	route_table_free(&r->table);
	px_conf_put(r->conf);
	free(r);
}

/* The name a service's counters go by: its name, else its VIP. */
static void service_label(const struct route_service *s, char *buf, size_t len)
{
	if (s->cfg->name[0])
		snprintf(buf, len, "%s", s->cfg->name);
	else
		addr_format_service(&s->key, buf, len);
}

static int routes_metrics(struct px_routes *r)
{
	char name[PM_NAME_MAX];

	r->metrics = calloc(r->table.n_services ? r->table.n_services : 1, sizeof(*r->metrics));
	if (!r->metrics)
		return -ENOMEM;
	for (size_t i = 0; i < r->table.n_services; i++) {
		struct route_service *s = &r->table.services[i];
		struct px_svc_metrics *m = &r->metrics[i];

		service_label(s, name, sizeof(name));
		m->svc = pm_service_get(name);
		m->routes = calloc(s->n_routes, sizeof(*m->routes));
		if (!m->svc || !m->routes || !(m->unrouted = pm_route_get(m->svc, UINT32_MAX)))
			return -ENOMEM;
		for (size_t j = 0; j < s->n_routes; j++)
			if (!(m->routes[j] = pm_route_get(m->svc, j)))
				return -ENOMEM;
	}
	return 0;
}

/* This worker's route table for @conf (one reference of @conf moves to it). */
static struct px_routes *routes_new(struct px_worker *w, struct px_conf *conf)
{
	struct px_routes *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return NULL;
	err = route_table_build(&r->table, &conf->cfg, conf->local, conf->n_local,
				w->rng ^ conf->generation);
	if (err) {
		free(r);
		return NULL;
	}
	r->refs = 1;
	if (routes_metrics(r)) {
		px_routes_put(r); /* @conf not taken: the caller keeps its reference */
		return NULL;
	}
	r->conf = conf;
	return r;
}

/* Take @conf: new routes for the next requests; running ones keep theirs. */
static void worker_take_conf(struct px_worker *w, struct px_conf *conf)
{
	struct px_routes *r = routes_new(w, conf);

	if (!r) {
		log_error("proxy", "worker %d: no memory for the new routes; keeping the old ones",
			  w->index);
		px_conf_put(conf);
		return;
	}
	/* Flush into the old log before the old config (and its fd) can go. */
	px_log_flush(&w->log);
	px_log_init(&w->log, conf->log_fd, conf->cfg.proxy.access_log_json);
	px_routes_put(w->routes);
	w->routes = r;
	w->settings = &conf->cfg.proxy;
	pm_add(&w->stats.reloads, 1);
}

/* A listening socket on @ap; @shared: SO_REUSEPORT (the workers' own). */
static int listener_open(const struct addr_port *ap, bool shared)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(ap, &ss);
	int one = 1, fd, err = 0;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* REUSEPORT: one listener per worker, the kernel balances between them. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, LISTEN_BACKLOG))
		err = -errno;
	if (!err)
		return fd;
	close(fd);
	return err;
}

static int worker_listen(struct px_worker *w, const struct cfg_proxy *p)
{
	char text[ADDR_STR_MAX];
	int err;

	w->listeners = calloc(p->n_listen, sizeof(*w->listeners));
	if (!w->listeners)
		return -ENOMEM;
	for (unsigned int i = 0; i < p->n_listen; i++) {
		struct px_listener *l = &w->listeners[i];

		l->kind = PX_LISTENER;
		l->fd = listener_open(&p->listen[i], true);
		if (l->fd < 0) {
			addr_format_endpoint(&p->listen[i], text, sizeof(text));
			log_error("proxy", "cannot listen on %s: %s", text, strerror(-l->fd));
			return l->fd;
		}
		w->n_listeners++;
		err = px_watch(w, l->fd, l, &l->events, EPOLLIN);
		if (err)
			return err;
	}
	return 0;
}

int px_listen_probe(const struct cfg_proxy *p)
{
	char text[ADDR_STR_MAX];

	for (unsigned int i = 0; i < p->n_listen; i++) {
		/* Without SO_REUSEPORT this bind fails where another process (a
		 * second sluice-proxy) listens with it: the port is not shared. */
		int fd = listener_open(&p->listen[i], false);

		if (fd < 0) {
			addr_format_endpoint(&p->listen[i], text, sizeof(text));
			log_error("proxy", "cannot listen on %s: %s%s", text, strerror(-fd),
				  fd == -EADDRINUSE ? " (another sluice-proxy?)" : "");
			return fd;
		}
		close(fd);
	}
	return 0;
}

int px_worker_init(struct px_worker *w, int index, struct px_conf *conf)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &w->control };

	memset(w, 0, sizeof(*w));
	w->index = index;
	w->rng = 0x9e3779b97f4a7c15ull * (index + 1) ^ (uint64_t)time(NULL);
	px_list_init(&w->clients);
	px_list_init(&w->ready);
	px_list_init(&w->upstreams);
	px_list_init(&w->dead_clients);
	px_list_init(&w->dead_upstreams);
	w->control.kind = PX_CONTROL;
	w->control.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->scratch = malloc(PROXY_SCRATCH);
	w->path_buf = malloc(PROXY_PATH_MAX);
	w->headers = calloc(PROXY_MAX_HEADERS_ARRAY, sizeof(*w->headers));
	w->n_pool_slots = 256;
	w->pools = calloc(w->n_pool_slots, sizeof(*w->pools));
	w->log.fd = -1;
	if (w->control.fd < 0 || w->epfd < 0 || !w->scratch || !w->path_buf || !w->headers ||
	    !w->pools)
		return -ENOMEM;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->control.fd, &ev))
		return -errno;
	w->now_ms = clock_ms();
	w->routes = routes_new(w, conf);
	if (!w->routes)
		return -ENOMEM;
	w->settings = &conf->cfg.proxy;
	px_log_init(&w->log, conf->log_fd, conf->cfg.proxy.access_log_json);
	return worker_listen(w, &conf->cfg.proxy);
}

static void worker_wake(struct px_worker *w)
{
	uint64_t one = 1;

	if (write(w->control.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("proxy", "cannot wake worker %d: %s", w->index, strerror(errno));
}

void px_worker_post_conf(struct px_worker *w, struct px_conf *conf)
{
	struct px_conf *old = atomic_exchange(&w->next_conf, conf);

	px_conf_put(old); /* two reloads before the worker woke: the first is moot */
	worker_wake(w);
}

void px_worker_post_stop(struct px_worker *w)
{
	atomic_store(&w->stop, true);
	worker_wake(w);
}

/* Stop accepting; idle keep-alive clients go now, the rest once their
 * exchange ends (they get Connection: close). */
static void worker_drain(struct px_worker *w)
{
	struct px_link *l, *next;

	w->draining = true;
	w->drain_deadline_ms = w->now_ms + PROXY_DRAIN_MS;
	for (size_t i = 0; i < w->n_listeners; i++) {
		close(w->listeners[i].fd);
		w->listeners[i].fd = -1;
	}
	for (l = w->clients.next; l != &w->clients; l = next) {
		struct px_client *c = px_container(l, struct px_client, link);

		next = l->next;
		c->keep_alive = false;
		/* Idle between requests: closed now. A connection whose first
		 * request has not come yet is still served (its client sent it,
		 * or is about to: closing would reset it), then closed. */
		if (c->state == CL_HEAD && c->requests && !buf_len(&c->in) && !buf_len(&c->out))
			px_client_close(c);
	}
}

static void worker_control(struct px_worker *w)
{
	struct px_conf *conf;
	uint64_t n;

	if (read(w->control.fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("proxy", "worker %d: control read: %s", w->index, strerror(errno));
	conf = atomic_exchange(&w->next_conf, NULL);
	if (conf)
		worker_take_conf(w, conf);
	if (atomic_load(&w->stop) && !w->draining)
		worker_drain(w);
}

static void worker_dispatch(struct px_worker *w, struct epoll_event *ev)
{
	enum px_kind *kind = ev->data.ptr;

	switch (*kind) {
	case PX_LISTENER:
		px_client_accept(w, ev->data.ptr);
		break;
	case PX_CLIENT:
		px_client_event(ev->data.ptr, ev->events);
		break;
	case PX_UPSTREAM:
		px_upstream_event(w, ev->data.ptr, ev->events);
		break;
	case PX_CONTROL:
		worker_control(w);
		break;
	}
}

/* Clients whose finished exchange left pipelined bytes: parse them now,
 * from the loop, not from deep inside the exchange that ended. */
static void worker_ready(struct px_worker *w)
{
	while (!px_list_empty(&w->ready)) {
		struct px_client *c = px_container(w->ready.next, struct px_client, ready);

		px_list_del(&c->ready);
		px_client_resume(c);
	}
}

static void worker_scan(struct px_worker *w)
{
	struct px_link *l, *next;
	struct px_upstream *u;

	for (l = w->clients.next; l != &w->clients; l = next) {
		next = l->next;
		px_client_timeouts(px_container(l, struct px_client, link));
	}
	/* Acting on one upstream can close another (a retry takes a pooled
	 * connection that then fails), so look again after each. */
	while ((u = px_upstream_expired(w)))
		px_upstream_timeouts(w, u);
	px_pools_trim(w);
	px_accept_resume(w);
	px_log_flush(&w->log);
	w->next_scan_ms = w->now_ms + PROXY_SCAN_MS;
}

void *px_worker_run(void *arg)
{
	struct epoll_event events[EVENTS_PER_WAIT];
	struct px_worker *w = arg;

	while (!w->draining || (!px_list_empty(&w->clients) && w->now_ms < w->drain_deadline_ms)) {
		int n = epoll_wait(w->epfd, events, EVENTS_PER_WAIT, PROXY_SCAN_MS);

		w->now_ms = clock_ms();
		for (int i = 0; i < n; i++)
			worker_dispatch(w, &events[i]);
		worker_ready(w);
		if (w->now_ms >= w->next_scan_ms)
			worker_scan(w);
		px_clients_reap(w);
		px_upstreams_reap(w);
	}
	return NULL;
}

void px_worker_free(struct px_worker *w)
{
	while (!px_list_empty(&w->clients))
		px_client_close(px_container(w->clients.next, struct px_client, link));
	px_clients_reap(w);
	px_pools_free(w);
	px_log_flush(&w->log);
	px_routes_put(w->routes);
	px_conf_put(atomic_exchange(&w->next_conf, NULL));
	for (size_t i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].fd >= 0)
			close(w->listeners[i].fd);
	free(w->listeners);
	free(w->pools);
	free(w->headers);
	free(w->scratch);
	free(w->path_buf);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->control.fd >= 0)
		close(w->control.fd);
}
