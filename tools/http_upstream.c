/* http_upstream: a small HTTP/1.1 origin server for benchmarks and e2e tests.
 * It answers from memory, keeps up with wrk on one core, and has path-driven
 * behaviours a proxy test can aim at: sizes, status codes, delays, echo,
 * chunked answers, resets and hangs (see usage()). Epoll, level-triggered,
 * non-blocking sockets; --threads N runs N copies of the loop, each with its
 * own SO_REUSEPORT listeners. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

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

enum framing { F_LENGTH, F_CHUNKED, F_NONE };

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

static struct endpoint endpoints[MAX_LISTENERS];
static int n_endpoints;
static struct worker workers[MAX_THREADS];
static int n_workers = 1;
static unsigned long long body_size;
static bool quiet;
static char *pattern; /* PATTERN_LEN bytes of 'x' */

static void __attribute__((format(printf, 1, 2))) log_msg(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	flockfile(stderr); /* one line, even with --threads */
	va_start(ap, fmt);
	fputs("http_upstream: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	funlockfile(stderr);
}

static void *untag(uint64_t data)
{
	return (void *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);
}

static uint64_t tag(void *p, enum tag t)
{
	return (uintptr_t)p | t;
}

static unsigned long long counter_get(const unsigned long long *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

static void counter_inc(unsigned long long *v)
{
	__atomic_store_n(v, *v + 1, __ATOMIC_RELAXED);
}

/* ---- output queue ---- */

static bool out_pending(const struct conn *c)
{
	return c->out_wr > c->out_rd || c->body.left || c->chunking;
}

/* Full enough that answering more pipelined requests should wait. */
static bool out_busy(const struct conn *c)
{
	return c->out_wr - c->out_rd > OUT_HIGH || c->body.left || c->chunking;
}

/* Make room for n more bytes in out. Returns 0 or -ENOMEM. */
static int out_reserve(struct conn *c, size_t n)
{
	size_t cap;
	char *p;

	if (c->out_rd == c->out_wr)
		c->out_rd = c->out_wr = 0;
	if (c->out_cap - c->out_wr >= n)
		return 0;
	if (c->out_rd) {
		memmove(c->out, c->out + c->out_rd, c->out_wr - c->out_rd);
		c->out_wr -= c->out_rd;
		c->out_rd = 0;
		if (c->out_cap - c->out_wr >= n)
			return 0;
	}
	for (cap = c->out_cap * 2; cap - c->out_wr < n; cap *= 2)
		;
	p = realloc(c->out, cap);
	if (!p)
		return -ENOMEM;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

static int out_append(struct conn *c, const void *p, size_t n)
{
	if (out_reserve(c, n))
		return -ENOMEM;
	memcpy(c->out + c->out_wr, p, n);
	c->out_wr += n;
	return 0;
}

static int __attribute__((format(printf, 2, 3))) out_printf(struct conn *c, const char *fmt, ...)
{
	size_t want = 256, room;
	va_list ap;
	int n;

	for (;;) {
		if (out_reserve(c, want))
			return -ENOMEM;
		room = c->out_cap - c->out_wr;
		va_start(ap, fmt);
		n = vsnprintf(c->out + c->out_wr, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if ((size_t)n < room) {
			c->out_wr += n;
			return 0;
		}
		want = n + 1;
	}
}

/* Fill up to max iovecs with the next bytes of b. Returns how many. */
static int body_iov(const struct body_src *b, struct iovec *iov, int max)
{
	unsigned long long left = b->left;
	size_t off = b->off, len;
	int n = 0;

	for (; left && n < max; n++, off = 0) {
		len = b->base_len - off;
		if (len > left)
			len = left;
		iov[n].iov_base = (char *)b->base + off;
		iov[n].iov_len = len;
		left -= len;
	}
	return n;
}

static void body_advance(struct body_src *b, size_t n)
{
	b->left -= n;
	b->off = (b->off + n) % b->base_len;
	if (!b->left) {
		free(b->owned);
		memset(b, 0, sizeof(*b));
	}
}

/* Frame the next chunks of a /chunked answer into out; the last call adds
 * the zero-size chunk that ends it. */
static int chunk_refill(struct conn *c)
{
	size_t n;
	int i;

	for (i = 0; i < CHUNKS_PER_REFILL && c->chunk_left; i++) {
		n = c->chunk_left < CHUNK_LEN ? c->chunk_left : CHUNK_LEN;
		if (out_printf(c, "%zx\r\n", n) || out_append(c, pattern, n) ||
		    out_append(c, "\r\n", 2))
			return -ENOMEM;
		c->chunk_left -= n;
	}
	if (c->chunk_left)
		return 0;
	c->chunking = false;
	return out_append(c, "0\r\n\r\n", 5);
}

/* Write queued output. Returns 1 when all of it is written, 0 when the
 * socket is full or this turn's writes are used up (wait for EPOLLOUT),
 * -errno when the connection failed. */
static int conn_flush(struct conn *c)
{
	struct iovec iov[8];
	size_t head;
	ssize_t w;
	int n, turn;

	for (turn = 0; turn < WRITES_PER_TURN; turn++) {
		if (c->out_rd == c->out_wr && c->chunking && chunk_refill(c))
			return -ENOMEM;
		n = 0;
		head = c->out_wr - c->out_rd;
		if (head) {
			iov[0].iov_base = c->out + c->out_rd;
			iov[0].iov_len = head;
			n = 1;
		}
		n += body_iov(&c->body, iov + n, 8 - n);
		if (!n)
			return 1;
		w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		if ((size_t)w < head)
			head = w;
		c->out_rd += head;
		if ((size_t)w > head)
			body_advance(&c->body, w - head);
	}
	return 0;
}

/* ---- answers ---- */

static const struct {
	int code;
	const char *text;
} reasons[] = {
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 204, "No Content" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 304, "Not Modified" },
	{ 400, "Bad Request" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 413, "Content Too Large" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
};

/* The reason phrase is decoration (RFC 9112 §4): any text will do. */
static const char *reason(int code)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return reasons[i].text;
	return "Status";
}

/* Queue an answer head for the current request; len is the Content-Length
 * when f is F_LENGTH. */
static int resp_head(struct conn *c, int code, unsigned long long len, enum framing f)
{
	const struct req *r = &c->req;
	const char *conn = "";
	char frame[48] = "";

	if (f == F_LENGTH)
		snprintf(frame, sizeof(frame), "Content-Length: %llu\r\n", len);
	else if (f == F_CHUNKED)
		snprintf(frame, sizeof(frame), "Transfer-Encoding: chunked\r\n");
	if (!r->keep_alive)
		conn = "Connection: close\r\n";
	else if (r->http10)
		conn = "Connection: keep-alive\r\n";
	return out_printf(
		c, "HTTP/1.1 %d %s\r\nX-Upstream: %s\r\nContent-Type: text/plain\r\n%s%s\r\n", code,
		reason(code), c->ep->name, frame, conn);
}

/* Answer with len bytes of the 'x' pattern. Small bodies are copied so that
 * pipelined answers leave in one write; large ones go out from the pattern. */
static int resp_pattern(struct conn *c, int code, unsigned long long len)
{
	const struct req *r = &c->req;
	int err;

	if (code == 200 && len == body_size && r->keep_alive && !r->http10)
		err = out_append(c, c->ep->head, c->ep->head_len);
	else
		err = resp_head(c, code, len, F_LENGTH);
	if (err || r->head_only || !len)
		return err;
	if (len <= COPY_MAX)
		return out_append(c, pattern, len);
	c->body = (struct body_src){ .base = pattern, .base_len = PATTERN_LEN, .left = len };
	return 0;
}

static int __attribute__((format(printf, 3, 4)))
resp_text(struct conn *c, int code, const char *fmt, ...)
{
	char body[256];
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(body))
		n = sizeof(body) - 1;
	err = resp_head(c, code, n, F_LENGTH);
	if (err || c->req.head_only)
		return err;
	return out_append(c, body, n);
}

/* Answer with req.buf (the /echo body or the /headers head), taking it over
 * when it is too large to copy. */
static int resp_buffer(struct conn *c)
{
	struct req *r = &c->req;
	int err;

	err = resp_head(c, 200, r->len, F_LENGTH);
	if (err || r->head_only || !r->len)
		return err;
	if (r->len <= COPY_MAX)
		return out_append(c, r->buf, r->len);
	c->body = (struct body_src){ .base = r->buf, .base_len = r->len, .left = r->len };
	c->body.owned = r->buf;
	r->buf = NULL;
	return 0;
}

static int resp_chunked(struct conn *c, unsigned long long n)
{
	int err;

	/* HTTP/1.0 has no chunked coding (RFC 9112 §6.1) */
	if (c->req.http10)
		return resp_pattern(c, 200, n);
	err = resp_head(c, 200, 0, F_CHUNKED);
	if (err || c->req.head_only)
		return err;
	c->chunk_left = n;
	c->chunking = true;
	return chunk_refill(c);
}

static int resp_status(struct conn *c, int code)
{
	/* these carry no body, and 204 no Content-Length (RFC 9110 §8.6) */
	if (code == 204 || code == 304)
		return resp_head(c, code, 0, F_NONE);
	return resp_text(c, code, "status %d\n", code);
}

static int resp_count(struct conn *c)
{
	unsigned long long requests = 0, conns = 0;
	int i;

	for (i = 0; i < n_workers; i++) {
		requests += counter_get(&workers[i].requests);
		conns += counter_get(&workers[i].conns);
	}
	return resp_text(c, 200, "requests %llu\nconnections %llu\n", requests, conns);
}

/* Arm the /delay timer; the answer goes out from conn_timer(). */
static int delay_start(struct conn *c, unsigned long long ms)
{
	struct itimerspec its = { .it_value = { ms / 1000, ms % 1000 * 1000000 } };
	struct epoll_event ev = { .events = EPOLLIN };

	if (!ms)
		return resp_pattern(c, 200, body_size);
	if (c->tfd < 0) {
		c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (c->tfd < 0)
			return -errno;
		ev.data.u64 = tag(c, TAG_TIMER);
		if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, c->tfd, &ev))
			return -errno;
	}
	if (timerfd_settime(c->tfd, 0, &its, NULL))
		return -errno;
	c->mode = M_DELAY;
	return 0;
}

