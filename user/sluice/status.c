/* `sluice status`: the agent (version, pid, transactions; when it
 * answers), and what is loaded under the pin directory: the datapath
 * version and settings, every XDP attachment (interface, program, link),
 * the socket layer (cgroup, redirect mode, self-test), and each map's
 * occupancy against its capacity. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cli.h"
#include "sluice/limits.h"

/* {"interface", "ifindex", "link_id", "prog_id", "prog_name"} of one pinned link. */
static struct json_object *link_json(const char *path)
{
	struct bpf_link_info link = {};
	struct bpf_prog_info prog = {};
	__u32 len = sizeof(link);
	struct json_object *obj;
	char ifname[IF_NAMESIZE] = "?";
	int fd = bpf_obj_get(path), prog_fd;

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &link, &len)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	obj = json_object_new_object();
	if_indextoname(link.xdp.ifindex, ifname);
	json_object_object_add(obj, "interface", json_object_new_string(ifname));
	json_object_object_add(obj, "ifindex", json_object_new_uint64(link.xdp.ifindex));
	json_object_object_add(obj, "link_id", json_object_new_uint64(link.id));
	json_object_object_add(obj, "prog_id", json_object_new_uint64(link.prog_id));
	prog_fd = bpf_prog_get_fd_by_id(link.prog_id);
	len = sizeof(prog);
	if (prog_fd >= 0 && !bpf_obj_get_info_by_fd(prog_fd, &prog, &len))
		json_object_object_add(obj, "prog_name", json_object_new_string(prog.name));
	if (prog_fd >= 0)
		close(prog_fd);
	return obj;
}

