/* sluice: the CLI. `sluice [-j|--json] [-p|--pretty] [--bpffs DIR] OBJECT
 * VERB ARGS`, dispatched from command tables; exit 0 ok, 1 error, 2 usage.
 * This file holds the top level, the error printer and the map access. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "log.h"

int cli_error(struct cli *cli, enum cli_status status, int err, const char *hint, const char *fmt,
	      ...)
{
	char msg[512];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	len = strlen(msg);
	if (err)
		snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(-err));
	if (cli->json) {
		struct json_object *obj = json_object_new_object();

		json_object_object_add(obj, "error", json_object_new_string(msg));
		if (hint)
			json_object_object_add(obj, "hint", json_object_new_string(hint));
		cli_print_json(cli, obj);
		return status;
	}
	fprintf(stderr, "Error: %s\n", msg);
	if (hint)
		fprintf(stderr, "Hint: %s\n", hint);
	return status;
}

void cli_print_json(struct cli *cli, struct json_object *obj)
{
	int flags = cli->pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
				: JSON_C_TO_STRING_PLAIN;

	printf("%s\n", json_object_to_json_string_ext(obj, flags | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
}

int cli_parse_u32(struct cli *cli, const char *opt, const char *text, __u32 min, __u32 max,
		  __u32 *out)
{
	unsigned long value;
	char *end;

	errno = 0;
	value = strtoul(text, &end, 10);
	/* strtoul takes " 7" and "+7": only digits are a number here. */
	if (errno || *end || !isdigit((unsigned char)text[0]) || value < min || value > max)
		return cli_error(cli, CLI_USAGE, 0, NULL, "%s: '%s' is not a number in %u..%u", opt,
				 text, min, max);
	*out = (__u32)value;
	return CLI_OK;
}

static void print_help(FILE *out, const struct cli_cmd *cmds, const char *what)
{
	fprintf(out,
		"Usage: sluice [-j|--json] [-p|--pretty] [--socket PATH] [--bpffs DIR] %s VERB "
		"...\n\n",
		what ? what : "OBJECT");
	for (const struct cli_cmd *cmd = cmds; cmd->name; cmd++)
		fprintf(out, "  %-8s %-40s %s\n", cmd->name, cmd->usage, cmd->help);
	fprintf(out, "\nAbbreviations are accepted when they are unambiguous.\n");
}

/* The entry @word names exactly, or the only one it abbreviates. */
static const struct cli_cmd *cmd_find(const struct cli_cmd *cmds, const char *word, bool *ambiguous)
{
	const struct cli_cmd *match = NULL;
	size_t len = strlen(word);

	*ambiguous = false;
	for (const struct cli_cmd *cmd = cmds; cmd->name; cmd++) {
		if (!strcmp(cmd->name, word))
			return cmd;
		if (!strncmp(cmd->name, word, len)) {
			*ambiguous = match != NULL;
			match = cmd;
		}
	}
	return *ambiguous ? NULL : match;
}

int cli_dispatch(struct cli *cli, const struct cli_cmd *cmds, const char *what, int argc,
		 char **argv)
{
	const struct cli_cmd *cmd;
	bool ambiguous;

	if (argc >= 1 && !strcmp(argv[0], "help")) {
		print_help(stdout, cmds, what);
		return CLI_OK;
	}
	if (argc < 1) {
		/* On stderr: stdout stays the JSON error alone with -j. */
		print_help(stderr, cmds, what);
		return cli_error(cli, CLI_USAGE, 0, NULL, "expected a %s",
				 what ? "verb" : "command");
	}
	cmd = cmd_find(cmds, argv[0], &ambiguous);
	if (!cmd)
		return cli_error(cli, CLI_USAGE, 0, "see `sluice help` for the commands",
				 "%s '%s'%s%s", ambiguous ? "ambiguous" : "unknown command",
				 argv[0], what ? " for " : "", what ? what : "");
	return cmd->run(cli, argc, argv);
}

int cli_open_maps(struct cli *cli)
{
	char hint[512];
	int err;

	err = lb_maps_open_pinned(&cli->maps, cli->bpffs);
	if (!err)
		return CLI_OK;
	snprintf(hint, sizeof(hint),
		 "is the data path loaded? start `sluiced --bpffs %s --xdp IFACE` "
		 "(or pass --bpffs / SLUICE_BPFFS)",
		 cli->bpffs);
	return cli_error(cli, CLI_ERROR, err, hint, "cannot open the maps pinned in %s",
			 cli->bpffs);
}

void cli_close_maps(struct cli *cli)
{
	lb_maps_close(&cli->maps);
}

static int unreachable(struct cli *cli, int err)
{
	char hint[512];

	snprintf(hint, sizeof(hint),
		 "is sluiced running? start it (see `sluiced --help`), or point to its socket "
		 "with --socket PATH or %s",
		 API_SOCKET_ENV);
	return cli_error(cli, CLI_ERROR, err, hint, "cannot reach sluiced at %s", cli->socket);
}

