/* The control API's policy ops (docs/api.md): endpoints, rule sets, and
 * the denial events. Fields are parsed with the same text forms as the
 * config (policy.h), so the CLI and a config file say things one way. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent_api_internal.h"
#include "policy_maps.h"

/* Where the policy text parsers write why a field is wrong. */
#define POL_FIELD_ERR(e) ((e)->message), sizeof((e)->message)

static int field_text(struct json_object *req, const char *name, bool required, const char **text,
		      struct agent_error *e)
{
	*text = api_field_string(req, name, required, e);
	return !*text && e->message[0] ? -EINVAL : 0;
}

static int field_established(struct json_object *req, bool required, enum pol_established *out,
			     struct agent_error *e)
{
	const char *text;

	if (field_text(req, "established", required, &text, e))
		return -EINVAL;
	if (!text)
		return 0;
	if (!strcmp(text, "keep") || !strcmp(text, "recheck")) {
		*out = !strcmp(text, "keep") ? POL_EST_KEEP : POL_EST_RECHECK;
		return 0;
	}
	snprintf(e->message, sizeof(e->message), "established '%.32s': keep or recheck", text);
	return -EINVAL;
}

static int field_address(struct json_object *req, struct pol_prefix *addr, struct agent_error *e)
{
	const char *text;

	if (field_text(req, "address", true, &text, e))
		return -EINVAL;
	return pol_prefix_parse(text, false, addr, POL_FIELD_ERR(e));
}

static struct json_object *op_endpoint_add(struct agent *a, struct json_object *req,
					   struct agent_error *e)
{
	struct pol_endpoint ep = {};
	const char *labels, *netns;

	if (field_address(req, &ep.addr, e) || field_text(req, "labels", false, &labels, e) ||
	    field_text(req, "netns", false, &netns, e))
		return api_bad_request(e);
	if (labels && pol_labels_parse(labels, &ep.labels, POL_FIELD_ERR(e)))
		return api_bad_request(e);
	if (netns && (netns[0] != '/' || strlen(netns) >= sizeof(ep.netns))) {
		snprintf(e->message, sizeof(e->message),
			 "netns must be an absolute path shorter than %zu", sizeof(ep.netns));
		return api_bad_request(e);
	}
	if (netns)
		strcpy(ep.netns, netns);
	return api_done(agent_endpoint_add(a, &ep, e), e);
}

static struct json_object *op_endpoint_del(struct agent *a, struct json_object *req,
					   struct agent_error *e)
{
	struct pol_prefix addr;

	if (field_address(req, &addr, e))
		return api_bad_request(e);
	return api_done(agent_endpoint_del(a, &addr, e), e);
}

/* "host", "world", a CIDR or an endpoint label set: who @id stands for. */
static void identity_text(const struct agent *a, uint32_t id, char *buf, size_t len)
{
	const struct pol_ident_table *t = &a->policy.idents;

	snprintf(buf, len, "%s", id == SL_ID_HOST ? "host" : id == SL_ID_WORLD ? "world" : "");
	for (size_t i = 0; i < t->n; i++) {
		if (t->ids[i].id != id)
			continue;
		if (t->ids[i].kind == POL_IDENT_CIDR)
			pol_prefix_format(&t->ids[i].cidr, buf, len);
		else
			pol_labels_format(&t->ids[i].labels, buf, len);
	}
}

static struct json_object *op_endpoint_list(struct agent *a, struct json_object *req,
					    struct agent_error *e)
{
	const struct pol_state *st = &a->desired.policy;
	struct json_object *reply = api_ok_reply(), *list = json_object_new_array(), *obj;
	char text[1024];

