/* The bytes of an exchange: the request head and body to the upstream,
 * the response head and body to the client, both streamed as they come
 * (bytes wait in a buffer only while the other side cannot take them,
 * and reading that side stops meanwhile), and what epoll watches for it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "exchange.h"
#include "log.h"

#define CLIENT_IN_MAX (256 * 1024) /* bytes read ahead of the upstream */

/* writev() as sendmsg(): no file-position lock, and no SIGPIPE. */
static ssize_t xch_send(int fd, struct iovec *iov, int cnt)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = cnt };

	return sendmsg(fd, &msg, MSG_NOSIGNAL);
}

/* ---- what epoll watches while the exchange runs ---- */

/* Read the client while the upstream keeps up and its buffer has room;
 * write it while bytes wait. Read the upstream unless the client is
 * behind; write it while the request waits. */
void xch_interest(struct px_exchange *x)
{
	struct px_client *c = xch_client(x);
	struct px_upstream *u = x->up;
	uint32_t cw = 0, uw = 0;

	if (x->client_blocked || buf_len(&c->out))
		cw |= EPOLLOUT;
	/* Reading on after the request keeps epoll_ctl off the common path
	 * (pipelined requests wait in c->in) and shows a client's close. Not
	 * once the upstream is gone after its response: a request body still
	 * coming has nowhere to go (the connection closes after the answer). */
	if (!x->up_blocked && buf_len(&c->in) < CLIENT_IN_MAX && !c->read_closed &&
	    !(x->resp_complete && !u && !x->req_complete))
		cw |= EPOLLIN;
	if (px_watch(c->w, c->fd, c, &c->events, cw))
		log_warn("proxy", "epoll_ctl on a client: %s", strerror(errno));
	if (!u || u->state != UP_BUSY)
		return;
	if (x->up_blocked)
		uw |= EPOLLOUT;
	if (!x->client_blocked)
		uw |= EPOLLIN;
	if (px_watch(c->w, u->fd, u, &u->events, uw))
		log_warn("proxy", "epoll_ctl on an upstream: %s", strerror(errno));
}

/* ---- the request: head and body to the upstream ---- */

/* Find which newly read client bytes belong to the body. Returns 0, or
 * an HTTP status to answer (400 bad chunking, 413 over the limit). */
int xch_scan_request(struct px_exchange *x)
{
	struct px_client *c = xch_client(x);
	size_t fresh = buf_len(&c->in) - x->req_avail;
	uint64_t max = c->w->settings->max_body_bytes;
	bool done = false;
	ssize_t n;

	if (x->req_complete || !fresh)
		return 0;
	if (x->req_body == HTTP1_BODY_LENGTH) {
		n = fresh < x->req_left ? fresh : x->req_left;
		x->req_left -= n;
		x->req_avail += n;
		x->req_complete = !x->req_left;
		return 0;
	}
	n = http1_chunked_scan(&x->req_chunk, buf_head(&c->in) + x->req_avail, fresh, &done);
	if (n < 0)
		return 400;
	if (max && x->req_chunk.payload > max)
		return 413;
	x->req_avail += n;
	x->req_complete = done;
	return 0;
}

/* Write what the upstream may take of the head and the body bytes read so
 * far, in one sendmsg. */
void xch_pump_request(struct px_exchange *x)
{
	struct px_client *c = xch_client(x);
	struct px_upstream *u = x->up;
	size_t head_left = buf_len(&x->head) - x->head_sent;
	struct iovec iov[2];
	ssize_t n;
	int cnt = 0;

	if (!u || u->state != UP_BUSY) {
		xch_interest(x); /* connecting: the read-ahead cap still holds */
		return;
	}
	if (head_left)
		iov[cnt++] = (struct iovec){ buf_head(&x->head) + x->head_sent, head_left };
	if (x->req_avail)
		iov[cnt++] = (struct iovec){ buf_head(&c->in), x->req_avail };
	x->up_blocked = false;
	if (cnt) {
		n = xch_send(u->fd, iov, cnt);
		if (n < 0 && errno != EAGAIN) {
			px_exchange_failed(x, PX_FAIL_RESET);
			return;
		}
		if (n < 0)
			n = 0;
		x->idle_deadline_ms = c->w->now_ms + x->route->idle_timeout_ms;
		if ((size_t)n < head_left) {
			x->head_sent += n;
		} else {
			x->head_sent += head_left;
			n -= head_left;
			buf_consume(&c->in, n);
			x->req_avail -= n;
			x->req_body_sent += n;
			x->bytes_in += n;
		}
		x->up_blocked = x->head_sent < buf_len(&x->head) || x->req_avail;
	}
	x->req_done = !x->up_blocked && x->req_complete;
	xch_interest(x);
}

