/* Tests of the `sluice` CLI (user/sluice/) as a black box: the real binary
 * run with a chosen argv and environment against a fake agent, a thread
 * that listens on a Unix socket in a temporary directory, records the one
 * request it gets and answers a canned reply. Covered: usage errors (exit 2,
 * no request), the exact request of each change verb, how replies and an
 * absent agent are shown (the endpoint and policy lists included), and
 * help at every level. The binary is $SLUICE_BUILD/sluice, else
 * build/sluice from the current directory. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <json-c/json.h>
#include <cmocka.h>

#define CHILD_TIMEOUT_MS 5000 /* the CLI must exit within this */
#define AGENT_TIMEOUT_MS 5000 /* the fake agent stops waiting after this */
#define REQUEST_MAX (16u << 20) /* the fake agent reads at most this much */
#define MAX_ARGS 24

#define VIP "198.19.0.10:80/tcp"
#define BE "198.18.1.2:8080"
#define OK_REPLY "{\"ok\":true}\n"
#define NAME_31 "abcdefghijklmnopqrstuvwxyz01234"
#define NAME_32 NAME_31 "5"

static char bin[PATH_MAX]; /* the sluice binary; "" when it is missing */
static char dir[] = "/tmp/sluice-test-cli-XXXXXX";
static char sock[PATH_MAX]; /* where the fake agent listens */
static char absent_sock[PATH_MAX]; /* where nothing listens */
static char bpffs[PATH_MAX]; /* a pin directory that does not exist */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ---- the fake agent ---- */

static void unix_addr(struct sockaddr_un *sun, const char *path)
{
	size_t len = strlen(path);

	assert_true(len < sizeof(sun->sun_path));
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len + 1);
}

struct agent {
	const char *reply; /* sent as is; NULL: close without a reply */
	int listen_fd, stop_fd;
	pthread_t thread;
	/* Read only after agent_stop(): */
	int connections;
	char *request; /* the bytes received, NUL-terminated; NULL: none */
	size_t request_len;
};

/* Read one request from @fd: up to a newline, EOF, an error or a timeout. */
static void agent_read(struct agent *a, int fd)
{
	struct timeval tv = { .tv_sec = AGENT_TIMEOUT_MS / 1000 };
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap + 1), *bigger;
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (buf) {
		if (len == cap) {
			bigger = cap < REQUEST_MAX ? realloc(buf, 2 * cap + 1) : NULL;
			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf + len - n, '\n', (size_t)n))
			break;
	}
	if (!buf)
		return;
	buf[len] = '\0';
	a->request = buf;
	a->request_len = len;
}

static void agent_serve(struct agent *a, int fd)
{
	size_t len = a->reply ? strlen(a->reply) : 0, off = 0;
	ssize_t n;

	agent_read(a, fd);
	while (off < len) {
		n = send(fd, a->reply + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

/* Serve the first connection; stop when told (after one last look for a
 * connection already queued) or after AGENT_TIMEOUT_MS. */
static void *agent_main(void *arg)
{
	struct agent *a = arg;
	struct pollfd pfd[2] = {
		{ .fd = a->listen_fd, .events = POLLIN },
		{ .fd = a->stop_fd, .events = POLLIN },
	};
	long long deadline = now_ms() + AGENT_TIMEOUT_MS;
	int fd = -1;

	while (fd < 0 && now_ms() < deadline) {
		pfd[1].revents = 0;
		if (poll(pfd, 2, (int)(deadline - now_ms())) < 0 && errno != EINTR)
			break;
		fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 && pfd[1].revents)
			break;
	}
	if (fd < 0)
		return NULL;
	a->connections++;
	agent_serve(a, fd);
	close(fd);
	return NULL;
}

/* Listen on @sock and answer @reply to the first request. */
static void agent_start(struct agent *a, const char *reply)
{
	struct sockaddr_un sun;

	memset(a, 0, sizeof(*a));
	a->reply = reply;
	unix_addr(&sun, sock);
	unlink(sock);
	a->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(a->listen_fd >= 0);
	assert_int_equal(bind(a->listen_fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(a->listen_fd, 8), 0);
	a->stop_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(a->stop_fd >= 0);
	assert_int_equal(pthread_create(&a->thread, NULL, agent_main, a), 0);
}

static void agent_stop(struct agent *a)
{
	assert_int_equal(eventfd_write(a->stop_fd, 1), 0);
	assert_int_equal(pthread_join(a->thread, NULL), 0);
	close(a->stop_fd);
	close(a->listen_fd);
	unlink(sock);
}

static void agent_free(struct agent *a)
{
	free(a->request);
	a->request = NULL;
}

/* ---- running the CLI ---- */

struct result {
	int status; /* exit status; 128 + signal; -1: killed after CHILD_TIMEOUT_MS */
	char *out, *err; /* NUL-terminated */
	size_t out_len;
};

static char *read_all(const char *path, size_t *len_out)
{
	struct stat st;
	char *buf;
	FILE *f = fopen(path, "rb");
	size_t len;

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	len = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	buf[len] = '\0';
	if (len_out)
		*len_out = len;
	return buf;
}

static void sleep_us(long us)
{
	struct timespec ts = { .tv_nsec = us * 1000 };

	nanosleep(&ts, NULL);
}

/* Run sluice with @args (NULL-terminated, after argv[0]) in an environment
 * of PATH, LC_ALL, SLUICE_SOCKET=@socket_env and SLUICE_BPFFS=@bpffs; its
 * stdout and stderr go to files in @dir, its stdin is /dev/null. */
static void run_cli(const char *const *args, const char *socket_env, struct result *r)
{
	char out_path[PATH_MAX], err_path[PATH_MAX], env_socket[PATH_MAX + 16],
		env_bpffs[PATH_MAX + 16];
	char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", env_socket, env_bpffs,
			 NULL };
	char *argv[MAX_ARGS + 2] = { bin };
	long long deadline;
	int n = 0, ws = 0;
	pid_t pid, w;

	while (args[n]) {
		assert_true(n < MAX_ARGS);
		argv[n + 1] = (char *)args[n];
		n++;
	}
	argv[n + 1] = NULL;
	snprintf(out_path, sizeof(out_path), "%s/stdout", dir);
	snprintf(err_path, sizeof(err_path), "%s/stderr", dir);
	snprintf(env_socket, sizeof(env_socket), "SLUICE_SOCKET=%s", socket_env);
	snprintf(env_bpffs, sizeof(env_bpffs), "SLUICE_BPFFS=%s", bpffs);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Only async-signal-safe calls: the fake agent's thread may hold locks. */
		int in = open("/dev/null", O_RDONLY);
		int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
		    dup2(err, 2) < 0)
			_exit(126);
		execve(bin, argv, envp);
		_exit(127);
	}
	deadline = now_ms() + CHILD_TIMEOUT_MS;
	while ((w = waitpid(pid, &ws, WNOHANG)) == 0 && now_ms() < deadline)
		sleep_us(200);
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &ws, 0);
		r->status = -1;
	} else {
		r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	}
	r->out = read_all(out_path, &r->out_len);
	r->err = read_all(err_path, NULL);
}

static void result_free(struct result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* ---- checks ---- */

/* What a run must give; NULL fields are not checked. */
struct expect {
	int status;
	const char *out; /* stdout, exactly */
	const char *out_json; /* stdout, one JSON value equal to this */
	const char *err; /* stderr, exactly */
	const char *out_has[2]; /* substrings of stdout */
	const char *err_has[3]; /* substrings of stderr */
	bool request; /* the agent got exactly one request (else none at all) */
	const char *request_json; /* ... equal to this */
};

static bool json_equal_text(struct json_object *got, const char *want_text)
{
	struct json_object *want = json_tokener_parse(want_text);
	bool equal;

	assert_non_null(want); /* the test's own JSON */
	equal = json_object_equal(got, want);
	json_object_put(want);
	return equal;
}

/* The @len bytes of @text are one JSON value (and whitespace), equal to @want_text. */
static bool json_text_equal(const char *text, size_t len, const char *want_text)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *got = json_tokener_parse_ex(tok, text, (int)len);
	size_t end = got ? json_tokener_get_parse_end(tok) : len;
	bool equal = got != NULL;

	for (; equal && end < len; end++)
		equal = text[end] == ' ' || text[end] == '\n';
	equal = equal && json_equal_text(got, want_text);
	json_object_put(got);
	json_tokener_free(tok);
	return equal;
}