static int links_json(const char *dir, struct json_object **out)
{
	char path[PATH_MAX];
	struct dirent *entry;
	DIR *d = opendir(dir);

	if (!d)
		return -errno;
	*out = json_object_new_array();
	while ((entry = readdir(d))) {
		struct json_object *link;

		if (strncmp(entry->d_name, LB_LINK_PREFIX, strlen(LB_LINK_PREFIX)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
		link = link_json(path);
		if (link)
			json_object_array_add(*out, link);
	}
	closedir(d);
	return 0;
}

static int count_service(const struct sl_svc_key *key, const struct sl_svc *svc, void *ctx)
{
	__u32 *counts = ctx;

	(void)key;
	counts[0]++;
	counts[1] += svc->backend_count;
	return 0;
}

static struct json_object *occupancy_json(__u64 used, __u64 capacity)
{
	struct json_object *obj = json_object_new_object();

	json_object_object_add(obj, "used", json_object_new_uint64(used));
	json_object_object_add(obj, "capacity", json_object_new_uint64(capacity));
	return obj;
}

/* Active backends (weight > 0) from the services, then every map's
 * occupancy (lb_map_usage(): sl_be counts weight-0 slots too). */
static int maps_json(struct lb_maps *maps, struct json_object **out)
{
	struct lb_map_use use[LB_USE_COUNT];
	__u32 counts[2] = {};
	int err = lb_service_foreach(maps, count_service, counts);

	if (!err)
		err = lb_map_usage(maps, use);
	if (err)
		return err;
	*out = json_object_new_object();
	json_object_object_add(*out, "services",
			       occupancy_json(counts[0], use[LB_USE_SVC].capacity));
	json_object_object_add(*out, "active_backends",
			       occupancy_json(counts[1], use[LB_USE_BE].capacity));
	json_object_object_add(*out, "backend_slots",
			       occupancy_json(use[LB_USE_BE].used, use[LB_USE_BE].capacity));
	json_object_object_add(*out, "conntrack_ipv4",
			       occupancy_json(use[LB_USE_CT4].used, use[LB_USE_CT4].capacity));
	json_object_object_add(*out, "conntrack_ipv6",
			       occupancy_json(use[LB_USE_CT6].used, use[LB_USE_CT6].capacity));
	json_object_object_add(
		*out, "affinity",
		occupancy_json(use[LB_USE_AFFINITY].used, use[LB_USE_AFFINITY].capacity));
	json_object_object_add(
		*out, "socket_translations",
		occupancy_json(use[LB_USE_SOCK_REV].used, use[LB_USE_SOCK_REV].capacity));
	json_object_object_add(
		*out, "sockets_enrolled",
		occupancy_json(use[LB_USE_SOCKHASH].used, use[LB_USE_SOCKHASH].capacity));
	return 0;
}

static const char *field(struct json_object *obj, const char *key)
{
	return json_object_get_string(json_object_object_get(obj, key));
}

static void print_agent(struct json_object *root)
{
	struct json_object *agent = json_object_object_get(root, "agent");

	if (!agent) {
		printf("agent     not answering at %s\n", field(root, "socket"));
		return;
	}
	printf("agent     sluiced %s, pid %s, socket %s, %s services, %s transactions "
	       "(%s refused), %s reloads\n",
	       field(agent, "version"), field(agent, "pid"), field(root, "socket"),
	       field(agent, "services"), field(agent, "transactions"),
	       field(agent, "transaction_errors"), field(agent, "reloads"));
}

/* One line on the socket layer, as the agent reports it. */
static void print_socket_layer(struct json_object *root)
{
	struct json_object *sl = json_object_object_get(root, "socket_layer");

	if (!sl)
		return;
	if (!json_object_get_boolean(json_object_object_get(sl, "attached"))) {
		printf("socket    not attached (sluiced has no --cgroup)\n");
		return;
	}
	printf("socket    cgroup %s, redirect %s (asked %s, ports %s), self-test %s\n",
	       field(sl, "cgroup"), field(sl, "redirect"), field(sl, "redirect_requested"),
	       field(sl, "redirect_ports"), field(sl, "selftest"));
	for (const char *const *key = (const char *const[]){ "l7_proxy4", "l7_proxy6", NULL }; *key;
	     key++) {
		if (field(sl, *key))
			printf("l7 proxy  %s\n", field(sl, *key));
	}
}

static void print_policy(struct json_object *root)
{
	struct json_object *pol = json_object_object_get(root, "policy");

	if (!pol)
		return;
	if (!json_object_get_int64(json_object_object_get(pol, "generation"))) {
		printf("policy    none enforced\n");
		return;
	}
	printf("policy    generation %s: %s endpoints, %s identities, %s rules in %s rule sets, "
	       "%s denial events\n",
	       field(pol, "generation"), field(pol, "endpoints"), field(pol, "identities"),
	       field(pol, "rules"), field(pol, "rulesets"), field(pol, "denial_events"));
}

/* One line on sluiced --k8s: whether it follows the API and what it made. */
static void print_k8s(struct json_object *root)
{
	struct json_object *k8s = json_object_object_get(root, "k8s");
	const char *error;

	if (!k8s)
		return;
	printf("k8s       %s, %s publications (%s refused): %s Services -> %s services, "
	       "%s backends (%s terminating), %s pod endpoints, %s conflicts\n",
	       json_object_get_boolean(json_object_object_get(k8s, "published"))
		       ? "following the API"
		       : "waiting for the first list",
	       field(k8s, "publications"), field(k8s, "publish_errors"), field(k8s, "services"),
	       field(k8s, "vips"), field(k8s, "backends"), field(k8s, "terminating"),
	       field(k8s, "endpoints"), field(k8s, "conflicts"));
	error = field(k8s, "last_error");
	if (error && *error)
		printf("k8s       last error: %s\n", error);
}

static void print_status(struct json_object *root)
{
	struct json_object *links = json_object_object_get(root, "attachments");

	print_agent(root);
	print_socket_layer(root);
	print_policy(root);
	print_k8s(root);
	printf("datapath  version %s, Maglev table %s slots, pinned in %s\n",
	       json_object_get_string(json_object_object_get(root, "version")),
	       json_object_get_string(json_object_object_get(root, "maglev_size")),
	       json_object_get_string(json_object_object_get(root, "bpffs")));
	for (size_t i = 0; i < json_object_array_length(links); i++) {
		struct json_object *l = json_object_array_get_idx(links, i);

		printf("xdp       %-12s prog %s (id %s), link id %s\n",
		       json_object_get_string(json_object_object_get(l, "interface")),
		       json_object_get_string(json_object_object_get(l, "prog_name")),
		       json_object_get_string(json_object_object_get(l, "prog_id")),
		       json_object_get_string(json_object_object_get(l, "link_id")));
	}
	json_object_object_foreach (json_object_object_get(root, "maps"), name, occ)
		printf("map       %-16s %10s / %s\n", name,
		       json_object_get_string(json_object_object_get(occ, "used")),
		       json_object_get_string(json_object_object_get(occ, "capacity")));
}

static int status_json(struct cli *cli, struct json_object *root)
{
	struct sl_config cfg = {};
	struct json_object *part;
	__u32 zero = 0;
	int err;

	if (bpf_map_lookup_elem(cli->maps.cfg, &zero, &cfg))
		return -errno;
	struct json_object *agent = cli_ask(cli, "status");

	json_object_object_add(root, "socket", json_object_new_string(cli->socket));
	json_object_object_add(root, "agent",
			       agent ? json_object_get(json_object_object_get(agent, "agent"))
				     : NULL);
	json_object_object_add(
		root, "socket_layer",
		agent ? json_object_get(json_object_object_get(agent, "socket_layer")) : NULL);
	json_object_object_add(root, "policy",
			       agent ? json_object_get(json_object_object_get(agent, "policy"))
				     : NULL);
	if (agent && json_object_object_get(agent, "k8s"))
		json_object_object_add(root, "k8s",
				       json_object_get(json_object_object_get(agent, "k8s")));
	json_object_put(agent);
	json_object_object_add(root, "bpffs", json_object_new_string(cli->bpffs));
	json_object_object_add(root, "version", json_object_new_uint64(cfg.version));
	json_object_object_add(root, "maglev_size", json_object_new_uint64(cfg.maglev_size));
	err = links_json(cli->bpffs, &part);
	if (err)
		return err;
	json_object_object_add(root, "attachments", part);
	err = maps_json(&cli->maps, &part);
	if (err)
		return err;
	json_object_object_add(root, "maps", part);
	return 0;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	struct json_object *root;
	int status, err;

	if (argc > 1) {
		if (strcmp(argv[1], "help"))
			return cli_error(cli, CLI_USAGE, 0, NULL, "usage: sluice status [--json]");
		printf("Usage: sluice status [--json]\n  datapath version, attachments, map use\n");
		return CLI_OK;
	}
	status = cli_open_maps(cli);
	if (status)
		return status;
	root = json_object_new_object();
	err = status_json(cli, root);
	cli_close_maps(cli);
	if (err) {
		json_object_put(root);
		return cli_error(cli, CLI_ERROR, err, NULL, "cannot read the status of %s",
				 cli->bpffs);
	}
	if (cli->json) {
		cli_print_json(cli, root);
		return CLI_OK;
	}
	print_status(root);
	json_object_put(root);
	return CLI_OK;
}
