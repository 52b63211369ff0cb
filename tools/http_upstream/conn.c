/* http_upstream's connections: the output queue (head bytes, a body sent
 * straight from memory, /chunked framing as it drains), reads and writes,
 * and a connection's life through its modes. Epoll, level-triggered,
 * non-blocking sockets; no EPOLLIN while output is queued. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "upstream.h"

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

int out_append(struct conn *c, const void *p, size_t n)
{
	if (out_reserve(c, n))
		return -ENOMEM;
	memcpy(c->out + c->out_wr, p, n);
	c->out_wr += n;
	return 0;
}

int __attribute__((format(printf, 2, 3))) out_printf(struct conn *c, const char *fmt, ...)
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
int chunk_refill(struct conn *c)
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

/* ---- connections ---- */

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

void conn_event(struct conn *c, uint32_t events, bool timer)
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

int conn_new(struct worker *w, struct endpoint *ep, int fd)
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
