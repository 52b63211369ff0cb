/* `sluice apply -f FILE`: make the data path hold exactly the services of
 * a YAML config (docs/config.md). The file is parsed and validated whole
 * first; an invalid file changes nothing and the error names its line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apply.h"
#include "cli.h"
#include "config.h"

static int apply_usage(struct cli *cli)
{
	return cli_error(cli, CLI_USAGE, 0, NULL, "usage: sluice apply -f FILE");
}

static void print_summary(struct cli *cli, const char *file, const struct apply_summary *sum)
{
	struct json_object *obj;

	if (!cli->json) {
		printf("applied %s: %u services (%u added or changed, %u unchanged), %u deleted\n",
		       file, sum->services, sum->changed, sum->unchanged, sum->deleted);
		if (sum->health_checks)
			fprintf(stderr,
				"Warning: %u health checks are valid but not run: they "
				"need sluiced's agent mode\n",
				sum->health_checks);
		return;
	}
	obj = json_object_new_object();
	json_object_object_add(obj, "file", json_object_new_string(file));
	json_object_object_add(obj, "services", json_object_new_uint64(sum->services));
	json_object_object_add(obj, "changed", json_object_new_uint64(sum->changed));
	json_object_object_add(obj, "unchanged", json_object_new_uint64(sum->unchanged));
	json_object_object_add(obj, "deleted", json_object_new_uint64(sum->deleted));
	json_object_object_add(obj, "health_checks_not_run",
			       json_object_new_uint64(sum->health_checks));
	cli_print_json(cli, obj);
}

int cmd_apply(struct cli *cli, int argc, char **argv)
{
	struct apply_summary sum;
	struct cfg_state cfg = {};
	struct cfg_error cerr = {};
	char what[256], msg[640];
	int status, err;

	if (argc == 2 && !strcmp(argv[1], "help")) {
		printf("Usage: sluice apply -f FILE\n  make the services exactly those of FILE "
		       "(YAML, see docs/config.md)\n");
		return CLI_OK;
	}
	if (argc != 3 || (strcmp(argv[1], "-f") && strcmp(argv[1], "--file")))
		return apply_usage(cli);
	err = cfg_load_file(argv[2], &cfg, &cerr);
	if (err) {
		cfg_error_format(&cerr, msg, sizeof(msg));
		return cli_error(cli, CLI_ERROR, err == -EINVAL ? 0 : err, "nothing was changed",
				 "invalid config: %s", msg);
	}
	status = cli_open_maps(cli, true);
	if (status)
		goto free_cfg;
	err = apply_config(&cli->maps, &cfg, &sum, what, sizeof(what));
	cli_close_maps(cli);
	if (err)
		status = cli_error(cli, CLI_ERROR, err,
				   err == -ENOSPC || err == -E2BIG ? "nothing was changed" : NULL,
				   "cannot apply %s: %s", argv[2], what);
	else
		print_summary(cli, argv[2], &sum);
free_cfg:
	cfg_free(&cfg);
	return status;
}
