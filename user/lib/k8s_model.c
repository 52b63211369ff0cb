/* Kubernetes objects -> the agent's desired state, as kube-proxy reads
 * them: a Service gives one sluice service per (VIP, port, protocol) over
 * its cluster IPs, external IPs, load-balancer ingress IPs and, for node
 * ports, this node's addresses; its EndpointSlices give the backends; the
 * traffic policies Local keep only this node's endpoints; ClientIP
 * affinity becomes sluice's client-IP affinity. Pods give the policy
 * endpoints, labelled with their labels and namespace. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s.h"
#include "sluice/types.h"

/* ---- reading json-c objects that may lack anything ---- */

static struct json_object *field(struct json_object *obj, const char *name)
{
	struct json_object *value;

	return obj && json_object_object_get_ex(obj, name, &value) ? value : NULL;
}

static const char *str_field(struct json_object *obj, const char *name)
{
	struct json_object *value = field(obj, name);

	return json_object_is_type(value, json_type_string) ? json_object_get_string(value) : NULL;
}

static bool str_is(struct json_object *obj, const char *name, const char *want)
{
	const char *value = str_field(obj, name);

	return value && !strcmp(value, want);
}

/* A condition: absent (null) means @unset, as the EndpointSlice API says. */
static bool bool_field(struct json_object *obj, const char *name, bool unset)
{
	struct json_object *value = field(obj, name);

	return json_object_is_type(value, json_type_boolean) ? json_object_get_boolean(value)
							     : unset;
}

static size_t array_len(struct json_object *arr)
{
	return json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
}

/* ---- one Service ---- */

struct svc_ctx {
	const struct k8s_node *node;
	struct cfg_state *out;
	struct k8s_model_stats *st;
	struct json_object *vips_seen; /* "VIP:port/proto" -> true */
	struct json_object *slices; /* this Service's EndpointSlices (array), may be NULL */
	struct cfg_service base; /* name and affinity of every VIP it gives */
};

/* An IP address in the maps' byte order; false if @text is not one. */
static bool parse_ip(const char *text, __be32 addr[4], __u8 *family)
{
	memset(addr, 0, 16);
	if (text && inet_pton(AF_INET, text, addr) == 1) {
		*family = SL_AF_INET;
		return true;
	}
	if (text && inet_pton(AF_INET6, text, addr) == 1) {
		*family = SL_AF_INET6;
		return true;
	}
	return false;
}

static bool proto_of(struct json_object *port, __u8 *proto)
{
	const char *name = str_field(port, "protocol");

	if (!name || !strcmp(name, "TCP"))
		*proto = SL_PROTO_TCP;
	else if (!strcmp(name, "UDP"))
		*proto = SL_PROTO_UDP;
	else
		return false; /* SCTP: the data path has no SCTP */
	return true;
}

/* The number the slice gives the Service port @svc_port: the slice port
 * of the same name ("" when unnamed) and protocol; 0 when it has none. */
static uint16_t slice_port(struct json_object *slice, struct json_object *svc_port)
{
	struct json_object *ports = field(slice, "ports");
	const char *want = str_field(svc_port, "name");
	const char *want_proto = str_field(svc_port, "protocol");

	for (size_t i = 0; i < array_len(ports); i++) {
		struct json_object *p = json_object_array_get_idx(ports, i);
		const char *name = str_field(p, "name"), *proto = str_field(p, "protocol");
		int32_t number = json_object_get_int(field(p, "port"));

		if (strcmp(name ? name : "", want ? want : "") ||
		    strcmp(proto ? proto : "TCP", want_proto ? want_proto : "TCP"))
			continue;
		return number > 0 && number <= 65535 ? (uint16_t)number : 0;
	}
	return 0;
}

/* Add or upgrade one backend: an address two slices both list (while an
 * endpoint moves between them) counts once, ready if either says so. */
static int put_backend(struct cfg_service *svc, const struct addr_port *ap, uint32_t weight)
{
	struct cfg_backend *be = cfg_find_backend(svc, ap);
	struct cfg_backend entry = { .addr = *ap, .weight = weight };

	if (be) {
		be->weight = be->weight > weight ? be->weight : weight;
		return 0;
	}
	return cfg_add_backend(svc, &entry) ? 0 : -ENOMEM;
}

/* Its weight: 1 ready, 0 terminating but still serving (drained), -1 not used. */
static int endpoint_weight(struct json_object *ep)
{
	struct json_object *cond = field(ep, "conditions");
	bool ready = bool_field(cond, "ready", true);

	if (ready)
		return 1;
	if (bool_field(cond, "serving", ready) && bool_field(cond, "terminating", false))
		return 0;
	return -1;
}