static int req_dispatch(struct conn *c)
{
	struct req *r = &c->req;

	switch (r->route) {
	case R_DEFAULT:
		return resp_pattern(c, 200, body_size);
	case R_SIZE:
		return resp_pattern(c, 200, r->arg);
	case R_STATUS:
		return resp_status(c, r->arg);
	case R_DELAY:
		return delay_start(c, r->arg);
	case R_ECHO:
	case R_HEADERS:
		return resp_buffer(c);
	case R_CHUNKED:
		return resp_chunked(c, r->arg);
	case R_CLOSE:
		r->keep_alive = false;
		return resp_text(c, 200, "bye\n");
	case R_RESET:
		c->mode = M_RESET;
		return 0;
	case R_HANG:
		c->mode = M_HANG;
		return 0;
	case R_COUNT:
		return resp_count(c);
	}
	return 0;
}

/* The current request has fully arrived: count and answer it. */
static int req_done(struct conn *c)
{
	struct req *r = &c->req;
	int err;

	c->parse = P_HEAD;
	counter_inc(&c->w->requests);
	err = req_dispatch(c);
	free(r->buf);
	r->buf = NULL;
	if (!err && !r->keep_alive && c->mode == M_RUN)
		c->mode = M_CLOSE;
	return err;
}

/* Answer code with c->why as the body, and close after it. */
static int req_reject(struct conn *c, int code)
{
	struct req *r = &c->req;

	log_msg("%s: answering %d: %s", c->ep->addr, code, c->why);
	free(r->buf);
	r->buf = NULL;
	r->keep_alive = false;
	r->http10 = false;
	r->head_only = false;
	c->parse = P_HEAD;
	c->mode = M_CLOSE;
	return resp_text(c, code, "%s\n", c->why);
}

