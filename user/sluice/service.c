/* `sluice service ...` and `sluice backend ...`: change and list the load
 * balancer's services and backends through the LB library. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "cli.h"
#include "sluice/limits.h"

/* Parse the verb's options: --name, --affinity, --weight, --l7 (those @allowed). */
struct verb_opts {
	const char *name;
	const char *l7;
	__u32 affinity_s;
	__u32 weight;
	bool weight_set;
};

enum { OPT_NAME = 1, OPT_AFFINITY = 2, OPT_WEIGHT = 4, OPT_L7 = 8 };

/* What getopt_long refused: optopt is 0 for an unknown long option, the
 * option's value (OPT_*, below ' ') for a known one without its argument,
 * else the letter of an unknown short option. */
int cli_bad_option(struct cli *cli, char **argv)
{
	if (optopt > 0 && optopt < ' ')
		return cli_error(cli, CLI_USAGE, 0, "see `sluice help`", "%s needs a value",
				 argv[optind - 1]);
	if (optopt)
		return cli_error(cli, CLI_USAGE, 0, "see `sluice help`", "unknown option -%c",
				 optopt);
	return cli_error(cli, CLI_USAGE, 0, "see `sluice help`", "unknown option '%s'",
			 argv[optind - 1]);
}

static int verb_options(struct cli *cli, int argc, char **argv, int allowed, struct verb_opts *vo)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, OPT_NAME },
		{ "affinity", required_argument, NULL, OPT_AFFINITY },
		{ "weight", required_argument, NULL, OPT_WEIGHT },
		{ "l7", required_argument, NULL, OPT_L7 },
		{},
	};
	int opt, index, status = CLI_OK;

	optind = 0; /* glibc: restart scanning for this verb's argv */
	opterr = 0;
	while (!status && (opt = getopt_long(argc, argv, "", opts, &index)) != -1) {
		if (opt == '?')
			return cli_bad_option(cli, argv);
		if (!(opt & allowed))
			return cli_error(cli, CLI_USAGE, 0, "see `sluice help`",
					 "option --%s does not go with %s", opts[index].name,
					 argv[0]);
		if (opt == OPT_NAME)
			vo->name = optarg;
		else if (opt == OPT_L7 && strcmp(optarg, "http"))
			status = cli_error(cli, CLI_USAGE, 0, NULL,
					   "--l7: unknown protocol '%s' (http)", optarg);
		else if (opt == OPT_L7)
			vo->l7 = optarg;
		else if (opt == OPT_AFFINITY)
			status =
				cli_parse_u32(cli, "--affinity", optarg, 1, 86400, &vo->affinity_s);
		else
			status = cli_parse_u32(cli, "--weight", optarg, 0, LB_WEIGHT_MAX,
					       &vo->weight);
		vo->weight_set |= opt == OPT_WEIGHT;
	}
	return status;
}

/* The positional arguments after options: exactly @want of them. */
static int positionals(struct cli *cli, int argc, int want, const char *usage)
{
	if (argc - optind != want)
		return cli_error(cli, CLI_USAGE, 0, NULL, "usage: sluice %s", usage);
	return CLI_OK;
}

static int parse_service(struct cli *cli, const char *text, struct sl_svc_key *key)
{
	if (addr_parse_service(text, key))
		return cli_error(
			cli, CLI_USAGE, 0,
			"write VIP:PORT/PROTO, e.g. 198.19.0.10:80/tcp or [fd00::10]:53/udp",
			"invalid service '%s'", text);
	return CLI_OK;
}

static int parse_backend(struct cli *cli, const char *text, struct addr_port *ap)
{
	if (addr_parse_endpoint(text, ap))
		return cli_error(cli, CLI_USAGE, 0,
				 "write ADDR:PORT, e.g. 198.18.1.2:8080 or [fd00::2]:8080",
				 "invalid backend '%s'", text);
	return CLI_OK;
}

/* A request for the agent: {"op": @op, "service": @svc}. */
static struct json_object *request(const char *op, const char *svc)
{
	struct json_object *req = json_object_new_object();

	json_object_object_add(req, "op", json_object_new_string(op));
	json_object_object_add(req, "service", json_object_new_string(svc));
	return req;
}

