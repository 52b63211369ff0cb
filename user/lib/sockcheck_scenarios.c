/* The sockcheck scenarios (sockcheck.h) but the request/response ones
 * (sockcheck_rr.c). Each sets up its connections through the run's
 * listener, moves pattern bytes, checks every one of them and records the
 * first failure; the main thread is the client, a peer thread the server.
 * Helpers are in sockcheck.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "deadline.h"
#include "sockcheck_internal.h"

#define SC_BULK_SIZE (64 * SC_MIB)
#define SC_BULK_WRITE 65536
#define SC_SENDFILE_SIZE (8 * SC_MIB)

/* ---- bulk, sendfile: one-way streams ---- */

struct sc_stream {
	uint64_t seed;
	uint64_t max; /* bytes sent */
	uint64_t got; /* bytes received */
};

/* Peer: receive the stream to EOF. */
static int sc_stream_rx(struct sc_run *run, int fd, void *arg)
{
	struct sc_stream *st = arg;
	struct sc_pattern p;

	sc_pattern_init(&p, st->seed);
	return sc_recv_pattern(run, "server", fd, &p, st->max, &st->got);
}

static int sc_stream_complete(struct sc_run *run, const char *who, const struct sc_stream *st)
{
	if (st->got == st->max)
		return 0;
	return sc_fail(run, -EPROTO, "%s: EOF after %llu of %llu bytes", who,
		       (unsigned long long)st->got, (unsigned long long)st->max);
}

int sc_bulk(struct sc_run *run)
{
	uint64_t size = run->opts->size ? run->opts->size : SC_BULK_SIZE;
	size_t wsize = run->opts->write_size ? run->opts->write_size : SC_BULK_WRITE;
	struct sc_stream st = { .seed = sc_seed(0, 0), .max = size };
	struct sc_pattern p;
	struct sc_peer peer;
	uint64_t t0, ns;
	int cfd, err;

	err = sc_pair_peer(run, &cfd, &peer, sc_stream_rx, &st);
	if (err)
		return err;
	sc_pattern_init(&p, st.seed);
	t0 = sc_now_ns();
	err = sc_send_pattern(run, "client", cfd, &p, size, wsize);
	if (!err && shutdown(cfd, SHUT_WR))
		err = sc_fail(run, -errno, "client: shutdown");
	err = sc_peer_join(&peer, err, &cfd);
	ns = sc_now_ns() - t0;
	sc_close(&cfd);
	if (!err)
		err = sc_stream_complete(run, "server", &st);
	if (!err)
		sc_detail(run, "%.0f MB/s (%llu MiB in %zu-byte writes, %.1f ms)",
			  sc_mb_per_s(size, ns), (unsigned long long)(size / SC_MIB), wsize,
			  (double)ns / 1e6);
	return err;
}

struct sc_sendfile {
	uint64_t size; /* bytes per method */
	size_t chunk;
};

/* A memfd holding the next @size bytes of @p. */
static int sc_memfd_pattern(struct sc_run *run, struct sc_pattern *p, uint64_t size, int *mfd)
{
	void *map = MAP_FAILED;
	int fd = memfd_create("sockcheck", MFD_CLOEXEC);

	if (fd < 0)
		return sc_fail(run, -errno, "server: memfd_create");
	if (!ftruncate(fd, (off_t)size))
		map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		close(fd);
		return sc_fail(run, -errno, "server: memfd of %llu bytes",
			       (unsigned long long)size);
	}
	sc_pattern_fill(p, map, size);
	munmap(map, size);
	*mfd = fd;
	return 0;
}

static int sc_sendfile_file(struct sc_run *run, int fd, struct sc_pattern *p,
			    const struct sc_sendfile *sf)
{
	off_t off = 0;
	int mfd = -1, err = sc_memfd_pattern(run, p, sf->size, &mfd);

	while (!err && (uint64_t)off < sf->size) {
		uint64_t left = sf->size - (uint64_t)off;
		ssize_t n = sendfile(fd, mfd, &off, left < sf->chunk ? left : sf->chunk);

		if (n < 0)
			err = sc_io_retry(run, fd, POLLOUT);
		else if (!n)
			err = -EPIPE;
		if (err)
			sc_fail(run, err, "server: sendfile at byte %llu", (unsigned long long)off);
	}
	sc_close(&mfd);
	return err;
}

