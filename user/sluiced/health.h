/* Active health checks: a prober thread connects to each checked backend
 * (TCP connect, or an HTTP GET that must answer the expected status) every
 * interval, and reports a backend's transition up or down once it passed
 * or failed its threshold of consecutive probes. The agent reads the
 * transitions on its own thread (health_event_fd() is readable when some
 * are queued) and turns them into weights: a down backend gets weight 0. */
#ifndef SLUICE_HEALTH_H
#define SLUICE_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"

enum health_state {
	HEALTH_UNKNOWN = 0, /* not probed enough yet: keeps its configured weight */
	HEALTH_UP,
	HEALTH_DOWN,
};

/* One backend to probe, with its service's check. */
struct health_target {
	struct sl_svc_key svc;
	struct addr_port addr;
	struct cfg_health check; /* type CFG_HEALTH_TCP or CFG_HEALTH_HTTP */
	enum health_state initial; /* state to start from (e.g. kept across a restart) */
};

struct health_event {
	struct sl_svc_key svc;
	struct addr_port addr;
	enum health_state state; /* HEALTH_UP or HEALTH_DOWN */
	char reason[128]; /* the last probe's result, e.g. "connect: Connection refused" */
};

/* Per-target probe counters, for metrics. */
struct health_counts {
	uint64_t probes;
	uint64_t failures;
	uint64_t transitions;
};

struct health;

/* Start the prober thread with no targets. NULL with errno on failure. */
struct health *health_start(void);
/* Stop the thread, close every probe, free @h. NULL is fine. */
void health_stop(struct health *h);

/* Replace the target list. A target already probed (same service, address
 * and check) keeps its state and counters; new ones start from ->initial.
 * Returns 0 or -ENOMEM (the old list stays). */
int health_set_targets(struct health *h, const struct health_target *targets, size_t n);

/* Readable while transitions are queued; never closed before health_stop. */
int health_event_fd(const struct health *h);
/* Take a queued transition: 1 with @ev filled, 0 when none. The queue
 * holds the latest undelivered transition of each backend (a newer one
 * replaces it), so a slow reader sees current states, not history. */
int health_next_event(struct health *h, struct health_event *ev);

/* The current state and counters of one backend: 0, or -ENOENT when it is
 * not a target. Thread-safe. */
int health_get(struct health *h, const struct sl_svc_key *svc, const struct addr_port *addr,
	       enum health_state *state, struct health_counts *counts);

const char *health_state_name(enum health_state state); /* "unknown", "up", "down" */

#endif
