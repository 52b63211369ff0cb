/* The active health checker declared in health.h. One prober thread runs a
 * poll() loop over every probe in flight, so probes overlap and a slow
 * backend never delays the others. All shared state sits under one mutex
 * that the thread drops only to sleep in poll(). Transitions wait in a
 * queue the agent drains on its own thread; the thread never calls out. */
#define _GNU_SOURCE /* the GNU strerror_r, which returns the message */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "health.h"
#include "log.h"

#define NEVER UINT64_MAX /* a time that never comes */
#define NOT_QUEUED UINT64_MAX
#define INDEX_EMPTY UINT32_MAX
#define STATUS_LINE_LEN 13 /* "HTTP/1.1 200" and the SP or CR after it */
#define REQUEST_MAX 512 /* the request with a CFG_HEALTH_PATH_MAX path fits */
#define JITTER_MAX_MS 1000
#define RETRY_MS 100 /* after running out of sockets */
#define QUEUE_MIN 16
#define REASON_LEN sizeof(((struct health_event *)0)->reason)

enum probe_phase {
	PROBE_IDLE,
	PROBE_CONNECTING,
	PROBE_SENDING,
	PROBE_READING,
};

/* How far driving a probe got. */
enum probe_result {
	PROBE_WAIT, /* waiting on its socket */
	PROBE_PASS,
	PROBE_FAIL,
	PROBE_DEFER, /* no socket to spare: not the backend's fault, retried later */
};

struct target {
	struct health_target cfg;
	enum health_state state;
	unsigned int passes, fails; /* consecutive */
	struct health_counts counts;
	uint64_t next_ms; /* when the next probe starts (CLOCK_MONOTONIC) */
	uint64_t deadline_ms; /* when the probe in flight times out */
	uint64_t queued_at; /* queue position of its pending event, or NOT_QUEUED */
	int fd; /* the probe in flight; -1 when idle */
	enum probe_phase phase;
	size_t io_len; /* request bytes sent (SENDING) or response bytes read (READING) */
	char resp[STATUS_LINE_LEN];
	bool moved; /* health_set_targets() carried it into the new list */
};

/* Targets with an open-addressing index by (service, backend). */
struct target_set {
	struct target *v;
	size_t n;
	uint32_t *index; /* target positions; INDEX_EMPTY marks a free slot */
	size_t index_size; /* a power of two > n, or 0 */
};

/* The thread's poll() array: fds[0] is the wake eventfd, fds[i] for i >= 1
 * the probe of targets[target[i]]. Sized for every target in flight. */
struct poll_set {
	uint32_t *target; /* points past fds[cap - 1] */
	struct pollfd fds[];
};

struct event_slot {
	struct health_event ev;
	bool dead; /* its target was removed: never delivered */
};

struct health {
	pthread_mutex_t lock;
	pthread_t thread;
	int wake_fd; /* eventfd: interrupts the thread's poll() */
	int event_fd; /* eventfd: nonzero while q_live > 0 */
	bool stopping;
	bool fd_warned; /* said that sockets ran out; reset by the next socket */

	struct target_set set;
	/* Bumped by every health_set_targets(): target positions the thread
	 * took before its poll() no longer mean the same target. */
	unsigned int generation;

	struct poll_set *polls; /* the thread's own; read outside the lock */
	struct poll_set *next_polls; /* sized for a new set, adopted by the thread */

	/* A ring of pending transitions holding at most one live event per
	 * target (a newer transition overwrites an undelivered one), so it
	 * stays bounded by the number of targets however slow the agent is.
	 * Positions only grow; position p lives in slot p & (queue_cap - 1). */
	struct event_slot *queue;
	size_t queue_cap;
	uint64_t q_head, q_tail;
	size_t q_live; /* slots in [q_head, q_tail) not dead */
};

