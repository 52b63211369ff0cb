/* `sluice endpoint ...` and `sluice policy ...`: endpoints with labels,
 * rule sets of allow/deny rules, and the denials the data path reported.
 * Arguments are checked here with the agent's own parsers (policy.h), so
 * a malformed one is a usage error before anything is sent. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "policy.h"

struct policy_opts {
	const char *labels, *netns, *action, *from, *to, *ports, *protocol, *established;
	__u32 id, limit;
	bool id_set, limit_set;
};

enum {
	OPT_LABELS = 1,
	OPT_NETNS,
	OPT_ACTION,
	OPT_FROM,
	OPT_TO,
	OPT_PORTS,
	OPT_PROTOCOL,
	OPT_ESTABLISHED,
	OPT_ID,
	OPT_LIMIT,
};

/* Options of @argv into @po; @allowed is a bit mask of 1 << OPT_*. */
static int policy_options(struct cli *cli, int argc, char **argv, unsigned int allowed,
			  struct policy_opts *po)
{
	static const struct option opts[] = {
		{ "labels", required_argument, NULL, OPT_LABELS },
		{ "netns", required_argument, NULL, OPT_NETNS },
		{ "action", required_argument, NULL, OPT_ACTION },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "ports", required_argument, NULL, OPT_PORTS },
		{ "protocol", required_argument, NULL, OPT_PROTOCOL },
		{ "established", required_argument, NULL, OPT_ESTABLISHED },
		{ "id", required_argument, NULL, OPT_ID },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{},
	};
	const char **text[] = { [OPT_LABELS] = &po->labels,
				[OPT_NETNS] = &po->netns,
				[OPT_ACTION] = &po->action,
				[OPT_FROM] = &po->from,
				[OPT_TO] = &po->to,
				[OPT_PORTS] = &po->ports,
				[OPT_PROTOCOL] = &po->protocol,
				[OPT_ESTABLISHED] = &po->established };
	int opt, index, status = CLI_OK;

	optind = 0; /* glibc: restart scanning for this verb's argv */
	opterr = 0;
	while (!status && (opt = getopt_long(argc, argv, "", opts, &index)) != -1) {
		if (opt == '?')
			return cli_bad_option(cli, argv);
		if (!(allowed & (1u << opt)))
			return cli_error(cli, CLI_USAGE, 0, "see `sluice help`",
					 "option --%s does not go with %s", opts[index].name,
					 argv[0]);
		if (opt == OPT_ID)
			status = cli_parse_u32(cli, "--id", optarg, 1, INT32_MAX, &po->id);
		else if (opt == OPT_LIMIT)
			status = cli_parse_u32(cli, "--limit", optarg, 1, 1024, &po->limit);
		else
			*text[opt] = optarg;
		po->id_set |= opt == OPT_ID;
		po->limit_set |= opt == OPT_LIMIT;
	}
	return status;
}

static int usage(struct cli *cli, int argc, int want, const char *text)
{
	if (argc - optind != want)
		return cli_error(cli, CLI_USAGE, 0, NULL, "usage: sluice %s", text);
	return CLI_OK;
}

/* A parser's verdict on @what as a usage error. */
static int check(struct cli *cli, int ret, const char *what, const char *why)
{
	return ret ? cli_error(cli, CLI_USAGE, 0, NULL, "%s: %s", what, why) : CLI_OK;
}

static struct json_object *request(const char *op)
{
	struct json_object *req = json_object_new_object();

	json_object_object_add(req, "op", json_object_new_string(op));
	return req;
}

static void add_text(struct json_object *req, const char *key, const char *value)
{
	if (value)
		json_object_object_add(req, key, json_object_new_string(value));
}

/* ---- endpoints ---- */

