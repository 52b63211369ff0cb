/* sluice-proxy's runtime types: a worker (one thread, one epoll, its own
 * SO_REUSEPORT listeners, route table and upstream pools), the client
 * connections it accepted, the exchange (one request and its response)
 * each client has at most one of, and upstream connections. Types and the
 * functions the proxy's files call across each other; docs/proxy.md
 * describes the behaviour. */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "accesslog.h"
#include "buf.h"
#include "config.h"
#include "http1.h"
#include "pmetrics.h"
#include "router.h"

#define PROXY_MAX_HEADERS_ARRAY 1000 /* parse arrays: the largest max_headers */
#define PROXY_SCAN_MS 50 /* timeouts are checked this often */
#define PROXY_SCRATCH (64 * 1024)
#define PROXY_PATH_MAX (64 * 1024) /* normalized path and query: the longest request line */
#define PROXY_DRAIN_MS 10000 /* on stop: how long in-flight requests may finish */

/* What an epoll event's data.ptr points at: every such object starts
 * with its kind. */
enum px_kind {
	PX_LISTENER,
	PX_CLIENT,
	PX_UPSTREAM,
	PX_CONTROL, /* the worker's eventfd: a new config or stop */
};

/* An intrusive doubly linked list (the worker's clients, a pool's idle
 * connections). */
struct px_link {
	struct px_link *prev, *next;
};

struct px_listener {
	enum px_kind kind;
	int fd;
	uint32_t events; /* px_watch()'s cache */
};

struct px_pool;
struct px_worker;

/* One config as the workers share it: read once, freed by the last
 * worker that lets go of it. */
struct px_conf {
	atomic_int refs;
	struct cfg_state cfg;
	uint64_t generation;
	struct pol_prefix *local; /* this host's addresses when it was read */
	size_t n_local;
	int log_fd; /* the access log (shared; -1 off), closed with the conf */
};

/* Counters of one service of a route table, found again after a reload. */
struct px_svc_metrics {
	struct pm_service *svc;
	struct pm_route **routes; /* per route of the service */
	struct pm_route *unrouted; /* answered before a route was chosen */
};

/* A worker's route table for one config; an exchange holds it while it
 * runs, so a reload never pulls routes or groups from under a request. */
struct px_routes {
	struct route_table table;
	struct px_conf *conf;
	struct px_svc_metrics *metrics; /* per table service */
	int refs; /* the worker's own (while current) + exchanges */
};

enum px_upstream_state {
	UP_CONNECTING,
	UP_BUSY, /* carrying an exchange */
	UP_IDLE, /* in its pool */
	UP_DEAD, /* closed, freed at the end of the event batch */
};

struct px_upstream {
	enum px_kind kind;
	int fd;
	enum px_upstream_state state;
	uint32_t events; /* what epoll watches */
	struct px_pool *pool;
	struct px_link link; /* pool's idle list */
	struct px_link all; /* the worker's upstream list (timeouts) */
	struct buf in; /* response bytes not yet passed to the client */
	struct px_exchange *x; /* UP_BUSY/UP_CONNECTING */
	uint64_t deadline_ms; /* connect or idle-in-pool deadline */
	uint32_t requests; /* exchanges carried */
	struct bal_group *group; /* holds one of its breaker connections, or NULL */
	struct px_routes *routes; /* keeps @group alive */
};

/* Why an exchange ended without a complete upstream response. */
enum px_fail {
	PX_FAIL_CONNECT,
	PX_FAIL_RESET,
	PX_FAIL_TIMEOUT,
	PX_FAIL_BAD_RESPONSE,
	PX_FAIL_IDLE,
};