const char *health_state_name(enum health_state state)
{
	switch (state) {
	case HEALTH_UP:
		return "up";
	case HEALTH_DOWN:
		return "down";
	default:
		return "unknown";
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- target identity and index ---- */

static uint32_t fnv1a(uint32_t hash, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len--)
		hash = (hash ^ *p++) * 16777619u;
	return hash;
}

/* Field by field: the structs have padding bytes nobody promised to zero. */
static uint32_t target_hash(const struct sl_svc_key *svc, const struct addr_port *addr)
{
	uint32_t hash = 2166136261u;

	hash = fnv1a(hash, svc->addr, sizeof(svc->addr));
	hash = fnv1a(hash, &svc->port, sizeof(svc->port));
	hash = fnv1a(hash, &svc->proto, sizeof(svc->proto));
	hash = fnv1a(hash, &svc->family, sizeof(svc->family));
	hash = fnv1a(hash, addr->addr, sizeof(addr->addr));
	hash = fnv1a(hash, &addr->port, sizeof(addr->port));
	return fnv1a(hash, &addr->family, sizeof(addr->family));
}

static bool target_is(const struct target *t, const struct sl_svc_key *svc,
		      const struct addr_port *addr)
{
	const struct sl_svc_key *s = &t->cfg.svc;
	const struct addr_port *a = &t->cfg.addr;

	return !memcmp(s->addr, svc->addr, sizeof(s->addr)) && s->port == svc->port &&
	       s->proto == svc->proto && s->family == svc->family &&
	       !memcmp(a->addr, addr->addr, sizeof(a->addr)) && a->port == addr->port &&
	       a->family == addr->family;
}

static bool check_equal(const struct cfg_health *a, const struct cfg_health *b)
{
	if (a->type != b->type || a->interval_ms != b->interval_ms ||
	    a->timeout_ms != b->timeout_ms || a->healthy_threshold != b->healthy_threshold ||
	    a->unhealthy_threshold != b->unhealthy_threshold)
		return false;
	if (a->type != CFG_HEALTH_HTTP)
		return true;
	return a->expect_status == b->expect_status && !strncmp(a->path, b->path, sizeof(a->path));
}

/* The first target of @set probing @addr for @svc, or NULL. */
static struct target *set_find(const struct target_set *set, const struct sl_svc_key *svc,
			       const struct addr_port *addr)
{
	size_t mask = set->index_size - 1, i;

	if (!set->index_size)
		return NULL;
	for (i = target_hash(svc, addr) & mask; set->index[i] != INDEX_EMPTY; i = (i + 1) & mask) {
		if (target_is(&set->v[set->index[i]], svc, addr))
			return &set->v[set->index[i]];
	}
	return NULL;
}

/* Index @set->v at load factor <= 1/2; a duplicate keeps the first. */
static int set_build_index(struct target_set *set)
{
	size_t size = 16, mask, i, j;

	while (size < 2 * set->n)
		size *= 2;
	set->index = malloc(size * sizeof(*set->index));
	if (!set->index)
		return -ENOMEM;
	memset(set->index, 0xff, size * sizeof(*set->index)); /* INDEX_EMPTY */
	set->index_size = size;
	mask = size - 1;
	for (i = 0; i < set->n; i++) {
		const struct target *t = &set->v[i];

		if (set_find(set, &t->cfg.svc, &t->cfg.addr))
			continue;
		for (j = target_hash(&t->cfg.svc, &t->cfg.addr) & mask;
		     set->index[j] != INDEX_EMPTY; j = (j + 1) & mask)
			;
		set->index[j] = (uint32_t)i;
	}
	return 0;
}

/* Close every probe of @set and free it. */
static void set_free(struct target_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		if (set->v[i].fd >= 0)
			close(set->v[i].fd);
	}
	free(set->v);
	free(set->index);
	memset(set, 0, sizeof(*set));
}

static struct poll_set *poll_set_alloc(size_t n_targets)
{
	size_t cap = n_targets + 1;
	struct poll_set *ps;

