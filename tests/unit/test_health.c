/* Unit tests for the active health checker (user/sluiced/health.c) against
 * loopback servers on ephemeral ports: TCP listeners (up), ports with no
 * listener (refused), HTTP servers answering a chosen status or garbage,
 * and servers that accept but never answer (timeout). Intervals are tens of
 * milliseconds so the whole file runs in a few seconds. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "health.h"
#include "log.h"

#define WAIT_MS 2000 /* for anything expected: generous for a loaded machine */
#define MAX_HELD 256

enum server_mode {
	SERVER_ACCEPT, /* accept and close */
	SERVER_HTTP, /* answer one request with ->status (0: garbage) and close */
	SERVER_SILENT, /* accept and hold the connection without a word */
};

struct server {
	int family; /* AF_INET or AF_INET6 */
	enum server_mode mode;
	uint16_t port; /* host order */
	int listen_fd, stop_fd;
	pthread_t thread;
	atomic_int status;
	atomic_int accepted;
	pthread_mutex_t lock;
	char request[1024]; /* the last request read, under lock */
	int held[MAX_HELD], n_held;
};

/* ---- helpers ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static socklen_t loopback(int family, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*sin);
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = in6addr_loopback;
	return sizeof(*sin6);
}

/* A socket bound to loopback @port (0: ephemeral); -1 when the family is
 * not available. Sets *@bound to the port it got. */
static int bind_loopback(int family, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, port, &ss);
	int fd, one = 1;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		close(fd);
		return -1;
	}
	*bound = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					 : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* A port with no listener: connecting to it is refused. */
static uint16_t closed_port(int family)
{
	uint16_t port = 0;
	int fd = bind_loopback(family, 0, &port);

	assert_true(fd >= 0);
	close(fd);
	return port;
}

static bool have_ipv6(void)
{
	uint16_t port;
	int fd = bind_loopback(AF_INET6, 0, &port);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void serve_http(struct server *s, int fd)
{
	struct timeval tv = { .tv_sec = 1 };
	char req[sizeof(s->request)], resp[256];
	size_t len = 0;
	ssize_t n;
	int status = atomic_load(&s->status);

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < sizeof(req) - 1) {
		n = recv(fd, req + len, sizeof(req) - 1 - len, 0);
		if (n <= 0)
			break;
		len += n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[len] = '\0';
	pthread_mutex_lock(&s->lock);
	memcpy(s->request, req, len + 1);
	pthread_mutex_unlock(&s->lock);
	if (status)
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 %d Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			 status);
	else
		snprintf(resp, sizeof(resp), "SSH-2.0-OpenSSH_9.2\r\n");
	n = send(fd, resp, strlen(resp), MSG_NOSIGNAL);
	(void)n;
}

static void serve_one(struct server *s, int fd)
{
	atomic_fetch_add(&s->accepted, 1);
	if (s->mode == SERVER_HTTP)
		serve_http(s, fd);
	if (s->mode == SERVER_SILENT && s->n_held < MAX_HELD) {
		s->held[s->n_held++] = fd;
		return;
	}
	close(fd);
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd[2] = {
		{ .fd = s->listen_fd, .events = POLLIN },
		{ .fd = s->stop_fd, .events = POLLIN },
	};
	int fd;

	while (poll(pfd, 2, -1) >= 0 && !pfd[1].revents) {
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve_one(s, fd);
	}
	return NULL;
}

/* Listen on loopback @port (0: ephemeral). false when @family is missing. */
static bool server_start(struct server *s, int family, enum server_mode mode, uint16_t port)
{
	memset(s, 0, sizeof(*s));
	s->family = family;
	s->mode = mode;
	atomic_init(&s->status, 200);
	atomic_init(&s->accepted, 0);
	pthread_mutex_init(&s->lock, NULL);
	s->listen_fd = bind_loopback(family, port, &s->port);
	if (s->listen_fd < 0)
		return false;
	assert_int_equal(listen(s->listen_fd, 512), 0);
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(s->stop_fd >= 0);
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	return true;
}