/* Move what the pipe holds into the socket. */
static int sc_splice_out(struct sc_run *run, int pipe_r, int fd, size_t len)
{
	int err = 0;

	while (len && !err) {
		ssize_t n = splice(pipe_r, NULL, fd, NULL, len, SPLICE_F_MOVE);

		if (n > 0)
			len -= (size_t)n;
		else
			err = n ? sc_io_retry(run, fd, POLLOUT) : -EPIPE;
	}
	return err;
}

static int sc_sendfile_pipe(struct sc_run *run, int fd, struct sc_pattern *p,
			    const struct sc_sendfile *sf)
{
	uint64_t left = sf->size;
	unsigned char *buf = NULL;
	int pfd[2], cap, err = 0;
	size_t len;

	if (pipe2(pfd, O_CLOEXEC))
		return sc_fail(run, -errno, "server: pipe");
	/* a write no larger than an empty pipe's capacity completes whole */
	cap = fcntl(pfd[1], F_GETPIPE_SZ);
	len = cap > 0 && (size_t)cap < sf->chunk ? (size_t)cap : sf->chunk;
	buf = malloc(len);
	if (!buf)
		err = sc_fail(run, -ENOMEM, "server: pipe buffer");
	while (left && !err) {
		size_t n = left < len ? (size_t)left : len;
		uint64_t at = p->offset;
		ssize_t w;

		sc_pattern_fill(p, buf, n);
		w = write(pfd[1], buf, n);
		if (w != (ssize_t)n)
			err = sc_fail(run, w < 0 ? -errno : -EIO, "server: write to pipe");
		else if ((err = sc_splice_out(run, pfd[0], fd, n)))
			sc_fail(run, err, "server: splice at byte %llu", (unsigned long long)at);
		left -= n;
	}
	free(buf);
	close(pfd[0]);
	close(pfd[1]);
	return err;
}

/* Peer: the file part, the pipe part, EOF. */
static int sc_sendfile_tx(struct sc_run *run, int fd, void *arg)
{
	const struct sc_sendfile *sf = arg;
	struct sc_pattern p;
	int err;

	sc_pattern_init(&p, sc_seed(0, 1));
	err = sc_sendfile_file(run, fd, &p, sf);
	if (!err)
		err = sc_sendfile_pipe(run, fd, &p, sf);
	if (!err && shutdown(fd, SHUT_WR))
		err = sc_fail(run, -errno, "server: shutdown");
	return err;
}

int sc_sendfile(struct sc_run *run)
{
	struct sc_sendfile sf = {
		.size = run->opts->size ? run->opts->size : SC_SENDFILE_SIZE,
		.chunk = run->opts->write_size ? run->opts->write_size : SC_BULK_WRITE,
	};
	struct sc_stream st = { .seed = sc_seed(0, 1), .max = 2 * sf.size };
	struct sc_pattern p;
	struct sc_peer peer;
	uint64_t t0, ns;
	int cfd, err;

	err = sc_pair_peer(run, &cfd, &peer, sc_sendfile_tx, &sf);
	if (err)
		return err;
	t0 = sc_now_ns();
	sc_pattern_init(&p, st.seed);
	err = sc_recv_pattern(run, "client", cfd, &p, st.max, &st.got);
	err = sc_peer_join(&peer, err, &cfd);
	ns = sc_now_ns() - t0;
	sc_close(&cfd);
	if (!err)
		err = sc_stream_complete(run, "client", &st);
	/* no MB/s: the time includes building the file */
	if (!err)
		sc_detail(run,
			  "%.1f MiB by sendfile + %.1f MiB by splice in %zu-byte calls, %.1f ms",
			  (double)sf.size / SC_MIB, (double)sf.size / SC_MIB, sf.chunk,
			  (double)ns / 1e6);
	return err;
}

/* ---- halfclose ---- */

#define SC_HALFCLOSE_REPEAT 50
#define SC_HALFCLOSE_PAYLOAD (4 * SC_MIB) /* enough to still be queued at SHUT_WR */
#define SC_HALFCLOSE_REPLY 64