	(void)req;
	(void)e;
	for (size_t i = 0; i < st->n_endpoints; i++) {
		const struct pol_endpoint *ep = &st->endpoints[i];

		obj = json_object_new_object();
		pol_prefix_format(&ep->addr, text, sizeof(text));
		json_object_object_add(obj, "address", json_object_new_string(text));
		pol_labels_format(&ep->labels, text, sizeof(text));
		json_object_object_add(obj, "labels", json_object_new_string(text));
		json_object_object_add(obj, "netns",
				       ep->netns[0] ? json_object_new_string(ep->netns) : NULL);
		json_object_object_add(
			obj, "identity",
			json_object_new_int64(pol_ident_of_labels(&a->policy.idents, &ep->labels)));
		json_object_array_add(list, obj);
	}
	json_object_object_add(reply, "endpoints", list);
	return reply;
}

/* The rule a policy.add request describes (its id 0 unless given). */
static int field_rule(struct json_object *req, struct pol_rule *rule, struct agent_error *e)
{
	const char *action, *from, *to, *ports, *proto;

	if (field_text(req, "action", true, &action, e) ||
	    field_text(req, "from", true, &from, e) || field_text(req, "to", true, &to, e) ||
	    field_text(req, "ports", false, &ports, e) ||
	    field_text(req, "protocol", false, &proto, e) ||
	    api_field_u32(req, "id", false, INT32_MAX, &rule->id, e))
		return -EINVAL;
	if (strcmp(action, "allow") && strcmp(action, "deny")) {
		snprintf(e->message, sizeof(e->message), "action '%.32s': allow or deny", action);
		return -EINVAL;
	}
	rule->action = !strcmp(action, "allow") ? POL_ALLOW : POL_DENY;
	rule->protos = POL_ANY_PROTO;
	if (pol_peer_parse(from, &rule->from, POL_FIELD_ERR(e)) ||
	    pol_selector_parse(to, &rule->to, POL_FIELD_ERR(e)) ||
	    (ports && pol_ports_parse(ports, rule->ports, &rule->n_ports, POL_FIELD_ERR(e))) ||
	    (proto && pol_protos_parse(proto, &rule->protos, POL_FIELD_ERR(e))))
		return -EINVAL;
	return 0;
}

static struct json_object *op_policy_add(struct agent *a, struct json_object *req,
					 struct agent_error *e)
{
	enum pol_established established = POL_EST_KEEP;
	struct pol_rule rule = {};
	struct json_object *reply;
	const char *name;
	uint32_t id;
	int err;

	if (field_text(req, "ruleset", true, &name, e) || field_rule(req, &rule, e) ||
	    field_established(req, false, &established, e))
		return api_bad_request(e);
	err = agent_policy_add(a, name, established, &rule, &id, e);
	reply = api_done(err, e);
	if (!err)
		json_object_object_add(reply, "id", json_object_new_int64(id));
	return reply;
}

/* A number in 1..@max, when present: 0 would read as "absent" to callers
 * for which absent means more (policy.del: the whole rule set). */
static int field_positive(struct json_object *req, const char *name, uint32_t max, uint32_t *out,
			  struct agent_error *e)
{
	struct json_object *v;
	uint32_t value = 0;

