/* Deadline waits (deadline.h). */
#include <errno.h>
#include <poll.h>
#include <time.h>

#include "deadline.h"

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	long long left = deadline - now_ms();
	int n;

	if (left <= 0)
		return -ETIMEDOUT;
	n = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n || now_ms() < deadline ? 0 : -ETIMEDOUT;
}