/* One request and its response. */
struct px_exchange {
	struct px_routes *routes;
	struct route_service *svc;
	struct px_svc_metrics *pm;
	const struct cfg_http_route *route;
	uint32_t route_index;
	uint32_t group;
	int ep; /* endpoint of the current attempt, -1 none */
	int last_ep; /* of the previous attempt: a retry avoids it */
	uint64_t hash; /* of the group's hash header, when has_hash */
	bool has_hash;
	struct px_upstream *up;
	struct buf head; /* the forwarded request head, kept for retries */
	size_t head_sent;
	/* request body */
	enum http1_body req_body;
	uint64_t req_left; /* LENGTH: bytes still to read from the client */
	size_t req_avail; /* body bytes at the front of client->in */
	struct http1_chunked req_chunk;
	bool req_done; /* head and body all written upstream */
	uint64_t req_body_sent;
	bool idempotent;
	bool head_request;
	int minor_version; /* the client's HTTP/1.x */
	/* response */
	bool resp_head_seen;
	enum http1_body resp_body;
	uint64_t resp_left;
	size_t resp_avail; /* body bytes at the front of up->in */
	struct http1_chunked resp_chunk;
	bool resp_done; /* every body byte went to the client */
	bool upstream_keep_alive;
	int status;
	/* bookkeeping */
	uint32_t attempts;
	bool holds_retry; /* a retry budget slot */
	bool admitted; /* holds a circuit-breaker request of the group */
	bool pending; /* holds a circuit-breaker pending slot */
	uint64_t start_ms, deadline_ms, idle_deadline_ms;
	uint64_t attempt_us; /* CLOCK_MONOTONIC, for the latency histogram */
	bool req_complete; /* every body byte was read from the client */
	bool resp_complete; /* every body byte was read from the upstream */
	bool up_blocked; /* the last write upstream was short: wait for EPOLLOUT */
	bool client_blocked; /* the same towards the client */
	struct addr_port upstream_addr; /* the last attempt's endpoint */
	uint64_t bytes_in, bytes_out;
	char method[16];
	char path[256];
	char host[128];
	const char *reason; /* why the proxy answered itself, "" relayed */
	char reason_buf[48]; /* when @reason needs formatting */
	struct route_peer peer;
};

enum px_client_state {
	CL_HEAD, /* waiting for (the rest of) a request head */
	CL_EXCHANGE, /* a request is being served */
	CL_CLOSING, /* flushing a last answer, then closed */
	CL_DEAD, /* closed, freed at the end of the event batch */
};

struct px_client {
	enum px_kind kind;
	int fd;
	enum px_client_state state;
	uint32_t events;
	struct px_worker *w;
	struct px_link link; /* the worker's clients */
	struct px_link ready; /* in the worker's ready list */
	struct buf in; /* bytes read and not yet used */
	struct buf out; /* head and error answers to write before @x's body bytes */
	struct px_exchange x; /* valid in CL_EXCHANGE */
	bool keep_alive; /* another request may follow the current one */
	bool read_closed; /* the client sent EOF */
	size_t head_scanned; /* bytes of c->in searched for the end of a head */
	bool request_line_ok; /* the parser saw the whole request line */
	uint64_t deadline_ms; /* header timeout or keep-alive idle */
	uint32_t requests; /* requests served on this connection */
	struct addr_port peer_addr;
	struct sl_svc_key vip; /* original destination, family 0: none */
	char peer_text[48];
};

/* A pool of idle connections to one upstream endpoint. */
struct px_pool {
	struct addr_port addr;
	uint32_t n_conns; /* open connections to @addr, idle or not */
	struct px_link idle;
	uint32_t n_idle;
	struct px_pool *next; /* hash chain */
};

struct px_worker {
	int index;
	int epfd;
	struct px_listener *listeners;
	size_t n_listeners;
	struct px_listener control; /* eventfd */
	struct px_conf *_Atomic next_conf; /* set by the main thread */
	atomic_bool stop;
	struct px_routes *routes; /* current */
	struct px_link clients;
	struct px_link ready; /* clients with pipelined bytes to parse */
	struct px_link upstreams;
	struct px_link dead_clients, dead_upstreams; /* freed after each batch */
	struct px_pool **pools; /* hash by address */
	size_t n_pool_slots;
	char *scratch; /* PROXY_SCRATCH bytes every read goes into first (buf.h) */
	char *path_buf; /* PROXY_PATH_MAX bytes: the request target as forwarded */
	struct http1_header *headers; /* parse array, PROXY_MAX_HEADERS_ARRAY long */
	uint64_t now_ms;
	uint64_t next_scan_ms;
	uint64_t rng;
	bool draining; /* stop accepting, finish what runs */
	struct pm_worker stats;
	struct px_accesslog log;
	const struct cfg_proxy *settings; /* of the current config */
	uint64_t drain_deadline_ms;
	bool accept_paused; /* out of descriptors: listeners not watched */
	uint64_t accept_warned_ms;
	bool mark_warned;
};

