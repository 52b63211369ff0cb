/* One request and its response, from start to end: which service, the
 * access rules, the route and group, the forwarded head, attempts on
 * upstream endpoints (pooled or new connections, circuit breakers,
 * retries within the budget), timeouts, and what the proxy answers
 * itself. Moving the bytes is relay.c's. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "exchange.h"
#include "log.h"
#include "path.h"
#define IDEMPOTENT (HTTP1_GET | HTTP1_HEAD | HTTP1_OPTIONS | HTTP1_TRACE | HTTP1_PUT | HTTP1_DELETE)

/* ---- the end of an exchange ---- */

static void exchange_log(struct px_exchange *x)
{
	struct px_client *c = xch_client(x);
	char upstream[ADDR_STR_MAX] = "", service[PM_NAME_MAX] = "";
	struct px_log_entry e = {
		.peer = c->peer_text,
		.method = x->method,
		.host = x->host,
		.path = x->path,
		.status = x->status,
		.bytes_in = x->bytes_in,
		.bytes_out = x->bytes_out,
		.duration_ms = c->w->now_ms - x->start_ms,
		.service = service,
		.route = x->route ? x->route_index : UINT32_MAX,
		.upstream = upstream,
		.attempts = x->attempts,
		.reason = x->reason,
	};

	if (c->w->log.fd < 0)
		return;
	if (x->attempts)
		addr_format_endpoint(&x->upstream_addr, upstream, sizeof(upstream));
	if (x->pm)
		snprintf(service, sizeof(service), "%s", x->pm->svc->name);
	px_log_write(&c->w->log, &e);
}

static void exchange_count(struct px_exchange *x)
{
	struct pm_route *r;

	if (!x->pm)
		return;
	r = x->route ? x->pm->routes[x->route_index] : x->pm->unrouted;
	pm_add(&r->by_status[pm_status_slot(x->status)], 1);
}

/* Give back everything the exchange holds: breaker slots, the retry
 * budget, the upstream connection (pooled when @reusable), the routes. */
static void exchange_release(struct px_exchange *x, bool reusable)
{
	struct px_worker *w = xch_client(x)->w;
	struct bal_group *g = x->svc ? xch_group(x) : NULL;

	if (x->up) {
		buf_settle(&x->up->in);
		if (reusable)
			px_upstream_release(w, x->up, true);
		else
			px_upstream_abort(w, x->up);
		x->up = NULL;
	}
	if (g && x->ep >= 0 && x->attempts)
		bal_attempt_end(g, x->ep);
	if (g && x->pending)
		bal_pending_done(g);
	if (g && x->admitted)
		bal_request_done(g);
	if (x->holds_retry)
		retry_budget_put(&x->svc->budget);
	if (x->svc)
		retry_budget_request_end(&x->svc->budget);
	x->pending = x->admitted = x->holds_retry = false;
	buf_free(&x->head);
	px_routes_put(x->routes);
	x->routes = NULL;
}

/* The exchange is over: count, log, release, and on to the next request. */
void xch_end(struct px_exchange *x, bool reusable)
{
	struct px_client *c = xch_client(x);

	exchange_count(x);
	exchange_log(x);
	exchange_release(x, reusable);
	/* Body bytes read and not sent are this request's, not the next one's;
	 * a body not read to its end would read as requests: close. */
	buf_consume(&c->in, x->req_avail);
	x->req_avail = 0;
	if (!x->req_complete)
		c->keep_alive = false;
	px_client_next(c);
}

/* The proxy answers @status itself. After a response head went out that
 * is impossible: the client connection is cut instead. */
void xch_answer(struct px_exchange *x, int status, const char *why)
{
	struct px_client *c = xch_client(x);

	x->reason = why;
	if (x->resp_head_seen) {
		px_client_close(c); /* counts and logs through px_exchange_abort() */
		return;
	}
	x->status = status;
	buf_consume(&c->in, x->req_avail); /* see xch_end() */
	x->req_avail = 0;
	px_client_answer(c, status, why, !x->req_complete, x->head_request);
	x->bytes_out += buf_len(&c->out);
	xch_end(x, false);
}

