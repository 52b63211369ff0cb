// SPDX-License-Identifier: GPL-2.0
/* sock_bench: figures for a local TCP socket pair, to compare plain
 * loopback with Sluice's sockops + sk_msg socket-to-socket redirection.
 * Both ends live in this process (a server and a client thread, each
 * pinned to its CPU), so every socket is in this process's cgroup.
 * Modes: rr, bulk, conn, busypoll (see usage()); tools/bench/socket.sh
 * runs it. Prints one line, or one JSON object with --json. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BULK_READ (256 * 1024) /* the receiver's read size in bulk mode */
#define MAX_SIZE (16 * 1024 * 1024)
#define WATCHDOG_SLACK_S 10 /* past warm-up + duration, a run is stuck */

/* Latency histogram, HDR-like: values below 2 * HIST_SUB ns are exact,
 * above that each power of two is split into HIST_SUB buckets (1.6 %
 * resolution). Bounded memory whatever the duration, and O(1) per sample,
 * so recording costs the same at 1k and 1M transactions/s. */
#define HIST_SUB_BITS 6
#define HIST_SUB (1 << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB) /* covers all of u64 */

enum mode { MODE_RR, MODE_BULK, MODE_CONN, MODE_BUSYPOLL, MODE_COUNT };

struct hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t bucket[HIST_BUCKETS];
};

struct bench_opts {
	enum mode mode;
	const char *addr;
	size_t size;
	double duration_s;
	double warmup_s;
	int client_cpu;
	int server_cpu;
	bool json;
};

/* What one thread reports: 0 or a negative errno, and what failed. */
struct side {
	int err;
	const char *what;
};

/* Shared by the two threads. The measuring side (client in rr, busypoll
 * and conn; receiver = server in bulk) fills hist or bytes, and seconds:
 * the span from the first measured event to the last. */
struct bench {
	struct bench_opts opt;
	struct sockaddr_storage addr; /* the listener's, port included */
	socklen_t addr_len;
	int lfd;
	char *client_buf; /* --size bytes */
	char *server_buf; /* --size bytes, BULK_READ in bulk mode */
	atomic_bool stop; /* bulk: the receiver has its figure; conn: the client is done */
	struct side client;
	struct side server;
	struct hist hist;
	uint64_t bytes;
	double seconds;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the histogram ---- */

static unsigned int hist_index(uint64_t ns)
{
	unsigned int shift;

	if (ns < 2 * HIST_SUB)
		return (unsigned int)ns;
	shift = 63 - __builtin_clzll(ns) - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned int)(ns >> shift) - HIST_SUB;
}

/* The middle of bucket @idx, in ns. */
static double hist_value(unsigned int idx)
{
	unsigned int shift;
	uint64_t low;

	if (idx < 2 * HIST_SUB)
		return idx;
	shift = idx / HIST_SUB - 1;
	low = (uint64_t)(idx % HIST_SUB + HIST_SUB) << shift;
	return (double)low + (double)(1ull << shift) / 2;
}

static void hist_add(struct hist *h, uint64_t ns)
{
	h->count++;
	h->sum_ns += ns;
	h->bucket[hist_index(ns)]++;
}

/* The @q quantile (0 < q <= 1) in ns: the value below which a fraction q
 * of the samples lies; 0 for an empty histogram. */
static double hist_quantile(const struct hist *h, double q)
{
	double want = q * (double)h->count;
	uint64_t rank = (uint64_t)want, seen = 0;

	if ((double)rank < want || !rank)
		rank++; /* ceil, without libm */
	for (unsigned int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			return hist_value(i);
	}
	return 0;
}

/* ---- socket helpers: 0 or -errno ---- */

static int side_fail(struct side *s, const char *what, int err)
{
	s->what = what;
	s->err = err;
	return err;
}

static int set_int_opt(int fd, int level, int name, int value)
{
	return setsockopt(fd, level, name, &value, sizeof(value)) ? -errno : 0;
}

