/* The agent's declarative config (sluiced --config FILE, sluice apply -f
 * FILE): the services, their health checks and backends, and the policy
 * (endpoints and rule sets) that a YAML file asks for, parsed and validated as a whole by cfg_load_file() or
 * cfg_load_buffer(). Types and functions only; docs/config.md has the
 * format. (include/sluice/config.h is the unrelated sl_cfg map value.) */
#ifndef SLUICE_CFG_H
#define SLUICE_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "addr.h"
#include "config_http.h"
#include "policy.h"
#include "sluice/limits.h"
#include "sluice/service.h"

/* What one config may hold: service and backend ids start at 1 (limits.h). */
#define CFG_MAX_SERVICES (SL_MAX_SERVICES - 1)
#define CFG_MAX_BACKENDS (SL_MAX_BACKENDS - 1) /* over all services */
#define CFG_AFFINITY_MAX_S 86400u
#define CFG_HEALTH_PATH_MAX 128 /* with the NUL */

enum cfg_health_type {
	CFG_HEALTH_NONE, /* no "health" key: the backends are never probed */
	CFG_HEALTH_TCP,
	CFG_HEALTH_HTTP,
};

/* An active health check; every field holds its default when not given. */
struct cfg_health {
	enum cfg_health_type type;
	char path[CFG_HEALTH_PATH_MAX]; /* HTTP: request target, starts with '/' */
	uint16_t expect_status; /* HTTP: 100..599 */
	uint32_t interval_ms; /* 10..3600000 */
	uint32_t timeout_ms; /* 1..interval_ms */
	uint8_t healthy_threshold; /* consecutive passes to mark up, 1..100 */
	uint8_t unhealthy_threshold; /* consecutive failures to mark down, 1..100 */
};

struct cfg_backend {
	struct addr_port addr; /* same family as the service's VIP */
	uint32_t weight; /* 0..LB_WEIGHT_MAX; 0 = drained */
	unsigned int line, column; /* where the entry starts, 1-based */
};

struct cfg_service {
	struct sl_svc_key key;
	char name[SL_SVC_NAME_MAX]; /* may be empty */
	uint32_t affinity_s; /* 0 = no client-IP affinity */
	bool l7; /* l7: http: local clients go through sluice-proxy (socket layer) */
	struct cfg_http *http; /* the `http:` key (only with l7), NULL when absent */
	struct cfg_health health;
	struct cfg_backend *backends; /* in file order, no two with one address */
	size_t n_backends;
	unsigned int line, column; /* where the entry starts, 1-based */
};

/* A whole config: services in file order, no two with one key, and the
 * policy (endpoints and rule sets in file order, validated by
 * pol_state_validate(), every rule with its id). */
struct cfg_state {
	struct cfg_service *services;
	size_t n_services;
	struct pol_state policy;
	struct cfg_proxy proxy; /* the `proxy:` key, defaults when absent */
};

/* Where and why a config was refused. line 0 means no position (I/O,
 * memory); column 0 means the whole line; field "" means no field. */
struct cfg_error {
	char file[256];
	unsigned int line, column; /* 1-based */
	char field[128]; /* e.g. services[0].backends[1].weight */
	char message[256];
};

/*
 * cfg_load_file() - read and validate the config at @path into @out.
 * cfg_load_buffer() - the same for @len bytes of @text, @name standing in
 * for the file name in errors (NULL: "<buffer>").
 *
 * The whole input is validated before anything is returned. On success
 * @out owns arrays that cfg_free() releases. On error @out is zeroed (the
 * caller frees nothing), @err (may be NULL) says where and why, and the
 * return is -EINVAL for content, -ENOMEM, or the -errno of reading @path.
 * An empty file is a valid config with no services and no policy.
 */
int cfg_load_file(const char *path, struct cfg_state *out, struct cfg_error *err);
int cfg_load_buffer(const char *name, const char *text, size_t len, struct cfg_state *out,
		    struct cfg_error *err);
/* Read all of @path (a regular file or a pipe) into a malloc'ed buffer
 * (not NUL-ended). Returns 0 or -errno (-EFBIG past the size a config may have). */
int cfg_read_file(const char *path, char **text, size_t *len);
/* Release what a load returned and zero @state; a zeroed state is fine. */
void cfg_free(struct cfg_state *state);
/* "FILE:LINE:COL: FIELD: MESSAGE", leaving out the parts @err lacks. */
void cfg_error_format(const struct cfg_error *err, char *buf, size_t len);

/* A service name: A-Z a-z 0-9 . _ - and shorter than SL_SVC_NAME_MAX. */
bool cfg_name_valid(const char *name);
/* Set @p to the proxy settings of a config without a `proxy:` key
 * (config_http.h's defaults): cfg_load_*() start from them. */
void cfg_proxy_defaults(struct cfg_proxy *p);

/* ---- building and saving states (config_write.c): the agent's state file ---- */

/* Write @state in the format cfg_load_*() reads back to the same state.
 * Returns 0 or -EIO. */
int cfg_write(FILE *out, const struct cfg_state *state);
/* Deep copy @src into @dst (zeroed on error). Returns 0 or -ENOMEM. */
int cfg_copy(struct cfg_state *dst, const struct cfg_state *src);
/* An order of service keys for qsort()/bsearch(). */
int cfg_svc_key_cmp(const void *a, const void *b);
struct cfg_service *cfg_find_service(const struct cfg_state *state, const struct sl_svc_key *key);
struct cfg_backend *cfg_find_backend(const struct cfg_service *svc, const struct addr_port *addr);
/* Append a service (no backends, no http) or a backend; the pointer may
 * move. Return the new element, or NULL when out of memory (nothing
 * changed). Removing a service frees its backends and http. */
struct cfg_service *cfg_add_service(struct cfg_state *state, const struct cfg_service *svc);
struct cfg_backend *cfg_add_backend(struct cfg_service *svc, const struct cfg_backend *be);
/* Append a copy of @svc with its backends (not its http). NULL when out
 * of memory (nothing changed). */
struct cfg_service *cfg_add_service_copy(struct cfg_state *state, const struct cfg_service *svc);
/* Append a copy of each service of @src that @dst has no service of its
 * key for, in @src's order (so the ones added are @dst's last). 0 or
 * -ENOMEM (@dst may have some of them then). */
int cfg_add_missing_services(struct cfg_state *dst, const struct cfg_state *src);
/* The same for policy endpoints, by address. */
int cfg_add_missing_endpoints(struct cfg_state *dst, const struct cfg_state *src);
/* Remove one element (order of the rest kept). */
void cfg_remove_service(struct cfg_state *state, struct cfg_service *svc);
void cfg_remove_backend(struct cfg_service *svc, struct cfg_backend *be);
/* A 64-bit FNV-1a digest of @len bytes: which config a state came from. */
uint64_t cfg_digest(const void *data, size_t len);

#endif