/* The request is one line: a JSON object and a final newline. */
static bool request_ok(const struct agent *a, const char *want_json)
{
	const char *nl = a->request ? memchr(a->request, '\n', a->request_len) : NULL;

	if (!nl || nl != a->request + a->request_len - 1 || a->request[0] != '{')
		return false;
	return !want_json || json_text_equal(a->request, a->request_len - 1, want_json);
}

static bool check_run(const struct result *r, const struct agent *a, const struct expect *e)
{
	if (r->status != e->status || (e->out && strcmp(r->out, e->out)) ||
	    (e->out_json && !json_text_equal(r->out, r->out_len, e->out_json)) ||
	    (e->err && strcmp(r->err, e->err)))
		return false;
	for (int i = 0; i < 2 && e->out_has[i]; i++) {
		if (!strstr(r->out, e->out_has[i]))
			return false;
	}
	for (int i = 0; i < 3 && e->err_has[i]; i++) {
		if (!strstr(r->err, e->err_has[i]))
			return false;
	}
	if (!a)
		return true;
	if (!e->request)
		return a->connections == 0 && !a->request;
	return a->connections == 1 && request_ok(a, e->request_json);
}

static void show_args(const char *const *args)
{
	print_error("  sluice");
	for (int i = 0; args[i]; i++)
		print_error(" '%s'", args[i]);
	print_error("\n");
}

static void show_failure(const char *desc, const char *const *args, const struct result *r,
			 const struct agent *a, const struct expect *e)
{
	print_error("%s: exit %d (want %d)\n", desc, r->status, e->status);
	show_args(args);
	print_error("  stdout: %.2000s\n  stderr: %.2000s\n", r->out, r->err);
	if (e->out || e->out_json)
		print_error("  want stdout: %s\n", e->out ? e->out : e->out_json);
	for (int i = 0; i < 2 && e->out_has[i]; i++)
		print_error("  want in stdout: %s\n", e->out_has[i]);
	if (e->err)
		print_error("  want stderr: %s\n", e->err);
	for (int i = 0; i < 3 && e->err_has[i]; i++)
		print_error("  want in stderr: %s\n", e->err_has[i]);
	if (a)
		print_error("  agent: %d connection(s), request: %.2000s\n  want request: %s\n",
			    a->connections, a->request ? a->request : "(none)",
			    !e->request	      ? "(none)"
			    : e->request_json ? e->request_json
					      : "(any)");
}

/* Run @args with SLUICE_SOCKET=@socket_env while the fake agent listens at
 * @sock and answers @reply (NULL: it closes without a reply). */
static bool run_agent_check(const char *desc, const char *const *args, const char *socket_env,
			    const char *reply, const struct expect *e)
{
	struct result r = {};
	struct agent a;
	bool ok;

	agent_start(&a, reply);
	run_cli(args, socket_env, &r);
	agent_stop(&a);
	ok = check_run(&r, &a, e);
	if (!ok)
		show_failure(desc, args, &r, &a, e);
	agent_free(&a);
	result_free(&r);
	return ok;
}

/* Run @args against the fake agent answering @reply, or, when @reply is
 * NULL, with no agent: SLUICE_SOCKET then names a path where nothing listens. */
static bool run_check(const char *desc, const char *const *args, const char *reply,
		      const struct expect *e)
{
	struct result r = {};
	bool ok;

	if (reply)
		return run_agent_check(desc, args, sock, reply, e);
	run_cli(args, absent_sock, &r);
	ok = check_run(&r, NULL, e);
	if (!ok)
		show_failure(desc, args, &r, NULL, e);
	result_free(&r);
	return ok;
}

static void need_binary(void)
{
	if (!bin[0]) {
		print_message("sluice binary not found; skipping\n");
		skip();
	}
}

/* ---- usage errors: exit 2, "Error: ..." on stderr, no request ---- */

struct usage_case {
	int status;
	const char *desc;
	const char *args[12];
	const char *error; /* in the "Error: " line */
};

