/* sluice-proxy's metrics registry and its Prometheus rendering. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pmetrics.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pm_service *registry;

/* Status codes with a slot of their own; the rest go to "1xx".."5xx". */
static const int status_codes[] = { 100, 101, 200, 201, 202, 204, 206, 301, 302, 304,
				    307, 308, 400, 401, 403, 404, 405, 408, 409, 413,
				    414, 429, 431, 499, 500, 501, 502, 503, 504, 505 };
#define N_CODES (sizeof(status_codes) / sizeof(status_codes[0]))
_Static_assert(N_CODES + 2 <= PM_STATUS_SLOTS, "status slots");

unsigned int pm_status_slot(int status)
{
	for (unsigned int i = 0; i < N_CODES; i++)
		if (status_codes[i] == status)
			return i;
	return status < 400 ? N_CODES : N_CODES + 1; /* "other" below 400 / from 400 */
}

struct pm_service *pm_service_get(const char *name)
{
	struct pm_service *s;

	pthread_mutex_lock(&registry_lock);
	for (s = registry; s; s = s->next)
		if (!strcmp(s->name, name))
			goto out;
	s = calloc(1, sizeof(*s));
	if (s) {
		snprintf(s->name, sizeof(s->name), "%s", name);
		s->next = registry;
		registry = s;
	}
out:
	pthread_mutex_unlock(&registry_lock);
	return s;
}

struct pm_route *pm_route_get(struct pm_service *s, uint32_t index)
{
	struct pm_route *r;

	pthread_mutex_lock(&registry_lock);
	for (r = s->routes; r; r = r->next)
		if (r->index == index)
			goto out;
	r = calloc(1, sizeof(*r));
	if (r) {
		r->index = index;
		r->next = s->routes;
		s->routes = r;
	}
out:
	pthread_mutex_unlock(&registry_lock);
	return r;
}

void pm_observe_latency(struct pm_service *s, uint64_t us)
{
	static const uint64_t bounds_ms[] = PM_LAT_BOUNDS;
	unsigned int i = 0;

	while (i < PM_LAT_BUCKETS - 1 && us > bounds_ms[i] * 1000)
		i++;
	pm_add(&s->lat_buckets[i], 1);
	pm_add(&s->lat_sum_us, us);
	pm_add(&s->lat_count, 1);
}