static int service_add(struct cli *cli, int argc, char **argv)
{
	struct verb_opts vo = {};
	struct sl_svc_key key;
	struct json_object *req;
	int status;

	status = verb_options(cli, argc, argv, OPT_NAME | OPT_AFFINITY | OPT_L7, &vo);
	if (!status)
		status = positionals(
			cli, argc, 1,
			"service add VIP:PORT/PROTO [--name NAME] [--affinity SECONDS] [--l7 http]");
	if (!status)
		status = parse_service(cli, argv[optind], &key);
	if (!status && vo.name && strlen(vo.name) >= SL_SVC_NAME_MAX)
		status = cli_error(cli, CLI_USAGE, 0, NULL, "--name: longer than %d characters",
				   SL_SVC_NAME_MAX - 1);
	if (status)
		return status;
	req = request("service.add", argv[optind]);
	if (vo.name)
		json_object_object_add(req, "name", json_object_new_string(vo.name));
	if (vo.affinity_s)
		json_object_object_add(req, "affinity", json_object_new_int64(vo.affinity_s));
	if (vo.l7)
		json_object_object_add(req, "l7", json_object_new_string(vo.l7));
	return cli_request(cli, req, NULL);
}

static int service_del(struct cli *cli, int argc, char **argv)
{
	struct sl_svc_key key;
	int status;

	status = verb_options(cli, argc, argv, 0, &(struct verb_opts){});
	if (!status)
		status = positionals(cli, argc, 1, "service del VIP:PORT/PROTO");
	if (!status)
		status = parse_service(cli, argv[optind], &key);
	if (status)
		return status;
	return cli_request(cli, request("service.del", argv[optind]), NULL);
}

/* backend add|del|set share everything but the op. */
enum backend_verb { BACKEND_ADD, BACKEND_DEL, BACKEND_SET };

static int backend_change(struct cli *cli, int argc, char **argv, enum backend_verb verb)
{
	static const char *const usages[] = {
		"backend add VIP:PORT/PROTO ADDR:PORT [--weight N]",
		"backend del VIP:PORT/PROTO ADDR:PORT",
		"backend set VIP:PORT/PROTO ADDR:PORT --weight N",
	};
	static const char *const ops[] = { "backend.add", "backend.del", "backend.set" };
	struct verb_opts vo = { .weight = 1 };
	struct json_object *req;
	struct sl_svc_key key;
	struct addr_port ap;
	int status;

	status = verb_options(cli, argc, argv, verb == BACKEND_DEL ? 0 : OPT_WEIGHT, &vo);
	if (!status)
		status = positionals(cli, argc, 2, usages[verb]);
	if (!status && verb == BACKEND_SET && !vo.weight_set)
		status = cli_error(cli, CLI_USAGE, 0, NULL, "usage: sluice %s", usages[verb]);
	if (!status)
		status = parse_service(cli, argv[optind], &key);
	if (!status)
		status = parse_backend(cli, argv[optind + 1], &ap);
	if (status)
		return status;
	req = request(ops[verb], argv[optind]);
	json_object_object_add(req, "backend", json_object_new_string(argv[optind + 1]));
	if (verb != BACKEND_DEL)
		json_object_object_add(req, "weight", json_object_new_int64(vo.weight));
	return cli_request(cli, req, NULL);
}

static int backend_add(struct cli *cli, int argc, char **argv)
{
	return backend_change(cli, argc, argv, BACKEND_ADD);
}

static int backend_del(struct cli *cli, int argc, char **argv)
{
	return backend_change(cli, argc, argv, BACKEND_DEL);
}

static int backend_set(struct cli *cli, int argc, char **argv)
{
	return backend_change(cli, argc, argv, BACKEND_SET);
}

/* ---- service list: built as JSON, printed as JSON or as a table ---- */

struct json_object *cli_traffic_json(const struct sl_traffic *t)
{
	struct json_object *obj = json_object_new_object();

	json_object_object_add(obj, "new_flows", json_object_new_uint64(t->new_flows));
	json_object_object_add(obj, "fwd_packets", json_object_new_uint64(t->fwd_packets));
	json_object_object_add(obj, "fwd_bytes", json_object_new_uint64(t->fwd_bytes));
	json_object_object_add(obj, "rev_packets", json_object_new_uint64(t->rev_packets));
	json_object_object_add(obj, "rev_bytes", json_object_new_uint64(t->rev_bytes));
	return obj;
}

struct list_ctx {
	struct lb_maps *maps;
	struct json_object *services;
	struct json_object **backends; /* by service id: its "backends" array */
};