static const struct usage_case usage_cases[] = {
	{ 2, "unknown command", { "frobnicate" }, "unknown command 'frobnicate'" },
	{ 2, "unknown verb", { "service", "frob" }, "unknown command 'frob' for service" },
	{ 2,
	  "verb of another object",
	  { "backend", "list" },
	  "unknown command 'list' for backend" },
	{ 2, "ambiguous st", { "st" }, "ambiguous 'st'" },
	{ 2, "ambiguous stat", { "stat" }, "ambiguous 'stat'" },
	{ 2, "ambiguous s", { "s", "add", VIP }, "ambiguous 's'" },
	{ 2, "empty command", { "" }, "ambiguous ''" },
	{ 2, "longer than the command", { "services", "add", VIP }, "unknown command 'services'" },
	{ 2, "service add without VIP", { "service", "add" }, "usage: sluice service add" },
	{ 2,
	  "service add, name only",
	  { "service", "add", "--name", "web" },
	  "usage: sluice service add" },
	{ 2,
	  "no proto",
	  { "service", "add", "198.19.0.10:80" },
	  "invalid service '198.19.0.10:80'" },
	{ 2, "sctp", { "service", "add", "198.19.0.10:80/sctp" }, "invalid service" },
	{ 2, "empty proto", { "service", "add", "198.19.0.10:80/" }, "invalid service" },
	{ 2, "octet 300", { "service", "add", "198.19.0.300:80/tcp" }, "invalid service" },
	{ 2, "three octets", { "service", "add", "198.19.0:80/tcp" }, "invalid service" },
	{ 2, "hostname", { "service", "add", "localhost:80/tcp" }, "invalid service" },
	{ 2, "IPv6 without brackets", { "service", "add", "fd00::10:80/tcp" }, "invalid service" },
	{ 2, "IPv4 in brackets", { "service", "add", "[198.19.0.10]:80/tcp" }, "invalid service" },
	{ 2, "IPv6 without port", { "service", "add", "[fd00::10]/tcp" }, "invalid service" },
	{ 2, "port 0", { "service", "add", "198.19.0.10:0/tcp" }, "invalid service" },
	{ 2, "port 65536", { "service", "add", "198.19.0.10:65536/udp" }, "invalid service" },
	{ 2, "port -1", { "service", "add", "198.19.0.10:-1/udp" }, "invalid service" },
	{ 2, "empty port", { "service", "add", "198.19.0.10:/tcp" }, "invalid service" },
	{ 2, "no port", { "service", "add", "198.19.0.10/tcp" }, "invalid service" },
	{ 2, "service del without VIP", { "service", "del" }, "usage: sluice service del" },
	{ 2, "service del, bad VIP", { "service", "del", "198.19.0.10:80" }, "invalid service" },
	{ 2,
	  "backend add without backend",
	  { "backend", "add", VIP },
	  "usage: sluice backend add" },
	{ 2, "backend add, no arguments", { "backend", "add" }, "usage: sluice backend add" },
	{ 2,
	  "backend add, bad VIP",
	  { "backend", "add", "198.19.0.10:80", BE },
	  "invalid service" },
	{ 2,
	  "backend without port",
	  { "backend", "add", VIP, "198.18.1.2" },
	  "invalid backend '198.18.1.2'" },
	{ 2,
	  "backend with proto",
	  { "backend", "add", VIP, "198.18.1.2:80/tcp" },
	  "invalid backend" },
	{ 2, "backend port 0", { "backend", "add", VIP, "198.18.1.2:0" }, "invalid backend" },
	{ 2,
	  "backend IPv6 without brackets",
	  { "backend", "add", VIP, "fd00::2:80" },
	  "invalid backend" },
	{ 2,
	  "backend del, bad backend",
	  { "backend", "del", VIP, "198.18.1.256:80" },
	  "invalid backend" },
	{ 2,
	  "backend set without --weight",
	  { "backend", "set", VIP, BE },
	  "usage: sluice backend set" },
	{ 2,
	  "backend set without backend",
	  { "backend", "set", VIP, "--weight", "3" },
	  "usage: sluice backend set" },
	{ 2,
	  "--weight 1001",
	  { "backend", "add", VIP, BE, "--weight", "1001" },
	  "--weight: '1001' is not a number in 0..1000" },
	{ 2,
	  "--weight -1",
	  { "backend", "set", VIP, BE, "--weight", "-1" },
	  "--weight: '-1' is not a number in 0..1000" },
	{ 2, "--weight x", { "backend", "set", VIP, BE, "--weight", "x" }, "--weight: 'x'" },
	{ 2, "--weight empty", { "backend", "set", VIP, BE, "--weight", "" }, "--weight: ''" },
	{ 2, "--weight 5x", { "backend", "set", VIP, BE, "--weight=5x" }, "--weight: '5x'" },
	{ 2,
	  "--weight 2^32",
	  { "backend", "add", VIP, BE, "--weight", "4294967296" },
	  "--weight: '4294967296'" },
	{ 2,
	  "--weight without value",
	  { "backend", "set", VIP, BE, "--weight" },
	  "--weight needs a value" },
	{ 2,
	  "--affinity 0",
	  { "service", "add", VIP, "--affinity", "0" },
	  "--affinity: '0' is not a number in 1..86400" },
	{ 2,
	  "--affinity 86401",
	  { "service", "add", VIP, "--affinity", "86401" },
	  "--affinity: '86401'" },
	{ 2, "--affinity -5", { "service", "add", VIP, "--affinity", "-5" }, "--affinity: '-5'" },
	{ 2,
	  "--affinity abc",
	  { "service", "add", VIP, "--affinity", "abc" },
	  "--affinity: 'abc'" },
	{ 2,
	  "--name of 32",
	  { "service", "add", VIP, "--name", NAME_32 },
	  "--name: longer than 31 characters" },
	{ 2, "--name without value", { "service", "add", VIP, "--name" }, "--name needs a value" },
	{ 2, "unknown long option", { "service", "add", VIP, "--bogus" }, "unknown option" },
	{ 2, "--l7 grpc", { "service", "add", VIP, "--l7", "grpc" }, "unknown protocol 'grpc'" },
	{ 2, "unknown short option", { "service", "add", VIP, "-x" }, "unknown option" },
	{ 2,
	  "--name on service del",
	  { "service", "del", VIP, "--name", "web" },
	  "does not go with" },
	{ 2,
	  "--weight on backend del",
	  { "backend", "del", VIP, BE, "--weight", "5" },
	  "does not go with" },
	{ 2,
	  "--affinity on backend add",
	  { "backend", "add", VIP, BE, "--affinity", "5" },
	  "does not go with" },
	{ 2,
	  "--weight on service add",
	  { "service", "add", VIP, "--weight", "5" },
	  "does not go with" },
	{ 2,
	  "service add, extra",
	  { "service", "add", VIP, "198.19.0.11:80/tcp" },
	  "usage: sluice service add" },
	{ 2, "service del, extra", { "service", "del", VIP, "x" }, "usage: sluice service del" },
	{ 2,
	  "backend add, extra",
	  { "backend", "add", VIP, BE, "198.18.1.3:80" },
	  "usage: sluice backend add" },
	{ 2,
	  "backend del, extra",
	  { "backend", "del", VIP, BE, "x" },
	  "usage: sluice backend del" },
	{ 2, "service list, extra", { "service", "list", "x" }, "usage: sluice service list" },
	{ 2, "stats, extra", { "stats", "x" }, "usage: sluice stats" },
	{ 2, "stats, option", { "stats", "--bogus" }, "usage: sluice stats" },
	{ 2, "status, extra", { "status", "x" }, "usage: sluice status" },
	{ 2,
	  "--socket without value",
	  { "service", "add", VIP, "--socket" },
	  "--socket needs a value" },
	{ 2, "--bpffs without value", { "stats", "--bpffs" }, "--bpffs needs a value" },
	{ 2, "apply without -f", { "apply" }, "usage: sluice apply -f FILE" },
	{ 2, "apply FILE", { "apply", "/nonexistent/sluice.yaml" }, "usage: sluice apply -f FILE" },
	{ 2, "apply -f without file", { "apply", "-f" }, "usage: sluice apply -f FILE" },
	{ 2,
	  "apply -x FILE",
	  { "apply", "-x", "/nonexistent/sluice.yaml" },
	  "usage: sluice apply -f FILE" },
	{ 2,
	  "apply -f FILE extra",
	  { "apply", "-f", "/nonexistent/sluice.yaml", "x" },
	  "usage: sluice apply -f FILE" },
	{ 1,
	  "apply -f missing file",
	  { "apply", "-f", "/nonexistent/sluice.yaml" },
	  "cannot read /nonexistent/sluice.yaml: No such file or directory" },
	{ 1, "apply -f a directory", { "apply", "-f", "/" }, "cannot read /: Is a directory" },
};

/* Run @n usage cases; returns how many failed. */
static size_t run_usage_cases(const struct usage_case *cases, size_t n)
{
	size_t failed = 0;

	for (size_t i = 0; i < n; i++) {
		const struct usage_case *c = &cases[i];
		struct expect e = {
			.status = c->status,
			.out = "",
			.err_has = { "Error: ", c->error },
		};

		failed += !run_check(c->desc, c->args, OK_REPLY, &e);
	}
	return failed;
}

static void test_usage_errors(void **state)
{
	(void)state;
	need_binary();
	assert_int_equal(run_usage_cases(usage_cases, sizeof(usage_cases) / sizeof(usage_cases[0])),
			 0);
}

/* With -j the error is a JSON object on stdout, with a hint when there is one. */
static void test_usage_errors_json(void **state)
{
	const char *unknown[] = { "-j", "frobnicate", NULL };
	const char *weight[] = { "backend", "set", VIP, BE, "--weight", "x", "--json", NULL };
	const char *pretty[] = { "service", "add", "198.19.0.10:80", "-p", NULL };
	const char *missing[] = { "-j", "apply", "-f", "/nonexistent/sluice.yaml", NULL };
	struct expect e = {
		.status = 2,
		.out = "{\"error\":\"unknown command 'frobnicate'\","
		       "\"hint\":\"see `sluice help` for the commands\"}\n",
		.err = "",
	};

	(void)state;
	need_binary();
	assert_true(run_check("-j unknown command", unknown, OK_REPLY, &e));
	e.out = "{\"error\":\"--weight: 'x' is not a number in 0..1000\"}\n";
	assert_true(run_check("--json bad weight", weight, OK_REPLY, &e));
	e.out = NULL;
	e.out_json = "{\"error\":\"invalid service '198.19.0.10:80'\",\"hint\":\"write "
		     "VIP:PORT/PROTO, e.g. 198.19.0.10:80/tcp or [fd00::10]:53/udp\"}";
	assert_true(run_check("-p bad service", pretty, OK_REPLY, &e));
	e.status = 1;
	e.out_json = "{\"error\":\"cannot read /nonexistent/sluice.yaml: No such file or "
		     "directory\",\"hint\":\"nothing was changed\"}";
	assert_true(run_check("-j apply missing file", missing, OK_REPLY, &e));
}

/* ---- valid commands: exactly the right request ---- */

struct request_case {
	const char *desc;
	const char *args[20];
	const char *request;
};

#define SVC_REQ(op) "{\"op\":\"" op "\",\"service\":\"" VIP "\""
#define BE_REQ(op) SVC_REQ(op) ",\"backend\":\"" BE "\""

