/* Tests of the agent (user/sluiced/agent.c) through its control API
 * (agent_api.c, docs/api.md): JSON requests handed to agent_api_handle()
 * against the real maps of a loaded, unattached XDP load balancer. Each
 * case checks the reply, the maps, the desired state and the state file;
 * a refused request must leave all four as they were. Then restarts (a
 * second agent on the same maps: state file, --config or the maps as the
 * source) and weights set by health checks (an hour between probes and
 * thresholds of 100, so no probe changes a state while a case runs). Then
 * the policy ops: each accepted change publishes one policy generation
 * (sl_pol_gen), a refused one publishes none.
 * Usage: test_agent [name-substring]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "agent.h"
#include "agent_api.h"
#include "config.h"
#include "harness.h"
#include "health.h"
#include "lb.h"
#include "loader.h"
#include "log.h"
#include "policy.h"
#include "policy_maps.h"
#include "sluice/limits.h"
#include "xdp_lb.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MAGLEV_SIZE 251 /* small and prime: loads fast */
#define REQ_MAX 8192

#define SVC4 "198.19.0.10:80/tcp"
#define SVC6 "[fd00::10]:53/udp"
#define SVC_NEW "198.19.0.99:8080/tcp" /* no case has it before its checks */
#define BE_A "198.18.1.2:8080"
#define BE_B "198.18.2.2:8080"
#define BE_C "198.18.3.2:8080" /* no case has it before its checks */
#define BE6 "[fd00:0:0:1::2]:53"
#define NAME31 "A_b-c.0123456789012345678901234" /* the longest name, every class */
_Static_assert(sizeof(NAME31) == SL_SVC_NAME_MAX, "NAME31 has 31 characters");

static struct xdp_lb *skel;
static struct lb_maps maps;
static struct agent ag;
static bool ag_running;
static char tmp_dir[] = "/tmp/sluice-agent-test-XXXXXX";
static char state_path[PATH_MAX], config_path[PATH_MAX], state_tmp[PATH_MAX + 4];

/* ---- the configs ---- */

/* web is health-checked (no prober runs unless a case starts one). */
static const char CFG_ONE[] = "services:\n"
			      "  - name: web\n"
			      "    vip: 198.19.0.10:80/tcp\n"
			      "    affinity: 30\n"
			      "    health:\n"
			      "      type: http\n"
			      "      path: /healthz\n"
			      "      expect_status: 204\n"
			      "      interval_ms: 3600000\n"
			      "      timeout_ms: 1000\n"
			      "      healthy_threshold: 100\n"
			      "      unhealthy_threshold: 100\n"
			      "    backends:\n"
			      "      - 198.18.1.2:8080\n"
			      "      - { address: 198.18.2.2:8080, weight: 5 }\n"
			      "  - name: dns\n"
			      "    vip: \"[fd00::10]:53/udp\"\n"
			      "    backends: [\"[fd00:0:0:1::2]:53\"]\n"
			      "  - vip: 198.19.0.11:443/tcp\n";

/* CFG_ONE with web changed, dns as it was, :443 gone and one service new. */
static const char CFG_TWO[] = "services:\n"
			      "  - name: web\n"
			      "    vip: 198.19.0.10:80/tcp\n"
			      "    health: { type: tcp, interval_ms: 3600000 }\n"
			      "    backends: [{ address: 198.18.1.2:8080, weight: 3 }]\n"
			      "  - name: dns\n"
			      "    vip: \"[fd00::10]:53/udp\"\n"
			      "    backends: [\"[fd00:0:0:1::2]:53\"]\n"
			      "  - name: new\n"
			      "    vip: 198.19.0.12:80/tcp\n"
			      "    backends: [198.18.4.2:80]\n";

/* Refused at line 4: a weight out of range. */
static const char CFG_BAD[] = "services:\n"
			      "  - vip: 198.19.0.10:80/tcp\n"
			      "    backends:\n"
			      "      - { address: 198.18.1.2:8080, weight: 1001 }\n";
#define CFG_BAD_LINE 4
#define CFG_BAD_FIELD "services[0].backends[0].weight"

/* ---- small helpers ---- */