static int backend_json(__u32 id, const struct sl_backend *be, void *ctx)
{
	struct addr_port ap = { .port = be->port, .family = be->family };
	struct json_object *obj = json_object_new_object();
	struct list_ctx *list = ctx;
	char text[ADDR_STR_MAX];
	struct sl_traffic t;
	int err;

	if (be->svc_id >= SL_MAX_SERVICES || !list->backends[be->svc_id]) {
		json_object_put(obj);
		return 0; /* its service was deleted since the services were read */
	}
	memcpy(ap.addr, be->addr, sizeof(ap.addr));
	addr_format_endpoint(&ap, text, sizeof(text));
	err = lb_read_traffic(list->maps->be_st, id, &t);
	json_object_object_add(obj, "address", json_object_new_string(text));
	json_object_object_add(obj, "id", json_object_new_uint64(id));
	json_object_object_add(obj, "weight", json_object_new_uint64(be->weight));
	json_object_object_add(obj, "stats", err ? NULL : cli_traffic_json(&t));
	json_object_array_add(list->backends[be->svc_id], obj);
	return err;
}

static int service_json(const struct sl_svc_key *key, const struct sl_svc *svc, void *ctx)
{
	struct json_object *obj = json_object_new_object();
	struct list_ctx *list = ctx;
	char text[ADDR_STR_MAX];
	struct sl_traffic t;
	int err;

	addr_format_service(key, text, sizeof(text));
	json_object_object_add(obj, "service", json_object_new_string(text));
	json_object_object_add(obj, "id", json_object_new_uint64(svc->id));
	json_object_object_add(obj, "name", json_object_new_string(svc->name));
	json_object_object_add(obj, "affinity_timeout",
			       json_object_new_uint64(svc->affinity_timeout_s));
	json_object_object_add(obj, "l7",
			       svc->flags & SL_SVC_L7 ? json_object_new_string("http") : NULL);
	json_object_object_add(obj, "active_backends", json_object_new_uint64(svc->backend_count));
	err = lb_read_traffic(list->maps->svc_st, svc->id, &t);
	json_object_object_add(obj, "stats", err ? NULL : cli_traffic_json(&t));
	list->backends[svc->id] = json_object_new_array();
	json_object_object_add(obj, "backends", list->backends[svc->id]);
	json_object_array_add(list->services, obj);
	return err;
}

static __u64 json_u64(struct json_object *obj, const char *key)
{
	return json_object_get_uint64(json_object_object_get(obj, key));
}

static const char *json_str(struct json_object *obj, const char *key)
{
	return json_object_get_string(json_object_object_get(obj, key));
}

static unsigned long long json_packets(struct json_object *stats)
{
	return json_u64(stats, "fwd_packets") + json_u64(stats, "rev_packets");
}

static void print_backend_row(struct json_object *be)
{
	struct json_object *st = json_object_object_get(be, "stats");
	const char *health = json_str(be, "health");

	printf("  -> %-40s id %-5llu weight %-4llu %-9s %10llu %12llu\n", json_str(be, "address"),
	       (unsigned long long)json_u64(be, "id"), (unsigned long long)json_u64(be, "weight"),
	       health ? health : "?", (unsigned long long)json_u64(st, "new_flows"),
	       json_packets(st));
}

static void print_service_row(struct json_object *svc)
{
	struct json_object *st = json_object_object_get(svc, "stats");
	struct json_object *bes = json_object_object_get(svc, "backends");
	char affinity[16] = "-";

	if (json_u64(svc, "affinity_timeout"))
		snprintf(affinity, sizeof(affinity), "%llus",
			 (unsigned long long)json_u64(svc, "affinity_timeout"));
	printf("%-30s %5llu %-16s %4llu/%-3zu %8s %4s %10llu %12llu\n", json_str(svc, "service"),
	       (unsigned long long)json_u64(svc, "id"), json_str(svc, "name"),
	       (unsigned long long)json_u64(svc, "active_backends"), json_object_array_length(bes),
	       affinity, json_str(svc, "l7") ? json_str(svc, "l7") : "-",
	       (unsigned long long)json_u64(st, "new_flows"), json_packets(st));
	for (size_t j = 0; j < json_object_array_length(bes); j++)
		print_backend_row(json_object_array_get_idx(bes, j));
}