/* How one round ended, as counted in the summary. */
enum sc_hc_outcome {
	SC_HC_OK,
	SC_HC_LOST, /* no whole reply: EAGAIN, early EOF, reset */
	SC_HC_NO_EOF, /* the reply, then no EOF */
	SC_HC_OTHER, /* request or server failed, wrong bytes */
};

/* Peer: the request to EOF, then the reply; the peer thread closes. */
static int sc_halfclose_serve(struct sc_run *run, int fd, void *arg)
{
	const unsigned int *round = arg;
	unsigned char reply[SC_HALFCLOSE_REPLY];
	struct sc_stream st = { .seed = sc_seed(*round, 0), .max = SC_HALFCLOSE_PAYLOAD };
	struct sc_pattern p;
	int err = sc_stream_rx(run, fd, &st);

	if (!err)
		err = sc_stream_complete(run, "server", &st);
	if (err)
		return err;
	sc_pattern_init(&p, sc_seed(*round, 1));
	sc_pattern_fill(&p, reply, sizeof(reply));
	err = sc_write_full(run, fd, reply, sizeof(reply));
	return err ? sc_fail(run, err, "server: write reply in round %u", *round) : 0;
}

/* The client's blocking read of the reply, then of EOF. */
static enum sc_hc_outcome sc_halfclose_reply(struct sc_run *run, int fd, unsigned int round)
{
	unsigned char reply[SC_HALFCLOSE_REPLY];
	long long t0 = now_ms();
	struct sc_pattern p;
	ssize_t n;

	n = sc_read_full(run, fd, reply, sizeof(reply));
	if (n < 0) {
		sc_fail(run, (int)n,
			"client: blocking read of the reply in round %u, after %lld ms", round,
			now_ms() - t0);
		return SC_HC_LOST;
	}
	if ((size_t)n < sizeof(reply)) {
		sc_fail(run, -EPROTO, "client: EOF after %zd bytes of the reply in round %u", n,
			round);
		return SC_HC_LOST;
	}
	sc_pattern_init(&p, sc_seed(round, 1));
	if (sc_pattern_check(run, "client: reply", &p, reply, sizeof(reply)))
		return SC_HC_OTHER;
	n = sc_read_full(run, fd, reply, 1);
	if (n) {
		sc_fail(run, n < 0 ? (int)n : -EPROTO, "client: no EOF after the reply in round %u",
			round);
		return SC_HC_NO_EOF;
	}
	return SC_HC_OK;
}

static enum sc_hc_outcome sc_halfclose_round(struct sc_run *run, unsigned int round)
{
	enum sc_hc_outcome out = SC_HC_OTHER;
	struct sc_pattern p;
	struct sc_peer peer;
	int cfd, err;

	if (sc_pair_peer(run, &cfd, &peer, sc_halfclose_serve, &round))
		return SC_HC_OTHER;
	sc_pattern_init(&p, sc_seed(round, 0));
	err = sc_send_pattern(run, "client", cfd, &p, SC_HALFCLOSE_PAYLOAD, SC_BULK_WRITE);
	if (!err && shutdown(cfd, SHUT_WR))
		err = sc_fail(run, -errno, "client: shutdown");
	if (!err)
		out = sc_halfclose_reply(run, cfd, round);
	/* a failed round resets the connection: a server still waiting for
	 * the request's end must not hold the join until its timeout */
	err = sc_peer_join(&peer, out != SC_HC_OK ? -EIO : 0, &cfd);
	sc_close(&cfd);
	return err && out == SC_HC_OK ? SC_HC_OTHER : out;
}

int sc_halfclose(struct sc_run *run)
{
	unsigned int repeat = run->opts->repeat ? run->opts->repeat : SC_HALFCLOSE_REPEAT;
	unsigned int n[SC_HC_OTHER + 1] = { 0 }, done = 0;

	/* go on after a failure: how many rounds fail tells the bug apart */
	for (; done < repeat && !sc_expired(run); done++)
		n[sc_halfclose_round(run, done)]++;
	if (n[SC_HC_OK] == repeat) {
		sc_detail(run, "%u rounds of %llu MiB, SHUT_WR, %d-byte reply, EOF", repeat,
			  (unsigned long long)(SC_HALFCLOSE_PAYLOAD / SC_MIB), SC_HALFCLOSE_REPLY);
		return 0;
	}
	if (!run->err)
		sc_fail(run, -ETIMEDOUT, "deadline after %u of %u rounds", done, repeat);
	sc_fail_summary(run, "%u of %u rounds failed: %u lost the reply, %u saw no EOF, %u other",
			done - n[SC_HC_OK], done, n[SC_HC_LOST], n[SC_HC_NO_EOF], n[SC_HC_OTHER]);
	return run->err;
}