static void server_stop(struct server *s)
{
	assert_int_equal(eventfd_write(s->stop_fd, 1), 0);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	close(s->stop_fd);
	for (int i = 0; i < s->n_held; i++)
		close(s->held[i]);
	pthread_mutex_destroy(&s->lock);
}

static struct health_target make_target(int family, uint16_t port, uint16_t svc_port,
					enum cfg_health_type type)
{
	struct health_target t = { .initial = HEALTH_UNKNOWN };
	char text[ADDR_STR_MAX];

	snprintf(text, sizeof(text), "198.19.0.10:%u/tcp", svc_port);
	assert_int_equal(addr_parse_service(text, &t.svc), 0);
	snprintf(text, sizeof(text), family == AF_INET ? "127.0.0.1:%u" : "[::1]:%u", port);
	assert_int_equal(addr_parse_endpoint(text, &t.addr), 0);
	t.check.type = type;
	t.check.interval_ms = 20;
	t.check.timeout_ms = 20;
	t.check.healthy_threshold = 1;
	t.check.unhealthy_threshold = 1;
	if (type == CFG_HEALTH_HTTP) {
		snprintf(t.check.path, sizeof(t.check.path), "/healthz");
		t.check.expect_status = 200;
		t.check.interval_ms = 50;
		t.check.timeout_ms = 50;
	}
	return t;
}

static struct health *start_with(const struct health_target *targets, size_t n)
{
	struct health *h = health_start();

	assert_non_null(h);
	assert_int_equal(health_set_targets(h, targets, n), 0);
	return h;
}

/* Wait up to @ms for the event fd, then take an event: 1 or 0. */
static int wait_event(struct health *h, int ms, struct health_event *ev)
{
	struct pollfd pfd = { .fd = health_event_fd(h), .events = POLLIN };

	if (poll(&pfd, 1, ms) != 1)
		return 0;
	assert_int_equal(health_next_event(h, ev), 1);
	return 1;
}

/* The next event is @t going @state with a reason starting with @reason. */
static void expect_event(struct health *h, const struct health_target *t, enum health_state state,
			 const char *reason)
{
	struct health_event ev;

	assert_int_equal(wait_event(h, WAIT_MS, &ev), 1);
	assert_string_equal(health_state_name(ev.state), health_state_name(state));
	assert_memory_equal(&ev.svc, &t->svc, sizeof(ev.svc));
	assert_memory_equal(ev.addr.addr, t->addr.addr, sizeof(ev.addr.addr));
	assert_int_equal(ev.addr.port, t->addr.port);
	assert_int_equal(ev.addr.family, t->addr.family);
	if (strncmp(ev.reason, reason, strlen(reason)))
		fail_msg("reason \"%s\" does not start with \"%s\"", ev.reason, reason);
}

/* Nothing queued: the fd is not readable and there is no event. */
static void expect_no_event(struct health *h)
{
	struct pollfd pfd = { .fd = health_event_fd(h), .events = POLLIN };
	struct health_event ev;

	assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_int_equal(health_next_event(h, &ev), 0);
}

static void get(struct health *h, const struct health_target *t, enum health_state *state,
		struct health_counts *counts)
{
	assert_int_equal(health_get(h, &t->svc, &t->addr, state, counts), 0);
}

/* Wait until @t has finished @n probes; returns its counts then. */
static struct health_counts wait_probes(struct health *h, const struct health_target *t, uint64_t n)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	struct health_counts c;

	do {
		get(h, t, NULL, &c);
		if (c.probes >= n)
			return c;
		sleep_ms(1);
	} while (now_ms() < deadline);
	fail_msg("only %llu of %llu probes", (unsigned long long)c.probes, (unsigned long long)n);
	return c;
}

/* ---- tests ---- */

