// SPDX-License-Identifier: GPL-2.0
/*
 * cmocka unit tests for sluiced --k8s's pure parts: the object store
 * (lists, watch events, replays), the translation of recorded-shape
 * Services, EndpointSlices and Pods (tests/k8s/fixtures) into services,
 * backends and policy endpoints, and the credentials (kubeconfig,
 * in-cluster, base64).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "k8s.h"
#include "k8s_client.h"

#define NODE_A "node-a"

/* ---- helpers ---- */

static const char *fixtures_dir(void)
{
	static char dir[PATH_MAX - 64];
	char here[PATH_MAX];

	if (!dir[0]) {
		snprintf(here, sizeof(here), "%s", __FILE__);
		snprintf(dir, sizeof(dir), "%s/../k8s/fixtures", dirname(here));
	}
	return dir;
}

static struct json_object *fixture(const char *name)
{
	char path[PATH_MAX + 64];
	struct json_object *obj;

	snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), name);
	obj = json_object_from_file(path);
	if (!obj)
		fail_msg("cannot read fixture %s", path);
	return obj;
}

static enum k8s_kind kind_of(struct json_object *obj)
{
	struct json_object *kind;
	const char *k;

	assert_true(json_object_object_get_ex(obj, "kind", &kind));
	k = json_object_get_string(kind);
	if (!strcmp(k, "Service"))
		return K8S_SERVICES;
	if (!strcmp(k, "EndpointSlice"))
		return K8S_SLICES;
	if (!strcmp(k, "Namespace"))
		return K8S_NAMESPACES;
	assert_string_equal(k, "Pod");
	return K8S_PODS;
}

/* Load fixtures into @store as watch ADDED events. */
static void load(struct k8s_store *store, const char *const *names)
{
	for (; *names; names++) {
		struct json_object *obj = fixture(*names);

		assert_int_equal(k8s_store_event(store, kind_of(obj), "ADDED", obj), 1);
		json_object_put(obj);
	}
}

static struct sl_svc_key vip(const char *text)
{
	struct sl_svc_key key;

	if (addr_parse_service(text, &key))
		fail_msg("bad VIP in the test: %s", text);
	return key;
}

static const struct cfg_service *find(const struct cfg_state *st, const char *text)
{
	struct sl_svc_key key = vip(text);

	return cfg_find_service(st, &key);
}

/* The weight of backend @addr of @svc, -1 when it has none. */
static int weight_of(const struct cfg_service *svc, const char *addr)
{
	struct addr_port ap;
	const struct cfg_backend *be;

	assert_int_equal(addr_parse_endpoint(addr, &ap), 0);
	be = cfg_find_backend(svc, &ap);
	return be ? (int)be->weight : -1;
}

static struct k8s_node node_a(void)
{
	struct k8s_node node = { .name = NODE_A, .n_ips = 1 };

	node.ips[0].family = SL_AF_INET;
	inet_pton(AF_INET, "198.18.0.1", node.ips[0].addr);
	return node;
}

/* ---- the store ---- */

static struct json_object *svc_obj(const char *name, const char *uid, const char *rv)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "{\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\","
		 "\"uid\":\"%s\",\"resourceVersion\":\"%s\"},\"spec\":{}}",
		 name, uid, rv);
	return json_tokener_parse(text);
}

static void test_store_events_and_replays(void **state)
{
	struct json_object *a1 = svc_obj("a", "u1", "10"), *a2 = svc_obj("a", "u1", "11");
	struct json_object *bad = json_tokener_parse("{\"metadata\":{\"namespace\":\"x\"}}");
	struct k8s_store store;

	(void)state;
	k8s_store_init(&store);
	assert_int_equal(k8s_store_event(&store, K8S_SERVICES, "ADDED", a1), 1);
	/* A resumed watch replays what the store has: no change. */
	assert_int_equal(k8s_store_event(&store, K8S_SERVICES, "ADDED", a1), 0);
	assert_int_equal(k8s_store_event(&store, K8S_SERVICES, "MODIFIED", a2), 1);
	assert_int_equal(k8s_store_event(&store, K8S_SERVICES, "MODIFIED", a2), 0);
	assert_int_equal(k8s_store_count(&store, K8S_SERVICES), 1);
	assert_int_equal(k8s_store_event(&store, K8S_SERVICES, "BOGUS", a2), -EINVAL);
	assert_int_equal(k8s_store_event(&store, K8S_SERVICES, "ADDED", bad), -EINVAL);
	assert_int_equal(k8s_store_event(&store, K8S_SERVICES, "DELETED", a2), 1);
	assert_int_equal(k8s_store_event(&store, K8S_SERVICES, "DELETED", a2), 0);
	assert_int_equal(k8s_store_count(&store, K8S_SERVICES), 0);
	k8s_store_free(&store);
	json_object_put(a1);
	json_object_put(a2);
	json_object_put(bad);
}

