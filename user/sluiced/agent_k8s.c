/* sluiced --k8s, the agent's half: take the client thread's translations
 * and publish each as one transaction, merged with what the config file
 * and the CLI asked for (the file wins where both name an entry). Which
 * services and endpoints came from Kubernetes is remembered, so the next
 * translation replaces exactly those. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agent_k8s.h"
#include "log.h"

int agent_k8s_parse_node_ips(struct k8s_node *node, char *list)
{
	for (char *save = NULL, *ip = strtok_r(list, ",", &save); ip;
	     ip = strtok_r(NULL, ",", &save)) {
		struct addr_port *slot = &node->ips[node->n_ips];

		if (node->n_ips == K8S_NODE_IPS_MAX) {
			fprintf(stderr, "Error: at most %d --k8s-node-ip addresses\n",
				K8S_NODE_IPS_MAX);
			return -EINVAL;
		}
		memset(slot, 0, sizeof(*slot));
		if (inet_pton(AF_INET, ip, slot->addr) == 1) {
			slot->family = SL_AF_INET;
		} else if (inet_pton(AF_INET6, ip, slot->addr) == 1) {
			slot->family = SL_AF_INET6;
		} else {
			fprintf(stderr, "Error: --k8s-node-ip: '%s' is not an IP address\n", ip);
			return -EINVAL;
		}
		node->n_ips++;
	}
	return 0;
}

int agent_k8s_credentials(const char *kubeconfig, struct k8s_creds *creds)
{
	char why[512];
	int err = kubeconfig ? k8s_creds_kubeconfig(kubeconfig, creds, why, sizeof(why))
			     : k8s_creds_in_cluster(NULL, creds, why, sizeof(why));

	if (err)
		log_error("agent", "--k8s: %s", why);
	return err;
}

int agent_k8s_start(struct agent *a, const char *kubeconfig, const struct k8s_node *node)
{
	struct k8s_client_opts opts = { .node = *node };
	struct agent_k8s *k;
	int err = agent_k8s_credentials(kubeconfig, &opts.creds);

	if (err)
		return err;
	k = calloc(1, sizeof(*k));
	k->client = k ? k8s_client_start(&opts) : NULL;
	if (!k || !k->client) {
		err = k ? -errno : -ENOMEM;
		log_error("agent", "--k8s: cannot start the watcher: %s", strerror(-err));
		free(k);
		k8s_creds_free(&opts.creds);
		return err;
	}
	a->k8s = k;
	return 0;
}

static void owned_free(struct agent_k8s_owned *o)
{
	free(o->services);
	free(o->endpoints);
	memset(o, 0, sizeof(*o));
}

void agent_k8s_stop(struct agent *a)
{
	struct agent_k8s *k = a->k8s;

	if (!k)
		return;
	k8s_client_stop(k->client);
	cfg_free(&k->view);
	owned_free(&k->owned);
	owned_free(&k->next);
	free(k);
	a->k8s = NULL;
}

int agent_k8s_fd(const struct agent *a)
{
	return a->k8s ? k8s_client_fd(a->k8s->client) : -1;
}

/* The owned sets are sorted (agent_k8s_committed()): every publication
 * asks about each of a cluster's services and pod addresses. */
bool agent_k8s_owns(const struct agent_k8s *k, const struct sl_svc_key *key)
{
	return k && k->owned.n_services &&
	       bsearch(key, k->owned.services, k->owned.n_services, sizeof(*key), cfg_svc_key_cmp);
}

bool agent_k8s_owns_endpoint(const struct agent_k8s *k, const struct pol_prefix *addr)
{
	return k && k->owned.n_endpoints &&
	       bsearch(addr, k->owned.endpoints, k->owned.n_endpoints, sizeof(*addr),
		       pol_prefix_cmp);
}

/* ---- merging a translation into a candidate state ---- */

/* What the entries appended to @cfg since @n_services / @n_endpoints are:
 * the ones the merge took from the view. */