	ps = calloc(1, sizeof(*ps) + cap * (sizeof(ps->fds[0]) + sizeof(ps->target[0])));
	if (ps)
		ps->target = (uint32_t *)&ps->fds[cap];
	return ps;
}

/* ---- the transition queue ---- */

/* No live event left: forget the dead ones and make event_fd unreadable. */
static void queue_settle(struct health *h)
{
	eventfd_t drained;

	if (h->q_live)
		return;
	h->q_head = h->q_tail;
	eventfd_read(h->event_fd, &drained); /* EAGAIN when already drained */
}

static int queue_grow(struct health *h)
{
	size_t cap = h->queue_cap ? 2 * h->queue_cap : QUEUE_MIN;
	struct event_slot *queue;

	queue = malloc(cap * sizeof(*queue));
	if (!queue)
		return -ENOMEM;
	for (uint64_t p = h->q_head; p != h->q_tail; p++)
		queue[p & (cap - 1)] = h->queue[p & (h->queue_cap - 1)];
	free(h->queue);
	h->queue = queue;
	h->queue_cap = cap;
	return 0;
}

static bool queued(const struct health *h, const struct target *t)
{
	return t->queued_at != NOT_QUEUED && t->queued_at >= h->q_head;
}

/* Queue @t's new state, replacing its event still waiting if there is one. */
static void queue_event(struct health *h, struct target *t, const char *why)
{
	struct event_slot *slot;

	if (!queued(h, t)) {
		if (h->q_tail - h->q_head == h->queue_cap && queue_grow(h)) {
			log_error("health", "cannot queue a transition: out of memory");
			return;
		}
		t->queued_at = h->q_tail++;
		if (h->q_live++ == 0)
			eventfd_write(h->event_fd, 1); /* fails only at a huge count: readable */
	}
	slot = &h->queue[t->queued_at & (h->queue_cap - 1)];
	slot->dead = false;
	slot->ev.svc = t->cfg.svc;
	slot->ev.addr = t->cfg.addr;
	slot->ev.state = t->state;
	snprintf(slot->ev.reason, sizeof(slot->ev.reason), "%s", why);
}

/* ---- probes ---- */

static enum probe_result probe_error(const char *op, int err, char *why, size_t len)
{
	char buf[64];

	snprintf(why, len, "%s: %s", op, strerror_r(err, buf, sizeof(buf)));
	return PROBE_FAIL;
}

static int http_request(const struct target *t, char *buf, size_t len)
{
	const char *path = t->cfg.check.path[0] ? t->cfg.check.path : "/";
	char host[ADDR_STR_MAX];

	addr_format_endpoint(&t->cfg.addr, host, sizeof(host));
	return snprintf(buf, len,
			"GET %.*s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluiced-health\r\n"
			"Connection: close\r\n\r\n",
			CFG_HEALTH_PATH_MAX - 1, path, host);
}

/* The connect finished (poll() said so, or connect() returned 0). */
static enum probe_result probe_connected(struct target *t, char *why, size_t len)
{
	socklen_t err_len = sizeof(int);
	int err = 0;

	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &err_len))
		err = errno;
	if (err)
		return probe_error("connect", err, why, len);
	if (t->cfg.check.type != CFG_HEALTH_HTTP) {
		snprintf(why, len, "connected");
		return PROBE_PASS;
	}
	t->phase = PROBE_SENDING;
	t->io_len = 0;
	return PROBE_WAIT;
}

static enum probe_result probe_send(struct target *t, char *why, size_t len)
{
	char req[REQUEST_MAX];
	size_t req_len = (size_t)http_request(t, req, sizeof(req));
	ssize_t n;

	while (t->io_len < req_len) {
		n = send(t->fd, req + t->io_len, req_len - t->io_len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return PROBE_WAIT;
		if (n < 0)
			return probe_error("send", errno, why, len);
		t->io_len += (size_t)n;
	}
	t->phase = PROBE_READING;
	t->io_len = 0;
	return PROBE_WAIT;
}

/* Judge "HTTP/1.x NNN" followed by SP or CR; the rest of the response is
 * not needed, and a reply too short to hold one is a failure. */
static enum probe_result check_status(const struct target *t, char *why, size_t len)
{
	const char *r = t->resp;
	unsigned int status;