static void test_store_list_replaces(void **state)
{
	struct json_object *items = json_object_new_array(), *same = json_object_new_array();
	struct k8s_store store;

	(void)state;
	k8s_store_init(&store);
	json_object_array_add(items, svc_obj("a", "u1", "10"));
	json_object_array_add(items, svc_obj("b", "u2", "11"));
	assert_true(k8s_store_replace(&store, K8S_SERVICES, items));
	assert_int_equal(k8s_store_count(&store, K8S_SERVICES), 2);
	/* The same objects again (a re-list after 410 that found no change). */
	json_object_array_add(same, svc_obj("b", "u2", "11"));
	json_object_array_add(same, svc_obj("a", "u1", "10"));
	assert_false(k8s_store_replace(&store, K8S_SERVICES, same));
	/* One gone, and one recreated under its name (new uid). */
	json_object_array_del_idx(same, 0, 1);
	assert_true(k8s_store_replace(&store, K8S_SERVICES, same));
	assert_int_equal(k8s_store_count(&store, K8S_SERVICES), 1);
	json_object_put(same);
	same = json_object_new_array();
	json_object_array_add(same, svc_obj("a", "u9", "10"));
	assert_true(k8s_store_replace(&store, K8S_SERVICES, same));
	json_object_put(items);
	json_object_put(same);
	k8s_store_free(&store);
}

/* ---- the translation ---- */

static const char *const all_fixtures[] = {
	"service-web.json",
	"endpointslice-web.json",
	"service-dualstack.json",
	"endpointslice-dualstack-v4.json",
	"endpointslice-dualstack-v6.json",
	"service-nodeport.json",
	"endpointslice-nodeport.json",
	"service-lb.json",
	"endpointslice-lb.json",
	"service-headless.json",
	"service-externalname.json",
	"endpointslice-fqdn.json",
	"pod-web-1.json",
	"pod-web-2.json",
	"pod-web-3.json",
	"pod-hostnet.json",
	"pod-done.json",
	"namespace-default.json",
	NULL,
};

struct built {
	struct k8s_store store;
	struct cfg_state st;
	struct k8s_model_stats stats;
};

static int build_all(void **state)
{
	struct built *b = calloc(1, sizeof(*b));
	struct k8s_node node = node_a();

	k8s_store_init(&b->store);
	load(&b->store, all_fixtures);
	assert_int_equal(k8s_model_build(&b->store, &node, &b->st, &b->stats), 0);
	*state = b;
	return 0;
}

static int free_built(void **state)
{
	struct built *b = *state;

	cfg_free(&b->st);
	k8s_store_free(&b->store);
	free(b);
	return 0;
}

static void test_cluster_ip_ports_and_conditions(void **state)
{
	struct built *b = *state;
	const struct cfg_service *http = find(&b->st, "198.19.0.10:80/tcp");
	const struct cfg_service *dns = find(&b->st, "198.19.0.10:53/udp");

	assert_non_null(http);
	assert_string_equal(http->name, "web.default");
	assert_int_equal(http->affinity_s, 0);
	assert_int_equal(http->n_backends, 3);
	assert_int_equal(weight_of(http, "198.18.1.2:8080"), 1);
	assert_int_equal(weight_of(http, "198.18.2.2:8080"), 1);
	/* Terminating but serving: drained, so its flows finish. */
	assert_int_equal(weight_of(http, "198.18.3.2:8080"), 0);
	/* The UDP port's target comes from the slice port of the same name. */
	assert_non_null(dns);
	assert_int_equal(weight_of(dns, "198.18.1.2:5353"), 1);
	assert_int_equal(weight_of(dns, "198.18.1.2:8080"), -1);
	assert_true(b->stats.terminating >= 2);
}

static void test_dual_stack_families(void **state)
{
	struct built *b = *state;
	const struct cfg_service *v4 = find(&b->st, "198.19.0.11:80/tcp");
	const struct cfg_service *v6 = find(&b->st, "[fd00:ffff::11]:80/tcp");

	assert_non_null(v4);
	assert_non_null(v6);
	for (size_t i = 0; i < v4->n_backends; i++)
		assert_int_equal(v4->backends[i].addr.family, SL_AF_INET);
	for (size_t i = 0; i < v6->n_backends; i++)
		assert_int_equal(v6->backends[i].addr.family, SL_AF_INET6);
	assert_true(v4->n_backends > 0);
	assert_true(v6->n_backends > 0);
}

