/* Credentials for the Kubernetes API: in a pod, the service account's
 * token and CA and the KUBERNETES_SERVICE_HOST/PORT the kubelet sets;
 * elsewhere, a kubeconfig's current context (read with libyaml's
 * document API: the file is small and its shape is kubectl's). */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "k8s_client.h"

static int fail(char *err, size_t len, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t len, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return ret;
}

void k8s_creds_free(struct k8s_creds *creds)
{
	free(creds->ca_pem);
	free(creds->cert_pem);
	free(creds->key_pem);
	free(creds->token);
	memset(creds, 0, sizeof(*creds));
}

int k8s_creds_in_cluster(const char *sa_dir, struct k8s_creds *creds, char *err, size_t len)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");

	memset(creds, 0, sizeof(*creds));
	if (!sa_dir)
		sa_dir = K8S_SA_DIR;
	if (!host || !*host || !port || !*port)
		return fail(err, len, -ENOENT,
			    "KUBERNETES_SERVICE_HOST/PORT are not set: not in a pod (pass "
			    "--kubeconfig FILE)");
	/* An IPv6 service address needs brackets in a URL. */
	snprintf(creds->server, sizeof(creds->server),
		 strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
	snprintf(creds->token_file, sizeof(creds->token_file), "%s/token", sa_dir);
	snprintf(creds->ca_file, sizeof(creds->ca_file), "%s/ca.crt", sa_dir);
	if (access(creds->token_file, R_OK))
		return fail(err, len, -errno, "%s: %s", creds->token_file, strerror(errno));
	if (access(creds->ca_file, R_OK))
		return fail(err, len, -errno, "%s: %s", creds->ca_file, strerror(errno));
	return 0;
}

/* ---- base64 (kubeconfig's *-data fields) ---- */

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int k8s_base64_decode(const char *text, char **out, size_t *out_len)
{
	size_t n = 0, bits = 0, pad = 0;
	uint32_t acc = 0;
	char *buf = malloc(strlen(text) / 4 * 3 + 4);

	if (!buf)
		return -ENOMEM;
	for (const char *p = text; *p; p++) {
		int v = b64_value(*p);

		if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			continue;
		if (*p == '=') {
			pad++;
			continue;
		}
		if (v < 0 || pad)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (char)(acc >> bits);
		}
	}
	/* Left over: 0, 2 or 4 bits of zeros, and padding to a multiple of 4. */
	if (bits >= 6 || pad > 2 || (acc & ((1u << bits) - 1)))
		goto bad;
	*out = buf;
	*out_len = n;
	return 0;
bad:
	free(buf);
	return -EINVAL;
}

/* ---- kubeconfig ---- */

struct kubeconfig {
	yaml_document_t doc;
	char dir[PATH_MAX]; /* relative paths are the file's directory's */
	char *err;
	size_t err_len;
};

static yaml_node_t *map_get(struct kubeconfig *kc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&kc->doc, p->key);

		if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(&kc->doc, p->value);
	}
	return NULL;
}

static const char *map_str(struct kubeconfig *kc, yaml_node_t *map, const char *key)
{
	yaml_node_t *v = map_get(kc, map, key);

	return v && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
}

/* The entry of @list (clusters, users, contexts) named @name, its inner
 * mapping under @inner ("cluster", "user", "context"). */
static yaml_node_t *named(struct kubeconfig *kc, const char *list, const char *inner,
			  const char *name)
{
	yaml_node_t *seq = map_get(kc, yaml_document_get_root_node(&kc->doc), list);

	if (!seq || seq->type != YAML_SEQUENCE_NODE || !name)
		return NULL;
	for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
	     i++) {
		yaml_node_t *entry = yaml_document_get_node(&kc->doc, *i);
		const char *n = map_str(kc, entry, "name");

		if (n && !strcmp(n, name))
			return map_get(kc, entry, inner);
	}
	return NULL;
}

static void path_of(struct kubeconfig *kc, const char *file, char *out, size_t len)
{
	snprintf(out, len, file[0] == '/' ? "%.0s%s" : "%s/%s", kc->dir, file);
}

