/* The agent's own counters (transactions, reloads, API requests, health
 * transitions), kept by the agent and exported by `sluice status` and the
 * Prometheus endpoint. */
#ifndef SLUICE_AGENT_STATS_H
#define SLUICE_AGENT_STATS_H

#include <stdint.h>

struct agent_stats {
	uint64_t transactions; /* changes published (CLI verbs, apply, reload) */
	uint64_t transaction_errors; /* changes refused or failed, nothing published */
	double transaction_seconds_sum; /* wall time of the published ones */
	double last_transaction_seconds;
	uint64_t reloads; /* SIGHUP / `reload` requests that applied the config */
	uint64_t reload_errors;
	uint64_t api_requests;
	uint64_t api_errors; /* requests answered with an error */
	uint64_t health_transitions;
	double start_time; /* CLOCK_REALTIME seconds */
};

#endif