void px_exchange_abort(struct px_exchange *x)
{
	struct px_client *c = xch_client(x);

	if (!x->status || !x->resp_done)
		x->status = x->resp_head_seen ? x->status : 499; /* nginx's "client closed" */
	if (!x->reason[0])
		x->reason = "client connection closed";
	exchange_count(x);
	exchange_log(x);
	exchange_release(x, false);
	c->state = CL_CLOSING; /* px_client_close() goes on from here */
}

bool px_exchange_request_done(const struct px_exchange *x)
{
	return x->req_complete;
}

/* ---- attempts, failures and retries ---- */

/* Which route `retries.on` bit a failure is. */
static uint32_t fail_retry_bit(enum px_fail why)
{
	switch (why) {
	case PX_FAIL_CONNECT:
		return CFG_RETRY_CONNECT;
	case PX_FAIL_RESET:
		return CFG_RETRY_RESET;
	case PX_FAIL_BAD_RESPONSE:
		return CFG_RETRY_502;
	default:
		return 0; /* timeouts end the request: its time is up */
	}
}

/*
 * May the exchange try again after a failure of kind @bit? Within the
 * route's attempts and deadline and the service's retry budget, and only
 * if no body byte is lost with the failed attempt (bodies are streamed,
 * not kept); a non-idempotent request only when it never reached an
 * upstream (connect failures).
 */
bool xch_may_retry(struct px_exchange *x, uint32_t bit)
{
	struct px_client *c = xch_client(x);

	if (!bit || !(x->route->retry_on & bit) || x->attempts > x->route->retries)
		return false;
	if (x->req_body_sent || (!x->idempotent && bit != CFG_RETRY_CONNECT))
		return false;
	if (c->w->now_ms >= x->deadline_ms)
		return false;
	if (!x->holds_retry) {
		if (!retry_budget_take(&x->svc->budget)) {
			pm_add(&x->pm->svc->retry_budget_exhausted, 1);
			return false;
		}
		x->holds_retry = true; /* one slot for all of this request's retries */
	}
	pm_add(&x->pm->svc->retries, 1);
	return true;
}

/* The current attempt ended with @outcome: tell the balancer (outlier
 * ejection), drop its connection, end the attempt. */
void xch_attempt_end(struct px_exchange *x, enum bal_outcome outcome, bool keep_upstream)
{
	struct px_worker *w = xch_client(x)->w;

	if (x->ep >= 0 && bal_report(xch_group(x), x->ep, outcome, w->now_ms))
		pm_add(&x->pm->svc->ejections, 1);
	xch_attempt_drop(x, keep_upstream);
}

void xch_attempt_drop(struct px_exchange *x, bool keep_upstream)
{
	struct px_worker *w = xch_client(x)->w;
	struct bal_group *g = xch_group(x);

	if (x->ep < 0)
		return;
	if (x->pending)
		bal_pending_done(g);
	x->pending = false;
	if (x->up && !keep_upstream) {
		px_upstream_abort(w, x->up);
		x->up = NULL;
	}
	bal_attempt_end(g, x->ep);
	x->ep = -1;
}

static enum bal_outcome fail_outcome(enum px_fail why)
{
	switch (why) {
	case PX_FAIL_CONNECT:
		return BAL_CONNECT_FAILURE;
	case PX_FAIL_TIMEOUT:
	case PX_FAIL_IDLE:
		return BAL_TIMEOUT;
	default:
		return BAL_RESET;
	}
}

/* Envoy's choices: 503 when no connection could be had, 502 for a bad or
 * missing response, 504 when time ran out. */
static int fail_status(enum px_fail why)
{
	switch (why) {
	case PX_FAIL_CONNECT:
		return 503;
	case PX_FAIL_RESET:
	case PX_FAIL_BAD_RESPONSE:
		return 502;
	default:
		return 504;
	}
}