/* ---- worker.c ---- */
/* Check that every listen address is free (not held by another process).
 * 0 or -errno (logged). */
int px_listen_probe(const struct cfg_proxy *p);
int px_worker_init(struct px_worker *w, int index, struct px_conf *conf);
void *px_worker_run(void *arg);
void px_worker_free(struct px_worker *w);
/* Hand @conf to @w (one reference moves to it) and wake it. */
void px_worker_post_conf(struct px_worker *w, struct px_conf *conf);
void px_worker_post_stop(struct px_worker *w);
/* Make epoll watch @want (EPOLLIN/EPOLLOUT, may be 0) for @fd, whose
 * current interest is in *@have (0: not registered yet); no syscall when
 * nothing changes. Returns 0 or -errno. */
#define PX_REGISTERED (1u << 30) /* in *have: @fd is in the epoll set */
int px_watch(struct px_worker *w, int fd, void *obj, uint32_t *have, uint32_t want);
uint32_t px_random(struct px_worker *w);
void px_routes_put(struct px_routes *r);
void px_conf_put(struct px_conf *conf);

/* ---- client.c ---- */
void px_client_accept(struct px_worker *w, struct px_listener *l);
/* Watch the listeners again after an accept_pause(). */
void px_accept_resume(struct px_worker *w);
int px_client_flush(struct px_client *c);
void px_client_answer(struct px_client *c, int status, const char *why, bool close_after,
		      bool head_only);
void px_client_next(struct px_client *c);
void px_client_event(struct px_client *c, uint32_t events);
/* Parse the pipelined requests @c holds (from the worker's ready list). */
void px_client_resume(struct px_client *c);
void px_client_timeouts(struct px_client *c);
void px_client_close(struct px_client *c);
/* ---- exchange.c ---- */
/* Start serving the request parsed at the front of c->in (@head_len bytes). */
void px_exchange_start(struct px_client *c, const struct http1_request *req, size_t head_len);
/* The client is gone: end the exchange, close its upstream connection. */
void px_exchange_abort(struct px_exchange *x);
/* The client sent the whole request (head and body). */
bool px_exchange_request_done(const struct px_exchange *x);
void px_exchange_client_data(struct px_exchange *x);
void px_exchange_client_writable(struct px_exchange *x);
void px_exchange_timeouts(struct px_exchange *x);
/* Upstream events for the exchange the connection carries. */
void px_exchange_connected(struct px_exchange *x);
void px_exchange_upstream_writable(struct px_exchange *x);
void px_exchange_upstream_readable(struct px_exchange *x);
void px_exchange_failed(struct px_exchange *x, enum px_fail why);

/* ---- upstream.c ---- */
/* An idle pooled connection to @addr (now UP_BUSY), or NULL. */
struct px_upstream *px_upstream_idle(struct px_worker *w, const struct addr_port *addr);
/* A new connection to @addr, UP_CONNECTING (EPOLLOUT watched), or NULL
 * with -errno in *@err. */
struct px_upstream *px_upstream_open(struct px_worker *w, const struct addr_port *addr, int *err);
/* Done with @u after an exchange: back to its pool when @reusable. */
void px_upstream_release(struct px_worker *w, struct px_upstream *u, bool reusable);
void px_upstream_event(struct px_worker *w, struct px_upstream *u, uint32_t events);
void px_upstream_timeouts(struct px_worker *w, struct px_upstream *u);
/* An idle or connecting upstream past its deadline, or NULL. */
struct px_upstream *px_upstream_expired(struct px_worker *w);
/* Free the pools of endpoints with no connection left. */
void px_pools_trim(struct px_worker *w);
void px_pools_free(struct px_worker *w);
/* Close @u whatever its state (the exchange no longer uses it). */
void px_upstream_abort(struct px_worker *w, struct px_upstream *u);
void px_upstreams_reap(struct px_worker *w);
void px_clients_reap(struct px_worker *w);

/* ---- list helpers ---- */
static inline void px_list_init(struct px_link *head)
{
	head->prev = head->next = head;
}

static inline void px_list_add(struct px_link *head, struct px_link *l)
{
	l->next = head->next;
	l->prev = head;
	head->next->prev = l;
	head->next = l;
}

static inline void px_list_del(struct px_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

static inline bool px_list_empty(const struct px_link *head)
{
	return head->next == head;
}

#define px_container(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
