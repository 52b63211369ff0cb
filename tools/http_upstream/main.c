/* http_upstream: a small HTTP/1.1 origin server for benchmarks and e2e
 * tests, answering from memory with path-driven behaviours (see usage()).
 * This file holds the options, the listening sockets, the epoll loop of
 * each worker (--threads N runs N loops, each with its own SO_REUSEPORT
 * listeners) and the signals. Connections are in conn.c, request parsing
 * in request.c, the answers in respond.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "upstream.h"

static struct endpoint endpoints[MAX_LISTENERS];
static int n_endpoints;
struct worker workers[MAX_THREADS];
int n_workers = 1;
unsigned long long body_size;
static bool quiet;
char *pattern; /* PATTERN_LEN bytes of 'x' */

void __attribute__((format(printf, 1, 2))) log_msg(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	flockfile(stderr); /* one line, even with --threads */
	va_start(ap, fmt);
	fputs("http_upstream: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	funlockfile(stderr);
}

static void listener_accept(struct worker *w, struct listener *l)
{
	int i, fd;

	for (i = 0; i < ACCEPTS_PER_TURN; i++) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_msg("%s: accept: %s", l->ep->addr, strerror(errno));
			return;
		}
		if (conn_new(w, l->ep, fd))
			log_msg("%s: cannot set up a connection", l->ep->addr);
	}
}

static void *worker_run(void *arg)
{
	struct epoll_event ev[EVENTS];
	struct worker *w = arg;
	struct conn *c;
	int i, n;

	for (;;) {
		n = epoll_wait(w->epfd, ev, EVENTS, -1);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "Error: epoll_wait: %s\n", strerror(errno));
			exit(1);
		}
		for (i = 0; i < n; i++) {
			switch (ev[i].data.u64 & TAG_MASK) {
			case TAG_LISTENER:
				listener_accept(w, untag(ev[i].data.u64));
				break;
			case TAG_TIMER:
				conn_event(untag(ev[i].data.u64), 0, true);
				break;
			default:
				conn_event(untag(ev[i].data.u64), ev[i].events, false);
			}
		}
		while ((c = w->dead)) {
			w->dead = c->next_dead;
			free(c);
		}
	}
	return NULL;
}

/* ---- set-up ---- */

/* Resolve "ADDR:PORT" or "[ADDR6]:PORT" into e->sa. Returns 0 or -EINVAL. */
static int endpoint_parse(struct endpoint *e, const char *text)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	char host[256];
	const char *port;
	size_t n;

	e->text = text;
	if (text[0] == '[') {
		port = strchr(text, ']');
		if (!port || port[1] != ':')
			return -EINVAL;
		n = port - text - 1;
		text++;
		port += 2;
	} else {
		port = strrchr(text, ':');
		if (!port)
			return -EINVAL;
		n = port - text;
		port++;
	}
	if (n >= sizeof(host) || !*port)
		return -EINVAL;
	memcpy(host, text, n);
	host[n] = 0;
	if (getaddrinfo(n ? host : "0.0.0.0", port, &hints, &ai))
		return -EINVAL;
	memcpy(&e->sa, ai->ai_addr, ai->ai_addrlen);
	e->salen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* A listening socket on e; every worker has one when --threads > 1. */