void px_exchange_failed(struct px_exchange *x, enum px_fail why)
{
	static const char *const whys[] = {
		[PX_FAIL_CONNECT] = "upstream connect failed",
		[PX_FAIL_RESET] = "upstream reset or closed before a response",
		[PX_FAIL_TIMEOUT] = "upstream request timeout",
		[PX_FAIL_BAD_RESPONSE] = "malformed upstream response",
		[PX_FAIL_IDLE] = "upstream idle timeout",
	};
	pm_counter *counters[] = {
		[PX_FAIL_CONNECT] = &x->pm->svc->connect_failures,
		[PX_FAIL_RESET] = &x->pm->svc->resets,
		[PX_FAIL_TIMEOUT] = &x->pm->svc->timeouts,
		[PX_FAIL_BAD_RESPONSE] = &x->pm->svc->resets,
		[PX_FAIL_IDLE] = &x->pm->svc->timeouts,
	};

	pm_add(counters[why], 1);
	xch_attempt_end(x, fail_outcome(why), false);
	if (!x->resp_head_seen && xch_may_retry(x, fail_retry_bit(why))) {
		x->head_sent = 0;
		xch_attempt(x);
		return;
	}
	xch_answer(x, fail_status(why), whys[why]);
}

/* A connection to x->upstream_addr: pooled, or a new one within the
 * group's circuit breakers. NULL with *@err -EBUSY (a breaker refused)
 * or the connect error. */
static struct px_upstream *attempt_connection(struct px_exchange *x, struct bal_group *g, int *err)
{
	struct px_worker *w = xch_client(x)->w;
	struct px_upstream *u = px_upstream_idle(w, &x->upstream_addr);

	if (u && !u->group && bal_connection_admit(g)) {
		/* Pooled under a replaced config: this group counts it now. */
		u->group = g;
		u->routes = x->routes;
		x->routes->refs++;
	}
	if (u)
		return u;
	*err = -EBUSY;
	if (!bal_connection_admit(g))
		return NULL;
	if (!bal_pending_admit(g)) {
		bal_connection_done(g);
		return NULL;
	}
	x->pending = true;
	u = px_upstream_open(w, &x->upstream_addr, err);
	if (!u) {
		bal_connection_done(g);
		return NULL;
	}
	u->group = g;
	u->routes = x->routes;
	x->routes->refs++;
	u->deadline_ms = w->now_ms + x->route->connect_timeout_ms;
	return u;
}

static bool local_shortage(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM ||
	       err == -EADDRNOTAVAIL;
}

/* Pick an endpoint and send the request there (at once on a pooled
 * connection, once connected on a new one). */
void xch_attempt(struct px_exchange *x)
{
	struct bal_group *g = xch_group(x);
	struct px_upstream *u;
	int ep, err = 0;

	ep = bal_pick(g, xch_client(x)->w->now_ms, x->has_hash ? &x->hash : NULL, x->last_ep);
	if (ep < 0) {
		pm_add(&x->pm->svc->no_endpoint, 1);
		xch_answer(x, 503, "no upstream endpoint available");
		return;
	}
	x->ep = x->last_ep = ep;
	x->attempts++;
	x->attempt_us = xch_now_us();
	x->upstream_addr = g->eps[ep].addr;
	x->resp_head_seen = false;
	bal_attempt_start(g, ep);
	u = attempt_connection(x, g, &err);
	if (!u && err == -EBUSY) {
		pm_add(&x->pm->svc->overflow, 1);
		xch_attempt_drop(x, false); /* not the endpoint's doing */
		xch_answer(x, 503, "upstream overflow (circuit breaker)");
		return;
	}
	if (!u && local_shortage(err)) {
		/* Our descriptors or memory ran out, not the endpoint's fault:
		 * no retry (it would fail the same), no outlier report. */
		xch_attempt_drop(x, false);
		xch_answer(x, 503, "proxy out of file descriptors or memory");
		return;
	}
	if (!u) {
		px_exchange_failed(x, PX_FAIL_CONNECT);
		return;
	}
	u->x = x;
	x->up = u;
	if (u->state == UP_BUSY)
		xch_pump_request(x);
}

void px_exchange_connected(struct px_exchange *x)
{
	struct bal_group *g = xch_group(x);

	if (x->pending)
		bal_pending_done(g);
	x->pending = false;
	xch_pump_request(x);
}

/* ---- the start: decisions and the forwarded head ---- */

