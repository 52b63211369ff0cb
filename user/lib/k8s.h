/* What sluiced --k8s follows in the Kubernetes API: a store of the
 * Services, EndpointSlices and Pods it lists and watches (k8s_store.c),
 * and their translation into the agent's own desired state: services
 * with backends, and policy endpoints with labels (k8s_model.c). Pure
 * logic over json-c objects: the HTTP side is k8s_client.h. */
#ifndef SLUICE_K8S_H
#define SLUICE_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "addr.h"
#include "config.h"

enum k8s_kind {
	K8S_SERVICES,
	K8S_SLICES, /* discovery.k8s.io/v1 EndpointSlices */
	K8S_PODS,
	K8S_NAMESPACES, /* their labels label the pods in them */
	K8S_KINDS,
};

/* "services", "endpointslices", "pods", "namespaces": the resource's name
 * in paths. */
const char *k8s_kind_name(enum k8s_kind kind);
/* The cluster-wide collection path, e.g. "/api/v1/services". */
const char *k8s_kind_path(enum k8s_kind kind);

/* The objects of each kind by "namespace/name", as the API server last
 * said (each a json-c object the store holds one reference to, trimmed
 * by k8s_object_trim()). */
struct k8s_store {
	struct json_object *objects[K8S_KINDS];
};

/* Drop in place what no translation reads and a cluster has a lot of:
 * metadata but name, namespace, uid, resourceVersion, labels and
 * deletionTimestamp (managedFields are often half an object); of a pod's
 * spec and status all but hostNetwork, nodeName, phase and its IPs. */
void k8s_object_trim(enum k8s_kind kind, struct json_object *obj);

void k8s_store_init(struct k8s_store *store);
void k8s_store_free(struct k8s_store *store);
/* Replace every object of @kind with the @items of a list (a JSON array;
 * the store takes its own references). Returns true when anything
 * differs from what was held (by uid and resourceVersion). */
bool k8s_store_replace(struct k8s_store *store, enum k8s_kind kind, struct json_object *items);
/* Apply one watch event ("ADDED", "MODIFIED", "DELETED") about @object.
 * Returns 1 when the store changed, 0 when it already held it (a replay
 * after a resumed watch), -EINVAL for an object without namespace/name
 * or an unknown type. */
int k8s_store_event(struct k8s_store *store, enum k8s_kind kind, const char *type,
		    struct json_object *object);
size_t k8s_store_count(const struct k8s_store *store, enum k8s_kind kind);

#define K8S_NODE_IPS_MAX 8

/* This node: its name (EndpointSlice nodeName, for traffic policy Local)
 * and addresses (NodePort VIPs). */
struct k8s_node {
	char name[256];
	struct addr_port ips[K8S_NODE_IPS_MAX]; /* port unused */
	size_t n_ips;
};

/* What a translation left out, for the log and `sluice status`. */
struct k8s_model_stats {
	uint32_t services; /* Kubernetes Services translated */
	uint32_t vips; /* sluice services made from them */
	uint32_t backends;
	uint32_t terminating; /* backends drained because their endpoint is terminating */
	uint32_t endpoints; /* policy endpoints made from pods */
	uint32_t skipped_vips; /* unsupported protocol, a VIP taken twice, bad address */
	uint32_t skipped_labels; /* pod labels that do not fit a policy label */
};

/*
 * k8s_model_build() - the desired state @store asks for on @node: one
 * sluice service per (VIP, port, protocol) of each Service (cluster IPs,
 * external IPs, load-balancer ingress IPs, and this node's addresses with
 * the node port), its backends the endpoints of the Service's
 * EndpointSlices (ready: weight 1; terminating but serving: weight 0, so
 * established flows finish and new ones go elsewhere, unless no endpoint
 * is ready), and one policy endpoint per pod IP with the pod's labels,
 * its namespace and its namespace's labels (K8S_NS_LABEL_PREFIX).
 * @out (zeroed first) gets services and policy.endpoints only; free it
 * with cfg_free(). Returns 0 or -ENOMEM (@out zeroed).
 */
int k8s_model_build(const struct k8s_store *store, const struct k8s_node *node,
		    struct cfg_state *out, struct k8s_model_stats *stats);

/* The label every pod endpoint carries: its namespace. */
#define K8S_NAMESPACE_LABEL "io.kubernetes.pod.namespace"
/* The prefix of its namespace's labels on a pod endpoint ("ns.team=a"). */
#define K8S_NS_LABEL_PREFIX "ns."
/* A Service's affinity timeout when ClientIP affinity names none (3 h,
 * the API server's default). */
#define K8S_AFFINITY_DEFAULT_S 10800u

#endif