/* ---- request parsing: these return 0, -EAGAIN when more input is
 * needed, -errno on failure, or a status code to reject the request with
 * (c->why says why) ---- */

static int bad(struct conn *c, int code, const char *why)
{
	c->why = why;
	return code;
}

static int parse_num(const char *p, size_t n, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	if (!n || n > 18)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

static bool is_token(const char *p, size_t n)
{
	size_t i;

	if (!n)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = p[i];

		if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
			continue;
		/* ch first: strchr() would find the NUL terminator */
		if (!ch || (!(ch >= '0' && ch <= '9') && !strchr("!#$%&'*+-.^_`|~", ch)))
			return false;
	}
	return true;
}

static bool token_is(const char *p, size_t n, const char *lit)
{
	return n == strlen(lit) && !strncasecmp(p, lit, n);
}

/* Next element of a comma-separated header value, trimmed; false at the end. */
static bool list_next(const char **pos, const char *end, const char **tok, size_t *len)
{
	const char *p = *pos, *e;

	while (p < end && (*p == ',' || *p == ' ' || *p == '\t'))
		p++;
	if (p == end)
		return false;
	e = memchr(p, ',', end - p);
	if (!e)
		e = end;
	*pos = e;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*tok = p;
	*len = e - p;
	return true;
}

#define ROUTE(p, r, lo, hi)                 \
	{                                   \
		p, sizeof(p) - 1, r, lo, hi \
	}
static const struct route_def {
	const char *path;
	size_t len;
	enum route route;
	unsigned long long min, max; /* of the number after path; max 0: none */
} routes[] = {
	ROUTE("/size/", R_SIZE, 0, ARG_SIZE_MAX),
	ROUTE("/status/", R_STATUS, 200, 599),
	ROUTE("/delay/", R_DELAY, 0, ARG_DELAY_MAX),
	ROUTE("/chunked/", R_CHUNKED, 0, ARG_SIZE_MAX),
	ROUTE("/echo", R_ECHO, 0, 0),
	ROUTE("/headers", R_HEADERS, 0, 0),
	ROUTE("/close", R_CLOSE, 0, 0),
	ROUTE("/reset", R_RESET, 0, 0),
	ROUTE("/hang", R_HANG, 0, 0),
	ROUTE("/count", R_COUNT, 0, 0),
};

