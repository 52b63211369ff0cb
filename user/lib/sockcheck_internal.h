/* What sockcheck.c (the run, pattern, I/O and socket helpers) shares with
 * the scenarios (sockcheck_scenarios.c, sockcheck_rr.c); not part of the
 * sockcheck API.
 * Same conventions: 0 or -errno; a failure is recorded once in the run. */
#ifndef SLUICE_SOCKCHECK_INTERNAL_H
#define SLUICE_SOCKCHECK_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "sockcheck.h"

#define SC_KIB 1024ull
#define SC_MIB (1024 * SC_KIB)

/* One scenario run: its options, listener and deadline, and the first
 * failure any of its threads saw. */
struct sc_run {
	const struct sockcheck_opts *opts;
	struct sockaddr_storage addr; /* the listener's, port included */
	socklen_t addr_len;
	int lfd;
	int timeout_ms;
	long long deadline; /* now_ms() clock */
	pthread_mutex_t lock; /* guards err and why */
	int err;
	char why[SOCKCHECK_TEXT_MAX];
	char detail[SOCKCHECK_TEXT_MAX];
};

/* Record @err (negative) with a reason, unless a failure is already
 * recorded: the first one is the cause, later ones its echoes. The reason
 * gets ": strerror" appended except for -EPROTO (wrong bytes: the message
 * says what was wrong). Returns @err. */
int sc_fail(struct sc_run *run, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Replace the recorded reason by "<prefix>; first: <reason>". */
void sc_fail_summary(struct sc_run *run, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sc_detail(struct sc_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool sc_expired(const struct sc_run *run);
void sc_sleep_ms(int ms);
/* CLOCK_MONOTONIC in ns, for measurements (deadlines use now_ms()). */
uint64_t sc_now_ns(void);
double sc_mb_per_s(uint64_t bytes, uint64_t ns);

/* A seeded byte stream: the sender fills, the receiver checks, each in its
 * own copy, so a lost, duplicated, reordered or foreign byte is caught at
 * its offset whatever the chunking. A length generator uses rand only. */
struct sc_pattern {
	uint64_t seed;
	uint64_t offset; /* of the next byte */
};

void sc_pattern_init(struct sc_pattern *p, uint64_t seed);
uint64_t sc_pattern_rand(struct sc_pattern *p);
void sc_pattern_fill(struct sc_pattern *p, void *buf, size_t len);
/* Compare @buf with the next @len bytes of @p (which advances). Returns 0,
 * or -EPROTO recorded as "@who: byte OFFSET is X, expected Y". */
int sc_pattern_check(struct sc_run *run, const char *who, struct sc_pattern *p, const void *buf,
		     size_t len);
/* Seed of stream @dir (0: client to server, 1: back) of connection @conn. */
uint64_t sc_seed(unsigned int conn, unsigned int dir);

/* Blocking or non-blocking fd, bounded by the run's deadline: a blocking
 * socket's SO_RCVTIMEO/SO_SNDTIMEO is the timeout, so -EAGAIN before the
 * deadline is the kernel giving up early (the sk_msg half-close bug), not
 * a timeout. Read: the bytes read (< @len only at EOF) or -errno. Write: 0
 * or -errno, never SIGPIPE. */
ssize_t sc_read_full(struct sc_run *run, int fd, void *buf, size_t len);
/* After a call on @fd failed with errno set: 0 to retry it (EINTR, or
 * EAGAIN on a non-blocking fd once it has @events), or -errno as above. */
int sc_io_retry(struct sc_run *run, int fd, short events);
int sc_write_full(struct sc_run *run, int fd, const void *buf, size_t len);
/* Send @len bytes of @p in writes of @chunk bytes. 0 or -errno (recorded). */
int sc_send_pattern(struct sc_run *run, const char *who, int fd, struct sc_pattern *p, uint64_t len,
		    size_t chunk);
/* Read to EOF checking every byte against @p; more than @max is an error.
 * Byte count in @got. 0 or -errno (recorded). */
int sc_recv_pattern(struct sc_run *run, const char *who, int fd, struct sc_pattern *p, uint64_t max,
		    uint64_t *got);

/* A connected pair through the run's listener, SO_RCVTIMEO/SO_SNDTIMEO set
 * to the timeout on both. 0 or -errno (recorded); on error both are -1. */
int sc_pair(struct sc_run *run, int *cfd, int *sfd);
/* A client socket connected to the run's listener, timeouts set. */
int sc_connect(struct sc_run *run, int *cfd);
/* Take the next connection off the listener within the deadline. */
int sc_accept(struct sc_run *run, int *sfd);
int sc_set_int(int fd, int level, int name, int value);
int sc_set_nonblock(int fd);
/* Close with SO_LINGER {1, 0}: the peer gets a RST, which wakes it from a
 * blocked read or write at once. Both set @fd to -1. */
void sc_abort_fd(int *fd);
void sc_close(int *fd);

/* The far end of a scenario in its own thread: @fn(run, fd, arg) returns 0
 * or -errno; the thread owns @fd (-1: none) and closes it after, aborting
 * it on error so the main thread's blocked call returns. SIGPIPE is blocked
 * in the thread (sendfile and splice cannot be told MSG_NOSIGNAL). */
struct sc_peer {
	struct sc_run *run;
	int fd;
	int (*fn)(struct sc_run *run, int fd, void *arg);
	void *arg;
	int err;
	pthread_t thread;
};

/* Start @peer; on error @fd is closed. 0 or -errno (recorded). */
int sc_peer_start(struct sc_run *run, struct sc_peer *peer, int fd,
		  int (*fn)(struct sc_run *run, int fd, void *arg), void *arg);
/* Join @peer after the main side finished with @main_err; a failed main
 * side aborts @main_fd first so the peer is not left waiting. Returns
 * @main_err, else the peer's error. */
int sc_peer_join(struct sc_peer *peer, int main_err, int *main_fd);

/* Connect a pair and hand its server end to a peer running @fn. On error
 * nothing is left open. */
int sc_pair_peer(struct sc_run *run, int *cfd, struct sc_peer *peer,
		 int (*fn)(struct sc_run *run, int fd, void *arg), void *arg);

/* The scenarios: 0 or -errno, detail set on success. */
int sc_bulk(struct sc_run *run);
int sc_small(struct sc_run *run);
int sc_halfclose(struct sc_run *run);
int sc_stall(struct sc_run *run);
int sc_reset(struct sc_run *run);
int sc_churn(struct sc_run *run);
int sc_sendfile(struct sc_run *run);
int sc_peek(struct sc_run *run);
int sc_epoll(struct sc_run *run);
int sc_pingpong(struct sc_run *run);

/* The receive buffer stall sets on the listener, inherited by the accepted
 * socket before the handshake: small, so the sender's bound is tight. */
#define SC_STALL_RCVBUF (128 * 1024)
/* epoll's: smaller than its largest request, so the client meets EAGAIN
 * and waits for EPOLLOUT */
#define SC_EPOLL_RCVBUF (16 * 1024)

#endif