static int owned_of_tail(struct agent_k8s_owned *o, const struct cfg_state *cfg, size_t n_services,
			 size_t n_endpoints)
{
	o->n_services = cfg->n_services - n_services;
	o->n_endpoints = cfg->policy.n_endpoints - n_endpoints;
	o->services = calloc(o->n_services + 1, sizeof(*o->services));
	o->endpoints = calloc(o->n_endpoints + 1, sizeof(*o->endpoints));
	if (!o->services || !o->endpoints)
		return -ENOMEM;
	for (size_t i = 0; i < o->n_services; i++)
		o->services[i] = cfg->services[n_services + i].key;
	for (size_t i = 0; i < o->n_endpoints; i++)
		o->endpoints[i] = cfg->policy.endpoints[n_endpoints + i].addr;
	return 0;
}

int agent_k8s_merge(struct agent_k8s *k, struct cfg_state *cfg, const struct cfg_state *desired)
{
	/* Before the API server was heard from, which of the services the
	 * agent serves came from Kubernetes is not known: a `sluice apply` or
	 * SIGHUP then keeps those @cfg lacks (the first translation sorts them
	 * out) rather than cut their traffic. */
	const struct cfg_state *add = k->have_view ? &k->view : desired;
	size_t n_services = cfg->n_services, n_endpoints = cfg->policy.n_endpoints;
	size_t offered = add->n_services + add->policy.n_endpoints;
	int err;

	owned_free(&k->next);
	k->conflicts = 0;
	/* The config's entries win: the view's are added where it has none. */
	err = cfg_add_missing_services(cfg, add);
	if (!err)
		err = cfg_add_missing_endpoints(cfg, add);
	if (err || !k->have_view)
		return err;
	err = owned_of_tail(&k->next, cfg, n_services, n_endpoints);
	k->conflicts = (uint32_t)(offered - k->next.n_services - k->next.n_endpoints);
	if (k->conflicts)
		log_warn("k8s",
			 "%u services or endpoints are both in the config and in Kubernetes: "
			 "the config's are kept",
			 k->conflicts);
	return err;
}

void agent_k8s_committed(struct agent_k8s *k)
{
	owned_free(&k->owned);
	k->owned = k->next;
	memset(&k->next, 0, sizeof(k->next));
	if (k->owned.n_services)
		qsort(k->owned.services, k->owned.n_services, sizeof(*k->owned.services),
		      cfg_svc_key_cmp);
	if (k->owned.n_endpoints)
		qsort(k->owned.endpoints, k->owned.n_endpoints, sizeof(*k->owned.endpoints),
		      pol_prefix_cmp);
}

/* ---- publishing ---- */

static bool in_config(const struct cfg_state *file, const struct sl_svc_key *key)
{
	return file && cfg_find_service(file, key);
}

static bool endpoint_in(const struct cfg_state *file, const struct pol_prefix *addr)
{
	for (size_t i = 0; file && i < file->policy.n_endpoints; i++)
		if (!pol_prefix_cmp(&file->policy.endpoints[i].addr, addr))
			return true;
	return false;
}

/* Take out of @base what Kubernetes gave: what it owns, or before the
 * first publication all but the config @file's (NULL: none). */
static void base_filter(struct cfg_state *base, const struct agent_k8s *k,
			const struct cfg_state *file)
{
	struct pol_state *pol = &base->policy;
	size_t kept = 0;

	for (size_t i = base->n_services; i-- > 0;) {
		const struct sl_svc_key *key = &base->services[i].key;
		bool keep = k->published ? !agent_k8s_owns(k, key) : in_config(file, key);

		if (!keep)
			cfg_remove_service(base, &base->services[i]);
	}
	/* One pass that keeps the order: a cluster has tens of thousands. */
	for (size_t i = 0; i < pol->n_endpoints; i++) {
		const struct pol_prefix *addr = &pol->endpoints[i].addr;
		bool keep =
			k->published ? !agent_k8s_owns_endpoint(k, addr) : endpoint_in(file, addr);

		if (keep)
			pol->endpoints[kept++] = pol->endpoints[i];
	}
	pol->n_endpoints = kept;
}