static void test_node_port_local_policy(void **state)
{
	struct built *b = *state;
	const struct cfg_service *cluster = find(&b->st, "198.19.0.12:80/tcp");
	const struct cfg_service *node_port = find(&b->st, "198.18.0.1:30080/tcp");

	assert_non_null(cluster);
	assert_non_null(node_port);
	/* externalTrafficPolicy Local: the node port keeps node-a's endpoint;
	 * the cluster IP (internal policy Cluster) keeps both. */
	assert_int_equal(cluster->n_backends, 2);
	assert_int_equal(node_port->n_backends, 1);
}

static void test_load_balancer_external_affinity(void **state)
{
	struct built *b = *state;
	const char *vips[] = { "198.19.0.13:80/tcp", "198.19.1.1:80/tcp", "198.19.2.1:80/tcp",
			       "198.18.0.1:31000/tcp" };

	for (size_t i = 0; i < 4; i++) {
		const struct cfg_service *svc = find(&b->st, vips[i]);

		if (!svc)
			fail_msg("no service %s", vips[i]);
		assert_int_equal(svc->affinity_s, 300);
		assert_true(svc->n_backends > 0);
	}
}

static void test_skipped_kinds(void **state)
{
	struct built *b = *state;

	/* Headless and ExternalName give nothing; nor does an FQDN slice. */
	for (size_t i = 0; i < b->st.n_services; i++) {
		char text[ADDR_STR_MAX];

		addr_format_service(&b->st.services[i].key, text, sizeof(text));
		assert_null(strstr(b->st.services[i].name, "headless"));
		assert_null(strstr(b->st.services[i].name, "external"));
	}
	assert_int_equal(b->stats.vips, b->st.n_services);
}

static void test_pod_endpoints(void **state)
{
	struct built *b = *state;
	const struct pol_state *pol = &b->st.policy;
	char labels[512];
	bool seen_web1 = false;

	/* Three running pods; not the host-network one, not the finished one. */
	assert_int_equal(pol->n_endpoints, b->stats.endpoints);
	assert_true(pol->n_endpoints >= 3);
	for (size_t i = 0; i < pol->n_endpoints; i++) {
		char addr[64];

		pol_prefix_format(&pol->endpoints[i].addr, addr, sizeof(addr));
		assert_string_not_equal(addr, "198.18.0.1");
		pol_labels_format(&pol->endpoints[i].labels, labels, sizeof(labels));
		assert_non_null(strstr(labels, K8S_NAMESPACE_LABEL "=default"));
		if (!strcmp(addr, "198.18.1.2")) {
			seen_web1 = true;
			assert_non_null(strstr(labels, "app=web"));
		}
	}
	assert_true(seen_web1);
	/* The translation is a valid policy as the agent checks it. */
	{
		char err[256];

		assert_int_equal(pol_state_validate(pol, err, sizeof(err)), 0);
	}
}

/* A namespace's labels label its pods, under "ns."; a label that does not
 * fit a policy label is skipped and counted. */
static void test_namespace_labels(void **state)
{
	struct built *b = *state;
	struct json_object *ns = json_tokener_parse(
		"{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"default\",\"uid\":\"n\","
		"\"resourceVersion\":\"99\",\"labels\":{\"kubernetes.io/metadata.name\":"
		"\"default\",\"team\":\"payments\",\"example.com/a-very-long-label-key-that-"
		"does-not-fit-into-a-policy-label\":\"x\"}}}");
	struct k8s_node node = node_a();
	char labels[512];
	struct json_object *pod = fixture("pod-web-1.json"), *pod_labels;

	/* A pod that claims a namespace label of its own. */
	json_object_object_get_ex(json_object_object_get(pod, "metadata"), "labels", &pod_labels);
	json_object_object_add(pod_labels, "ns.team", json_object_new_string("evil"));
	json_object_object_add(json_object_object_get(pod, "metadata"), "resourceVersion",
			       json_object_new_string("12345"));
	assert_int_equal(k8s_store_event(&b->store, K8S_PODS, "MODIFIED", pod), 1);
	json_object_put(pod);
	assert_int_equal(k8s_store_event(&b->store, K8S_NAMESPACES, "MODIFIED", ns), 1);
	cfg_free(&b->st);
	assert_int_equal(k8s_model_build(&b->store, &node, &b->st, &b->stats), 0);
	assert_true(b->st.policy.n_endpoints > 0);
	for (size_t i = 0; i < b->st.policy.n_endpoints; i++) {
		pol_labels_format(&b->st.policy.endpoints[i].labels, labels, sizeof(labels));
		assert_non_null(strstr(labels, K8S_NS_LABEL_PREFIX "team=payments"));
		assert_non_null(strstr(labels, "app=web"));
		assert_null(strstr(labels, "evil"));
		assert_null(strstr(labels, "metadata.name"));
	}
	assert_true(b->stats.skipped_labels >= 3); /* once per running pod */
	json_object_put(ns);
}

