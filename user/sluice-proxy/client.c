/* Client connections: accept, read and parse request heads, answer what
 * the proxy answers itself (errors, 403, 404), and close. The exchange
 * with the upstream is exchange.c's; a client has at most one at a time,
 * and pipelined requests wait in its buffer until the current one is
 * answered (so responses keep the requests' order). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "proxy.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h; IP6T_SO_ORIGINAL_DST is the same */
#endif

#define ACCEPTS_PER_EVENT 64

/* The VIP:port the client connected to, when the socket layer steered the
 * connection here (its getsockopt hook answers SO_ORIGINAL_DST). */
static void client_original_dst(struct px_client *c, int family)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	struct addr_port ap;

	if (getsockopt(c->fd, family == AF_INET6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST, &ss, &len))
		return;
	addr_from_sockaddr(&ss, &ap);
	memcpy(c->vip.addr, ap.addr, sizeof(ap.addr));
	c->vip.port = ap.port;
	c->vip.family = ap.family;
	c->vip.proto = SL_PROTO_TCP;
}

static void client_new(struct px_worker *w, int fd, const struct sockaddr_storage *ss)
{
	struct px_client *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c) {
		close(fd);
		return;
	}
	c->kind = PX_CLIENT;
	c->fd = fd;
	c->w = w;
	c->state = CL_HEAD;
	c->keep_alive = true;
	addr_from_sockaddr(ss, &c->peer_addr);
	addr_format_endpoint(&c->peer_addr, c->peer_text, sizeof(c->peer_text));
	client_original_dst(c, ss->ss_family);
	c->deadline_ms = w->now_ms + w->settings->header_timeout_ms;
	px_list_init(&c->ready);
	px_list_add(&w->clients, &c->link);
	pm_add(&w->stats.accepted, 1);
	pm_add(&w->stats.active_clients, 1);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (px_watch(w, fd, c, &c->events, EPOLLIN))
		px_client_close(c);
}

/* Out of descriptors or memory: the pending connection stays in the
 * backlog and the listener readable, so stop watching it for a while
 * (worker_scan() resumes) rather than spin; warn once a second at most. */
static void accept_pause(struct px_worker *w, struct px_listener *l, int err)
{
	if (w->now_ms >= w->accept_warned_ms + 1000) {
		log_warn("proxy", "accept: %s; pausing new connections for %d ms", strerror(err),
			 PROXY_SCAN_MS);
		w->accept_warned_ms = w->now_ms;
	}
	if (px_watch(w, l->fd, l, &l->events, 0) == 0)
		w->accept_paused = true;
}

void px_accept_resume(struct px_worker *w)
{
	if (!w->accept_paused || w->draining)
		return;
	for (size_t i = 0; i < w->n_listeners; i++)
		px_watch(w, w->listeners[i].fd, &w->listeners[i], &w->listeners[i].events, EPOLLIN);
	w->accept_paused = false;
}

void px_client_accept(struct px_worker *w, struct px_listener *l)
{
	for (int i = 0; i < ACCEPTS_PER_EVENT && !w->draining; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
			    errno == ENOBUFS)
				accept_pause(w, l, errno);
			return;
		}
		client_new(w, fd, &ss);
	}
}

void px_client_close(struct px_client *c)
{
	struct px_worker *w = c->w;

	if (c->state == CL_DEAD)
		return;
	if (c->state == CL_EXCHANGE)
		px_exchange_abort(&c->x);
	px_list_del(&c->ready);
	px_list_del(&c->link);
	close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
	buf_free(&c->out);
	c->state = CL_DEAD;
	pm_sub(&w->stats.active_clients, 1);
	px_list_add(&w->dead_clients, &c->link);
}

void px_clients_reap(struct px_worker *w)
{
	while (!px_list_empty(&w->dead_clients)) {
		struct px_client *c = px_container(w->dead_clients.next, struct px_client, link);

		px_list_del(&c->link);
		free(c);
	}
}

/* Close after a last answer: shut our side and drop what the client still
 * sends, so the close is a FIN and not a RST that could destroy the answer. */
static void client_linger_close(struct px_client *c)
{
	shutdown(c->fd, SHUT_WR);
	for (int i = 0; i < 8 && recv(c->fd, c->w->scratch, PROXY_SCRATCH, MSG_DONTWAIT) > 0; i++)
		;
	px_client_close(c);
}

/* Write what c->out holds. Returns 0 when all went, -EAGAIN when some
 * stays (EPOLLOUT is then watched), or another -errno (the client is gone). */
int px_client_flush(struct px_client *c)
{
	while (buf_len(&c->out)) {
		ssize_t n = send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN)
			return px_watch(c->w, c->fd, c, &c->events, EPOLLOUT) ?: -EAGAIN;
		if (n < 0)
			return -errno;
		buf_consume(&c->out, n);
	}
	buf_settle(&c->out);
	return 0;
}