bool xch_take_request_body(struct px_exchange *x)
{
	int status = xch_scan_request(x);

	if (status)
		xch_answer(x, status,
			   status == 413 ? "request body over the limit"
					 : "malformed chunked request body");
	return !status;
}

void px_exchange_client_data(struct px_exchange *x)
{
	if (xch_take_request_body(x))
		xch_pump_request(x);
}

void px_exchange_upstream_writable(struct px_exchange *x)
{
	xch_pump_request(x);
}

/* ---- the response: head and body to the client ---- */

/* Find which newly read upstream bytes belong to the response body. Bytes
 * past its end make the connection unfit for reuse. -1: bad chunking. */
static int exchange_scan_response(struct px_exchange *x)
{
	struct px_upstream *u = x->up;
	size_t fresh = buf_len(&u->in) - x->resp_avail;
	bool done = false;
	ssize_t n;

	if (x->resp_complete) {
		if (fresh)
			x->upstream_keep_alive = false;
		return 0;
	}
	switch (x->resp_body) {
	case HTTP1_BODY_NONE:
		x->resp_complete = true;
		break;
	case HTTP1_BODY_LENGTH:
		n = fresh < x->resp_left ? fresh : x->resp_left;
		x->resp_left -= n;
		x->resp_avail += n;
		x->resp_complete = !x->resp_left;
		break;
	case HTTP1_BODY_CHUNKED:
		n = http1_chunked_scan(&x->resp_chunk, buf_head(&u->in) + x->resp_avail, fresh,
				       &done);
		if (n < 0)
			return -1;
		x->resp_avail += n;
		x->resp_complete = done;
		break;
	case HTTP1_BODY_CLOSE:
		x->resp_avail += fresh; /* complete at the upstream's EOF */
		break;
	}
	if (x->resp_complete && buf_len(&u->in) > x->resp_avail)
		x->upstream_keep_alive = false;
	return 0;
}

/* The response is all with the client: pool the upstream if it can carry
 * another request (whole request sent, no stray bytes, keep-alive). */
static void exchange_finish(struct px_exchange *x)
{
	bool reusable = x->upstream_keep_alive && x->req_done && x->up && buf_len(&x->up->in) == 0;

	x->resp_done = true;
	xch_end(x, reusable);
}

/* Write the client what waits: the response head (c->out) and the body
 * bytes read so far, in one sendmsg. */
void xch_pump_response(struct px_exchange *x)
{
	struct px_client *c = xch_client(x);
	struct px_upstream *u = x->up;
	size_t out_len = buf_len(&c->out);
	struct iovec iov[2];
	ssize_t n = 0;
	int cnt = 0;

	if (out_len)
		iov[cnt++] = (struct iovec){ buf_head(&c->out), out_len };
	if (u && x->resp_avail)
		iov[cnt++] = (struct iovec){ buf_head(&u->in), x->resp_avail };
	x->client_blocked = false;
	if (cnt) {
		n = xch_send(c->fd, iov, cnt);
		if (n < 0 && errno != EAGAIN) {
			px_client_close(c);
			return;
		}
		if (n < 0)
			n = 0;
		x->bytes_out += n;
		x->idle_deadline_ms = c->w->now_ms + x->route->idle_timeout_ms;
		buf_consume(&c->out, (size_t)n < out_len ? (size_t)n : out_len);
		if ((size_t)n > out_len) {
			buf_consume(&u->in, n - out_len);
			x->resp_avail -= n - out_len;
		}
		x->client_blocked = buf_len(&c->out) || (u && x->resp_avail);
	}
	if (!x->client_blocked && x->resp_head_seen && x->resp_complete) {
		exchange_finish(x);
		return;
	}
	xch_interest(x);
}

