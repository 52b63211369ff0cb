/* Requests of the control API mapped onto the agent's transactions. Every
 * field is checked for presence and type before anything runs, so a
 * malformed request gets an error reply and changes nothing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent_api.h"
#include "agent_k8s.h"
#include "agent_api_internal.h"
#include "agent_sock.h"
#include "sock.h"

struct json_object *agent_api_error(int status, const char *fmt, ...)
{
	struct json_object *reply = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(reply, "ok", json_object_new_boolean(0));
	json_object_object_add(reply, "status", json_object_new_int(status));
	json_object_object_add(reply, "error", json_object_new_string(msg));
	return reply;
}

struct json_object *api_error_reply(const struct agent_error *e)
{
	struct json_object *reply = agent_api_error(e->status, "%s", e->message);

	if (e->err)
		json_object_object_add(reply, "errno", json_object_new_string(strerror(-e->err)));
	if (e->hint[0])
		json_object_object_add(reply, "hint", json_object_new_string(e->hint));
	if (e->has_cfg) {
		json_object_object_add(reply, "file", json_object_new_string(e->cfg.file));
		json_object_object_add(reply, "line", json_object_new_int(e->cfg.line));
		json_object_object_add(reply, "column", json_object_new_int(e->cfg.column));
		json_object_object_add(reply, "field", json_object_new_string(e->cfg.field));
	}
	return reply;
}

struct json_object *api_ok_reply(void)
{
	struct json_object *reply = json_object_new_object();

	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	return reply;
}

/* ---- request fields ---- */

/* String field @name of @req: NULL (with @e filled) if absent and @required,
 * or not a string. */
const char *api_field_string(struct json_object *req, const char *name, bool required,
			     struct agent_error *e)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, name, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			snprintf(e->message, sizeof(e->message), "missing field \"%s\"", name);
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(e->message, sizeof(e->message), "field \"%s\" must be a string", name);
		return NULL;
	}
	/* "\u0000" would cut the C string short and pass for a shorter value. */
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
		snprintf(e->message, sizeof(e->message), "field \"%s\" has a NUL character", name);
		return NULL;
	}
	return json_object_get_string(v);
}

/* Unsigned field @name into @out (left alone when absent and optional).
 * Returns 0 or -EINVAL with @e filled. */
int api_field_u32(struct json_object *req, const char *name, bool required, uint32_t max,
		  uint32_t *out, struct agent_error *e)
{
	struct json_object *v;
	int64_t value;

	if (!json_object_object_get_ex(req, name, &v) || json_object_is_type(v, json_type_null)) {
		if (!required)
			return 0;
		snprintf(e->message, sizeof(e->message), "missing field \"%s\"", name);
		return -EINVAL;
	}
	value = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || value < 0 || value > max) {
		snprintf(e->message, sizeof(e->message), "field \"%s\" must be an integer 0..%u",
			 name, max);
		return -EINVAL;
	}
	*out = (uint32_t)value;
	return 0;
}

static int field_service(struct json_object *req, struct sl_svc_key *key, struct agent_error *e)
{
	const char *text = api_field_string(req, "service", true, e);

	if (!text)
		return -EINVAL;
	if (addr_parse_service(text, key)) {
		snprintf(e->message, sizeof(e->message),
			 "invalid service '%.64s': write VIP:PORT/PROTO", text);
		return -EINVAL;
	}
	return 0;
}

static int field_backend(struct json_object *req, struct addr_port *addr, struct agent_error *e)
{
	const char *text = api_field_string(req, "backend", true, e);

	if (!text)
		return -EINVAL;
	if (addr_parse_endpoint(text, addr)) {
		snprintf(e->message, sizeof(e->message), "invalid backend '%.64s': write ADDR:PORT",
			 text);
		return -EINVAL;
	}
	return 0;
}

/* A request that failed its field checks: status 2 with e->message. */
struct json_object *api_bad_request(struct agent_error *e)
{
	e->status = 2;
	return api_error_reply(e);
}

struct json_object *api_done(int err, const struct agent_error *e)
{
	return err ? api_error_reply(e) : api_ok_reply();
}

/* ---- ops ---- */

static struct json_object *op_service_add(struct agent *a, struct json_object *req,
					  struct agent_error *e)
{
	struct cfg_service svc = {};
	const char *name, *l7;