/* What the next publication starts from: the desired state without what
 * Kubernetes gave. Until the first publication after a start, what
 * Kubernetes gave is not known (the state restored may hold services
 * deleted while the agent was away), so only the config file's services
 * and endpoints stay then; rule sets always stay. A config file that does
 * not load then refuses the publication (retried): guessing would delete
 * its services. */
static int base_of(struct agent *a, struct cfg_state *base, struct agent_error *e)
{
	bool need_file = !a->k8s->published && a->config_path;
	struct cfg_state file = { 0 };
	struct cfg_error cerr;
	char where[1024];
	int err;

	if (need_file && cfg_load_file(a->config_path, &file, &cerr)) {
		cfg_error_format(&cerr, where, sizeof(where));
		return agent_fail(e, 1, 0, "fix the file: the publication is retried",
				  "cannot tell the config's services from Kubernetes': %s", where);
	}
	err = cfg_copy(base, &a->desired);
	if (err)
		agent_fail(e, 1, err, NULL, "cannot copy the desired state");
	else
		base_filter(base, a->k8s, need_file ? &file : NULL);
	cfg_free(&file);
	return err;
}

static void log_published(struct agent_k8s *k, const struct apply_summary *sum)
{
	struct k8s_client_status st;

	k8s_client_status(k->client, &st);
	log_info("k8s",
		 "published %u services from %u Kubernetes Services (%u backends, %u terminating), "
		 "%u endpoints: %u changed, %u deleted",
		 st.model.vips, st.model.services, st.model.backends, st.model.terminating,
		 st.model.endpoints, sum->changed, sum->deleted);
}

void agent_k8s_publish(struct agent *a)
{
	struct agent_k8s *k = a->k8s;
	struct apply_summary sum;
	struct agent_error e;
	struct cfg_state view, base, prev;
	bool had_view;
	double t0, t1;
	int err;

	if (!k8s_client_take(k->client, &view))
		return;
	/* The view merges into this transaction; it stays only if published. */
	prev = k->view;
	had_view = k->have_view;
	k->view = view;
	k->have_view = true;
	t0 = agent_now_s(CLOCK_MONOTONIC);
	err = base_of(a, &base, &e);
	t1 = agent_now_s(CLOCK_MONOTONIC);
	if (!err)
		err = agent_publish(a, &base, &sum, &e);
	log_debug("k8s", "publication: base %.1f ms, transaction %.1f ms", (t1 - t0) * 1e3,
		  (agent_now_s(CLOCK_MONOTONIC) - t1) * 1e3);
	if (err) {
		cfg_free(&k->view);
		k->view = prev;
		k->have_view = had_view;
		k->publish_errors++;
		snprintf(k->last_error, sizeof(k->last_error), "%s", e.message);
		log_error("k8s",
			  "publication refused, the previous state stays (retry in %u s): %s%s%s",
			  AGENT_K8S_RETRY_MS / 1000, e.message, e.hint[0] ? "; " : "", e.hint);
		/* A cluster that stays quiet would never send another. */
		k8s_client_retry(k->client, AGENT_K8S_RETRY_MS);
		return;
	}
	cfg_free(&prev);
	k->published = true;
	k->publications++;
	k->last_error[0] = '\0';
	log_published(k, &sum);
}

bool agent_ready(const void *agent, char *why, size_t len)
{
	const struct agent *a = agent;

	if (!a->published)
		snprintf(why, len, "the desired state is not published yet");
	else if (a->k8s && !a->k8s->published)
		snprintf(why, len, "waiting for the first full list from the Kubernetes API");
	else
		return true;
	return false;
}

/* ---- status and metrics ---- */

static struct json_object *kind_json(const struct k8s_kind_status *ks)
{
	struct json_object *obj = json_object_new_object();

	json_object_object_add(obj, "listed", json_object_new_boolean(ks->listed));
	json_object_object_add(obj, "watching", json_object_new_boolean(ks->watching));
	json_object_object_add(obj, "resource_version",
			       json_object_new_string(ks->resource_version));
	json_object_object_add(obj, "objects", json_object_new_int64((int64_t)ks->objects));
	json_object_object_add(obj, "lists", json_object_new_int64((int64_t)ks->lists));
	json_object_object_add(obj, "watches", json_object_new_int64((int64_t)ks->watches));
	json_object_object_add(obj, "events", json_object_new_int64((int64_t)ks->events));
	json_object_object_add(obj, "bookmarks", json_object_new_int64((int64_t)ks->bookmarks));
	json_object_object_add(obj, "expired", json_object_new_int64((int64_t)ks->expired));
	json_object_object_add(obj, "errors", json_object_new_int64((int64_t)ks->errors));
	return obj;
}

