/* http_upstream's shared types, limits and settings, and the calls its
 * files make across: main.c (options, listeners, worker threads), conn.c
 * (buffers, socket I/O, connection life), request.c (request parsing) and
 * respond.c (the path-driven answers). Internal to the tool. */
#ifndef HTTP_UPSTREAM_UPSTREAM_H
#define HTTP_UPSTREAM_UPSTREAM_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define MAX_LISTENERS 16
#define MAX_THREADS 64
#define EVENTS 256
#define ACCEPTS_PER_TURN 64
#define IN_INIT 4096
#define IN_MAX (64 * 1024) /* request head limit, hence input buffer cap */
#define LINE_MAX_LEN 4096 /* chunk-size and trailer lines */
#define OUT_INIT 4096
#define OUT_HIGH (256 * 1024) /* stop answering pipelined requests above this */
#define COPY_MAX 8192 /* bodies up to this are copied next to their head */
#define PATTERN_LEN (256 * 1024)
#define ECHO_MAX (64ULL << 20)
#define CHUNK_LEN 4096
#define CHUNKS_PER_REFILL 16
#define WRITES_PER_TURN 16 /* so one huge answer cannot starve the others */
#define ARG_SIZE_MAX (1ULL << 50)
#define ARG_DELAY_MAX 86400000ULL

/* epoll data is a pointer with its kind in the low bits (all are 8-aligned) */
enum tag { TAG_CONN, TAG_LISTENER, TAG_TIMER, TAG_MASK = 3 };

enum route {
	R_DEFAULT,
	R_SIZE,
	R_STATUS,
	R_DELAY,
	R_ECHO,
	R_CHUNKED,
	R_HEADERS,
	R_CLOSE,
	R_RESET,
	R_HANG,
	R_COUNT,
};

/* Where the parser is in the request being read. */
enum parse_state { P_HEAD, P_LENGTH, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_END, P_TRAILER };

enum conn_mode {
	M_RUN, /* reading and answering requests */
	M_DELAY, /* a /delay timer is armed; later requests wait for it */
	M_HANG, /* /hang: discard input until the peer closes */
	M_CLOSE, /* write what is queued, then shut down writes and drain */
	M_RESET, /* write what is queued, then close with RST */
	M_DRAIN, /* writes shut down; discard input until EOF */
};

/* One --listen address; shared by the workers' listening sockets. */
struct endpoint {
	const char *text; /* as given on the command line */
	struct sockaddr_storage sa; /* port resolved by the first bind */
	socklen_t salen;
	char addr[INET6_ADDRSTRLEN + 16]; /* "127.0.0.1:80", "[::1]:80" */
	const char *name; /* X-Upstream value */
	char *head; /* head of the default answer, keep-alive HTTP/1.1 */
	size_t head_len;
};

struct listener {
	int fd;
	struct endpoint *ep;
};

struct worker {
	/* Written only by this worker, read by /count in any: relaxed atomics. */
	unsigned long long requests;
	unsigned long long conns;
	int epfd;
	struct listener ls[MAX_LISTENERS];
	struct conn *dead; /* closed during this epoll batch, freed after it */
	pthread_t tid;
} __attribute__((aligned(64)));

/* The request being read and answered. buf holds the /echo body or the
 * /headers head; an answer may take it over (then buf is NULL). */
struct req {
	enum route route;
	unsigned long long arg; /* the N of /size/N, /status/N, ... */
	unsigned long long left; /* body bytes of P_LENGTH or P_CHUNK_DATA */
	bool keep_alive, http10, head_only, expect;
	char *buf;
	size_t len, cap;
};

/* A large body sent straight from memory: left bytes of base starting at
 * off, wrapping around base_len (the 'x' pattern repeats). */
struct body_src {
	const char *base;
	size_t base_len, off;
	unsigned long long left;
	char *owned; /* freed once sent */
};

/* in[in_rd..in_wr) is received and not yet parsed; out[out_rd..out_wr) is
 * queued and not yet written. On the wire body follows out; /chunked frames
 * its chunks into out as out drains. */
struct conn {
	int fd;
	int tfd; /* timerfd of /delay, -1 until first needed */
	struct worker *w;
	struct endpoint *ep;
	unsigned int interest; /* epoll events registered */
	enum conn_mode mode;
	enum parse_state parse;
	bool eof;
	bool chunking;
	unsigned long long chunk_left;
	size_t scan; /* head bytes already searched for the blank line */
	const char *why; /* reason of a rejection, for its body and the log */
	char *in;
	size_t in_cap, in_rd, in_wr;
	char *out;
	size_t out_cap, out_rd, out_wr;
	struct body_src body;
	struct req req;
	struct conn *next_dead;
};

/* Set by main() before the workers start; read-only afterwards. */
extern struct worker workers[MAX_THREADS];
extern int n_workers;
extern unsigned long long body_size; /* of the default answer (--body) */
extern char *pattern; /* PATTERN_LEN bytes of 'x' */

static inline void *untag(uint64_t data)
{
	return (void *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);
}

static inline uint64_t tag(void *p, enum tag t)
{
	return (uintptr_t)p | t;
}

static inline unsigned long long counter_get(const unsigned long long *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

static inline void counter_inc(unsigned long long *v)
{
	__atomic_store_n(v, *v + 1, __ATOMIC_RELAXED);
}

/* main.c: one line to stderr, unless --quiet. */
void __attribute__((format(printf, 1, 2))) log_msg(const char *fmt, ...);

/* conn.c: queue output (0 or -errno), frame the next /chunked chunks. */
int out_append(struct conn *c, const void *p, size_t n);
int __attribute__((format(printf, 2, 3))) out_printf(struct conn *c, const char *fmt, ...);
int chunk_refill(struct conn *c);
/* conn.c: take over an accepted socket (closed on failure); handle its events. */
int conn_new(struct worker *w, struct endpoint *ep, int fd);
void conn_event(struct conn *c, uint32_t events, bool timer);

/* request.c: read the head or the body of the current request. Return 0,
 * -EAGAIN when more input is needed, -errno, or a status code to reject
 * the request with (c->why says why). */
int req_head(struct conn *c);
int req_body(struct conn *c);

/* respond.c: answer with a pattern body; answer the complete request;
 * answer a rejected one (c->why) and close. 0 or -errno. */
int resp_pattern(struct conn *c, int code, unsigned long long len);
int req_done(struct conn *c);
int req_reject(struct conn *c, int code);

#endif
