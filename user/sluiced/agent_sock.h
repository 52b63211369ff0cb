/* The agent's socket layer: at start-up, run the redirection self-test
 * when redirection is asked for, then load and attach the socket programs
 * to --cgroup with the mode the self-test allows. What happened is kept
 * for `sluice status`. */
#ifndef SLUICE_AGENT_SOCK_H
#define SLUICE_AGENT_SOCK_H

#include <limits.h>
#include <stdbool.h>

#include "addr.h"
#include "sluice/sock.h"

struct bpf_object;

struct agent_sock_args {
	const char *cgroup; /* --cgroup; NULL: the socket layer is off */
	enum sl_redirect_mode redirect; /* --redirect */
	__u16 ports[SL_REDIR_PORTS_MAX]; /* --redirect-ports, host order */
	size_t n_ports;
	struct addr_port proxy4, proxy6; /* --l7-proxy; port 0: none */
	unsigned int selftest_fault; /* --redirect-selftest-fault (tests) */
};

struct agent_sock_status {
	bool attached;
	char cgroup[PATH_MAX];
	enum sl_redirect_mode requested, effective;
	const __u16 *ports; /* the --redirect-ports (the args') */
	size_t n_ports;
	char selftest[320]; /* "passed in N ms", "failed: ...", "not run" */
	struct addr_port proxy4, proxy6;
};

/* Attach the socket layer as @args says (or detach one left by an
 * earlier run when there is no --cgroup). A failed self-test is not an
 * error: redirection stays off and the rest is attached. Returns 0, or
 * -errno when loading or attaching failed. */
int agent_sock_start(const struct agent_sock_args *args, struct bpf_object *maps_from,
		     __u32 maglev_size, const char *pin_dir, struct agent_sock_status *st);

#endif