/* ---- stall ---- */

/* Plain TCP lets a sender queue about its sndbuf (tcp_wmem's max, 4 MiB by
 * default) plus the receiver's rcvbuf before EAGAIN. The naive sk_msg
 * redirect ignores the receiver's buffer: it queued 150 MB against a
 * 128 KiB rcvbuf. 64 MiB is far from both. */
#define SC_STALL_BOUND (64 * SC_MIB)
#define SC_STALL_SETTLE_MS 50 /* no room for this long: the sender is stalled */
#define SC_STALL_TAIL (4 * SC_MIB) /* sent after the receiver resumes */
#define SC_STALL_CHUNK 65536

/* The sender's state across the two phases: the chunk it was writing. */
struct sc_stall_tx {
	struct sc_pattern p;
	unsigned char buf[SC_STALL_CHUNK];
	size_t off, len; /* buf[off..len) is filled but not yet written */
	uint64_t queued; /* bytes written before the stall */
};

/* Write without blocking while the socket takes more: until it stays full
 * for SC_STALL_SETTLE_MS, or past the bound. */
static int sc_stall_fill(struct sc_run *run, int fd, struct sc_stall_tx *tx)
{
	ssize_t n;
	int err;

	while (tx->queued <= SC_STALL_BOUND) {
		if (tx->off == tx->len) {
			sc_pattern_fill(&tx->p, tx->buf, sizeof(tx->buf));
			tx->off = 0;
			tx->len = sizeof(tx->buf);
		}
		n = send(fd, tx->buf + tx->off, tx->len - tx->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			tx->off += (size_t)n;
			tx->queued += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN)
			return sc_fail(run, n ? -errno : -EIO, "client: write at byte %llu",
				       (unsigned long long)tx->queued);
		if (sc_expired(run))
			return sc_fail(run, -ETIMEDOUT, "client: still writing");
		err = wait_fd(fd, POLLOUT, now_ms() + SC_STALL_SETTLE_MS);
		if (err == -ETIMEDOUT)
			return 0;
		if (err)
			return sc_fail(run, err, "client: poll");
	}
	return sc_fail(run, -EPROTO,
		       "client: queued %llu MiB without EAGAIN, over the %llu MiB bound",
		       (unsigned long long)(tx->queued / SC_MIB),
		       (unsigned long long)(SC_STALL_BOUND / SC_MIB));
}

/* The receiver is back: the rest of the chunk, the tail, EOF. */
static int sc_stall_drain(struct sc_run *run, int fd, struct sc_stall_tx *tx)
{
	int err = sc_write_full(run, fd, tx->buf + tx->off, tx->len - tx->off);

	if (err)
		return sc_fail(run, err, "client: write after the stall");
	err = sc_send_pattern(run, "client", fd, &tx->p, SC_STALL_TAIL, SC_STALL_CHUNK);
	if (!err && shutdown(fd, SHUT_WR))
		err = sc_fail(run, -errno, "client: shutdown");
	return err;
}

static int sc_stall_phases(struct sc_run *run, int *cfd, int sfd, struct sc_stall_tx *tx,
			   struct sc_stream *st)
{
	struct sc_peer peer;
	int err = sc_stall_fill(run, *cfd, tx);

	if (err) {
		close(sfd);
		return err;
	}
	st->max = tx->queued + (tx->len - tx->off) + SC_STALL_TAIL;
	err = sc_peer_start(run, &peer, sfd, sc_stream_rx, st);
	if (err)
		return err;
	err = sc_stall_drain(run, *cfd, tx);
	err = sc_peer_join(&peer, err, cfd);
	return err ? err : sc_stream_complete(run, "server", st);
}

