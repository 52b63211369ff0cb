/* The agent's socket layer start-up (agent_sock.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_sock.h"
#include "deadline.h"
#include "log.h"
#include "sock.h"

/* The self-test's verdict on @args->redirect: the mode to use. */
static enum sl_redirect_mode redirect_gate(const struct agent_sock_args *args,
					   struct bpf_object *maps_from, __u32 maglev_size,
					   struct agent_sock_status *st)
{
	long long start = now_ms();
	char why[256];

	if (args->redirect == SL_REDIRECT_OFF) {
		snprintf(st->selftest, sizeof(st->selftest), "not run (--redirect off)");
		return SL_REDIRECT_OFF;
	}
	if (!sock_redirect_enrols(args->redirect, args->n_ports)) {
		snprintf(st->selftest, sizeof(st->selftest),
			 "not run (auto without --redirect-ports: nothing to enrol)");
		return args->redirect;
	}
	if (sock_selftest(maps_from, maglev_size, args->selftest_fault, why, sizeof(why))) {
		snprintf(st->selftest, sizeof(st->selftest), "failed: %s", why);
		log_error("sock",
			  "redirection self-test failed (%s): socket redirection stays off, "
			  "traffic takes the normal TCP path",
			  why);
		return SL_REDIRECT_OFF;
	}
	snprintf(st->selftest, sizeof(st->selftest), "passed in %lld ms", now_ms() - start);
	log_info("sock", "redirection self-test %s", st->selftest);
	return args->redirect;
}

int agent_sock_start(const struct agent_sock_args *args, struct bpf_object *maps_from,
		     __u32 maglev_size, const char *pin_dir, struct agent_sock_status *st)
{
	struct sock_attach_opts opts = { .cgroup = args->cgroup,
					 .pin_dir = pin_dir,
					 .ports = args->ports,
					 .n_ports = args->n_ports,
					 .proxy4 = args->proxy4,
					 .proxy6 = args->proxy6 };
	struct sock_layer sl;
	int err;

	memset(st, 0, sizeof(*st));
	st->requested = args->redirect;
	st->ports = args->ports;
	st->n_ports = args->n_ports;
	st->proxy4 = args->proxy4;
	st->proxy6 = args->proxy6;
	snprintf(st->selftest, sizeof(st->selftest), "not run (no --cgroup)");
	if (!args->cgroup)
		return sock_layer_detach(pin_dir);
	opts.redirect = redirect_gate(args, maps_from, maglev_size, st);
	err = sock_layer_load(&sl, maps_from, maglev_size);
	if (err) {
		log_error("sock", "loading the socket programs failed: %s", strerror(-err));
		return err;
	}
	err = sock_layer_attach(&sl, &opts);
	sock_layer_destroy(&sl); /* the pins hold what was attached */
	if (err) {
		log_error("sock", "attaching the socket layer to %s failed: %s", args->cgroup,
			  strerror(-err));
		return err;
	}
	st->attached = true;
	st->effective = opts.redirect;
	snprintf(st->cgroup, sizeof(st->cgroup), "%s", args->cgroup);
	log_info("sock", "socket layer attached to %s (redirect %s)", args->cgroup,
		 sock_redirect_mode_name(st->effective));
	return 0;
}