/* A Service whose endpoints all terminate still serves them (as kube-proxy
 * does); internalTrafficPolicy Local keeps this node's only. */
static void test_terminating_fallback_and_internal_local(void **state)
{
	const char *svc_text =
		"{\"kind\":\"Service\",\"metadata\":{\"name\":\"solo\",\"namespace\":\"default\","
		"\"uid\":\"1\",\"resourceVersion\":\"1\"},\"spec\":{\"clusterIPs\":[\"198.19.0.30\"],"
		"\"internalTrafficPolicy\":\"Local\",\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]}}";
	const char *slice_text =
		"{\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"solo-1\",\"namespace\":"
		"\"default\",\"uid\":\"2\",\"resourceVersion\":\"2\",\"labels\":{"
		"\"kubernetes.io/service-name\":\"solo\"}},\"addressType\":\"IPv4\",\"endpoints\":["
		"{\"addresses\":[\"198.18.1.2\"],\"nodeName\":\"node-a\",\"conditions\":{\"ready\":"
		"false,\"serving\":true,\"terminating\":true}},"
		"{\"addresses\":[\"198.18.2.2\"],\"nodeName\":\"node-b\",\"conditions\":{}},"
		"{\"addresses\":[\"198.18.3.2\"],\"nodeName\":\"node-a\",\"conditions\":{\"ready\":"
		"false,\"serving\":false,\"terminating\":true}}],"
		"\"ports\":[{\"port\":8080,\"protocol\":\"TCP\"}]}";
	struct json_object *svc = json_tokener_parse(svc_text),
			   *slice = json_tokener_parse(slice_text);
	struct k8s_node node = node_a();
	struct k8s_model_stats stats;
	const struct cfg_service *solo;
	struct k8s_store store;
	struct cfg_state st;

	(void)state;
	k8s_store_init(&store);
	assert_int_equal(k8s_store_event(&store, K8S_SERVICES, "ADDED", svc), 1);
	assert_int_equal(k8s_store_event(&store, K8S_SLICES, "ADDED", slice), 1);
	assert_int_equal(k8s_model_build(&store, &node, &st, &stats), 0);
	solo = find(&st, "198.19.0.30:80/tcp");
	assert_non_null(solo);
	/* node-b's ready endpoint is not local; node-a's only one terminates:
	 * it serves (weight 1); the one no longer serving is gone. */
	assert_int_equal(solo->n_backends, 1);
	assert_int_equal(weight_of(solo, "198.18.1.2:8080"), 1);
	cfg_free(&st);
	k8s_store_free(&store);
	json_object_put(svc);
	json_object_put(slice);
}

/* ---- credentials ---- */