static const struct request_case request_cases[] = {
	{ "service add", { "service", "add", VIP }, SVC_REQ("service.add") "}" },
	{ "service add --name --affinity",
	  { "service", "add", VIP, "--name", "web", "--affinity", "30" },
	  SVC_REQ("service.add") ",\"name\":\"web\",\"affinity\":30}" },
	{ "options first, = form",
	  { "service", "add", "--affinity=86400", "--name=web.v2_x-1", VIP },
	  SVC_REQ("service.add") ",\"name\":\"web.v2_x-1\",\"affinity\":86400}" },
	{ "--affinity 1",
	  { "service", "add", VIP, "--affinity", "1" },
	  SVC_REQ("service.add") ",\"affinity\":1}" },
	{ "--l7 http",
	  { "service", "add", VIP, "--l7", "http" },
	  SVC_REQ("service.add") ",\"l7\":\"http\"}" },
	{ "--name of 31",
	  { "service", "add", VIP, "--name", NAME_31 },
	  SVC_REQ("service.add") ",\"name\":\"" NAME_31 "\"}" },
	{ "IPv6 service",
	  { "service", "add", "[fd00::10]:53/udp", "--name", "dns" },
	  "{\"op\":\"service.add\",\"service\":\"[fd00::10]:53/udp\",\"name\":\"dns\"}" },
	{ "port 65535",
	  { "service", "add", "198.19.0.10:65535/udp" },
	  "{\"op\":\"service.add\",\"service\":\"198.19.0.10:65535/udp\"}" },
	{ "service del", { "service", "del", VIP }, SVC_REQ("service.del") "}" },
	{ "backend add, weight 1 by default",
	  { "backend", "add", VIP, BE },
	  BE_REQ("backend.add") ",\"weight\":1}" },
	{ "backend add --weight 0",
	  { "backend", "add", VIP, BE, "--weight", "0" },
	  BE_REQ("backend.add") ",\"weight\":0}" },
	{ "backend add --weight 1000 first",
	  { "backend", "add", "--weight", "1000", VIP, BE },
	  BE_REQ("backend.add") ",\"weight\":1000}" },
	{ "backend add IPv6",
	  { "backend", "add", "[fd00::10]:80/tcp", "[fd00:1::2]:8080", "--weight=7" },
	  "{\"op\":\"backend.add\",\"service\":\"[fd00::10]:80/tcp\","
	  "\"backend\":\"[fd00:1::2]:8080\",\"weight\":7}" },
	{ "backend del, no weight", { "backend", "del", VIP, BE }, BE_REQ("backend.del") "}" },
	{ "backend set",
	  { "backend", "set", VIP, BE, "--weight", "0" },
	  BE_REQ("backend.set") ",\"weight\":0}" },
	{ "backend set, last --weight wins",
	  { "backend", "set", VIP, BE, "--weight", "5", "--weight", "9" },
	  BE_REQ("backend.set") ",\"weight\":9}" },
	{ "serv add", { "serv", "add", VIP }, SVC_REQ("service.add") "}" },
	{ "se a", { "se", "a", VIP }, SVC_REQ("service.add") "}" },
	{ "ser d", { "ser", "d", VIP }, SVC_REQ("service.del") "}" },
	{ "b a", { "b", "a", VIP, BE }, BE_REQ("backend.add") ",\"weight\":1}" },
	{ "back d", { "back", "d", VIP, BE }, BE_REQ("backend.del") "}" },
	{ "b s, --w", { "b", "s", VIP, BE, "--w", "4" }, BE_REQ("backend.set") ",\"weight\":4}" },
	{ "--n, --aff",
	  { "service", "add", VIP, "--n", "web", "--aff", "9" },
	  SVC_REQ("service.add") ",\"name\":\"web\",\"affinity\":9}" },
	{ "-j first", { "-j", "service", "add", VIP }, SVC_REQ("service.add") "}" },
	{ "--json between", { "service", "--json", "add", VIP }, SVC_REQ("service.add") "}" },
	{ "-p after the verb", { "backend", "del", "-p", VIP, BE }, BE_REQ("backend.del") "}" },
	{ "--pretty last",
	  { "backend", "add", VIP, BE, "--pretty" },
	  BE_REQ("backend.add") ",\"weight\":1}" },
	{ "--bpffs anywhere",
	  { "--bpffs", "/nonexistent", "service", "del", VIP, "--bpffs", "/x" },
	  SVC_REQ("service.del") "}" },
	{ "everything mixed",
	  { "-j", "b", "--bpffs", "/x", "a", "--weight", "3", VIP, "-p", BE },
	  BE_REQ("backend.add") ",\"weight\":3}" },
};

/* Run @n request cases; returns how many failed. */
static size_t run_request_cases(const struct request_case *cases, size_t n)
{
	size_t failed = 0;

	for (size_t i = 0; i < n; i++) {
		const struct request_case *c = &cases[i];
		struct expect e = {
			.out = "",
			.err = "",
			.request = true,
			.request_json = c->request,
		};

		failed += !run_check(c->desc, c->args, OK_REPLY, &e);
	}
	return failed;
}

static void test_requests(void **state)
{
	(void)state;
	need_binary();
	assert_int_equal(
		run_request_cases(request_cases, sizeof(request_cases) / sizeof(request_cases[0])),
		0);
}

/* --socket wins over SLUICE_SOCKET, before or after the command. */
static void test_socket_option(void **state)
{
	const char *first[] = { "--socket", sock, "service", "del", VIP, NULL };
	const char *last[] = { "backend", "del", VIP, BE, "--socket", sock, NULL };
	const char *absent[] = { "service", "del", VIP, "--socket", absent_sock, NULL };
	struct expect e = {
		.out = "",
		.err = "",
		.request = true,
		.request_json = SVC_REQ("service.del") "}",
	};

	(void)state;
	need_binary();
	/* The agent listens at @sock; SLUICE_SOCKET names a path with nothing. */
	assert_true(run_agent_check("--socket first", first, absent_sock, OK_REPLY, &e));
	e.request_json = BE_REQ("backend.del") "}";
	assert_true(run_agent_check("--socket last", last, absent_sock, OK_REPLY, &e));

	/* And the other way: the agent at SLUICE_SOCKET is not asked. */
	e = (struct expect){ .status = 1,
			     .out = "",
			     .err_has = { "Error: cannot reach sluiced at " } };
	e.err_has[1] = absent_sock;
	assert_true(run_check("--socket over a working SLUICE_SOCKET", absent, OK_REPLY, &e));
}

/* ---- endpoints and policies ---- */

#define EP "198.18.1.2"
#define RULE_OPTS "--action", "allow", "--from", "any", "--to", "app=db"
#define POLICY_ADD "policy", "add", "RS", RULE_OPTS

