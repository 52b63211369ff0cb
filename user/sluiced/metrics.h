/* The agent's Prometheus metrics (sluiced --metrics ADDR:PORT, served by
 * metrics_http.h from the agent's event loop): the text exposition format
 * (version 0.0.4) rendered from the maps, the health checker and the
 * agent's counters. */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "agent_stats.h"
#include "metrics_http.h"
#include "health.h"
#include "lb.h"

/* What one scrape reads. */
struct metrics_source {
	struct lb_maps *maps;
	struct health *health; /* NULL: no health metrics */
	const struct agent_stats *stats;
	const char *version; /* agent version string */
	metrics_render_fn extra; /* more metrics at the end (--k8s), may be NULL */
	const void *extra_ctx;
};

/* Write every metric to @out. Returns 0 or -errno (a map read failed;
 * what was written so far is still valid exposition text). */
int metrics_render(FILE *out, const struct metrics_source *src);

/* metrics_render() with its source as a metrics_render_fn context. */
int metrics_render_agent(FILE *out, const void *src);

#endif
