/* The access log of accesslog.h. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"

void px_log_init(struct px_accesslog *log, int fd, bool json)
{
	log->fd = fd;
	log->json = json;
	log->len = 0;
}

void px_log_flush(struct px_accesslog *log)
{
	size_t done = 0;

	while (log->fd >= 0 && done < log->len) {
		ssize_t n = write(log->fd, log->buf + done, log->len - done);

		if (n <= 0)
			break; /* a full disk loses log lines, never requests */
		done += n;
	}
	log->len = 0;
}

/* Copy @s into @out for a JSON string: quotes, backslashes and control
 * bytes escaped (paths and hosts are the client's bytes). */
static void json_text(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s && o + 7 < len; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			o += snprintf(out + o, len - o, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			o += snprintf(out + o, len - o, "\\u%04x", ch);
		else
			out[o++] = ch;
	}
	out[o] = '\0';
}

static int format_json(const struct px_log_entry *e, const char *when, char *line, size_t len)
{
	char host[300], path[600];

	json_text(e->host, host, sizeof(host));
	json_text(e->path, path, sizeof(path));
	return snprintf(
		line, len,
		"{\"time\":\"%s\",\"client\":\"%s\",\"method\":\"%s\",\"host\":\"%s\","
		"\"path\":\"%s\",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,"
		"\"duration_ms\":%llu,\"service\":\"%s\",\"route\":%d,\"upstream\":\"%s\","
		"\"attempts\":%u,\"reason\":\"%s\"}\n",
		when, e->peer, e->method, host, path, e->status, (unsigned long long)e->bytes_in,
		(unsigned long long)e->bytes_out, (unsigned long long)e->duration_ms, e->service,
		e->route == UINT32_MAX ? -1 : (int)e->route, e->upstream, e->attempts, e->reason);
}

static int format_text(const struct px_log_entry *e, const char *when, char *line, size_t len)
{
	return snprintf(line, len, "%s %s \"%s %s%s\" %d %llu %llu %llums %s %s%d %s %u %s\n", when,
			e->peer, e->method, e->host, e->path, e->status,
			(unsigned long long)e->bytes_in, (unsigned long long)e->bytes_out,
			(unsigned long long)e->duration_ms, e->service[0] ? e->service : "-",
			"route=", e->route == UINT32_MAX ? -1 : (int)e->route,
			e->upstream[0] ? e->upstream : "-", e->attempts,
			e->reason[0] ? e->reason : "-");
}

void px_log_write(struct px_accesslog *log, const struct px_log_entry *e)
{
	char when[40], line[1536];
	struct timespec ts;
	struct tm tm;
	int n;

	if (log->fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	n = log->json ? format_json(e, when, line, sizeof(line))
		      : format_text(e, when, line, sizeof(line));
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n'; /* truncated, still one line */
	}
	if (log->len + n > sizeof(log->buf))
		px_log_flush(log);
	memcpy(log->buf + log->len, line, n);
	log->len += n;
}