static int route_parse(struct conn *c, const char *t, size_t n)
{
	const struct route_def *d;
	const char *end = t + n, *p;
	size_t i;

	/* absolute-form (RFC 9112 §3.2.2): route on its path */
	p = n > 3 ? memmem(t, n, "://", 3) : NULL;
	if (p && t[0] != '/') {
		t = memchr(p + 3, '/', end - p - 3);
		n = t ? (size_t)(end - t) : 0;
	}
	for (i = 0; i < n; i++)
		if (t[i] == '?' || t[i] == '#')
			break;
	n = i;
	c->req.route = R_DEFAULT;
	for (d = routes; d < routes + sizeof(routes) / sizeof(routes[0]); d++) {
		if (!d->max) {
			if (n == d->len && !memcmp(t, d->path, n)) {
				c->req.route = d->route;
				break;
			}
		} else if (n >= d->len && !memcmp(t, d->path, d->len)) {
			if (parse_num(t + d->len, n - d->len, &c->req.arg) || c->req.arg < d->min ||
			    c->req.arg > d->max)
				return bad(c, 400, "bad number in path");
			c->req.route = d->route;
			break;
		}
	}
	return 0;
}

static int request_line(struct conn *c, const char *line, size_t len)
{
	const char *end = line + len, *sp, *t, *v;
	struct req *r = &c->req;

	sp = memchr(line, ' ', len);
	if (!sp || !is_token(line, sp - line))
		return bad(c, 400, "malformed request line");
	r->head_only = sp - line == 4 && !memcmp(line, "HEAD", 4);
	t = sp + 1;
	sp = memchr(t, ' ', end - t);
	if (!sp || sp == t)
		return bad(c, 400, "malformed request line");
	for (v = t; v < sp; v++)
		if ((unsigned char)*v < 0x21 || *v == 0x7f)
			return bad(c, 400, "malformed request target");
	v = sp + 1;
	if (end - v != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[7] < '0' || v[7] > '9')
		return bad(c, 400, "malformed HTTP version");
	if (v[5] != '1')
		return bad(c, 505, "HTTP version not supported");
	r->http10 = v[7] == '0';
	return route_parse(c, t, sp - t);
}

/* What the headers say about framing and the connection. */
struct head_info {
	unsigned long long cl;
	bool has_cl, has_te, chunked, close, keep_alive, expect;
};

static int header_line(struct conn *c, struct head_info *h, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len), *v, *end = line + len, *tok;
	unsigned long long cl;
	size_t n;

	/* also rejects obs-fold and whitespace before the colon (RFC 9112 §5) */
	if (!colon || !is_token(line, colon - line))
		return bad(c, 400, "malformed header line");
	n = colon - line;
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (token_is(line, n, "content-length")) {
		if (parse_num(v, end - v, &cl) || (h->has_cl && cl != h->cl))
			return bad(c, 400, "bad Content-Length");
		h->has_cl = true;
		h->cl = cl;
	} else if (token_is(line, n, "transfer-encoding")) {
		/* only the last coding decides whether the body is chunked */
		h->has_te = true;
		while (list_next(&v, end, &tok, &n))
			h->chunked = token_is(tok, n, "chunked");
	} else if (token_is(line, n, "connection")) {
		while (list_next(&v, end, &tok, &n)) {
			h->close |= token_is(tok, n, "close");
			h->keep_alive |= token_is(tok, n, "keep-alive");
		}
	} else if (token_is(line, n, "expect")) {
		h->expect = token_is(v, end - v, "100-continue");
	}
	return 0;
}

/* Decide framing and persistence from the headers (RFC 9112 §6.3, §9.3). */
static int head_finish(struct conn *c, const struct head_info *h)
{
	struct req *r = &c->req;

	if (h->has_te && h->has_cl)
		return bad(c, 400, "both Content-Length and Transfer-Encoding");
	if (h->has_te && !h->chunked)
		return bad(c, 400, "Transfer-Encoding does not end in chunked");
	r->keep_alive = !h->close && (!r->http10 || h->keep_alive);
	if (h->has_te && r->http10)
		r->keep_alive = false;
	r->expect = h->expect && !r->http10;
	c->parse = P_HEAD;
	if (h->chunked) {
		c->parse = P_CHUNK_SIZE;
	} else if (h->cl) {
		if (r->route == R_ECHO && h->cl > ECHO_MAX)
			return bad(c, 413, "echo body over 64 MiB");
		c->parse = P_LENGTH;
		r->left = h->cl;
	}
	return 0;
}