/* Write all @len bytes; MSG_NOSIGNAL: a vanished peer is an error, not SIGPIPE. */
static int write_full(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly @len bytes. @busy: spin on MSG_DONTWAIT instead of sleeping
 * in recv. Returns 1 when read, 0 on a clean end of stream (before the
 * first byte), -EPIPE on one in the middle, or -errno. */
static int read_full(int fd, char *buf, size_t len, bool busy)
{
	int flags = busy ? MSG_DONTWAIT : 0;
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, flags);

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return got ? -EPIPE : 0;
		got += (size_t)n;
	}
	return 1;
}

/* Parse @text (a numeric IPv4 or IPv6 address) into @b->addr, port 0. */
static int resolve(struct bench *b, const char *text)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;

	if (getaddrinfo(text, "0", &hints, &res))
		return -EINVAL;
	memcpy(&b->addr, res->ai_addr, res->ai_addrlen);
	b->addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* The listener, on an ephemeral port of --addr; @b->addr gets that port. */
static int listen_on(struct bench *b)
{
	int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&b->addr, b->addr_len) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&b->addr, &b->addr_len)) {
		err = -errno;
		close(fd);
		return err;
	}
	b->lfd = fd;
	return 0;
}

/* @fd, with TCP_NODELAY when @nodelay; -errno (and @fd closed) on failure. */
static int with_nodelay(int fd, bool nodelay)
{
	int err = nodelay ? set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1) : 0;

	if (err)
		close(fd);
	return err ? err : fd;
}

/* A connected socket to the listener, TCP_NODELAY when @nodelay, or -errno. */
static int connect_to(const struct bench *b, bool nodelay)
{
	int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&b->addr, b->addr_len)) {
		err = -errno;
		close(fd);
		return err;
	}
	return with_nodelay(fd, nodelay);
}

/* The next connection on the listener, or -errno (-EINVAL once it is shut down). */
static int accept_one(const struct bench *b, bool nodelay)
{
	int fd;

	do
		fd = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : with_nodelay(fd, nodelay);
}

/* ---- the measuring window ---- */

/* A closed-loop run's clock: samples that start at or after warm_end are
 * measured, the loop ends with the first sample that ends at or after end. */
struct window {
	uint64_t warm_end;
	uint64_t end;
	uint64_t first; /* start of the first measured sample, 0: none yet */
	uint64_t last; /* end of the last one */
};

static void window_start(struct window *w, const struct bench_opts *opt)
{
	uint64_t t0 = now_ns();

	w->warm_end = t0 + (uint64_t)(opt->warmup_s * 1e9);
	w->end = w->warm_end + (uint64_t)(opt->duration_s * 1e9);
	w->first = 0;
	w->last = 0;
}

/* Record one sample from @t1 to @t2; false once the run is over. */
static bool window_sample(struct window *w, struct hist *h, uint64_t t1, uint64_t t2)
{
	if (t1 >= w->warm_end) {
		if (!w->first)
			w->first = t1;
		w->last = t2;
		hist_add(h, t2 - t1);
	}
	return t2 < w->end;
}

static double window_seconds(const struct window *w)
{
	return w->first ? (double)(w->last - w->first) / 1e9 : 0;
}

/* ---- rr and busypoll: --size bytes each way on one connection ---- */

/* Request @seq and its response; 0 or -errno (-EPIPE: the server left,
 * -EBADMSG: the response is not the request's echo). Its first and last
 * bytes carry @seq, so a lost, stale or reordered message is caught. */
static int transact(int fd, char *buf, size_t size, bool busy, uint64_t seq)
{
	int err;

	buf[0] = buf[size - 1] = (char)seq;
	err = write_full(fd, buf, size);
	if (err)
		return err;
	buf[0] = buf[size - 1] = (char)~seq;
	err = read_full(fd, buf, size, busy);
	if (err <= 0)
		return err ? err : -EPIPE;
	return buf[0] == (char)seq && buf[size - 1] == (char)seq ? 0 : -EBADMSG;
}

/* rr, and busypoll: spin on MSG_DONTWAIT instead of sleeping in recv. */
static int client_rr(struct bench *b)
{
	bool busy = b->opt.mode == MODE_BUSYPOLL;
	int fd = connect_to(b, true), err;
	uint64_t t1, t2, seq = 0;
	struct window w;

	if (fd < 0)
		return side_fail(&b->client, "connect", fd);
	window_start(&w, &b->opt);
	do {
		t1 = now_ns();
		err = transact(fd, b->client_buf, b->opt.size, busy, seq++);
		if (err)
			break;
		t2 = now_ns();
	} while (window_sample(&w, &b->hist, t1, t2));
	b->seconds = window_seconds(&w);
	close(fd); /* the server reads the end of the stream and returns */
	return err ? side_fail(&b->client, "request/response", err) : 0;
}

