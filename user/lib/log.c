/* The leveled logger declared in log.h. Lines look like
 *   2026-11-26T12:00:00.123Z info  loader: attached xdp to eth0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "log.h"

static enum log_level current_level = LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

int log_parse_level(const char *name, enum log_level *level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(name, level_names[i])) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
{
	char line[1024];
	struct timeval now;
	struct tm tm;
	size_t len;

	if (level > current_level)
		return;
	gettimeofday(&now, NULL);
	gmtime_r(&now.tv_sec, &tm);
	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	/* libbpf ends its lines with '\n'; ours do not: print exactly one. */
	while (len && line[len - 1] == '\n')
		line[--len] = '\0';
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: %s\n", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		(long)now.tv_usec / 1000, level_names[level], component, line);
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, component, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* One level down: libbpf warns about things users rarely act on. */
	enum log_level ours = level == LIBBPF_WARN ? LOG_INFO : LOG_DEBUG;

	log_vmsg(ours, "libbpf", fmt, ap);
	return 0;
}

void log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