static uint64_t pm_get(pm_counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void status_label(unsigned int slot, char *buf, size_t len)
{
	if (slot < N_CODES)
		snprintf(buf, len, "%d", status_codes[slot]);
	else
		snprintf(buf, len, "%s", slot == N_CODES ? "other_below_400" : "other");
}

static void render_requests(FILE *out, struct pm_service *s)
{
	char status[24], route[16];

	for (struct pm_route *r = s->routes; r; r = r->next)
		for (unsigned int i = 0; i < PM_STATUS_SLOTS; i++) {
			uint64_t v = pm_get(&r->by_status[i]);

			if (!v)
				continue;
			status_label(i, status, sizeof(status));
			if (r->index == UINT32_MAX)
				snprintf(route, sizeof(route), "none");
			else
				snprintf(route, sizeof(route), "%u", r->index);
			fprintf(out,
				"sluice_proxy_requests_total{service=\"%s\",route=\"%s\",status=\"%s\"} %llu\n",
				s->name, route, status, (unsigned long long)v);
		}
}

static void render_latency(FILE *out, struct pm_service *s)
{
	static const uint64_t bounds_ms[] = PM_LAT_BOUNDS;
	uint64_t cumulative = 0;

	for (unsigned int i = 0; i < PM_LAT_BUCKETS; i++) {
		cumulative += pm_get(&s->lat_buckets[i]);
		if (i < PM_LAT_BUCKETS - 1)
			fprintf(out,
				"sluice_proxy_upstream_latency_seconds_bucket{service=\"%s\",le=\"%g\"} %llu\n",
				s->name, bounds_ms[i] / 1000.0, (unsigned long long)cumulative);
		else
			fprintf(out,
				"sluice_proxy_upstream_latency_seconds_bucket{service=\"%s\",le=\"+Inf\"} %llu\n",
				s->name, (unsigned long long)cumulative);
	}
	fprintf(out, "sluice_proxy_upstream_latency_seconds_sum{service=\"%s\"} %.6f\n", s->name,
		pm_get(&s->lat_sum_us) / 1e6);
	fprintf(out, "sluice_proxy_upstream_latency_seconds_count{service=\"%s\"} %llu\n", s->name,
		(unsigned long long)pm_get(&s->lat_count));
}

struct pm_event_field {
	const char *event;
	size_t offset;
};

static void render_events(FILE *out, struct pm_service *s)
{
	static const struct pm_event_field fields[] = {
		{ "no_route", offsetof(struct pm_service, no_route) },
		{ "denied", offsetof(struct pm_service, denied) },
		{ "retry", offsetof(struct pm_service, retries) },
		{ "retry_budget_exhausted", offsetof(struct pm_service, retry_budget_exhausted) },
		{ "ejection", offsetof(struct pm_service, ejections) },
		{ "overflow", offsetof(struct pm_service, overflow) },
		{ "no_endpoint", offsetof(struct pm_service, no_endpoint) },
		{ "connect_failure", offsetof(struct pm_service, connect_failures) },
		{ "reset", offsetof(struct pm_service, resets) },
		{ "timeout", offsetof(struct pm_service, timeouts) },
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		fprintf(out, "sluice_proxy_events_total{service=\"%s\",event=\"%s\"} %llu\n",
			s->name, fields[i].event,
			(unsigned long long)pm_get((pm_counter *)((char *)s + fields[i].offset)));
}

struct pm_worker_field {
	const char *name, *type, *help;
	size_t offset;
};

static const struct pm_worker_field worker_fields[] = {
	{ "sluice_proxy_connections_accepted_total", "counter", "Client connections accepted.",
	  offsetof(struct pm_worker, accepted) },
	{ "sluice_proxy_active_connections", "gauge", "Client connections open.",
	  offsetof(struct pm_worker, active_clients) },
	{ "sluice_proxy_upstream_active_connections", "gauge",
	  "Upstream connections open (busy or pooled).",
	  offsetof(struct pm_worker, active_upstreams) },
	{ "sluice_proxy_upstream_connects_total", "counter", "Upstream connections opened.",
	  offsetof(struct pm_worker, upstream_connects) },
	{ "sluice_proxy_upstream_reused_total", "counter",
	  "Requests sent on a pooled (kept-alive) upstream connection.",
	  offsetof(struct pm_worker, upstream_reused) },
	{ "sluice_proxy_bad_requests_total", "counter",
	  "Requests refused before routing (400, 408, 413, 414, 431, 501, 505).",
	  offsetof(struct pm_worker, bad_requests) },
	{ "sluice_proxy_reloads_total", "counter", "Configurations taken by the workers.",
	  offsetof(struct pm_worker, reloads) },
};

static void render_workers(FILE *out, struct pm_worker *const *workers, int n)
{
	for (size_t f = 0; f < sizeof(worker_fields) / sizeof(worker_fields[0]); f++) {
		uint64_t sum = 0;

		for (int i = 0; i < n; i++)
			sum += pm_get((pm_counter *)((char *)workers[i] + worker_fields[f].offset));
		fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", worker_fields[f].name,
			worker_fields[f].help, worker_fields[f].name, worker_fields[f].type,
			worker_fields[f].name, (unsigned long long)sum);
	}
}

int pm_render(FILE *out, struct pm_worker *const *workers, int n)
{
	struct pm_service *s;

	render_workers(out, workers, n);
	pthread_mutex_lock(&registry_lock);
	fputs("# HELP sluice_proxy_requests_total Requests answered, by service, route and status.\n"
	      "# TYPE sluice_proxy_requests_total counter\n",
	      out);
	for (s = registry; s; s = s->next)
		render_requests(out, s);
	fputs("# HELP sluice_proxy_upstream_latency_seconds Attempt start to response head.\n"
	      "# TYPE sluice_proxy_upstream_latency_seconds histogram\n",
	      out);
	for (s = registry; s; s = s->next)
		render_latency(out, s);
	fputs("# HELP sluice_proxy_events_total Retries, denials, ejections, overflows, failures.\n"
	      "# TYPE sluice_proxy_events_total counter\n",
	      out);
	for (s = registry; s; s = s->next)
		render_events(out, s);
	pthread_mutex_unlock(&registry_lock);
	return ferror(out) ? -EIO : 0;
}
