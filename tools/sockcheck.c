/* sockcheck: run the sockcheck scenarios (user/lib/sockcheck.h) over a
 * local TCP connection and print one line each, "ok SCENARIO details" or
 * "FAIL SCENARIO: reason". The e2e tests run it inside a cgroup where
 * Sluice redirects sockets; "selftest" runs the agent's start-up subset.
 * Exit 0 when every scenario passed, 1 when one failed, 2 on usage. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockcheck.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sockcheck [OPTIONS] SCENARIO...\n"
		"       sockcheck list\n"
		"SCENARIO is a name from 'sockcheck list', 'all' (every one in order)\n"
		"or 'selftest' (the agent's start-up steps, with their own sizes).\n"
		"Options (0 or absent: the scenario's default):\n"
		"  --addr IP          address to listen on and connect to (127.0.0.1; IPv6 too)\n"
		"  --port N           listener port (0: ephemeral)\n"
		"  --repeat N         rounds of halfclose (50) and reset (3)\n"
		"  --size BYTES       bytes of bulk (64M) and sendfile (8M per method); K, M, G\n"
		"  --write BYTES      bytes per write() of bulk and sendfile (65536)\n"
		"  --count N          churn connections (1000); round trips of pingpong\n"
		"                     (10000), small (20000) and epoll (2000)\n"
		"  --timeout-ms N     deadline of each scenario (20000)\n"
		"  --reset-eagain-ok  reset: a blocked recv() may return EAGAIN once before\n"
		"                     the reset shows (redirected sockets on Linux 6.x)\n"
		"  -h, --help         this text\n");
}

static void list(void)
{
	const char *name;

	for (size_t i = 0; (name = sockcheck_scenario_name(i)); i++)
		printf("%-10s %s\n", name, sockcheck_scenario_summary(i));
	printf("%-10s %s\n", "all", "every scenario above, in this order");
	printf("%-10s %s\n", "selftest", "the agent's start-up self-test steps");
}

/* A byte count with an optional K, M or G (powers of 1024). */
static int parse_size(const char *text, unsigned long long max, unsigned long long *out)
{
	unsigned long long v, mul = 1;
	char *end;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || *text == '-')
		return -EINVAL;
	if (*end && end[1])
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		mul = 1ull << 10;
	else if (*end == 'm' || *end == 'M')
		mul = 1ull << 20;
	else if (*end == 'g' || *end == 'G')
		mul = 1ull << 30;
	else if (*end)
		return -EINVAL;
	if (v > max / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

static bool known(const char *name)
{
	const char *s;

	if (!strcmp(name, "all") || !strcmp(name, "selftest"))
		return true;
	for (size_t i = 0; (s = sockcheck_scenario_name(i)); i++) {
		if (!strcmp(s, name))
			return true;
	}
	return false;
}

/* Run one scenario under @label and print its line. Returns 0 when it passed. */
static int run_one(const char *label, const char *scenario, const struct sockcheck_opts *opts)
{
	char why[SOCKCHECK_TEXT_MAX], detail[SOCKCHECK_TEXT_MAX];
	int err = sockcheck_run(scenario, opts, why, sizeof(why), detail, sizeof(detail));

	if (err)
		printf("FAIL %s: %s\n", label, why);
	else
		printf("ok %s %s\n", label, detail);
	fflush(stdout);
	return err;
}

/* Run a name as given: a scenario, "all" or "selftest". Returns the failures. */
static int run_name(const char *name, const struct sockcheck_opts *opts)
{
	struct sockcheck_opts step;
	const char *label, *scenario;
	int failed = 0;

	if (!strcmp(name, "all")) {
		for (size_t i = 0; (scenario = sockcheck_scenario_name(i)); i++)
			failed += !!run_one(scenario, scenario, opts);
	} else if (!strcmp(name, "selftest")) {
		for (size_t i = 0; !sockcheck_selftest_step(i, opts, &step, &label, &scenario); i++)
			failed += !!run_one(label, scenario, &step);
	} else {
		failed += !!run_one(name, name, opts);
	}
	return failed;
}

/* Option @opt's value into @opts. Returns 0 or -EINVAL/-ERANGE. */
static int set_opt(struct sockcheck_opts *opts, int opt, const char *arg)
{
	unsigned long long v;
	int err;

	if (opt == 'a') {
		opts->addr = arg;
		return 0;
	}
	if (opt == 'e') {
		opts->reset_eagain_ok = true;
		return 0;
	}
	err = parse_size(arg, opt == 's' || opt == 'w' ? SIZE_MAX : INT_MAX, &v);
	if (err)
		return err;
	switch (opt) {
	case 'p':
		if (v > 65535)
			return -ERANGE;
		opts->port = (unsigned int)v;
		break;
	case 'r':
		opts->repeat = (unsigned int)v;
		break;
	case 's':
		opts->size = (size_t)v;
		break;
	case 'w':
		opts->write_size = (size_t)v;
		break;
	case 'c':
		opts->count = (unsigned int)v;
		break;
	case 't':
		opts->timeout_ms = (int)v;
		break;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct sockcheck_opts *opts)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 's' },
		{ "write", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "reset-eagain-ok", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt, idx;

	while ((opt = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			exit(0);
		}
		if (opt == '?')
			return -EINVAL;
		if (set_opt(opts, opt, optarg)) {
			fprintf(stderr, "Error: --%s: bad value '%s'\n", longopts[idx].name,
				optarg);
			return -EINVAL;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockcheck_opts opts = { 0 };
	int failed = 0;

	if (parse_args(argc, argv, &opts))
		goto usage;
	if (optind == argc)
		goto usage;
	if (argc - optind == 1 && !strcmp(argv[optind], "list")) {
		list();
		return 0;
	}
	for (int i = optind; i < argc; i++) {
		if (!known(argv[i])) {
			fprintf(stderr, "Error: no scenario '%s' (see 'sockcheck list')\n",
				argv[i]);
			return 2;
		}
	}
	for (int i = optind; i < argc; i++)
		failed += run_name(argv[i], &opts);
	return failed ? 1 : 0;
usage:
	usage(stderr);
	return 2;
}