/* Parse a complete head of hlen bytes (through its blank line) into c->req. */
static int head_parse(struct conn *c, const char *p, size_t hlen)
{
	const char *end = p + hlen, *line, *nl;
	struct head_info h = { 0 };
	size_t len;
	int err;

	c->req = (struct req){ 0 };
	for (line = p;; line = nl + 1) {
		nl = memchr(line, '\n', end - line);
		len = nl - line;
		if (len && line[len - 1] == '\r')
			len--;
		if (!len)
			break;
		if (memchr(line, '\r', len))
			return bad(c, 400, "bare CR in head");
		if (line == p)
			err = request_line(c, line, len);
		else
			err = header_line(c, &h, line, len);
		if (err)
			return err;
	}
	return head_finish(c, &h);
}

/* Length of the head at p through its blank line (LF or CRLF endings), or 0
 * while it is incomplete; *scan remembers how far it was searched. */
static size_t head_end(const char *p, size_t n, size_t *scan)
{
	const char *nl;
	size_t at;

	for (at = *scan; (nl = memchr(p + at, '\n', n - at)); at++) {
		at = nl - p;
		if ((at >= 1 && p[at - 1] == '\n') ||
		    (at >= 2 && p[at - 1] == '\r' && p[at - 2] == '\n'))
			return at + 1;
	}
	*scan = n;
	return 0;
}

static int req_head(struct conn *c)
{
	struct req *r = &c->req;
	size_t avail, hlen;
	const char *p;
	int err;

	/* RFC 9112 §2.2: ignore empty lines before a request line */
	while (c->in_rd < c->in_wr && (c->in[c->in_rd] == '\r' || c->in[c->in_rd] == '\n'))
		c->in_rd++;
	p = c->in + c->in_rd;
	avail = c->in_wr - c->in_rd;
	hlen = head_end(p, avail, &c->scan);
	if (!hlen)
		return avail >= IN_MAX ? bad(c, 431, "request head too large") : -EAGAIN;
	c->in_rd += hlen;
	c->scan = 0;
	err = head_parse(c, p, hlen);
	if (err)
		return err;
	if (r->route == R_HEADERS) {
		r->buf = malloc(hlen);
		if (!r->buf)
			return -ENOMEM;
		memcpy(r->buf, p, hlen);
		r->len = r->cap = hlen;
	}
	if (c->parse == P_HEAD)
		return req_done(c);
	if (r->expect)
		return out_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 0;
}

/* Take one line of input, without its LF or CRLF. */
static int in_line(struct conn *c, const char **line, size_t *len)
{
	const char *p = c->in + c->in_rd, *nl;
	size_t avail = c->in_wr - c->in_rd;

	nl = memchr(p, '\n', avail);
	if (!nl)
		return avail > LINE_MAX_LEN ? bad(c, 400, "chunk line too long") : -EAGAIN;
	*line = p;
	*len = nl - p;
	if (*len && p[*len - 1] == '\r')
		(*len)--;
	c->in_rd += nl - p + 1;
	return 0;
}

/* Consume body bytes; /echo keeps them, everything else discards them. */
static int body_data(struct conn *c)
{
	struct req *r = &c->req;
	size_t n = c->in_wr - c->in_rd, cap;
	char *p;

	if (n > r->left)
		n = r->left;
	if (!n)
		return -EAGAIN;
	if (r->route == R_ECHO) {
		if (r->len + n > ECHO_MAX)
			return bad(c, 413, "echo body over 64 MiB");
		if (r->len + n > r->cap) {
			for (cap = r->cap ? r->cap * 2 : 4096; cap < r->len + n; cap *= 2)
				;
			p = realloc(r->buf, cap);
			if (!p)
				return -ENOMEM;
			r->buf = p;
			r->cap = cap;
		}
		memcpy(r->buf + r->len, c->in + c->in_rd, n);
		r->len += n;
	}
	c->in_rd += n;
	r->left -= n;
	return r->left ? -EAGAIN : 0;
}

