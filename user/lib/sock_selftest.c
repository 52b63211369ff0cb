/* The redirection self-test (sock.h): the same redirect programs the
 * agent would attach, on a private cgroup and SOCKHASH, exercised by a
 * child process in that cgroup with the sockcheck scenarios. The kernel
 * feature has failed elsewhere in ways plain tests miss (lost replies
 * after a half-close, unbounded receive queues, FIONREAD 0), so the
 * scenarios reproduce exactly those and the verdict is all or nothing. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "deadline.h"
#include "log.h"
#include "sock.h"
#include "sockcheck.h"
#include "sock_redir.skel.h"

#define SELFTEST_TIMEOUT_MS 20000 /* generous: the whole test takes ~1 s */

/* The test's own maps; every other map is the agent's (shared, unused). */
static const char *const private_maps[] = { "sl_sockhash", "sl_sock_info", "sl_redir_sk",
					    "sl_sock_cfg", "sl_sock_st",   NULL };

struct selftest {
	struct sock_redir *skel;
	struct bpf_link *sockops;
	char cgroup[PATH_MAX];
	bool made_cgroup;
};

static int selftest_load(struct selftest *t, struct bpf_object *maps_from, __u32 maglev_size,
			 unsigned int fault_every)
{
	struct sl_sock_cfg cfg = { .redirect_mode = SL_REDIRECT_ALL };
	__u32 zero = 0;
	int err;

	t->skel = sock_redir__open();
	if (!t->skel)
		return -errno;
	t->skel->rodata->maglev_size = maglev_size;
	t->skel->rodata->selftest_fault_every = fault_every;
	bpf_map__set_max_entries(t->skel->maps.sl_sockhash, 64);
	bpf_map__set_max_entries(t->skel->maps.sl_sock_info, 64);
	err = sock_maps_share(t->skel->obj, maps_from, private_maps);
	if (!err)
		err = sock_redir__load(t->skel);
	if (!err && bpf_map_update_elem(bpf_map__fd(t->skel->maps.sl_sock_cfg), &zero, &cfg, 0))
		err = -errno;
	if (!err && bpf_prog_attach(bpf_program__fd(t->skel->progs.sl_sk_msg),
				    bpf_map__fd(t->skel->maps.sl_sockhash), BPF_SK_MSG_VERDICT, 0))
		err = -errno;
	return err;
}

static int selftest_cgroup(struct selftest *t)
{
	char mount[PATH_MAX / 2];
	int err = cgroup2_mount(mount, sizeof(mount)), fd;

	if (err)
		return err;
	snprintf(t->cgroup, sizeof(t->cgroup), "%s/sluice-selftest.%d", mount, (int)getpid());
	if (mkdir(t->cgroup, 0700))
		return -errno;
	t->made_cgroup = true;
	fd = open(t->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	t->sockops = bpf_program__attach_cgroup(t->skel->progs.sl_sockops, fd);
	err = t->sockops ? 0 : -errno;
	close(fd);
	return err;
}

static void selftest_fini(struct selftest *t)
{
	bpf_link__destroy(t->sockops);
	sock_redir__destroy(t->skel);
	if (t->made_cgroup && rmdir(t->cgroup))
		log_warn("sock", "cannot remove %s: %s", t->cgroup, strerror(errno));
}

/* In the child, inside the test cgroup: the self-test scenarios; the
 * first failure is written to @out_fd. Exit status 0 = pass. */
static int selftest_child(const char *cgroup, int out_fd)
{
	struct sockcheck_opts base = {};
	char why[SOCKCHECK_TEXT_MAX] = "";
	int err = cgroup_enter(cgroup, getpid());

	if (err) {
		dprintf(out_fd, "cannot enter %s: %s", cgroup, strerror(-err));
		return 1;
	}
	if (sockcheck_selftest(&base, why, sizeof(why))) {
		dprintf(out_fd, "%s", why);
		return 1;
	}
	return 0;
}

/* What the child wrote before it exited (0 bytes: it passed), or -1
 * with @why saying it did not finish within SELFTEST_TIMEOUT_MS. */
static ssize_t verdict_read(int fd, char *why, size_t why_len)
{
	long long deadline = now_ms() + SELFTEST_TIMEOUT_MS;
	ssize_t n;

	do {
		if (wait_fd(fd, POLLIN, deadline)) {
			snprintf(why, why_len, "timed out after %d ms", SELFTEST_TIMEOUT_MS);
			return -1;
		}
		n = read(fd, why, why_len - 1);
	} while (n < 0 && (errno == EAGAIN || errno == EINTR));
	return n;
}

/* Run the child and collect its verdict within SELFTEST_TIMEOUT_MS. */
static int selftest_run_child(const char *cgroup, char *why, size_t why_len)
{
	int pipe_fd[2], status = 0;
	ssize_t n = 0;
	pid_t pid;

	if (pipe2(pipe_fd, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(pipe_fd[0]);
		_exit(selftest_child(cgroup, pipe_fd[1]));
	}
	close(pipe_fd[1]);
	n = verdict_read(pipe_fd[0], why, why_len);
	close(pipe_fd[0]);
	if (n > 0)
		why[n] = '\0';
	kill(pid, SIGKILL); /* no-op once it exited; a hung child must not stay */
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && n <= 0)
		return 0;
	if (n <= 0 && !why[0])
		snprintf(why, why_len, "test process ended with status %#x", status);
	return -EPROTO;
}

/* The sum over CPUs of counter @index in the test's sl_sock_st. */
static __u64 selftest_counter(struct selftest *t, __u32 index)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 values[ncpus > 0 ? ncpus : 1], sum = 0;

	if (ncpus <= 0 ||
	    bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.sl_sock_st), &index, values))
		return 0;
	for (int i = 0; i < ncpus; i++)
		sum += values[i];
	return sum;
}

int sock_selftest(struct bpf_object *maps_from, __u32 maglev_size, unsigned int fault_every,
		  char *why, size_t why_len)
{
	struct selftest t = {};
	int err;

	why[0] = '\0';
	err = selftest_load(&t, maps_from, maglev_size, fault_every);
	if (err)
		snprintf(why, why_len, "loading the redirect programs failed: %s", strerror(-err));
	if (!err) {
		err = selftest_cgroup(&t);
		if (err)
			snprintf(why, why_len, "cgroup %s: %s", t.cgroup, strerror(-err));
	}
	if (!err)
		err = selftest_run_child(t.cgroup, why, why_len);
	/* Passing scenarios prove nothing unless messages took the new path. */
	if (!err && !selftest_counter(&t, SL_SOCK_REDIR_MSGS)) {
		snprintf(why, why_len, "no message was redirected");
		err = -EPROTO;
	}
	selftest_fini(&t);
	return err;
}
