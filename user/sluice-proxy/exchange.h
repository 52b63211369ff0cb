/* What exchange.c (an exchange's life: decisions, attempts, retries, its
 * end) and relay.c (its bytes) share. Not an API: only those two include
 * it; the rest of the proxy uses the px_exchange_*() of proxy.h. */
#ifndef SLUICE_EXCHANGE_H
#define SLUICE_EXCHANGE_H

#include <time.h>

#include "proxy.h"

static inline struct px_client *xch_client(struct px_exchange *x)
{
	return px_container(x, struct px_client, x);
}

static inline struct bal_group *xch_group(const struct px_exchange *x)
{
	return &x->svc->groups[x->group];
}

/* CLOCK_MONOTONIC microseconds, for the upstream latency histogram. */
static inline uint64_t xch_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Append @len bytes to @b; false when out of memory. */
bool xch_append(struct buf *b, const char *s, size_t len);

enum xch_drop {
	XCH_DROP_EXPECT = 1 << 0, /* the proxy answers 100 Continue itself */
	XCH_DROP_HOST = 1 << 1, /* replaced (an absolute-form target's authority) */
};

/* Append the end-to-end headers of @h to @b as "name: value" lines:
 * hop-by-hop ones dropped (RFC 9110 7.6.1) but Transfer-Encoding, which
 * goes with the body passed through verbatim, and those @drop names
 * (enum xch_drop). False when out of memory. */
bool xch_copy_headers(struct buf *b, const struct http1_header *h, size_t n, unsigned int drop);

/* ---- exchange.c ---- */
/* Count, log, release everything (the upstream pooled when @reusable),
 * then on to the client's next request. */
void xch_end(struct px_exchange *x, bool reusable);
/* The proxy answers @status itself (or cuts the client if a response
 * already started), then xch_end(). */
void xch_answer(struct px_exchange *x, int status, const char *why);
/* Pick an endpoint and send the request there. */
void xch_attempt(struct px_exchange *x);
/* The current attempt ended with @outcome (outlier ejection); its
 * connection is closed unless @keep_upstream. */
void xch_attempt_end(struct px_exchange *x, enum bal_outcome outcome, bool keep_upstream);
/* The same without telling the balancer: the attempt ended for a reason
 * that is not the endpoint's (a breaker, a slow client). */
void xch_attempt_drop(struct px_exchange *x, bool keep_upstream);
/* May a failure of kind @bit (enum cfg_retry_on) be retried? Takes the
 * retry budget when it says yes. */
bool xch_may_retry(struct px_exchange *x, uint32_t bit);

/* ---- relay.c ---- */
/* Set what epoll watches on both connections for the exchange's state. */
void xch_interest(struct px_exchange *x);
/* Which newly read client bytes are body: 0, or a status (400, 413). */
int xch_scan_request(struct px_exchange *x);
/* xch_scan_request(), answering its status if any: false then (the
 * exchange is over). */
bool xch_take_request_body(struct px_exchange *x);
void xch_pump_request(struct px_exchange *x);
void xch_pump_response(struct px_exchange *x);

#endif