static int chunk_size(struct conn *c, const char *p, size_t len)
{
	unsigned long long v = 0;
	size_t i;
	int d;

	for (i = 0; i < len; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f')
			d = (p[i] | 0x20) - 'a' + 10;
		else
			break;
		if (v >> 58)
			return bad(c, 400, "chunk size too large");
		v = v << 4 | d;
	}
	/* extensions (";name=value") carry nothing we need */
	if (!i || (i < len && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
		return bad(c, 400, "malformed chunk size");
	c->req.left = v;
	c->parse = v ? P_CHUNK_DATA : P_TRAILER;
	return 0;
}

static int req_body(struct conn *c)
{
	const char *line;
	size_t len;
	int err;

	for (;;) {
		if (c->parse == P_LENGTH || c->parse == P_CHUNK_DATA) {
			err = body_data(c);
			if (err)
				return err;
			if (c->parse == P_LENGTH)
				return req_done(c);
			c->parse = P_CHUNK_END;
			continue;
		}
		err = in_line(c, &line, &len);
		if (err)
			return err;
		if (c->parse == P_CHUNK_SIZE) {
			err = chunk_size(c, line, len);
			if (err)
				return err;
		} else if (c->parse == P_CHUNK_END) {
			if (len)
				return bad(c, 400, "chunk longer than its size");
			c->parse = P_CHUNK_SIZE;
		} else if (!len) {
			return req_done(c); /* the blank line after the trailers */
		}
	}
}

/* Answer the buffered requests until input runs out, the output is full or
 * the mode stops answering. Returns 1 when it stopped on full output, 0 or
 * -errno otherwise. */
static int conn_process(struct conn *c)
{
	int err;

	while (c->mode == M_RUN) {
		if (out_busy(c))
			return 1;
		err = c->parse == P_HEAD ? req_head(c) : req_body(c);
		if (err == -EAGAIN)
			return 0;
		if (err > 0)
			err = req_reject(c, err);
		if (err)
			return err;
	}
	return 0;
}

/* ---- connections ---- */

/* Make room in the input buffer: reuse it when empty, slide a partial
 * request to the front, grow up to IN_MAX. */
static int in_room(struct conn *c)
{
	size_t cap;
	char *p;

	if (c->in_rd == c->in_wr) {
		c->in_rd = c->in_wr = 0;
	} else if (c->in_rd && c->in_cap - c->in_wr < 1024) {
		memmove(c->in, c->in + c->in_rd, c->in_wr - c->in_rd);
		c->in_wr -= c->in_rd;
		c->in_rd = 0;
	}
	if (c->in_wr < c->in_cap)
		return 0;
	if (c->in_cap >= IN_MAX)
		return -ENOBUFS;
	cap = c->in_cap * 2 < IN_MAX ? c->in_cap * 2 : IN_MAX;
	p = realloc(c->in, cap);
	if (!p)
		return -ENOMEM;
	c->in = p;
	c->in_cap = cap;
	return 0;
}

/* One read per readiness (level-triggered: the rest waits for the next). */
static int conn_read(struct conn *c)
{
	ssize_t n;
	int err;

	err = in_room(c);
	if (err)
		return err;
	n = read(c->fd, c->in + c->in_wr, c->in_cap - c->in_wr);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (!n)
		c->eof = true;
	c->in_wr += n;
	if (c->mode == M_HANG || c->mode == M_DRAIN)
		c->in_rd = c->in_wr = 0;
	return 0;
}

static int conn_reset(struct conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	/* a zero linger makes close() send RST instead of FIN */
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	return -ECONNRESET;
}

/* Answer what is buffered, write it, and step through the closing modes.
 * Returns 0, or -errno when the connection is to be closed. */
static int conn_run(struct conn *c)
{
	int busy, ret;

	for (;;) {
		busy = conn_process(c);
		if (busy < 0)
			return busy;
		ret = conn_flush(c);
		if (ret <= 0)
			return ret;
		if (c->mode == M_RESET)
			return conn_reset(c);
		if (c->mode == M_CLOSE) {
			/* FIN first, then read until the peer closes, so that
			 * unread requests do not turn our close into an RST that
			 * could destroy the answer before the peer reads it */
			shutdown(c->fd, SHUT_WR);
			c->mode = M_DRAIN;
			c->in_rd = c->in_wr = 0;
		}
		if (!busy)
			return 0;
	}
}

/* Close when nothing is left to do, else register the events we wait for:
 * no EPOLLIN while output is queued, so a peer that pipelines without
 * reading cannot make us buffer without bound. */
static int conn_settle(struct conn *c)
{
	struct epoll_event ev = { .data.u64 = tag(c, TAG_CONN) };
	bool pending = out_pending(c);

	if (c->eof && !pending && c->mode != M_DELAY)
		return -ECONNRESET;
	if (pending)
		ev.events = EPOLLOUT;
	else if (!c->eof && c->mode != M_DELAY)
		ev.events = EPOLLIN;
	if (ev.events == c->interest)
		return 0;
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev))
		return -errno;
	c->interest = ev.events;
	return 0;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	if (c->tfd >= 0)
		close(c->tfd);
	c->fd = -1;
	free(c->in);
	free(c->out);
	free(c->body.owned);
	free(c->req.buf);
	c->next_dead = c->w->dead;
	c->w->dead = c;
}

static int conn_timer(struct conn *c)
{
	uint64_t ticks;
	int err;

	if (read(c->tfd, &ticks, sizeof(ticks)) < 0 || c->mode != M_DELAY)
		return 0;
	c->mode = M_RUN;
	err = resp_pattern(c, 200, body_size);
	if (err)
		return err;
	if (!c->req.keep_alive)
		c->mode = M_CLOSE;
	return conn_run(c);
}

