/* The agent's side of the control API (docs/api.md): one request object
 * in, one reply object out. Every reply has "ok"; a failed one has
 * "error", "status" (1: failed, 2: bad request), maybe "hint", and for a
 * config error "file", "line", "column" and "field". */
#ifndef SLUICE_AGENT_API_H
#define SLUICE_AGENT_API_H

#include <json-c/json.h>

#include "agent.h"

/* Answer @req (not consumed); the reply is the caller's to put. */
struct json_object *agent_api_handle(struct agent *a, struct json_object *req);
/* A reply for a request that could not even be read. */
struct json_object *agent_api_error(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
