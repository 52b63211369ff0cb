/* Shared pieces of the `sluice` CLI: the command-table type, the one error
 * printer (text or JSON), JSON output, the agent's API for changes, and
 * read access to the pinned maps. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stdbool.h>

#include <json-c/json.h>

#include "lb.h"

enum cli_status {
	CLI_OK = 0,
	CLI_ERROR = 1, /* the request was well formed but failed */
	CLI_USAGE = 2, /* the request was not well formed */
};

struct cli {
	bool json;
	bool pretty;
	const char *bpffs; /* where sluiced pinned the maps (read directly) */
	const char *socket; /* the agent's API socket (every change goes there) */
	struct lb_maps maps;
};

struct cli_cmd {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv); /* argv[0] is the verb */
	const char *usage; /* arguments, for help */
	const char *help; /* one line */
};

/* Run the entry of @cmds that @argv[0] names or uniquely abbreviates.
 * "help" (or no word) prints the table. @what names the level in messages. */
int cli_dispatch(struct cli *cli, const struct cli_cmd *cmds, const char *what, int argc,
		 char **argv);

/* Print "Error: <message>[: strerror(-err)]" and a hint when given, as
 * text on stderr or {"error": ...} on stdout with --json. Returns @status. */
int cli_error(struct cli *cli, enum cli_status status, int err, const char *hint, const char *fmt,
	      ...) __attribute__((format(printf, 5, 6)));

/* Open the pinned maps, read-only use: reads work while the agent is down. */
int cli_open_maps(struct cli *cli);
void cli_close_maps(struct cli *cli);

/* Send @req (consumed) to the agent. On success returns CLI_OK with the
 * reply in @reply (NULL: dropped); else prints the agent's error (or why it
 * could not be reached) and returns its status. */
int cli_request(struct cli *cli, struct json_object *req, struct json_object **reply);
/* Ask the agent quietly: the reply, or NULL when it cannot answer. */
struct json_object *cli_ask(struct cli *cli, const char *op);

/* Print @obj (consumed) as JSON on stdout. */
void cli_print_json(struct cli *cli, struct json_object *obj);

/* Commands: service.c, stats.c, status.c, apply.c, policy.c. */
int cmd_service(struct cli *cli, int argc, char **argv);
int cmd_backend(struct cli *cli, int argc, char **argv);
int cmd_stats(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_apply(struct cli *cli, int argc, char **argv);
int cmd_endpoint(struct cli *cli, int argc, char **argv);
int cmd_policy(struct cli *cli, int argc, char **argv);

/* Shared option parsing for verbs: a number in [min, max]. */
int cli_parse_u32(struct cli *cli, const char *opt, const char *text, __u32 min, __u32 max,
		  __u32 *out);
struct json_object *cli_traffic_json(const struct sl_traffic *t);
/* The error for what getopt_long refused (after it returned '?'). */
int cli_bad_option(struct cli *cli, char **argv);

#endif
