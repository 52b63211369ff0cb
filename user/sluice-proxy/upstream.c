/* Upstream connections: opened non-blocking with SL_PROXY_MARK (so the
 * socket layer never steers the proxy's own connections back to it),
 * kept alive in per-endpoint pools after a clean exchange, closed when
 * the upstream closes them, when they idle past upstream_idle_ms, or when
 * an exchange ends with bytes in flight. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "proxy.h"
#include "sluice/sock.h"

static bool same_addr(const struct addr_port *a, const struct addr_port *b)
{
	return a->family == b->family && a->port == b->port &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

static size_t pool_slot(const struct px_worker *w, const struct addr_port *addr)
{
	uint64_t h = hash_fnv1a(0xcbf29ce484222325ull, addr->addr, sizeof(addr->addr));

	h = hash_fnv1a(h, &addr->port, sizeof(addr->port));
	return hash_fmix64(h) & (w->n_pool_slots - 1);
}

/* The pool of @addr, made on first use; NULL when out of memory. */
static struct px_pool *pool_get(struct px_worker *w, const struct addr_port *addr)
{
	size_t slot = pool_slot(w, addr);
	struct px_pool *p;

	for (p = w->pools[slot]; p; p = p->next)
		if (same_addr(&p->addr, addr))
			return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->addr = *addr;
	px_list_init(&p->idle);
	p->next = w->pools[slot];
	w->pools[slot] = p;
	return p;
}

/* Close @u now; its memory goes at the end of the event batch, since a
 * caller up the stack or a later event of the batch may still look at it
 * (state UP_DEAD tells them). */
static void upstream_close(struct px_worker *w, struct px_upstream *u)
{
	if (u->state == UP_DEAD)
		return;
	if (u->state == UP_IDLE) {
		px_list_del(&u->link);
		u->pool->n_idle--;
	}
	px_list_del(&u->all);
	u->pool->n_conns--;
	close(u->fd); /* also leaves the epoll set */
	u->fd = -1;
	buf_free(&u->in);
	if (u->group)
		bal_connection_done(u->group);
	u->group = NULL;
	px_routes_put(u->routes);
	u->routes = NULL;
	u->x = NULL;
	u->state = UP_DEAD;
	pm_sub(&w->stats.active_upstreams, 1);
	px_list_add(&w->dead_upstreams, &u->all);
}

void px_upstreams_reap(struct px_worker *w)
{
	while (!px_list_empty(&w->dead_upstreams)) {
		struct px_upstream *u =
			px_container(w->dead_upstreams.next, struct px_upstream, all);

		px_list_del(&u->all);
		free(u);
	}
}

/* A socket for an upstream connection: marked, no Nagle (heads and small
 * bodies go out at once). -errno on failure. */
static int upstream_socket(struct px_worker *w, int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, mark = SL_PROXY_MARK;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) && !w->mark_warned) {
		/* Needs CAP_NET_ADMIN; without it an L7 VIP as upstream would loop. */
		log_warn("proxy", "cannot set SO_MARK 0x%x on upstream sockets: %s", mark,
			 strerror(errno));
		w->mark_warned = true;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static struct px_upstream *upstream_connect(struct px_worker *w, struct px_pool *pool, int *err)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(&pool->addr, &ss);
	struct px_upstream *u;
	int fd = upstream_socket(w, ss.ss_family);

	if (fd < 0) {
		*err = fd;
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	u->kind = PX_UPSTREAM;
	u->fd = fd;
	u->pool = pool;
	pool->n_conns++;
	px_list_init(&u->link);
	px_list_add(&w->upstreams, &u->all);
	pm_add(&w->stats.active_upstreams, 1);
	pm_add(&w->stats.upstream_connects, 1);
	u->state = UP_CONNECTING;
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS)
		*err = -errno;
	else
		*err = px_watch(w, fd, u, &u->events, EPOLLOUT);
	if (!*err)
		return u;
	upstream_close(w, u);
	return NULL;
}

struct px_upstream *px_upstream_idle(struct px_worker *w, const struct addr_port *addr)
{
	struct px_pool *pool = pool_get(w, addr);
	struct px_upstream *u;

	if (!pool || px_list_empty(&pool->idle))
		return NULL;
	/* The most recently used: its peer is the likeliest to still hold it. */
	u = px_container(pool->idle.next, struct px_upstream, link);
	px_list_del(&u->link);
	pool->n_idle--;
	u->state = UP_BUSY;
	pm_add(&w->stats.upstream_reused, 1);
	return u;
}