static void check_tcp_up(int family)
{
	struct server s;
	struct health_target t;
	struct health_counts c;
	enum health_state st;
	struct health *h;

	if (!server_start(&s, family, SERVER_ACCEPT, 0))
		skip();
	t = make_target(family, s.port, 80, CFG_HEALTH_TCP);
	t.check.healthy_threshold = 2;
	h = start_with(&t, 1);
	expect_event(h, &t, HEALTH_UP, "connected");
	get(h, &t, &st, &c);
	assert_int_equal(st, HEALTH_UP);
	assert_true(c.probes >= 2);
	assert_int_equal(c.failures, 0);
	assert_int_equal(c.transitions, 1);
	sleep_ms(100); /* more passes: no more events */
	expect_no_event(h);
	assert_true(atomic_load(&s.accepted) >= 3);
	health_stop(h);
	server_stop(&s);
}

static void test_tcp_up_ipv4(void **state)
{
	(void)state;
	check_tcp_up(AF_INET);
}

static void test_tcp_up_ipv6(void **state)
{
	(void)state;
	check_tcp_up(AF_INET6);
}

static void check_tcp_refused(int family)
{
	struct health_target t;
	struct health_counts c;
	enum health_state st;
	struct health *h;

	if (family == AF_INET6 && !have_ipv6())
		skip();
	t = make_target(family, closed_port(family), 81, CFG_HEALTH_TCP);
	t.check.unhealthy_threshold = 2;
	h = start_with(&t, 1);
	expect_event(h, &t, HEALTH_DOWN, "connect: Connection refused");
	get(h, &t, &st, &c);
	assert_int_equal(st, HEALTH_DOWN);
	assert_true(c.probes >= 2);
	assert_int_equal(c.failures, c.probes);
	assert_int_equal(c.transitions, 1);
	health_stop(h);
}

static void test_tcp_refused_ipv4(void **state)
{
	(void)state;
	check_tcp_refused(AF_INET);
}

static void test_tcp_refused_ipv6(void **state)
{
	(void)state;
	check_tcp_refused(AF_INET6);
}

/* The transition is logged on one line naming service, backend and reason.
 * stderr goes to a file only while waiting: a failed assert must be seen. */
static void test_transition_logged(void **state)
{
	struct health_target t = make_target(AF_INET, closed_port(AF_INET), 82, CFG_HEALTH_TCP);
	enum log_level saved = log_get_level();
	char expect[256], line[512] = "";
	FILE *capture = tmpfile();
	int saved_stderr = dup(STDERR_FILENO);
	struct health_event ev;
	struct health *h;
	size_t n;
	int got;

	(void)state;
	assert_non_null(capture);
	assert_true(saved_stderr >= 0);
	fflush(stderr);
	dup2(fileno(capture), STDERR_FILENO);
	log_set_level(LOG_INFO);
	h = health_start();
	got = h && !health_set_targets(h, &t, 1) && wait_event(h, WAIT_MS, &ev);
	health_stop(h);
	log_set_level(saved);
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	rewind(capture);
	n = fread(line, 1, sizeof(line) - 1, capture);
	line[n] = '\0';
	fclose(capture);

	assert_true(got);
	snprintf(expect, sizeof(expect),
		 " info  health: service 198.19.0.10:82/tcp backend 127.0.0.1:%u unknown -> down: "
		 "connect: Connection refused\n",
		 ntohs(t.addr.port));
	if (!strstr(line, expect))
		fail_msg("log \"%s\" lacks \"%s\"", line, expect);
	assert_ptr_equal(strchr(line, '\n') + 1, line + n); /* one line */
}

/* unhealthy_threshold 3: two failures move nothing, the third does; the
 * same for healthy_threshold. Intervals of 100 ms leave time to look. */
