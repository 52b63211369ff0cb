/* Prometheus metrics over HTTP (sluiced --metrics ADDR:PORT): a plain
 * listening socket served from the agent's event loop, one request per
 * connection, and the text exposition format (version 0.0.4) rendered
 * from the maps, the health checker and the agent's counters. */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "agent_stats.h"
#include "health.h"
#include "lb.h"

/* What one scrape reads. */
struct metrics_source {
	struct lb_maps *maps;
	struct health *health; /* NULL: no health metrics */
	const struct agent_stats *stats;
	const char *version; /* agent version string */
};

/* Write every metric to @out. Returns 0 or -errno (a map read failed;
 * what was written so far is still valid exposition text). */
int metrics_render(FILE *out, const struct metrics_source *src);

struct metrics_server;

/* Listen on @addr_port ("127.0.0.1:9090", "[::1]:9090", ":9090" for every
 * address). NULL with errno, and a message in @err, on failure. */
struct metrics_server *metrics_listen(const char *addr_port, char *err, size_t err_len);
/* The listening socket, for poll(): readable when a scraper connects. */
int metrics_fd(const struct metrics_server *srv);
/* Accept one connection and answer it (GET /metrics: 200 with the metrics;
 * another path: 404; another method: 405; garbage: 400). Bounded by a
 * short timeout so a stuck scraper cannot hold the agent. */
void metrics_serve_one(struct metrics_server *srv, const struct metrics_source *src);
void metrics_close(struct metrics_server *srv);

#endif