struct px_upstream *px_upstream_open(struct px_worker *w, const struct addr_port *addr, int *err)
{
	struct px_pool *pool = pool_get(w, addr);

	if (!pool) {
		*err = -ENOMEM;
		return NULL;
	}
	return upstream_connect(w, pool, err);
}

void px_upstream_release(struct px_worker *w, struct px_upstream *u, bool reusable)
{
	u->x = NULL;
	if (!reusable || w->draining || buf_len(&u->in) || u->state != UP_BUSY ||
	    px_watch(w, u->fd, u, &u->events, EPOLLIN)) {
		upstream_close(w, u);
		return;
	}
	if (u->routes && u->routes != w->routes) {
		/* Opened under a config since replaced: keep the connection, but
		 * not the old route table (nor count it against an old group). */
		bal_connection_done(u->group);
		px_routes_put(u->routes);
		u->group = NULL;
		u->routes = NULL;
	}
	/* Watched for reading while idle: the upstream closing it shows. */
	buf_free(&u->in);
	u->state = UP_IDLE;
	u->requests++;
	u->deadline_ms = w->now_ms + w->settings->upstream_idle_ms;
	px_list_add(&u->pool->idle, &u->link);
	u->pool->n_idle++;
}

/* A non-blocking connect finished: with success or with SO_ERROR. */
static void upstream_connected(struct px_worker *w, struct px_upstream *u)
{
	struct px_exchange *x = u->x;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		px_exchange_failed(x, PX_FAIL_CONNECT);
		return;
	}
	u->state = UP_BUSY;
	if (px_watch(w, u->fd, u, &u->events, EPOLLIN)) {
		px_exchange_failed(x, PX_FAIL_CONNECT);
		return;
	}
	px_exchange_connected(x);
}

void px_upstream_event(struct px_worker *w, struct px_upstream *u, uint32_t events)
{
	switch (u->state) {
	case UP_CONNECTING:
		upstream_connected(w, u);
		break;
	case UP_BUSY:
		if (events & EPOLLOUT)
			px_exchange_upstream_writable(u->x);
		/* The exchange may have ended above: @u is then idle or dead. */
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && u->state == UP_BUSY && u->x)
			px_exchange_upstream_readable(u->x);
		break;
	case UP_DEAD:
		break;
	case UP_IDLE:
		/* Idle connections have nothing to say: this is a close (or junk). */
		upstream_close(w, u);
		break;
	}
}

struct px_upstream *px_upstream_expired(struct px_worker *w)
{
	for (struct px_link *l = w->upstreams.next; l != &w->upstreams; l = l->next) {
		struct px_upstream *u = px_container(l, struct px_upstream, all);

		if ((u->state == UP_IDLE || u->state == UP_CONNECTING) &&
		    w->now_ms >= u->deadline_ms)
			return u;
	}
	return NULL;
}

void px_upstream_timeouts(struct px_worker *w, struct px_upstream *u)
{
	if (u->state == UP_IDLE && w->now_ms >= u->deadline_ms)
		upstream_close(w, u);
	else if (u->state == UP_CONNECTING && w->now_ms >= u->deadline_ms)
		px_exchange_failed(u->x, PX_FAIL_CONNECT);
}

/* Close @u for good (the exchange is done with it, or failed on it). */
void px_upstream_abort(struct px_worker *w, struct px_upstream *u)
{
	u->x = NULL;
	upstream_close(w, u);
}

void px_pools_trim(struct px_worker *w)
{
	for (size_t i = 0; i < w->n_pool_slots; i++)
		for (struct px_pool **p = &w->pools[i]; *p;) {
			struct px_pool *pool = *p;

			if (pool->n_conns) {
				p = &pool->next;
				continue;
			}
			*p = pool->next; /* an endpoint nobody talks to any more */
			free(pool);
		}
}

void px_pools_free(struct px_worker *w)
{
	while (!px_list_empty(&w->upstreams))
		upstream_close(w, px_container(w->upstreams.next, struct px_upstream, all));
	px_upstreams_reap(w);
	for (size_t i = 0; i < w->n_pool_slots; i++)
		while (w->pools[i]) {
			struct px_pool *p = w->pools[i];

			w->pools[i] = p->next;
			free(p);
		}
}