static int endpoint_add(struct cli *cli, int argc, char **argv)
{
	struct policy_opts po = {};
	struct pol_labels labels;
	struct pol_prefix addr;
	char why[POL_ERR_MAX];
	struct json_object *req;
	int status;

	status = policy_options(cli, argc, argv, 1u << OPT_LABELS | 1u << OPT_NETNS, &po);
	if (!status)
		status = usage(cli, argc, 1, "endpoint add ADDR [--labels K=V,...] [--netns PATH]");
	if (!status)
		status = check(cli, pol_prefix_parse(argv[optind], false, &addr, why, sizeof(why)),
			       argv[optind], why);
	if (!status && po.labels)
		status = check(cli, pol_labels_parse(po.labels, &labels, why, sizeof(why)),
			       "--labels", why);
	if (!status && po.netns && po.netns[0] != '/')
		status = cli_error(cli, CLI_USAGE, 0, "e.g. /run/netns/web or /proc/PID/ns/net",
				   "--netns: not an absolute path");
	if (status)
		return status;
	req = request("endpoint.add");
	add_text(req, "address", argv[optind]);
	add_text(req, "labels", po.labels);
	add_text(req, "netns", po.netns);
	return cli_request(cli, req, NULL);
}

static int endpoint_del(struct cli *cli, int argc, char **argv)
{
	struct pol_prefix addr;
	char why[POL_ERR_MAX];
	struct json_object *req;
	int status;

	status = policy_options(cli, argc, argv, 0, &(struct policy_opts){});
	if (!status)
		status = usage(cli, argc, 1, "endpoint del ADDR");
	if (!status)
		status = check(cli, pol_prefix_parse(argv[optind], false, &addr, why, sizeof(why)),
			       argv[optind], why);
	if (status)
		return status;
	req = request("endpoint.del");
	add_text(req, "address", argv[optind]);
	return cli_request(cli, req, NULL);
}

static const char *str(struct json_object *obj, const char *key)
{
	const char *s = json_object_get_string(json_object_object_get(obj, key));

	return s ? s : "-";
}

static long long num(struct json_object *obj, const char *key)
{
	return (long long)json_object_get_int64(json_object_object_get(obj, key));
}

/* Ask for @op with no arguments beyond @argv's options; print JSON or
 * hand the reply to @print. */
static int list_verb(struct cli *cli, struct json_object *req, void (*print)(struct json_object *))
{
	struct json_object *reply;
	int status = cli_request(cli, req, &reply);

	if (status)
		return status;
	if (cli->json) {
		json_object_object_del(reply, "ok"); /* as `apply -j`: the data only */
		cli_print_json(cli, reply);
	} else {
		print(reply);
		json_object_put(reply);
	}
	return CLI_OK;
}

static void print_endpoints(struct json_object *reply)
{
	struct json_object *list = json_object_object_get(reply, "endpoints");

	printf("%-40s %-9s %-30s %s\n", "ADDRESS", "IDENTITY", "LABELS", "NETNS");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *ep = json_object_array_get_idx(list, i);

		printf("%-40s %-9lld %-30s %s\n", str(ep, "address"), num(ep, "identity"),
		       str(ep, "labels"), str(ep, "netns"));
	}
}

static int endpoint_list(struct cli *cli, int argc, char **argv)
{
	int status = policy_options(cli, argc, argv, 0, &(struct policy_opts){});

	if (!status)
		status = usage(cli, argc, 0, "endpoint list");
	return status ? status : list_verb(cli, request("endpoint.list"), print_endpoints);
}

/* ---- rule sets ---- */

static int established_check(struct cli *cli, const char *text)
{
	if (text && strcmp(text, "keep") && strcmp(text, "recheck"))
		return cli_error(cli, CLI_USAGE, 0, NULL, "--established: keep or recheck");
	return CLI_OK;
}

/* The rule the options describe, checked as the agent will. */
static int rule_check(struct cli *cli, const struct policy_opts *po)
{
	struct pol_rule rule = {};
	char why[POL_ERR_MAX];
	int status = CLI_OK;

	if (!po->action || !po->from || !po->to)
		return cli_error(cli, CLI_USAGE, 0, "see `sluice help`",
				 "policy add needs --action, --from and --to");
	if (strcmp(po->action, "allow") && strcmp(po->action, "deny"))
		status = cli_error(cli, CLI_USAGE, 0, NULL, "--action: allow or deny");
	if (!status)
		status = check(cli, pol_peer_parse(po->from, &rule.from, why, sizeof(why)),
			       "--from", why);
	if (!status)
		status = check(cli, pol_selector_parse(po->to, &rule.to, why, sizeof(why)), "--to",
			       why);
	if (!status && po->ports)
		status = check(
			cli,
			pol_ports_parse(po->ports, rule.ports, &rule.n_ports, why, sizeof(why)),
			"--ports", why);
	if (!status && po->protocol)
		status = check(cli, pol_protos_parse(po->protocol, &rule.protos, why, sizeof(why)),
			       "--protocol", why);
	return status ?: established_check(cli, po->established);
}

