/* The HTTP side of a Prometheus endpoint (metrics_http.h): one request
 * per connection, answered from the owner's loop. Every wait is
 * bounded: a scraper gets METRICS_IO_MS to send its request and as long
 * again to take the answer, so a stuck one cannot hold the loop. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "deadline.h"
#include "log.h"
#include "metrics_http.h"
#include "sluice/types.h"

#define METRICS_IO_MS 1000 /* to read a request, and again to send the answer */
#define METRICS_HEAD_MAX 8192 /* request line and headers */
#define METRICS_BACKLOG 16

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"

/* ---- HTTP: parsing a request head ---- */

struct http_request {
	const char *method, *target;
	size_t method_len, target_len;
};

/* RFC 9110 token characters. */
static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The line ending at @p: its length (CRLF or a bare LF), -2 incomplete, -1 not one. */
static int line_end(const char *p, size_t len)
{
	if (!len)
		return -2;
	if (p[0] == '\n')
		return 1;
	if (p[0] != '\r')
		return -1;
	return len < 2 ? -2 : p[1] == '\n' ? 2 : -1;
}

/* "HTTP/1.0" or "HTTP/1.1" and the line end: bytes, -2 or -1. */
static int http_version(const char *p, size_t len)
{
	static const char want[] = "HTTP/1.";
	size_t n = len < sizeof(want) - 1 ? len : sizeof(want) - 1;
	int end;

	if (memcmp(p, want, n))
		return -1;
	if (len <= sizeof(want) - 1)
		return -2;
	if (p[7] != '0' && p[7] != '1')
		return -1;
	end = line_end(p + 8, len - 8);
	return end < 0 ? end : 8 + end;
}

/* One header line at @p (name ":" value, no control bytes but tab): its
 * length, -2 incomplete, -1 malformed. Values are not kept: the answer
 * depends on the method and path only. */
static int http_header(const char *p, size_t len)
{
	const char *nl = memchr(p, '\n', len);
	size_t end, i = 0;

	while (i < len && is_tchar(p[i]))
		i++;
	if (i < len && (!i || p[i] != ':'))
		return -1;
	if (!nl)
		return -2;
	end = nl - p;
	if (end && p[end - 1] == '\r')
		end--;
	for (i++; i < end; i++) {
		if (((unsigned char)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return -1;
	}
	return nl - p + 1;
}

/* Parse the request line of @buf[0, @len) into @req: bytes through its
 * line end, -2 when more is needed, -1 as soon as it cannot be HTTP/1.x
 * (so a TLS hello or junk is refused without waiting for more). */
static int http_request_line(const char *buf, size_t len, struct http_request *req)
{
	size_t i = 0;
	int ver;

	/* RFC 9112 2.2: empty lines before the request line are ignored. */
	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	req->method = buf + i;
	while (i < len && is_tchar(buf[i]))
		i++;
	req->method_len = buf + i - req->method;
	if (i == len)
		return -2;
	if (buf[i] != ' ' || !req->method_len)
		return -1;
	req->target = buf + ++i;
	while (i < len && (unsigned char)buf[i] > ' ' && buf[i] != 0x7f)
		i++;
	req->target_len = buf + i - req->target;
	if (i == len)
		return -2;
	if (buf[i] != ' ' || !req->target_len)
		return -1;
	ver = http_version(buf + i + 1, len - i - 1);
	return ver < 0 ? ver : (int)(i + 1 + ver);
}

/* Parse the request head in @buf[0, @len), picohttpparser style: bytes
 * through the empty line that ends it, -2 incomplete, -1 malformed. */
static int http_parse_head(const char *buf, size_t len, struct http_request *req)
{
	int n = http_request_line(buf, len, req);
	size_t pos;

	if (n < 0)
		return n;
	for (pos = n;;) {
		int end = line_end(buf + pos, len - pos);

		if (end != -1)
			return end > 0 ? (int)(pos + end) : end;
		n = http_header(buf + pos, len - pos);
		if (n < 0)
			return n;
		pos += n;
	}
}

/* ---- HTTP: one connection ---- */

struct metrics_server {
	int fd;
	metrics_ready_fn ready; /* NULL: ready whenever it answers */
	const void *ready_ctx;
};

enum head_result {
	HEAD_OK,
	HEAD_BAD, /* not HTTP/1.x */
	HEAD_TOO_BIG, /* no end within METRICS_HEAD_MAX */
	HEAD_TIMEOUT, /* the deadline passed first */
	HEAD_CLOSED, /* the peer closed or failed first */
};

/* Read the request head from @fd into @buf (@cap bytes) until it parses
 * into @req or @deadline passes; *@got is how much arrived. */
static enum head_result read_head(int fd, char *buf, size_t cap, size_t *got,
				  struct http_request *req, long long deadline)
{
	for (*got = 0;;) {
		ssize_t n = recv(fd, buf + *got, cap - *got, 0);
		int ret;

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			ret = wait_fd(fd, POLLIN, deadline);
			if (ret)
				return ret == -ETIMEDOUT ? HEAD_TIMEOUT : HEAD_CLOSED;
			continue;
		}
		if (n <= 0)
			return HEAD_CLOSED;
		*got += n;
		ret = http_parse_head(buf, *got, req);
		if (ret > 0)
			return HEAD_OK;
		if (ret == -1)
			return HEAD_BAD;
		if (*got == cap)
			return HEAD_TOO_BIG;
	}
}

/* Drop the first @n bytes of @msg's iovecs. */
static void iov_advance(struct msghdr *msg, size_t n)
{
	while (msg->msg_iovlen && n >= msg->msg_iov->iov_len) {
		n -= msg->msg_iov->iov_len;
		msg->msg_iov++;
		msg->msg_iovlen--;
	}
	if (msg->msg_iovlen) {
		msg->msg_iov->iov_base = (char *)msg->msg_iov->iov_base + n;
		msg->msg_iov->iov_len -= n;
	}
}

/* Send @iov[0, @n) before @deadline. MSG_NOSIGNAL: a scraper that went
 * away is an EPIPE here, not a SIGPIPE that kills the agent. 0 or -errno. */
static int send_all(int fd, struct iovec *iov, size_t n, long long deadline)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n };

	iov_advance(&msg, 0);
	while (msg.msg_iovlen) {
		ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
		int ret;

		if (sent >= 0) {
			iov_advance(&msg, sent);
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		ret = wait_fd(fd, POLLOUT, deadline);
		if (ret)
			return ret;
	}
	return 0;
}

