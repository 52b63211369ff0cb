/* Publishing a compiled policy (policy_maps.h): write a generation, switch
 * to it, remove the one before. Every entry of the generational maps
 * carries its generation right after the LPM prefix length (or first, in
 * sl_pol_dst), which is what the purge walks on. */
#define _GNU_SOURCE /* setns */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "hash.h"
#include "policy_maps.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* Where the generation sits in each generational map's key. */
struct gen_map {
	int fd;
	size_t key_size;
	size_t gen_off;
};

#define GEN_MAPS 6

static int gen_maps(const struct lb_maps *maps, struct gen_map out[GEN_MAPS])
{
	const struct gen_map all[GEN_MAPS] = {
		{ maps->ipcache4, sizeof(struct sl_ipcache4_key),
		  offsetof(struct sl_ipcache4_key, gen) },
		{ maps->ipcache6, sizeof(struct sl_ipcache6_key),
		  offsetof(struct sl_ipcache6_key, gen) },
		{ maps->pol_allow, sizeof(struct sl_pol_key), offsetof(struct sl_pol_key, gen) },
		{ maps->pol_deny, sizeof(struct sl_pol_key), offsetof(struct sl_pol_key, gen) },
		{ maps->pol_dst, sizeof(struct sl_pol_dst_key),
		  offsetof(struct sl_pol_dst_key, gen) },
		{ maps->pol_netns, sizeof(struct sl_pol_netns_key),
		  offsetof(struct sl_pol_netns_key, gen) },
	};

	memcpy(out, all, sizeof(all));
	return GEN_MAPS;
}

/* Remove every key of map @fd (@key_size bytes) that @doomed picks. Keys
 * are collected first: an LPM trie's next-key walk restarts when the key
 * it continues from is gone (a hash's too). Returns 0 or -errno. */
static int purge_keys(int fd, size_t key_size, bool (*doomed)(const void *key, const void *ctx),
		      const void *ctx)
{
	unsigned char cur[64], next[64];
	unsigned char *keys = NULL, *grown;
	size_t n = 0, cap = 0;
	void *prev = NULL;
	int err = 0;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(cur, next, key_size);
		prev = cur;
		if (!doomed(cur, ctx))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			grown = realloc(keys, cap * key_size);
			if (!grown) {
				err = -ENOMEM;
				goto free_keys;
			}
			keys = grown;
		}
		memcpy(keys + n++ * key_size, cur, key_size);
	}
	for (size_t i = 0; i < n; i++) {
		if (bpf_map_delete_elem(fd, keys + i * key_size) && errno != ENOENT && !err)
			err = -errno;
	}
free_keys:
	free(keys);
	return err;
}

struct gen_keep {
	size_t gen_off;
	uint32_t keep;
};

static bool other_gen(const void *key, const void *ctx)
{
	const struct gen_keep *k = ctx;
	uint32_t gen;

	memcpy(&gen, (const unsigned char *)key + k->gen_off, sizeof(gen));
	return gen != k->keep;
}

/* Remove every entry of @m whose generation is not @keep. */
static int purge_other_gens(const struct gen_map *m, uint32_t keep)
{
	struct gen_keep k = { .gen_off = m->gen_off, .keep = keep };

	return purge_keys(m->fd, m->key_size, other_gen, &k);
}

static int write_ipcache(const struct lb_maps *maps, const struct pol_ipcache_entry *e,
			 uint32_t gen)
{
	if (e->prefix.family == SL_AF_INET) {
		struct sl_ipcache4_key key = { .prefixlen =
						       SL_IPCACHE_GEN_BITS + e->prefix.prefixlen,
					       .gen = gen,
					       .addr = e->prefix.addr[0] };

		return bpf_map_update_elem(maps->ipcache4, &key, &e->identity, BPF_ANY) ? -errno
											: 0;
	}
	struct sl_ipcache6_key key = { .prefixlen = SL_IPCACHE_GEN_BITS + e->prefix.prefixlen,
				       .gen = gen };

	memcpy(key.addr, e->prefix.addr, sizeof(key.addr));
	return bpf_map_update_elem(maps->ipcache6, &key, &e->identity, BPF_ANY) ? -errno : 0;
}

static int write_rule(const struct lb_maps *maps, const struct pol_rule_entry *e, uint32_t gen)
{
	int fd = e->action == POL_DENY ? maps->pol_deny : maps->pol_allow;
	struct sl_pol_rule value = { .rule_id = e->rule_id };
	struct sl_pol_key key = e->key;

	key.gen = gen;
	return bpf_map_update_elem(fd, &key, &value, BPF_ANY) ? -errno : 0;
}