static int server_rr(struct bench *b)
{
	bool busy = b->opt.mode == MODE_BUSYPOLL;
	char *buf = b->server_buf;
	size_t size = b->opt.size;
	int fd = accept_one(b, true), err;

	if (fd < 0)
		return side_fail(&b->server, "accept", fd);
	while ((err = read_full(fd, buf, size, busy)) > 0) {
		err = write_full(fd, buf, size);
		if (err)
			break;
	}
	close(fd);
	return err ? side_fail(&b->server, "echo", err) : 0;
}

/* ---- bulk: the client writes --size bytes at a time, the server reads ---- */

static int client_bulk(struct bench *b)
{
	int fd = connect_to(b, false), err = 0;
	uint64_t seq = 0;

	if (fd < 0)
		return side_fail(&b->client, "connect", fd);
	while (!err && !atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		b->client_buf[0] = (char)seq++; /* see bulk_intact() */
		err = write_full(fd, b->client_buf, b->opt.size);
	}
	/* What is still queued reaches the receiver, which reads to the end. */
	close(fd);
	return err ? side_fail(&b->client, "write", err) : 0;
}

/* The first byte of each write is its number (mod 256): true if those
 * among the @n bytes read at stream offset @pos are right. One byte per
 * write, so checking costs nothing measurable. */
static bool bulk_intact(const char *buf, size_t n, uint64_t pos, size_t size)
{
	for (uint64_t m = (pos + size - 1) / size * size; m < pos + n; m += size) {
		if (buf[m - pos] != (char)(m / size))
			return false;
	}
	return true;
}

/* Count a read of @n bytes that completed at @t. The read that ends the
 * warm-up opens the window uncounted (its bytes were sent before it), so
 * bytes / (last - first) is exact; the first read at or after the end
 * closes it and tells the sender to stop. */
static void bulk_count(struct bench *b, struct window *w, uint64_t t, size_t n)
{
	if (t < w->warm_end || atomic_load_explicit(&b->stop, memory_order_relaxed))
		return;
	if (!w->first) {
		w->first = t;
		return;
	}
	w->last = t;
	b->bytes += n;
	if (t >= w->end)
		atomic_store(&b->stop, true);
}

static int server_bulk(struct bench *b)
{
	int fd = accept_one(b, false), err = 0;
	uint64_t pos = 0;
	struct window w;
	ssize_t n;

	if (fd < 0)
		return side_fail(&b->server, "accept", fd);
	window_start(&w, &b->opt);
	for (;;) {
		n = recv(fd, b->server_buf, BULK_READ, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		bulk_count(b, &w, now_ns(), (size_t)n);
		if (!bulk_intact(b->server_buf, (size_t)n, pos, b->opt.size)) {
			err = -EBADMSG;
			break;
		}
		pos += (size_t)n;
	}
	if (n < 0)
		err = -errno;
	b->seconds = window_seconds(&w);
	close(fd);
	if (!err && !atomic_load(&b->stop))
		err = -EPIPE; /* the sender stopped before the end */
	return err ? side_fail(&b->server, "read", err) : 0;
}

/* ---- conn: a new connection per transaction ---- */

/* One connection: connect, 1 byte out, 1 byte back, close. 0 or -errno.
 * The close is abortive (SO_LINGER {1, 0}: an RST), so neither end keeps
 * the 4-tuple in TIME_WAIT. Otherwise the server, which closes first,
 * keeps each for 60 s: connect() draws from the even half of
 * ip_local_port_range (~14k ports), so tuples are reused within a second,
 * each time relying on the kernel taking a SYN over a TIME_WAIT (only
 * when its timestamp is newer; else a 1 s SYN retransmission), and the
 * runs of a round pile up tens of thousands of them towards
 * tcp_max_tw_buckets. Distinct 127.0.0.x sources would only work on
 * loopback, and --addr may be any local address. */
static int conn_once(const struct bench *b, uint64_t seq)
{
	static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	char c = (char)seq;
	int fd = connect_to(b, false), err;

	if (fd < 0)
		return fd;
	err = setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst)) ? -errno : 0;
	if (!err)
		err = write_full(fd, &c, 1);
	if (!err) {
		err = read_full(fd, &c, 1, false);
		err = err < 0 ? err : !err ? -EPIPE : c == (char)seq ? 0 : -EBADMSG;
	}
	close(fd);
	return err;
}

