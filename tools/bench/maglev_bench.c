// SPDX-License-Identifier: GPL-2.0
/* maglev_bench: wall time of maglev_build() (user/lib/maglev.c), the
 * computation behind every change to a service's backends. Builds the
 * table for N equal-weight backends once to warm up, then R timed times,
 * checks that every slot holds one of the backends, and prints the median.
 * Run it pinned (taskset); tools/bench/control_plane.sh does.
 * Usage: maglev_bench [--backends N] [--size PRIME] [--runs R] */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "maglev.h"

#define KEY_LEN 18 /* as the agent seeds it: 16 address bytes, then the port */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--backends N] [--size PRIME] [--runs R]\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "backends", required_argument, NULL, 'b' },
					      { "size", required_argument, NULL, 's' },
					      { "runs", required_argument, NULL, 'r' },
					      {} };
	unsigned long n = 1000, size = MAGLEV_DEFAULT_SIZE, runs = 11;
	struct maglev_backend *be;
	uint8_t *keys;
	uint32_t *table, *slots, lo = UINT32_MAX, hi = 0;
	double *ms;
	int c, err;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'b')
			n = strtoul(optarg, NULL, 10);
		else if (c == 's')
			size = strtoul(optarg, NULL, 10);
		else if (c == 'r')
			runs = strtoul(optarg, NULL, 10);
		else
			usage(argv[0]);
	}
	if (optind != argc || !n || n > 65535 || !runs || runs > 1000 || !maglev_size_valid(size) ||
	    n > size)
		usage(argv[0]);
	be = calloc(n, sizeof(*be));
	keys = calloc(n, KEY_LEN);
	table = calloc(size, sizeof(*table));
	slots = calloc(n + 1, sizeof(*slots));
	ms = calloc(runs, sizeof(*ms));
	if (!be || !keys || !table || !slots || !ms) {
		fprintf(stderr, "maglev_bench: out of memory\n");
		return 1;
	}
	/* Backend i is 10.0.x.y:8080, as an IPv4 sl_backend key. */
	for (unsigned long i = 0; i < n; i++) {
		uint8_t *key = keys + i * KEY_LEN;

		key[0] = 10;
		key[2] = (uint8_t)(i >> 8);
		key[3] = (uint8_t)i;
		key[16] = 8080 >> 8;
		key[17] = 8080 & 0xff;
		be[i] = (struct maglev_backend){
			.id = (uint32_t)i + 1, .weight = 1, .key = key, .key_len = KEY_LEN
		};
	}
	for (unsigned long r = 0; r <= runs; r++) {
		double t0 = now_ms();

		err = maglev_build(be, n, table, (uint32_t)size);
		if (err) {
			fprintf(stderr, "maglev_bench: maglev_build: %s\n", strerror(-err));
			return 1;
		}
		if (r) /* run 0 warms up */
			ms[r - 1] = now_ms() - t0;
	}
	for (unsigned long i = 0; i < size; i++) {
		if (table[i] < 1 || table[i] > n) {
			fprintf(stderr, "maglev_bench: slot %lu holds %u, not a backend\n", i,
				table[i]);
			return 1;
		}
		slots[table[i]]++;
	}
	for (unsigned long i = 1; i <= n; i++) {
		lo = slots[i] < lo ? slots[i] : lo;
		hi = slots[i] > hi ? slots[i] : hi;
	}
	qsort(ms, runs, sizeof(*ms), cmp_double);
	printf("maglev_build: %lu backends, %lu slots (%u..%u per backend): "
	       "median %.3f ms [%.3f, %.3f] of %lu runs\n",
	       n, size, lo, hi, runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2,
	       ms[0], ms[runs - 1], runs);
	free(ms);
	free(slots);
	free(table);
	free(keys);
	free(be);
	return 0;
}
