/* sockcheck: correctness checks of a local TCP connection whose two ends
 * live in this process, for sockops + sk_msg redirection (whose kernel
 * side has known bugs: lost half-close replies, unbounded queueing, FIONREAD
 * 0). Each scenario verifies every byte against a seeded pattern and is
 * bounded by a deadline, so a kernel bug shows as a failure, never a hang.
 * Libc and pthread only, and deadline.c of this library. */
#ifndef SLUICE_SOCKCHECK_H
#define SLUICE_SOCKCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* A zeroed struct means every default. Each field applies to the
 * scenarios named in its comment, defaults in brackets; the others ignore
 * it. */
struct sockcheck_opts {
	/* numeric IPv4 or IPv6 address to listen on and connect to [127.0.0.1] */
	const char *addr;
	unsigned int port; /* the listener's [0: ephemeral] */
	/* rounds, a fresh connection each: halfclose [50], reset [3] */
	unsigned int repeat;
	size_t size; /* bytes: bulk [64 MiB], sendfile [8 MiB per method] */
	size_t write_size; /* bytes per write(): bulk, sendfile [65536] */
	/* churn: connections [1000]; round trips: pingpong [10000], small
	 * [20000], epoll [2000] */
	unsigned int count;
	/* deadline of one scenario [20000]; a blocking call started before
	 * it ends within it again, so a scenario lasts at most twice it */
	int timeout_ms;
	/* reset: a recv() blocked when the peer resets may return EAGAIN once
	 * before the reset shows, as the kernel does for a socket in a
	 * SOCKHASH (docs/socket-layer.md) [false: that EAGAIN fails] */
	bool reset_eagain_ok;
};

#define SOCKCHECK_TEXT_MAX 256 /* why and detail buffers of this size never truncate */

/* Run @scenario. Returns 0 when it passed, with what it measured in
 * @detail; otherwise -errno with the first failure in @why: -EPROTO wrong
 * bytes or behaviour (lost reply, no EOF, FIONREAD 0, unbounded queue),
 * -ETIMEDOUT the deadline passed, -EAGAIN a blocking call gave up before
 * its timeout, -ENOENT no such scenario. @why and @detail may be NULL with
 * length 0. Threads are joined and sockets closed before it returns; the
 * process never gets SIGPIPE (MSG_NOSIGNAL; sendfile and splice run in a
 * thread that blocks it, and their signal dies with the thread). */
int sockcheck_run(const char *scenario, const struct sockcheck_opts *opts, char *why,
		  size_t why_len, char *detail, size_t detail_len);

/* The scenarios in their run order: name and one-line summary of the @i-th,
 * NULL past the last. */
const char *sockcheck_scenario_name(size_t i);
const char *sockcheck_scenario_summary(size_t i);

/* The agent's start-up self-test: the scenarios that reproduce the known
 * kernel failures, sized to pass in well under 1.5 s on plain loopback
 * (8 MiB bulk in 1 KiB and 64 KiB writes, 10 half-closes, stall, peek,
 * pingpong). Fills @opts for step @i from @base (addr, port, timeout_ms;
 * timeout 0: 2000 ms) and sets its label and scenario. Returns 0, or
 * -ENOENT past the last step. */
int sockcheck_selftest_step(size_t i, const struct sockcheck_opts *base,
			    struct sockcheck_opts *opts, const char **label, const char **scenario);

/* Run every self-test step, stopping at the first failure. Returns 0, or
 * that step's -errno with "label: reason" in @why. */
int sockcheck_selftest(const struct sockcheck_opts *base, char *why, size_t why_len);

#endif