/* A message for one ASSERT_*: valid until the next call. */
static const char *say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *say(const char *fmt, ...)
{
	static char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

#define EXPECT_STR(got, want, name) expect_str((got), (want), (name), __FILE__, __LINE__)

static bool expect_str(const char *got, const char *want, const char *name, const char *file,
		       int line)
{
	return harness_check(got && !strcmp(got, want), file, line, "%s: got '%s' want '%s'", name,
			     got ? got : "(none)", want);
}

/* The whole file @path, NUL-terminated (free it); NULL when it cannot be read. */
static char *slurp(const char *path)
{
	FILE *in = fopen(path, "re"), *out;
	char *text = NULL;
	size_t len = 0;
	int c;

	if (!in)
		return NULL;
	out = open_memstream(&text, &len);
	while (out && (c = fgetc(in)) != EOF)
		fputc(c, out);
	if (out)
		fclose(out);
	fclose(in);
	return text;
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	bool ok = f && fputs(text, f) >= 0;

	if (f && fclose(f))
		ok = false;
	return ASSERT_TRUE(ok, say("write %s", path));
}

/* ---- the agent ---- */

static void agent_stop(void)
{
	if (ag_running)
		agent_fini(&ag);
	ag_running = false;
}

/* Start a case: freshly loaded, empty maps whose Maglev tables have
 * @maglev_size slots, no agent, and no state or config file. */
static bool fresh(__u32 maglev_size)
{
	struct loader_opts opts = { .maglev_size = maglev_size, .ct_size = 4096, .version = 1 };

	agent_stop();
	unlink(state_path);
	unlink(state_tmp);
	unlink(config_path);
	if (skel)
		xdp_lb__destroy(skel);
	skel = loader_lb_load(&opts, &maps);
	return ASSERT_TRUE(skel != NULL, "loader_lb_load");
}

/* Start an agent on the maps as sluiced does (the previous one, if any,
 * stops first): agent_init(), then agent_restore() picks the state file,
 * @config or the maps. */
static bool agent_start(const char *config, struct health *health)
{
	struct agent_error e = {};
	int err;

	agent_stop();
	if (!ASSERT_OK(agent_init(&ag, &maps, health, config, state_path), "agent_init"))
		return false;
	ag_running = true;
	err = agent_restore(&ag, &e);
	if (err)
		printf("#   agent_restore: %s\n", e.message);
	return ASSERT_OK(err, "agent_restore");
}

/* ---- requests and replies ---- */

static char last_req[REQ_MAX]; /* what the last call sent, for messages */

/* Hand @req (consumed) to the agent; returns its reply (put it). */
static struct json_object *handle(struct json_object *req)
{
	struct json_object *reply = agent_api_handle(&ag, req);

	json_object_put(req);
	return reply;
}

/* Send the request @fmt, written with ' for " so that it needs no
 * escaping in C (no value sent this way contains a quote). */
static struct json_object *vcall(const char *fmt, va_list ap)
{
	struct json_object *req;

	vsnprintf(last_req, sizeof(last_req), fmt, ap);
	for (char *c = last_req; *c; c++)
		*c = *c == '\'' ? '"' : *c;
	req = json_tokener_parse(last_req);
	if (!ASSERT_TRUE(req != NULL, say("the test's request is JSON: %s", last_req)))
		return agent_api_error(-1, "the test's request is not JSON");
	return handle(req);
}

static struct json_object *call(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static struct json_object *call(const char *fmt, ...)
{
	struct json_object *reply;
	va_list ap;

	va_start(ap, fmt);
	reply = vcall(fmt, ap);
	va_end(ap);
	return reply;
}

/* An "apply" of @yaml, named @file unless NULL. */
static struct json_object *call_apply(const char *yaml, const char *file)
{
	struct json_object *req = json_object_new_object();

	json_object_object_add(req, "op", json_object_new_string("apply"));
	json_object_object_add(req, "content", json_object_new_string(yaml));
	if (file)
		json_object_object_add(req, "file", json_object_new_string(file));
	snprintf(last_req, sizeof(last_req), "apply (file %s)", file ? file : "not given");
	return handle(req);
}

static struct json_object *field(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str_of(struct json_object *o, const char *key)
{
	struct json_object *v = field(o, key);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Integer field @key of @o; LLONG_MIN when it is absent or not an integer. */
static long long int_of(struct json_object *o, const char *key)
{
	struct json_object *v = field(o, key);

	return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : LLONG_MIN;
}

/* "ok" present, a boolean, and @want. */
static bool ok_is(struct json_object *reply, bool want)
{
	struct json_object *v = field(reply, "ok");

	return json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v) == want;
}

static void print_exchange(struct json_object *reply)
{
	printf("#   request: %s\n#   reply:   %s\n", last_req,
	       json_object_to_json_string_ext(reply, JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* The reply is a success; puts it. */
static bool expect_ok(struct json_object *reply)
{
	bool ok = ASSERT_TRUE(ok_is(reply, true), "reply is ok:true");

	if (!ok)
		print_exchange(reply);
	json_object_put(reply);
	return ok;
}

static bool req_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static bool req_ok(const char *fmt, ...)
{
	struct json_object *reply;
	va_list ap;

	va_start(ap, fmt);
	reply = vcall(fmt, ap);
	va_end(ap);
	return expect_ok(reply);
}

/* The reply refuses with @status and says why in "error"; not put. */
static bool expect_refused(struct json_object *reply, int status, const char *what)
{
	const char *error = str_of(reply, "error");
	bool ok = ASSERT_TRUE(ok_is(reply, false), say("%s: reply is ok:false", what));

	ok &= ASSERT_EQ(int_of(reply, "status"), status, say("%s: reply status", what));
	ok &= ASSERT_TRUE(error && *error, say("%s: reply has an error text", what));
	if (!ok)
		print_exchange(reply);
	return ok;
}

/* The "agent" object of a status reply (put it); NULL if there is none. */
static struct json_object *status_agent(void)
{
	struct json_object *reply = call("{'op':'status'}"), *agent = field(reply, "agent");

	if (agent)
		json_object_get(agent);
	json_object_put(reply);
	ASSERT_TRUE(agent != NULL, "status reply has \"agent\"");
	return agent;
}

/* A summary reply (apply, reload) with these numbers; puts it. */
static void expect_summary(struct json_object *reply, long long services, long long changed,
			   long long unchanged, long long deleted, long long health_checks)
{
	char label[128];

	snprintf(label, sizeof(label), "%.100s", last_req);
	if (!ASSERT_TRUE(ok_is(reply, true), say("%s: ok", label))) {
		print_exchange(reply);
		json_object_put(reply);
		return;
	}
	ASSERT_EQ(int_of(reply, "services"), services, say("%s: services", label));
	ASSERT_EQ(int_of(reply, "changed"), changed, say("%s: changed", label));
	ASSERT_EQ(int_of(reply, "unchanged"), unchanged, say("%s: unchanged", label));
	ASSERT_EQ(int_of(reply, "deleted"), deleted, say("%s: deleted", label));
	ASSERT_EQ(int_of(reply, "health_checks"), health_checks, say("%s: health_checks", label));
	json_object_put(reply);
}

/* ---- the maps, point by point ---- */

/* Service @text's entry in the maps (lb_service_get); false if none. */
static bool map_service(const char *text, struct sl_svc *out)
{
	struct sl_svc_key key;

	return !addr_parse_service(text, &key) && !lb_service_get(&maps, &key, out);
}

struct be_find {
	struct addr_port addr;
	long long weight;
};

static int be_match(__u32 id, const struct sl_backend *be, void *ctx)
{
	struct be_find *f = ctx;

	(void)id;
	if (be->family != f->addr.family || be->port != f->addr.port ||
	    memcmp(be->addr, f->addr.addr, sizeof(be->addr)))
		return 0;
	f->weight = be->weight;
	return 1;
}

/* The weight backend @be of service @svc has in the maps
 * (lb_backend_foreach); -1 when it has no slot there. */
static long long map_weight(const char *svc, const char *be)
{
	struct be_find f = { .weight = -1 };
	struct sl_svc s;

	if (!map_service(svc, &s) || addr_parse_endpoint(be, &f.addr))
		return -1;
	lb_backend_foreach(&maps, s.id, be_match, &f);
	return f.weight;
}

/* ---- the desired state ---- */

static struct cfg_service *want_service(const char *text)
{
	struct sl_svc_key key;

	return addr_parse_service(text, &key) ? NULL : cfg_find_service(&ag.desired, &key);
}

/* Backend @be's configured weight in the desired state; -1 if it has none. */
static long long want_weight(const char *svc, const char *be)
{
	struct cfg_service *s = want_service(svc);
	struct cfg_backend *b;
	struct addr_port addr;

	if (!s || addr_parse_endpoint(be, &addr))
		return -1;
	b = cfg_find_backend(s, &addr);
	return b ? (long long)b->weight : -1;
}

static bool health_same(const struct cfg_health *a, const struct cfg_health *b)
{
	return a->type == b->type && !strcmp(a->path, b->path) &&
	       a->expect_status == b->expect_status && a->interval_ms == b->interval_ms &&
	       a->timeout_ms == b->timeout_ms && a->healthy_threshold == b->healthy_threshold &&
	       a->unhealthy_threshold == b->unhealthy_threshold;
}

static bool backends_same(const struct cfg_service *got, const struct cfg_service *want,
			  const char *what, const char *svc)
{
	char be[ADDR_STR_MAX];
	bool ok = ASSERT_EQ(got->n_backends, want->n_backends, say("%s: %s backends", what, svc));

	for (size_t j = 0; ok && j < want->n_backends; j++) {
		addr_format_endpoint(&want->backends[j].addr, be, sizeof(be));
		ok &= ASSERT_TRUE(!memcmp(&got->backends[j].addr, &want->backends[j].addr,
					  sizeof(struct addr_port)),
				  say("%s: %s backend %zu is %s", what, svc, j, be));
		ok &= ASSERT_EQ(got->backends[j].weight, want->backends[j].weight,
				say("%s: %s weight of %s", what, svc, be));
	}
	return ok;
}

/* @got holds what @want does: the same services in the same order, with
 * their names, affinity, health checks and backends (address, weight). */
static bool cfg_same(const struct cfg_state *got, const struct cfg_state *want, const char *what)
{
	bool ok = ASSERT_EQ(got->n_services, want->n_services, say("%s: services", what));
	char svc[ADDR_STR_MAX];

	for (size_t i = 0; ok && i < want->n_services; i++) {
		const struct cfg_service *g = &got->services[i], *w = &want->services[i];

		addr_format_service(&w->key, svc, sizeof(svc));
		ok &= ASSERT_TRUE(!memcmp(&g->key, &w->key, sizeof(w->key)),
				  say("%s: service %zu is %s", what, i, svc));
		ok &= EXPECT_STR(g->name, w->name, say("%s: %s name", what, svc));
		ok &= ASSERT_EQ(g->affinity_s, w->affinity_s, say("%s: %s affinity", what, svc));
		ok &= ASSERT_TRUE(health_same(&g->health, &w->health),
				  say("%s: %s health check", what, svc));
		ok &= backends_same(g, w, what, svc);
	}
	return ok;
}

static bool cfg_same_yaml(const struct cfg_state *got, const char *yaml, const char *what)
{
	struct cfg_state want;
	bool ok = ASSERT_OK(cfg_load_buffer("want.yaml", yaml, strlen(yaml), &want, NULL),
			    say("%s: the expected config parses", what));

	if (ok)
		ok = cfg_same(got, &want, what);
	cfg_free(&want);
	return ok;
}

/* @head, then @st as cfg_write() writes it (free it). */
static char *state_text(const char *head, const struct cfg_state *st)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return strdup("");
	fputs(head, f);
	cfg_write(f, st);
	fclose(f);
	return text;
}

/* The state file holds exactly the desired state: services compared field
 * by field, the policy (which cfg_same() leaves out) as written. */
static bool expect_state_file_is_desired(const char *what)
{
	struct cfg_state saved;
	struct cfg_error cerr = {};
	char msg[1024], *got, *want;
	int err = cfg_load_file(state_path, &saved, &cerr);
	bool ok;

	if (err) {
		cfg_error_format(&cerr, msg, sizeof(msg));
		printf("#   state file refused: %s\n", msg);
	}
	ok = ASSERT_OK(err, say("%s: cfg_load_file(state file)", what));
	if (ok)
		ok = cfg_same(&saved, &ag.desired, say("%s: state file", what));
	if (ok) {
		got = state_text("", &saved);
		want = state_text("", &ag.desired);
		ok = ASSERT_TRUE(!strcmp(got, want), say("%s: state file policy", what));
		if (!ok)
			printf("#   saved:\n%s#   desired:\n%s", got, want);
		free(got);
		free(want);
	}
	cfg_free(&saved);
	return ok;
}

/* ---- the world: maps, desired state and state file, whole ---- */

struct svc_entry {
	struct sl_svc_key key;
	struct sl_svc svc;
};

/* What a refused request must leave alone. The maps: every sl_svc entry,
 * sl_be slot and sl_maglev inner map id (a republished table is a new
 * map, so a new id), and the policy generation enforced (a published
 * policy is a new one); the desired state with its config digest and
 * policy; the state file's text and inode (a rewrite renames a new file
 * over it). */
struct world {
	struct svc_entry *svc; /* sorted by id */
	__u32 n_svc;
	__u32 pol_gen;
	struct sl_backend *be; /* SL_MAX_BACKENDS */
	__u32 *inner; /* SL_MAX_SERVICES */
	char *desired;
	char *state; /* NULL: no state file */
	ino_t state_ino;
};

enum { SAME_MAPS = 1, SAME_DESIRED = 2, SAME_STATE = 4, SAME_ALL = 7 };

static int svc_entry_cmp(const void *a, const void *b)
{
	const struct svc_entry *x = a, *y = b;

	return (x->svc.id > y->svc.id) - (x->svc.id < y->svc.id);
}

/* sl_maglev's inner map id per service id into @inner (0: no table), in
 * one batch: it returns only the slots that hold a table, with their
 * keys. @keys has room for SL_MAX_SERVICES. */
static bool inner_ids_read(__u32 *inner, __u32 *keys)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = SL_MAX_SERVICES, out_batch, *ids = calloc(SL_MAX_SERVICES, sizeof(*ids));
	bool ok = ids != NULL;

	if (ok && bpf_map_lookup_batch(maps.maglev, NULL, &out_batch, keys, ids, &count, &opts) &&
	    errno != ENOENT)
		ok = ASSERT_OK(-errno, "inner_ids_read: sl_maglev batch");
	memset(inner, 0, SL_MAX_SERVICES * sizeof(*inner));
	for (__u32 i = 0; ok && i < count; i++)
		inner[keys[i]] = ids[i];
	free(ids);
	return ok;
}

static bool maps_read(struct world *w)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys = calloc(SL_MAX_BACKENDS, sizeof(*keys));
	__u32 count = SL_MAX_BACKENDS, out_batch;
	struct sl_svc_key key, *prev = NULL;
	bool ok = true;

	w->svc = calloc(SL_MAX_SERVICES + 1, sizeof(*w->svc));
	w->be = calloc(SL_MAX_BACKENDS, sizeof(*w->be));
	w->inner = calloc(SL_MAX_SERVICES, sizeof(*w->inner));
	if (!keys || !w->svc || !w->be || !w->inner) {
		free(keys);
		return ASSERT_TRUE(false, "maps_read: out of memory");
	}
	while (w->n_svc <= SL_MAX_SERVICES && !bpf_map_get_next_key(maps.svc, prev, &key)) {
		w->svc[w->n_svc].key = key;
		if (!bpf_map_lookup_elem(maps.svc, &key, &w->svc[w->n_svc].svc))
			prev = &w->svc[w->n_svc++].key;
	}
	qsort(w->svc, w->n_svc, sizeof(w->svc[0]), svc_entry_cmp);
	if (bpf_map_lookup_batch(maps.be, NULL, &out_batch, keys, w->be, &count, &opts) &&
	    errno != ENOENT)
		ok = ASSERT_OK(-errno, "maps_read: sl_be batch");
	ok &= ASSERT_EQ(count, SL_MAX_BACKENDS, "maps_read: sl_be slots read");
	ok &= inner_ids_read(w->inner, keys);
	ok &= ASSERT_OK(pol_gen_read(&maps, &w->pol_gen), "maps_read: sl_pol_gen");
	free(keys);
	return ok;
}

/* The desired state as cfg_write() writes it (policy included), with its
 * config digest. */
static char *desired_text(void)
{
	char head[64];

	snprintf(head, sizeof(head), "# digest %016llx\n", (unsigned long long)ag.config_digest);
	return state_text(head, &ag.desired);
}

static void world_free(struct world *w)
{
	free(w->svc);
	free(w->be);
	free(w->inner);
	free(w->desired);
	free(w->state);
	memset(w, 0, sizeof(*w));
}

/* Read the world. The agent first writes what earlier changes left to
 * write, as sluiced does after each reply. */
static bool world_take(struct world *w)
{
	struct stat st;

	memset(w, 0, sizeof(*w));
	if (ag_running)
		ASSERT_OK(agent_save_state(&ag), "agent_save_state");
	w->desired = desired_text();
	w->state = slurp(state_path);
	w->state_ino = stat(state_path, &st) ? 0 : st.st_ino;
	if (maps_read(w))
		return true;
	world_free(w);
	return false;
}

static const struct svc_entry *world_svc(const struct world *w, const struct sl_svc_key *key)
{
	for (__u32 i = 0; i < w->n_svc; i++) {
		if (!memcmp(&w->svc[i].key, key, sizeof(*key)))
			return &w->svc[i];
	}
	return NULL;
}

static void maps_expect_same(const struct world *before, const struct world *after,
			     const char *what)
{
	ASSERT_EQ(after->pol_gen, before->pol_gen, say("%s: policy generation", what));
	if (!ASSERT_EQ(after->n_svc, before->n_svc, say("%s: sl_svc entries", what)))
		return;
	for (__u32 i = 0; i < after->n_svc; i++) {
		if (!ASSERT_BYTES(&before->svc[i], sizeof(before->svc[i]), &after->svc[i],
				  sizeof(after->svc[i]),
				  say("%s: sl_svc entry of id %u", what, before->svc[i].svc.id)))
			break;
	}
	for (__u32 id = 0; id < SL_MAX_BACKENDS; id++) {
		if (memcmp(&before->be[id], &after->be[id], sizeof(after->be[id]))) {
			ASSERT_BYTES(&before->be[id], sizeof(before->be[id]), &after->be[id],
				     sizeof(after->be[id]), say("%s: sl_be[%u]", what, id));
			break;
		}
	}
	for (__u32 id = 0; id < SL_MAX_SERVICES; id++) {
		if (before->inner[id] != after->inner[id]) {
			ASSERT_EQ(after->inner[id], before->inner[id],
				  say("%s: sl_maglev[%u] (inner map id)", what, id));
			break;
		}
	}
}

/* The @parts of the world are as in @before. */
static void world_expect_same(const struct world *before, unsigned int parts, const char *what)
{
	struct world after;

	if (!world_take(&after))
		return;
	if (parts & SAME_MAPS)
		maps_expect_same(before, &after, what);
	if ((parts & SAME_DESIRED) && !ASSERT_TRUE(!strcmp(before->desired, after.desired),
						   say("%s: desired state unchanged", what)))
		printf("#   before:\n%s#   after:\n%s", before->desired, after.desired);
	if (parts & SAME_STATE) {
		ASSERT_TRUE(before->state ? after.state && !strcmp(before->state, after.state)
					  : !after.state,
			    say("%s: state file text unchanged", what));
		ASSERT_EQ(after.state_ino, before->state_ino,
			  say("%s: state file not rewritten (inode)", what));
	}
	world_free(&after);
}

static __u32 slots_of(const struct world *w, __u32 svc_id)
{
	__u32 n = 0;

	for (__u32 b = 1; b < SL_MAX_BACKENDS; b++)
		n += (w->be[b].flags & SL_BE_IN_USE) && w->be[b].svc_id == svc_id;
	return n;
}

static const struct sl_backend *world_backend(const struct world *w, __u32 svc_id,
					      const struct addr_port *ap)
{
	for (__u32 b = 1; b < SL_MAX_BACKENDS; b++) {
		const struct sl_backend *be = &w->be[b];

		if ((be->flags & SL_BE_IN_USE) && be->svc_id == svc_id && be->port == ap->port &&
		    be->family == ap->family && !memcmp(be->addr, ap->addr, sizeof(be->addr)))
			return be;
	}
	return NULL;
}

/* Desired service @cs in the maps: settings, exactly its backends at the
 * weights the agent gives them, a table exactly when one is active. */
static void expect_service_held(const struct world *w, const struct cfg_service *cs,
				const char *what)
{
	const struct svc_entry *e = world_svc(w, &cs->key);
	char svc[ADDR_STR_MAX], be[ADDR_STR_MAX];
	__u32 active = 0;

	addr_format_service(&cs->key, svc, sizeof(svc));
	if (!ASSERT_TRUE(e != NULL, say("%s: %s in sl_svc", what, svc)))
		return;
	EXPECT_STR(e->svc.name, cs->name, say("%s: %s name", what, svc));
	ASSERT_EQ(e->svc.affinity_timeout_s, cs->affinity_s, say("%s: %s affinity", what, svc));
	ASSERT_EQ(e->svc.flags, cs->affinity_s ? SL_SVC_AFFINITY : 0,
		  say("%s: %s flags", what, svc));
	ASSERT_EQ(slots_of(w, e->svc.id), cs->n_backends, say("%s: %s backend slots", what, svc));
	for (size_t j = 0; j < cs->n_backends; j++) {
		const struct sl_backend *slot = world_backend(w, e->svc.id, &cs->backends[j].addr);
		__u32 want = agent_effective_weight(&ag, cs, &cs->backends[j]);

		addr_format_endpoint(&cs->backends[j].addr, be, sizeof(be));
		active += want > 0;
		if (ASSERT_TRUE(slot != NULL, say("%s: %s has a slot for %s", what, svc, be)))
			ASSERT_EQ(slot->weight, want, say("%s: %s weight of %s", what, svc, be));
	}
	ASSERT_EQ(e->svc.backend_count, active, say("%s: %s backend_count", what, svc));
	ASSERT_EQ(!!w->inner[e->svc.id], !!active, say("%s: %s has a table", what, svc));
}

/* The maps hold exactly the desired state: its services and no other,
 * every backend at the weight the agent gives it (0 while down). */
static void expect_maps_hold_desired(const char *what)
{
	__u32 slots = 0, in_use = 0;
	struct world w;

	if (!world_take(&w))
		return;
	ASSERT_EQ(w.n_svc, ag.desired.n_services, say("%s: services in sl_svc", what));
	for (size_t i = 0; i < ag.desired.n_services; i++) {
		expect_service_held(&w, &ag.desired.services[i], what);
		slots += ag.desired.services[i].n_backends;
	}
	for (__u32 b = 1; b < SL_MAX_BACKENDS; b++)
		in_use += !!(w.be[b].flags & SL_BE_IN_USE);
	ASSERT_EQ(in_use, slots, say("%s: sl_be slots in use", what));
	world_free(&w);
}

/* The services most cases start from, added through the API: SVC4 "web"
 * (affinity 30) with BE_A (default weight) and BE_B (weight 5), and SVC6
 * "dns" with BE6. */
static bool populate(void)
{
	return req_ok("{'op':'service.add','service':'%s','name':'web','affinity':30}", SVC4) &&
	       req_ok("{'op':'backend.add','service':'%s','backend':'%s'}", SVC4, BE_A) &&
	       req_ok("{'op':'backend.add','service':'%s','backend':'%s','weight':5}", SVC4,
		      BE_B) &&
	       req_ok("{'op':'service.add','service':'%s','name':'dns'}", SVC6) &&
	       req_ok("{'op':'backend.add','service':'%s','backend':'%s'}", SVC6, BE6);
}

static bool start_populated(void)
{
	return fresh(MAGLEV_SIZE) && agent_start(NULL, NULL) && populate();
}

/* ---- every op's success ---- */

static void test_service_add(void)
{
	struct sl_svc s = {};
	struct cfg_service *want;

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	req_ok("{'op':'service.add','service':'%s','name':'web','affinity':30}", SVC4);
	req_ok("{'op':'service.add','service':'%s'}", SVC6);
	req_ok("{'op':'service.add','service':'%s','name':'%s','affinity':0}", SVC_NEW, NAME31);

	ASSERT_TRUE(map_service(SVC4, &s), "web in the maps");
	EXPECT_STR(s.name, "web", "web: name in the maps");
	ASSERT_EQ(s.affinity_timeout_s, 30, "web: affinity in the maps");
	ASSERT_EQ(s.flags, SL_SVC_AFFINITY, "web: affinity flag in the maps");
	ASSERT_EQ(s.backend_count, 0, "web: no backends");
	ASSERT_TRUE(map_service(SVC6, &s), "v6 service in the maps");
	EXPECT_STR(s.name, "", "v6 service: no name");
	ASSERT_EQ(s.flags, 0, "v6 service: no affinity");
	ASSERT_TRUE(map_service(SVC_NEW, &s), "31-character name: in the maps");
	EXPECT_STR(s.name, NAME31, "31-character name: kept whole");
	ASSERT_EQ(s.flags, 0, "affinity 0: none");

	want = want_service(SVC4);
	if (ASSERT_TRUE(want != NULL, "web in the desired state")) {
		EXPECT_STR(want->name, "web", "web: desired name");
		ASSERT_EQ(want->affinity_s, 30, "web: desired affinity");
		ASSERT_EQ(want->health.type, CFG_HEALTH_NONE, "web: no health check");
	}
	ASSERT_EQ(ag.desired.n_services, 3, "desired services");
	expect_maps_hold_desired("after service.add");
}

static void test_backend_add(void)
{
	struct sl_svc s = {};

	if (!start_populated())
		return;
	ASSERT_EQ(map_weight(SVC4, BE_A), 1, "no weight given: 1 in the maps");
	ASSERT_EQ(want_weight(SVC4, BE_A), 1, "no weight given: 1 desired");
	ASSERT_EQ(map_weight(SVC4, BE_B), 5, "weight 5 in the maps");
	ASSERT_EQ(want_weight(SVC4, BE_B), 5, "weight 5 desired");
	ASSERT_EQ(map_weight(SVC6, BE6), 1, "IPv6 backend in the maps");

	/* Weight 0 takes a slot but no table entries. */
	req_ok("{'op':'backend.add','service':'%s','backend':'%s','weight':0}", SVC4, BE_C);
	ASSERT_EQ(map_weight(SVC4, BE_C), 0, "weight 0 in the maps");
	ASSERT_EQ(want_weight(SVC4, BE_C), 0, "weight 0 desired");
	ASSERT_TRUE(map_service(SVC4, &s) && s.backend_count == 2,
		    "backend_count counts weight > 0");
	req_ok("{'op':'backend.add','service':'%s','backend':'[fd00:0:0:2::2]:53','weight':1000}",
	       SVC6);
	ASSERT_EQ(map_weight(SVC6, "[fd00:0:0:2::2]:53"), 1000, "the largest weight");
	expect_maps_hold_desired("after backend.add");
}

static void test_backend_set(void)
{
	struct sl_svc s = {};

	if (!start_populated())
		return;
	req_ok("{'op':'backend.set','service':'%s','backend':'%s','weight':0}", SVC4, BE_B);
	ASSERT_EQ(map_weight(SVC4, BE_B), 0, "set to 0: in the maps");
	ASSERT_EQ(want_weight(SVC4, BE_B), 0, "set to 0: desired");
	ASSERT_TRUE(map_service(SVC4, &s) && s.backend_count == 1, "set to 0: one backend active");
	req_ok("{'op':'backend.set','service':'%s','backend':'%s','weight':1000}", SVC4, BE_B);
	ASSERT_EQ(map_weight(SVC4, BE_B), 1000, "set to 1000: in the maps");
	ASSERT_EQ(want_weight(SVC4, BE_B), 1000, "set to 1000: desired");
	req_ok("{'op':'backend.set','service':'%s','backend':'%s','weight':1}", SVC4, BE_A);
	ASSERT_EQ(map_weight(SVC4, BE_A), 1, "set to its own weight: ok, unchanged");
	expect_maps_hold_desired("after backend.set");
}

static void test_backend_del_service_del(void)
{
	struct sl_svc s = {};

	if (!start_populated())
		return;
	req_ok("{'op':'backend.del','service':'%s','backend':'%s'}", SVC4, BE_A);
	ASSERT_EQ(map_weight(SVC4, BE_A), -1, "deleted backend: no slot");
	ASSERT_EQ(want_weight(SVC4, BE_A), -1, "deleted backend: not desired");
	ASSERT_EQ(map_weight(SVC4, BE_B), 5, "the other backend stays");
	ASSERT_TRUE(map_service(SVC4, &s) && s.backend_count == 1, "one backend left");
	expect_maps_hold_desired("after backend.del");

	req_ok("{'op':'service.del','service':'%s'}", SVC4);
	ASSERT_FALSE(map_service(SVC4, &s), "deleted service: gone from the maps");
	ASSERT_TRUE(want_service(SVC4) == NULL, "deleted service: not desired");
	ASSERT_EQ(map_weight(SVC6, BE6), 1, "the other service stays");
	expect_maps_hold_desired("after service.del");
}

static void test_apply(void)
{
	struct world before;

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	expect_summary(call_apply(CFG_ONE, "one.yaml"), 3, 3, 0, 0, 1);
	cfg_same_yaml(&ag.desired, CFG_ONE, "desired after apply");
	expect_maps_hold_desired("after apply");

	if (world_take(&before)) {
		expect_summary(call_apply(CFG_ONE, NULL), 3, 0, 3, 0, 1);
		world_expect_same(&before, SAME_MAPS, "the same config again: nothing republished");
		world_free(&before);
	}
	expect_summary(call_apply(CFG_TWO, NULL), 3, 2, 1, 1, 1);
	cfg_same_yaml(&ag.desired, CFG_TWO, "desired after a second apply");
	expect_maps_hold_desired("after a second apply");

	expect_summary(call_apply("", NULL), 0, 0, 0, 3, 0);
	ASSERT_EQ(ag.desired.n_services, 0, "an empty config: no services desired");
	expect_maps_hold_desired("after an empty apply");
}

static void test_reload(void)
{
	struct json_object *reply, *agent;
	struct world before;

	if (!fresh(MAGLEV_SIZE) || !write_file(config_path, CFG_ONE) ||
	    !agent_start(config_path, NULL))
		return;
	cfg_same_yaml(&ag.desired, CFG_ONE, "started from --config");
	write_file(config_path, CFG_TWO);
	expect_summary(call("{'op':'reload'}"), 3, 2, 1, 1, 1);
	cfg_same_yaml(&ag.desired, CFG_TWO, "desired after reload");
	expect_maps_hold_desired("after reload");
	ASSERT_EQ(ag.config_digest, cfg_digest(CFG_TWO, strlen(CFG_TWO)),
		  "digest of the new config");
	agent = status_agent();
	ASSERT_EQ(int_of(agent, "reloads"), 1, "status: reloads");
	EXPECT_STR(str_of(agent, "config"), config_path, "status: config");
	json_object_put(agent);

	/* An invalid config: refused with where it is wrong, nothing changes. */
	write_file(config_path, CFG_BAD);
	if (world_take(&before)) {
		reply = call("{'op':'reload'}");
		expect_refused(reply, 1, "reload of an invalid config");
		EXPECT_STR(str_of(reply, "file"), config_path, "invalid reload: file");
		ASSERT_EQ(int_of(reply, "line"), CFG_BAD_LINE, "invalid reload: line");
		EXPECT_STR(str_of(reply, "field"), CFG_BAD_FIELD, "invalid reload: field");
		json_object_put(reply);
		world_expect_same(&before, SAME_ALL, "invalid reload");
		world_free(&before);
	}
	ASSERT_EQ(ag.stats.reload_errors, 1, "invalid reload: reload_errors");

	/* No --config: nothing to reload. */
	if (!agent_start(NULL, NULL) || !world_take(&before))
		return;
	reply = call("{'op':'reload'}");
	expect_refused(reply, 1, "reload without --config");
	ASSERT_TRUE(str_of(reply, "hint") != NULL, "reload without --config: a hint");
	json_object_put(reply);
	world_expect_same(&before, SAME_ALL, "reload without --config");
	world_free(&before);
}

/* One entry of a health reply's "backends". */
struct health_row {
	const char *service, *backend;
	long long weight;
	const char *health;
};

static void expect_health_rows(const struct health_row *rows, size_t n, const char *what)
{
	struct json_object *reply = call("{'op':'health'}"), *list = field(reply, "backends");
	size_t len =
		json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;

	ASSERT_TRUE(ok_is(reply, true), say("%s: health reply ok", what));
	ASSERT_EQ(len, n, say("%s: health rows", what));
	for (size_t i = 0; i < n; i++) {
		struct json_object *row = NULL;

		for (size_t j = 0; j < len && !row; j++) {
			struct json_object *r = json_object_array_get_idx(list, j);
			const char *svc = str_of(r, "service"), *be = str_of(r, "backend");

			if (svc && be && !strcmp(svc, rows[i].service) &&
			    !strcmp(be, rows[i].backend))
				row = r;
		}
		if (!ASSERT_TRUE(row != NULL, say("%s: a row for %s %s", what, rows[i].service,
						  rows[i].backend)))
			continue;
		ASSERT_EQ(int_of(row, "weight"), rows[i].weight,
			  say("%s: %s weight", what, rows[i].backend));
		EXPECT_STR(str_of(row, "health"), rows[i].health,
			   say("%s: %s health", what, rows[i].backend));
	}
	json_object_put(reply);
}

static void test_health_list(void)
{
	/* No prober: a checked backend's state is unknown. */
	static const struct health_row rows[] = {
		{ SVC4, BE_A, 1, "unknown" },
		{ SVC4, BE_B, 5, "unknown" },
		{ SVC6, BE6, 1, "unchecked" },
	};

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	expect_health_rows(NULL, 0, "no services");
	expect_summary(call_apply(CFG_ONE, NULL), 3, 3, 0, 0, 1);
	expect_health_rows(rows, ARRAY_SIZE(rows), "CFG_ONE");
}

static void test_status(void)
{
	static const char *const keys[] = {
		"version",    "pid",	       "start_time",	     "config",
		"state_file", "services",      "transactions",	     "transaction_errors",
		"reloads",    "reload_errors", "health_transitions", "api_requests",
	};
	struct json_object *agent, *reply;
	double now = (double)time(NULL);

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	agent = status_agent();
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		ASSERT_TRUE(json_object_object_get_ex(agent, keys[i], NULL),
			    say("status has \"%s\"", keys[i]));
	EXPECT_STR(str_of(agent, "version"), AGENT_VERSION, "status: version");
	ASSERT_EQ(int_of(agent, "pid"), getpid(), "status: pid");
	ASSERT_TRUE(json_object_get_double(field(agent, "start_time")) > now - 600 &&
			    json_object_get_double(field(agent, "start_time")) < now + 2,
		    "status: start_time is about now");
	ASSERT_TRUE(json_object_is_type(field(agent, "config"), json_type_null),
		    "status: config null without --config");
	EXPECT_STR(str_of(agent, "state_file"), state_path, "status: state_file");
	ASSERT_EQ(int_of(agent, "services"), 0, "status: services");
	ASSERT_EQ(int_of(agent, "transactions"), 0, "status: transactions");
	ASSERT_EQ(int_of(agent, "api_requests"), 1, "status: api_requests counts itself");
	json_object_put(agent);

	req_ok("{'op':'service.add','service':'%s'}", SVC4);
	reply = call("{'op':'service.add','service':'%s'}", SVC4); /* exists */
	expect_refused(reply, 1, "service.add of an existing service");
	json_object_put(reply);
	reply = call("{}");
	expect_refused(reply, 2, "no op");
	json_object_put(reply);

	agent = status_agent();
	ASSERT_EQ(int_of(agent, "services"), 1, "status: services after an add");
	ASSERT_EQ(int_of(agent, "transactions"), 1, "status: transactions after an add");
	ASSERT_EQ(int_of(agent, "transaction_errors"), 1, "status: transaction_errors");
	ASSERT_EQ(int_of(agent, "api_requests"), 5, "status: api_requests");
	json_object_put(agent);
	/* Not in the status reply (docs/api.md does not list it): read it here. */
	ASSERT_EQ(ag.stats.api_errors, 2, "api_errors: the refusal and the bad request");
}

/* ---- refused requests change nothing ---- */

struct refusal {
	const char *what;
	const char *req; /* ' for " */
	const char *errno_text; /* status 1: the "errno" the reply must have, NULL: none */
};

/* Send @r's request to the populated agent: status @status, "error"
 * holding @error_has (unless NULL), and the maps, desired state and state
 * file stay as they were. */
static void expect_refusal(const struct refusal *r, int status, const char *error_has)
{
	__u64 api_errors = ag.stats.api_errors, transactions = ag.stats.transactions;
	struct json_object *reply;
	struct world before;

	if (!world_take(&before))
		return;
	reply = call("%s", r->req);
	expect_refused(reply, status, r->what);
	if (r->errno_text)
		EXPECT_STR(str_of(reply, "errno"), r->errno_text, say("%s: errno", r->what));
	if (error_has &&
	    !ASSERT_TRUE(str_of(reply, "error") && strstr(str_of(reply, "error"), error_has),
			 say("%s: error says '%s'", r->what, error_has)))
		print_exchange(reply);
	if (status == 1)
		ASSERT_TRUE(str_of(reply, "hint") != NULL, say("%s: a hint", r->what));
	json_object_put(reply);
	world_expect_same(&before, SAME_ALL, r->what);
	ASSERT_EQ(ag.stats.api_errors, api_errors + 1, say("%s: api_errors", r->what));
	ASSERT_EQ(ag.stats.transactions, transactions, say("%s: transactions", r->what));
	world_free(&before);
}

#define ADD_BE "{'op':'backend.add','service':'" SVC4 "','backend':'" BE_C "'"
#define ADD_SVC "{'op':'service.add','service':'" SVC_NEW "'"

/* Status 2: the request itself is wrong (docs/api.md); no errno. */
static const struct refusal bad_requests[] = {
	{ "no op", "{}", NULL },
	{ "op not a string", "{'op':5}", NULL },
	{ "op null", "{'op':null}", NULL },
	{ "unknown op", "{'op':'service.frob'}", NULL },
	{ "request not an object", "['op','status']", NULL },
	{ "missing service", "{'op':'service.add'}", NULL },
	{ "service not a string", "{'op':'service.add','service':42}", NULL },
	{ "service without protocol", "{'op':'service.add','service':'198.19.0.99:80'}", NULL },
	{ "service with an unknown protocol",
	  "{'op':'service.add','service':'198.19.0.99:80/sctp'}", NULL },
	{ "service with port 0", "{'op':'service.add','service':'198.19.0.99:0/tcp'}", NULL },
	{ "service.del: address out of range",
	  "{'op':'service.del','service':'198.19.0.999:80/tcp'}", NULL },
	{ "backend.add: missing backend", "{'op':'backend.add','service':'" SVC4 "'}", NULL },
	{ "backend.add: backend not a string",
	  "{'op':'backend.add','service':'" SVC4 "','backend':['" BE_C "']}", NULL },
	{ "backend.add: backend without port",
	  "{'op':'backend.add','service':'" SVC4 "','backend':'198.18.3.2'}", NULL },
	{ "backend.add: backend a host name",
	  "{'op':'backend.add','service':'" SVC4 "','backend':'backend.example:80'}", NULL },
	{ "backend.add: weight negative", ADD_BE ",'weight':-1}", NULL },
	{ "backend.add: weight too big", ADD_BE ",'weight':1001}", NULL },
	{ "backend.add: weight 2^64-1", ADD_BE ",'weight':18446744073709551615}", NULL },
	{ "backend.add: weight a string", ADD_BE ",'weight':'5'}", NULL },
	{ "backend.add: weight a float", ADD_BE ",'weight':1.5}", NULL },
	{ "backend.add: weight a whole float", ADD_BE ",'weight':2.0}", NULL },
	{ "backend.add: weight a boolean", ADD_BE ",'weight':true}", NULL },
	{ "backend.set: weight null (absent)",
	  "{'op':'backend.set','service':'" SVC4 "','backend':'" BE_A "','weight':null}", NULL },
	{ "backend.set: missing weight",
	  "{'op':'backend.set','service':'" SVC4 "','backend':'" BE_A "'}", NULL },
	{ "backend.set: weight too big",
	  "{'op':'backend.set','service':'" SVC4 "','backend':'" BE_A "','weight':1001}", NULL },
	{ "backend.del: unparseable backend",
	  "{'op':'backend.del','service':'" SVC4 "','backend':'198.18.1.2:99999'}", NULL },
	{ "service.add: affinity too big", ADD_SVC ",'affinity':86401}", NULL },
	{ "service.add: affinity negative", ADD_SVC ",'affinity':-1}", NULL },
	{ "service.add: affinity a string", ADD_SVC ",'affinity':'30'}", NULL },
	{ "service.add: affinity a float", ADD_SVC ",'affinity':30.5}", NULL },
	{ "service.add: name too long", ADD_SVC ",'name':'" NAME31 "x'}", NULL },
	{ "service.add: name not a string", ADD_SVC ",'name':5}", NULL },
	{ "service.add: name with a space", ADD_SVC ",'name':'my web'}", NULL },
	{ "service.add: name with a slash", ADD_SVC ",'name':'web/1'}", NULL },
	{ "service.add: name not ASCII", ADD_SVC ",'name':'w\\u00e9b'}", NULL },
	{ "apply: no content", "{'op':'apply'}", NULL },
	{ "apply: content not a string", "{'op':'apply','content':5}", NULL },
	{ "apply: file not a string", "{'op':'apply','content':'services: []','file':7}", NULL },
};

static void test_bad_requests(void)
{
	if (!start_populated())
		return;
	for (size_t i = 0; i < ARRAY_SIZE(bad_requests); i++)
		expect_refusal(&bad_requests[i], 2, NULL);
}

#define ENOENT_TEXT "No such file or directory"

/* Status 1: well-formed, but the desired state says no. */
static const struct refusal failures[] = {
	{ "service.add of an existing service", "{'op':'service.add','service':'" SVC4 "'}",
	  "File exists" },
	{ "backend.add of an existing backend",
	  "{'op':'backend.add','service':'" SVC4 "','backend':'" BE_A "','weight':2}",
	  "File exists" },
	{ "backend.add of the other family",
	  "{'op':'backend.add','service':'" SVC4 "','backend':'" BE6 "'}",
	  "Address family not supported by protocol" },
	{ "backend.del of an unknown backend",
	  "{'op':'backend.del','service':'" SVC4 "','backend':'" BE_C "'}", ENOENT_TEXT },
	{ "backend.set of an unknown backend",
	  "{'op':'backend.set','service':'" SVC4 "','backend':'" BE_C "','weight':1}",
	  ENOENT_TEXT },
	{ "backend.set of a backend of the other family",
	  "{'op':'backend.set','service':'" SVC6 "','backend':'" BE_A "','weight':1}",
	  "Address family not supported by protocol" },
	{ "service.del of an unknown service", "{'op':'service.del','service':'" SVC_NEW "'}",
	  ENOENT_TEXT },
	{ "backend.add to an unknown service",
	  "{'op':'backend.add','service':'" SVC_NEW "','backend':'" BE_C "'}", ENOENT_TEXT },
	{ "backend.set in an unknown service",
	  "{'op':'backend.set','service':'" SVC_NEW "','backend':'" BE_C "','weight':1}",
	  ENOENT_TEXT },
	{ "backend.del in an unknown service",
	  "{'op':'backend.del','service':'" SVC_NEW "','backend':'" BE_C "'}", ENOENT_TEXT },
};

static void test_failures(void)
{
	if (!start_populated())
		return;
	for (size_t i = 0; i < ARRAY_SIZE(failures); i++)
		expect_refusal(&failures[i], 1, NULL);
}

/* An invalid config in an apply: status 1, the position the parser gives,
 * and nothing changes. */
static void expect_apply_refused(const char *yaml, const char *file, const char *want_field)
{
	const char *name = file ? file : "<request>";
	struct cfg_error cerr = {};
	struct cfg_state st;
	struct json_object *reply;
	struct world before;

	ASSERT_EQ(cfg_load_buffer(name, yaml, strlen(yaml), &st, &cerr), -EINVAL,
		  "the config is invalid");
	if (!world_take(&before))
		return;
	reply = call_apply(yaml, file);
	expect_refused(reply, 1, say("apply of an invalid config named %s", name));
	EXPECT_STR(str_of(reply, "file"), name, "invalid apply: file");
	ASSERT_EQ(int_of(reply, "line"), cerr.line, "invalid apply: line");
	ASSERT_EQ(int_of(reply, "column"), cerr.column, "invalid apply: column");
	EXPECT_STR(str_of(reply, "field"), cerr.field, "invalid apply: field");
	EXPECT_STR(str_of(reply, "field"), want_field, "invalid apply: field as documented");
	ASSERT_TRUE(str_of(reply, "error") && strstr(str_of(reply, "error"), cerr.message),
		    "invalid apply: error has the parser's message");
	json_object_put(reply);
	world_expect_same(&before, SAME_ALL, "invalid apply");
	world_free(&before);
}

static void test_apply_invalid(void)
{
	if (!start_populated())
		return;
	expect_apply_refused(CFG_BAD, "bad.yaml", CFG_BAD_FIELD);
	expect_apply_refused(CFG_BAD, NULL, CFG_BAD_FIELD);
	/* A syntax error: a position, no field. */
	expect_apply_refused("services:\n  - vip: 198.19.0.10:80/tcp\n   backends: [\n", "syn.yaml",
			     "");
}

/* A config of one service at 198.19.0.30:80/tcp with @n backends of weight 1. */
static const char *cfg_n_backends(char *buf, size_t len, int n)
{
	int at = snprintf(buf, len, "services:\n  - vip: 198.19.0.30:80/tcp\n    backends:\n");

	for (int i = 0; i < n; i++)
		at += snprintf(buf + at, len - at, "      - 198.18.9.%d:80\n", i + 1);
	return buf;
}

static void test_maglev_too_small(void)
{
	char yaml[1024];
	struct json_object *reply;
	struct world before;

	/* 7 is the smallest table: 8 active backends cannot all have a slot. */
	if (!fresh(7) || !agent_start(NULL, NULL))
		return;
	expect_summary(call_apply(cfg_n_backends(yaml, sizeof(yaml), 7), NULL), 1, 1, 0, 0, 0);
	if (!world_take(&before))
		return;
	reply = call_apply(cfg_n_backends(yaml, sizeof(yaml), 8), "big.yaml");
	expect_refused(reply, 1, "apply of 8 backends into 7 slots");
	ASSERT_TRUE(str_of(reply, "hint") && strstr(str_of(reply, "hint"), "--maglev-size"),
		    "apply of 8 backends: the hint names --maglev-size");
	ASSERT_TRUE(field(reply, "line") == NULL, "apply of 8 backends: not a config error");
	json_object_put(reply);
	world_expect_same(&before, SAME_ALL, "apply of 8 backends into 7 slots");

	reply = call(
		"{'op':'backend.add','service':'198.19.0.30:80/tcp','backend':'198.18.9.8:80'}");
	expect_refused(reply, 1, "backend.add of an 8th active backend");
	ASSERT_TRUE(str_of(reply, "error") && strstr(str_of(reply, "error"), "Maglev"),
		    "8th backend: the error names the Maglev table");
	ASSERT_TRUE(str_of(reply, "hint") && strstr(str_of(reply, "hint"), "--maglev-size"),
		    "8th backend: the hint names --maglev-size");
	json_object_put(reply);
	world_expect_same(&before, SAME_ALL, "backend.add of an 8th active backend");
	world_free(&before);

	/* A drained backend takes no table slot. */
	req_ok("{'op':'backend.add','service':'198.19.0.30:80/tcp','backend':'198.18.9.8:80',"
	       "'weight':0}");
	expect_maps_hold_desired("an 8th backend at weight 0");
}

/* The replies docs/api.md shows, byte for byte as JSON. */
static void test_docs_examples(void)
{
	static const char want_refusal[] =
		"{\"ok\":false,\"status\":1,\"error\":\"backend [fd00::2]:80 is not of the "
		"service's address family\",\"errno\":\"Address family not supported by "
		"protocol\",\"hint\":\"a service's backends have its address family (IPv4 or "
		"IPv6)\"}";
	struct json_object *reply, *want = json_tokener_parse(want_refusal);

	if (!ASSERT_TRUE(want != NULL, "the documented reply parses") || !start_populated())
		goto put_want;
	/* populate() added 198.18.1.2:8080 to 198.19.0.10:80/tcp. */
	reply = call("{'op':'backend.set','service':'198.19.0.10:80/tcp',"
		     "'backend':'198.18.1.2:8080','weight':0}");
	EXPECT_STR(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN), "{\"ok\":true}",
		   "backend.set reply as documented");
	json_object_put(reply);
	reply = call(
		"{'op':'backend.add','service':'198.19.0.10:80/tcp','backend':'[fd00::2]:80'}");
	if (!ASSERT_TRUE(json_object_equal(reply, want), "wrong-family reply as documented"))
		print_exchange(reply);
	json_object_put(reply);
put_want:
	json_object_put(want);
}

/* ---- the state file and restarts ---- */

static void test_state_file(void)
{
	struct stat st1, st2;
	char *text;

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	expect_summary(call_apply(CFG_ONE, NULL), 3, 3, 0, 0, 1);
	req_ok("{'op':'backend.set','service':'%s','backend':'%s','weight':9}", SVC4, BE_B);
	req_ok("{'op':'service.add','service':'%s','name':'extra','affinity':5}", SVC_NEW);
	req_ok("{'op':'backend.add','service':'%s','backend':'%s','weight':7}", SVC_NEW, BE_C);
	req_ok("{'op':'backend.add','service':'%s','backend':'%s','weight':0}", SVC_NEW, BE_A);
	ASSERT_TRUE(ag.state_dirty, "a change marks the state to save");
	ASSERT_OK(agent_save_state(&ag), "agent_save_state");

	text = slurp(state_path);
	if (!ASSERT_TRUE(text != NULL, "the state file exists"))
		return;
	ASSERT_TRUE(!strncmp(text, "# sluiced state", 15), "state file: its header first");
	ASSERT_TRUE(strstr(text, "\n# config-digest: 0000000000000000\n") != NULL,
		    "state file: digest 0 without --config");
	free(text);
	expect_state_file_is_desired("after changes");

	/* Nothing changed since: no rewrite. */
	stat(state_path, &st1);
	ASSERT_OK(agent_save_state(&ag), "agent_save_state again");
	stat(state_path, &st2);
	ASSERT_EQ(st2.st_ino, st1.st_ino, "nothing to save: the file is not rewritten");
	ASSERT_TRUE(access(state_tmp, F_OK) != 0, "no temporary file left");
}

static void test_restart(void)
{
	struct world before;

	if (!start_populated())
		return;
	/* web and dns are in the maps as the API made them: only :443 is new. */
	expect_summary(call_apply(CFG_ONE, NULL), 3, 1, 2, 0, 1);
	req_ok("{'op':'backend.add','service':'%s','backend':'%s','weight':4}", SVC4, BE_C);
	if (!world_take(&before))
		return;
	if (agent_start(NULL, NULL)) {
		world_expect_same(&before, SAME_MAPS | SAME_DESIRED,
				  "restart from the state file: nothing republished");
		ASSERT_EQ(ag.stats.transactions, 0, "restart: no transaction");
		ASSERT_EQ(want_weight(SVC4, BE_C), 4, "restart: the last change is kept");
		expect_state_file_is_desired("after a restart");
	}
	world_free(&before);
}

static void test_restore_sources(void)
{
	char digest_line[64];
	struct world before;
	char *text;

	if (!fresh(MAGLEV_SIZE) || !write_file(config_path, CFG_ONE) ||
	    !agent_start(config_path, NULL))
		return;
	cfg_same_yaml(&ag.desired, CFG_ONE, "no state: --config");
	snprintf(digest_line, sizeof(digest_line), "# config-digest: %016llx\n",
		 (unsigned long long)cfg_digest(CFG_ONE, strlen(CFG_ONE)));
	text = slurp(state_path);
	ASSERT_TRUE(text && strstr(text, digest_line), "the state file names the config's digest");
	free(text);

	/* Same config at the restart: the state wins, the API's change stays. */
	req_ok("{'op':'backend.add','service':'%s','backend':'%s','weight':2}", SVC4, BE_C);
	if (!world_take(&before))
		return;
	if (agent_start(config_path, NULL))
		world_expect_same(&before, SAME_MAPS | SAME_DESIRED, "same config: the state wins");
	world_free(&before);
	ASSERT_EQ(want_weight(SVC4, BE_C), 2, "same config: the API's backend stays");

	/* The config changed while the agent was down: it wins. */
	if (!write_file(config_path, CFG_TWO) || !agent_start(config_path, NULL))
		return;
	cfg_same_yaml(&ag.desired, CFG_TWO, "changed config: the config wins");
	expect_maps_hold_desired("changed config");
	ASSERT_EQ(map_weight(SVC4, BE_C), -1, "changed config: the API's backend is gone");

	/* No --config: the state file wins (it came from CFG_TWO). */
	if (!agent_start(NULL, NULL))
		return;
	cfg_same_yaml(&ag.desired, CFG_TWO, "no --config: the state wins");
	req_ok("{'op':'backend.add','service':'%s','backend':'%s'}", SVC4, BE_C);
	ASSERT_OK(agent_save_state(&ag), "agent_save_state");

	/* That state has no config digest: a --config wins over it. */
	if (!agent_start(config_path, NULL))
		return;
	cfg_same_yaml(&ag.desired, CFG_TWO, "state saved without --config: the config wins");
	ASSERT_EQ(map_weight(SVC4, BE_C), -1, "state without --config: its backend is gone");
	expect_maps_hold_desired("state without --config");
}

/* Services put in the maps by hand (as a CLI before the agent did). */
static bool maps_put_legacy(const char *name)
{
	struct sl_svc web = { .flags = SL_SVC_AFFINITY, .affinity_timeout_s = 60 }, dns = {};
	struct sl_svc_key k4, k6;
	struct addr_port a, b, c, d;
	bool ok = !addr_parse_service(SVC4, &k4) && !addr_parse_service(SVC6, &k6) &&
		  !addr_parse_endpoint(BE_A, &a) && !addr_parse_endpoint(BE_B, &b) &&
		  !addr_parse_endpoint(BE_C, &c) && !addr_parse_endpoint(BE6, &d);

	snprintf(web.name, sizeof(web.name), "%s", name);
	ok = ok && !lb_service_add(&maps, &k4, &web) && !lb_backend_add(&maps, &k4, &a, 1) &&
	     !lb_backend_add(&maps, &k4, &b, 7) && !lb_backend_add(&maps, &k4, &c, 0) &&
	     !lb_service_add(&maps, &k6, &dns) && !lb_backend_add(&maps, &k6, &d, 3);
	return ASSERT_TRUE(ok, "services put in the maps by hand");
}

static void test_adopt_maps(void)
{
	struct cfg_service *web;
	struct world before;

	if (!fresh(MAGLEV_SIZE) || !maps_put_legacy("legacy") || !world_take(&before))
		return;
	if (agent_start(NULL, NULL)) {
		world_expect_same(&before, SAME_MAPS, "adopting the maps publishes nothing");
		ASSERT_EQ(ag.desired.n_services, 2, "adopted: services");
		web = want_service(SVC4);
		if (ASSERT_TRUE(web != NULL, "adopted: web")) {
			EXPECT_STR(web->name, "legacy", "adopted: name");
			ASSERT_EQ(web->affinity_s, 60, "adopted: affinity");
			ASSERT_EQ(web->n_backends, 3, "adopted: web's backends");
		}
		ASSERT_EQ(want_weight(SVC4, BE_A), 1, "adopted: weight 1");
		ASSERT_EQ(want_weight(SVC4, BE_B), 7, "adopted: weight 7");
		ASSERT_EQ(want_weight(SVC4, BE_C), 0, "adopted: weight 0");
		ASSERT_EQ(want_weight(SVC6, BE6), 3, "adopted: the v6 backend");
		EXPECT_STR(want_service(SVC6) ? want_service(SVC6)->name : NULL, "",
			   "adopted: no name");
		expect_state_file_is_desired("adopted");
	}
	world_free(&before);
}

/* Maps from before names were checked may hold one the config format
 * refuses; adopting them must not write a state file the next start
 * cannot read. */
static void test_adopt_unwritable_name(void)
{
	if (!fresh(MAGLEV_SIZE) || !maps_put_legacy("my web") || !agent_start(NULL, NULL))
		return;
	expect_state_file_is_desired("adopted name 'my web'");
	ASSERT_TRUE(agent_start(NULL, NULL), "the next start reads its state file");
}

/* An http check's path may hold '"' and '\' (printable ASCII): the state
 * file must still read back as the desired state. */
static void test_state_file_http_path(void)
{
	static const char yaml[] = "services:\n"
				   "  - vip: 198.19.0.10:80/tcp\n"
				   "    health:\n"
				   "      type: http\n"
				   "      path: /q\"x\\y\n"
				   "      interval_ms: 3600000\n"
				   "    backends: [198.18.1.2:8080]\n";

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	expect_summary(call_apply(yaml, NULL), 1, 1, 0, 0, 1);
	EXPECT_STR(ag.desired.n_services ? ag.desired.services[0].health.path : NULL, "/q\"x\\y",
		   "the path as the config gave it");
	ASSERT_OK(agent_save_state(&ag), "agent_save_state");
	expect_state_file_is_desired("path with a quote and a backslash");
	ASSERT_TRUE(agent_start(NULL, NULL), "the next start reads its state file");
}

/* ---- weights from health checks ---- */

/* @n (at most 8) loopback ports nothing listens on: each bound once to
 * get it, all closed together (so no two are the same). */
static bool closed_ports(uint16_t *ports, int n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fds[8], ok = 1, i;

	for (i = 0; i < n && ok; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		sa.sin_port = 0;
		ok = fds[i] >= 0 && !bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) &&
		     !getsockname(fds[i], (struct sockaddr *)&sa, &len);
		ports[i] = ntohs(sa.sin_port);
	}
	while (i--)
		if (fds[i] >= 0)
			close(fds[i]);
	return ASSERT_TRUE(ok, "closed loopback ports");
}

/* "checked" (tcp check) with A and B, "plain" (none) with C: all on
 * closed loopback ports, probed at most once an hour, 100 probes to
 * change a state. @interval varies the check. */
static const char *health_cfg(char *buf, size_t len, const uint16_t *p, unsigned int interval)
{
	snprintf(buf, len,
		 "services:\n"
		 "  - name: checked\n"
		 "    vip: 198.19.0.20:80/tcp\n"
		 "    health: { type: tcp, interval_ms: %u, healthy_threshold: 100,"
		 " unhealthy_threshold: 100 }\n"
		 "    backends: [127.0.0.1:%u, 127.0.0.1:%u]\n"
		 "  - name: plain\n"
		 "    vip: 198.19.0.21:80/tcp\n"
		 "    backends: [127.0.0.1:%u]\n",
		 interval, p[0], p[1], p[2]);
	return buf;
}

#define CHECKED "198.19.0.20:80/tcp"
#define PLAIN "198.19.0.21:80/tcp"

/* The maps as a previous agent left them: A of "checked" and C of "plain"
 * at weight 0 although configured 1 (A was down; C set by hand). Then an
 * agent with a prober (@h) restarts on them with the same config. */
static bool restart_with_a_down(struct health *h, const uint16_t *p, char (*be)[32])
{
	struct sl_svc_key checked, plain;
	struct addr_port a, c;
	char yaml[1024];
	bool ok;

	for (int i = 0; i < 3; i++)
		snprintf(be[i], 32, "127.0.0.1:%u", p[i]);
	if (!fresh(MAGLEV_SIZE) ||
	    !write_file(config_path, health_cfg(yaml, sizeof(yaml), p, 3600000)) ||
	    !agent_start(config_path, NULL))
		return false;
	agent_stop();
	ok = !addr_parse_service(CHECKED, &checked) && !addr_parse_service(PLAIN, &plain) &&
	     !addr_parse_endpoint(be[0], &a) && !addr_parse_endpoint(be[2], &c);
	ok = ok && !lb_backend_set_weight(&maps, &checked, &a, 0) &&
	     !lb_backend_set_weight(&maps, &plain, &c, 0);
	return ASSERT_TRUE(ok, "weights set to 0 in the maps") && agent_start(config_path, h);
}

static void test_health_weights(void)
{
	struct health *h = health_start();
	char be[3][32];
	const struct health_row rows[] = {
		{ CHECKED, be[0], 1, "down" },
		{ CHECKED, be[1], 1, "unknown" },
		{ PLAIN, be[2], 1, "unchecked" },
	};
	struct health_event ev = { .state = HEALTH_DOWN };
	struct cfg_service *svc;
	uint16_t p[3];

	if (!ASSERT_TRUE(h != NULL, "health_start") || !closed_ports(p, 3) ||
	    !restart_with_a_down(h, p, be))
		goto stop;
	/* A stays out of rotation until its check passes; C has no check. */
	ASSERT_EQ(map_weight(CHECKED, be[0]), 0, "down before the restart: still 0");
	ASSERT_EQ(map_weight(CHECKED, be[1]), 1, "the other checked backend: 1");
	ASSERT_EQ(map_weight(PLAIN, be[2]), 1, "unchecked: its configured weight again");
	svc = want_service(CHECKED);
	if (ASSERT_TRUE(svc && svc->n_backends == 2, "checked service desired"))
		ASSERT_EQ(agent_backend_health(&ag, svc, &svc->backends[0]), HEALTH_DOWN,
			  "A starts down");
	expect_health_rows(rows, ARRAY_SIZE(rows), "restarted with A down");
	expect_maps_hold_desired("restarted with A down");

	/* The agent weighs by the prober's state, not by the event: an event
	 * the prober does not back changes no weight (it is counted). */
	addr_parse_service(CHECKED, &ev.svc);
	addr_parse_endpoint(be[1], &ev.addr);
	agent_health_changed(&ag, &ev);
	ASSERT_EQ(ag.stats.health_transitions, 1, "the event is counted");
	ASSERT_EQ(map_weight(CHECKED, be[1]), 1, "an event alone moves no weight");

	/* A down backend's configured weight changes, its weight in the maps does not. */
	req_ok("{'op':'backend.set','service':'%s','backend':'%s','weight':3}", CHECKED, be[0]);
	ASSERT_EQ(want_weight(CHECKED, be[0]), 3, "set while down: configured 3");
	ASSERT_EQ(map_weight(CHECKED, be[0]), 0, "set while down: still 0 in the maps");
	expect_summary(call("{'op':'reload'}"), 2, 0, 2, 0, 1); /* A: 0 before and after */
	ASSERT_EQ(want_weight(CHECKED, be[0]), 1, "reload: configured 1 again");
	ASSERT_EQ(map_weight(CHECKED, be[0]), 0, "reload while down: still 0 in the maps");
	expect_maps_hold_desired("reloaded with A down");
stop:
	agent_stop();
	health_stop(h);
}

/* A reload that changes a check resets its backends' states (health.h):
 * the maps must then follow the new state, not the old one. */
static void test_health_check_changed(void)
{
	struct health *h = health_start();
	char be[3][32], yaml[1024];
	uint16_t p[3];

	if (!ASSERT_TRUE(h != NULL, "health_start") || !closed_ports(p, 3) ||
	    !restart_with_a_down(h, p, be) ||
	    !write_file(config_path, health_cfg(yaml, sizeof(yaml), p, 3500000)))
		goto stop;
	/* Whether "checked" is republished depends on the state A gets (down
	 * kept, or unknown again): the maps must agree with it either way. */
	expect_ok(call("{'op':'reload'}"));
	expect_maps_hold_desired("after the check changed");
stop:
	agent_stop();
	health_stop(h);
}

/* ---- policy: endpoints, rule sets, denial events ---- */

#define EP_WEB "198.18.5.2"
#define EP_DB "198.18.5.3" /* in NETNS_SELF */
#define EP_V6 "fd00:5::3"
#define EP_NEW "198.18.5.9" /* no case has it before its checks */
#define NETNS_SELF "/proc/self/ns/net" /* a path pol_publish() can open */
#define X50 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define NAME64 "n" X50 "0123456789abc" /* one more than a rule set name holds */
_Static_assert(sizeof(NAME64) == POL_NAME_MAX + 1, "NAME64 has 64 characters");

/* The generation sl_pol_gen says is enforced. */
static __u32 gen_now(void)
{
	__u32 gen = 0;

	ASSERT_OK(pol_gen_read(&maps, &gen), "pol_gen_read");
	return gen;
}

/* Send a change that must succeed and publish exactly one generation;
 * returns the reply (put it), NULL when it failed. */
static struct json_object *change(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static struct json_object *change(const char *fmt, ...)
{
	struct json_object *reply;
	__u32 before = gen_now();
	va_list ap;

	va_start(ap, fmt);
	reply = vcall(fmt, ap);
	va_end(ap);
	if (!ASSERT_TRUE(ok_is(reply, true), say("%.100s: ok", last_req))) {
		print_exchange(reply);
		json_object_put(reply);
		return NULL;
	}
	ASSERT_EQ(gen_now(), before + 1, say("%.100s: one new generation", last_req));
	ASSERT_EQ(ag.policy.gen, before + 1, say("%.100s: the agent's generation", last_req));
	return reply;
}

static const struct pol_endpoint *want_endpoint(const char *text)
{
	const struct pol_state *st = &ag.desired.policy;
	struct pol_prefix p;

	if (pol_prefix_parse(text, false, &p, NULL, 0))
		return NULL;
	for (size_t i = 0; i < st->n_endpoints; i++) {
		if (st->endpoints[i].addr.family == p.family &&
		    !memcmp(st->endpoints[i].addr.addr, p.addr, sizeof(p.addr)))
			return &st->endpoints[i];
	}
	return NULL;
}

static const struct pol_ruleset *want_ruleset(const char *name)
{
	for (size_t i = 0; i < ag.desired.policy.n_rulesets; i++) {
		if (!strcmp(ag.desired.policy.rulesets[i].name, name))
			return &ag.desired.policy.rulesets[i];
	}
	return NULL;
}

static const struct pol_rule *want_rule(const char *ruleset, uint32_t id)
{
	const struct pol_ruleset *rs = want_ruleset(ruleset);

	for (size_t i = 0; rs && i < rs->n_rules; i++) {
		if (rs->rules[i].id == id)
			return &rs->rules[i];
	}
	return NULL;
}

/* The identity sl_ipcache4 gives IPv4 address @text in the enforced
 * generation; 0 when it has none. */
static __u32 map_identity4(const char *text)
{
	struct sl_ipcache4_key key = { .prefixlen = 64, .gen = gen_now() };
	__u32 id = 0;

	if (inet_pton(AF_INET, text, &key.addr) != 1 ||
	    bpf_map_lookup_elem(maps.ipcache4, &key, &id))
		return 0;
	return id;
}

/* A populated agent with a policy: endpoints web and db (db in
 * NETNS_SELF), rule set db-in holding rule 5 (web may reach db:5432). */
static bool start_policy(void)
{
	return start_populated() &&
	       req_ok("{'op':'endpoint.add','address':'%s','labels':'app=web'}", EP_WEB) &&
	       req_ok("{'op':'endpoint.add','address':'%s','labels':'app=db','netns':'%s'}", EP_DB,
		      NETNS_SELF) &&
	       req_ok("{'op':'policy.add','ruleset':'db-in','action':'allow','from':'app=web',"
		      "'to':'app=db','ports':'5432','id':5}");
}

static void expect_endpoint_row(struct json_object *row, const char *address, const char *labels,
				const char *netns)
{
	const struct pol_endpoint *ep = want_endpoint(address);
	__u32 id = ep ? pol_ident_of_labels(&ag.policy.idents, &ep->labels) : 0;

	EXPECT_STR(str_of(row, "address"), address, "endpoint.list: address");
	EXPECT_STR(str_of(row, "labels"), labels, say("endpoint.list: %s labels", address));
	if (netns)
		EXPECT_STR(str_of(row, "netns"), netns, say("endpoint.list: %s netns", address));
	else
		ASSERT_TRUE(json_object_is_type(field(row, "netns"), json_type_null),
			    say("endpoint.list: %s netns null", address));
	ASSERT_TRUE(id >= SL_ID_FIRST_ENDPOINT, say("%s has a label identity", address));
	ASSERT_EQ(int_of(row, "identity"), id, say("endpoint.list: %s identity", address));
}

static void test_policy_endpoints(void)
{
	struct json_object *reply, *list;
	const struct pol_endpoint *db;

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	ASSERT_EQ(gen_now(), 0, "no policy published yet");
	json_object_put(change("{'op':'endpoint.add','address':'%s','labels':'app=web'}", EP_WEB));
	json_object_put(change("{'op':'endpoint.add','address':'%s','labels':'env=prod,app=db',"
			       "'netns':'%s'}",
			       EP_DB, NETNS_SELF));
	json_object_put(change("{'op':'endpoint.add','address':'%s'}", EP_V6));
	db = want_endpoint(EP_DB);
	if (ASSERT_TRUE(db != NULL, "db endpoint desired")) {
		ASSERT_EQ(db->labels.n, 2, "db: two labels");
		EXPECT_STR(db->labels.l[0].key, "app", "db: labels sorted by key");
		EXPECT_STR(db->netns, NETNS_SELF, "db: netns desired");
	}
	ASSERT_EQ(ag.desired.policy.n_endpoints, 3, "desired endpoints");
	ASSERT_EQ(map_identity4(EP_DB),
		  db ? pol_ident_of_labels(&ag.policy.idents, &db->labels) : 1,
		  "db's identity in sl_ipcache4");

	reply = call("{'op':'endpoint.list'}");
	list = field(reply, "endpoints");
	ASSERT_TRUE(ok_is(reply, true), "endpoint.list: ok");
	if (ASSERT_EQ(json_object_array_length(list), 3, "endpoint.list: rows")) {
		expect_endpoint_row(json_object_array_get_idx(list, 0), EP_WEB, "app=web", NULL);
		expect_endpoint_row(json_object_array_get_idx(list, 1), EP_DB, "app=db,env=prod",
				    NETNS_SELF);
		expect_endpoint_row(json_object_array_get_idx(list, 2), EP_V6, "", NULL);
	}
	json_object_put(reply);

	json_object_put(change("{'op':'endpoint.del','address':'%s'}", EP_WEB));
	json_object_put(change("{'op':'endpoint.del','address':'fd00:5:0:0::3'}")); /* EP_V6 */
	ASSERT_TRUE(!want_endpoint(EP_WEB) && !want_endpoint(EP_V6), "deleted: not desired");
	ASSERT_EQ(ag.desired.policy.n_endpoints, 1, "desired endpoints after two deletes");
	ASSERT_EQ(map_identity4(EP_WEB), 0, "deleted: gone from sl_ipcache4");
	ASSERT_OK(agent_save_state(&ag), "agent_save_state");
	expect_state_file_is_desired("after endpoint changes");
}

/* Rules 5 (every field given) and 6 (the fewest) of rule set db-in. */
static void expect_rules_desired(void)
{
	const struct pol_ruleset *rs = want_ruleset("db-in");
	const struct pol_rule *r5 = want_rule("db-in", 5), *r6 = want_rule("db-in", 6);

	if (!ASSERT_TRUE(rs && r5 && r6, "db-in with rules 5 and 6 desired"))
		return;
	ASSERT_EQ(rs->established, POL_EST_RECHECK, "a later add leaves established alone");
	ASSERT_EQ(r5->action, POL_ALLOW, "rule 5: allow");
	ASSERT_EQ(r5->from.kind, POL_PEER_SELECTOR, "rule 5: from a selector");
	ASSERT_EQ(r5->protos, POL_TCP, "rule 5: tcp");
	ASSERT_TRUE(r5->n_ports == 2 && r5->ports[1].first == 8000 && r5->ports[1].last == 8080,
		    "rule 5: ports 80 and 8000-8080");
	ASSERT_EQ(r6->action, POL_DENY, "rule 6: deny");
	ASSERT_EQ(r6->from.kind, POL_PEER_CIDR, "rule 6: from a CIDR");
	ASSERT_EQ(r6->to.n, 0, "rule 6: to every endpoint");
	ASSERT_EQ(r6->protos, POL_ANY_PROTO, "rule 6: every protocol");
	ASSERT_EQ(r6->n_ports, 0, "rule 6: every port");
}

static void expect_rule_row(struct json_object *r, long long id, const char *action,
			    const char *from, const char *to, const char *ports, const char *proto)
{
	ASSERT_EQ(int_of(r, "id"), id, "policy.list: rule id");
	EXPECT_STR(str_of(r, "action"), action, say("policy.list: rule %lld action", id));
	EXPECT_STR(str_of(r, "from"), from, say("policy.list: rule %lld from", id));
	EXPECT_STR(str_of(r, "to"), to, say("policy.list: rule %lld to", id));
	EXPECT_STR(str_of(r, "ports"), ports, say("policy.list: rule %lld ports", id));
	EXPECT_STR(str_of(r, "protocol"), proto, say("policy.list: rule %lld protocol", id));
	ASSERT_EQ(int_of(r, "denials"), 0, say("policy.list: rule %lld denials", id));
}

static void expect_policy_list(void)
{
	struct json_object *reply = call("{'op':'policy.list'}"), *sets = field(reply, "rulesets");
	struct json_object *rs = json_object_array_get_idx(sets, 0), *rules = field(rs, "rules");
	struct json_object *ids = field(reply, "identities");
	bool cidr = false;

	ASSERT_TRUE(ok_is(reply, true), "policy.list: ok");
	ASSERT_EQ(int_of(reply, "generation"), gen_now(), "policy.list: generation");
	ASSERT_EQ(json_object_array_length(sets), 1, "policy.list: one rule set");
	EXPECT_STR(str_of(rs, "name"), "db-in", "policy.list: name");
	EXPECT_STR(str_of(rs, "established"), "recheck", "policy.list: established");
	if (ASSERT_EQ(json_object_array_length(rules), 2, "policy.list: two rules")) {
		expect_rule_row(json_object_array_get_idx(rules, 0), 5, "allow", "app=web",
				"app=db", "80,8000-8080", "tcp");
		expect_rule_row(json_object_array_get_idx(rules, 1), 6, "deny", "10.0.0.0/8", "",
				"any", "any");
	}
	ASSERT_EQ(json_object_array_length(ids), ag.policy.idents.n, "policy.list: identities");
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		const char *c = str_of(json_object_array_get_idx(ids, i), "cidr");

		cidr |= c && !strcmp(c, "10.0.0.0/8");
	}
	ASSERT_TRUE(cidr, "policy.list: rule 6's CIDR has an identity");
	json_object_put(reply);
}

static void test_policy_rules(void)
{
	struct json_object *reply;

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	json_object_put(change("{'op':'endpoint.add','address':'%s','labels':'app=db'}", EP_DB));
	reply = change("{'op':'policy.add','ruleset':'db-in','action':'allow','from':'app=web',"
		       "'to':'app=db','ports':'80,8000-8080','protocol':'tcp',"
		       "'established':'recheck','id':5}");
	ASSERT_EQ(int_of(reply, "id"), 5, "policy.add: the id given");
	json_object_put(reply);
	reply = change("{'op':'policy.add','ruleset':'db-in','action':'deny','from':'10.0.0.0/8',"
		       "'to':'','established':'keep'}");
	ASSERT_EQ(int_of(reply, "id"), 6, "policy.add without id: the highest id + 1");
	json_object_put(reply);
	expect_rules_desired();
	expect_policy_list();

	json_object_put(change("{'op':'policy.set','ruleset':'db-in','established':'keep'}"));
	ASSERT_TRUE(want_ruleset("db-in") && want_ruleset("db-in")->established == POL_EST_KEEP,
		    "policy.set: keep desired");
	json_object_put(change("{'op':'policy.del','ruleset':'db-in','id':6}"));
	ASSERT_TRUE(!want_rule("db-in", 6) && want_rule("db-in", 5), "policy.del of rule 6");
	ASSERT_OK(agent_save_state(&ag), "agent_save_state");
	expect_state_file_is_desired("after rule changes");
	json_object_put(change("{'op':'policy.del','ruleset':'db-in'}"));
	ASSERT_TRUE(!want_ruleset("db-in"), "policy.del of the rule set");
	ASSERT_EQ(ag.desired.policy.n_rulesets, 0, "no rule set left");
}

/* Rule ids go up to 2^31-1: past it the agent picks none the config
 * (and so its own state file) would refuse. */
static void test_policy_last_rule_id(void)
{
	const struct refusal next = {
		"policy.add after rule 2147483647",
		"{'op':'policy.add','ruleset':'db-in','action':'deny','from':'world','to':''}",
		NULL,
	};

	if (!start_policy())
		return;
	json_object_put(change("{'op':'policy.add','ruleset':'db-in','action':'deny',"
			       "'from':'host','to':'','id':2147483647}"));
	expect_refusal(&next, 1, "ids go up to 2147483647");
	ASSERT_TRUE(agent_start(NULL, NULL), "the next start reads its state file");
	ASSERT_TRUE(want_rule("db-in", 2147483647) != NULL, "rule 2147483647 after a restart");
}

/* Denial events as the ring buffer's reader stores them. */
static void put_events(int n)
{
	for (int i = 0; i < n; i++) {
		struct sl_pol_event *ev = &ag.policy.ring[ag.policy.n_events++ % AGENT_POL_EVENTS];

		memset(ev, 0, sizeof(*ev));
		ev->family = SL_AF_INET;
		ev->proto = SL_PROTO_TCP;
		ev->site = SL_POL_SITE_XDP;
		ev->verdict = SL_POL_DENY_RULE;
		ev->rule_id = 5;
		ev->src_id = SL_ID_WORLD;
		inet_pton(AF_INET, "198.51.100.1", &ev->saddr[0]);
		inet_pton(AF_INET, EP_DB, &ev->daddr[0]);
		ev->sport = htons(40000 + i);
		ev->dport = htons(5432);
	}
}

static void test_policy_drops(void)
{
	struct json_object *reply, *events, *ev;

	if (!start_policy())
		return;
	reply = call("{'op':'policy.drops'}");
	events = field(reply, "events");
	ASSERT_TRUE(ok_is(reply, true), "policy.drops: ok");
	ASSERT_EQ(json_object_array_length(events), 0, "policy.drops: no events yet");
	ASSERT_EQ(int_of(reply, "total"), 0, "policy.drops: total 0");
	json_object_put(reply);

	put_events(3);
	reply = call("{'op':'policy.drops','limit':2}");
	events = field(reply, "events");
	ev = json_object_array_get_idx(events, 0);
	ASSERT_EQ(json_object_array_length(events), 2, "policy.drops: limit 2");
	ASSERT_EQ(int_of(reply, "total"), 3, "policy.drops: total");
	ASSERT_EQ(int_of(ev, "sport"), 40001, "policy.drops: the newest, oldest first");
	EXPECT_STR(str_of(ev, "site"), "xdp", "event site");
	EXPECT_STR(str_of(ev, "verdict"), "deny_rule", "event verdict");
	ASSERT_EQ(int_of(ev, "rule"), 5, "event rule");
	EXPECT_STR(str_of(ev, "ruleset"), "db-in", "event rule set");
	EXPECT_STR(str_of(ev, "src"), "198.51.100.1", "event src");
	EXPECT_STR(str_of(ev, "dst"), EP_DB, "event dst");
	ASSERT_EQ(int_of(ev, "dport"), 5432, "event dport");
	EXPECT_STR(str_of(ev, "src_labels"), "world", "event src_labels");
	json_object_put(reply);
}

struct pol_refusal {
	int status;
	const char *what;
	const char *req; /* ' for " */
	const char *error_has; /* in the reply's "error" */
};

#define POL_ADD "{'op':'policy.add','ruleset':'db-in','action':'allow','from':'any','to':'app=db'"
#define EP_ADD "{'op':'endpoint.add','address':'" EP_NEW "'"

/* Against start_policy()'s state; status 2: malformed, 1: refused. */
static const struct pol_refusal pol_refusals[] = {
	{ 2, "endpoint.add: no address", "{'op':'endpoint.add','labels':'app=x'}",
	  "missing field \"address\"" },
	{ 2, "endpoint.add: address a number", "{'op':'endpoint.add','address':42}",
	  "field \"address\" must be a string" },
	{ 2, "endpoint.add: address out of range", "{'op':'endpoint.add','address':'198.18.5.300'}",
	  "invalid IP address" },
	{ 2, "endpoint.add: a CIDR", "{'op':'endpoint.add','address':'198.18.5.0/24'}",
	  "expected an address, not a CIDR" },
	{ 2, "endpoint.add: labels a list", EP_ADD ",'labels':['app=x']}",
	  "field \"labels\" must be a string" },
	{ 2, "endpoint.add: label without =", EP_ADD ",'labels':'app'}", "expected key=value" },
	{ 2, "endpoint.add: label key twice", EP_ADD ",'labels':'a=b,a=c'}",
	  "label key \"a\" given twice" },
	{ 2, "endpoint.add: label with a NUL", EP_ADD ",'labels':'app=x\\u0000y'}",
	  "has a NUL character" },
	{ 2, "endpoint.add: relative netns", EP_ADD ",'netns':'run/netns/x'}",
	  "netns must be an absolute path" },
	{ 2, "endpoint.add: netns too long", EP_ADD ",'netns':'/" X50 X50 X50 X50 X50 X50 "'}",
	  "netns must be an absolute path" },
	{ 2, "endpoint.add: netns a number", EP_ADD ",'netns':5}",
	  "field \"netns\" must be a string" },
	{ 2, "endpoint.del: no address", "{'op':'endpoint.del'}", "missing field \"address\"" },
	{ 2, "endpoint.del: not an address", "{'op':'endpoint.del','address':'db'}",
	  "invalid IP address" },
	{ 2, "policy.add: no ruleset",
	  "{'op':'policy.add','action':'allow','from':'any','to':'app=db'}",
	  "missing field \"ruleset\"" },
	{ 2, "policy.add: ruleset a number",
	  "{'op':'policy.add','ruleset':1,'action':'allow','from':'any','to':'app=db'}",
	  "field \"ruleset\" must be a string" },
	{ 2, "policy.add: no action", "{'op':'policy.add','ruleset':'db-in','from':'any','to':''}",
	  "missing field \"action\"" },
	{ 2, "policy.add: no from", "{'op':'policy.add','ruleset':'db-in','action':'deny','to':''}",
	  "missing field \"from\"" },
	{ 2, "policy.add: no to",
	  "{'op':'policy.add','ruleset':'db-in','action':'deny','from':'any'}",
	  "missing field \"to\"" },
	{ 2, "policy.add: action permit",
	  "{'op':'policy.add','ruleset':'db-in','action':'permit','from':'any','to':''}",
	  "action 'permit': allow or deny" },
	{ 2, "policy.add: bad from selector",
	  "{'op':'policy.add','ruleset':'db-in','action':'deny','from':'app==web','to':''}",
	  "invalid character '='" },
	{ 2, "policy.add: from an address without length",
	  "{'op':'policy.add','ruleset':'db-in','action':'deny','from':'10.0.0.1','to':''}",
	  "a CIDR needs a length" },
	{ 2, "policy.add: bad to selector",
	  "{'op':'policy.add','ruleset':'db-in','action':'deny','from':'any','to':'app=db,'}",
	  "empty selector term" },
	{ 2, "policy.add: to a list",
	  "{'op':'policy.add','ruleset':'db-in','action':'deny','from':'any','to':['app=db']}",
	  "field \"to\" must be a string" },
	{ 2, "policy.add: port 0", POL_ADD ",'ports':'0'}", "not in 1-65535" },
	{ 2, "policy.add: port 70000", POL_ADD ",'ports':'70000'}", "not in 1-65535" },
	{ 2, "policy.add: ports 5-1", POL_ADD ",'ports':'5-1'}", "first above last" },
	{ 2, "policy.add: ports a number", POL_ADD ",'ports':80}",
	  "field \"ports\" must be a string" },
	{ 2, "policy.add: protocol sctp", POL_ADD ",'protocol':'sctp'}",
	  "expected tcp, udp or any" },
	{ 2, "policy.add: established never", POL_ADD ",'established':'never'}",
	  "established 'never': keep or recheck" },
	{ 2, "policy.add: id negative", POL_ADD ",'id':-1}", "field \"id\" must be an integer" },
	{ 2, "policy.add: id a string", POL_ADD ",'id':'7'}", "field \"id\" must be an integer" },
	{ 2, "policy.add: id 2^31", POL_ADD ",'id':2147483648}",
	  "field \"id\" must be an integer" },
	{ 2, "policy.del: no ruleset", "{'op':'policy.del','id':5}", "missing field \"ruleset\"" },
	{ 2, "policy.del: id 0", "{'op':'policy.del','ruleset':'db-in','id':0}",
	  "field \"id\" must be an integer 1..2147483647" },
	{ 2, "policy.del: id a string", "{'op':'policy.del','ruleset':'db-in','id':'5'}",
	  "field \"id\" must be an integer 1..2147483647" },
	{ 2, "policy.set: no established", "{'op':'policy.set','ruleset':'db-in'}",
	  "missing field \"established\"" },
	{ 2, "policy.set: established never",
	  "{'op':'policy.set','ruleset':'db-in','established':'never'}", "keep or recheck" },
	{ 2, "policy.set: no ruleset", "{'op':'policy.set','established':'keep'}",
	  "missing field \"ruleset\"" },
	{ 2, "policy.drops: limit 0", "{'op':'policy.drops','limit':0}",
	  "field \"limit\" must be an integer 1..1024" },
	{ 2, "policy.drops: limit 1025", "{'op':'policy.drops','limit':1025}",
	  "field \"limit\" must be an integer 1..1024" },
	{ 2, "policy.drops: limit negative", "{'op':'policy.drops','limit':-1}",
	  "field \"limit\" must be an integer 1..1024" },
	{ 2, "policy.drops: limit a string", "{'op':'policy.drops','limit':'5'}",
	  "field \"limit\" must be an integer 1..1024" },
	{ 1, "endpoint.add of an existing endpoint",
	  "{'op':'endpoint.add','address':'" EP_WEB "','labels':'app=other'}",
	  "endpoint " EP_WEB " exists" },
	{ 1, "endpoint.add: a second IPv4 endpoint in a netns", EP_ADD ",'netns':'" NETNS_SELF "'}",
	  "has two IPv4 endpoints" },
	{ 1, "endpoint.add: netns with a newline", EP_ADD ",'netns':'/run/netns/a\\nb'}",
	  "without control characters" },
	{ 1, "endpoint.add: netns that does not exist", EP_ADD ",'netns':'/nonexistent/netns'}",
	  "/nonexistent/netns" },
	{ 1, "endpoint.del of an unknown endpoint", "{'op':'endpoint.del','address':'" EP_NEW "'}",
	  "no endpoint " EP_NEW },
	{ 1, "policy.add: rule id taken by another rule set",
	  "{'op':'policy.add','ruleset':'other','action':'deny','from':'any','to':'','id':5}",
	  "rule id 5 given twice" },
	{ 1, "policy.add: rule set name with a space",
	  "{'op':'policy.add','ruleset':'my rules','action':'deny','from':'any','to':''}",
	  "rule set name \"my rules\"" },
	{ 1, "policy.add: rule set name of 64 characters",
	  "{'op':'policy.add','ruleset':'" NAME64 "','action':'deny','from':'any','to':''}",
	  "is longer than 63 characters" },
	{ 1, "policy.del of an unknown rule set", "{'op':'policy.del','ruleset':'nope'}",
	  "no rule set 'nope'" },
	{ 1, "policy.del of an unknown rule id", "{'op':'policy.del','ruleset':'db-in','id':7}",
	  "rule set 'db-in' has no rule 7" },
	{ 1, "policy.set of an unknown rule set",
	  "{'op':'policy.set','ruleset':'nope','established':'keep'}", "no rule set 'nope'" },
};

static void test_policy_refusals(void)
{
	if (!start_policy())
		return;
	for (size_t i = 0; i < ARRAY_SIZE(pol_refusals); i++) {
		const struct pol_refusal *c = &pol_refusals[i];

		expect_refusal(&(struct refusal){ c->what, c->req, NULL }, c->status, c->error_has);
	}
}

/* Endpoints web and db (db in network namespace @netns) and rule set
 * db-in, whose rule 1 lets web reach db on @ports. */
static const char *cfg_policy(char *buf, size_t len, const char *ports, const char *netns)
{
	snprintf(buf, len,
		 "services: []\n"
		 "endpoints:\n"
		 "  - address: " EP_WEB "\n"
		 "    labels: { app: web }\n"
		 "  - address: " EP_DB "\n"
		 "    labels: { app: db }\n"
		 "    netns: %s\n"
		 "policies:\n"
		 "  - name: db-in\n"
		 "    rules:\n"
		 "      - id: 1\n"
		 "        action: allow\n"
		 "        from: app=web\n"
		 "        to: app=db\n"
		 "        ports: %s\n"
		 "        protocol: tcp\n",
		 netns, ports);
	return buf;
}

static void test_apply_policy(void)
{
	struct json_object *reply;
	struct world before;
	char yaml[1024];
	__u32 db_id;

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	expect_summary(call_apply(cfg_policy(yaml, sizeof(yaml), "[5432]", NETNS_SELF), "p.yaml"),
		       0, 0, 0, 0, 0);
	ASSERT_EQ(gen_now(), 1, "apply with a policy: generation 1");
	ASSERT_TRUE(want_rule("db-in", 1) && want_endpoint(EP_DB), "the config's policy desired");
	db_id = map_identity4(EP_DB);
	ASSERT_TRUE(db_id >= SL_ID_FIRST_ENDPOINT, "db in sl_ipcache4");

	/* Refused by the parser, or when publishing: the policy stays. */
	expect_apply_refused(cfg_policy(yaml, sizeof(yaml), "[70000]", NETNS_SELF), "bad.yaml",
			     "policies[0].rules[0].ports[0]");
	if (world_take(&before)) {
		reply = call_apply(cfg_policy(yaml, sizeof(yaml), "[5432]", "/nonexistent/netns"),
				   "gone.yaml");
		expect_refused(reply, 1, "apply of a policy whose netns does not exist");
		json_object_put(reply);
		world_expect_same(&before, SAME_ALL,
				  "apply of a policy whose netns does not exist");
		world_free(&before);
	}
	ASSERT_EQ(map_identity4(EP_DB), db_id, "the previous policy is still enforced");

	expect_summary(call_apply("", NULL), 0, 0, 0, 0, 0);
	ASSERT_EQ(gen_now(), 2, "an empty config: a generation without policy");
	ASSERT_EQ(ag.desired.policy.n_endpoints + ag.desired.policy.n_rulesets, 0,
		  "an empty config: no policy desired");
	ASSERT_EQ(map_identity4(EP_DB), 0, "an empty config: db gone from sl_ipcache4");
}

/* ---- smaller points ---- */

/* A reload refused for want of --config is a failed reload and a failed
 * transaction, like every other refusal. */
static void test_reload_without_config_counted(void)
{
	struct json_object *reply;

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	reply = call("{'op':'reload'}");
	expect_refused(reply, 1, "reload without --config");
	json_object_put(reply);
	ASSERT_EQ(ag.stats.reload_errors, 1, "reload without --config: reload_errors");
	ASSERT_EQ(ag.stats.transaction_errors, 1, "reload without --config: transaction_errors");
}

/* A string with a NUL inside (JSON "\u0000") is not the string before it:
 * acting on that prefix would act on something the client did not ask. */
static const struct refusal nul_requests[] = {
	{ "service with a NUL inside", "{'op':'service.add','service':'" SVC_NEW "\\u0000junk'}",
	  NULL },
	{ "name with a NUL inside", ADD_SVC ",'name':'web\\u0000junk'}", NULL },
	{ "backend with a NUL inside",
	  "{'op':'backend.add','service':'" SVC4 "','backend':'" BE_C "\\u0000junk'}", NULL },
};

static void test_nul_in_strings(void)
{
	/* Each from a fresh start: one accepted would change the next one's world. */
	for (size_t i = 0; i < ARRAY_SIZE(nul_requests); i++) {
		if (start_populated())
			expect_refusal(&nul_requests[i], 2, NULL);
	}
}

/* No config, no state file: the policy in the pins cannot be read back,
 * so it stays enforced as it is, across this restart and the next one
 * (which finds the state file the first wrote), until a change. */
static void test_policy_kept_from_pins(void)
{
	char yaml[1024];
	__u32 gen, db;

	if (!fresh(MAGLEV_SIZE) || !agent_start(NULL, NULL))
		return;
	json_object_put(call_apply(cfg_policy(yaml, sizeof(yaml), "[5432]", NETNS_SELF), "p.yaml"));
	gen = gen_now();
	db = map_identity4(EP_DB);
	ASSERT_TRUE(gen && db, "policy published");
	agent_stop();
	unlink(state_path);
	if (!agent_start(NULL, NULL))
		return;
	ASSERT_TRUE(ag.policy.keep_pinned, "restart 1: the pinned policy is kept");
	ASSERT_EQ(gen_now(), gen, "restart 1: generation unchanged");
	ASSERT_EQ(map_identity4(EP_DB), db, "restart 1: identities unchanged");
	agent_stop();
	if (!agent_start(NULL, NULL))
		return;
	ASSERT_TRUE(ag.policy.keep_pinned, "restart 2 (from restart 1's state file): still kept");
	ASSERT_EQ(gen_now(), gen, "restart 2: generation unchanged");
	ASSERT_EQ(map_identity4(EP_DB), db, "restart 2: identities unchanged");
	json_object_put(call_apply(cfg_policy(yaml, sizeof(yaml), "[5432]", NETNS_SELF), "p.yaml"));
	ASSERT_FALSE(ag.policy.keep_pinned, "an apply makes it desired again");
	ASSERT_EQ(gen_now(), gen, "the same policy: not published again");
	json_object_put(call_apply(cfg_policy(yaml, sizeof(yaml), "[5433]", NETNS_SELF), "p.yaml"));
	ASSERT_EQ(gen_now(), gen + 1, "another policy: a new generation");
}

static const struct test_case cases[] = {
	{ "service.add: name, affinity, maps and desired state", test_service_add },
	{ "backend.add: default weight 1, explicit weights", test_backend_add },
	{ "backend.set: weights 0, 1000, unchanged", test_backend_set },
	{ "backend.del and service.del", test_backend_del_service_del },
	{ "apply: summaries, maps hold the config", test_apply },
	{ "reload: --config re-read; invalid; no --config", test_reload },
	{ "health: every backend, unchecked without a check", test_health_list },
	{ "status: fields and counters", test_status },
	{ "bad requests: status 2, nothing changes", test_bad_requests },
	{ "failed requests: status 1, nothing changes", test_failures },
	{ "apply of an invalid config: position, nothing changes", test_apply_invalid },
	{ "more active backends than Maglev slots: refused", test_maglev_too_small },
	{ "docs/api.md's example replies", test_docs_examples },
	{ "state file: saved, reads back as the desired state", test_state_file },
	{ "restart: same state, nothing republished", test_restart },
	{ "restore: state vs --config vs maps", test_restore_sources },
	{ "restore: no state, no config: the maps are adopted", test_adopt_maps },
	{ "restore: no state, no config: the pinned policy is kept", test_policy_kept_from_pins },
	{ "restore: adopted name the config refuses", test_adopt_unwritable_name },
	{ "state file: http path with a quote and a backslash", test_state_file_http_path },
	{ "health: down across a restart keeps weight 0", test_health_weights },
	{ "health: a changed check and the weights in the maps", test_health_check_changed },
	{ "reload without --config: counted as failed", test_reload_without_config_counted },
	{ "strings with a NUL inside: refused", test_nul_in_strings },
	{ "policy: endpoint.add, endpoint.list, endpoint.del", test_policy_endpoints },
	{ "policy: policy.add, policy.list, policy.set, policy.del", test_policy_rules },
	{ "policy: no rule id past 2147483647", test_policy_last_rule_id },
	{ "policy: policy.drops", test_policy_drops },
	{ "policy: bad and refused requests change nothing", test_policy_refusals },
	{ "policy: apply publishes a config's policy, or keeps the old one", test_apply_policy },
};

int main(int argc, char **argv)
{
	int ret;

	/* The agent logs each change at info: keep the results readable. */
	log_set_level(LOG_WARN);
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(state_path, sizeof(state_path), "%s/sluiced.state.yaml", tmp_dir);
	snprintf(state_tmp, sizeof(state_tmp), "%s.tmp", state_path);
	snprintf(config_path, sizeof(config_path), "%s/sluice.yaml", tmp_dir);
	ret = run_tests(cases, ARRAY_SIZE(cases), argc > 1 ? argv[1] : NULL, "bpf/agent");
	agent_stop();
	if (skel)
		xdp_lb__destroy(skel);
	unlink(state_path);
	unlink(state_tmp);
	unlink(config_path);
	rmdir(tmp_dir);
	return ret;
}