struct http_answer {
	const char *status; /* "200 OK" */
	const char *type; /* Content-Type */
	const char *extra; /* more header lines, each ending in CRLF, or NULL */
	const char *body;
	size_t len;
	bool head_only; /* HEAD: headers as for GET, no body */
};

/* Send @a with its headers in one sendmsg() where it fits, so the body does
 * not wait behind Nagle for the header segment's ACK. 0 or -errno. */
static int http_send(int fd, const struct http_answer *a)
{
	char head[512];
	struct iovec iov[2];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n%s\r\n",
			 a->status, a->type, a->len, a->extra ? a->extra : "");

	iov[0] = (struct iovec){ .iov_base = head, .iov_len = n };
	iov[1] =
		(struct iovec){ .iov_base = (void *)a->body, .iov_len = a->head_only ? 0 : a->len };
	return send_all(fd, iov, 2, now_ms() + METRICS_IO_MS);
}

static void http_error(int fd, const char *status, const char *extra, bool head_only)
{
	char body[64];
	struct http_answer a = { .status = status,
				 .type = CONTENT_TYPE_TEXT,
				 .extra = extra,
				 .body = body,
				 .head_only = head_only };

	a.len = snprintf(body, sizeof(body), "%s\n", status);
	http_send(fd, &a);
}

/* Render into memory first: the length goes in the headers, and a map
 * read that fails midway becomes a 500 rather than a truncated scrape. */
static void serve_metrics(int fd, metrics_render_fn render, const void *ctx, bool head_only)
{
	struct http_answer a = { .status = "200 OK",
				 .type = CONTENT_TYPE_METRICS,
				 .head_only = head_only };
	char *body = NULL;
	FILE *out = open_memstream(&body, &a.len);
	int err = out ? render(out, ctx) : -errno;

	if (out && fclose(out) && !err)
		err = -errno;
	if (err) {
		log_warn("metrics", "cannot render the metrics: %s", strerror(-err));
		http_error(fd, "500 Internal Server Error", NULL, head_only);
	} else {
		a.body = body;
		http_send(fd, &a);
	}
	free(body);
}

static bool token_is(const char *p, size_t len, const char *want)
{
	return len == strlen(want) && !memcmp(p, want, len);
}

/* Liveness (/healthz): answering at all is the proof the loop runs.
 * Readiness (/readyz): what the owner's callback says, with its reason. */
static void serve_probe(int fd, const struct metrics_server *srv, bool readiness, bool head_only)
{
	char why[256] = "ok";
	bool ready = !readiness || !srv->ready || srv->ready(srv->ready_ctx, why, sizeof(why));
	struct http_answer a = { .status = ready ? "200 OK" : "503 Service Unavailable",
				 .type = CONTENT_TYPE_TEXT,
				 .body = why,
				 .head_only = head_only };

	a.len = strlen(why);
	if (a.len < sizeof(why) - 1)
		why[a.len++] = '\n';
	http_send(fd, &a);
}