	if (t->io_len < STATUS_LINE_LEN) {
		snprintf(why, len, "connection closed before the status line");
		return PROBE_FAIL;
	}
	if (memcmp(r, "HTTP/1.", 7) || !isdigit((unsigned char)r[7]) || r[8] != ' ' ||
	    !isdigit((unsigned char)r[9]) || !isdigit((unsigned char)r[10]) ||
	    !isdigit((unsigned char)r[11]) || (r[12] != ' ' && r[12] != '\r')) {
		snprintf(why, len, "malformed HTTP status line");
		return PROBE_FAIL;
	}
	status = (r[9] - '0') * 100 + (r[10] - '0') * 10 + (r[11] - '0');
	if (status != t->cfg.check.expect_status) {
		snprintf(why, len, "HTTP status %u, expected %u", status,
			 t->cfg.check.expect_status);
		return PROBE_FAIL;
	}
	snprintf(why, len, "HTTP status %u", status);
	return PROBE_PASS;
}

static enum probe_result probe_recv(struct target *t, char *why, size_t len)
{
	ssize_t n;

	while (t->io_len < sizeof(t->resp)) {
		n = recv(t->fd, t->resp + t->io_len, sizeof(t->resp) - t->io_len, 0);
		if (n == 0)
			break; /* closed: judge what came */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return PROBE_WAIT;
		if (n < 0)
			return probe_error("recv", errno, why, len);
		t->io_len += (size_t)n;
	}
	return check_status(t, why, len);
}

/* Drive @t's probe as far as its socket allows without blocking. */
static enum probe_result probe_step(struct target *t, char *why, size_t len)
{
	enum probe_result r = PROBE_WAIT;

	if (t->phase == PROBE_CONNECTING)
		r = probe_connected(t, why, len);
	if (r == PROBE_WAIT && t->phase == PROBE_SENDING)
		r = probe_send(t, why, len);
	if (r == PROBE_WAIT && t->phase == PROBE_READING)
		r = probe_recv(t, why, len);
	return r;
}

static short probe_events(const struct target *t)
{
	return t->phase == PROBE_READING ? POLLIN : POLLOUT;
}

/* Out of descriptors or buffers is our problem, not the backend's: defer
 * instead of failing, and say so once until a socket opens again. */
static enum probe_result socket_error(struct health *h, int err, char *why, size_t len)
{
	char buf[64];

	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return probe_error("socket", err, why, len);
	if (!h->fd_warned)
		log_warn("health", "cannot open a probe socket, probes wait: %s",
			 strerror_r(err, buf, sizeof(buf)));
	h->fd_warned = true;
	return PROBE_DEFER;
}

/* Open @t's socket and start connecting. */
static enum probe_result probe_open(struct health *h, struct target *t, uint64_t now, char *why,
				    size_t len)
{
	/* Reset on close: a checker that closes first would otherwise leave a
	 * TIME_WAIT socket per probe and run out of ephemeral ports. */
	static const struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	struct sockaddr_storage ss;
	socklen_t ss_len = addr_to_sockaddr(&t->cfg.addr, &ss);

	if (!ss_len) {
		snprintf(why, len, "unsupported address family %u", t->cfg.addr.family);
		return PROBE_FAIL;
	}
	t->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (t->fd < 0)
		return socket_error(h, errno, why, len);
	h->fd_warned = false;
	setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	t->phase = PROBE_CONNECTING;
	t->io_len = 0;
	t->deadline_ms = now + t->cfg.check.timeout_ms;
	if (connect(t->fd, (struct sockaddr *)&ss, ss_len) == 0)
		return probe_step(t, why, len);
	if (errno == EINPROGRESS)
		return PROBE_WAIT;
	return probe_error("connect", errno, why, len);
}

/* ---- results and the state machine ---- */

static void transition(struct health *h, struct target *t, enum health_state to, const char *why)
{
	char svc[ADDR_STR_MAX], backend[ADDR_STR_MAX];
	enum health_state from = t->state;

	t->state = to;
	t->counts.transitions++;
	queue_event(h, t, why);
	addr_format_service(&t->cfg.svc, svc, sizeof(svc));
	addr_format_endpoint(&t->cfg.addr, backend, sizeof(backend));
	/* Under the lock: one short stderr line per transition is cheap. */
	log_info("health", "service %s backend %s %s -> %s: %s", svc, backend,
		 health_state_name(from), health_state_name(to), why);
}

/* Count a finished probe and move @t up or down once its run of equal
 * results reaches the threshold. */
static void record_result(struct health *h, struct target *t, bool pass, const char *why)
{
	const struct cfg_health *c = &t->cfg.check;

	t->counts.probes++;
	if (pass) {
		t->fails = 0;
		if (t->passes < UINT_MAX)
			t->passes++;
		if (t->passes >= c->healthy_threshold && t->state != HEALTH_UP)
			transition(h, t, HEALTH_UP, why);
		return;
	}
	t->counts.failures++;
	t->passes = 0;
	if (t->fails < UINT_MAX)
		t->fails++;
	if (t->fails >= c->unhealthy_threshold && t->state != HEALTH_DOWN)
		transition(h, t, HEALTH_DOWN, why);
}

static void probe_finish(struct health *h, struct target *t, enum probe_result r, const char *why)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->phase = PROBE_IDLE;
	record_result(h, t, r == PROBE_PASS, why);
}

