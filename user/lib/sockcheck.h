/* sockcheck: correctness checks of a local TCP connection whose two ends
 * live in this process, for sockops + sk_msg redirection (whose kernel
 * side has known bugs: lost half-close replies, unbounded queueing, FIONREAD
 * 0). Each scenario verifies every byte against a seeded pattern and is
 * bounded by a deadline, so a kernel bug shows as a failure, never a hang.
 * Depends on libc and pthread only (and deadline.c from this library). */
#ifndef SLUICE_SOCKCHECK_H
#define SLUICE_SOCKCHECK_H

#include <stddef.h>

/* A zeroed struct means every default. Fields apply to the scenarios named
 * in their comment; the others ignore them. */
struct sockcheck_opts {
	const char *addr; /* numeric IPv4 or IPv6 to listen on and connect to; NULL: 127.0.0.1 */
	unsigned int port; /* listener port; 0: an ephemeral one */
	unsigned int repeat; /* halfclose (50), reset (3): rounds, a fresh connection each */
	size_t size; /* bulk (64 MiB), sendfile (8 MiB per method): bytes */
	size_t write_size; /* bulk (65536): bytes per write() */
	unsigned int count; /* churn: connections (1000); pingpong (10000), small (20000), epoll (2000): round trips */
	int timeout_ms; /* deadline of one scenario (20000); a scenario ends within twice it */
};

#define SOCKCHECK_TEXT_MAX 256 /* why and detail buffers of this size never truncate */

/* Run @scenario. Returns 0 when it passed, with what it measured in
 * @detail; otherwise -errno (-EPROTO: wrong bytes, -ETIMEDOUT: the deadline
 * passed, -ENOENT: no such scenario) with the first failure in @why. Threads
 * are joined and sockets closed before it returns. The scenarios never raise
 * SIGPIPE in the calling thread (MSG_NOSIGNAL; sendfile and splice run in a
 * thread that blocks it). */
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