static int add_slice_backends(struct svc_ctx *c, struct cfg_service *svc, struct json_object *slice,
			      struct json_object *svc_port, bool local)
{
	const char *want_type = svc->key.family == SL_AF_INET ? "IPv4" : "IPv6";
	struct json_object *eps = field(slice, "endpoints");
	uint16_t port = slice_port(slice, svc_port);
	int err = 0;

	if (!port || !str_is(slice, "addressType", want_type))
		return 0;
	for (size_t i = 0; i < array_len(eps) && !err; i++) {
		struct json_object *ep = json_object_array_get_idx(eps, i);
		struct json_object *addrs = field(ep, "addresses");
		struct addr_port ap = { .port = htons(port) };
		int weight = endpoint_weight(ep);

		if (weight < 0 || !array_len(addrs))
			continue;
		if (local && !str_is(ep, "nodeName", c->node->name))
			continue;
		/* Every address of an endpoint is the same pod: the first serves. */
		if (!parse_ip(json_object_get_string(json_object_array_get_idx(addrs, 0)), ap.addr,
			      &ap.family) ||
		    ap.family != svc->key.family)
			continue;
		err = put_backend(svc, &ap, (uint32_t)weight);
	}
	return err;
}

/* Kubernetes falls back to serving terminating endpoints when none is
 * ready (a rolling update of a one-replica Deployment must not refuse
 * connections): they get weight 1 then. */
static void count_or_promote_terminating(struct svc_ctx *c, struct cfg_service *svc)
{
	bool any_ready = false;

	for (size_t i = 0; i < svc->n_backends; i++)
		any_ready |= svc->backends[i].weight > 0;
	for (size_t i = 0; i < svc->n_backends; i++) {
		if (svc->backends[i].weight)
			continue;
		if (any_ready)
			c->st->terminating++;
		else
			svc->backends[i].weight = 1;
	}
	c->st->backends += (uint32_t)svc->n_backends;
}

/* One sluice service for @ip:@port of Service port @svc_port. A VIP that
 * an earlier Service took is skipped (counted). */
static int add_vip(struct svc_ctx *c, const char *ip, int64_t port, struct json_object *svc_port,
		   bool local)
{
	struct cfg_service entry = c->base, *svc;
	char text[ADDR_STR_MAX];
	int err = 0;

	if (!parse_ip(ip, entry.key.addr, &entry.key.family) || port <= 0 || port > 65535 ||
	    !proto_of(svc_port, &entry.key.proto)) {
		c->st->skipped_vips++;
		return 0;
	}
	entry.key.port = htons((uint16_t)port);
	addr_format_service(&entry.key, text, sizeof(text));
	if (field(c->vips_seen, text)) {
		c->st->skipped_vips++;
		return 0;
	}
	json_object_object_add(c->vips_seen, text, json_object_new_boolean(1));
	svc = cfg_add_service(c->out, &entry);
	if (!svc)
		return -ENOMEM;
	for (size_t i = 0; i < array_len(c->slices) && !err; i++)
		err = add_slice_backends(c, svc, json_object_array_get_idx(c->slices, i), svc_port,
					 local);
	count_or_promote_terminating(c, svc);
	c->st->vips++;
	return err;
}

/* Each address in the array @ips (strings, or objects with an "ip"). */
static int add_vips_of(struct svc_ctx *c, struct json_object *ips, int64_t port,
		       struct json_object *svc_port, bool local)
{
	int err = 0;

	for (size_t i = 0; i < array_len(ips) && !err; i++) {
		struct json_object *ip = json_object_array_get_idx(ips, i);
		const char *text = json_object_is_type(ip, json_type_string)
					   ? json_object_get_string(ip)
					   : str_field(ip, "ip");

		/* ipMode Proxy: the load balancer delivers to the node, not to
		 * the VIP; kube-proxy leaves such an address alone too. */
		if (text && !str_is(ip, "ipMode", "Proxy"))
			err = add_vip(c, text, port, svc_port, local);
	}
	return err;
}

static bool has_node_ports(struct json_object *spec)
{
	return str_is(spec, "type", "NodePort") || str_is(spec, "type", "LoadBalancer");
}

