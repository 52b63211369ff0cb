/* `sluice stats`: the datapath's counters by protocol, parse error, load
 * balancer action and drop reason, and conntrack occupancy. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "cli.h"
#include "sluice/drop_reason.h"
#include "sluice/policy.h"
#include "sluice/sock.h"

static const char *const proto_names[] = SL_PROTO_STAT_NAMES;
static const char *const perr_names[] = SL_PARSE_ERR_NAMES;
static const char *const lb_names[] = SL_LB_STAT_NAMES;
static const char *const drop_names[] = SL_DROP_REASON_NAMES;
static const char *const sock_names[] = SL_SOCK_STAT_NAMES;
static const char *const pol_names[] = SL_POL_STAT_NAMES;

_Static_assert(sizeof(proto_names) / sizeof(proto_names[0]) == SL_PS_MAX, "names");
_Static_assert(sizeof(perr_names) / sizeof(perr_names[0]) == SL_PERR_MAX, "names");
_Static_assert(sizeof(lb_names) / sizeof(lb_names[0]) == SL_LB_STAT_MAX, "names");
_Static_assert(sizeof(drop_names) / sizeof(drop_names[0]) == SL_DROP_MAX, "names");
_Static_assert(sizeof(sock_names) / sizeof(sock_names[0]) == SL_SOCK_STAT_MAX, "names");
_Static_assert(sizeof(pol_names) / sizeof(pol_names[0]) == SL_POL_ST_MAX, "names");

/* {name: count} for indices [first, n) of a per-CPU u64 counter map. */
static int counters_json(int map_fd, const char *const *names, __u32 first, __u32 n,
			 struct json_object **out)
{
	struct json_object *obj = json_object_new_object();
	__u64 sum;
	int err;

	for (__u32 i = first; i < n; i++) {
		err = lb_read_counter(map_fd, i, &sum);
		if (err) {
			json_object_put(obj);
			return err;
		}
		json_object_object_add(obj, names[i], json_object_new_uint64(sum));
	}
	*out = obj;
	return 0;
}

static int conntrack_json(struct lb_maps *maps, struct json_object **out)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), v4, v6;
	int err = lb_ct_count(maps, &v4, &v6);

	if (!err && bpf_obj_get_info_by_fd(maps->ct4, &info, &len))
		err = -errno;
	if (err)
		return err;
	*out = json_object_new_object();
	json_object_object_add(*out, "ipv4_entries", json_object_new_uint64(v4));
	json_object_object_add(*out, "ipv6_entries", json_object_new_uint64(v6));
	json_object_object_add(*out, "capacity_per_family",
			       json_object_new_uint64(info.max_entries));
	return 0;
}

/* The counter sections of `sluice stats`, in print order. Index 0 of the
 * drop and parse-error enums means "none" and is never counted. */
static const struct {
	const char *section;
	size_t fd_off; /* offsetof(struct lb_maps, ...) */
	const char *const *names;
	__u32 first, n;
} sections[] = {
	{ "packets", offsetof(struct lb_maps, proto_st), proto_names, 0, SL_PS_MAX },
	{ "lb", offsetof(struct lb_maps, lb_st), lb_names, 0, SL_LB_STAT_MAX },
	{ "drops", offsetof(struct lb_maps, drop_st), drop_names, 1, SL_DROP_MAX },
	{ "parse_errors", offsetof(struct lb_maps, perr_st), perr_names, 1, SL_PERR_MAX },
	{ "socket", offsetof(struct lb_maps, sock_st), sock_names, 0, SL_SOCK_STAT_MAX },
	{ "policy", offsetof(struct lb_maps, pol_st), pol_names, 0, SL_POL_ST_MAX },
};

static int stats_json(struct lb_maps *maps, struct json_object *root)
{
	struct json_object *part;
	int err;

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		int fd = *(int *)((char *)maps + sections[i].fd_off);

		err = counters_json(fd, sections[i].names, sections[i].first, sections[i].n, &part);
		if (err)
			return err;
		json_object_object_add(root, sections[i].section, part);
	}
	err = conntrack_json(maps, &part);
	if (err)
		return err;
	json_object_object_add(root, "conntrack", part);
	return 0;
}

static void print_section(struct json_object *root, const char *section)
{
	printf("%s:\n", section);
	json_object_object_foreach (json_object_object_get(root, section), key, value)
		printf("  %-20s %llu\n", key, (unsigned long long)json_object_get_uint64(value));
}

int cmd_stats(struct cli *cli, int argc, char **argv)
{
	struct json_object *root;
	int status, err;

	if (argc > 1 && strcmp(argv[1], "help"))
		return cli_error(cli, CLI_USAGE, 0, NULL, "usage: sluice stats [--json]");
	if (argc > 1) {
		printf("Usage: sluice stats [--json]\n  counters of the data path\n");
		return CLI_OK;
	}
	status = cli_open_maps(cli);
	if (status)
		return status;
	root = json_object_new_object();
	err = stats_json(&cli->maps, root);
	cli_close_maps(cli);
	if (err) {
		json_object_put(root);
		return cli_error(cli, CLI_ERROR, err, NULL, "cannot read counters");
	}
	if (cli->json) {
		cli_print_json(cli, root);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		print_section(root, sections[i].section);
	print_section(root, "conntrack");
	json_object_put(root);
	return CLI_OK;
}
