/* The Kubernetes API client of sluiced --k8s: credentials (in-cluster or
 * a kubeconfig, k8s_creds.c) and a thread that lists then watches
 * Services, EndpointSlices and Pods with libcurl (k8s_client.c), keeps
 * them in a k8s_store and, once every kind is listed, hands the agent a
 * fresh translation (k8s_model_build) after each burst of changes. The
 * thread never touches a map: the agent publishes what it takes. */
#ifndef SLUICE_K8S_CLIENT_H
#define SLUICE_K8S_CLIENT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s.h"

#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* How to reach and authenticate to the API server. PEM material is
 * either a file (read by libcurl) or bytes (from a kubeconfig's *-data). */
struct k8s_creds {
	char server[512]; /* "https://host:port", no trailing slash */
	char ca_file[PATH_MAX]; /* "" = none */
	char *ca_pem;
	size_t ca_len;
	char cert_file[PATH_MAX], key_file[PATH_MAX]; /* client certificate */
	char *cert_pem, *key_pem;
	size_t cert_len, key_len;
	char token_file[PATH_MAX]; /* re-read for every request: bound tokens rotate */
	char *token; /* a fixed bearer token, NULL = none */
	bool insecure; /* insecure-skip-tls-verify */
};

/* In-cluster: KUBERNETES_SERVICE_HOST/PORT, the service account's token
 * and CA under @sa_dir (NULL: K8S_SA_DIR). 0 or -errno, @err says why. */
int k8s_creds_in_cluster(const char *sa_dir, struct k8s_creds *creds, char *err, size_t len);
/* A kubeconfig's current context (YAML, as kubectl reads it): server,
 * CA, token/tokenFile or client certificate, relative paths taken from
 * the file's directory. 0 or -errno (-EINVAL for content), @err says why. */
int k8s_creds_kubeconfig(const char *path, struct k8s_creds *creds, char *err, size_t len);
void k8s_creds_free(struct k8s_creds *creds);
/* Base64 (RFC 4648, whitespace ignored) into a malloc'ed buffer: 0 or
 * -EINVAL / -ENOMEM. */
int k8s_base64_decode(const char *text, char **out, size_t *out_len);

struct k8s_client_opts {
	struct k8s_creds creds; /* taken over by the client */
	struct k8s_node node;
	unsigned int watch_timeout_s; /* asked of the server per watch; 0: 300..600 */
	unsigned int page_size; /* list page; 0: 500 */
	unsigned int quiet_ms; /* publish after this long without a change; 0: 10 */
	unsigned int max_delay_ms; /* ... or this long after the first one; 0: 100 */
};

/* Counters and state, for `sluice status` and Prometheus. */
struct k8s_kind_status {
	bool listed; /* a list finished since start */
	bool watching; /* a watch stream is open */
	char resource_version[64];
	uint64_t objects;
	uint64_t lists, watches, events, bookmarks, expired, errors;
};

struct k8s_client_status {
	bool synced; /* every kind listed: translations are whole */
	uint64_t views; /* translations handed to the agent */
	struct k8s_kind_status kinds[K8S_KINDS];
	struct k8s_model_stats model; /* of the last translation */
	char last_error[256];
};

struct k8s_client;

/* Start the thread. NULL with errno on failure. */
struct k8s_client *k8s_client_start(struct k8s_client_opts *opts);
/* Readable (an eventfd) when a new translation waits. */
int k8s_client_fd(const struct k8s_client *c);
/* Take the newest translation into @out (the caller frees it with
 * cfg_free()); 1 when there was one, 0 when not. Drains the fd. */
int k8s_client_take(struct k8s_client *c, struct cfg_state *out);
void k8s_client_status(struct k8s_client *c, struct k8s_client_status *out);
/* Hand over a fresh translation in @delay_ms even if nothing changes (the
 * agent could not publish the last one). */
void k8s_client_retry(struct k8s_client *c, unsigned int delay_ms);
/* Stop and join the thread, free everything. NULL is fine. */
void k8s_client_stop(struct k8s_client *c);

#endif
