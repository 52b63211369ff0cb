/* The request/response scenarios of sockcheck (sockcheck.h): small,
 * pingpong and epoll share one engine, a client that sends a request and
 * checks the reply and a peer that does the reverse, with or without a
 * length prefix, blocking or on an edge-triggered epoll set. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "deadline.h"
#include "sockcheck_internal.h"

#define SC_RR_MAX 65535 /* largest message body: the prefix is 16 bits */
#define SC_RR_HDR 2 /* length prefix, big-endian */
#define SC_EPOLL_SNDBUF 4096 /* the kernel doubles it */
#define SC_WAKEUP_MS 1000 /* readable this long without an edge: a lost wakeup */

/* The shape of one request/response scenario. */
struct sc_rr_spec {
	unsigned int rounds;
	size_t request_max; /* bodies are 1..max bytes, exactly max without prefix */
	size_t reply_max;
	bool prefix;
	bool epoll; /* the client is non-blocking on an edge-triggered epoll */
};

/* One end: its fd, its streams (what it sends, what it expects, its
 * lengths) and, for the epoll client, what it had to wait for. */
struct sc_rr_end {
	const char *who;
	const struct sc_rr_spec *spec;
	int fd;
	int ep; /* -1: blocking I/O */
	size_t tx_max, rx_max;
	struct sc_pattern tx, rx, len;
	unsigned int waits_in, waits_out;
	unsigned char buf[SC_RR_HDR + SC_RR_MAX];
};

static void sc_rr_end_init(struct sc_rr_end *end, const struct sc_rr_spec *spec, bool client)
{
	end->who = client ? "client" : "server";
	end->spec = spec;
	end->fd = end->ep = -1;
	end->tx_max = client ? spec->request_max : spec->reply_max;
	end->rx_max = client ? spec->reply_max : spec->request_max;
	sc_pattern_init(&end->tx, sc_seed(0, !client));
	sc_pattern_init(&end->rx, sc_seed(0, client));
	sc_pattern_init(&end->len, sc_seed(1, !client));
	end->waits_in = end->waits_out = 0;
}

/* No edge for SC_WAKEUP_MS: if @fd is ready all the same, the wakeup was lost. */
static int sc_ep_missed(struct sc_run *run, struct sc_rr_end *end, short events)
{
	struct pollfd pfd = { .fd = end->fd, .events = events };

	if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & events))
		return 0;
	return sc_fail(run, -EPROTO, "%s: %s ready but no edge-triggered event in %d ms", end->who,
		       events == POLLIN ? "readable" : "writable", SC_WAKEUP_MS);
}

/* Wait for an edge on the epoll set. Any event is reason to retry: with
 * EPOLLET an edge reports a change, not the state we need. */
static int sc_ep_wait(struct sc_run *run, struct sc_rr_end *end, short events)
{
	struct epoll_event ev;
	long long left;
	int n, err;

	events == POLLIN ? end->waits_in++ : end->waits_out++;
	for (;;) {
		left = run->deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = epoll_wait(end->ep, &ev, 1, left < SC_WAKEUP_MS ? (int)left : SC_WAKEUP_MS);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
		err = n ? 0 : sc_ep_missed(run, end, events);
		if (err)
			return err;
	}
}

/* Non-blocking whole-buffer I/O for the epoll client: the call until
 * EAGAIN, then the edge. Bytes done (< @len only at EOF) or -errno. */
static ssize_t sc_ep_io(struct sc_run *run, struct sc_rr_end *end, void *buf, size_t len, bool out)
{
	size_t done = 0;
	ssize_t n;
	int err;

	while (done < len) {
		if (out)
			n = send(end->fd, (char *)buf + done, len - done, MSG_NOSIGNAL);
		else
			n = recv(end->fd, (char *)buf + done, len - done, 0);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (!n && !out)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		err = sc_ep_wait(run, end, out ? POLLOUT : POLLIN);
		if (err)
			return err;
	}
	return (ssize_t)done;
}

static int sc_rr_write(struct sc_run *run, struct sc_rr_end *end, size_t len)
{
	ssize_t n;

	if (end->ep < 0)
		return sc_write_full(run, end->fd, end->buf, len);
	n = sc_ep_io(run, end, end->buf, len, true);
	return n < 0 ? (int)n : 0;
}

/* Read @len bytes at @off in the buffer; EOF before them is an error. */
static int sc_rr_read(struct sc_run *run, struct sc_rr_end *end, size_t off, size_t len,
		      unsigned int round)
{
	ssize_t n;

	if (end->ep < 0)
		n = sc_read_full(run, end->fd, end->buf + off, len);
	else
		n = sc_ep_io(run, end, end->buf + off, len, false);
	if (n < 0)
		return sc_fail(run, (int)n, "%s: read in round %u", end->who, round);
	if ((size_t)n < len)
		return sc_fail(run, -EPROTO, "%s: EOF in round %u", end->who, round);
	return 0;
}

static size_t sc_rr_hdr(const struct sc_rr_end *end)
{
	return end->spec->prefix ? SC_RR_HDR : 0;
}

static int sc_rr_send(struct sc_run *run, struct sc_rr_end *end, unsigned int round)
{
	size_t hdr = sc_rr_hdr(end), len = end->tx_max;
	int err;

	if (hdr) {
		len = 1 + sc_pattern_rand(&end->len) % end->tx_max;
		end->buf[0] = (unsigned char)(len >> 8);
		end->buf[1] = (unsigned char)len;
	}
	sc_pattern_fill(&end->tx, end->buf + hdr, len);
	/* header and body in one write: two would meet Nagle's delay */
	err = sc_rr_write(run, end, hdr + len);
	return err ? sc_fail(run, err, "%s: write in round %u", end->who, round) : 0;
}

