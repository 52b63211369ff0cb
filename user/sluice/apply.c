/* `sluice apply -f FILE`: make the data path hold exactly the services of
 * a YAML config (docs/config.md), through the agent. The agent validates
 * the whole file first; an invalid file changes nothing and the error
 * names its line. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

static int64_t json_int(struct json_object *obj, const char *key)
{
	return json_object_get_int64(json_object_object_get(obj, key));
}

static int apply_usage(struct cli *cli)
{
	return cli_error(cli, CLI_USAGE, 0, NULL, "usage: sluice apply -f FILE");
}

static void print_summary(struct cli *cli, const char *file, struct json_object *reply)
{
	if (!cli->json) {
		printf("applied %s: %" PRId64 " services (%" PRId64 " added or changed, %" PRId64
		       " unchanged), %" PRId64 " deleted\n",
		       file, json_int(reply, "services"), json_int(reply, "changed"),
		       json_int(reply, "unchanged"), json_int(reply, "deleted"));
		json_object_put(reply);
		return;
	}
	json_object_object_del(reply, "ok");
	json_object_object_add(reply, "file", json_object_new_string(file));
	cli_print_json(cli, reply);
}

int cmd_apply(struct cli *cli, int argc, char **argv)
{
	struct json_object *req, *reply;
	char *text = NULL;
	size_t len = 0;
	int status, err;

	if (argc == 2 && !strcmp(argv[1], "help")) {
		printf("Usage: sluice apply -f FILE\n  make the services exactly those of FILE "
		       "(YAML, see docs/config.md)\n");
		return CLI_OK;
	}
	if (argc != 3 || (strcmp(argv[1], "-f") && strcmp(argv[1], "--file")))
		return apply_usage(cli);
	/* The agent parses it (its errors name FILE's lines); it may not see
	 * our files (another mount namespace), so it gets the text. */
	err = cfg_read_file(argv[2], &text, &len);
	if (err)
		return cli_error(cli, CLI_ERROR, err, "nothing was changed", "cannot read %s",
				 argv[2]);
	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string("apply"));
	json_object_object_add(req, "file", json_object_new_string(argv[2]));
	json_object_object_add(req, "content", json_object_new_string_len(text, (int)len));
	free(text);
	status = cli_request(cli, req, &reply);
	if (!status)
		print_summary(cli, argv[2], reply);
	return status;
}
