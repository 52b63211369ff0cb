/* http_upstream's answers: heads, 'x' pattern bodies, /echo and /headers
 * from the request's buffer, /chunked, the /delay timer, /count, and the
 * dispatch of a complete request to its route. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "upstream.h"

enum framing { F_LENGTH, F_CHUNKED, F_NONE };

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
int resp_pattern(struct conn *c, int code, unsigned long long len)
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
int req_done(struct conn *c)
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
int req_reject(struct conn *c, int code)
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