int sc_stall(struct sc_run *run)
{
	struct sc_stall_tx *tx = calloc(1, sizeof(*tx));
	struct sc_stream st = { .seed = sc_seed(0, 0) };
	socklen_t len = sizeof(int);
	int cfd = -1, sfd, rcvbuf = 0, err;

	if (!tx)
		return sc_fail(run, -ENOMEM, "client: stall buffer");
	sc_pattern_init(&tx->p, st.seed);
	err = sc_pair(run, &cfd, &sfd);
	if (!err) {
		getsockopt(sfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len);
		err = sc_stall_phases(run, &cfd, sfd, tx, &st);
	}
	if (!err)
		sc_detail(run,
			  "%.1f MiB queued before the stall (rcvbuf %d KiB), %.1f MiB delivered",
			  (double)tx->queued / SC_MIB, rcvbuf / 1024, (double)st.got / SC_MIB);
	sc_close(&cfd);
	free(tx);
	return err;
}

/* ---- reset ---- */

#define SC_RESET_REPEAT 3
/* Time for the peer to fill the buffers and block: no call tells when a
 * thread sleeps in recv() or send(); a peer not yet blocked is checked too. */
#define SC_RESET_BLOCK_MS 30
#define SC_RESET_PROMPT_MS 1000 /* a RST on loopback is processed at once */

struct sc_reset {
	bool writer; /* the victim blocks in send(), else in recv() */
	bool eagain; /* its recv() returned EAGAIN first (reset_eagain_ok) */
	long long woke; /* now_ms() when its call returned */
};

/* Peer: block in recv() or send() until the client's RST ends it. */
static int sc_reset_victim(struct sc_run *run, int fd, void *arg)
{
	struct sc_reset *rs = arg;
	unsigned char buf[SC_BULK_WRITE] = { 0 };
	ssize_t n;
	int err;

	if (rs->writer) {
		do
			err = sc_write_full(run, fd, buf, sizeof(buf));
		while (!err);
	} else {
		n = sc_read_full(run, fd, buf, 1);
		if (n == -EAGAIN && run->opts->reset_eagain_ok) {
			rs->eagain = true;
			n = sc_read_full(run, fd, buf, 1);
		}
		err = n > 0 ? -EPROTO : (int)n;
	}
	rs->woke = now_ms();
	if (err == -ECONNRESET || err == -EPIPE || (!err && !rs->writer))
		return 0;
	return sc_fail(run, err, "server: %s after the peer's reset", rs->writer ? "send" : "recv");
}

/* One round: the client resets while the server is blocked; the time the
 * server took to notice in @ms. */
static int sc_reset_round(struct sc_run *run, bool writer, long long *ms, unsigned int *eagain)
{
	struct sc_reset rs = { .writer = writer };
	struct sc_peer peer;
	long long t0;
	int cfd, err;

	*ms = 0;
	err = sc_pair_peer(run, &cfd, &peer, sc_reset_victim, &rs);
	if (err)
		return err;
	sc_sleep_ms(SC_RESET_BLOCK_MS);
	t0 = now_ms();
	sc_abort_fd(&cfd);
	err = sc_peer_join(&peer, 0, NULL);
	*ms = rs.woke - t0;
	*eagain += rs.eagain;
	if (!err && *ms > SC_RESET_PROMPT_MS)
		err = sc_fail(run, -ETIMEDOUT, "server: blocked in %s for %lld ms after the reset",
			      writer ? "send" : "recv", *ms);
	return err;
}

int sc_reset(struct sc_run *run)
{
	unsigned int repeat = run->opts->repeat ? run->opts->repeat : SC_RESET_REPEAT;
	long long worst[2] = { 0, 0 }, ms;
	unsigned int eagain = 0;
	int err = 0;

	for (unsigned int i = 0; i < 2 * repeat && !err; i++) {
		err = sc_reset_round(run, i & 1, &ms, &eagain);
		if (ms > worst[i & 1])
			worst[i & 1] = ms;
	}
	if (!err)
		sc_detail(run,
			  "%u rounds: a blocked reader woke within %lld ms (%u with EAGAIN first), "
			  "a writer within %lld ms",
			  repeat, worst[0], eagain, worst[1]);
	return err;
}

/* ---- churn ---- */

#define SC_CHURN_COUNT 1000
#define SC_CHURN_MSG 64