	if (field_service(req, &svc.key, e) ||
	    api_field_u32(req, "affinity", false, CFG_AFFINITY_MAX_S, &svc.affinity_s, e))
		return api_bad_request(e);
	name = api_field_string(req, "name", false, e);
	if (!name && e->message[0])
		return api_bad_request(e);
	if (name && strlen(name) >= sizeof(svc.name)) {
		snprintf(e->message, sizeof(e->message), "name longer than %zu characters",
			 sizeof(svc.name) - 1);
		return api_bad_request(e);
	}
	if (name)
		strcpy(svc.name, name);
	l7 = api_field_string(req, "l7", false, e);
	if (!l7 && e->message[0])
		return api_bad_request(e);
	if (l7 && strcmp(l7, "http")) {
		snprintf(e->message, sizeof(e->message), "unknown L7 protocol '%.40s' (http)", l7);
		return api_bad_request(e);
	}
	svc.l7 = l7 != NULL;
	return api_done(agent_service_add(a, &svc, e), e);
}

static struct json_object *op_service_del(struct agent *a, struct json_object *req,
					  struct agent_error *e)
{
	struct sl_svc_key key;

	if (field_service(req, &key, e))
		return api_bad_request(e);
	return api_done(agent_service_del(a, &key, e), e);
}

/* backend.add (weight optional, 1), backend.set (weight required), backend.del. */
static struct json_object *op_backend(struct agent *a, struct json_object *req, const char *verb,
				      struct agent_error *e)
{
	bool set = !strcmp(verb, "set"), del = !strcmp(verb, "del");
	struct sl_svc_key key;
	struct addr_port addr;
	uint32_t weight = 1;

	if (field_service(req, &key, e) || field_backend(req, &addr, e) ||
	    (!del && api_field_u32(req, "weight", set, LB_WEIGHT_MAX, &weight, e)))
		return api_bad_request(e);
	if (del)
		return api_done(agent_backend_del(a, &key, &addr, e), e);
	if (set)
		return api_done(agent_backend_set(a, &key, &addr, weight, e), e);
	return api_done(agent_backend_add(a, &key, &addr, weight, e), e);
}

static struct json_object *summary_reply(const struct apply_summary *sum)
{
	struct json_object *reply = api_ok_reply();

	json_object_object_add(reply, "services", json_object_new_int64(sum->services));
	json_object_object_add(reply, "changed", json_object_new_int64(sum->changed));
	json_object_object_add(reply, "unchanged", json_object_new_int64(sum->unchanged));
	json_object_object_add(reply, "deleted", json_object_new_int64(sum->deleted));
	json_object_object_add(reply, "health_checks", json_object_new_int64(sum->health_checks));
	return reply;
}

static struct json_object *op_apply(struct agent *a, struct json_object *req, struct agent_error *e)
{
	const char *content = api_field_string(req, "content", true, e), *file;
	struct apply_summary sum;
	struct json_object *v;

	if (!content)
		return api_bad_request(e);
	file = api_field_string(req, "file", false, e);
	if (!file && e->message[0])
		return api_bad_request(e);
	json_object_object_get_ex(req, "content", &v);
	if (agent_apply(a, file ? file : "<request>", content,
			(size_t)json_object_get_string_len(v), &sum, e))
		return api_error_reply(e);
	return summary_reply(&sum);
}

static struct json_object *op_reload(struct agent *a, struct json_object *req,
				     struct agent_error *e)
{
	struct apply_summary sum;

	(void)req;
	if (agent_reload(a, &sum, e))
		return api_error_reply(e);
	return summary_reply(&sum);
}

/* Every desired backend with its configured weight and health: what the
 * maps cannot say (`sluice service list` merges it with the maps). */
static struct json_object *op_health(struct agent *a, struct json_object *req,
				     struct agent_error *e)
{
	struct json_object *reply = api_ok_reply(), *list = json_object_new_array();
	char svc_text[ADDR_STR_MAX], be_text[ADDR_STR_MAX];

	(void)req;
	(void)e;
	for (size_t i = 0; i < a->desired.n_services; i++) {
		const struct cfg_service *svc = &a->desired.services[i];

		addr_format_service(&svc->key, svc_text, sizeof(svc_text));
		for (size_t j = 0; j < svc->n_backends; j++) {
			const struct cfg_backend *be = &svc->backends[j];
			struct json_object *o = json_object_new_object();

			addr_format_endpoint(&be->addr, be_text, sizeof(be_text));
			json_object_object_add(o, "service", json_object_new_string(svc_text));
			json_object_object_add(o, "backend", json_object_new_string(be_text));
			json_object_object_add(o, "weight", json_object_new_int64(be->weight));
			json_object_object_add(
				o, "health",
				json_object_new_string(
					svc->health.type == CFG_HEALTH_NONE
						? "unchecked"
						: health_state_name(
							  agent_backend_health(a, svc, be))));
			json_object_array_add(list, o);
		}
	}
	json_object_object_add(reply, "backends", list);
	return reply;
}

static struct json_object *proxy_json(const struct addr_port *ap)
{
	char text[ADDR_STR_MAX];

