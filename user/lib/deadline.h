/* Waiting on a file descriptor with a deadline: what the control API and
 * the metrics endpoint use so that no peer can hold the agent's loop. */
#ifndef SLUICE_DEADLINE_H
#define SLUICE_DEADLINE_H

/* CLOCK_MONOTONIC milliseconds; a deadline is now_ms() + a timeout. */
long long now_ms(void);
/* Wait until @fd has @events (POLLIN, POLLOUT) or @deadline passes.
 * Returns 0 when it has (or on EINTR: callers retry their I/O), -ETIMEDOUT,
 * or another -errno. */
int wait_fd(int fd, short events, long long deadline);

#endif