/* Active backends are those with weight > 0: BACKENDS shows active/all. */
static void print_service_table(struct json_object *services)
{
	printf("%-30s %5s %-16s %8s %8s %4s %10s %12s\n", "SERVICE", "ID", "NAME", "BACKENDS",
	       "AFFINITY", "L7", "FLOWS", "PACKETS");
	for (size_t i = 0; i < json_object_array_length(services); i++)
		print_service_row(json_object_array_get_idx(services, i));
}

/* Services first, then every backend in one pass over the slots, each
 * appended to its service: one read of sl_be however many services. */
static int services_json(struct lb_maps *maps, struct json_object **out)
{
	struct list_ctx list = { .maps = maps };
	int err;

	list.backends = calloc(SL_MAX_SERVICES, sizeof(*list.backends));
	if (!list.backends)
		return -ENOMEM;
	list.services = json_object_new_array();
	err = lb_service_foreach(maps, service_json, &list);
	if (!err)
		err = lb_backend_foreach(maps, 0, backend_json, &list);
	free(list.backends);
	if (err) {
		json_object_put(list.services);
		return err;
	}
	*out = list.services;
	return 0;
}

/* Add what only the agent knows to each backend of @services: its health
 * ("up", "down", "unknown", "unchecked"; null when the agent does not
 * answer) and configured weight (the map's weight is 0 while it is down). */
static void merge_health(struct cli *cli, struct json_object *services)
{
	struct json_object *reply = cli_ask(cli, "health"), *list, *by_key, *found;
	char key[2 * ADDR_STR_MAX + 2];

	if (!reply) {
		fprintf(stderr, "Warning: sluiced does not answer at %s: health not shown\n",
			cli->socket);
		return;
	}
	list = json_object_object_get(reply, "backends");
	by_key = json_object_new_object();
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *be = json_object_array_get_idx(list, i);

		snprintf(key, sizeof(key), "%s %s", json_str(be, "service"),
			 json_str(be, "backend"));
		json_object_object_add(by_key, key, json_object_get(be));
	}
	for (size_t i = 0; i < json_object_array_length(services); i++) {
		struct json_object *svc = json_object_array_get_idx(services, i);
		struct json_object *bes = json_object_object_get(svc, "backends");

		for (size_t j = 0; j < json_object_array_length(bes); j++) {
			struct json_object *be = json_object_array_get_idx(bes, j);

			snprintf(key, sizeof(key), "%s %s", json_str(svc, "service"),
				 json_str(be, "address"));
			if (!json_object_object_get_ex(by_key, key, &found))
				continue;
			json_object_object_add(
				be, "configured_weight",
				json_object_get(json_object_object_get(found, "weight")));
			json_object_object_add(
				be, "health",
				json_object_get(json_object_object_get(found, "health")));
		}
	}
	json_object_put(by_key);
	json_object_put(reply);
}

static int service_list(struct cli *cli, int argc, char **argv)
{
	struct json_object *services;
	int status, err;

	status = verb_options(cli, argc, argv, 0, &(struct verb_opts){});
	if (!status)
		status = positionals(cli, argc, 0, "service list [--json]");
	if (!status)
		status = cli_open_maps(cli);
	if (status)
		return status;
	err = services_json(&cli->maps, &services);
	cli_close_maps(cli);
	if (err)
		return cli_error(cli, CLI_ERROR, err, NULL, "cannot list services");
	merge_health(cli, services);
	if (cli->json) {
		cli_print_json(cli, services);
		return CLI_OK;
	}
	print_service_table(services);
	json_object_put(services);
	return CLI_OK;
}

static const struct cli_cmd service_cmds[] = {
	{ "add", service_add, "VIP:PORT/PROTO [--name N] [--affinity S] [--l7 http]",
	  "add a service" },
	{ "del", service_del, "VIP:PORT/PROTO", "delete a service and its flows" },
	{ "list", service_list, "[--json]", "services, backends and counters" },
	{},
};

static const struct cli_cmd backend_cmds[] = {
	{ "add", backend_add, "VIP:PORT/PROTO ADDR:PORT [--weight N]", "add a backend (weight 1)" },
	{ "del", backend_del, "VIP:PORT/PROTO ADDR:PORT", "remove; its flows drain" },
	{ "set", backend_set, "VIP:PORT/PROTO ADDR:PORT --weight N", "0: no new flows" },
	{},
};

int cmd_service(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, service_cmds, "service", argc - 1, argv + 1);
}

int cmd_backend(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, backend_cmds, "backend", argc - 1, argv + 1);
}