static void conn_event(struct conn *c, uint32_t events, bool timer)
{
	int err;

	if (c->fd < 0)
		return; /* closed earlier in this batch */
	if (timer) {
		err = conn_timer(c);
	} else if (events & (EPOLLERR | EPOLLHUP)) {
		err = -EPIPE; /* reset, or both directions shut: nothing to write to */
	} else {
		err = events & EPOLLIN ? conn_read(c) : 0;
		if (!err)
			err = conn_run(c);
	}
	if (!err)
		err = conn_settle(c);
	if (err) {
		if (err != -ECONNRESET && err != -EPIPE)
			log_msg("%s: closing connection: %s", c->ep->addr, strerror(-err));
		conn_close(c);
	}
}

static int conn_new(struct worker *w, struct endpoint *ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct conn *c;
	int one = 1;

	c = calloc(1, sizeof(*c));
	if (!c)
		goto err_close;
	c->in = malloc(IN_INIT);
	c->out = malloc(OUT_INIT);
	if (!c->in || !c->out)
		goto err_free;
	c->in_cap = IN_INIT;
	c->out_cap = OUT_INIT;
	c->fd = fd;
	c->tfd = -1;
	c->w = w;
	c->ep = ep;
	c->interest = EPOLLIN;
	/* answers leave in one write; never hold a tail back for an ACK */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev.data.u64 = tag(c, TAG_CONN);
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev))
		goto err_free;
	counter_inc(&w->conns);
	return 0;
err_free:
	free(c->in);
	free(c->out);
	free(c);
err_close:
	close(fd);
	return -ENOMEM;
}

static void listener_accept(struct worker *w, struct listener *l)
{
	int i, fd;

	for (i = 0; i < ACCEPTS_PER_TURN; i++) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_msg("%s: accept: %s", l->ep->addr, strerror(errno));
			return;
		}
		if (conn_new(w, l->ep, fd))
			log_msg("%s: cannot set up a connection", l->ep->addr);
	}
}

static void *worker_run(void *arg)
{
	struct epoll_event ev[EVENTS];
	struct worker *w = arg;
	struct conn *c;
	int i, n;

	for (;;) {
		n = epoll_wait(w->epfd, ev, EVENTS, -1);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "Error: epoll_wait: %s\n", strerror(errno));
			exit(1);
		}
		for (i = 0; i < n; i++) {
			switch (ev[i].data.u64 & TAG_MASK) {
			case TAG_LISTENER:
				listener_accept(w, untag(ev[i].data.u64));
				break;
			case TAG_TIMER:
				conn_event(untag(ev[i].data.u64), 0, true);
				break;
			default:
				conn_event(untag(ev[i].data.u64), ev[i].events, false);
			}
		}
		while ((c = w->dead)) {
			w->dead = c->next_dead;
			free(c);
		}
	}
	return NULL;
}

/* ---- set-up ---- */

/* Resolve "ADDR:PORT" or "[ADDR6]:PORT" into e->sa. Returns 0 or -EINVAL. */
static int endpoint_parse(struct endpoint *e, const char *text)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	char host[256];
	const char *port;
	size_t n;

	e->text = text;
	if (text[0] == '[') {
		port = strchr(text, ']');
		if (!port || port[1] != ':')
			return -EINVAL;
		n = port - text - 1;
		text++;
		port += 2;
	} else {
		port = strrchr(text, ':');
		if (!port)
			return -EINVAL;
		n = port - text;
		port++;
	}
	if (n >= sizeof(host) || !*port)
		return -EINVAL;
	memcpy(host, text, n);
	host[n] = 0;
	if (getaddrinfo(n ? host : "0.0.0.0", port, &hints, &ai))
		return -EINVAL;
	memcpy(&e->sa, ai->ai_addr, ai->ai_addrlen);
	e->salen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* A listening socket on e; every worker has one when --threads > 1. */