static void test_thresholds(void **state)
{
	struct health_target t[2];
	struct health_counts c;
	enum health_state st;
	struct server s;
	struct health *h;

	(void)state;
	assert_true(server_start(&s, AF_INET, SERVER_ACCEPT, 0));
	t[0] = make_target(AF_INET, closed_port(AF_INET), 83, CFG_HEALTH_TCP);
	t[1] = make_target(AF_INET, s.port, 84, CFG_HEALTH_TCP);
	t[0].check.interval_ms = t[1].check.interval_ms = 100;
	t[0].check.unhealthy_threshold = 3;
	t[1].check.healthy_threshold = 3;
	h = start_with(t, 2);
	for (int i = 0; i < 2; i++) {
		c = wait_probes(h, &t[i], 2);
		get(h, &t[i], &st, &c);
		assert_int_equal(c.probes, 2);
		assert_int_equal(st, HEALTH_UNKNOWN);
		assert_int_equal(c.transitions, 0);
	}
	expect_no_event(h);
	for (int i = 0; i < 2; i++) {
		struct health_event ev;

		assert_int_equal(wait_event(h, WAIT_MS, &ev), 1);
		assert_int_equal(ev.state,
				 ev.addr.port == t[0].addr.port ? HEALTH_DOWN : HEALTH_UP);
	}
	for (int i = 0; i < 2; i++) {
		get(h, &t[i], &st, &c);
		assert_int_equal(c.probes, 3);
		assert_int_equal(c.transitions, 1);
		assert_int_equal(st, i == 0 ? HEALTH_DOWN : HEALTH_UP);
	}
	health_stop(h);
	server_stop(&s);
}

/* HTTP: the exact request, 200 is up, 500 goes down, back to 200 is up. */
static void test_http_status(void **state)
{
	struct health_target t;
	struct health_counts c;
	enum health_state st;
	char expect[256];
	struct server s;
	struct health *h;

	(void)state;
	assert_true(server_start(&s, AF_INET, SERVER_HTTP, 0));
	t = make_target(AF_INET, s.port, 85, CFG_HEALTH_HTTP);
	t.check.unhealthy_threshold = 2;
	h = start_with(&t, 1);
	expect_event(h, &t, HEALTH_UP, "HTTP status 200");
	snprintf(expect, sizeof(expect),
		 "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: sluiced-health\r\n"
		 "Connection: close\r\n\r\n",
		 s.port);
	pthread_mutex_lock(&s.lock);
	assert_string_equal(s.request, expect);
	pthread_mutex_unlock(&s.lock);

	atomic_store(&s.status, 500);
	expect_event(h, &t, HEALTH_DOWN, "HTTP status 500, expected 200");
	atomic_store(&s.status, 200);
	expect_event(h, &t, HEALTH_UP, "HTTP status 200");
	get(h, &t, NULL, &c);
	assert_int_equal(c.transitions, 3);
	assert_true(c.failures >= 2);

	/* Another expected status is another check: it starts over. */
	t.check.expect_status = 201;
	assert_int_equal(health_set_targets(h, &t, 1), 0);
	get(h, &t, &st, &c);
	assert_int_equal(st, HEALTH_UNKNOWN);
	assert_int_equal(c.transitions, 0);
	expect_event(h, &t, HEALTH_DOWN, "HTTP status 200, expected 201");
	health_stop(h);
	server_stop(&s);
}

/* IPv6, another expected status, and the Host header in brackets. */
static void test_http_ipv6(void **state)
{
	struct health_target t;
	char host[64];
	struct server s;
	struct health *h;

	(void)state;
	if (!server_start(&s, AF_INET6, SERVER_HTTP, 0))
		skip();
	atomic_store(&s.status, 204);
	t = make_target(AF_INET6, s.port, 86, CFG_HEALTH_HTTP);
	t.check.expect_status = 204;
	snprintf(t.check.path, sizeof(t.check.path), "/ready?full=1");
	h = start_with(&t, 1);
	expect_event(h, &t, HEALTH_UP, "HTTP status 204");
	snprintf(host, sizeof(host), "\r\nHost: [::1]:%u\r\n", s.port);
	pthread_mutex_lock(&s.lock);
	assert_non_null(strstr(s.request, "GET /ready?full=1 HTTP/1.1\r\n"));
	assert_non_null(strstr(s.request, host));
	pthread_mutex_unlock(&s.lock);
	atomic_store(&s.status, 200);
	expect_event(h, &t, HEALTH_DOWN, "HTTP status 200, expected 204");
	health_stop(h);
	server_stop(&s);
}