/* A PEM from "KEY-data" (base64) or "KEY" (a file). */
static int pem_of(struct kubeconfig *kc, yaml_node_t *map, const char *key, char *file,
		  size_t file_len, char **pem, size_t *pem_len)
{
	char data_key[64];
	const char *data, *path;

	snprintf(data_key, sizeof(data_key), "%s-data", key);
	data = map_str(kc, map, data_key);
	path = map_str(kc, map, key);
	if (data && k8s_base64_decode(data, pem, pem_len))
		return fail(kc->err, kc->err_len, -EINVAL, "%s is not base64", data_key);
	if (!data && path)
		path_of(kc, path, file, file_len);
	return 0;
}

static int read_cluster(struct kubeconfig *kc, yaml_node_t *cluster, struct k8s_creds *creds)
{
	const char *server = map_str(kc, cluster, "server");
	const char *insecure = map_str(kc, cluster, "insecure-skip-tls-verify");
	size_t len;

	if (!server || !*server)
		return fail(kc->err, kc->err_len, -EINVAL, "the cluster has no server");
	snprintf(creds->server, sizeof(creds->server), "%s", server);
	len = strlen(creds->server);
	while (len && creds->server[len - 1] == '/')
		creds->server[--len] = '\0';
	creds->insecure = insecure && !strcmp(insecure, "true");
	return pem_of(kc, cluster, "certificate-authority", creds->ca_file, sizeof(creds->ca_file),
		      &creds->ca_pem, &creds->ca_len);
}

static int read_user(struct kubeconfig *kc, yaml_node_t *user, struct k8s_creds *creds)
{
	const char *token = map_str(kc, user, "token"),
		   *token_file = map_str(kc, user, "tokenFile");
	int err;

	if (!user)
		return 0; /* anonymous */
	if (map_get(kc, user, "exec") || map_get(kc, user, "auth-provider"))
		return fail(kc->err, kc->err_len, -ENOTSUP,
			    "the user authenticates with an exec/auth-provider plugin: give "
			    "sluiced a token or a client certificate");
	if (token && !(creds->token = strdup(token)))
		return fail(kc->err, kc->err_len, -ENOMEM, "out of memory");
	if (token_file)
		path_of(kc, token_file, creds->token_file, sizeof(creds->token_file));
	err = pem_of(kc, user, "client-certificate", creds->cert_file, sizeof(creds->cert_file),
		     &creds->cert_pem, &creds->cert_len);
	if (!err)
		err = pem_of(kc, user, "client-key", creds->key_file, sizeof(creds->key_file),
			     &creds->key_pem, &creds->key_len);
	return err;
}

static int read_context(struct kubeconfig *kc, struct k8s_creds *creds)
{
	const char *current = map_str(kc, yaml_document_get_root_node(&kc->doc), "current-context");
	yaml_node_t *ctx = named(kc, "contexts", "context", current), *cluster;
	int err;

	if (!current || !*current)
		return fail(kc->err, kc->err_len, -EINVAL, "no current-context");
	if (!ctx)
		return fail(kc->err, kc->err_len, -EINVAL, "context '%s' is not defined", current);
	cluster = named(kc, "clusters", "cluster", map_str(kc, ctx, "cluster"));
	if (!cluster)
		return fail(kc->err, kc->err_len, -EINVAL,
			    "context '%s': its cluster is not defined", current);
	err = read_cluster(kc, cluster, creds);
	if (!err)
		err = read_user(kc, named(kc, "users", "user", map_str(kc, ctx, "user")), creds);
	return err;
}

int k8s_creds_kubeconfig(const char *path, struct k8s_creds *creds, char *err, size_t len)
{
	struct kubeconfig kc = { .err = err, .err_len = len };
	char copy[PATH_MAX];
	yaml_parser_t parser;
	FILE *f;
	int ret;

	memset(creds, 0, sizeof(*creds));
	f = fopen(path, "r");
	if (!f)
		return fail(err, len, -errno, "%s: %s", path, strerror(errno));
	snprintf(copy, sizeof(copy), "%s", path);
	snprintf(kc.dir, sizeof(kc.dir), "%s", dirname(copy));
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &kc.doc)) {
		ret = fail(err, len, -EINVAL, "%s:%zu: %s", path, parser.problem_mark.line + 1,
			   parser.problem ? parser.problem : "not YAML");
		yaml_parser_delete(&parser);
		fclose(f);
		return ret;
	}
	ret = read_context(&kc, creds);
	yaml_document_delete(&kc.doc);
	yaml_parser_delete(&parser);
	fclose(f);
	if (ret) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		fail(err, len, ret, "%s: %s", path, why);
		k8s_creds_free(creds);
	}
	return ret;
}