static int policy_add(struct cli *cli, int argc, char **argv)
{
	const unsigned int allowed = 1u << OPT_ACTION | 1u << OPT_FROM | 1u << OPT_TO |
				     1u << OPT_PORTS | 1u << OPT_PROTOCOL | 1u << OPT_ESTABLISHED |
				     1u << OPT_ID;
	struct policy_opts po = {};
	struct json_object *req, *reply;
	int status;

	status = policy_options(cli, argc, argv, allowed, &po);
	if (!status)
		status = usage(
			cli, argc, 1,
			"policy add RULESET --action allow|deny --from PEER --to SELECTOR "
			"[--ports P,A-B] [--protocol tcp|udp|any] [--established keep|recheck] "
			"[--id N]");
	if (!status)
		status = rule_check(cli, &po);
	if (status)
		return status;
	req = request("policy.add");
	add_text(req, "ruleset", argv[optind]);
	add_text(req, "action", po.action);
	add_text(req, "from", po.from);
	add_text(req, "to", po.to);
	add_text(req, "ports", po.ports);
	add_text(req, "protocol", po.protocol);
	add_text(req, "established", po.established);
	if (po.id_set)
		json_object_object_add(req, "id", json_object_new_int64(po.id));
	status = cli_request(cli, req, &reply);
	if (status)
		return status;
	if (cli->json) {
		json_object_object_del(reply, "ok");
		cli_print_json(cli, reply);
	} else {
		printf("rule %lld added to %s\n", num(reply, "id"), argv[optind]);
		json_object_put(reply);
	}
	return CLI_OK;
}

static int policy_del(struct cli *cli, int argc, char **argv)
{
	struct json_object *req;
	__u32 id = 0;
	int status;

	status = policy_options(cli, argc, argv, 0, &(struct policy_opts){});
	if (!status && argc - optind != 1 && argc - optind != 2)
		status =
			cli_error(cli, CLI_USAGE, 0, NULL, "usage: sluice policy del RULESET [ID]");
	if (!status && argc - optind == 2)
		status = cli_parse_u32(cli, "ID", argv[optind + 1], 1, INT32_MAX, &id);
	if (status)
		return status;
	req = request("policy.del");
	add_text(req, "ruleset", argv[optind]);
	if (id)
		json_object_object_add(req, "id", json_object_new_int64(id));
	return cli_request(cli, req, NULL);
}

static int policy_set(struct cli *cli, int argc, char **argv)
{
	struct policy_opts po = {};
	struct json_object *req;
	int status;

	status = policy_options(cli, argc, argv, 1u << OPT_ESTABLISHED, &po);
	if (!status)
		status = usage(cli, po.established ? argc : -1, 1,
			       "policy set RULESET --established keep|recheck");
	if (!status)
		status = established_check(cli, po.established);
	if (status)
		return status;
	req = request("policy.set");
	add_text(req, "ruleset", argv[optind]);
	add_text(req, "established", po.established);
	return cli_request(cli, req, NULL);
}