static int client_conn(struct bench *b)
{
	uint64_t t1, t2, seq = 0;
	struct window w;
	int err;

	window_start(&w, &b->opt);
	do {
		t1 = now_ns();
		err = conn_once(b, seq++);
		if (err)
			break;
		t2 = now_ns();
	} while (window_sample(&w, &b->hist, t1, t2));
	b->seconds = window_seconds(&w);
	return err ? side_fail(&b->client, "connection", err) : 0;
}

/* Accept, echo one byte, close, until the listener is shut down. */
static int server_conn(struct bench *b)
{
	char c;
	int fd, err;

	while ((fd = accept_one(b, false)) >= 0) {
		err = read_full(fd, &c, 1, false);
		err = err < 0 ? err : err ? write_full(fd, &c, 1) : -EPIPE;
		close(fd);
		if (err)
			return side_fail(&b->server, "echo", err);
	}
	if (atomic_load(&b->stop))
		return 0; /* shut down by run(): the client is done */
	return side_fail(&b->server, "accept", fd);
}

/* ---- the two threads ---- */

/* Each mode's name and the functions its threads run: 0 or -errno, the
 * failure also in b->client or b->server. */
static const struct {
	const char *name;
	int (*client)(struct bench *b);
	int (*server)(struct bench *b);
} modes[MODE_COUNT] = {
	[MODE_RR] = { "rr", client_rr, server_rr },
	[MODE_BULK] = { "bulk", client_bulk, server_bulk },
	[MODE_CONN] = { "conn", client_conn, server_conn },
	[MODE_BUSYPOLL] = { "busypoll", client_rr, server_rr },
};

static void *client_main(void *arg)
{
	struct bench *b = arg;

	modes[b->opt.mode].client(b);
	return NULL;
}

static void *server_main(void *arg)
{
	struct bench *b = arg;

	/* A client still to connect fails at once instead of waiting for us. */
	if (modes[b->opt.mode].server(b))
		shutdown(b->lfd, SHUT_RDWR);
	return NULL;
}

/* Start @fn(@arg) on a thread that runs on @cpu alone from its first
 * instruction. 0 or -errno (-EINVAL: no such CPU online). */
static int start_pinned(pthread_t *t, int cpu, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	cpu_set_t set;
	int err;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	err = pthread_attr_init(&attr);
	if (err)
		return -err;
	err = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	if (!err)
		err = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return -err;
}

/* Run both ends to completion; 0, or -errno when a thread did not start
 * (the ends' own failures are in b->client and b->server). Shutting the
 * listener down wakes a server that still waits in accept(): always in
 * conn mode, and in the others when the client never connected. */
static int run(struct bench *b)
{
	pthread_t server, client;
	int err;

	err = start_pinned(&server, b->opt.server_cpu, server_main, b);
	if (err) {
		fprintf(stderr, "Error: server thread on CPU %d: %s\n", b->opt.server_cpu,
			strerror(-err));
		return err;
	}
	err = start_pinned(&client, b->opt.client_cpu, client_main, b);
	if (err)
		fprintf(stderr, "Error: client thread on CPU %d: %s\n", b->opt.client_cpu,
			strerror(-err));
	else
		pthread_join(client, NULL);
	atomic_store(&b->stop, true);
	shutdown(b->lfd, SHUT_RDWR);
	pthread_join(server, NULL);
	return err;
}

/* ---- results ---- */

static bool has_latency(enum mode mode)
{
	return mode != MODE_BULK;
}