static int add_node_ports(struct svc_ctx *c, struct json_object *spec, struct json_object *svc_port,
			  bool local)
{
	int64_t node_port = json_object_get_int64(field(svc_port, "nodePort"));
	char text[INET6_ADDRSTRLEN];
	int err = 0;

	if (!has_node_ports(spec) || node_port <= 0)
		return 0;
	for (size_t i = 0; i < c->node->n_ips && !err; i++) {
		const struct addr_port *ip = &c->node->ips[i];

		inet_ntop(ip->family == SL_AF_INET ? AF_INET : AF_INET6, ip->addr, text,
			  sizeof(text));
		err = add_vip(c, text, node_port, svc_port, local);
	}
	return err;
}

/* Every VIP of one Service port. */
static int add_port(struct svc_ctx *c, struct json_object *svc, struct json_object *svc_port)
{
	struct json_object *spec = field(svc, "spec"), *status = field(svc, "status");
	/* Traffic policy Local: only this node's endpoints. externalTrafficPolicy
	 * applies to what comes from outside (node ports, external and
	 * load-balancer IPs); internalTrafficPolicy to the cluster IPs. */
	bool local_in = str_is(spec, "internalTrafficPolicy", "Local");
	bool local_ext = (has_node_ports(spec) || array_len(field(spec, "externalIPs"))) &&
			 str_is(spec, "externalTrafficPolicy", "Local");
	int64_t port = json_object_get_int64(field(svc_port, "port"));
	struct json_object *cluster_ips = field(spec, "clusterIPs"), *one = NULL;
	int err;

	if (!array_len(cluster_ips)) {
		/* Written by an API server older than dual-stack: clusterIP only. */
		one = json_object_new_array();
		if (str_field(spec, "clusterIP"))
			json_object_array_add(one, json_object_get(field(spec, "clusterIP")));
		cluster_ips = one;
	}
	err = add_vips_of(c, cluster_ips, port, svc_port, local_in);
	json_object_put(one);
	if (!err)
		err = add_vips_of(c, field(spec, "externalIPs"), port, svc_port, local_ext);
	if (!err && str_is(spec, "type", "LoadBalancer"))
		err = add_vips_of(c, field(field(status, "loadBalancer"), "ingress"), port,
				  svc_port, local_ext);
	if (!err)
		err = add_node_ports(c, spec, svc_port, local_ext);
	return err;
}

/* "name.namespace", cut to what a service name holds (it only labels). */
static void service_name(struct json_object *svc, char *buf, size_t len)
{
	struct json_object *meta = field(svc, "metadata");
	const char *ns = str_field(meta, "namespace"), *name = str_field(meta, "name");

	snprintf(buf, len, "%s.%s", name ? name : "", ns ? ns : "");
	if (!cfg_name_valid(buf))
		buf[0] = '\0';
}

static uint32_t affinity_of(struct json_object *spec)
{
	struct json_object *client_ip = field(field(spec, "sessionAffinityConfig"), "clientIP");
	int64_t timeout = json_object_get_int64(field(client_ip, "timeoutSeconds"));

	if (!str_is(spec, "sessionAffinity", "ClientIP"))
		return 0;
	if (timeout <= 0)
		return K8S_AFFINITY_DEFAULT_S;
	return timeout > CFG_AFFINITY_MAX_S ? CFG_AFFINITY_MAX_S : (uint32_t)timeout;
}

static int add_service(struct svc_ctx *c, struct json_object *svc, struct json_object *slices)
{
	struct json_object *spec = field(svc, "spec"), *ports = field(spec, "ports");
	int err = 0;

	/* ExternalName is a DNS alias: nothing for a load balancer to do. */
	if (str_is(spec, "type", "ExternalName"))
		return 0;
	memset(&c->base, 0, sizeof(c->base));
	service_name(svc, c->base.name, sizeof(c->base.name));
	c->base.affinity_s = affinity_of(spec);
	c->slices = slices;
	for (size_t i = 0; i < array_len(ports) && !err; i++)
		err = add_port(c, svc, json_object_array_get_idx(ports, i));
	c->st->services++;
	return err;
}

/* The EndpointSlices of each Service: "namespace/service" -> array. */
static struct json_object *slices_by_service(const struct k8s_store *store)
{
	struct json_object *index = json_object_new_object();

	json_object_object_foreach (store->objects[K8S_SLICES], key, slice) {
		struct json_object *meta = field(slice, "metadata"), *list;
		const char *svc = str_field(field(meta, "labels"), "kubernetes.io/service-name");
		const char *ns = str_field(meta, "namespace");
		char name[512];

		(void)key;
		if (!svc || !ns)
			continue;
		snprintf(name, sizeof(name), "%s/%s", ns, svc);
		if (!json_object_object_get_ex(index, name, &list)) {
			list = json_object_new_array();
			json_object_object_add(index, name, list);
		}
		json_object_array_add(list, json_object_get(slice));
	}
	return index;
}