static int listen_socket(struct endpoint *e, bool reuseport)
{
	int fd, one = 1, err;

	fd = socket(e->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* only with threads: else a second instance could silently share the port */
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto err;
	/* so that [::]:P and 0.0.0.0:P can both be listened on */
	if (e->sa.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		goto err;
	if (bind(fd, (struct sockaddr *)&e->sa, e->salen) || listen(fd, 4096))
		goto err;
	return fd;
err:
	err = -errno;
	close(fd);
	return err;
}

/* After the first bind: learn the port (it may have been 0), and build
 * the address text, the default name and the default answer's head. */
static int endpoint_ready(struct endpoint *e, int fd, const char *name)
{
	char host[INET6_ADDRSTRLEN], port[8];
	int n;

	e->salen = sizeof(e->sa);
	if (getsockname(fd, (struct sockaddr *)&e->sa, &e->salen))
		return -errno;
	if (getnameinfo((struct sockaddr *)&e->sa, e->salen, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV))
		return -EINVAL;
	snprintf(e->addr, sizeof(e->addr), e->sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
		 port);
	e->name = name ? name : e->addr;
	n = asprintf(&e->head,
		     "HTTP/1.1 200 OK\r\nX-Upstream: %s\r\nContent-Type: text/plain\r\n"
		     "Content-Length: %llu\r\n\r\n",
		     e->name, body_size);
	if (n < 0)
		return -ENOMEM;
	e->head_len = n;
	return 0;
}

static int worker_init(struct worker *w, bool first, const char *name)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct listener *l;
	int i, err;

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		return -errno;
	for (i = 0; i < n_endpoints; i++) {
		l = &w->ls[i];
		l->ep = &endpoints[i];
		l->fd = listen_socket(l->ep, n_workers > 1);
		if (l->fd < 0) {
			fprintf(stderr, "Error: listen on %s: %s\n", l->ep->text, strerror(-l->fd));
			return l->fd;
		}
		err = first ? endpoint_ready(l->ep, l->fd, name) : 0;
		if (err) {
			fprintf(stderr, "Error: %s: %s\n", l->ep->text, strerror(-err));
			return err;
		}
		ev.data.u64 = tag(l, TAG_LISTENER);
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev))
			return -errno;
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: http_upstream --listen ADDR:PORT [--listen ...] [OPTIONS]\n"
		"An HTTP/1.1 origin for benchmarks and tests. ADDR: IPv4 or [IPv6].\n"
		"Options:\n"
		"  --listen ADDR:PORT  listen here (up to %d; port 0: any)\n"
		"  --name NAME         X-Upstream value (default: the listen address)\n"
		"  --body BYTES        body size of the default answer (0); K, M, G\n"
		"  --threads N         event loops, with SO_REUSEPORT listeners (1)\n"
		"  --quiet             no log of rejected requests and failed connections\n"
		"Paths (the query string is ignored):\n"
		"  /size/N      N bytes          /status/CODE   that status (200-599)\n"
		"  /delay/MS    the default answer after MS milliseconds\n"
		"  /echo        the request body /chunked/N     N bytes, chunked\n"
		"  /headers     the request head /close         \"bye\", then close\n"
		"  /reset       RST, no answer   /hang          never answer\n"
		"  /count       requests served and connections accepted\n"
		"  anything else: 200 with --body bytes\n",
		MAX_LISTENERS);
}

/* A byte count with an optional K, M or G (powers of 1024). */
static int parse_size(const char *text, unsigned long long *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || *text == '-')
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		shift = 10;
	else if (*end == 'm' || *end == 'M')
		shift = 20;
	else if (*end == 'g' || *end == 'G')
		shift = 30;
	if ((shift && end[1]) || (!shift && *end) || v > ARG_SIZE_MAX >> shift)
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static int parse_args(int argc, char **argv, const char **name)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "body", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned long long v;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (n_endpoints == MAX_LISTENERS ||
			    endpoint_parse(&endpoints[n_endpoints++], optarg)) {
				fprintf(stderr, "Error: bad --listen '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 'n':
			*name = optarg;
			break;
		case 'b':
			if (parse_size(optarg, &body_size)) {
				fprintf(stderr, "Error: bad --body '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 't':
			if (parse_size(optarg, &v) || !v || v > MAX_THREADS) {
				fprintf(stderr, "Error: --threads wants 1 to %d\n", MAX_THREADS);
				return -EINVAL;
			}
			n_workers = v;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
	}
	if (optind < argc || !n_endpoints) {
		fprintf(stderr, "Error: %s\n",
			optind < argc ? "unexpected argument" : "no --listen");
		return -EINVAL;
	}
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	_exit(0);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	const char *name = NULL;
	int i;

	if (parse_args(argc, argv, &name)) {
		usage(stderr);
		return 2;
	}
	pattern = malloc(PATTERN_LEN);
	if (!pattern)
		return 1;
	memset(pattern, 'x', PATTERN_LEN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < n_workers; i++)
		if (worker_init(&workers[i], i == 0, name))
			return 1;
	for (i = 0; i < n_endpoints; i++)
		printf("listening on %s\n", endpoints[i].addr);
	fflush(stdout);
	for (i = 1; i < n_workers; i++) {
		if (pthread_create(&workers[i].tid, NULL, worker_run, &workers[i])) {
			fprintf(stderr, "Error: cannot start thread %d\n", i);
			return 1;
		}
	}
	worker_run(&workers[0]);
	return 0;
}