	if (!json_object_object_get_ex(req, name, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (api_field_u32(req, name, true, max, &value, e) || !value) {
		snprintf(e->message, sizeof(e->message), "field \"%s\" must be an integer 1..%u",
			 name, max);
		return -EINVAL;
	}
	*out = value;
	return 0;
}

static struct json_object *op_policy_del(struct agent *a, struct json_object *req,
					 struct agent_error *e)
{
	const char *name;
	uint32_t id = 0;

	if (field_text(req, "ruleset", true, &name, e) ||
	    field_positive(req, "id", POL_RULE_ID_MAX, &id, e))
		return api_bad_request(e);
	return api_done(agent_policy_del(a, name, id, e), e);
}

static struct json_object *op_policy_set(struct agent *a, struct json_object *req,
					 struct agent_error *e)
{
	enum pol_established established = POL_EST_KEEP;
	const char *name;

	if (field_text(req, "ruleset", true, &name, e) ||
	    field_established(req, true, &established, e))
		return api_bad_request(e);
	return api_done(agent_policy_set(a, name, established, e), e);
}

static struct json_object *rule_json(const struct agent *a, const struct pol_rule *r)
{
	struct json_object *obj = json_object_new_object();
	uint64_t denials = 0;
	char text[1024];

	json_object_object_add(obj, "id", json_object_new_int64(r->id));
	json_object_object_add(obj, "action", json_object_new_string(pol_action_name(r->action)));
	pol_peer_format(&r->from, text, sizeof(text));
	json_object_object_add(obj, "from", json_object_new_string(text));
	pol_selector_format(&r->to, text, sizeof(text));
	json_object_object_add(obj, "to", json_object_new_string(text));
	pol_ports_format(r->ports, r->n_ports, text, sizeof(text));
	json_object_object_add(obj, "ports", json_object_new_string(text));
	json_object_object_add(obj, "protocol", json_object_new_string(pol_protos_name(r->protos)));
	pol_rule_denials(a->maps, r->id, &denials);
	json_object_object_add(obj, "denials", json_object_new_int64((int64_t)denials));
	return obj;
}

static struct json_object *identities_json(const struct agent *a)
{
	const struct pol_ident_table *t = &a->policy.idents;
	struct json_object *list = json_object_new_array(), *obj;
	char text[1024];

	for (size_t i = 0; i < t->n; i++) {
		obj = json_object_new_object();
		json_object_object_add(obj, "id", json_object_new_int64(t->ids[i].id));
		identity_text(a, t->ids[i].id, text, sizeof(text));
		json_object_object_add(obj, t->ids[i].kind == POL_IDENT_CIDR ? "cidr" : "labels",
				       json_object_new_string(text));
		json_object_array_add(list, obj);
	}
	return list;
}

static struct json_object *op_policy_list(struct agent *a, struct json_object *req,
					  struct agent_error *e)
{
	const struct pol_state *st = &a->desired.policy;
	struct json_object *reply = api_ok_reply(), *sets = json_object_new_array(), *obj, *rules;

	(void)req;
	(void)e;
	for (size_t i = 0; i < st->n_rulesets; i++) {
		const struct pol_ruleset *rs = &st->rulesets[i];

		obj = json_object_new_object();
		rules = json_object_new_array();
		json_object_object_add(obj, "name", json_object_new_string(rs->name));
		json_object_object_add(
			obj, "established",
			json_object_new_string(pol_established_name(rs->established)));
		for (size_t j = 0; j < rs->n_rules; j++)
			json_object_array_add(rules, rule_json(a, &rs->rules[j]));
		json_object_object_add(obj, "rules", rules);
		json_object_array_add(sets, obj);
	}
	json_object_object_add(reply, "generation", json_object_new_int64(a->policy.gen));
	json_object_object_add(reply, "rulesets", sets);
	json_object_object_add(reply, "identities", identities_json(a));
	return reply;
}

/* ---- denial events ---- */

static const char *site_name(__u8 site)
{
	return site == SL_POL_SITE_CONNECT   ? "connect"
	       : site == SL_POL_SITE_RECHECK ? "recheck"
					     : "xdp";
}

/* The rule set rule @id belongs to, "" for none. */
static const char *ruleset_of(const struct agent *a, uint32_t id)
{
	const struct pol_state *st = &a->desired.policy;

	for (size_t i = 0; id && i < st->n_rulesets; i++) {
		for (size_t j = 0; j < st->rulesets[i].n_rules; j++) {
			if (st->rulesets[i].rules[j].id == id)
				return st->rulesets[i].name;
		}
	}
	return "";
}

static void event_addr(struct json_object *obj, const char *key, const struct sl_pol_event *ev,
		       const __be32 *addr)
{
	char text[INET6_ADDRSTRLEN] = "";

	if (addr[0] | addr[1] | addr[2] | addr[3])
		inet_ntop(ev->family == SL_AF_INET ? AF_INET : AF_INET6, addr, text, sizeof(text));
	json_object_object_add(obj, key, text[0] ? json_object_new_string(text) : NULL);
}

static struct json_object *event_json(const struct agent *a, const struct sl_pol_event *ev,
				      double boot_time)
{
	struct json_object *obj = json_object_new_object();
	char text[1024];

	json_object_object_add(obj, "time", json_object_new_double(boot_time + ev->ts_ns / 1e9));
	json_object_object_add(obj, "site", json_object_new_string(site_name(ev->site)));
	json_object_object_add(obj, "verdict",
			       json_object_new_string(ev->verdict == SL_POL_DENY_RULE
							      ? "deny_rule"
							      : "default_deny"));
	json_object_object_add(obj, "rule", json_object_new_int64(ev->rule_id));
	json_object_object_add(obj, "ruleset", json_object_new_string(ruleset_of(a, ev->rule_id)));
	json_object_object_add(obj, "protocol",
			       json_object_new_string(ev->proto == SL_PROTO_TCP ? "tcp" : "udp"));
	event_addr(obj, "src", ev, ev->saddr);
	json_object_object_add(obj, "sport", json_object_new_int(ntohs(ev->sport)));
	event_addr(obj, "dst", ev, ev->daddr);
	json_object_object_add(obj, "dport", json_object_new_int(ntohs(ev->dport)));
	json_object_object_add(obj, "src_identity", json_object_new_int64(ev->src_id));
	identity_text(a, ev->src_id, text, sizeof(text));
	json_object_object_add(obj, "src_labels", json_object_new_string(text));
	json_object_object_add(obj, "dst_identity", json_object_new_int64(ev->dst_id));
	identity_text(a, ev->dst_id, text, sizeof(text));
	json_object_object_add(obj, "dst_labels", json_object_new_string(text));
	return obj;
}

/* policy.drops: the newest @limit events (default 100), oldest first. */
static struct json_object *op_policy_drops(struct agent *a, struct json_object *req,
					   struct agent_error *e)
{
	struct agent_policy *p = &a->policy;
	double boot = agent_now_s(CLOCK_REALTIME) - agent_now_s(CLOCK_MONOTONIC);
	struct json_object *reply, *list;
	uint32_t limit = 100;
	uint64_t kept, first;

	if (field_positive(req, "limit", AGENT_POL_EVENTS, &limit, e))
		return api_bad_request(e);
	agent_policy_events_read(p);
	kept = p->n_events < AGENT_POL_EVENTS ? p->n_events : AGENT_POL_EVENTS;
	if (kept > limit)
		kept = limit;
	first = p->n_events - kept;
	reply = api_ok_reply();
	list = json_object_new_array();
	for (uint64_t i = first; i < p->n_events; i++)
		json_object_array_add(list, event_json(a, &p->ring[i % AGENT_POL_EVENTS], boot));
	json_object_object_add(reply, "events", list);
	json_object_object_add(reply, "total", json_object_new_int64((int64_t)p->n_events));
	return reply;
}

struct json_object *agent_api_policy_status(const struct agent *a)
{
	const struct pol_state *st = &a->desired.policy;
	struct json_object *obj = json_object_new_object();
	size_t rules = 0;

	for (size_t i = 0; i < st->n_rulesets; i++)
		rules += st->rulesets[i].n_rules;
	json_object_object_add(obj, "generation", json_object_new_int64(a->policy.gen));
	json_object_object_add(obj, "endpoints", json_object_new_int64((int64_t)st->n_endpoints));
	json_object_object_add(obj, "identities",
			       json_object_new_int64((int64_t)a->policy.idents.n));
	json_object_object_add(obj, "rulesets", json_object_new_int64((int64_t)st->n_rulesets));
	json_object_object_add(obj, "rules", json_object_new_int64((int64_t)rules));
	json_object_object_add(obj, "denial_events",
			       json_object_new_int64((int64_t)a->policy.n_events));
	return obj;
}

const struct api_op api_policy_ops[] = {
	{ "endpoint.add", op_endpoint_add },
	{ "endpoint.del", op_endpoint_del },
	{ "endpoint.list", op_endpoint_list },
	{ "policy.add", op_policy_add },
	{ "policy.del", op_policy_del },
	{ "policy.set", op_policy_set },
	{ "policy.list", op_policy_list },
	{ "policy.drops", op_policy_drops },
	{},
};