/* Print the error of a failed reply; returns its status. */
static int agent_refused(struct cli *cli, struct json_object *reply)
{
	struct json_object *hint = json_object_object_get(reply, "hint");
	const char *errno_text = json_object_get_string(json_object_object_get(reply, "errno"));
	int status = json_object_get_int(json_object_object_get(reply, "status"));

	const char *error = json_object_get_string(json_object_object_get(reply, "error"));

	status = status == CLI_USAGE ? CLI_USAGE : CLI_ERROR;
	return cli_error(cli, status, 0, hint ? json_object_get_string(hint) : NULL, "%s%s%s",
			 error ? error : "sluiced refused the request", errno_text ? ": " : "",
			 errno_text ? errno_text : "");
}

/* Only a JSON true is a success: "ok": "false" is not. */
static bool reply_ok(struct json_object *reply)
{
	struct json_object *ok = json_object_object_get(reply, "ok");

	return json_object_is_type(ok, json_type_boolean) && json_object_get_boolean(ok);
}

/* Send @req and read the reply: a failed connect is "cannot reach", a
 * failure after it a bad reply (the agent was there). */
static int exchange(struct cli *cli, struct json_object *req, struct json_object **reply)
{
	char why[128] = "";
	int fd = api_connect(cli->socket), err;

	if (fd < 0)
		return unreachable(cli, fd);
	err = api_send(fd, req);
	if (!err)
		err = api_recv(fd, API_REPLY_TIMEOUT_MS, reply, why, sizeof(why));
	close(fd);
	if (!err)
		return CLI_OK;
	return cli_error(cli, CLI_ERROR, why[0] ? 0 : err, "see sluiced's log",
			 "no valid reply from sluiced at %s%s%s", cli->socket, why[0] ? ": " : "",
			 why);
}

int cli_request(struct cli *cli, struct json_object *req, struct json_object **reply)
{
	struct json_object *got = NULL;
	int status = exchange(cli, req, &got);

	json_object_put(req);
	if (status)
		return status;
	if (!reply_ok(got))
		status = agent_refused(cli, got);
	else if (json_object_object_get(got, "warning"))
		fprintf(stderr, "Warning: %s\n",
			json_object_get_string(json_object_object_get(got, "warning")));
	if (status || !reply)
		json_object_put(got);
	else
		*reply = got;
	return status;
}

struct json_object *cli_ask(struct cli *cli, const char *op)
{
	struct json_object *req = json_object_new_object(), *reply = NULL;

	json_object_object_add(req, "op", json_object_new_string(op));
	if (api_call(cli->socket, req, &reply) || !reply_ok(reply)) {
		json_object_put(reply);
		reply = NULL;
	}
	json_object_put(req);
	return reply;
}

static int cmd_help(struct cli *cli, int argc, char **argv);

static const struct cli_cmd top_cmds[] = {
	{ "service", cmd_service, "add|del|list ...", "L4 services (VIP:PORT/PROTO)" },
	{ "backend", cmd_backend, "add|del|set ...", "a service's backends" },
	{ "apply", cmd_apply, "-f FILE", "make the services those of a YAML file" },
	{ "endpoint", cmd_endpoint, "add|del|list ...", "workload addresses and their labels" },
	{ "policy", cmd_policy, "add|del|set|list|drops ...", "L3/L4 allow/deny rules" },
	{ "stats", cmd_stats, "", "datapath counters and drop reasons" },
	{ "status", cmd_status, "", "datapath version, attachments, map use" },
	{ "help", cmd_help, "", "this text" },
	{},
};

static int cmd_help(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	print_help(stdout, top_cmds, NULL);
	return CLI_OK;
}

/* Take the global options out of argv, wherever they stand. Returns argc left. */
static int global_options(struct cli *cli, int argc, char **argv, int *status)
{
	int out = 0;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json")) {
			cli->json = true;
		} else if (!strcmp(argv[i], "-p") || !strcmp(argv[i], "--pretty")) {
			cli->json = cli->pretty = true;
		} else if (!strcmp(argv[i], "--bpffs") || !strcmp(argv[i], "--socket")) {
			if (i + 1 == argc)
				*status = cli_error(cli, CLI_USAGE, 0, NULL, "%s needs a value",
						    argv[i]);
			else if (!strcmp(argv[i++], "--bpffs"))
				cli->bpffs = argv[i];
			else
				cli->socket = argv[i];
		} else {
			argv[out++] = argv[i];
		}
	}
	return out;
}

int main(int argc, char **argv)
{
	struct cli cli = { .bpffs = getenv("SLUICE_BPFFS") };
	int status = CLI_OK;

	if (!cli.bpffs || !*cli.bpffs)
		cli.bpffs = LB_DEFAULT_PIN_DIR;
	log_set_level(LOG_ERROR);
	log_route_libbpf();
	argc = global_options(&cli, argc - 1, argv + 1, &status);
	if (status)
		return status;
	cli.socket = api_socket_path(cli.socket);
	return cli_dispatch(&cli, top_cmds, NULL, argc, argv + 1);
}