/* Each refused before a request: the CLI checks with the agent's parsers. */
static const struct usage_case policy_usage_cases[] = {
	{ 2, "endpoint add without ADDR", { "endpoint", "add" }, "usage: sluice endpoint add" },
	{ 2,
	  "endpoint add, bad address",
	  { "endpoint", "add", "198.18.1.300", "--labels", "app=web" },
	  "\"198.18.1.300\": invalid IP address" },
	{ 2,
	  "endpoint add, a CIDR",
	  { "endpoint", "add", "198.18.1.0/24" },
	  "expected an address, not a CIDR" },
	{ 2,
	  "endpoint add, a host name",
	  { "endpoint", "add", "web.example" },
	  "invalid IP address" },
	{ 2,
	  "endpoint add, label without =",
	  { "endpoint", "add", EP, "--labels", "app" },
	  "--labels: label \"app\": expected key=value" },
	{ 2,
	  "endpoint add, label key twice",
	  { "endpoint", "add", EP, "--labels", "a=b,a=c" },
	  "--labels: label key \"a\" given twice" },
	{ 2,
	  "endpoint add, label value with a space",
	  { "endpoint", "add", EP, "--labels", "app=my web" },
	  "--labels: label value \"my web\": invalid character ' '" },
	{ 2,
	  "endpoint add, relative netns",
	  { "endpoint", "add", EP, "--netns", "run/netns/x" },
	  "--netns: not an absolute path" },
	{ 2,
	  "endpoint add, empty netns",
	  { "endpoint", "add", EP, "--netns", "" },
	  "--netns: not an absolute path" },
	{ 2,
	  "endpoint add, extra",
	  { "endpoint", "add", EP, "198.18.1.3" },
	  "usage: sluice endpoint add" },
	{ 2, "endpoint del without ADDR", { "endpoint", "del" }, "usage: sluice endpoint del" },
	{ 2, "endpoint del, bad address", { "endpoint", "del", "fd00::g" }, "invalid IP address" },
	{ 2,
	  "endpoint del --labels",
	  { "endpoint", "del", EP, "--labels", "a=b" },
	  "option --labels does not go with del" },
	{ 2, "endpoint list, extra", { "endpoint", "list", "x" }, "usage: sluice endpoint list" },
	{ 2,
	  "policy add without --to",
	  { "policy", "add", "RS", "--action", "allow", "--from", "app=web" },
	  "policy add needs --action, --from and --to" },
	{ 2,
	  "policy add without --action",
	  { "policy", "add", "RS", "--from", "app=web", "--to", "app=db" },
	  "policy add needs --action, --from and --to" },
	{ 2,
	  "policy add without --from",
	  { "policy", "add", "RS", "--action", "deny", "--to", "app=db" },
	  "policy add needs --action, --from and --to" },
	{ 2,
	  "policy add without RULESET",
	  { "policy", "add", RULE_OPTS },
	  "usage: sluice policy add RULESET" },
	{ 2,
	  "--action permit",
	  { "policy", "add", "RS", "--action", "permit", "--from", "any", "--to", "app=db" },
	  "--action: allow or deny" },
	{ 2, "--ports 0", { POLICY_ADD, "--ports", "0" }, "--ports: port \"0\": not in 1-65535" },
	{ 2,
	  "--ports 70000",
	  { POLICY_ADD, "--ports", "70000" },
	  "--ports: port \"70000\": not in 1-65535" },
	{ 2,
	  "--ports 5-1",
	  { POLICY_ADD, "--ports", "5-1" },
	  "--ports: port range \"5-1\": first above last" },
	{ 2, "--ports empty item", { POLICY_ADD, "--ports", "80,,81" }, "--ports: empty port" },
	{ 2,
	  "--protocol sctp",
	  { POLICY_ADD, "--protocol", "sctp" },
	  "--protocol: protocol \"sctp\": expected tcp, udp or any" },
	{ 2,
	  "--established never",
	  { POLICY_ADD, "--established", "never" },
	  "--established: keep or recheck" },
	{ 2,
	  "--from an address without length",
	  { "policy", "add", "RS", "--action", "allow", "--from", "10.0.0.1", "--to", "app=db" },
	  "--from: \"10.0.0.1\": a CIDR needs a length" },
	{ 2,
	  "--to with ==",
	  { "policy", "add", "RS", "--action", "allow", "--from", "any", "--to", "app==db" },
	  "--to: selector value \"=db\": invalid character '='" },
	{ 2, "--id 0", { POLICY_ADD, "--id", "0" }, "--id: '0' is not a number in 1..2147483647" },
	{ 2, "--id 2^31", { POLICY_ADD, "--id", "2147483648" }, "--id: '2147483648'" },
	{ 2,
	  "--limit on policy add",
	  { POLICY_ADD, "--limit", "3" },
	  "option --limit does not go with add" },
	{ 2, "policy del without RULESET", { "policy", "del" }, "usage: sluice policy del" },
	{ 2,
	  "policy del, ID 0",
	  { "policy", "del", "RS", "0" },
	  "ID: '0' is not a number in 1..2147483647" },
	{ 2, "policy del, ID x", { "policy", "del", "RS", "x" }, "ID: 'x'" },
	{ 2, "policy del, extra", { "policy", "del", "RS", "7", "8" }, "usage: sluice policy del" },
	{ 2,
	  "policy del --id",
	  { "policy", "del", "RS", "--id", "7" },
	  "option --id does not go with del" },
	{ 2,
	  "policy set without --established",
	  { "policy", "set", "RS" },
	  "usage: sluice policy set RULESET --established keep|recheck" },
	{ 2,
	  "policy set without RULESET",
	  { "policy", "set", "--established", "keep" },
	  "usage: sluice policy set" },
	{ 2,
	  "policy set --established never",
	  { "policy", "set", "RS", "--established", "never" },
	  "--established: keep or recheck" },
	{ 2,
	  "policy drops --limit 0",
	  { "policy", "drops", "--limit", "0" },
	  "--limit: '0' is not a number in 1..1024" },
	{ 2,
	  "policy drops --limit 1025",
	  { "policy", "drops", "--limit", "1025" },
	  "--limit: '1025' is not a number in 1..1024" },
	{ 2, "policy drops, extra", { "policy", "drops", "x" }, "usage: sluice policy drops" },
	{ 2, "policy list, extra", { "policy", "list", "x" }, "usage: sluice policy list" },
	{ 2, "policy d: del or drops", { "policy", "d", "RS" }, "ambiguous 'd'" },
};

static void test_policy_usage_errors(void **state)
{
	const char *netns[] = { "-j", "endpoint", "add", EP, "--netns", "x", NULL };
	struct expect e = {
		.status = 2,
		.out = "{\"error\":\"--netns: not an absolute path\","
		       "\"hint\":\"e.g. /run/netns/web or /proc/PID/ns/net\"}\n",
		.err = "",
	};

	(void)state;
	need_binary();
	assert_int_equal(run_usage_cases(policy_usage_cases, sizeof(policy_usage_cases) /
								     sizeof(policy_usage_cases[0])),
			 0);
	assert_true(run_check("-j relative netns", netns, OK_REPLY, &e));
}

#define EP_LIST_REPLY                                                                            \
	"{\"ok\":true,\"endpoints\":[{\"address\":\"198.18.1.2\",\"labels\":\"app=web\","        \
	"\"netns\":\"/run/netns/x\",\"identity\":256},{\"address\":\"fd00::2\",\"labels\":\"\"," \
	"\"netns\":null,\"identity\":257}]}\n"
#define EP_LIST_OUT                                                                                 \
	"ADDRESS                                  IDENTITY  LABELS                         NETNS\n" \
	"198.18.1.2                               256       app=web                        "        \
	"/run/netns/x\n"                                                                            \
	"fd00::2                                  257                                      -\n"
#define POLICY_LIST_REPLY                                                                    \
	"{\"ok\":true,\"generation\":3,\"rulesets\":[{\"name\":\"RS\",\"established\":"      \
	"\"recheck\",\"rules\":[{\"id\":5,\"action\":\"allow\",\"from\":\"app=web\",\"to\":" \
	"\"app=db\",\"ports\":\"80,8000-8080\",\"protocol\":\"tcp\",\"denials\":2}]}],"      \
	"\"identities\":[{\"id\":256,\"labels\":\"app=web\"},{\"id\":16777216,\"cidr\":"     \
	"\"10.0.0.0/8\"}]}\n"
#define POLICY_LIST_OUT                                                                  \
	"policy generation 3\n"                                                          \
	"rule set RS (established: recheck)\n"                                           \
	"  5     allow from app=web                  to app=db                   ports " \
	"80,8000-8080 tcp  denials 2\n"                                                  \
	"identities:\n"                                                                  \
	"  256       app=web\n"                                                          \
	"  16777216  10.0.0.0/8\n"
#define DROPS_OUT                                                                                 \
	"TIME                SITE    VERDICT      RULE             PROTO SOURCE -> DESTINATION\n" \
	"0 denial events since sluiced started\n"
#define DROP_EVENT                                                                           \
	"{\"time\":1.5e9,\"site\":\"xdp\",\"verdict\":\"deny_rule\",\"rule\":7,\"ruleset\":" \
	"\"RS\",\"protocol\":\"tcp\",\"src\":\"198.18.9.9\",\"sport\":40000,\"dst\":"        \
	"\"198.18.1.2\",\"dport\":80,\"src_identity\":2,\"src_labels\":\"world\","           \
	"\"dst_identity\":256,\"dst_labels\":\"app=web\"}"

