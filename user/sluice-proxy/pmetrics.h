/* sluice-proxy's Prometheus metrics: counters the workers bump with
 * relaxed atomics, interned by service name and route index so they
 * outlive reloads (a route table is rebuilt; its counters are found again
 * by name), and rendered by the metrics thread in the text format. */
#ifndef SLUICE_PMETRICS_H
#define SLUICE_PMETRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define PM_NAME_MAX 64
/* Upstream latency buckets, ms (the last is +Inf). */
#define PM_LAT_BOUNDS                                                       \
	{                                                                   \
		1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 \
	}
#define PM_LAT_BUCKETS 14
#define PM_STATUS_SLOTS 32

typedef atomic_uint_least64_t pm_counter;

/* Requests of one route by status. */
struct pm_route {
	uint32_t index;
	pm_counter by_status[PM_STATUS_SLOTS]; /* pm_status_slot() */
	struct pm_route *next;
};

struct pm_service {
	char name[PM_NAME_MAX];
	struct pm_route *routes;
	pm_counter no_route; /* 404: no route matched */
	pm_counter denied; /* 403: an access rule */
	pm_counter retries;
	pm_counter retry_budget_exhausted;
	pm_counter ejections;
	pm_counter overflow; /* 503: a circuit breaker limit */
	pm_counter no_endpoint; /* 503: no endpoint with weight in the group */
	pm_counter connect_failures;
	pm_counter resets;
	pm_counter timeouts;
	pm_counter lat_buckets[PM_LAT_BUCKETS]; /* upstream: attempt start to response head */
	pm_counter lat_sum_us;
	pm_counter lat_count;
	struct pm_service *next;
};

/* A worker's own gauges and totals. */
struct pm_worker {
	pm_counter accepted;
	pm_counter active_clients;
	pm_counter active_upstreams;
	pm_counter upstream_connects;
	pm_counter upstream_reused;
	pm_counter requests;
	pm_counter bad_requests; /* answered 400/408/413/414/431/501/505 */
	pm_counter reloads;
};

/* The counters of service @name and its route @index, made on first use
 * (NULL when out of memory). Thread-safe; entries live for the process. */
struct pm_service *pm_service_get(const char *name);
struct pm_route *pm_route_get(struct pm_service *s, uint32_t index);

static inline void pm_add(pm_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline void pm_sub(pm_counter *c, uint64_t n)
{
	atomic_fetch_sub_explicit(c, n, memory_order_relaxed);
}

/* Where a status is counted: common codes each their own slot, others by class. */
unsigned int pm_status_slot(int status);
void pm_observe_latency(struct pm_service *s, uint64_t us);

/* Write every metric (the services, and @n workers' totals). 0 or -EIO. */
int pm_render(FILE *out, struct pm_worker *const *workers, int n);

#endif