void px_exchange_client_writable(struct px_exchange *x)
{
	xch_pump_response(x);
}

bool xch_append(struct buf *b, const char *s, size_t len)
{
	return !buf_append(b, s, len);
}

#define CONNECTION_MAX 8

/* The Connection headers among @headers, for http1_hop_by_hop(): copied
 * into @found (CONNECTION_MAX entries), so that checking every header
 * costs O(n) rather than O(n^2); with more of them, @headers itself. */
static const struct http1_header *connection_headers(const struct http1_header *headers, size_t n,
						     struct http1_header *found, size_t *n_found)
{
	*n_found = 0;
	for (size_t i = 0; i < n; i++) {
		if (!http1_name_is(&headers[i], "connection"))
			continue;
		if (*n_found == CONNECTION_MAX) {
			*n_found = n; /* rare: let http1_hop_by_hop() search them all */
			return headers;
		}
		found[(*n_found)++] = headers[i];
	}
	return found;
}

bool xch_copy_headers(struct buf *b, const struct http1_header *h, size_t n, unsigned int drop)
{
	struct http1_header found[CONNECTION_MAX];
	const struct http1_header *conn;
	size_t n_conn;
	bool ok = true;

	conn = connection_headers(h, n, found, &n_conn);
	for (size_t i = 0; ok && i < n; i++) {
		/* Transfer-Encoding stays: the body goes through in its coding. */
		if ((http1_hop_by_hop(&h[i], conn, n_conn) &&
		     !http1_name_is(&h[i], "transfer-encoding")) ||
		    ((drop & XCH_DROP_EXPECT) && http1_name_is(&h[i], "expect")) ||
		    ((drop & XCH_DROP_HOST) && http1_name_is(&h[i], "host")))
			continue;
		ok = xch_append(b, h[i].name, h[i].name_len) && xch_append(b, ": ", 2) &&
		     xch_append(b, h[i].value, h[i].value_len) && xch_append(b, "\r\n", 2);
	}
	return ok;
}

/* The response head the client gets: the upstream's status and end-to-end
 * headers, with framing and connection headers of our own. */
static int exchange_response_head(struct px_exchange *x, const struct http1_response *resp)
{
	struct px_client *c = xch_client(x);
	char line[128];
	bool ok;
	int n;

	/* The body ends when the connection does; or the request's body was
	 * not all read (the rest would read as a request): say we close. */
	if (resp->body == HTTP1_BODY_CLOSE || !x->req_complete)
		c->keep_alive = false;
	n = snprintf(line, sizeof(line), "HTTP/1.1 %d ", resp->status);
	ok = xch_append(&c->out, line, n) && xch_append(&c->out, resp->reason, resp->reason_len) &&
	     xch_append(&c->out, "\r\n", 2) &&
	     xch_copy_headers(&c->out, c->w->headers, resp->n_headers, 0);
	if (ok && !c->keep_alive)
		ok = xch_append(&c->out, "Connection: close\r\n", 19);
	else if (ok && c->x.minor_version == 0)
		ok = xch_append(&c->out, "Connection: keep-alive\r\n", 24);
	return ok && xch_append(&c->out, "\r\n", 2) ? 0 : -ENOMEM;
}

/* ---- the response head ---- */

static enum bal_outcome status_outcome(int status)
{
	return status >= 502 && status <= 504 ? BAL_GATEWAY_ERROR : BAL_SUCCESS;
}

static uint32_t status_retry_bit(int status)
{
	switch (status) {
	case 502:
		return CFG_RETRY_502;
	case 503:
		return CFG_RETRY_503;
	case 504:
		return CFG_RETRY_504;
	default:
		return 0;
	}
}

/* A whole response head is at the front of up->in (@len bytes). Returns
 * 0 when the body follows, -1 when the exchange went elsewhere (retry). */