static void probe_timeout(struct health *h, struct target *t)
{
	static const char *const doing[] = {
		[PROBE_CONNECTING] = "connecting",
		[PROBE_SENDING] = "sending the request",
		[PROBE_READING] = "awaiting the status line",
	};
	char why[REASON_LEN];

	snprintf(why, sizeof(why), "timeout after %u ms %s", t->cfg.check.timeout_ms,
		 doing[t->phase]);
	probe_finish(h, t, PROBE_FAIL, why);
}

/* Start @t's next probe, keeping its schedule at a fixed rate. */
static void probe_begin(struct health *h, struct target *t, uint64_t now)
{
	char why[REASON_LEN];
	enum probe_result r;

	t->next_ms += t->cfg.check.interval_ms;
	if (t->next_ms <= now)
		t->next_ms = now + t->cfg.check.interval_ms; /* fell behind: skip, no burst */
	r = probe_open(h, t, now, why, sizeof(why));
	if (r == PROBE_DEFER)
		t->next_ms = now + RETRY_MS;
	else if (r != PROBE_WAIT)
		probe_finish(h, t, r, why);
}

/* ---- the thread ---- */

static int poll_timeout(uint64_t wake_ms, uint64_t now)
{
	if (wake_ms == NEVER)
		return -1;
	if (wake_ms <= now)
		return 0;
	return wake_ms - now > INT_MAX ? INT_MAX : (int)(wake_ms - now);
}

/* Time out and start what is due; returns the poll() timeout until the
 * next deadline or start. Timeouts go first so that a probe whose timeout
 * equals its interval ends before the next one starts. */
static int run_due(struct health *h, uint64_t now)
{
	uint64_t wake = NEVER;

	for (size_t i = 0; i < h->set.n; i++) {
		struct target *t = &h->set.v[i];

		if (t->phase != PROBE_IDLE && now >= t->deadline_ms)
			probe_timeout(h, t);
		if (t->phase == PROBE_IDLE && now >= t->next_ms)
			probe_begin(h, t, now);
		if (t->phase != PROBE_IDLE && t->deadline_ms < wake)
			wake = t->deadline_ms;
		else if (t->phase == PROBE_IDLE && t->next_ms < wake)
			wake = t->next_ms;
	}
	return poll_timeout(wake, now);
}