static int add_services(const struct k8s_store *store, struct svc_ctx *c)
{
	struct json_object *index = slices_by_service(store);
	int err = 0;

	json_object_object_foreach (store->objects[K8S_SERVICES], key, svc) {
		if (!err)
			err = add_service(c, svc, field(index, key));
	}
	json_object_put(index);
	return err;
}

/* ---- pods: policy endpoints ---- */

/* A label set being written as text ("k=v,k=v"), parsed once whole. */
struct label_text {
	char all[POL_LABELS_MAX * (POL_LABEL_KEY_MAX + POL_LABEL_VALUE_MAX + 1)];
	size_t used;
	unsigned int n;
	struct k8s_model_stats *st;
};

/* Add @prefix@key=@value when a policy label can hold it (key and value
 * under 64 characters, at most POL_LABELS_MAX labels); else count it in
 * skipped_labels. */
static void label_add(struct label_text *t, const char *prefix, const char *key, const char *value)
{
	char one_text[POL_LABEL_KEY_MAX + POL_LABEL_VALUE_MAX + 1], err[POL_ERR_MAX];
	int n = snprintf(one_text, sizeof(one_text), "%s%s=%s", prefix, key, value ? value : "");
	struct pol_labels one;

	if (n < 0 || (size_t)n >= sizeof(one_text) || t->n == POL_LABELS_MAX ||
	    pol_labels_parse(one_text, &one, err, sizeof(err))) {
		t->st->skipped_labels++;
		return;
	}
	t->used += (size_t)snprintf(t->all + t->used, sizeof(t->all) - t->used, "%s%s",
				    t->n ? "," : "", one_text);
	t->n++;
}

/* Each label of the object @labels (may be NULL) but @skip, as
 * @prefix<key>. */
static void labels_add(struct label_text *t, struct json_object *labels, const char *prefix,
		       const char *skip)
{
	if (!json_object_is_type(labels, json_type_object))
		return;
	json_object_object_foreach (labels, key, value) {
		if (!strcmp(key, skip))
			continue;
		/* A pod label that looks like its namespace's ("ns.team") would
		 * let whoever creates pods pass for a namespace an admin
		 * labelled: only namespace labels get the prefix. */
		if (!*prefix && !strncmp(key, K8S_NS_LABEL_PREFIX, strlen(K8S_NS_LABEL_PREFIX))) {
			t->st->skipped_labels++;
			continue;
		}
		label_add(t, prefix, key, json_object_get_string(value));
	}
}

/* The pod's namespace label, its own labels, then its namespace's labels
 * (K8S_NS_LABEL_PREFIX before each key; the namespace's name label is the
 * first one already). @ns_obj may be NULL. */
static void pod_labels(struct json_object *meta, struct json_object *ns_obj, struct pol_labels *out,
		       struct k8s_model_stats *st)
{
	struct label_text t = { .st = st };
	char err[POL_ERR_MAX];

	label_add(&t, "", K8S_NAMESPACE_LABEL, str_field(meta, "namespace"));
	labels_add(&t, field(meta, "labels"), "", K8S_NAMESPACE_LABEL);
	labels_add(&t, field(field(ns_obj, "metadata"), "labels"), K8S_NS_LABEL_PREFIX,
		   "kubernetes.io/metadata.name");
	/* Parsed as a whole: sorted by key, as every label set must be. Each
	 * label parsed alone and no key repeats, so this cannot fail; if it
	 * did, the namespace label alone is the safe answer. */
	if (pol_labels_parse(t.all, out, err, sizeof(err))) {
		t.used = 0;
		t.n = 0;
		label_add(&t, "", K8S_NAMESPACE_LABEL, str_field(meta, "namespace"));
		if (pol_labels_parse(t.all, out, err, sizeof(err)))
			memset(out, 0, sizeof(*out));
	}
}

/* What a pod's labels came to, kept on its json object (userdata): every
 * translation walks every pod, and a pod changes far less often than
 * something else in the cluster. Valid while the object is (a change
 * replaces it) and its namespace's version is the same. */
struct pod_labels_cache {
	char ns_version[64];
	struct pol_labels labels;
	uint32_t skipped;
};

static void cache_free(struct json_object *obj, void *cache)
{
	(void)obj;
	free(cache);
}