static void test_http_garbage(void **state)
{
	struct health_target t;
	struct server s;
	struct health *h;

	(void)state;
	assert_true(server_start(&s, AF_INET, SERVER_HTTP, 0));
	atomic_store(&s.status, 0);
	t = make_target(AF_INET, s.port, 87, CFG_HEALTH_HTTP);
	h = start_with(&t, 1);
	expect_event(h, &t, HEALTH_DOWN, "malformed HTTP status line");
	health_stop(h);
	server_stop(&s);
}

/* A server that accepts and never answers: the probe times out, and the
 * down event comes no sooner than the timeout. */
static void test_http_timeout(void **state)
{
	struct health_target t;
	struct health_counts c;
	struct server s;
	struct health *h;
	uint64_t start;

	(void)state;
	assert_true(server_start(&s, AF_INET, SERVER_SILENT, 0));
	t = make_target(AF_INET, s.port, 88, CFG_HEALTH_HTTP);
	t.check.timeout_ms = 80;
	t.check.interval_ms = 100;
	start = now_ms();
	h = start_with(&t, 1);
	expect_event(h, &t, HEALTH_DOWN, "timeout after 80 ms awaiting the status line");
	assert_true(now_ms() - start >= 80);
	get(h, &t, NULL, &c);
	assert_int_equal(c.failures, c.probes);
	assert_true(atomic_load(&s.accepted) >= 1);
	health_stop(h);
	server_stop(&s);
}

/* Up, then down while the listener is gone, then up when it is back. */
static void test_down_then_up(void **state)
{
	struct health_target t;
	struct health_counts c;
	enum health_state st;
	struct server s;
	struct health *h;
	uint16_t port;

	(void)state;
	assert_true(server_start(&s, AF_INET, SERVER_ACCEPT, 0));
	port = s.port;
	t = make_target(AF_INET, port, 89, CFG_HEALTH_TCP);
	t.check.unhealthy_threshold = 2;
	h = start_with(&t, 1);
	expect_event(h, &t, HEALTH_UP, "connected");
	server_stop(&s);
	expect_event(h, &t, HEALTH_DOWN, "connect: Connection refused");
	assert_true(server_start(&s, AF_INET, SERVER_ACCEPT, port));
	expect_event(h, &t, HEALTH_UP, "connected");
	get(h, &t, &st, &c);
	assert_int_equal(st, HEALTH_UP);
	assert_int_equal(c.transitions, 3);
	health_stop(h);
	server_stop(&s);
}

/* Transitions the agent has not read yet fold into one event, the latest. */
static void test_undelivered_events_fold(void **state)
{
	struct health_target t;
	struct health_counts c;
	struct server s;
	struct health *h;
	uint64_t deadline;

	(void)state;
	assert_true(server_start(&s, AF_INET, SERVER_ACCEPT, 0));
	t = make_target(AF_INET, s.port, 90, CFG_HEALTH_TCP);
	h = start_with(&t, 1);
	deadline = now_ms() + WAIT_MS;
	do {
		sleep_ms(1);
		get(h, &t, NULL, &c);
	} while (c.transitions < 1 && now_ms() < deadline);
	server_stop(&s);
	do {
		sleep_ms(1);
		get(h, &t, NULL, &c);
	} while (c.transitions < 2 && now_ms() < deadline);
	assert_int_equal(c.transitions, 2);
	expect_event(h, &t, HEALTH_DOWN, "connect: Connection refused");
	expect_no_event(h);
	health_stop(h);
}