/* Fill the thread's poll set with the wake fd and every probe in flight. */
static nfds_t fill_polls(struct health *h)
{
	struct poll_set *ps;
	nfds_t n = 1;

	if (h->next_polls) {
		free(h->polls);
		h->polls = h->next_polls;
		h->next_polls = NULL;
	}
	ps = h->polls;
	ps->fds[0] = (struct pollfd){ .fd = h->wake_fd, .events = POLLIN };
	for (size_t i = 0; i < h->set.n; i++) {
		const struct target *t = &h->set.v[i];

		if (t->fd < 0)
			continue;
		ps->fds[n] = (struct pollfd){ .fd = t->fd, .events = probe_events(t) };
		ps->target[n++] = (uint32_t)i;
	}
	return n;
}

static void run_ready(struct health *h, nfds_t nfds)
{
	char why[REASON_LEN];
	const struct poll_set *ps = h->polls;
	enum probe_result r;

	for (nfds_t i = 1; i < nfds; i++) {
		struct target *t = &h->set.v[ps->target[i]];

		if (!ps->fds[i].revents || t->fd != ps->fds[i].fd)
			continue;
		r = probe_step(t, why, sizeof(why));
		if (r != PROBE_WAIT)
			probe_finish(h, t, r, why);
	}
}

static void *health_main(void *arg)
{
	struct health *h = arg;
	unsigned int generation;
	eventfd_t drained;
	int timeout, ready;
	nfds_t nfds;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		timeout = run_due(h, now_ms());
		nfds = fill_polls(h);
		generation = h->generation;
		pthread_mutex_unlock(&h->lock);
		ready = poll(h->polls->fds, nfds, timeout);
		/* Never spin on a failing poll(): wait on the wake fd alone. */
		if (ready < 0 && errno != EINTR)
			ready = poll(h->polls->fds, 1, timeout);
		pthread_mutex_lock(&h->lock);
		if (ready > 0 && h->polls->fds[0].revents)
			eventfd_read(h->wake_fd, &drained);
		if (ready > 0 && generation == h->generation)
			run_ready(h, nfds);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void wake_thread(struct health *h)
{
	eventfd_write(h->wake_fd, 1); /* fails only at a huge count: still readable */
}

/* ---- the API ---- */

struct health *health_start(void)
{
	struct health *h = calloc(1, sizeof(*h));
	sigset_t all, old;
	int err = ENOMEM;

	if (!h)
		return NULL;
	h->polls = poll_set_alloc(0);
	if (!h->polls)
		goto err_free_h;
	h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	err = errno;
	if (h->wake_fd < 0)
		goto err_free_polls;
	h->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	err = errno;
	if (h->event_fd < 0)
		goto err_close_wake;
	pthread_mutex_init(&h->lock, NULL);
	/* The agent's signals belong to the agent's thread, not the prober. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&h->thread, NULL, health_main, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		goto err_destroy_lock;
	return h;

err_destroy_lock:
	pthread_mutex_destroy(&h->lock);
	close(h->event_fd);
err_close_wake:
	close(h->wake_fd);
err_free_polls:
	free(h->polls);
err_free_h:
	free(h);
	errno = err;
	return NULL;
}

void health_stop(struct health *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_mutex_unlock(&h->lock);
	wake_thread(h);
	pthread_join(h->thread, NULL);
	set_free(&h->set);
	free(h->queue);
	free(h->polls);
	free(h->next_polls);
	close(h->wake_fd);
	close(h->event_fd);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* The first probe of a new target comes within a quarter interval (at most
 * JITTER_MAX_MS), spread by address so that a large set does not connect
 * all at once. */
static uint64_t first_probe(const struct health_target *cfg, uint64_t now)
{
	uint32_t spread = cfg->check.interval_ms / 4;

	if (cfg->check.type == CFG_HEALTH_NONE || !cfg->check.interval_ms)
		return NEVER; /* nothing to probe: keeps its initial state */
	if (spread > JITTER_MAX_MS)
		spread = JITTER_MAX_MS;
	return now + target_hash(&cfg->svc, &cfg->addr) % (spread + 1);
}

/* Fill @next from @cfg, carrying over the state, counters and probe in
 * flight of each target @h already probes the same way. */
static void set_carry_over(struct health *h, struct target_set *next,
			   const struct health_target *cfg, uint64_t now)
{
	for (size_t i = 0; i < next->n; i++) {
		struct target *t = &next->v[i];
		struct target *old = set_find(&h->set, &cfg[i].svc, &cfg[i].addr);

		if (old && !old->moved && check_equal(&old->cfg.check, &cfg[i].check)) {
			*t = *old;
			t->cfg.initial = cfg[i].initial;
			t->moved = false;
			old->moved = true;
			old->fd = -1; /* now @t's */
			continue;
		}
		t->cfg = cfg[i];
		t->state = cfg[i].initial <= HEALTH_DOWN ? cfg[i].initial : HEALTH_UNKNOWN;
		t->next_ms = first_probe(&cfg[i], now);
		t->queued_at = NOT_QUEUED;
		t->fd = -1;
	}
}

/* Close the probes of targets left out of the new set and drop their
 * undelivered events: the agent has just replaced what they described. */
static void set_drop_removed(struct health *h)
{
	for (size_t i = 0; i < h->set.n; i++) {
		struct target *t = &h->set.v[i];

		if (t->moved)
			continue;
		if (t->fd >= 0)
			close(t->fd);
		t->fd = -1;
		if (queued(h, t)) {
			h->queue[t->queued_at & (h->queue_cap - 1)].dead = true;
			h->q_live--;
		}
	}
	queue_settle(h);
}

int health_set_targets(struct health *h, const struct health_target *targets, size_t n)
{
	struct target_set next = { .n = n };
	struct poll_set *polls;

	if (n >= INDEX_EMPTY)
		return -ENOMEM;
	next.v = calloc(n ? n : 1, sizeof(*next.v));
	polls = poll_set_alloc(n);
	if (!next.v || !polls)
		goto err_free;
	for (size_t i = 0; i < n; i++)
		next.v[i].cfg = targets[i]; /* what the index hashes */
	if (set_build_index(&next))
		goto err_free;

	pthread_mutex_lock(&h->lock);
	set_carry_over(h, &next, targets, now_ms());
	set_drop_removed(h);
	set_free(&h->set); /* every fd left was moved or closed */
	h->set = next;
	free(h->next_polls);
	h->next_polls = polls;
	h->generation++;
	pthread_mutex_unlock(&h->lock);
	wake_thread(h);
	return 0;

err_free:
	free(polls);
	free(next.v);
	return -ENOMEM;
}

int health_event_fd(const struct health *h)
{
	return h->event_fd;
}

int health_next_event(struct health *h, struct health_event *ev)
{
	int found = 0;

	pthread_mutex_lock(&h->lock);
	while (!found && h->q_head != h->q_tail) {
		const struct event_slot *slot = &h->queue[h->q_head++ & (h->queue_cap - 1)];

		if (slot->dead)
			continue;
		*ev = slot->ev;
		h->q_live--;
		found = 1;
	}
	queue_settle(h);
	pthread_mutex_unlock(&h->lock);
	return found;
}

int health_get(struct health *h, const struct sl_svc_key *svc, const struct addr_port *addr,
	       enum health_state *state, struct health_counts *counts)
{
	const struct target *t;
	int err = -ENOENT;

	pthread_mutex_lock(&h->lock);
	t = set_find(&h->set, svc, addr);
	if (t) {
		if (state)
			*state = t->state;
		if (counts)
			*counts = t->counts;
		err = 0;
	}
	pthread_mutex_unlock(&h->lock);
	return err;
}
