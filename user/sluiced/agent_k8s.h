/* sluiced --k8s: the agent's half of following the Kubernetes API. The
 * client thread (k8s_client.h) hands over translations; each becomes one
 * transaction of the agent, like `sluice apply`: the desired state is the
 * config file's (and the CLI's) services, endpoints and rules plus what
 * Kubernetes gives, where an entry the file names wins. The services and
 * endpoints Kubernetes gave are "owned": the next translation replaces
 * them, and the CLI may not change them. */
#ifndef SLUICE_AGENT_K8S_H
#define SLUICE_AGENT_K8S_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config.h"
#include "k8s_client.h"

struct agent;

#define AGENT_K8S_RETRY_MS 5000 /* a refused translation is tried again after */

struct agent_k8s_owned {
	struct sl_svc_key *services;
	size_t n_services;
	struct pol_prefix *endpoints;
	size_t n_endpoints;
};

struct agent_k8s {
	struct k8s_client *client;
	struct cfg_state view; /* the newest translation taken */
	bool have_view;
	bool published; /* a translation was published since start: ready */
	struct agent_k8s_owned owned; /* in the published desired state */
	struct agent_k8s_owned next; /* what the transaction under way would own */
	uint64_t publications, publish_errors;
	uint32_t conflicts; /* of the last merge: entries the config file holds */
	char last_error[512];
};

/* --k8s-node-ip 198.18.0.1,fd00::1 (repeatable) into @node; 0, or
 * -EINVAL with the reason on stderr (a usage error). */
int agent_k8s_parse_node_ips(struct k8s_node *node, char *list);
/* The credentials of @kubeconfig (NULL: in-cluster); a refusal is logged
 * with its reason. 0 or -errno; k8s_creds_free() what it gave. */
int agent_k8s_credentials(const char *kubeconfig, struct k8s_creds *creds);
/* Start following the API server as @node with the credentials of
 * @kubeconfig (NULL: in-cluster). 0 or -errno (logged). */
int agent_k8s_start(struct agent *a, const char *kubeconfig, const struct k8s_node *node);
void agent_k8s_stop(struct agent *a);
/* Readable when a translation waits: agent_k8s_publish() takes it. */
int agent_k8s_fd(const struct agent *a);
void agent_k8s_publish(struct agent *a);

/* For commit_config(): add the view's services and endpoints that @cfg
 * does not hold, noting them as what the transaction would own; after a
 * successful publication, agent_k8s_committed() makes that the owned set.
 * With no view yet, keep the services and endpoints of @desired (the
 * state published) that @cfg lacks instead. 0 or -ENOMEM. */
int agent_k8s_merge(struct agent_k8s *k, struct cfg_state *cfg, const struct cfg_state *desired);
void agent_k8s_committed(struct agent_k8s *k);
bool agent_k8s_owns(const struct agent_k8s *k, const struct sl_svc_key *key);
bool agent_k8s_owns_endpoint(const struct agent_k8s *k, const struct pol_prefix *addr);

/* Ready (/readyz): the desired state is published and, with --k8s, a
 * translation of a full list too. */
bool agent_ready(const void *agent, char *why, size_t len);
/* The "k8s" object of `sluice status`. */
struct json_object *agent_k8s_status_json(const struct agent *a);
/* Prometheus lines (sluice_k8s_*); nothing without --k8s. */
int agent_k8s_metrics(FILE *out, const struct agent *a);

#endif