/* An unchanged target keeps its state and counters; a new one starts from
 * ->initial; a changed check starts over; a removed one is gone. */
static void test_set_targets_keeps_state(void **state)
{
	struct health_target t[2], changed;
	struct health_counts c, before;
	enum health_state st;
	struct server s;
	struct health *h;

	(void)state;
	assert_true(server_start(&s, AF_INET, SERVER_ACCEPT, 0));
	t[0] = make_target(AF_INET, s.port, 91, CFG_HEALTH_TCP);
	h = start_with(t, 1);
	expect_event(h, &t[0], HEALTH_UP, "connected");
	before = wait_probes(h, &t[0], 3);

	t[0].initial = HEALTH_DOWN; /* ignored: the target is kept */
	t[1] = make_target(AF_INET, closed_port(AF_INET), 92, CFG_HEALTH_TCP);
	t[1].initial = HEALTH_UP;
	t[1].check.unhealthy_threshold = 3;
	t[1].check.interval_ms = 50; /* room to count exactly 3 probes */
	assert_int_equal(health_set_targets(h, t, 2), 0);
	get(h, &t[0], &st, &c);
	assert_int_equal(st, HEALTH_UP);
	assert_true(c.probes >= before.probes);
	assert_int_equal(c.transitions, 1);
	get(h, &t[1], &st, &c);
	assert_int_equal(st, HEALTH_UP);
	assert_true(c.probes <= 1);
	expect_event(h, &t[1], HEALTH_DOWN, "connect: Connection refused");
	get(h, &t[1], NULL, &c);
	assert_int_equal(c.probes, 3);
	expect_no_event(h); /* t[0] stayed up */

	changed = t[0];
	changed.initial = HEALTH_UNKNOWN;
	changed.check.healthy_threshold = 5;
	changed.check.interval_ms = 50;
	assert_int_equal(health_set_targets(h, &changed, 1), 0);
	get(h, &changed, &st, &c);
	assert_int_equal(st, HEALTH_UNKNOWN);
	assert_int_equal(c.transitions, 0);
	assert_true(c.probes <= 1);
	assert_int_equal(health_get(h, &t[1].svc, &t[1].addr, &st, &c), -ENOENT);
	expect_event(h, &changed, HEALTH_UP, "connected");
	get(h, &changed, NULL, &c);
	assert_int_equal(c.probes, 5);
	health_stop(h);
	server_stop(&s);
}