static int exchange_response(struct px_exchange *x, const struct http1_response *resp, size_t len)
{
	struct px_upstream *u = x->up;
	uint32_t bit = status_retry_bit(resp->status);

	pm_observe_latency(x->pm->svc, xch_now_us() - x->attempt_us);
	if (bit && (x->route->retry_on & bit) && xch_may_retry(x, bit)) {
		xch_attempt_end(x, BAL_GATEWAY_ERROR, false);
		x->head_sent = 0;
		xch_attempt(x);
		return -1;
	}
	xch_attempt_end(x, status_outcome(resp->status), true);
	x->status = resp->status;
	x->resp_body = resp->body;
	x->resp_left = resp->content_length;
	x->upstream_keep_alive = resp->keep_alive;
	if (exchange_response_head(x, resp)) {
		xch_answer(x, 502, "out of memory for the response head");
		return -1;
	}
	buf_consume(&u->in, len);
	x->resp_head_seen = true;
	return 0;
}

/* Parse what up->in holds: skip interim (1xx) responses, take the final
 * head. 0: the head was taken; 1: incomplete; -1: the exchange moved on. */
static int exchange_parse_response(struct px_exchange *x)
{
	const struct cfg_proxy *p = xch_client(x)->w->settings;
	struct http1_limits lim = { .max_request_line = p->max_header_bytes,
				    .max_head_bytes = p->max_header_bytes,
				    .max_headers = PROXY_MAX_HEADERS_ARRAY };
	struct http1_response resp;
	struct px_upstream *u = x->up;
	int r;

	for (;;) {
		r = http1_parse_response(buf_head(&u->in), buf_len(&u->in), &resp,
					 xch_client(x)->w->headers, &lim, x->head_request);
		if (r == HTTP1_INCOMPLETE)
			return 1;
		if (r < 0 || resp.status == 101) {
			/* 101: an upgrade nobody asked for (Upgrade is not forwarded). */
			px_exchange_failed(x, PX_FAIL_BAD_RESPONSE);
			return -1;
		}
		if (resp.status >= 200)
			return exchange_response(x, &resp, r);
		buf_consume(&u->in, r); /* 100 Continue and friends: ours to hide */
	}
}

/* The upstream is done after a whole response: what the client has not
 * taken yet moves behind c->out, and the connection closes now (a closed
 * socket left in epoll would report HUP on every wait). */
static void exchange_upstream_done(struct px_exchange *x)
{
	struct px_client *c = xch_client(x);
	struct px_upstream *u = x->up;

	x->resp_complete = true;
	x->upstream_keep_alive = false;
	if (buf_append(&c->out, buf_head(&u->in), x->resp_avail)) {
		px_client_close(c);
		return;
	}
	x->resp_avail = 0;
	px_upstream_abort(c->w, u);
	x->up = NULL;
	xch_pump_response(x);
}

/* The upstream closed its side (@err 0) or failed (-errno). */
static void exchange_upstream_eof(struct px_exchange *x, int err)
{
	if (x->resp_complete || (x->resp_head_seen && x->resp_body == HTTP1_BODY_CLOSE && !err)) {
		exchange_upstream_done(x);
		return;
	}
	if (!x->resp_head_seen) {
		px_exchange_failed(x, PX_FAIL_RESET);
		return;
	}
	/* A reset inside a body that ends at the close is a truncation too. */
	x->reason = "upstream closed in the middle of the response";
	px_client_close(xch_client(x));
}

void px_exchange_upstream_readable(struct px_exchange *x)
{
	struct px_worker *w = xch_client(x)->w;
	struct px_upstream *u = x->up;
	ssize_t n = buf_read(&u->in, u->fd, w->scratch, PROXY_SCRATCH);

	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		exchange_upstream_eof(x, n);
		return;
	}
	x->idle_deadline_ms = w->now_ms + x->route->idle_timeout_ms;
	if (!x->resp_head_seen && exchange_parse_response(x)) {
		if (x->up == u && u->state == UP_BUSY && buf_settle(&u->in))
			px_client_close(xch_client(x));
		return;
	}
	if (exchange_scan_response(x)) {
		x->reason = "malformed chunked response body";
		px_client_close(xch_client(x));
		return;
	}
	xch_pump_response(x);
	/* Still ours (not pooled, freed or given to a retry): keep what waits. */
	if (u->state == UP_BUSY && u->x == x && buf_settle(&u->in))
		px_client_close(xch_client(x));
}