/* Queue an answer from the proxy itself: @status with @why as a text
 * body (the head only for a HEAD request). @close_after: the connection
 * ends after it (the request's body, if any, was not read). */
void px_client_answer(struct px_client *c, int status, const char *why, bool close_after,
		      bool head_only)
{
	char head[512];
	int n;

	if (close_after || (c->read_closed && !buf_len(&c->in)))
		c->keep_alive = false;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "%s\r\n%s%s",
		     status, http1_reason(status), strlen(why) + 1,
		     c->keep_alive ? "" : "Connection: close\r\n", head_only ? "" : why,
		     head_only ? "" : "\n");
	if (n < 0 || (size_t)n >= sizeof(head) || buf_append(&c->out, head, n))
		c->keep_alive = false;
}

/* After an answer or a relayed response: the next request, or the end. */
void px_client_next(struct px_client *c)
{
	struct px_worker *w = c->w;
	int err;

	c->requests++;
	/* After a half-close, requests already read are still answered. */
	c->state = c->keep_alive && (!c->read_closed || buf_len(&c->in)) ? CL_HEAD : CL_CLOSING;
	err = px_client_flush(c);
	if (err && err != -EAGAIN) {
		px_client_close(c);
		return;
	}
	if (c->state == CL_CLOSING) {
		c->deadline_ms = w->now_ms + w->settings->header_timeout_ms;
		if (!err)
			client_linger_close(c);
		return;
	}
	c->deadline_ms = w->now_ms + (buf_len(&c->in) ? w->settings->header_timeout_ms
						      : w->settings->client_idle_ms);
	if (!err && px_watch(w, c->fd, c, &c->events, c->read_closed ? 0 : EPOLLIN)) {
		px_client_close(c);
		return;
	}
	if (buf_len(&c->in) && px_list_empty(&c->ready))
		px_list_add(&w->ready, &c->ready);
}

/* The answer to a request the parser refused, and why in words. */
static int parse_error_status(int r, const char **why)
{
	switch (r) {
	case HTTP1_URI_TOO_LONG:
		*why = "request line too long";
		return 414;
	case HTTP1_HEAD_TOO_LARGE:
		*why = "request head too large or too many header fields";
		return 431;
	case HTTP1_NOT_IMPLEMENTED:
		*why = "transfer coding not implemented (only chunked is)";
		return 501;
	case HTTP1_BAD_VERSION:
		*why = "HTTP version not supported (HTTP/1.0 and 1.1 are)";
		return 505;
	default:
		*why = "malformed request";
		return 400;
	}
}

/* A request the proxy refuses before routing: answered, logged, closed. */
static void client_refuse(struct px_client *c, int status, const char *why, bool head_only)
{
	struct px_log_entry e = { .peer = c->peer_text,
				  .method = "-",
				  .host = "",
				  .path = "",
				  .status = status,
				  .bytes_in = buf_len(&c->in),
				  .service = "",
				  .route = UINT32_MAX,
				  .upstream = "",
				  .reason = why };

	pm_add(&c->w->stats.bad_requests, 1);
	px_log_write(&c->w->log, &e);
	buf_consume(&c->in, buf_len(&c->in));
	px_client_answer(c, status, why, true, head_only);
	px_client_next(c);
}

/* Parse the head at the front of c->in and start its exchange. */
/*
 * Is a parse worth it? A head ends with an empty line: until CR LF CR LF
 * shows up (or a bare LF, which the parser refuses), the parser could only
 * say "incomplete" again after re-reading all of it (a client dripping a
 * head would cost O(n^2)). The search starts 3 bytes before the new ones,
 * so an end split across reads is found. Past a limit the parser decides
 * (once for the request line: it says 414 or that the line is whole).
 */
static bool head_may_be_complete(struct px_client *c, const struct http1_limits *lim)
{
	const char *head = buf_head(&c->in), *lf;
	size_t len = buf_len(&c->in), i = c->head_scanned > 3 ? c->head_scanned - 3 : 0;
	bool worth = c->read_closed || len > lim->max_head_bytes ||
		     (len > lim->max_request_line && !c->request_line_ok);

	for (; !worth && i < len && (lf = memchr(head + i, '\n', len - i)); i = lf - head + 1) {
		size_t at = lf - head;

		worth = !at || head[at - 1] != '\r' || at == 1 || /* bare LF; leading CR LF */
			(at >= 3 && head[at - 2] == '\n' && head[at - 3] == '\r');
	}
	c->head_scanned = len;
	return worth;
}