/* The server side of connection @i: echo its message, wait for its EOF. */
static int sc_churn_echo(struct sc_run *run, int fd, unsigned int i)
{
	unsigned char msg[SC_CHURN_MSG];
	struct sc_pattern p;
	ssize_t n = sc_read_full(run, fd, msg, sizeof(msg));
	int err;

	if (n < 0)
		return sc_fail(run, (int)n, "server: read on connection %u", i);
	if (n != sizeof(msg))
		return sc_fail(run, -EPROTO, "server: EOF after %zd bytes on connection %u", n, i);
	sc_pattern_init(&p, sc_seed(i, 0));
	err = sc_pattern_check(run, "server", &p, msg, sizeof(msg));
	if (!err && (err = sc_write_full(run, fd, msg, sizeof(msg))))
		sc_fail(run, err, "server: echo on connection %u", i);
	if (!err && (n = sc_read_full(run, fd, msg, 1)))
		err = sc_fail(run, n < 0 ? (int)n : -EPROTO, "server: no EOF on connection %u", i);
	return err;
}

/* Peer on the listener: accept and serve the connections in turn. */
static int sc_churn_serve(struct sc_run *run, int fd, void *arg)
{
	const unsigned int *count = arg;
	int err = 0;

	(void)fd;
	for (unsigned int i = 0; i < *count && !err; i++) {
		int sfd;

		err = sc_accept(run, &sfd);
		if (!err)
			err = sc_churn_echo(run, sfd, i);
		if (err)
			sc_abort_fd(&sfd);
		else
			sc_close(&sfd);
	}
	return err;
}

/* The client side of connection @i: connect, message, its echo, close. */
static int sc_churn_client(struct sc_run *run, unsigned int i)
{
	unsigned char msg[SC_CHURN_MSG];
	struct sc_pattern p;
	int fd, err = sc_connect(run, &fd);
	ssize_t n;

	if (err)
		return err;
	sc_pattern_init(&p, sc_seed(i, 0));
	sc_pattern_fill(&p, msg, sizeof(msg));
	err = sc_write_full(run, fd, msg, sizeof(msg));
	if (err) {
		sc_fail(run, err, "client: write on connection %u", i);
	} else if ((n = sc_read_full(run, fd, msg, sizeof(msg))) < 0) {
		err = sc_fail(run, (int)n, "client: read echo on connection %u", i);
	} else if (n != sizeof(msg)) {
		err = sc_fail(run, -EPROTO, "client: EOF after %zd bytes of echo on connection %u",
			      n, i);
	} else {
		sc_pattern_init(&p, sc_seed(i, 0));
		err = sc_pattern_check(run, "client: echo", &p, msg, sizeof(msg));
	}
	if (err)
		sc_abort_fd(&fd);
	sc_close(&fd);
	return err;
}

int sc_churn(struct sc_run *run)
{
	unsigned int count = run->opts->count ? run->opts->count : SC_CHURN_COUNT;
	struct sc_peer peer;
	uint64_t t0 = sc_now_ns();
	int err = sc_peer_start(run, &peer, -1, sc_churn_serve, &count);

	if (err)
		return err;
	for (unsigned int i = 0; i < count && !err; i++)
		err = sc_churn_client(run, i);
	/* the server waits in accept() or read(): shutting the listener down
	 * does not wake a reader, but the client's RST did */
	if (err)
		shutdown(run->lfd, SHUT_RDWR);
	err = sc_peer_join(&peer, err, NULL);
	if (!err)
		sc_detail(run, "%u connections, %.1f us each", count,
			  (double)(sc_now_ns() - t0) / 1e3 / count);
	return err;
}

/* ---- peek ---- */

#define SC_PEEK_SETTLE_MS 100 /* for FIONREAD to count every byte sent */

#define SC_PEEK_MAX 65536

static const size_t sc_peek_sizes[] = { 1, 100, 1448, SC_PEEK_MAX };

/* One direction's sender, receiver and streams, and what FIONREAD said. */
struct sc_peek {
	const char *who; /* the receiver */
	int tx, rx;
	struct sc_pattern out, in;
	unsigned int exact, checks;
	unsigned char buf[SC_PEEK_MAX];
};

static int sc_fionread(struct sc_run *run, const char *who, int fd, int *avail)
{
	if (ioctl(fd, FIONREAD, avail))
		return sc_fail(run, -errno, "%s: FIONREAD", who);
	return 0;
}

