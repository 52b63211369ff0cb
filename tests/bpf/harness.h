/* BPF_PROG_TEST_RUN test harness, after tools/testing/selftests/bpf.
 *
 * ASSERT_* macros return bool, count checks and failures, and print
 * "file:line name: ..." on failure. run_tests() runs a table of cases and
 * ends with the summary line "<prefix>: N passed, M failed".
 */
#ifndef SLUICE_TESTS_HARNESS_H
#define SLUICE_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct bpf_object;

extern int harness_failures, harness_checks;

/* Count one check; on failure count it and print "file:line <fmt>\n".
 * Returns ok.
 */
bool harness_check(bool ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Count one check comparing two byte strings; on mismatch print both as
 * interleaved hexdumps (16 bytes a row, '^' under differing bytes).
 */
bool expect_bytes(const char *what, const void *want, size_t want_len, const void *got,
		  size_t got_len, const char *file, int line);

#define ASSERT_EQ(a, b, name)                                                            \
	({                                                                               \
		long long ___a = (long long)(a), ___b = (long long)(b);                  \
		harness_check(___a == ___b, __FILE__, __LINE__,                          \
			      "%s: got %lld (0x%llx) want %lld (0x%llx)", (name), ___a,  \
			      (unsigned long long)___a, ___b, (unsigned long long)___b); \
	})

#define ASSERT_NEQ(a, b, name)                                                           \
	({                                                                               \
		long long ___a = (long long)(a), ___b = (long long)(b);                  \
		harness_check(___a != ___b, __FILE__, __LINE__,                          \
			      "%s: got %lld (0x%llx), want anything else", (name), ___a, \
			      (unsigned long long)___a);                                 \
	})

/* a >= b, e.g. for file descriptors */
#define ASSERT_GE(a, b, name)                                                                \
	({                                                                                   \
		long long ___a = (long long)(a), ___b = (long long)(b);                      \
		harness_check(___a >= ___b, __FILE__, __LINE__, "%s: got %lld want >= %lld", \
			      (name), ___a, ___b);                                           \
	})

#define ASSERT_TRUE(c, name) \
	harness_check(!!(c), __FILE__, __LINE__, "%s: got false want true", (name))

#define ASSERT_FALSE(c, name) \
	harness_check(!(c), __FILE__, __LINE__, "%s: got true want false", (name))

/* err == 0; a negative errno (libbpf style) is printed via strerror */
#define ASSERT_OK(err, name)                                                                     \
	({                                                                                       \
		long long ___e = (long long)(err);                                               \
		harness_check(___e == 0, __FILE__, __LINE__, "%s: got %lld (%s) want 0", (name), \
			      ___e, strerror(___e < 0 ? (int)-___e : (int)___e));                \
	})

#define ASSERT_BYTES(want, wlen, got, glen, name) \
	expect_bytes((name), (want), (wlen), (got), (glen), __FILE__, __LINE__)

struct test_case {
	const char *name;
	void (*fn)(void);
};

/* Run the cases whose name contains filter (all if filter is NULL or "").
 * A case fails when any ASSERT_* fails while it runs. Prints "ok - name"
 * or "FAIL - name" per case, then "<prefix>: N passed, M failed" counting
 * cases (prefix NULL means "bpf"). Returns 0 if none failed, else 1.
 */
int run_tests(const struct test_case *cases, size_t n, const char *filter, const char *prefix);

/* Run prog once over in[0, in_len) with BPF_PROG_TEST_RUN. *out_len is
 * out's capacity on entry and the length the program produced on return;
 * out/out_len may be NULL to discard the output. *verdict (may be NULL)
 * receives the program's return value. Returns 0 or -errno; -ENOSPC means
 * out was too small: it holds the first bytes and *out_len the full size.
 * Works for any type taking data_in (XDP, SCHED_CLS); XDP needs
 * in_len >= 14.
 */
int xdp_run(int prog_fd, const void *in, size_t in_len, void *out, size_t *out_len,
	    uint32_t *verdict);

/* xdp_run() also passing a context (struct xdp_md / __sk_buff) in ctx,
 * which receives the context as the program left it.
 */
int prog_run_ctx(int prog_fd, const void *in, size_t in_len, void *out, size_t *out_len, void *ctx,
		 size_t ctx_len, uint32_t *retval);

/* Sum over all possible CPUs of the per-CPU array value at key, seen as
 * n_u64 u64 fields; sum_out receives n_u64 sums. Returns 0 or -errno.
 */
int percpu_sum_u64(int map_fd, uint32_t key, size_t n_u64, uint64_t *sum_out);

/* Open and load the BPF object at path and return the fd of its program
 * named prog_name (the first program if NULL), or -errno. On success
 * *objp owns the fd: release with bpf_object__close().
 */
/* Number of entries in map @fd (keys of at most 64 bytes). */
uint32_t map_count(int map_fd);
/* Delete every entry of hash map @fd (keys of at most 64 bytes). */
void map_clear(int map_fd);

int load_prog(const char *path, const char *prog_name, struct bpf_object **objp);

#endif /* SLUICE_TESTS_HARNESS_H */