static int listen_socket(struct endpoint *e, bool reuseport)
{
	int fd, one = 1, err;

	fd = socket(e->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* only with threads: else a second instance could silently share the port */
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto err;
	/* so that [::]:P and 0.0.0.0:P can both be listened on */
	if (e->sa.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		goto err;
	if (bind(fd, (struct sockaddr *)&e->sa, e->salen) || listen(fd, 4096))
		goto err;
	return fd;
err:
	err = -errno;
	close(fd);
	return err;
}

/* After the first bind: learn the port (it may have been 0), and build
 * the address text, the default name and the default answer's head. */
static int endpoint_ready(struct endpoint *e, int fd, const char *name)
{
	char host[INET6_ADDRSTRLEN], port[8];
	int n;

	e->salen = sizeof(e->sa);
	if (getsockname(fd, (struct sockaddr *)&e->sa, &e->salen))
		return -errno;
	if (getnameinfo((struct sockaddr *)&e->sa, e->salen, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV))
		return -EINVAL;
	snprintf(e->addr, sizeof(e->addr), e->sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
		 port);
	e->name = name ? name : e->addr;
	n = asprintf(&e->head,
		     "HTTP/1.1 200 OK\r\nX-Upstream: %s\r\nContent-Type: text/plain\r\n"
		     "Content-Length: %llu\r\n\r\n",
		     e->name, body_size);
	if (n < 0)
		return -ENOMEM;
	e->head_len = n;
	return 0;
}

static int worker_init(struct worker *w, bool first, const char *name)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct listener *l;
	int i, err;

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		return -errno;
	for (i = 0; i < n_endpoints; i++) {
		l = &w->ls[i];
		l->ep = &endpoints[i];
		l->fd = listen_socket(l->ep, n_workers > 1);
		if (l->fd < 0) {
			fprintf(stderr, "Error: listen on %s: %s\n", l->ep->text, strerror(-l->fd));
			return l->fd;
		}
		err = first ? endpoint_ready(l->ep, l->fd, name) : 0;
		if (err) {
			fprintf(stderr, "Error: %s: %s\n", l->ep->text, strerror(-err));
			return err;
		}
		ev.data.u64 = tag(l, TAG_LISTENER);
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev))
			return -errno;
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: http_upstream --listen ADDR:PORT [--listen ...] [OPTIONS]\n"
		"An HTTP/1.1 origin for benchmarks and tests. ADDR: IPv4 or [IPv6].\n"
		"Options:\n"
		"  --listen ADDR:PORT  listen here (up to %d; port 0: any)\n"
		"  --name NAME         X-Upstream value (default: the listen address)\n"
		"  --body BYTES        body size of the default answer (0); K, M, G\n"
		"  --threads N         event loops, with SO_REUSEPORT listeners (1)\n"
		"  --quiet             no log of rejected requests and failed connections\n"
		"Paths (the query string is ignored):\n"
		"  /size/N      N bytes          /status/CODE   that status (200-599)\n"
		"  /delay/MS    the default answer after MS milliseconds\n"
		"  /echo        the request body /chunked/N     N bytes, chunked\n"
		"  /headers     the request head /close         \"bye\", then close\n"
		"  /reset       RST, no answer   /hang          never answer\n"
		"  /count       requests served and connections accepted\n"
		"  anything else: 200 with --body bytes\n",
		MAX_LISTENERS);
}

/* A byte count with an optional K, M or G (powers of 1024). */
static int parse_size(const char *text, unsigned long long *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || *text == '-')
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		shift = 10;
	else if (*end == 'm' || *end == 'M')
		shift = 20;
	else if (*end == 'g' || *end == 'G')
		shift = 30;
	if ((shift && end[1]) || (!shift && *end) || v > ARG_SIZE_MAX >> shift)
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static int parse_args(int argc, char **argv, const char **name)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "body", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned long long v;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (n_endpoints == MAX_LISTENERS ||
			    endpoint_parse(&endpoints[n_endpoints++], optarg)) {
				fprintf(stderr, "Error: bad --listen '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 'n':
			*name = optarg;
			break;
		case 'b':
			if (parse_size(optarg, &body_size)) {
				fprintf(stderr, "Error: bad --body '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 't':
			if (parse_size(optarg, &v) || !v || v > MAX_THREADS) {
				fprintf(stderr, "Error: --threads wants 1 to %d\n", MAX_THREADS);
				return -EINVAL;
			}
			n_workers = v;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
	}
	if (optind < argc || !n_endpoints) {
		fprintf(stderr, "Error: %s\n",
			optind < argc ? "unexpected argument" : "no --listen");
		return -EINVAL;
	}
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	_exit(0);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	const char *name = NULL;
	int i;

	if (parse_args(argc, argv, &name)) {
		usage(stderr);
		return 2;
	}
	pattern = malloc(PATTERN_LEN);
	if (!pattern)
		return 1;
	memset(pattern, 'x', PATTERN_LEN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < n_workers; i++)
		if (worker_init(&workers[i], i == 0, name))
			return 1;
	for (i = 0; i < n_endpoints; i++)
		printf("listening on %s\n", endpoints[i].addr);
	fflush(stdout);
	for (i = 1; i < n_workers; i++) {
		if (pthread_create(&workers[i].tid, NULL, worker_run, &workers[i])) {
			fprintf(stderr, "Error: cannot start thread %d\n", i);
			return 1;
		}
	}
	worker_run(&workers[0]);
	return 0;
}
