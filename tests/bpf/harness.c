/* BPF_PROG_TEST_RUN harness: check accounting, hexdump diffs, the test
 * table runner and thin libbpf wrappers (test run, per-CPU sums, loading).
 * Everything prints to stdout so failure details stay in order with the
 * per-case "ok"/"FAIL" lines.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "harness.h"

#define ROW 16

int harness_failures, harness_checks;

bool harness_check(bool ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	harness_checks++;
	if (ok)
		return true;
	harness_failures++;
	printf("%s:%d ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return false;
}

static bool byte_differs(const uint8_t *w, size_t wl, const uint8_t *g, size_t gl, size_t i)
{
	if (i < wl && i < gl)
		return w[i] != g[i];
	return (i < wl) != (i < gl);
}

static bool row_differs(const uint8_t *w, size_t wl, const uint8_t *g, size_t gl, size_t row)
{
	size_t i;

	for (i = row; i < row + ROW; i++)
		if (byte_differs(w, wl, g, gl, i))
			return true;
	return false;
}

/* One hexdump row of b; ".." marks bytes past b's end but within the
 * longer buffer (max), blanks pad past both.
 */
static void print_row(const char *lead, const uint8_t *b, size_t blen, size_t max, size_t row)
{
	size_t i;

	fputs(lead, stdout);
	for (i = row; i < row + ROW && i < max; i++) {
		if (i == row + ROW / 2)
			putchar(' ');
		if (i < blen)
			printf(" %02x", b[i]);
		else
			fputs(" ..", stdout);
	}
	putchar('\n');
}

static void print_marks(const uint8_t *w, size_t wl, const uint8_t *g, size_t gl, size_t row)
{
	size_t i, last = row;

	for (i = row; i < row + ROW; i++)
		if (byte_differs(w, wl, g, gl, i))
			last = i;
	fputs("        ", stdout);
	for (i = row; i <= last; i++) {
		if (i == row + ROW / 2)
			putchar(' ');
		fputs(byte_differs(w, wl, g, gl, i) ? " ^^" : "   ", stdout);
	}
	putchar('\n');
}

/* Equal rows print once ("="); differing rows print want ("-"), got
 * ("+") and a marker line, like a unified diff.
 */
static void hexdump_diff(const uint8_t *w, size_t wl, const uint8_t *g, size_t gl)
{
	size_t max = wl > gl ? wl : gl;
	char lead[32];
	size_t row;

	printf("        '-' want, '+' got, '^^' differs, '..' past the end\n");
	for (row = 0; row < max; row += ROW) {
		if (!row_differs(w, wl, g, gl, row)) {
			snprintf(lead, sizeof(lead), "  %04zx =", row);
			print_row(lead, w, wl, max, row);
			continue;
		}
		snprintf(lead, sizeof(lead), "  %04zx -", row);
		print_row(lead, w, wl, max, row);
		print_row("       +", g, gl, max, row);
		print_marks(w, wl, g, gl, row);
	}
}

bool expect_bytes(const char *what, const void *want, size_t want_len, const void *got,
		  size_t got_len, const char *file, int line)
{
	const uint8_t *w = want, *g = got;
	size_t first = 0;

	harness_checks++;
	if (want_len == got_len && (!want_len || !memcmp(w, g, want_len)))
		return true;
	harness_failures++;
	while (!byte_differs(w, want_len, g, got_len, first))
		first++;
	printf("%s:%d %s: bytes differ (want %zu bytes, got %zu, first at 0x%zx)\n", file, line,
	       what, want_len, got_len, first);
	hexdump_diff(w, want_len, g, got_len);
	return false;
}

int run_tests(const struct test_case *cases, size_t n, const char *filter, const char *prefix)
{
	int passed = 0, failed = 0;
	int before;
	size_t i;

	for (i = 0; i < n; i++) {
		if (filter && *filter && !strstr(cases[i].name, filter))
			continue;
		before = harness_failures;
		cases[i].fn();
		if (harness_failures == before) {
			passed++;
			printf("ok - %s\n", cases[i].name);
		} else {
			failed++;
			printf("FAIL - %s\n", cases[i].name);
		}
		fflush(stdout);
	}
	printf("%s: %d passed, %d failed\n", prefix ? prefix : "bpf", passed, failed);
	fflush(stdout);
	return failed ? 1 : 0;
}

int prog_run_ctx(int prog_fd, const void *in, size_t in_len, void *out, size_t *out_len, void *ctx,
		 size_t ctx_len, uint32_t *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = in_len, .ctx_in = ctx,
		    .ctx_size_in = ctx_len, .ctx_out = ctx, .ctx_size_out = ctx_len, .repeat = 1, );
	int err;

	if (out) {
		/* the kernel reads data_size_out == 0 as "no limit" */
		if (!out_len || !*out_len)
			return -EINVAL;
		opts.data_out = out;
		opts.data_size_out = *out_len;
	}
	err = bpf_prog_test_run_opts(prog_fd, &opts);
	/* on -ENOSPC the program did run: size and verdict are reported */
	if (out_len && (!err || err == -ENOSPC))
		*out_len = opts.data_size_out;
	if (retval && (!err || err == -ENOSPC))
		*retval = opts.retval;
	return err;
}

int xdp_run(int prog_fd, const void *in, size_t in_len, void *out, size_t *out_len,
	    uint32_t *verdict)
{
	return prog_run_ctx(prog_fd, in, in_len, out, out_len, NULL, 0, verdict);
}

int percpu_sum_u64(int map_fd, uint32_t key, size_t n_u64, uint64_t *sum_out)
{
	int ncpu = libbpf_num_possible_cpus();
	/* per-CPU values sit at 8-byte strides, which n_u64 u64s already are */
	size_t stride = n_u64;
	uint64_t *vals;
	size_t f;
	int cpu, err;

	if (ncpu < 0)
		return ncpu;
	vals = calloc((size_t)ncpu * stride, sizeof(uint64_t));
	if (!vals)
		return -ENOMEM;
	err = bpf_map_lookup_elem(map_fd, &key, vals);
	if (err) {
		err = -errno;
		goto out;
	}
	for (f = 0; f < n_u64; f++)
		sum_out[f] = 0;
	for (cpu = 0; cpu < ncpu; cpu++)
		for (f = 0; f < n_u64; f++)
			sum_out[f] += vals[cpu * stride + f];
out:
	free(vals);
	return err;
}

int load_prog(const char *path, const char *prog_name, struct bpf_object **objp)
{
	struct bpf_program *prog;
	struct bpf_object *obj;
	int err;

	obj = bpf_object__open_file(path, NULL);
	if (!obj)
		return -errno;
	err = bpf_object__load(obj);
	if (err)
		goto err_close;
	if (prog_name)
		prog = bpf_object__find_program_by_name(obj, prog_name);
	else
		prog = bpf_object__next_program(obj, NULL);
	if (!prog) {
		err = -ENOENT;
		goto err_close;
	}
	*objp = obj;
	return bpf_program__fd(prog);
err_close:
	bpf_object__close(obj);
	return err;
}

uint32_t map_count(int map_fd)
{
	char key[64], next[64];
	void *prev = NULL;
	uint32_t n = 0;

	/* A copy of the key: get_next_key must not read the buffer it writes. */
	while (!bpf_map_get_next_key(map_fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	return n;
}

void map_clear(int map_fd)
{
	char key[64];

	while (!bpf_map_get_next_key(map_fd, NULL, key))
		if (bpf_map_delete_elem(map_fd, key))
			break;
}