static const struct request_case policy_request_cases[] = {
	{ "endpoint add, labels and netns",
	  { "endpoint", "add", EP, "--labels", "app=web,env=prod", "--netns", "/run/netns/x" },
	  "{\"op\":\"endpoint.add\",\"address\":\"" EP "\",\"labels\":\"app=web,env=prod\","
	  "\"netns\":\"/run/netns/x\"}" },
	{ "endpoint add IPv6, nothing else",
	  { "endpoint", "add", "fd00::2" },
	  "{\"op\":\"endpoint.add\",\"address\":\"fd00::2\"}" },
	{ "e a, empty labels",
	  { "e", "a", "--labels=", EP },
	  "{\"op\":\"endpoint.add\",\"address\":\"" EP "\",\"labels\":\"\"}" },
	{ "endpoint del",
	  { "endpoint", "del", EP },
	  "{\"op\":\"endpoint.del\",\"address\":\"" EP "\"}" },
	{ "policy del RS",
	  { "policy", "del", "RS" },
	  "{\"op\":\"policy.del\",\"ruleset\":\"RS\"}" },
	{ "policy del RS 7",
	  { "policy", "del", "RS", "7" },
	  "{\"op\":\"policy.del\",\"ruleset\":\"RS\",\"id\":7}" },
	{ "policy set --established keep",
	  { "policy", "set", "RS", "--established", "keep" },
	  "{\"op\":\"policy.set\",\"ruleset\":\"RS\",\"established\":\"keep\"}" },
	{ "po s, recheck",
	  { "po", "s", "--established=recheck", "RS" },
	  "{\"op\":\"policy.set\",\"ruleset\":\"RS\",\"established\":\"recheck\"}" },
};

/* A verb whose reply the CLI shows: the request, then stdout for @reply. */
struct shown_case {
	const char *desc;
	const char *args[20];
	const char *request;
	const char *reply;
	const char *out; /* stdout, exactly; NULL: see out_has */
	const char *out_has; /* a substring of stdout */
};

static const struct shown_case shown_cases[] = {
	{ .desc = "endpoint list",
	  .args = { "endpoint", "list" },
	  .request = "{\"op\":\"endpoint.list\"}",
	  .reply = EP_LIST_REPLY,
	  .out = EP_LIST_OUT },
	{ .desc = "policy add, every option",
	  .args = { "policy", "add", "RS", "--action", "allow", "--from", "app=web", "--to",
		    "app=db", "--ports", "80,8000-8080", "--protocol", "tcp", "--established",
		    "recheck", "--id", "5" },
	  .request = "{\"op\":\"policy.add\",\"ruleset\":\"RS\",\"action\":\"allow\","
		     "\"from\":\"app=web\",\"to\":\"app=db\",\"ports\":\"80,8000-8080\","
		     "\"protocol\":\"tcp\",\"established\":\"recheck\",\"id\":5}",
	  .reply = "{\"ok\":true,\"id\":5}\n",
	  .out = "rule 5 added to RS\n" },
	{ .desc = "po a, the needed options only",
	  .args = { "po", "a", "RS", "--action", "deny", "--from", "10.0.0.0/8", "--to", "" },
	  .request = "{\"op\":\"policy.add\",\"ruleset\":\"RS\",\"action\":\"deny\","
		     "\"from\":\"10.0.0.0/8\",\"to\":\"\"}",
	  .reply = "{\"ok\":true,\"id\":12}\n",
	  .out = "rule 12 added to RS\n" },
	{ .desc = "policy list",
	  .args = { "policy", "list" },
	  .request = "{\"op\":\"policy.list\"}",
	  .reply = POLICY_LIST_REPLY,
	  .out = POLICY_LIST_OUT },
	{ .desc = "policy drops --limit 5",
	  .args = { "policy", "drops", "--limit", "5" },
	  .request = "{\"op\":\"policy.drops\",\"limit\":5}",
	  .reply = "{\"ok\":true,\"events\":[],\"total\":0}\n",
	  .out = DROPS_OUT },
	/* The time column is local time: only the rest is pinned. */
	{ .desc = "policy dr, one event",
	  .args = { "policy", "dr" },
	  .request = "{\"op\":\"policy.drops\"}",
	  .reply = "{\"ok\":true,\"events\":[" DROP_EVENT "],\"total\":9}\n",
	  .out_has = " xdp     deny_rule    7 (RS)           tcp  198.18.9.9:40000 [world] -> "
		     "198.18.1.2:80 [app=web]\n9 denial events since sluiced started\n" },
};

static void test_policy_requests(void **state)
{
	size_t failed;

	(void)state;
	need_binary();
	failed = run_request_cases(policy_request_cases,
				   sizeof(policy_request_cases) / sizeof(policy_request_cases[0]));
	for (size_t i = 0; i < sizeof(shown_cases) / sizeof(shown_cases[0]); i++) {
		const struct shown_case *c = &shown_cases[i];
		struct expect e = {
			.out = c->out,
			.out_has = { c->out_has },
			.err = "",
			.request = true,
			.request_json = c->request,
		};

		failed += !run_check(c->desc, c->args, c->reply, &e);
	}
	assert_int_equal(failed, 0);
}

/* ---- apply ---- */

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* `apply -f @path` sends {"op":"apply","file":@path,"content":@text}. */
static void check_apply_request(const char *path, const char *text, size_t len,
				const char *const *args)
{
	struct json_object *want = json_object_new_object(), *got, *content;
	struct expect e = { .err = "", .request = true };
	struct result r = {};
	struct agent a;
	bool ok;

	write_file(path, text, len);
	agent_start(&a, OK_REPLY);
	run_cli(args, sock, &r);
	agent_stop(&a);
	ok = check_run(&r, &a, &e);
	if (!ok)
		show_failure(path, args, &r, &a, &e);
	assert_true(ok);
	got = json_tokener_parse(a.request);
	assert_non_null(got);
	content = json_object_object_get(got, "content");
	assert_int_equal(json_object_get_string_len(content), len);
	assert_memory_equal(json_object_get_string(content), text, len);
	json_object_object_add(want, "op", json_object_new_string("apply"));
	json_object_object_add(want, "file", json_object_new_string(path));
	json_object_object_add(want, "content", json_object_new_string_len(text, (int)len));
	assert_true(json_object_equal(got, want));
	json_object_put(got);
	json_object_put(want);
	agent_free(&a);
	result_free(&r);
	unlink(path);
}

static const char tricky[] =
	"# quotes \" and 'single', backslashes \\ \\\\ and \\n (not a newline)\n"
	"services:\n"
	"  - name: \"caf\xc3\xa9 \xe6\xbc\xa2\xe5\xad\x97 \xf0\x9f\x9a\x80\"\n"
	"    vip: 198.19.0.10:80/tcp\t# a tab\r\n"
	"    x: \x01\x02\x1f\x7f </script> // \\u0000 \\\"\n"
	"    json: {\"op\":\"service.del\",\"service\":\"" VIP "\"}\n"
	"\n\n"
	"no final newline";

static void test_apply_request(void **state)
{
	char path[PATH_MAX], odd[PATH_MAX], empty[PATH_MAX];
	const char *plain[] = { "apply", "-f", path, NULL };
	const char *long_form[] = { "-j", "apply", "--file", odd, NULL };
	const char *abbrev[] = { "ap", "-f", empty, "--bpffs", "/x", NULL };

	(void)state;
	need_binary();
	snprintf(path, sizeof(path), "%s/tricky.yaml", dir);
	snprintf(odd, sizeof(odd), "%s/a \"quoted\" \\ name \xc3\xa9.yaml", dir);
	snprintf(empty, sizeof(empty), "%s/empty.yaml", dir);
	check_apply_request(path, tricky, sizeof(tricky) - 1, plain);
	check_apply_request(odd, tricky, sizeof(tricky) - 1, long_form);
	check_apply_request(empty, "", 0, abbrev);
}

/* A 1 MiB file of tricky lines arrives byte for byte. */
static void test_apply_large(void **state)
{
	static const char line[] = "  - {name: \"\xc3\xa9\\\"\\\\\", vip: '198.19.0.10:80/tcp'} "
				   "# \xe6\xbc\xa2 \xf0\x9f\x9a\x80 \t</x>\r\n";
	const size_t size = 1u << 20, line_len = sizeof(line) - 1;
	char path[PATH_MAX];
	const char *args[] = { "apply", "-f", path, NULL };
	char *text = malloc(size);
	size_t len = 0;

	(void)state;
	need_binary();
	assert_non_null(text);
	while (len + line_len <= size - 1) {
		memcpy(text + len, line, line_len);
		len += line_len;
	}
	memset(text + len, 'x', size - 1 - len);
	text[size - 1] = '\n';
	snprintf(path, sizeof(path), "%s/large.yaml", dir);
	check_apply_request(path, text, size, args);
	free(text);
}

