/* The agent's desired state and its transactions. The desired state is
 * what the config and the CLI asked for (a cfg_state: services, their
 * health checks and backends with configured weights). Every change is a
 * transaction: validated against the desired state first, then published
 * to the maps (one Maglev publication per service touched), and only then
 * taken into the desired state and saved to the state file (before the
 * reply). On any error
 * the maps and the desired state stay as they were. */
#ifndef SLUICE_AGENT_H
#define SLUICE_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include <time.h>

#include "agent_policy.h"
#include "agent_stats.h"
#include "apply.h"
#include "config.h"
#include "health.h"
#include "lb.h"

struct agent_sock_status;
struct agent_k8s;

#define AGENT_VERSION "0.5.0"

struct agent {
	struct lb_maps *maps;
	struct lb_snapshot *snap; /* kept current by every change: the agent is the only writer */
	struct cfg_state desired;
	struct health *health; /* NULL: health checks are not run */
	struct agent_stats stats;
	const char *config_path; /* --config, NULL if none */
	const char *state_path; /* NULL: nothing saved */
	uint64_t config_digest; /* of the config the desired state last came from */
	bool state_dirty; /* changed since the state file was written */
	bool published; /* the desired state is in the maps (false until the restore) */
	const struct agent_sock_status *sock; /* NULL: not started (tests) */
	struct sl_svc_key *health_pending; /* services to republish for health */
	size_t n_health_pending;
	struct agent_policy policy; /* identities, generation, denial events */
	struct agent_k8s *k8s; /* NULL without --k8s */
};

/* Why a transaction was refused: status 2 for a request that is wrong in
 * itself (a bad name or weight), 1 for one that failed (unknown service,
 * duplicate backend, no room, kernel error). A config
 * error also fills @cfg (file, line, column, field). */
struct agent_error {
	int status;
	int err; /* -errno, 0 if none */
	char message[512];
	char hint[256];
	bool has_cfg;
	struct cfg_error cfg;
};

/* Fill @e (status, -errno or 0, hint or NULL, message); returns @err, or
 * -EINVAL when it is 0. For the agent_*.c files. */
int agent_fail(struct agent_error *e, int status, int err, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* End a verb begun at @started: count it, mark the state dirty when it
 * succeeded. Returns @err. */
int agent_verb_done(struct agent *a, double started, int err);
double agent_now_s(clockid_t clock);

int agent_init(struct agent *a, struct lb_maps *maps, struct health *health,
	       const char *config_path, const char *state_path);
void agent_fini(struct agent *a);

/* Choose the desired state at start and publish it: the state file when it
 * was saved from the current --config (so CLI changes survive a restart),
 * else the config, else what the maps hold (adopted as they are). */
int agent_restore(struct agent *a, struct agent_error *e);

/* Write the state file if a change since the last call needs it. The
 * agent calls it before replying to a request (an acknowledged change
 * survives a crash) and after a SIGHUP reload. */
int agent_save_state(struct agent *a);

/* The CLI's verbs. @svc gives key, name and affinity; no backends. */
int agent_service_add(struct agent *a, const struct cfg_service *svc, struct agent_error *e);
int agent_service_del(struct agent *a, const struct sl_svc_key *key, struct agent_error *e);
int agent_backend_add(struct agent *a, const struct sl_svc_key *key, const struct addr_port *addr,
		      uint32_t weight, struct agent_error *e);
int agent_backend_del(struct agent *a, const struct sl_svc_key *key, const struct addr_port *addr,
		      struct agent_error *e);
int agent_backend_set(struct agent *a, const struct sl_svc_key *key, const struct addr_port *addr,
		      uint32_t weight, struct agent_error *e);

/* Make the desired state the config in @text (@name for messages). */
int agent_apply(struct agent *a, const char *name, const char *text, size_t len,
		struct apply_summary *sum, struct agent_error *e);
/* Make @cfg (taken over) the desired state, as agent_apply() does with a
 * parsed file: the Kubernetes watcher's publications. */
int agent_publish(struct agent *a, struct cfg_state *cfg, struct apply_summary *sum,
		  struct agent_error *e);
/* Re-read --config and apply it (SIGHUP). */
int agent_reload(struct agent *a, struct apply_summary *sum, struct agent_error *e);

/* A health transition: its service is noted, and republished (with the
 * weights the new states give) by agent_health_publish(), once however
 * many of its backends changed: a mass failure is one publication per
 * service, not per backend. */
void agent_health_changed(struct agent *a, const struct health_event *ev);
void agent_health_publish(struct agent *a);
/* The weight a backend has in the maps: its configured weight, or 0 while
 * its health check says it is down. */
uint32_t agent_effective_weight(const struct agent *a, const struct cfg_service *svc,
				const struct cfg_backend *be);
/* Its health: HEALTH_UNKNOWN when its service has no check. */
enum health_state agent_backend_health(const struct agent *a, const struct cfg_service *svc,
				       const struct cfg_backend *be);

#endif