static const struct pol_labels *pod_labels_cached(const struct k8s_store *store,
						  struct json_object *pod,
						  struct k8s_model_stats *st)
{
	struct json_object *meta = field(pod, "metadata"), *ns_obj = NULL;
	struct pod_labels_cache *c = json_object_get_userdata(pod);
	const char *ns = str_field(meta, "namespace"), *ns_version;
	uint32_t skipped_before = st->skipped_labels;
	char key[512];

	snprintf(key, sizeof(key), "/%s", ns ? ns : "");
	json_object_object_get_ex(store->objects[K8S_NAMESPACES], key, &ns_obj);
	ns_version = str_field(field(ns_obj, "metadata"), "resourceVersion");
	if (!ns_version)
		ns_version = "";
	if (c && !strcmp(c->ns_version, ns_version)) {
		st->skipped_labels += c->skipped;
		return &c->labels;
	}
	c = malloc(sizeof(*c));
	if (!c)
		return NULL;
	snprintf(c->ns_version, sizeof(c->ns_version), "%s", ns_version);
	pod_labels(meta, ns_obj, &c->labels, st);
	c->skipped = st->skipped_labels - skipped_before;
	json_object_set_userdata(pod, c, cache_free);
	return &c->labels;
}

static bool pod_has_endpoints(struct json_object *pod)
{
	const char *phase = str_field(field(pod, "status"), "phase");

	/* Host-network pods have the node's address: that is `host`. */
	if (bool_field(field(pod, "spec"), "hostNetwork", false))
		return false;
	return !phase || (strcmp(phase, "Succeeded") && strcmp(phase, "Failed"));
}

static int add_pod(const struct k8s_store *store, struct pol_state *pol, struct json_object *pod,
		   struct json_object *seen, struct k8s_model_stats *st)
{
	struct json_object *ips = field(field(pod, "status"), "podIPs");
	struct pol_endpoint ep = { 0 };
	char err[POL_ERR_MAX];
	int ret = 0;

	const struct pol_labels *labels;

	if (!pod_has_endpoints(pod) || !array_len(ips))
		return 0;
	labels = pod_labels_cached(store, pod, st);
	if (!labels)
		return -ENOMEM;
	ep.labels = *labels;
	for (size_t i = 0; i < array_len(ips) && !ret; i++) {
		const char *ip = str_field(json_object_array_get_idx(ips, i), "ip");

		/* An address two pods claim (one of them on its way out): the first keeps it. */
		if (!ip || field(seen, ip) ||
		    pol_prefix_parse(ip, false, &ep.addr, err, sizeof(err)))
			continue;
		json_object_object_add(seen, ip, json_object_new_boolean(1));
		pol->endpoints[pol->n_endpoints++] = ep;
		st->endpoints++;
	}
	return ret;
}

/* At most one endpoint per pod address: allocated once (an endpoint is
 * over 2 KiB, and a cluster's pods make tens of megabytes of them). */
static size_t pod_addresses(const struct k8s_store *store)
{
	size_t n = 0;

	json_object_object_foreach (store->objects[K8S_PODS], key, pod) {
		(void)key;
		n += array_len(field(field(pod, "status"), "podIPs"));
	}
	return n;
}

static int add_pods(const struct k8s_store *store, struct cfg_state *out,
		    struct k8s_model_stats *st)
{
	struct pol_state *pol = &out->policy;
	struct json_object *seen;
	int err = 0;

	pol->endpoints = malloc((pod_addresses(store) + 1) * sizeof(*pol->endpoints));
	if (!pol->endpoints)
		return -ENOMEM;
	seen = json_object_new_object();
	json_object_object_foreach (store->objects[K8S_PODS], key, pod) {
		(void)key;
		if (!err)
			err = add_pod(store, pol, pod, seen, st);
	}
	json_object_put(seen);
	return err;
}

int k8s_model_build(const struct k8s_store *store, const struct k8s_node *node,
		    struct cfg_state *out, struct k8s_model_stats *stats)
{
	struct svc_ctx c = { .node = node, .out = out, .st = stats };
	int err;

	memset(out, 0, sizeof(*out));
	memset(stats, 0, sizeof(*stats));
	cfg_proxy_defaults(&out->proxy);
	c.vips_seen = json_object_new_object();
	err = add_services(store, &c);
	json_object_put(c.vips_seen);
	if (!err)
		err = add_pods(store, out, stats);
	if (err)
		cfg_free(out);
	return err;
}