#define APPLY_REPLY                                                                \
	"{\"ok\":true,\"services\":3,\"changed\":1,\"unchanged\":2,\"deleted\":4," \
	"\"health_checks\":1}\n"

/* The summary of a successful apply: a line of text, or the reply (less
 * "ok") and the file name as JSON. */
static void test_apply_summary(void **state)
{
	char path[PATH_MAX], text_out[PATH_MAX + 128], json_out[PATH_MAX + 128];
	const char *text_args[] = { "apply", "-f", path, NULL };
	const char *json_args[] = { "apply", "-f", path, "-j", NULL };
	const char *pretty_args[] = { "-p", "apply", "-f", path, NULL };
	struct expect e = { .out = text_out, .err = "", .request = true };

	(void)state;
	need_binary();
	snprintf(path, sizeof(path), "%s/summary.yaml", dir);
	write_file(path, "services: []\n", 13);
	snprintf(text_out, sizeof(text_out),
		 "applied %s: 3 services (1 added or changed, 2 unchanged), 4 deleted\n", path);
	assert_true(run_check("apply summary", text_args, APPLY_REPLY, &e));
	snprintf(json_out, sizeof(json_out),
		 "{\"services\":3,\"changed\":1,\"unchanged\":2,\"deleted\":4,"
		 "\"health_checks\":1,\"file\":\"%s\"}\n",
		 path);
	e.out = json_out;
	assert_true(run_check("apply -j summary", json_args, APPLY_REPLY, &e));
	e.out = NULL;
	e.out_json = json_out;
	assert_true(run_check("apply -p summary", pretty_args, APPLY_REPLY, &e));

	/* An invalid config: the agent's error, nothing on stdout. */
	e = (struct expect){
		.status = 1,
		.out = "",
		.err = "Error: " VIP ": summary.yaml:1:1: services[0].vip: missing\n"
		       "Hint: nothing was changed\n",
		.request = true,
	};
	assert_true(run_check("apply refused", text_args,
			      "{\"ok\":false,\"status\":1,\"error\":\"" VIP
			      ": summary.yaml:1:1: services[0].vip: missing\","
			      "\"hint\":\"nothing was changed\",\"file\":\"summary.yaml\","
			      "\"line\":1,\"column\":1}\n",
			      &e));
	unlink(path);
}

/* ---- the agent's replies ---- */

struct reply_case {
	const char *desc;
	const char *reply;
	bool json; /* run with -j */
	int status;
	const char *out, *err;
};

#define FULL_ERROR "\"error\":\"E\",\"hint\":\"H\",\"errno\":\"X\""

static const struct reply_case reply_cases[] = {
	{ "ok", "{\"ok\":true}\n", false, 0, "", "" },
	{ "ok with results", "{\"ok\":true,\"x\":[1,2]}\n", false, 0, "", "" },
	{ "ok, no newline before close", "{\"ok\":true}", false, 0, "", "" },
	{ "error", "{\"ok\":false,\"status\":1," FULL_ERROR "}\n", false, 1, "",
	  "Error: E: X\nHint: H\n" },
	{ "error without errno and hint", "{\"ok\":false,\"status\":1,\"error\":\"E\"}\n", false, 1,
	  "", "Error: E\n" },
	{ "usage error", "{\"ok\":false,\"status\":2," FULL_ERROR "}\n", false, 2, "",
	  "Error: E: X\nHint: H\n" },
	{ "no status", "{\"ok\":false,\"error\":\"E\"}\n", false, 1, "", "Error: E\n" },
	{ "odd status", "{\"ok\":false,\"status\":7,\"error\":\"E\"}\n", false, 1, "",
	  "Error: E\n" },
	{ "-j error", "{\"ok\":false,\"status\":1," FULL_ERROR "}\n", true, 1,
	  "{\"error\":\"E: X\",\"hint\":\"H\"}\n", "" },
	{ "-j usage error", "{\"ok\":false,\"status\":2,\"error\":\"E\"}\n", true, 2,
	  "{\"error\":\"E\"}\n", "" },
	{ "-j ok", "{\"ok\":true}\n", true, 0, "", "" },
	/* No "error" (or no "ok"): a failure all the same; the text is not
	 * pinned (today "Error: (null)"). */
	{ "failure without error", "{\"ok\":false}\n", false, 1, "", NULL },
	{ "no ok", "{}\n", false, 1, "", NULL },
	{ "escapes", "{\"ok\":false,\"status\":1,\"error\":\"a \\\"b\\\" \\u00e9\"}\n", false, 1,
	  "", "Error: a \"b\" \xc3\xa9\n" },
};

static void test_replies(void **state)
{
	const char *args[] = { "service", "add", VIP, NULL };
	const char *json_args[] = { "service", "add", VIP, "-j", NULL };
	size_t failed = 0;

	(void)state;
	need_binary();
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *c = &reply_cases[i];
		struct expect e = {
			.status = c->status,
			.out = c->out,
			.err = c->err,
			.err_has = { c->err ? NULL : "Error: " },
			.request = true,
			.request_json = SVC_REQ("service.add") "}",
		};

		failed += !run_check(c->desc, c->json ? json_args : args, c->reply, &e);
	}
	assert_int_equal(failed, 0);
}

/* -p: the error object pretty-printed (several lines). */
static void test_reply_pretty(void **state)
{
	const char *args[] = { "-p", "backend", "set", VIP, BE, "--weight", "2", NULL };
	struct expect e = {
		.status = 1,
		.out_json = "{\"error\":\"E: X\",\"hint\":\"H\"}",
		.out_has = { "{\n" },
		.err = "",
		.request = true,
		.request_json = BE_REQ("backend.set") ",\"weight\":2}",
	};

	(void)state;
	need_binary();
	assert_true(
		run_check("-p error", args, "{\"ok\":false,\"status\":1," FULL_ERROR "}\n", &e));
}

/* Replies that are not a JSON object, or none: exit 1, an error naming the
 * agent's socket, in text or JSON. */
static void test_bad_replies(void **state)
{
	static const char *const replies[] = {
		"hello\n", /* not JSON */
		"[true]\n", /* not an object */
		"{\"ok\":true} trailing\n", /* trailing bytes */
		"{\"ok\":tr", /* cut short */
		NULL, /* closed without a reply */
	};
	const char *args[] = { "backend", "add", VIP, BE, NULL };
	const char *json_args[] = { "-j", "backend", "add", VIP, BE, NULL };
	struct expect e = {
		.status = 1,
		.out = "",
		.request = true,
		.request_json = BE_REQ("backend.add") ",\"weight\":1}",
	};
	size_t failed = 0;

	(void)state;
	need_binary();
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		const char *desc = replies[i] ? replies[i] : "(closed)";

		e.out = "";
		e.out_has[0] = e.out_has[1] = NULL;
		e.err = NULL;
		e.err_has[0] = "Error: ";
		e.err_has[1] = sock;
		failed += !run_agent_check(desc, args, sock, replies[i], &e);
		e.out = NULL;
		e.out_has[0] = "{\"error\":\"";
		e.out_has[1] = sock;
		e.err = "";
		e.err_has[0] = e.err_has[1] = NULL;
		failed += !run_agent_check(desc, json_args, sock, replies[i], &e);
	}
	assert_int_equal(failed, 0);
}

/* ---- no agent ---- */

/* Nothing at the socket path, a stale socket, a path too long: exit 1 and
 * "cannot reach sluiced at PATH" with a hint naming --socket and
 * SLUICE_SOCKET, for every verb that changes something. */
