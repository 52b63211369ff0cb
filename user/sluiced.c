/* sluiced: loads Sluice's XDP load balancer, adopts the maps and links
 * already pinned under --bpffs (a restart or upgrade keeps every service
 * and flow), attaches to each --xdp interface, and exits: the data path
 * lives in the kernel, held by its pins. `--cleanup` removes it all. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "loader.h"
#include "log.h"
#include "sluice/limits.h"
#include "sluice/maglev.h"
#include "xdp_lb.skel.h"

#define MAX_IFACES 16

struct agent_args {
	const char *bpffs;
	const char *ifaces[MAX_IFACES];
	int n_ifaces;
	bool generic;
	bool cleanup;
	struct loader_opts load;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluiced [OPTIONS]\n"
		"Load the Sluice data path, attach it, pin it under --bpffs, then exit.\n\n"
		"  --xdp IFACE          attach the XDP load balancer to IFACE (repeatable)\n"
		"  --xdp-generic        allow generic (skb) XDP where native is missing\n"
		"  --bpffs DIR          pin directory (default %s)\n"
		"  --maglev-size N      Maglev table size, a prime (default %u)\n"
		"  --ct-size N          conntrack entries per family (default %u)\n"
		"  --datapath-version N build identity of the program (default %u)\n"
		"  --cleanup            detach and remove everything pinned under --bpffs\n"
		"  --log-level LEVEL    error, warn, info (default) or debug\n"
		"  -h, --help           this text\n",
		LB_DEFAULT_PIN_DIR, SL_MAGLEV_DEFAULT_SIZE, SL_CT_DEFAULT_SIZE,
		SL_DATAPATH_VERSION);
}

static int parse_u32(const char *text, const char *what, __u32 *out)
{
	char *end;
	unsigned long value;

	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno || *end || !*text || value > UINT32_MAX || text[0] == '-') {
		fprintf(stderr, "Error: %s: not a number: '%s'\n", what, text);
		return -EINVAL;
	}
	*out = (__u32)value;
	return 0;
}

/* Returns 0, or 2 for a usage error (the exit status). */
static int parse_args(int argc, char **argv, struct agent_args *args)
{
	enum { O_XDP = 256, O_GENERIC, O_BPFFS, O_MAGLEV, O_CT, O_VERSION, O_CLEANUP, O_LOG };
	static const struct option opts[] = {
		{ "xdp", required_argument, NULL, O_XDP },
		{ "xdp-generic", no_argument, NULL, O_GENERIC },
		{ "bpffs", required_argument, NULL, O_BPFFS },
		{ "maglev-size", required_argument, NULL, O_MAGLEV },
		{ "ct-size", required_argument, NULL, O_CT },
		{ "datapath-version", required_argument, NULL, O_VERSION },
		{ "cleanup", no_argument, NULL, O_CLEANUP },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	enum log_level level;
	int opt, err = 0;

	while (!err && (opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case O_XDP:
			if (args->n_ifaces == MAX_IFACES) {
				fprintf(stderr, "Error: at most %d --xdp interfaces\n", MAX_IFACES);
				return 2;
			}
			args->ifaces[args->n_ifaces++] = optarg;
			break;
		case O_GENERIC:
			args->generic = true;
			break;
		case O_BPFFS:
			args->bpffs = optarg;
			break;
		case O_MAGLEV:
			err = parse_u32(optarg, "--maglev-size", &args->load.maglev_size);
			break;
		case O_CT:
			err = parse_u32(optarg, "--ct-size", &args->load.ct_size);
			break;
		case O_VERSION:
			err = parse_u32(optarg, "--datapath-version", &args->load.version);
			break;
		case O_CLEANUP:
			args->cleanup = true;
			break;
		case O_LOG:
			err = log_parse_level(optarg, &level);
			if (err)
				fprintf(stderr, "Error: --log-level: unknown level '%s'\n", optarg);
			else
				log_set_level(level);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!err && optind < argc) {
		fprintf(stderr, "Error: unexpected argument '%s'\n", argv[optind]);
		err = -EINVAL;
	}
	return err ? 2 : 0;
}

static int run_cleanup(const char *bpffs)
{
	int err = loader_cleanup(bpffs);

	if (err) {
		log_error("agent", "cleanup of %s failed: %s", bpffs, strerror(-err));
		return 1;
	}
	log_info("agent", "removed every pin under %s; the data path is detached", bpffs);
	return 0;
}

static int run_load(struct agent_args *args)
{
	struct lb_maps maps;
	struct xdp_lb *skel;
	int err = 0;

	args->load.pin_dir = args->bpffs;
	skel = loader_lb_load(&args->load, &maps);
	if (!skel) {
		log_error("agent", "loading the XDP load balancer failed: %s", strerror(errno));
		return 1;
	}
	for (int i = 0; i < args->n_ifaces && !err; i++) {
		err = loader_attach_xdp(skel, args->bpffs, args->ifaces[i], args->generic);
		if (err)
			log_error("agent", "attaching to %s failed: %s", args->ifaces[i],
				  strerror(-err));
	}
	if (!err)
		log_info("agent", "data path v%u ready: maps and links pinned under %s",
			 args->load.version, args->bpffs);
	/* Destroying the skeleton closes our fds only: pins keep it all alive. */
	xdp_lb__destroy(skel);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct agent_args args = {
		.bpffs = LB_DEFAULT_PIN_DIR,
		.load = { .maglev_size = SL_MAGLEV_DEFAULT_SIZE,
			  .ct_size = SL_CT_DEFAULT_SIZE,
			  .version = SL_DATAPATH_VERSION },
	};
	int status = parse_args(argc, argv, &args);

	if (status)
		return status;
	log_route_libbpf();
	if (args.cleanup)
		return run_cleanup(args.bpffs);
	return run_load(&args);
}