/* A new head starts at the front of c->in. */
static void head_reset(struct px_client *c)
{
	c->head_scanned = 0;
	c->request_line_ok = false;
}

static void client_parse(struct px_client *c)
{
	const struct cfg_proxy *p = c->w->settings;
	struct http1_limits lim = { .max_request_line = p->max_request_line,
				    .max_head_bytes = p->max_header_bytes,
				    .max_headers = p->max_headers };
	struct http1_request req;
	int r;

	if (lim.max_headers > PROXY_MAX_HEADERS_ARRAY)
		lim.max_headers = PROXY_MAX_HEADERS_ARRAY;
	if (!head_may_be_complete(c, &lim))
		return;
	r = http1_parse_request(buf_head(&c->in), buf_len(&c->in), &req, c->w->headers, &lim);
	if (r == HTTP1_INCOMPLETE) {
		c->request_line_ok = buf_len(&c->in) > lim.max_request_line;
		if (c->read_closed)
			px_client_close(c); /* the rest of the head will never come */
		return;
	}
	head_reset(c);
	if (r < 0) {
		const char *why;
		int status = parse_error_status(r, &why);

		client_refuse(c, status, why, false);
		return;
	}
	if (req.body == HTTP1_BODY_LENGTH && p->max_body_bytes &&
	    req.content_length > p->max_body_bytes) {
		client_refuse(c, 413, "request body over the limit", req.method_id == HTTP1_HEAD);
		return;
	}
	px_exchange_start(c, &req, r);
}

static void client_read(struct px_client *c)
{
	ssize_t n = buf_read(&c->in, c->fd, c->w->scratch, PROXY_SCRATCH);

	if (n == -EAGAIN)
		return;
	if (n < 0) {
		px_client_close(c); /* reset: nobody to answer */
		return;
	}
	if (n == 0) {
		c->read_closed = true;
		/* A half-close after whole requests: their answers still go out
		 * (the ones waiting in c->in too); a head or body cut short has
		 * nobody to answer. */
		if ((c->state == CL_EXCHANGE && !px_exchange_request_done(&c->x)) ||
		    (c->state != CL_EXCHANGE && !buf_len(&c->in))) {
			px_client_close(c);
			return;
		}
		px_watch(c->w, c->fd, c, &c->events, c->events & ~PX_REGISTERED & ~EPOLLIN);
		if (c->state == CL_HEAD)
			client_parse(c);
		return;
	}
	if (c->state == CL_HEAD && (size_t)n == buf_len(&c->in))
		/* A request begins: its head must come within the header timeout. */
		c->deadline_ms = c->w->now_ms + c->w->settings->header_timeout_ms;
	if (c->state == CL_HEAD)
		client_parse(c);
	else if (c->state == CL_EXCHANGE)
		px_exchange_client_data(&c->x);
	else if (c->state == CL_CLOSING)
		buf_consume(&c->in, buf_len(&c->in)); /* after our last answer: ignored */
}

void px_client_event(struct px_client *c, uint32_t events)
{
	if (c->state == CL_DEAD)
		return;
	if (events & EPOLLOUT) {
		if (c->state == CL_EXCHANGE) {
			px_exchange_client_writable(&c->x);
		} else {
			int err = px_client_flush(c);

			if (!err &&
			    (c->state == CL_CLOSING || (c->w->draining && !buf_len(&c->in))))
				client_linger_close(c);
			else if (!err)
				px_watch(c->w, c->fd, c, &c->events, c->read_closed ? 0 : EPOLLIN);
			else if (err != -EAGAIN)
				px_client_close(c);
		}
	}
	/* HUP (both ways shut, or a reset) and ERR come whatever epoll was
	 * asked for: an answer could not be delivered, so the client is done. */
	if ((events & (EPOLLHUP | EPOLLERR)) && c->state != CL_DEAD) {
		px_client_close(c);
		return;
	}
	if ((events & EPOLLIN) && c->state != CL_DEAD)
		client_read(c);
	if (c->state != CL_DEAD && buf_settle(&c->in))
		px_client_close(c);
}

void px_client_resume(struct px_client *c)
{
	if (c->state == CL_HEAD && buf_len(&c->in))
		client_parse(c);
	if (c->state != CL_DEAD && buf_settle(&c->in))
		px_client_close(c);
}

void px_client_timeouts(struct px_client *c)
{
	struct px_worker *w = c->w;

	if (c->state == CL_EXCHANGE) {
		px_exchange_timeouts(&c->x);
		return;
	}
	if (w->now_ms < c->deadline_ms)
		return;
	if (c->state == CL_HEAD && buf_len(&c->in))
		client_refuse(c, 408, "request head not received in time", false);
	else
		px_client_close(c); /* idle keep-alive, or a client not reading our answer */
}
