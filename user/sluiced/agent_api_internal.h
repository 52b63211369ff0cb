/* What the control API's op files share (agent_api.c, agent_api_policy.c):
 * the op table shape, request field readers and reply builders. */
#ifndef SLUICE_AGENT_API_INTERNAL_H
#define SLUICE_AGENT_API_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "agent.h"

struct api_op {
	const char *name;
	struct json_object *(*run)(struct agent *a, struct json_object *req, struct agent_error *e);
};

/* Ends with an entry whose name is NULL. */
extern const struct api_op api_policy_ops[];
/* The "policy" object of the status reply. */
struct json_object *agent_api_policy_status(const struct agent *a);

/* String field @name of @req: NULL (with e->message set) if absent and
 * @required, or not a string; NULL with e->message empty when absent. */
const char *api_field_string(struct json_object *req, const char *name, bool required,
			     struct agent_error *e);
/* Unsigned field @name into @out (left alone when absent and optional).
 * Returns 0 or -EINVAL with @e filled. */
int api_field_u32(struct json_object *req, const char *name, bool required, uint32_t max,
		  uint32_t *out, struct agent_error *e);
/* A request that failed its field checks: status 2 with e->message. */
struct json_object *api_bad_request(struct agent_error *e);
/* The reply to a verb that returned @err. */
struct json_object *api_done(int err, const struct agent_error *e);
struct json_object *api_ok_reply(void);
struct json_object *api_error_reply(const struct agent_error *e);

#endif