static void test_base64(void **state)
{
	static const struct {
		const char *in, *out;
	} good[] = { { "", "" },
		     { "Zg==", "f" },
		     { "Zm8=", "fo" },
		     { "Zm9v", "foo" },
		     { "Zm9v\nYmFy", "foobar" } };
	static const char *const bad[] = { "Zg=a", "Z", "Zh==", "Zm9v*", "Zg===" };
	char *out;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(k8s_base64_decode(good[i].in, &out, &len), 0);
		assert_int_equal(len, strlen(good[i].out));
		assert_memory_equal(out, good[i].out, len);
		free(out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = NULL;
		if (k8s_base64_decode(bad[i], &out, &len) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_null(out);
	}
}

static char tmpdir[] = "/tmp/test_k8s.XXXXXX";

static void write_file(const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int kubeconfig(const char *text, struct k8s_creds *creds, char *err, size_t len)
{
	char path[PATH_MAX];

	write_file("kubeconfig", text);
	snprintf(path, sizeof(path), "%s/kubeconfig", tmpdir);
	return k8s_creds_kubeconfig(path, creds, err, len);
}

static void test_kubeconfig(void **state)
{
	const char *good = "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
			   "contexts:\n- name: a\n  context: {cluster: one, user: one}\n"
			   "- name: b\n  context: {cluster: two, user: two}\n"
			   "clusters:\n- name: one\n  cluster: {server: https://10.0.0.1}\n"
			   "- name: two\n  cluster:\n    server: https://198.18.0.1:6443/\n"
			   "    certificate-authority-data: Zm9v\n"
			   "users:\n- name: two\n  user:\n    tokenFile: tok\n"
			   "    client-certificate: certs/c.pem\n    client-key: /abs/k.pem\n";
	struct k8s_creds creds;
	char err[256], want[PATH_MAX];

	(void)state;
	assert_int_equal(kubeconfig(good, &creds, err, sizeof(err)), 0);
	assert_string_equal(creds.server, "https://198.18.0.1:6443");
	assert_int_equal(creds.ca_len, 3);
	assert_memory_equal(creds.ca_pem, "foo", 3);
	snprintf(want, sizeof(want), "%s/tok", tmpdir);
	assert_string_equal(creds.token_file, want);
	snprintf(want, sizeof(want), "%s/certs/c.pem", tmpdir);
	assert_string_equal(creds.cert_file, want);
	assert_string_equal(creds.key_file, "/abs/k.pem");
	assert_null(creds.token);
	k8s_creds_free(&creds);
}

static void test_kubeconfig_refused(void **state)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "kind: Config\n", "no current-context" },
		{ "current-context: x\ncontexts: []\n", "context 'x' is not defined" },
		{ "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n",
		  "its cluster is not defined" },
		{ "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
		  "clusters:\n- name: c\n  cluster: {}\n",
		  "no server" },
		{ "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		  "clusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
		  "users:\n- name: u\n  user: {exec: {command: aws}}\n",
		  "exec/auth-provider" },
		{ "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
		  "clusters:\n- name: c\n  cluster: {server: 'https://h', "
		  "certificate-authority-data: '!!'}\n",
		  "not base64" },
		{ "current-context: [\n", "kubeconfig:" },
	};
	struct k8s_creds creds;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&creds, 0x5a, sizeof(creds));
		if (!kubeconfig(bad[i].text, &creds, err, sizeof(err)))
			fail_msg("case %zu accepted", i);
		if (!strstr(err, bad[i].why))
			fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].why);
		/* Nothing is left for the caller to free. */
		assert_null(creds.token);
		assert_null(creds.ca_pem);
		assert_string_equal(creds.server, "");
	}
	assert_int_equal(k8s_creds_kubeconfig("/nonexistent/kubeconfig", &creds, err, sizeof(err)),
			 -ENOENT);
}

static void test_in_cluster(void **state)
{
	struct k8s_creds creds;
	char err[256], sa[PATH_MAX];

	(void)state;
	snprintf(sa, sizeof(sa), "%s/sa", tmpdir);
	mkdir(sa, 0700);
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(k8s_creds_in_cluster(sa, &creds, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "--kubeconfig"));
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	/* No token yet: refused, naming the file. */
	assert_int_equal(k8s_creds_in_cluster(sa, &creds, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/sa/token"));
	write_file("sa/token", "t0k3n\n");
	write_file("sa/ca.crt", "pem");
	assert_int_equal(k8s_creds_in_cluster(sa, &creds, err, sizeof(err)), 0);
	assert_string_equal(creds.server, "https://[fd00::1]:443");
	assert_non_null(strstr(creds.ca_file, "/sa/ca.crt"));
	k8s_creds_free(&creds);
}

static int make_tmpdir(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_events_and_replays),
		cmocka_unit_test(test_store_list_replaces),
		cmocka_unit_test(test_terminating_fallback_and_internal_local),
		cmocka_unit_test_setup_teardown(test_cluster_ip_ports_and_conditions, build_all,
						free_built),
		cmocka_unit_test_setup_teardown(test_dual_stack_families, build_all, free_built),
		cmocka_unit_test_setup_teardown(test_node_port_local_policy, build_all, free_built),
		cmocka_unit_test_setup_teardown(test_load_balancer_external_affinity, build_all,
						free_built),
		cmocka_unit_test_setup_teardown(test_skipped_kinds, build_all, free_built),
		cmocka_unit_test_setup_teardown(test_pod_endpoints, build_all, free_built),
		cmocka_unit_test_setup_teardown(test_namespace_labels, build_all, free_built),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_kubeconfig),
		cmocka_unit_test(test_kubeconfig_refused),
		cmocka_unit_test(test_in_cluster),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