static void test_unreachable(void **state)
{
	char error[PATH_MAX + 128], stale[PATH_MAX], longer[200], config[PATH_MAX];
	const char *verbs[][12] = {
		{ "service", "add", VIP, "--name", "web" },
		{ "service", "del", VIP },
		{ "backend", "add", VIP, BE },
		{ "backend", "del", VIP, BE },
		{ "backend", "set", VIP, BE, "--weight", "0" },
		{ "apply", "-f", config },
		{ "endpoint", "add", EP, "--labels", "app=web" },
		{ "endpoint", "del", EP },
		{ POLICY_ADD },
		{ "policy", "del", "RS", "7" },
		{ "policy", "set", "RS", "--established", "keep" },
	};
	const char *stale_args[] = { "service", "del", VIP, "--socket", stale, NULL };
	const char *long_args[] = { "--socket", longer, "service", "del", VIP, NULL };
	struct sockaddr_un sun;
	struct expect e = {
		.status = 1,
		.out = "",
		.err_has = { error, "\nHint: is sluiced running?",
			     "--socket PATH or SLUICE_SOCKET" },
	};
	size_t failed = 0;
	int fd;

	(void)state;
	need_binary();
	snprintf(config, sizeof(config), "%s/unreachable.yaml", dir);
	write_file(config, "services: []\n", 13);
	snprintf(error, sizeof(error),
		 "Error: cannot reach sluiced at %s: No such file or directory\n", absent_sock);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		failed += !run_check(verbs[i][0], verbs[i], NULL, &e);
	assert_int_equal(failed, 0);
	unlink(config);

	/* A socket file nobody listens on (an agent that died). */
	snprintf(stale, sizeof(stale), "%s/stale.sock", dir);
	unix_addr(&sun, stale);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	snprintf(error, sizeof(error), "Error: cannot reach sluiced at %s: Connection refused\n",
		 stale);
	assert_true(run_check("stale socket", stale_args, NULL, &e));
	unlink(stale);

	memset(longer, 'a', sizeof(longer) - 1);
	longer[0] = '/';
	longer[sizeof(longer) - 1] = '\0';
	snprintf(error, sizeof(error), "Error: cannot reach sluiced at %s: File name too long\n",
		 longer);
	assert_true(run_check("socket path too long", long_args, NULL, &e));
}

/* The same with -j: the error and the hint as JSON on stdout. */
static void test_unreachable_json(void **state)
{
	const char *json_args[] = { "-j", "service", "del", VIP, NULL };
	char json_out[2 * PATH_MAX];
	struct expect e;

	(void)state;
	need_binary();
	snprintf(json_out, sizeof(json_out),
		 "{\"error\":\"cannot reach sluiced at %s: No such file or directory\","
		 "\"hint\":\"is sluiced running? start it (see `sluiced --help`), or point to "
		 "its socket with --socket PATH or SLUICE_SOCKET\"}\n",
		 absent_sock);
	e = (struct expect){ .status = 1, .out = json_out, .err = "" };
	assert_true(run_check("-j unreachable", json_args, NULL, &e));
}

/* Reads go to the pinned maps: with none, exit 1 naming the directory
 * (SLUICE_BPFFS, or --bpffs over it), and no request. */
static void test_no_maps(void **state)
{
	static const char *const cmds[][4] = { { "stats" }, { "status" }, { "service", "list" } };
	const char *flag_args[] = { "stats", "--bpffs", "/nonexistent/pins", NULL };
	char error[PATH_MAX + 64];
	struct expect e = {
		.status = 1,
		.out = "",
		.err_has = { error, "\nHint: is the data path loaded?", "--bpffs / SLUICE_BPFFS" },
	};
	size_t failed = 0;

	(void)state;
	need_binary();
	snprintf(error, sizeof(error), "Error: cannot open the maps pinned in %s: ", bpffs);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		failed += !run_check(cmds[i][0], cmds[i], OK_REPLY, &e);
	assert_int_equal(failed, 0);
	snprintf(error, sizeof(error), "Error: cannot open the maps pinned in /nonexistent/pins: ");
	assert_true(run_check("--bpffs over SLUICE_BPFFS", flag_args, OK_REPLY, &e));
}

/* ---- help ---- */

struct help_case {
	int status;
	const char *args[4];
	const char *words[7]; /* each on stdout */
};

static const struct help_case help_cases[] = {
	{ 0,
	  { "help" },
	  { "Usage: sluice [-j|--json] [-p|--pretty] [--socket PATH] [--bpffs DIR]", "service",
	    "backend", "apply", "stats", "status", "help" } },
	{ 0, { "h" }, { "Usage: sluice", "service", "backend" } },
	{ 0, { "-j", "help" }, { "Usage: sluice", "service", "backend" } },
	{ 0, { "service", "help" }, { "Usage: sluice", "service VERB", "add", "del", "list" } },
	{ 0, { "serv", "help" }, { "Usage: sluice", "service VERB", "add", "del", "list" } },
	{ 0,
	  { "backend", "help" },
	  { "Usage: sluice", "backend VERB", "add", "del", "set", "--weight N" } },
	{ 0, { "apply", "help" }, { "Usage: sluice apply -f FILE" } },
	{ 0, { "stats", "help" }, { "Usage: sluice stats" } },
	{ 0, { "status", "help" }, { "Usage: sluice status" } },
	{ 0, { "help" }, { "Usage: sluice", "endpoint", "policy" } },
	{ 0,
	  { "endpoint", "help" },
	  { "Usage: sluice", "endpoint VERB", "add", "del", "list", "--labels K=V",
	    "--netns PATH" } },
	{ 0,
	  { "policy", "help" },
	  { "Usage: sluice", "policy VERB", "add", "del", "set", "list", "drops" } },
	/* Nothing named: the table, as a usage error. */
	{ 2, {}, { "Usage: sluice", "service", "backend" } },
	{ 2, { "service" }, { "Usage: sluice", "service VERB", "add" } },
	{ 2, { "backend" }, { "Usage: sluice", "backend VERB", "set" } },
	{ 2, { "endpoint" }, { "Usage: sluice", "endpoint VERB", "add" } },
	{ 2, { "policy" }, { "Usage: sluice", "policy VERB", "drops" } },
};

static void test_help(void **state)
{
	size_t failed = 0;

	(void)state;
	need_binary();
	for (size_t i = 0; i < sizeof(help_cases) / sizeof(help_cases[0]); i++) {
		const struct help_case *c = &help_cases[i];
		struct expect e = { .status = c->status, .err = c->status ? NULL : "" };
		struct result r = {};
		struct agent a;
		bool ok;

		agent_start(&a, OK_REPLY);
		run_cli(c->args, sock, &r);
		agent_stop(&a);
		/* Asked for, help is the output; given for want of a verb, it
		 * goes to stderr with the error (stdout stays clean for -j). */
		const char *text = c->status ? r.err : r.out;

		ok = check_run(&r, &a, &e) && !strncmp(text, "Usage: sluice", 13);
		for (int j = 0; ok && j < 7 && c->words[j]; j++)
			ok = strstr(text, c->words[j]) != NULL;
		ok = ok && (!c->status || (!r.out[0] && strstr(r.err, "Error: expected a")));
		if (!ok) {
			show_failure("help", c->args, &r, &a, &e);
			failed++;
		}
		agent_free(&a);
		result_free(&r);
	}
	assert_int_equal(failed, 0);
}

/* ---- setup ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The binary as tools/run_tests.sh names it (SLUICE_BUILD, possibly
 * relative to the repository root it runs from), and the temporary dir. */
static int setup(void **state)
{
	const char *build = getenv("SLUICE_BUILD");

	(void)state;
	snprintf(bin, sizeof(bin), "%s/sluice", build && *build ? build : "build");
	if (access(bin, X_OK)) {
		print_message("no sluice binary at %s (%s): build it first (make %s), or set "
			      "SLUICE_BUILD to its directory; the CLI tests are skipped\n",
			      bin, strerror(errno), bin);
		bin[0] = '\0';
	}
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	snprintf(absent_sock, sizeof(absent_sock), "%s/absent.sock", dir);
	snprintf(bpffs, sizeof(bpffs), "%s/bpffs", dir);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_usage_errors_json),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_socket_option),
		cmocka_unit_test(test_policy_usage_errors),
		cmocka_unit_test(test_policy_requests),
		cmocka_unit_test(test_apply_request),
		cmocka_unit_test(test_apply_large),
		cmocka_unit_test(test_apply_summary),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_reply_pretty),
		cmocka_unit_test(test_bad_replies),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_unreachable_json),
		cmocka_unit_test(test_no_maps),
		cmocka_unit_test(test_help),
	};

	return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