static void serve_request(int fd, const struct metrics_server *srv, const struct http_request *req,
			  metrics_render_fn render, const void *ctx)
{
	bool head = token_is(req->method, req->method_len, "HEAD");
	const char *query = memchr(req->target, '?', req->target_len);
	size_t path_len = query ? (size_t)(query - req->target) : req->target_len;

	if (!head && !token_is(req->method, req->method_len, "GET"))
		http_error(fd, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", false);
	else if (token_is(req->target, path_len, "/healthz"))
		serve_probe(fd, srv, false, head);
	else if (token_is(req->target, path_len, "/readyz"))
		serve_probe(fd, srv, true, head);
	else if (!token_is(req->target, path_len, "/metrics"))
		http_error(fd, "404 Not Found", NULL, head);
	else
		serve_metrics(fd, render, ctx, head);
}

/* Close after answering: shut our side, then drain what the client sent
 * that we did not read, so close() sends a FIN rather than a RST that
 * can destroy the answer in flight (e.g. after an oversized request). */
static void http_close(int fd)
{
	char sink[4096];

	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

void metrics_serve_one(struct metrics_server *srv, metrics_render_fn render, const void *ctx)
{
	char buf[METRICS_HEAD_MAX];
	struct http_request req;
	enum head_result r;
	size_t got;
	int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		/* Nothing pending, or a client that gave up before we got to it. */
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("metrics", "accept: %s", strerror(errno));
		return;
	}
	r = read_head(fd, buf, sizeof(buf), &got, &req, now_ms() + METRICS_IO_MS);
	if (r == HEAD_OK)
		serve_request(fd, srv, &req, render, ctx);
	else if (r == HEAD_BAD || r == HEAD_TOO_BIG || (r == HEAD_CLOSED && got))
		http_error(fd, "400 Bad Request", NULL, false);
	else if (r == HEAD_TIMEOUT && got)
		http_error(fd, "408 Request Timeout", NULL, false);
	/* else: the client sent nothing; there is nothing to answer. */
	http_close(fd);
}

/* ---- HTTP: the listening socket ---- */

static int parse_port(const char *text, __u16 *port)
{
	char *end;
	unsigned long v;

	if (*text < '0' || *text > '9' || strlen(text) > 5)
		return -EINVAL;
	v = strtoul(text, &end, 10);
	if (*end || v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

/* "ADDR:PORT", "[V6]:PORT" or ":PORT" (every address: *@any, given as
 * IPv6 [::]) into @ss. Port 0 asks for an ephemeral port (tests read it
 * back with getsockname()). 0 or -EINVAL. */
static int listen_addr_parse(const char *text, struct sockaddr_storage *ss, bool *any)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(text, ':');
	char host[INET6_ADDRSTRLEN + 2];
	size_t len = colon ? (size_t)(colon - text) : 0;
	__u16 port;

	if (!colon || len >= sizeof(host) || parse_port(colon + 1, &port))
		return -EINVAL;
	memcpy(host, text, len);
	host[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	*any = len == 0;
	if (*any || host[0] == '[') {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		if (*any)
			return 0; /* in6addr_any is all zeros */
		if (len < 3 || host[len - 1] != ']')
			return -EINVAL;
		host[len - 1] = '\0';
		return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	/* A bare IPv6 address is refused: is "::1:80" port 80 or ::1:80? */
	in4->sin_family = AF_INET;
	in4->sin_port = htons(port);
	return inet_pton(AF_INET, host, &in4->sin_addr) == 1 ? 0 : -EINVAL;
}

/* A nonblocking listening socket on @ss; @dual: IPv6 that takes IPv4 too.
 * The fd or -errno. */
static int listener_open(const struct sockaddr_storage *ss, bool dual)
{
	socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, zero = 0, err = 0;

	if (fd < 0)
		return -errno;
	/* Restarting the agent must not wait out TIME_WAIT of old scrapes. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) ||
	    bind(fd, (const struct sockaddr *)ss, len) || listen(fd, METRICS_BACKLOG))
		err = -errno;
	if (!err)
		return fd;
	close(fd);
	return err;
}

struct metrics_server *metrics_listen(const char *addr_port, char *err, size_t err_len)
{
	struct sockaddr_storage ss;
	struct metrics_server *srv;
	bool any;
	int fd;

	if (listen_addr_parse(addr_port, &ss, &any)) {
		snprintf(err, err_len,
			 "bad metrics address '%s': want ADDR:PORT, [ADDR]:PORT or :PORT",
			 addr_port);
		errno = EINVAL;
		return NULL;
	}
	fd = listener_open(&ss, any);
	if (fd == -EAFNOSUPPORT && any) {
		/* IPv6 disabled on this host: every IPv4 address, then. */
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		__be16 port = ((struct sockaddr_in6 *)&ss)->sin6_port;

		memset(&ss, 0, sizeof(ss));
		in4->sin_family = AF_INET;
		in4->sin_port = port;
		fd = listener_open(&ss, false);
	}
	srv = fd >= 0 ? calloc(1, sizeof(*srv)) : NULL;
	if (!srv) {
		errno = fd < 0 ? -fd : ENOMEM;
		snprintf(err, err_len, "cannot listen on %s: %s", addr_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	srv->fd = fd;
	return srv;
}

int metrics_fd(const struct metrics_server *srv)
{
	return srv->fd;
}

void metrics_close(struct metrics_server *srv)
{
	if (!srv)
		return;
	close(srv->fd);
	free(srv);
}

void metrics_set_ready(struct metrics_server *srv, metrics_ready_fn ready, const void *ctx)
{
	srv->ready = ready;
	srv->ready_ctx = ctx;
}