static int write_dst(const struct lb_maps *maps, const struct pol_dst_entry *e, uint32_t gen)
{
	struct sl_pol_dst_key key = { .gen = gen, .dst_id = e->dst_id };
	struct sl_pol_dst value = { .flags = e->flags };

	return bpf_map_update_elem(maps->pol_dst, &key, &value, BPF_ANY) ? -errno : 0;
}

static int write_netns(const struct lb_maps *maps, const struct pol_netns_entry *e, uint64_t cookie,
		       uint32_t gen)
{
	struct sl_pol_netns_key key = { .cookie = cookie, .gen = gen };

	return bpf_map_update_elem(maps->pol_netns, &key, &e->addrs, BPF_ANY) ? -errno : 0;
}

/* Every entry of generation @gen (@cookies: those of c->netns). Returns 0
 * or the first -errno; @what names the map that refused. */
static int write_generation(const struct lb_maps *maps, const struct pol_compiled *c,
			    const uint64_t *cookies, uint32_t gen, const char **what)
{
	int err = 0;

	*what = "sl_ipcache";
	for (size_t i = 0; !err && i < c->n_ipcache; i++)
		err = write_ipcache(maps, &c->ipcache[i], gen);
	if (!err)
		*what = "sl_pol_allow/sl_pol_deny";
	for (size_t i = 0; !err && i < c->n_rules; i++)
		err = write_rule(maps, &c->rules[i], gen);
	if (!err)
		*what = "sl_pol_dst";
	for (size_t i = 0; !err && i < c->n_dsts; i++)
		err = write_dst(maps, &c->dsts[i], gen);
	if (!err)
		*what = "sl_pol_netns";
	for (size_t i = 0; !err && i < c->n_netns; i++)
		err = write_netns(maps, &c->netns[i], cookies[i], gen);
	return err;
}

/* Remove every generational entry except those of @keep. */
static int purge_generations(const struct lb_maps *maps, uint32_t keep)
{
	struct gen_map m[GEN_MAPS];
	int n = gen_maps(maps, m), err = 0, ret;

	for (int i = 0; i < n; i++) {
		ret = purge_other_gens(&m[i], keep);
		if (ret && !err)
			err = ret;
	}
	return err;
}