static void print_json(const struct bench *b, double rate, double mean_us, double p99_us)
{
	const struct bench_opts *o = &b->opt;

	printf("{\"mode\":\"%s\",\"size\":%zu,\"client_cpu\":%d,\"server_cpu\":%d,",
	       modes[o->mode].name, o->size, o->client_cpu, o->server_cpu);
	if (has_latency(o->mode))
		printf("\"tps\":%.1f,\"mbps\":null,\"mean_us\":%.2f,\"p99_us\":%.2f,"
		       "\"count\":%llu,\"bytes\":null,",
		       rate, mean_us, p99_us, (unsigned long long)b->hist.count);
	else
		printf("\"tps\":null,\"mbps\":%.1f,\"mean_us\":null,\"p99_us\":null,"
		       "\"count\":null,\"bytes\":%llu,",
		       rate, (unsigned long long)b->bytes);
	printf("\"seconds\":%.3f}\n", b->seconds);
}

static void print_text(const struct bench *b, double rate, double mean_us, double p99_us)
{
	const struct bench_opts *o = &b->opt;

	printf("%s %zu B, client CPU %d, server CPU %d: ", modes[o->mode].name, o->size,
	       o->client_cpu, o->server_cpu);
	if (has_latency(o->mode))
		printf("%.1f %s/s, mean %.2f us, p99 %.2f us (%llu in %.3f s)\n", rate,
		       o->mode == MODE_CONN ? "conn" : "trans", mean_us, p99_us,
		       (unsigned long long)b->hist.count, b->seconds);
	else
		printf("%.1f MB/s (%llu B in %.3f s; MB = 10^6 B)\n", rate,
		       (unsigned long long)b->bytes, b->seconds);
}

/* Print the figures; 1 when there is nothing to report. */
static int report(const struct bench *b)
{
	bool lat = has_latency(b->opt.mode);
	double rate, mean_us = 0, p99_us = 0;

	if (b->seconds <= 0 || (lat ? b->hist.count < 2 : !b->bytes)) {
		fprintf(stderr, "Error: nothing measured (is --duration too short?)\n");
		return 1;
	}
	if (lat) {
		rate = (double)b->hist.count / b->seconds;
		mean_us = (double)b->hist.sum_ns / (double)b->hist.count / 1e3;
		p99_us = hist_quantile(&b->hist, 0.99) / 1e3;
	} else {
		rate = (double)b->bytes / b->seconds / 1e6;
	}
	if (b->opt.json)
		print_json(b, rate, mean_us, p99_us);
	else
		print_text(b, rate, mean_us, p99_us);
	return 0;
}

/* 1 (and a message) if end @name failed. */
static int side_error(const char *name, const struct side *s)
{
	if (s->err)
		fprintf(stderr, "Error: %s: %s: %s\n", name, s->what, strerror(-s->err));
	return !!s->err;
}