/* Removing a target drops its undelivered event and unarms the fd. */
static void test_removed_target_drops_event(void **state)
{
	struct health_target t = make_target(AF_INET, closed_port(AF_INET), 93, CFG_HEALTH_TCP);
	struct pollfd pfd;
	struct health *h;

	(void)state;
	h = start_with(&t, 1);
	pfd = (struct pollfd){ .fd = health_event_fd(h), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
	assert_int_equal(health_set_targets(h, NULL, 0), 0);
	expect_no_event(h);
	assert_int_equal(health_get(h, &t.svc, &t.addr, NULL, NULL), -ENOENT);
	health_stop(h);
}

static void test_get_unknown(void **state)
{
	struct health_target t = make_target(AF_INET, 8080, 94, CFG_HEALTH_TCP);
	struct health_target other_svc = t, other_port = t;
	enum health_state st = HEALTH_UP;
	struct health *h = health_start();

	(void)state;
	assert_non_null(h);
	assert_int_equal(health_get(h, &t.svc, &t.addr, &st, NULL), -ENOENT);
	assert_int_equal(st, HEALTH_UP); /* untouched */
	t.check.interval_ms = 3600000;
	t.check.healthy_threshold = t.check.unhealthy_threshold = 100; /* stays unknown */
	assert_int_equal(health_set_targets(h, &t, 1), 0);
	other_svc.svc.port = htons(95);
	other_port.addr.port = htons(8081);
	assert_int_equal(health_get(h, &other_svc.svc, &other_svc.addr, &st, NULL), -ENOENT);
	assert_int_equal(health_get(h, &other_port.svc, &other_port.addr, &st, NULL), -ENOENT);
	assert_int_equal(health_get(h, &t.svc, &t.addr, &st, NULL), 0);
	assert_int_equal(st, HEALTH_UNKNOWN);
	health_stop(h);
	health_stop(NULL);
	assert_string_equal(health_state_name(HEALTH_UNKNOWN), "unknown");
	assert_string_equal(health_state_name(HEALTH_UP), "up");
	assert_string_equal(health_state_name(HEALTH_DOWN), "down");
}

/* Stop joins within 100 ms with an hour-long interval and a probe in
 * flight on a minute-long timeout. */
static void test_stop_is_prompt(void **state)
{
	struct health_target t[2];
	struct server s;
	struct health *h;
	uint64_t deadline, start;

	(void)state;
	assert_true(server_start(&s, AF_INET, SERVER_SILENT, 0));
	t[0] = make_target(AF_INET, s.port, 96, CFG_HEALTH_HTTP);
	t[0].check.interval_ms = t[0].check.timeout_ms = 60000;
	t[1] = make_target(AF_INET, closed_port(AF_INET), 97, CFG_HEALTH_TCP);
	t[1].check.interval_ms = t[1].check.timeout_ms = 3600000;
	h = start_with(t, 2);
	deadline = now_ms() + WAIT_MS;
	while (atomic_load(&s.accepted) < 1 && now_ms() < deadline)
		sleep_ms(1);
	assert_int_equal(atomic_load(&s.accepted), 1);
	wait_probes(h, &t[1], 1); /* past its first probe: nothing due for an hour */
	start = now_ms();
	health_stop(h);
	assert_true(now_ms() - start < 100);
	server_stop(&s);
}

/* 100 backends that never answer, timeout 200 ms: probed one at a time
 * that takes 20 s; concurrently all are down well within a second. */
static void test_probes_run_concurrently(void **state)
{
	enum { N = 100 };
	struct health_target t[N];
	struct health_event ev;
	bool seen[N] = { false };
	struct server s;
	struct health *h;
	uint64_t start;
	int n = 0;

	(void)state;
	assert_true(server_start(&s, AF_INET, SERVER_SILENT, 0));
	for (int i = 0; i < N; i++) {
		t[i] = make_target(AF_INET, s.port, 1000 + i, CFG_HEALTH_HTTP);
		t[i].check.interval_ms = 1000;
		t[i].check.timeout_ms = 200;
	}
	start = now_ms();
	h = start_with(t, N);
	while (n < N && wait_event(h, WAIT_MS, &ev)) {
		int i = ntohs(ev.svc.port) - 1000;

		assert_true(i >= 0 && i < N && !seen[i]);
		assert_int_equal(ev.state, HEALTH_DOWN);
		seen[i] = true;
		n++;
	}
	assert_int_equal(n, N);
	assert_true(now_ms() - start < 900);
	health_stop(h);
	server_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_up_ipv4),
		cmocka_unit_test(test_tcp_up_ipv6),
		cmocka_unit_test(test_tcp_refused_ipv4),
		cmocka_unit_test(test_tcp_refused_ipv6),
		cmocka_unit_test(test_transition_logged),
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_http_status),
		cmocka_unit_test(test_http_ipv6),
		cmocka_unit_test(test_http_garbage),
		cmocka_unit_test(test_http_timeout),
		cmocka_unit_test(test_down_then_up),
		cmocka_unit_test(test_undelivered_events_fold),
		cmocka_unit_test(test_set_targets_keeps_state),
		cmocka_unit_test(test_removed_target_drops_event),
		cmocka_unit_test(test_get_unknown),
		cmocka_unit_test(test_stop_is_prompt),
		cmocka_unit_test(test_probes_run_concurrently),
	};

	log_set_level(LOG_WARN); /* transitions are info: keep the output to results */
	return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