int pol_netns_cookie(const char *path, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);
	int self, target, sock = -1, err = 0;

	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0) {
		err = -errno;
		goto close_self;
	}
	/* A socket belongs to the namespace it was made in: make one there. */
	if (setns(target, CLONE_NEWNET)) {
		err = -errno;
		goto close_target;
	}
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		err = -errno;
	if (setns(self, CLONE_NEWNET) && !err)
		err = -errno;
	if (!err && getsockopt(sock, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		err = -errno;
	if (sock >= 0)
		close(sock);
close_target:
	close(target);
close_self:
	close(self);
	return err;
}

/* The namespaces of @c, as cookie -> addresses. */
static int resolve_netns(const struct pol_compiled *c, uint64_t *cookies, char *err, size_t errlen)
{
	int ret;

	for (size_t i = 0; i < c->n_netns; i++) {
		ret = pol_netns_cookie(c->netns[i].path, &cookies[i]);
		if (ret) {
			snprintf(err, errlen, "endpoint netns %s: %s", c->netns[i].path,
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int state_read(const struct lb_maps *maps, struct sl_pol_state *st)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(maps->pol_gen, &zero, st) ? -errno : 0;
}

int pol_gen_read(const struct lb_maps *maps, uint32_t *gen)
{
	struct sl_pol_state st;
	int err = state_read(maps, &st);

	if (!err)
		*gen = st.gen;
	return err;
}

#define FNV_FIELD(h, v) hash_fnv1a((h), &(v), sizeof(v))

/* What generation @c with namespaces @cookies holds, field by field (no
 * struct padding): equal digests, equal policies. */
static uint64_t compiled_digest(const struct pol_compiled *c, const uint64_t *cookies)
{
	uint64_t h = HASH_FNV_OFFSET;

	for (size_t i = 0; i < c->n_ipcache; i++) {
		const struct pol_ipcache_entry *e = &c->ipcache[i];

		h = hash_fnv1a(h, e->prefix.addr, sizeof(e->prefix.addr));
		h = FNV_FIELD(FNV_FIELD(FNV_FIELD(h, e->prefix.family), e->prefix.prefixlen),
			      e->identity);
	}
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct pol_rule_entry *e = &c->rules[i];

		h = hash_fnv1a(h, &e->key, sizeof(e->key)); /* explicit padding, zeroed */
		h = FNV_FIELD(FNV_FIELD(h, e->rule_id), e->action);
	}
	for (size_t i = 0; i < c->n_dsts; i++)
		h = FNV_FIELD(FNV_FIELD(h, c->dsts[i].dst_id), c->dsts[i].flags);
	for (size_t i = 0; i < c->n_netns; i++)
		h = FNV_FIELD(hash_fnv1a(h, &c->netns[i].addrs, sizeof(c->netns[i].addrs)),
			      cookies[i]);
	return h;
}

static bool compiled_empty(const struct pol_compiled *c)
{
	return !c->n_ipcache && !c->n_rules && !c->n_dsts && !c->n_netns;
}

#define PURGE_DELAY_US 2000

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct rule_ids {
	uint32_t *ids; /* sorted */
	size_t n;
};

static bool rule_gone(const void *key, const void *ctx)
{
	const struct rule_ids *r = ctx;

	return !bsearch(key, r->ids, r->n, sizeof(*r->ids), cmp_u32);
}

/* Drop the denial counters of rules @c no longer has: an id used again
 * later must not inherit them. Best effort: a failure leaves counters. */
static void forget_rule_counters(const struct lb_maps *maps, const struct pol_compiled *c)
{
	struct rule_ids r = { .ids = malloc((c->n_rules + 1) * sizeof(*r.ids)), .n = c->n_rules };

	if (!r.ids)
		return;
	for (size_t i = 0; i < c->n_rules; i++)
		r.ids[i] = c->rules[i].rule_id;
	qsort(r.ids, r.n, sizeof(*r.ids), cmp_u32);
	purge_keys(maps->pol_rule_st, sizeof(__u32), rule_gone, &r);
	free(r.ids);
}

/* The switch: from here on the data path enforces @gen. */
static int gen_switch(const struct lb_maps *maps, uint32_t gen, uint64_t digest)
{
	struct sl_pol_state st = { .gen = gen, .digest = digest };
	__u32 zero = 0;

	return bpf_map_update_elem(maps->pol_gen, &zero, &st, BPF_ANY) ? -errno : 0;
}

int pol_publish(const struct lb_maps *maps, const struct pol_compiled *c, uint32_t *gen, char *err,
		size_t errlen)
{
	uint64_t *cookies = calloc(c->n_netns + 1, sizeof(*cookies));
	const char *what = "policy maps";
	struct sl_pol_state st = {};
	uint32_t old, next;
	uint64_t digest;
	int ret;

	if (!cookies) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = state_read(maps, &st);
	if (ret) {
		snprintf(err, errlen, "reading sl_pol_gen: %s", strerror(-ret));
		goto free_cookies;
	}
	old = *gen = st.gen;
	if (!old && compiled_empty(c))
		goto free_cookies;
	ret = resolve_netns(c, cookies, err, errlen);
	if (ret)
		goto free_cookies;
	digest = compiled_digest(c, cookies);
	if (old && digest == st.digest)
		goto free_cookies; /* enforced already */
	next = old + 1 ? old + 1 : 1; /* 0 means "no policy" */
	/* Leftovers of a publication that died half-way share no generation
	 * with anything enforced: clear them before writing over them. */
	ret = purge_generations(maps, old);
	if (!ret)
		ret = write_generation(maps, c, cookies, next, &what);
	if (ret) {
		snprintf(err, errlen, "writing policy generation %u (%s): %s", next, what,
			 strerror(-ret));
		purge_generations(maps, old);
		goto free_cookies;
	}
	ret = gen_switch(maps, next, digest);
	if (ret) {
		snprintf(err, errlen, "switching to policy generation %u: %s", next,
			 strerror(-ret));
		purge_generations(maps, old);
		goto free_cookies;
	}
	*gen = next;
	/* A program that read the old generation just before the switch may
	 * still be looking it up: give it time to finish (programs run for
	 * microseconds) before its entries go. A failure to remove them
	 * costs map room until the next publication purges them. */
	usleep(PURGE_DELAY_US);
	purge_generations(maps, next);
	forget_rule_counters(maps, c);
free_cookies:
	free(cookies);
	return ret;
}

int pol_stats_read(const struct lb_maps *maps, uint64_t out[SL_POL_ST_MAX])
{
	int err = 0;

	for (__u32 i = 0; !err && i < SL_POL_ST_MAX; i++)
		err = lb_read_counter(maps->pol_st, i, (__u64 *)&out[i]);
	return err;
}

int pol_rule_denials(const struct lb_maps *maps, uint32_t rule_id, uint64_t *count)
{
	int err = lb_read_counter(maps->pol_rule_st, rule_id, (__u64 *)count);

	if (err == -ENOENT) {
		*count = 0;
		return 0;
	}
	return err;
}