static int sc_rr_recv(struct sc_run *run, struct sc_rr_end *end, unsigned int round)
{
	size_t hdr = sc_rr_hdr(end), len = end->rx_max;
	int err = 0;

	if (hdr) {
		err = sc_rr_read(run, end, 0, hdr, round);
		len = (size_t)end->buf[0] << 8 | end->buf[1];
		if (!err && (!len || len > end->rx_max))
			err = sc_fail(run, -EPROTO, "%s: length %zu in round %u, expected 1..%zu",
				      end->who, len, round, end->rx_max);
	}
	if (!err)
		err = sc_rr_read(run, end, hdr, len, round);
	if (!err)
		err = sc_pattern_check(run, end->who, &end->rx, end->buf + hdr, len);
	return err;
}

/* Peer: answer every request. */
static int sc_rr_serve(struct sc_run *run, int fd, void *arg)
{
	struct sc_rr_end *end = arg;
	int err = sc_set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);

	end->fd = fd;
	if (err)
		return sc_fail(run, err, "server: TCP_NODELAY");
	for (unsigned int i = 0; i < end->spec->rounds && !err; i++) {
		err = sc_rr_recv(run, end, i);
		if (!err)
			err = sc_rr_send(run, end, i);
	}
	return err;
}

/* The client's socket options; for epoll, its edge-triggered set. */
static int sc_rr_client_setup(struct sc_run *run, struct sc_rr_end *end)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET };
	int err = sc_set_int(end->fd, IPPROTO_TCP, TCP_NODELAY, 1);

	if (err || !end->spec->epoll)
		return err ? sc_fail(run, err, "client: TCP_NODELAY") : 0;
	/* a send buffer about one request long: partial writes and EPOLLOUT */
	err = sc_set_int(end->fd, SOL_SOCKET, SO_SNDBUF, SC_EPOLL_SNDBUF);
	if (!err)
		err = sc_set_nonblock(end->fd);
	if (err)
		return sc_fail(run, err, "client: SO_SNDBUF, O_NONBLOCK");
	end->ep = epoll_create1(EPOLL_CLOEXEC);
	if (end->ep < 0)
		return sc_fail(run, -errno, "client: epoll_create1");
	if (epoll_ctl(end->ep, EPOLL_CTL_ADD, end->fd, &ev))
		return sc_fail(run, -errno, "client: epoll_ctl");
	return 0;
}

static void sc_rr_detail(struct sc_run *run, const struct sc_rr_end *end, uint64_t ns)
{
	const struct sc_rr_spec *spec = end->spec;
	double us = (double)ns / 1e3 / spec->rounds;

	if (spec->epoll)
		sc_detail(run, "%u round trips, %.1f us each, %u EPOLLIN and %u EPOLLOUT waits",
			  spec->rounds, us, end->waits_in, end->waits_out);
	else if (spec->prefix)
		sc_detail(run, "%u round trips of 1..%zu bytes, %.1f us each", spec->rounds,
			  spec->request_max, us);
	else
		sc_detail(run, "%u round trips of %zu bytes, %.1f us each", spec->rounds,
			  spec->request_max, us);
}

static int sc_rr_run(struct sc_run *run, const struct sc_rr_spec *spec)
{
	/* on the heap: two message buffers of 64 KiB */
	struct sc_rr_end *client = malloc(2 * sizeof(*client)), *server = client + 1;
	struct sc_peer peer;
	uint64_t t0;
	int err;

	if (!client)
		return sc_fail(run, -ENOMEM, "message buffers");
	sc_rr_end_init(client, spec, true);
	sc_rr_end_init(server, spec, false);
	err = sc_pair_peer(run, &client->fd, &peer, sc_rr_serve, server);
	if (err)
		goto out_free;
	err = sc_rr_client_setup(run, client);
	t0 = sc_now_ns();
	for (unsigned int i = 0; i < spec->rounds && !err; i++) {
		err = sc_rr_send(run, client, i);
		if (!err)
			err = sc_rr_recv(run, client, i);
	}
	err = sc_peer_join(&peer, err, &client->fd);
	if (!err)
		sc_rr_detail(run, client, sc_now_ns() - t0);
	sc_close(&client->fd);
	sc_close(&client->ep);
out_free:
	free(client);
	return err;
}

int sc_small(struct sc_run *run)
{
	struct sc_rr_spec spec = {
		.rounds = run->opts->count ? run->opts->count : 20000,
		.request_max = 200,
		.reply_max = 200,
		.prefix = true,
	};

	return sc_rr_run(run, &spec);
}

int sc_pingpong(struct sc_run *run)
{
	struct sc_rr_spec spec = {
		.rounds = run->opts->count ? run->opts->count : 10000,
		.request_max = 1,
		.reply_max = 1,
	};

	return sc_rr_run(run, &spec);
}

int sc_epoll(struct sc_run *run)
{
	/* requests up to 64 KiB against the 8 KiB send buffer and the
	 * server's 32 KiB receive buffer (SC_EPOLL_RCVBUF): partial writes and
	 * EPOLLOUT waits, which requests of a few KiB never meet on loopback */
	struct sc_rr_spec spec = {
		.rounds = run->opts->count ? run->opts->count : 2000,
		.request_max = SC_RR_MAX,
		.reply_max = 4096,
		.prefix = true,
		.epoll = true,
	};

	return sc_rr_run(run, &spec);
}