static void add_u64(struct json_object *obj, const char *key, uint64_t v)
{
	json_object_object_add(obj, key, json_object_new_int64((int64_t)v));
}

struct json_object *agent_k8s_status_json(const struct agent *a)
{
	struct json_object *obj, *kinds;
	struct k8s_client_status st;

	if (!a->k8s)
		return NULL;
	k8s_client_status(a->k8s->client, &st);
	obj = json_object_new_object();
	json_object_object_add(obj, "synced", json_object_new_boolean(st.synced));
	json_object_object_add(obj, "published", json_object_new_boolean(a->k8s->published));
	add_u64(obj, "publications", a->k8s->publications);
	add_u64(obj, "publish_errors", a->k8s->publish_errors);
	add_u64(obj, "conflicts", a->k8s->conflicts);
	add_u64(obj, "services", st.model.services);
	add_u64(obj, "vips", st.model.vips);
	add_u64(obj, "backends", st.model.backends);
	add_u64(obj, "terminating", st.model.terminating);
	add_u64(obj, "endpoints", st.model.endpoints);
	add_u64(obj, "skipped_vips", st.model.skipped_vips);
	add_u64(obj, "skipped_labels", st.model.skipped_labels);
	json_object_object_add(
		obj, "last_error",
		json_object_new_string(a->k8s->last_error[0] ? a->k8s->last_error : st.last_error));
	kinds = json_object_new_object();
	for (int kind = 0; kind < K8S_KINDS; kind++)
		json_object_object_add(kinds, k8s_kind_name(kind), kind_json(&st.kinds[kind]));
	json_object_object_add(obj, "resources", kinds);
	return obj;
}

static void counter(FILE *out, const char *name, const char *help,
		    const uint64_t per_kind[K8S_KINDS])
{
	fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (int k = 0; k < K8S_KINDS; k++)
		fprintf(out, "%s{resource=\"%s\"} %llu\n", name, k8s_kind_name(k),
			(unsigned long long)per_kind[k]);
}

int agent_k8s_metrics(FILE *out, const struct agent *a)
{
	uint64_t events[K8S_KINDS], lists[K8S_KINDS], expired[K8S_KINDS], errors[K8S_KINDS];
	struct k8s_client_status st;

	if (!a->k8s)
		return 0;
	k8s_client_status(a->k8s->client, &st);
	fprintf(out,
		"# HELP sluice_k8s_synced 1 once every resource was listed\n"
		"# TYPE sluice_k8s_synced gauge\nsluice_k8s_synced %d\n",
		st.synced);
	fprintf(out,
		"# HELP sluice_k8s_publications_total Translations published\n"
		"# TYPE sluice_k8s_publications_total counter\n"
		"sluice_k8s_publications_total{result=\"ok\"} %llu\n"
		"sluice_k8s_publications_total{result=\"refused\"} %llu\n",
		(unsigned long long)a->k8s->publications,
		(unsigned long long)a->k8s->publish_errors);
	for (int k = 0; k < K8S_KINDS; k++) {
		events[k] = st.kinds[k].events;
		lists[k] = st.kinds[k].lists;
		expired[k] = st.kinds[k].expired;
		errors[k] = st.kinds[k].errors;
	}
	counter(out, "sluice_k8s_events_total", "Watch events received", events);
	counter(out, "sluice_k8s_lists_total", "Lists (at start and after 410 Gone)", lists);
	counter(out, "sluice_k8s_expired_total", "Watches whose version had expired (410 Gone)",
		expired);
	counter(out, "sluice_k8s_errors_total", "Failed requests and broken streams", errors);
	return ferror(out) ? -EIO : 0;
}
