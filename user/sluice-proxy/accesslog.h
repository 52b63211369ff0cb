/* The access log: one line per request (text, or one JSON object per
 * line), buffered per worker and written in whole lines, so workers
 * sharing one file never split each other's lines. */
#ifndef SLUICE_ACCESSLOG_H
#define SLUICE_ACCESSLOG_H

#include <stdbool.h>
#include <stdint.h>

#define PX_LOG_BUF 32768

struct px_log_entry {
	const char *peer; /* client address */
	const char *method, *host, *path;
	int status;
	uint64_t bytes_in, bytes_out; /* request and response bytes, heads included */
	uint64_t duration_ms;
	const char *service;
	uint32_t route; /* index, or UINT32_MAX before routing */
	const char *upstream; /* "" when none was tried */
	uint32_t attempts;
	const char *reason; /* why the proxy answered itself, "" when it relayed */
};

struct px_accesslog {
	int fd; /* shared, not owned; -1 = off */
	bool json;
	char buf[PX_LOG_BUF];
	size_t len;
};

void px_log_init(struct px_accesslog *log, int fd, bool json);
/* Append one line; flushes first when the buffer cannot take it. */
void px_log_write(struct px_accesslog *log, const struct px_log_entry *e);
/* Write out what is buffered (the worker calls it every scan, 50 ms). */
void px_log_flush(struct px_accesslog *log);

#endif
