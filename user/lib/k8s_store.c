/* The store of Kubernetes objects the agent follows: one json-c object
 * (a hash table) per kind, "namespace/name" -> the object as the API
 * server last sent it. Lists replace a kind; watch events change one
 * object. Whether anything changed is decided by uid and resourceVersion,
 * so a watch resumed from an older version replays without effect. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "k8s.h"

static const char *const kind_names[K8S_KINDS] = {
	[K8S_SERVICES] = "services",
	[K8S_SLICES] = "endpointslices",
	[K8S_PODS] = "pods",
	[K8S_NAMESPACES] = "namespaces",
};

static const char *const kind_paths[K8S_KINDS] = {
	[K8S_SERVICES] = "/api/v1/services",
	[K8S_SLICES] = "/apis/discovery.k8s.io/v1/endpointslices",
	[K8S_PODS] = "/api/v1/pods",
	[K8S_NAMESPACES] = "/api/v1/namespaces",
};

const char *k8s_kind_name(enum k8s_kind kind)
{
	return kind < K8S_KINDS ? kind_names[kind] : "?";
}

const char *k8s_kind_path(enum k8s_kind kind)
{
	return kind < K8S_KINDS ? kind_paths[kind] : NULL;
}

void k8s_store_init(struct k8s_store *store)
{
	for (int k = 0; k < K8S_KINDS; k++)
		store->objects[k] = json_object_new_object();
}

void k8s_store_free(struct k8s_store *store)
{
	for (int k = 0; k < K8S_KINDS; k++) {
		json_object_put(store->objects[k]);
		store->objects[k] = NULL;
	}
}

size_t k8s_store_count(const struct k8s_store *store, enum k8s_kind kind)
{
	return (size_t)json_object_object_length(store->objects[kind]);
}

static const char *meta_string(struct json_object *obj, const char *field)
{
	struct json_object *meta, *value;

	if (!json_object_object_get_ex(obj, "metadata", &meta) ||
	    !json_object_object_get_ex(meta, field, &value) ||
	    !json_object_is_type(value, json_type_string))
		return NULL;
	return json_object_get_string(value);
}

/* "namespace/name" (cluster-scoped objects: "/name"); false without a name. */
static bool object_key(struct json_object *obj, char *key, size_t len)
{
	const char *ns = meta_string(obj, "namespace"), *name = meta_string(obj, "name");
	int n;

	if (!name || !*name)
		return false;
	n = snprintf(key, len, "%s/%s", ns ? ns : "", name);
	return n > 0 && (size_t)n < len;
}

static bool same_string(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The same version of the same object: nothing to do. */
static bool same_version(struct json_object *a, struct json_object *b)
{
	return same_string(meta_string(a, "uid"), meta_string(b, "uid")) &&
	       same_string(meta_string(a, "resourceVersion"), meta_string(b, "resourceVersion"));
}

/* Keep of @obj's member @name only the keys in @keep (NULL-ended). */
static void keep_only(struct json_object *obj, const char *name, const char *const *keep)
{
	struct json_object *part, *kept;

	if (!json_object_object_get_ex(obj, name, &part) ||
	    !json_object_is_type(part, json_type_object))
		return;
	kept = json_object_new_object();
	for (; *keep; keep++) {
		struct json_object *value;

		if (json_object_object_get_ex(part, *keep, &value))
			json_object_object_add(kept, *keep, json_object_get(value));
	}
	json_object_object_add(obj, name, kept);
}

void k8s_object_trim(enum k8s_kind kind, struct json_object *obj)
{
	static const char *const meta_keep[] = {
		"name", "namespace", "uid", "resourceVersion", "labels", "deletionTimestamp", NULL
	};
	static const char *const pod_spec_keep[] = { "hostNetwork", "nodeName", NULL };
	static const char *const pod_status_keep[] = { "phase", "podIP", "podIPs", NULL };

	keep_only(obj, "metadata", meta_keep);
	if (kind == K8S_PODS) {
		keep_only(obj, "spec", pod_spec_keep);
		keep_only(obj, "status", pod_status_keep);
	}
}

bool k8s_store_replace(struct k8s_store *store, enum k8s_kind kind, struct json_object *items)
{
	struct json_object *fresh = json_object_new_object(), *old = store->objects[kind];
	size_t n =
		json_object_is_type(items, json_type_array) ? json_object_array_length(items) : 0;
	bool changed = false;
	char key[512];

	for (size_t i = 0; i < n; i++) {
		struct json_object *item = json_object_array_get_idx(items, i), *prev;

		if (!object_key(item, key, sizeof(key)))
			continue;
		if (!json_object_object_get_ex(old, key, &prev) || !same_version(prev, item))
			changed = true;
		k8s_object_trim(kind, item);
		json_object_object_add(fresh, key, json_object_get(item));
	}
	changed |= json_object_object_length(fresh) != json_object_object_length(old);
	store->objects[kind] = fresh;
	json_object_put(old);
	return changed;
}

int k8s_store_event(struct k8s_store *store, enum k8s_kind kind, const char *type,
		    struct json_object *object)
{
	struct json_object *prev = NULL;
	char key[512];
	bool held;

	if (!object_key(object, key, sizeof(key)))
		return -EINVAL;
	held = json_object_object_get_ex(store->objects[kind], key, &prev);
	if (!strcmp(type, "DELETED")) {
		if (!held)
			return 0;
		json_object_object_del(store->objects[kind], key);
		return 1;
	}
	if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED"))
		return -EINVAL;
	if (held && same_version(prev, object))
		return 0;
	k8s_object_trim(kind, object);
	json_object_object_add(store->objects[kind], key, json_object_get(object));
	return 1;
}