static void print_rulesets(struct json_object *reply)
{
	struct json_object *sets = json_object_object_get(reply, "rulesets"), *ids;

	printf("policy generation %lld\n", num(reply, "generation"));
	for (size_t i = 0; i < json_object_array_length(sets); i++) {
		struct json_object *rs = json_object_array_get_idx(sets, i);
		struct json_object *rules = json_object_object_get(rs, "rules");

		printf("rule set %s (established: %s)\n", str(rs, "name"), str(rs, "established"));
		for (size_t j = 0; j < json_object_array_length(rules); j++) {
			struct json_object *r = json_object_array_get_idx(rules, j);

			printf("  %-5lld %-5s from %-24s to %-24s ports %-12s %-4s denials %lld\n",
			       num(r, "id"), str(r, "action"), str(r, "from"), str(r, "to"),
			       str(r, "ports"), str(r, "protocol"), num(r, "denials"));
		}
	}
	ids = json_object_object_get(reply, "identities");
	printf("identities:\n");
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		struct json_object *id = json_object_array_get_idx(ids, i);
		struct json_object *cidr = json_object_object_get(id, "cidr");

		printf("  %-9lld %s\n", num(id, "id"),
		       cidr ? json_object_get_string(cidr) : str(id, "labels"));
	}
}

static int policy_list(struct cli *cli, int argc, char **argv)
{
	int status = policy_options(cli, argc, argv, 0, &(struct policy_opts){});

	if (!status)
		status = usage(cli, argc, 0, "policy list");
	return status ? status : list_verb(cli, request("policy.list"), print_rulesets);
}

static void print_drops(struct json_object *reply)
{
	struct json_object *events = json_object_object_get(reply, "events");
	char when[32];

	printf("%-19s %-7s %-12s %-16s %-4s %s\n", "TIME", "SITE", "VERDICT", "RULE", "PROTO",
	       "SOURCE -> DESTINATION");
	for (size_t i = 0; i < json_object_array_length(events); i++) {
		struct json_object *ev = json_object_array_get_idx(events, i);
		time_t t = (time_t)json_object_get_double(json_object_object_get(ev, "time"));
		char rule[80];

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", localtime(&t));
		if (num(ev, "rule"))
			snprintf(rule, sizeof(rule), "%lld (%s)", num(ev, "rule"),
				 str(ev, "ruleset"));
		else
			snprintf(rule, sizeof(rule), "default");
		printf("%-19s %-7s %-12s %-16s %-4s %s:%lld [%s] -> %s:%lld [%s]\n", when,
		       str(ev, "site"), str(ev, "verdict"), rule, str(ev, "protocol"),
		       str(ev, "src"), num(ev, "sport"), str(ev, "src_labels"), str(ev, "dst"),
		       num(ev, "dport"), str(ev, "dst_labels"));
	}
	printf("%lld denial events since sluiced started\n", num(reply, "total"));
}

static int policy_drops(struct cli *cli, int argc, char **argv)
{
	struct policy_opts po = {};
	struct json_object *req;
	int status;

	status = policy_options(cli, argc, argv, 1u << OPT_LIMIT, &po);
	if (!status)
		status = usage(cli, argc, 0, "policy drops [--limit N]");
	if (status)
		return status;
	req = request("policy.drops");
	if (po.limit_set)
		json_object_object_add(req, "limit", json_object_new_int64(po.limit));
	return list_verb(cli, req, print_drops);
}

static const struct cli_cmd endpoint_cmds[] = {
	{ "add", endpoint_add, "ADDR [--labels K=V,...] [--netns PATH]",
	  "declare a workload address and its labels" },
	{ "del", endpoint_del, "ADDR", "forget an endpoint" },
	{ "list", endpoint_list, "[--json]", "endpoints, labels and identities" },
	{},
};

static const struct cli_cmd policy_cmds[] = {
	{ "add", policy_add,
	  "RULESET --action allow|deny --from PEER --to SELECTOR [--ports P] "
	  "[--protocol P] [--established keep|recheck] [--id N]",
	  "add a rule (PEER: any, world, host, CIDR or K=V,...)" },
	{ "del", policy_del, "RULESET [ID]", "delete a rule, or the whole rule set" },
	{ "set", policy_set, "RULESET --established keep|recheck",
	  "what a change does to established flows" },
	{ "list", policy_list, "[--json]", "rule sets, rules with their denials, identities" },
	{ "drops", policy_drops, "[--limit N]", "the newest denials (rate-limited events)" },
	{},
};

int cmd_endpoint(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, endpoint_cmds, "endpoint", argc - 1, argv + 1);
}

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, policy_cmds, "policy", argc - 1, argv + 1);
}
