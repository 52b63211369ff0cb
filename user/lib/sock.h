/* The socket layer in userspace: loading the socket programs over the
 * load balancer's maps (one map per name), attaching them to a cgroup v2
 * directory through links pinned next to the maps (so they survive an
 * agent restart and an upgrade swaps them in place), and the start-up
 * self-test that decides whether socket redirection may be switched on. */
#ifndef SLUICE_SOCK_LAYER_H
#define SLUICE_SOCK_LAYER_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "sluice/sock.h"

struct bpf_object;
struct bpf_link;
struct sock_lb;
struct sock_redir;

#define SOCK_LINK_PREFIX "link_cg_" /* + program name, in the pin directory */
#define SOCK_MAX_LINKS 12

struct sock_layer {
	struct sock_lb *lb; /* cgroup sock_addr and getsockopt programs */
	struct sock_redir *redir; /* sockops and sk_msg */
	/* Links held here when nothing is pinned (tests), by program name. */
	struct bpf_link *links[SOCK_MAX_LINKS];
	const char *link_names[SOCK_MAX_LINKS];
	int n_links;
	int sockhash_fd; /* the verdict program's map */
};

struct sock_attach_opts {
	const char *cgroup; /* cgroup v2 directory */
	const char *pin_dir; /* NULL: links live as long as the sock_layer */
	enum sl_redirect_mode redirect; /* after the self-test's verdict */
	const __u16 *ports; /* auto mode's server ports, host order */
	size_t n_ports;
	struct addr_port proxy4, proxy6; /* sluice-proxy listeners; port 0: none */
};

/* Whether @opts has sockets to enrol: mode all, or auto with ports. */
bool sock_redirect_enrols(enum sl_redirect_mode mode, size_t n_ports);

/* Load the socket programs, sharing every map of @maps_from (the loaded
 * XDP object) by name. Returns 0 or -errno; on error @sl is empty. */
int sock_layer_load(struct sock_layer *sl, struct bpf_object *maps_from, __u32 maglev_size);

/* Configure (sl_sock_cfg, sl_redir_port), attach the verdict program to sl_sockhash and
 * the hooks to @opts->cgroup. sockops is attached only when it has work:
 * redirection on or an L7 proxy set. Returns 0 or -errno. */
int sock_layer_attach(struct sock_layer *sl, const struct sock_attach_opts *opts);

/* Remove the cgroup link pins under @pin_dir (the hooks detach). The
 * verdict program stays on sl_sockhash while sockets remain enrolled:
 * an enrolled socket without one loses its FIONREAD. Returns 0 or -errno. */
int sock_layer_detach(const char *pin_dir);

void sock_layer_destroy(struct sock_layer *sl);

/* Hand @obj (opened, not loaded) the maps of @from by name, except the
 * internal ones and those named in @own (NULL-terminated or NULL), which
 * @obj creates for itself. Returns 0 or -errno. */
int sock_maps_share(struct bpf_object *obj, struct bpf_object *from, const char *const *own);

/* The self-test: a private copy of the redirect programs on a private
 * cgroup and SOCKHASH, and a child process in that cgroup running the
 * sockcheck scenarios that reproduce the kernel's known failures (bytes,
 * order, half-close then reply then EOF, a reader that stops, FIONREAD).
 * Returns 0 when every scenario passed with messages really redirected,
 * otherwise -errno with the reason in @why. @fault_every > 0 injects a
 * dropped message every that many (tests of the gate). */
int sock_selftest(struct bpf_object *maps_from, __u32 maglev_size, unsigned int fault_every,
		  char *why, size_t why_len);

/* Parse "off", "auto" or "all". Returns 0 or -EINVAL. */
int sock_redirect_mode_parse(const char *text, enum sl_redirect_mode *mode);
const char *sock_redirect_mode_name(enum sl_redirect_mode mode);

#endif