/* Wait until readable, then until FIONREAD counts @len bytes or settles. */
static int sc_peek_ready(struct sc_run *run, struct sc_peek *pk, size_t len, int *avail)
{
	long long until;
	int err = wait_fd(pk->rx, POLLIN, run->deadline);

	if (err)
		return sc_fail(run, err, "%s: poll for %zu bytes", pk->who, len);
	until = now_ms() + SC_PEEK_SETTLE_MS;
	do {
		err = sc_fionread(run, pk->who, pk->rx, avail);
		if (err || (size_t)*avail >= len)
			return err;
		sc_sleep_ms(1);
	} while (now_ms() < until);
	return 0;
}

/* Peek at what FIONREAD counted; FIONREAD must not move. */
static int sc_peek_at(struct sc_run *run, struct sc_peek *pk, size_t len, int avail)
{
	struct sc_pattern in = pk->in; /* a copy: peeking consumes nothing */
	ssize_t n = recv(pk->rx, pk->buf, len, MSG_PEEK | MSG_DONTWAIT);
	int after, err;

	if (n <= 0)
		return sc_fail(run, n ? -errno : -EPROTO, "%s: MSG_PEEK of %zu bytes returned %zd",
			       pk->who, len, n);
	err = sc_pattern_check(run, pk->who, &in, pk->buf, (size_t)n);
	if (!err)
		err = sc_fionread(run, pk->who, pk->rx, &after);
	if (!err && after != avail)
		err = sc_fail(run, -EPROTO, "%s: FIONREAD went from %d to %d on MSG_PEEK", pk->who,
			      avail, after);
	return err;
}

static int sc_peek_one(struct sc_run *run, struct sc_peek *pk, size_t len)
{
	int avail, err;
	ssize_t n;

	sc_pattern_fill(&pk->out, pk->buf, len);
	err = sc_write_full(run, pk->tx, pk->buf, len);
	if (err)
		return sc_fail(run, err, "write of %zu bytes to %s", len, pk->who);
	err = sc_peek_ready(run, pk, len, &avail);
	if (!err && avail <= 0)
		err = sc_fail(run, -EPROTO, "%s: FIONREAD %d with %zu bytes readable", pk->who,
			      avail, len);
	if (!err)
		err = sc_peek_at(run, pk, len, avail);
	if (err)
		return err;
	pk->checks++;
	pk->exact += (size_t)avail == len;
	n = sc_read_full(run, pk->rx, pk->buf, len);
	if (n != (ssize_t)len)
		return sc_fail(run, n < 0 ? (int)n : -EPROTO, "%s: read %zd of %zu peeked bytes",
			       pk->who, n, len);
	return sc_pattern_check(run, pk->who, &pk->in, pk->buf, len);
}

/* Every size one way, then the other. */
static int sc_peek_ways(struct sc_run *run, struct sc_peek *pk, int cfd, int sfd)
{
	int err = 0;

	for (unsigned int way = 0; way < 2 && !err; way++) {
		pk->who = way ? "client" : "server";
		pk->tx = way ? sfd : cfd;
		pk->rx = way ? cfd : sfd;
		sc_pattern_init(&pk->out, sc_seed(0, way));
		pk->in = pk->out;
		for (size_t i = 0; i < sizeof(sc_peek_sizes) / sizeof(sc_peek_sizes[0]) && !err;
		     i++)
			err = sc_peek_one(run, pk, sc_peek_sizes[i]);
	}
	return err;
}

int sc_peek(struct sc_run *run)
{
	struct sc_peek *pk = calloc(1, sizeof(*pk));
	int cfd, sfd, err;

	if (!pk)
		return sc_fail(run, -ENOMEM, "peek buffer");
	err = sc_pair(run, &cfd, &sfd);
	if (!err)
		err = sc_peek_ways(run, pk, cfd, sfd);
	if (!err)
		sc_detail(run,
			  "FIONREAD exact in %u of %u checks, MSG_PEEK then read of 1..%zu bytes",
			  pk->exact, pk->checks, (size_t)SC_PEEK_MAX);
	sc_close(&cfd);
	sc_close(&sfd);
	free(pk);
	return err;
}
