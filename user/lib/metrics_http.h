/* A Prometheus endpoint over HTTP: a plain listening socket served from
 * its owner's event loop, one request per connection, every wait bounded
 * so a stuck scraper cannot hold the loop. What it serves comes from a
 * render callback: the agent's metrics, or sluice-proxy's. */
#ifndef SLUICE_METRICS_HTTP_H
#define SLUICE_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Write the exposition text to @out; 0 or -errno (the scrape gets 500). */
typedef int (*metrics_render_fn)(FILE *out, const void *ctx);

/* Readiness: true when ready; else false with the reason in @why. */
typedef bool (*metrics_ready_fn)(const void *ctx, char *why, size_t len);

struct metrics_server;

/* Listen on @addr_port ("127.0.0.1:9090", "[::1]:9090", ":9090" for every
 * address). NULL with errno, and a message in @err, on failure. */
struct metrics_server *metrics_listen(const char *addr_port, char *err, size_t err_len);
/* The listening socket, for poll(): readable when a scraper connects. */
int metrics_fd(const struct metrics_server *srv);
/* Accept one connection and answer it (GET /metrics: 200 with what
 * @render writes; /healthz: 200; /readyz: 200 or 503 as the ready
 * callback says; another path: 404; another method: 405; garbage: 400).
 * Bounded by a short timeout so a stuck scraper cannot hold the caller. */
void metrics_serve_one(struct metrics_server *srv, metrics_render_fn render, const void *ctx);
void metrics_close(struct metrics_server *srv);
/* The /readyz answer from now on (never called: always ready). */
void metrics_set_ready(struct metrics_server *srv, metrics_ready_fn ready, const void *ctx);

#endif