static void copy_text(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Which service, whether the client may, which route and group. Returns
 * 0, or the status the proxy answers itself. */
static int exchange_route(struct px_exchange *x, const struct http1_request *req)
{
	struct px_client *c = xch_client(x);
	struct route_table *t = &x->routes->table;
	struct route_service *svc = c->vip.family ? route_service_find(t, &c->vip) : NULL;
	const struct http1_header *h;
	struct bal_group *g;
	uint32_t rule = 0;

	if (!svc && c->w->settings->default_service[0])
		svc = route_service_by_name(t, c->w->settings->default_service);
	if (!svc) {
		x->reason = "no L7 service for this destination";
		return 404;
	}
	x->svc = svc;
	x->pm = &x->routes->metrics[svc - t->services];
	retry_budget_request_start(&svc->budget);
	route_peer_resolve(t, &c->peer_addr, &x->peer);
	if (route_access(svc, &x->peer, req, &rule) == POL_DENY) {
		pm_add(&x->pm->svc->denied, 1);
		if (rule)
			snprintf(x->reason_buf, sizeof(x->reason_buf), "denied by access rule %u",
				 rule);
		else
			snprintf(x->reason_buf, sizeof(x->reason_buf),
				 "denied: no access rule allows it");
		x->reason = x->reason_buf;
		return 403;
	}
	x->route = route_match(svc, req);
	if (!x->route) {
		pm_add(&x->pm->svc->no_route, 1);
		x->reason = "no route matched";
		return 404;
	}
	x->route_index = x->route - svc->routes;
	x->group = route_pick_split(x->route, px_random(c->w));
	g = xch_group(x);
	if (g->lb == CFG_LB_HASH_HEADER &&
	    (h = http1_find(req->headers, req->n_headers, g->hash_header))) {
		x->hash = bal_hash_value(h->value, h->value_len);
		x->has_hash = true;
	}
	return 0;
}

/* The head the upstream gets: the client's request line and end-to-end
 * headers; framing and connection headers of our own. Expect is dropped:
 * the proxy answers 100 Continue itself. */
static int exchange_request_head(struct px_exchange *x, const struct http1_request *req,
				 size_t head_len, bool absolute)
{
	struct buf *b = &x->head;
	char version[16];
	bool ok;

	if (buf_reserve(b, head_len + 64))
		return -ENOMEM;
	snprintf(version, sizeof(version), " HTTP/1.%d\r\n", req->minor_version);
	ok = xch_append(b, req->method, req->method_len) && xch_append(b, " ", 1) &&
	     xch_append(b, req->target, req->target_len) && xch_append(b, version, 11) &&
	     xch_copy_headers(b, req->headers, req->n_headers,
			      XCH_DROP_EXPECT | (absolute ? XCH_DROP_HOST : 0));
	/* An absolute-form target's authority is the host the request was
	 * routed by (RFC 9112 3.2.2): the upstream gets it as Host, not the
	 * client's Host field, which could say otherwise. */
	if (ok && absolute)
		ok = xch_append(b, "Host: ", 6) && xch_append(b, req->host, req->host_len) &&
		     xch_append(b, "\r\n", 2);
	if (ok && req->minor_version == 0)
		ok = xch_append(b, "Connection: keep-alive\r\n", 24);
	return ok && xch_append(b, "\r\n", 2) ? 0 : -ENOMEM;
}

static void exchange_init(struct px_exchange *x, struct px_client *c,
			  const struct http1_request *req, size_t head_len)
{
	memset(x, 0, sizeof(*x));
	x->ep = x->last_ep = -1;
	x->reason = "";
	x->routes = c->w->routes;
	x->routes->refs++;
	x->start_ms = c->w->now_ms;
	x->bytes_in = head_len;
	x->minor_version = req->minor_version;
	x->head_request = req->method_id == HTTP1_HEAD;
	x->idempotent = req->method_id & IDEMPOTENT;
	x->req_body = req->body;
	x->req_left = req->content_length;
	x->req_complete = req->body == HTTP1_BODY_NONE ||
			  (req->body == HTTP1_BODY_LENGTH && !req->content_length);
	copy_text(x->method, sizeof(x->method), req->method, req->method_len);
	copy_text(x->path, sizeof(x->path), req->target, req->target_len);
	if (req->host)
		copy_text(x->host, sizeof(x->host), req->host, req->host_len);
}

/* Admit the request past the group's breaker and make its first attempt. */
static void exchange_go(struct px_exchange *x, bool expect_continue)
{
	struct px_client *c = xch_client(x);

	if (!xch_take_request_body(x))
		return;
	if (c->read_closed && !x->req_complete) {
		xch_answer(x, 400, "request body cut short (the client closed)");
		return;
	}
	if (!bal_request_admit(xch_group(x))) {
		pm_add(&x->pm->svc->overflow, 1);
		xch_answer(x, 503, "upstream overflow (circuit breaker)");
		return;
	}
	x->admitted = true;
	/* Let a client that waits for it send the body now (RFC 9110 10.1.1). */
	if (expect_continue && !x->req_complete && x->minor_version == 1)
		buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	x->deadline_ms = c->w->now_ms + x->route->request_timeout_ms;
	x->idle_deadline_ms = c->w->now_ms + x->route->idle_timeout_ms;
	xch_attempt(x);
	if (c->state != CL_EXCHANGE || x->resp_head_seen)
		return;
	if (buf_len(&c->out))
		xch_pump_response(x); /* the 100 Continue; sets the interest */
	else
		xch_interest(x); /* connecting: bounded read-ahead of the body */
}

/*
 * The request as it is matched and forwarded: its path normalized
 * (path.h) into the worker's path buffer, followed by the query, as an
 * origin-form target (an absolute-form one loses its scheme and
 * authority, as a proxy sends it to an origin server). "*" and CONNECT
 * targets stay as they are. Returns 0 or 400.
 */
static int exchange_normalize(struct px_worker *w, const struct http1_request *req,
			      struct http1_request *out)
{
	const char *query;
	size_t query_len;
	ssize_t n;

	*out = *req;
	if (!req->path_len || req->path[0] != '/')
		return 0;
	n = path_normalize(req->path, req->path_len, w->path_buf, PROXY_PATH_MAX);
	if (n < 0)
		return 400;
	query = memchr(req->target, '?', req->target_len);
	query_len = query ? (size_t)(req->target + req->target_len - query) : 0;
	if ((size_t)n + query_len > PROXY_PATH_MAX)
		return 400;
	if (query_len)
		memcpy(w->path_buf + n, query, query_len);
	out->path = out->target = w->path_buf;
	out->path_len = n;
	out->target_len = n + query_len;
	return 0;
}

/* "http://host/path": the parser took the path out of the target. */
static bool absolute_form(const struct http1_request *req)
{
	return req->target_len && req->target[0] != '/' && req->path_len && req->path[0] == '/' &&
	       req->host;
}

void px_exchange_start(struct px_client *c, const struct http1_request *parsed, size_t head_len)
{
	struct px_exchange *x = &c->x;
	struct http1_request req;
	int status = exchange_normalize(c->w, parsed, &req);

	exchange_init(x, c, &req, head_len);
	c->state = CL_EXCHANGE;
	c->keep_alive = req.keep_alive && !c->w->draining;
	pm_add(&c->w->stats.requests, 1);
	if (status)
		x->reason = "malformed escape in the request path";
	else
		status = exchange_route(x, &req);
	if (!status && exchange_request_head(x, &req, head_len, absolute_form(parsed)))
		status = 500;
	buf_consume(&c->in, head_len); /* the request's strings are dead from here */
	if (status) {
		xch_answer(x, status, x->reason[0] ? x->reason : "out of memory");
		return;
	}
	exchange_go(x, req.expect_continue);
}

/* Time ran out while the request body was still coming: the client's
 * doing (408), not the upstream's, so no endpoint is blamed for it. */
static void exchange_client_too_slow(struct px_exchange *x)
{
	pm_add(&x->pm->svc->timeouts, 1);
	xch_attempt_drop(x, false);
	xch_answer(x, 408, "request body not received in time");
}

void px_exchange_timeouts(struct px_exchange *x)
{
	uint64_t now = xch_client(x)->w->now_ms;
	bool expired = !x->resp_head_seen && now >= x->deadline_ms;

	if (!x->route || (!expired && now < x->idle_deadline_ms))
		return;
	/* Connected, every byte read so far sent, and the body still short. */
	if (!x->req_complete && !x->up_blocked && !x->resp_head_seen && x->up &&
	    x->up->state == UP_BUSY)
		exchange_client_too_slow(x);
	else
		px_exchange_failed(x, expired ? PX_FAIL_TIMEOUT : PX_FAIL_IDLE);
}