	if (!ap->port)
		return NULL;
	addr_format_endpoint(ap, text, sizeof(text));
	return json_object_new_string(text);
}

static struct json_object *socket_layer_json(const struct agent_sock_status *st)
{
	struct json_object *obj = json_object_new_object(), *ports;

	json_object_object_add(obj, "attached", json_object_new_boolean(st->attached));
	json_object_object_add(obj, "cgroup",
			       st->attached ? json_object_new_string(st->cgroup) : NULL);
	json_object_object_add(obj, "redirect_requested",
			       json_object_new_string(sock_redirect_mode_name(st->requested)));
	json_object_object_add(obj, "redirect",
			       json_object_new_string(sock_redirect_mode_name(st->effective)));
	json_object_object_add(obj, "selftest", json_object_new_string(st->selftest));
	ports = json_object_new_array();
	for (size_t i = 0; i < st->n_ports; i++)
		json_object_array_add(ports, json_object_new_int(st->ports[i]));
	json_object_object_add(obj, "redirect_ports", ports);
	json_object_object_add(obj, "l7_proxy4", proxy_json(&st->proxy4));
	json_object_object_add(obj, "l7_proxy6", proxy_json(&st->proxy6));
	return obj;
}

static struct json_object *op_status(struct agent *a, struct json_object *req,
				     struct agent_error *e)
{
	struct json_object *reply = api_ok_reply(), *agent = json_object_new_object();
	const struct agent_stats *st = &a->stats;

	(void)req;
	(void)e;
	json_object_object_add(agent, "version", json_object_new_string(AGENT_VERSION));
	json_object_object_add(agent, "pid", json_object_new_int(getpid()));
	json_object_object_add(agent, "start_time", json_object_new_double(st->start_time));
	json_object_object_add(agent, "config",
			       a->config_path ? json_object_new_string(a->config_path) : NULL);
	json_object_object_add(agent, "state_file",
			       a->state_path ? json_object_new_string(a->state_path) : NULL);
	json_object_object_add(agent, "services", json_object_new_int64(a->desired.n_services));
	json_object_object_add(agent, "transactions", json_object_new_int64(st->transactions));
	json_object_object_add(agent, "transaction_errors",
			       json_object_new_int64(st->transaction_errors));
	json_object_object_add(agent, "reloads", json_object_new_int64(st->reloads));
	json_object_object_add(agent, "reload_errors", json_object_new_int64(st->reload_errors));
	json_object_object_add(agent, "health_transitions",
			       json_object_new_int64(st->health_transitions));
	json_object_object_add(agent, "api_requests", json_object_new_int64(st->api_requests));
	json_object_object_add(agent, "api_errors", json_object_new_int64(st->api_errors));
	json_object_object_add(reply, "agent", agent);
	json_object_object_add(reply, "policy", agent_api_policy_status(a));
	if (a->sock)
		json_object_object_add(reply, "socket_layer", socket_layer_json(a->sock));
	if (a->k8s)
		json_object_object_add(reply, "k8s", agent_k8s_status_json(a));
	return reply;
}

static struct json_object *op_backend_add(struct agent *a, struct json_object *req,
					  struct agent_error *e)
{
	return op_backend(a, req, "add", e);
}

static struct json_object *op_backend_del(struct agent *a, struct json_object *req,
					  struct agent_error *e)
{
	return op_backend(a, req, "del", e);
}

static struct json_object *op_backend_set(struct agent *a, struct json_object *req,
					  struct agent_error *e)
{
	return op_backend(a, req, "set", e);
}

static const struct api_op api_ops[] = {
	{ "service.add", op_service_add }, { "service.del", op_service_del },
	{ "backend.add", op_backend_add }, { "backend.del", op_backend_del },
	{ "backend.set", op_backend_set }, { "apply", op_apply },
	{ "reload", op_reload },	   { "health", op_health },
	{ "status", op_status },	   {},
};

static const struct api_op *op_find(const struct api_op *table, const char *name)
{
	for (const struct api_op *o = table; o->name; o++) {
		if (!strcmp(o->name, name))
			return o;
	}
	return NULL;
}

struct json_object *agent_api_handle(struct agent *a, struct json_object *req)
{
	struct agent_error e = {};
	struct json_object *reply;
	const char *op = api_field_string(req, "op", true, &e);
	const struct api_op *o = op ? op_find(api_ops, op) ?: op_find(api_policy_ops, op) : NULL;

	a->stats.api_requests++;
	if (o)
		reply = o->run(a, req, &e);
	else
		reply = op ? agent_api_error(2, "unknown op '%.64s'", op) : api_bad_request(&e);
	if (!json_object_get_boolean(json_object_object_get(reply, "ok")))
		a->stats.api_errors++;
	return reply;
}
