/* One leveled logger for every Sluice binary: one line per event on
 * stderr with time, level and component. libbpf's own output is routed
 * through it one level down (its warnings become our info). */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *name, enum log_level *level);
/* Route libbpf's messages through log_msg() under component "libbpf". */
void log_route_libbpf(void);

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_info(comp, ...) log_msg(LOG_INFO, comp, __VA_ARGS__)
#define log_debug(comp, ...) log_msg(LOG_DEBUG, comp, __VA_ARGS__)

#endif