/* ---- options ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sock_bench MODE [OPTIONS]\n"
		"A local TCP socket pair, both ends in this process, each on its own thread.\n\n"
		"Modes:\n"
		"  rr        request/response of --size bytes each way on one connection;\n"
		"            transactions/s, mean and p99 latency\n"
		"  bulk      one-way stream of --size byte writes; MB/s at the receiver\n"
		"  conn      connect, 1 byte each way, close; connections/s, mean and p99\n"
		"  busypoll  rr with both ends spinning on non-blocking recv\n\n"
		"Options:\n"
		"  --addr IP         listen and connect here (default 127.0.0.1)\n"
		"  --size BYTES      message or write size (default 1; bulk 65536; conn: 1)\n"
		"  --duration SEC    measured time (default 5)\n"
		"  --warmup SEC      unmeasured time before it (default 1)\n"
		"  --client-cpu N    CPU of the client thread (default 0)\n"
		"  --server-cpu N    CPU of the server thread (default 0)\n"
		"  --json            one JSON object instead of a line of text\n"
		"  -h, --help        this text\n");
}

/* @text as a number in [@lo, @hi], an integer when @integer. 0 or -EINVAL. */
static int parse_num(const char *text, const char *what, double lo, double hi, bool integer,
		     double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !(v >= lo && v <= hi) ||
	    (integer && v != (double)(long long)v)) {
		fprintf(stderr, "Error: %s: expected %s in [%.10g, %.10g], got '%s'\n", what,
			integer ? "an integer" : "a number", lo, hi, text);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_mode(const char *text, enum mode *mode)
{
	for (int i = 0; i < MODE_COUNT; i++) {
		if (!strcmp(text, modes[i].name)) {
			*mode = (enum mode)i;
			return 0;
		}
	}
	fprintf(stderr, "Error: unknown mode '%s' (rr, bulk, conn or busypoll)\n", text);
	return -EINVAL;
}

/* The option of getopt code @c into @o; 0 or -EINVAL. */
static int parse_opt(int c, const char *arg, struct bench_opts *o)
{
	double v = 0;
	int err = 0;

	switch (c) {
	case 'a':
		o->addr = arg;
		return 0;
	case 'j':
		o->json = true;
		return 0;
	case 's':
		err = parse_num(arg, "--size", 1, MAX_SIZE, true, &v);
		o->size = (size_t)v;
		return err;
	case 'd':
		return parse_num(arg, "--duration", 0.01, 3600, false, &o->duration_s);
	case 'w':
		return parse_num(arg, "--warmup", 0, 600, false, &o->warmup_s);
	case 'c':
		err = parse_num(arg, "--client-cpu", 0, CPU_SETSIZE - 1, true, &v);
		o->client_cpu = (int)v;
		return err;
	case 'S':
		err = parse_num(arg, "--server-cpu", 0, CPU_SETSIZE - 1, true, &v);
		o->server_cpu = (int)v;
		return err;
	}
	usage(stderr);
	return -EINVAL;
}

/* Fill @o from the command line: 0, or 2 (the exit status) on a usage error. */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option opts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "client-cpu", required_argument, NULL, 'c' },
		{ "server-cpu", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	*o = (struct bench_opts){ .addr = "127.0.0.1", .duration_s = 5, .warmup_s = 1 };
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (parse_opt(c, optarg, o))
			return 2;
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	if (parse_mode(argv[optind], &o->mode))
		return 2;
	if (o->mode == MODE_CONN && o->size > 1) {
		fprintf(stderr, "Error: --size: conn always sends 1 byte each way\n");
		return 2;
	}
	if (!o->size)
		o->size = o->mode == MODE_BULK ? 65536 : 1;
	return 0;
}

/* ---- main ---- */

static void watchdog_fire(int sig)
{
	static const char msg[] = "Error: sock_bench is stuck: still running well past "
				  "--warmup + --duration, giving up\n";
	ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)sig;
	(void)n;
	_exit(1);
}

/* A run that blocks for good (a lost wake-up, a redirect that drops data)
 * must not hang the driver: SIGALRM ends the process some time past the
 * run's length. */
static void watchdog_arm(const struct bench_opts *o)
{
	signal(SIGALRM, watchdog_fire);
	alarm((unsigned int)(o->warmup_s + o->duration_s) + 1 + WATCHDOG_SLACK_S);
}

int main(int argc, char **argv)
{
	static struct bench b; /* its histogram is 30 KiB: not on the stack */
	int err;

	err = parse_args(argc, argv, &b.opt);
	if (err)
		return err;
	if (resolve(&b, b.opt.addr)) {
		fprintf(stderr, "Error: --addr: not a numeric IP address: '%s'\n", b.opt.addr);
		return 2;
	}
	if (b.opt.mode == MODE_BUSYPOLL && b.opt.client_cpu == b.opt.server_cpu)
		fprintf(stderr, "sock_bench: busypoll on one CPU: each end spins until the "
				"scheduler preempts it; the figure measures the scheduler\n");
	err = listen_on(&b);
	if (err) {
		fprintf(stderr, "Error: listen on %s: %s\n", b.opt.addr, strerror(-err));
		return 1;
	}
	/* Each end's buffer; only the bytes that carry sequence numbers matter. */
	b.client_buf = calloc(1, b.opt.size);
	b.server_buf = calloc(1, b.opt.mode == MODE_BULK ? BULK_READ : b.opt.size);
	if (!b.client_buf || !b.server_buf) {
		fprintf(stderr, "Error: out of memory\n");
		return 1;
	}
	watchdog_arm(&b.opt);
	err = run(&b);
	close(b.lfd);
	free(b.client_buf);
	free(b.server_buf);
	/* |: report both ends' failures (not the server's when the client
	 * thread did not start: it only saw the listener shut down) */
	if (err || (side_error("client", &b.client) | side_error("server", &b.server)))
		return 1;
	return report(&b);
}
