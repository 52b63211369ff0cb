/* Tests of the migration of pinned maps across an upgrade (user/lib/
 * migrate.c, driven by loader_lb_load() and sluiced's migrate_finish()):
 * pins left by a build whose maps had other sizes or flags are set aside
 * as NAME_old, copied into the new maps and removed, keeping every
 * service, backend, table, counter and flow; a layout or Maglev size
 * change is refused and leaves the pins as they were. Each case works in
 * a pin directory of its own under /sys/fs/bpf, removed at its end.
 * Usage: test_migrate [name-substring]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "harness.h"
#include "lb_fixture.h"
#include "lb.h"
#include "loader.h"
#include "log.h"
#include "migrate.h"
#include "sluice/conntrack.h"
#include "sluice/limits.h"
#include "xdp_lb.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MAGLEV_SIZE 251 /* small and prime: tables are read slot by slot */
#define CT_SIZE 4096
#define PREV_BACKENDS 65536 /* sl_be and sl_be_st of the previous build */
#define HIGH_ID (PREV_BACKENDS - 1) /* the last backend id it had */
#define PREV_SERVICES (SL_MAX_SERVICES / 2) /* its sl_maglev */
#define N_SVC 2
#define LIST_MAX 8 /* backends a service has in these cases */
#define SNAP_MAX 160 /* conntrack entries a snapshot holds */
#define LB_MAPS_MAX 48 /* >= the maps lb_map_name() names */

static int ncpus; /* possible CPUs: per-CPU values and LRU lists */
static int n_dirs;

/* Counter slots written before an upgrade and read after: the library's
 * backend ids (it allocates the lowest free ones) and HIGH_ID. */
static const __u32 counter_ids[] = { 1, 2, 3, 4, 5, HIGH_ID };

static const char *say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* printf into one of four rotating buffers: a check's name. */
static const char *say(const char *fmt, ...)
{
	static char buf[4][512];
	static int next;
	char *out = buf[next++ % 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, sizeof(buf[0]), fmt, ap);
	va_end(ap);
	return out;
}

/* ---- a pin directory and the LB loaded over it ---- */

struct env {
	char dir[64]; /* /sys/fs/bpf/sluice_migtest_<pid>_<n> */
	struct xdp_lb *skel;
	struct lb_maps maps; /* the skeleton's: valid while it is loaded */
};

/* A fresh, empty pin directory: /sys/fs/bpf/sluice_migtest_<pid>_<n>. */
static bool env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/sys/fs/bpf/sluice_migtest_%d_%d", (int)getpid(),
		 ++n_dirs);
	return ASSERT_OK(mkdir(e->dir, 0700) ? -errno : 0, say("mkdir %s", e->dir));
}

/* Load the LB over the directory as sluiced does (maps pinned there,
 * pins of another size migrated). */
static bool env_load(struct env *e, __u32 ct_size)
{
	struct loader_opts opts = {
		.maglev_size = MAGLEV_SIZE, .ct_size = ct_size, .version = 1, .pin_dir = e->dir
	};

	e->skel = loader_lb_load(&opts, &e->maps);
	return ASSERT_TRUE(e->skel, say("loader_lb_load, ct size %u: %s", ct_size,
					e->skel ? "ok" : strerror(errno)));
}

/* Load expecting a refusal: NULL with errno @want. */
static void env_load_fails(struct env *e, __u32 maglev_size, __u32 ct_size, int want,
			   const char *what)
{
	struct loader_opts opts = {
		.maglev_size = maglev_size, .ct_size = ct_size, .version = 1, .pin_dir = e->dir
	};
	struct lb_maps maps;
	struct xdp_lb *skel = loader_lb_load(&opts, &maps);
	int err = skel ? 0 : errno;

	if (skel)
		xdp_lb__destroy(skel);
	ASSERT_EQ(err, want, say("%s: loader_lb_load errno (%s)", what, strerror(err)));
}

/* Unload, as a stopped agent: the pins stay. */
static void env_unload(struct env *e)
{
	if (e->skel)
		xdp_lb__destroy(e->skel);
	e->skel = NULL;
}

/* Unload and remove every pin and the directory, whatever the case left. */
static void env_fini(struct env *e)
{
	env_unload(e);
	if (!e->dir[0])
		return;
	ASSERT_OK(loader_cleanup(e->dir), say("remove %s", e->dir));
	ASSERT_TRUE(access(e->dir, F_OK) && errno == ENOENT, say("%s is gone", e->dir));
}

/* ---- pins ---- */

/* fd of the object pinned as @name, or -errno. */
static int pin_get(const struct env *e, const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", e->dir, name);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static bool pin_exists(const struct env *e, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", e->dir, name);
	return access(path, F_OK) == 0;
}

/* Pin @fd as @name in place of what was pinned there. */
static int pin_swap(const struct env *e, const char *name, int fd)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", e->dir, name);
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return bpf_obj_pin(fd, path) ? -errno : 0;
}

static int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, len);
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

static __u32 fd_id(int fd)
{
	struct bpf_map_info info;

	return map_info(fd, &info) ? 0 : info.id;
}

/* Info of the map pinned as @name; all zero (id 0) when there is none. */
static void pin_info(const struct env *e, const char *name, struct bpf_map_info *info)
{
	int fd = pin_get(e, name);

	memset(info, 0, sizeof(*info));
	if (fd >= 0) {
		map_info(fd, info);
		close(fd);
	}
}

static __u32 pin_id(const struct env *e, const char *name)
{
	struct bpf_map_info info;

	pin_info(e, name, &info);
	return info.id;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The names pinned in @e's directory (only those ending in @suffix if not
 * NULL), sorted and space-separated in @out. Returns how many. */
static int pins_list(const struct env *e, const char *suffix, char *out, size_t size)
{
	char names[32][NAME_MAX + 1];
	size_t n = 0, len, slen = suffix ? strlen(suffix) : 0;
	DIR *d = opendir(e->dir);
	struct dirent *entry;

	out[0] = '\0';
	while (d && n < ARRAY_SIZE(names) && (entry = readdir(d))) {
		len = strlen(entry->d_name);
		if (entry->d_name[0] == '.' ||
		    (suffix && (len <= slen || strcmp(entry->d_name + len - slen, suffix))))
			continue;
		snprintf(names[n++], sizeof(names[0]), "%s", entry->d_name);
	}
	if (d)
		closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? " " : "", names[i]);
	return (int)n;
}

/* The directory's NAME_old pins are exactly @want ("" for none). */
static bool expect_old_pins(const struct env *e, const char *want, const char *what)
{
	char got[512];

	pins_list(e, "_old", got, sizeof(got));
	return ASSERT_TRUE(!strcmp(got, want),
			   say("%s: _old pins [%s], want [%s]", what, got, want));
}

/* ---- maps as a previous build left them ---- */

/* Bytes of one value as lookups move it: per-CPU maps give one 8-byte
 * aligned copy per possible CPU. */
static size_t value_bytes(const struct bpf_map_info *info)
{
	bool percpu = info->type == BPF_MAP_TYPE_PERCPU_ARRAY ||
		      info->type == BPF_MAP_TYPE_PERCPU_HASH ||
		      info->type == BPF_MAP_TYPE_LRU_PERCPU_HASH;

	return percpu ? (size_t)((info->value_size + 7) & ~7u) * ncpus : info->value_size;
}

/* An empty Maglev table: the inner-map template of an sl_maglev. */
static int maglev_table(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sl_maglev_tpl", sizeof(__u32), sizeof(__u32),
				MAGLEV_SIZE, &opts);

	return fd < 0 ? -errno : fd;
}

/* A map of @info's type, name and key with @value_size, @max_entries and
 * @flags. Returns its fd or -errno. */
static int map_like(const struct bpf_map_info *info, __u32 value_size, __u32 max_entries,
		    __u32 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	int inner = -1, fd;

	if (info->type == BPF_MAP_TYPE_ARRAY_OF_MAPS) {
		inner = maglev_table();
		if (inner < 0)
			return inner;
		opts.inner_map_fd = inner;
	}
	fd = bpf_map_create(info->type, info->name, info->key_size, value_size, max_entries, &opts);
	fd = fd < 0 ? -errno : fd;
	if (inner >= 0)
		close(inner);
	return fd;
}

/* Every entry of @from that fits into @to (@max_entries of them for an
 * array), one syscall at a time: an oracle independent of migrate.c's
 * batches. A map of maps reads back ids and takes fds. */
static int copy_entries(int from, int to, const struct bpf_map_info *info, __u32 max_entries)
{
	bool of_maps = info->type == BPF_MAP_TYPE_ARRAY_OF_MAPS;
	bool indexed = of_maps || info->type == BPF_MAP_TYPE_ARRAY ||
		       info->type == BPF_MAP_TYPE_PERCPU_ARRAY;
	char key[64], next[64];
	void *value = calloc(1, value_bytes(info)), *prev = NULL;
	int err = value ? 0 : -ENOMEM, fd = -1;

	while (!err && !bpf_map_get_next_key(from, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		if (indexed && *(__u32 *)key >= max_entries)
			break; /* arrays walk their indexes in order */
		if (bpf_map_lookup_elem(from, key, value))
			continue; /* an empty slot of a map of maps */
		if (of_maps) {
			fd = bpf_map_get_fd_by_id(*(__u32 *)value);
			if (fd < 0) {
				err = -errno;
				break;
			}
			*(__u32 *)value = fd;
		}
		if (bpf_map_update_elem(to, key, value, BPF_ANY))
			err = -errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	free(value);
	return err;
}

/* Replace the map pinned as @name by one a previous build would have left:
 * the same type, key and value, @max_entries entries and @flags, holding
 * every entry that fits. Returns the new map's id, 0 after a failed check. */
static __u32 repin(const struct env *e, const char *name, __u32 max_entries, __u32 flags)
{
	int from = pin_get(e, name), to = -1;
	struct bpf_map_info info;
	__u32 id = 0;

	if (ASSERT_GE(from, 0, say("open the pinned %s", name)) &&
	    ASSERT_OK(map_info(from, &info), say("%s info", name))) {
		to = map_like(&info, info.value_size, max_entries, flags);
		if (ASSERT_GE(to, 0, say("create the previous build's %s", name)) &&
		    ASSERT_OK(copy_entries(from, to, &info, max_entries), say("copy %s", name)) &&
		    ASSERT_OK(pin_swap(e, name, to), say("pin the previous build's %s", name)))
			id = fd_id(to);
	}
	if (from >= 0)
		close(from);
	if (to >= 0)
		close(to);
	return id;
}

/* Replace the map pinned as @name by an empty one whose value has
 * @value_size bytes: a layout this build does not know. Returns its id. */
static __u32 repin_layout(const struct env *e, const char *name, __u32 value_size)
{
	int from = pin_get(e, name), to = -1;
	struct bpf_map_info info;
	__u32 id = 0;

	if (ASSERT_GE(from, 0, say("open the pinned %s", name)) &&
	    ASSERT_OK(map_info(from, &info), say("%s info", name))) {
		to = map_like(&info, value_size, info.max_entries, info.map_flags);
		if (ASSERT_GE(to, 0, say("create %s with %u-byte values", name, value_size)) &&
		    ASSERT_OK(pin_swap(e, name, to), say("pin the other %s", name)))
			id = fd_id(to);
	}
	if (from >= 0)
		close(from);
	if (to >= 0)
		close(to);
	return id;
}

/* ---- LB state: services, backends, tables, counters ---- */

struct be_list {
	__u32 n, id[LIST_MAX];
	struct sl_backend be[LIST_MAX];
};

struct lb_state {
	struct sl_svc svc[N_SVC];
	struct be_list backends[N_SVC]; /* as lb_backend_foreach() lists them */
	__u32 maglev_id[N_SVC]; /* inner map id in sl_maglev */
	__u32 table[N_SVC][MAGLEV_SIZE];
	__u32 ct4, ct6;
	struct sl_backend *be; /* every sl_be slot */
};

static struct sl_svc_key svc_key(int i)
{
	return i ? key_of("fd00:ff::10", 53, IPPROTO_UDP) : key_of("198.19.0.10", 80, IPPROTO_TCP);
}

/* The per-CPU value the cases write at @id: different on each CPU. */
static struct sl_traffic traffic_of(__u32 id, int cpu)
{
	return (struct sl_traffic){ id, cpu + 1, (__u64)id << 20 | cpu, 7, 42 };
}

static bool traffic_write(int fd, __u32 id)
{
	struct sl_traffic *v = calloc(ncpus, sizeof(*v));
	int err = v ? 0 : -ENOMEM;

	for (int cpu = 0; v && cpu < ncpus; cpu++)
		v[cpu] = traffic_of(id, cpu);
	if (!err && bpf_map_update_elem(fd, &id, v, BPF_EXIST))
		err = -errno;
	free(v);
	return ASSERT_OK(err, say("write counters at %u", id));
}

/* Every CPU's counters at @id are what traffic_write() wrote (or zero). */
static void traffic_expect(int fd, __u32 id, bool written, const char *what)
{
	struct sl_traffic *got = calloc(ncpus, sizeof(*got)), *want = calloc(ncpus, sizeof(*want));
	size_t len = ncpus * sizeof(*got);

	for (int cpu = 0; want && written && cpu < ncpus; cpu++)
		want[cpu] = traffic_of(id, cpu);
	if (ASSERT_TRUE(got && want, "calloc") &&
	    ASSERT_OK(bpf_map_lookup_elem(fd, &id, got) ? -errno : 0,
		      say("%s: read counters at %u", what, id)))
		ASSERT_BYTES(want, len, got, len, say("%s: per-CPU counters at %u", what, id));
	free(got);
	free(want);
}

/* Two services with five backends through the library, a sixth written at
 * HIGH_ID as a previous build could have allocated it, counters at every
 * backend and service id, and a few flows. */
static bool lb_populate(struct env *e)
{
	static const struct {
		int svc;
		const char *ip;
		uint16_t port;
		__u32 weight;
	} bes[] = {
		{ 0, "198.18.1.2", 8080, 1 },	 { 0, "198.18.1.3", 8080, 2 },
		{ 0, "198.18.1.4", 8080, 0 },	 { 1, "fd00:0:0:1::2", 5353, 1 },
		{ 1, "fd00:0:0:1::3", 5353, 3 },
	};
	struct sl_backend high = { .port = htons(9090), .family = SL_AF_INET6, .weight = 4 };
	struct sl_svc want = { .name = "web" }, got = {};
	struct sl_svc_key key;
	struct addr_port ap;
	__u32 id = HIGH_ID;
	bool ok = true;

	for (int i = 0; ok && i < N_SVC; i++) {
		key = svc_key(i);
		ok = ASSERT_OK(lb_service_add(&e->maps, &key, &want), "lb_service_add");
	}
	for (size_t i = 0; ok && i < ARRAY_SIZE(bes); i++) {
		key = svc_key(bes[i].svc);
		ap = ep(bes[i].ip, bes[i].port);
		ok = ASSERT_OK(lb_backend_add(&e->maps, &key, &ap, bes[i].weight),
			       say("lb_backend_add %s", bes[i].ip));
	}
	key = svc_key(1);
	ok = ok && ASSERT_OK(lb_service_get(&e->maps, &key, &got), "lb_service_get");
	addr_words("fd00:0:0:9::9", high.addr);
	high.svc_id = got.id;
	high.flags = SL_BE_IN_USE;
	ok = ok && ASSERT_OK(bpf_map_update_elem(e->maps.be, &id, &high, BPF_EXIST) ? -errno : 0,
			     "write sl_be[HIGH_ID]");
	for (size_t i = 0; ok && i < ARRAY_SIZE(counter_ids); i++)
		ok = traffic_write(e->maps.be_st, counter_ids[i]);
	for (__u32 svc = 1; ok && svc <= N_SVC; svc++)
		ok = traffic_write(e->maps.svc_st, svc);
	return ok && ASSERT_OK(ct4_put(e->maps.ct4, 1, 10), "ct4 entries") &&
	       ASSERT_OK(ct6_put(e->maps.ct6, 2, 4), "ct6 entries");
}

/* All @n slots of array @fd (not per-CPU) into @values. */
static int array_read(int fd, __u32 n, void *values)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys = calloc(n, sizeof(*keys)), count = n, out;
	int err = keys ? 0 : -ENOMEM;

	if (!err && bpf_map_lookup_batch(fd, NULL, &out, keys, values, &count, &opts) &&
	    errno != ENOENT)
		err = -errno;
	if (!err && count != n)
		err = -EIO;
	free(keys);
	return err;
}

static int list_backend(__u32 id, const struct sl_backend *be, void *ctx)
{
	struct be_list *l = ctx;

	if (l->n == LIST_MAX)
		return -E2BIG;
	l->id[l->n] = id;
	l->be[l->n++] = *be;
	return 0;
}

static bool table_read(__u32 inner_id, __u32 *table)
{
	int fd = bpf_map_get_fd_by_id(inner_id);
	bool ok = ASSERT_GE(fd, 0, say("open Maglev table %u", inner_id));

	for (__u32 slot = 0; ok && slot < MAGLEV_SIZE; slot++)
		ok = ASSERT_OK(bpf_map_lookup_elem(fd, &slot, &table[slot]) ? -errno : 0,
			       "read a Maglev slot");
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Read everything the library shows of the LB into @s (@s->be allocated:
 * the caller frees it). */
static bool state_read(const struct env *e, struct lb_state *s)
{
	struct lb_maps *maps = (struct lb_maps *)&e->maps;
	struct sl_svc_key key;
	bool ok;

	memset(s, 0, offsetof(struct lb_state, be));
	s->be = calloc(SL_MAX_BACKENDS, sizeof(*s->be));
	ok = ASSERT_TRUE(s->be, "calloc") &&
	     ASSERT_OK(array_read(maps->be, SL_MAX_BACKENDS, s->be), "read every sl_be slot");
	for (int i = 0; ok && i < N_SVC; i++) {
		key = svc_key(i);
		ok = ASSERT_OK(lb_service_get(maps, &key, &s->svc[i]), "lb_service_get") &&
		     ASSERT_OK(
			     lb_backend_foreach(maps, s->svc[i].id, list_backend, &s->backends[i]),
			     "lb_backend_foreach") &&
		     ASSERT_OK(bpf_map_lookup_elem(maps->maglev, &s->svc[i].id, &s->maglev_id[i])
				       ? -errno
				       : 0,
			       "read the sl_maglev slot") &&
		     table_read(s->maglev_id[i], s->table[i]);
	}
	s->ct4 = map_count(maps->ct4);
	s->ct6 = map_count(maps->ct6);
	return ok;
}

/* @got must equal @want: services, backends, tables, sl_be, flows. */
static void state_expect(const struct lb_state *want, const struct lb_state *got, const char *what)
{
	for (int i = 0; i < N_SVC; i++) {
		ASSERT_BYTES(&want->svc[i], sizeof(want->svc[i]), &got->svc[i], sizeof(got->svc[i]),
			     say("%s: service %d (lb_service_get)", what, i));
		ASSERT_BYTES(&want->backends[i], sizeof(want->backends[i]), &got->backends[i],
			     sizeof(got->backends[i]),
			     say("%s: backends of service %d (lb_backend_foreach)", what, i));
		ASSERT_EQ(got->maglev_id[i], want->maglev_id[i],
			  say("%s: Maglev table of service %d", what, i));
		ASSERT_BYTES(want->table[i], sizeof(want->table[i]), got->table[i],
			     sizeof(got->table[i]), say("%s: Maglev slots of service %d", what, i));
	}
	for (__u32 id = 0; want->be && got->be && id < SL_MAX_BACKENDS; id++) {
		if (memcmp(&want->be[id], &got->be[id], sizeof(got->be[id]))) {
			ASSERT_BYTES(&want->be[id], sizeof(want->be[id]), &got->be[id],
				     sizeof(got->be[id]), say("%s: sl_be[%u]", what, id));
			break;
		}
	}
	ASSERT_EQ(got->ct4, want->ct4, say("%s: sl_ct4 entries", what));
	ASSERT_EQ(got->ct6, want->ct6, say("%s: sl_ct6 entries", what));
}

/* Whether the loaded LB program references map @id. */
static bool prog_uses(const struct env *e, __u32 id)
{
	struct bpf_prog_info info = {};
	__u32 ids[32], len = sizeof(info);

	info.nr_map_ids = ARRAY_SIZE(ids);
	info.map_ids = (__u64)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(bpf_program__fd(e->skel->progs.sl_xdp_lb), &info, &len))
		return false;
	for (__u32 i = 0; i < info.nr_map_ids && i < ARRAY_SIZE(ids); i++) {
		if (ids[i] == id)
			return true;
	}
	return false;
}

/* ---- cases: sizes and flags that changed ---- */

/* After the upgrade of test_backends_grow(): new maps of the new size,
 * used by the program, holding what the old ones held. */
static void grown_expect(const struct env *e, const struct lb_state *before, struct lb_state *after,
			 __u32 be_old, __u32 st_old)
{
	struct bpf_map_info be, st;

	ASSERT_OK(map_info(e->maps.be, &be), "sl_be info");
	ASSERT_OK(map_info(e->maps.be_st, &st), "sl_be_st info");
	ASSERT_EQ(be.max_entries, SL_MAX_BACKENDS, "new sl_be entries");
	ASSERT_EQ(st.max_entries, SL_MAX_BACKENDS, "new sl_be_st entries");
	ASSERT_NEQ(be.id, be_old, "sl_be is a new map");
	ASSERT_EQ(pin_id(e, "sl_be"), be.id, "the sl_be pin is the new map");
	ASSERT_EQ(pin_id(e, "sl_be_st"), st.id, "the sl_be_st pin is the new map");
	ASSERT_TRUE(prog_uses(e, be.id) && !prog_uses(e, be_old), "the program uses the new sl_be");
	if (state_read(e, after))
		state_expect(before, after, "upgraded");
	for (size_t i = 0; i < ARRAY_SIZE(counter_ids); i++)
		traffic_expect(e->maps.be_st, counter_ids[i], true, "sl_be_st");
	traffic_expect(e->maps.be_st, PREV_BACKENDS, false, "sl_be_st past the old size");
	for (__u32 svc = 1; svc <= N_SVC; svc++)
		traffic_expect(e->maps.svc_st, svc, true, "sl_svc_st");
	ASSERT_EQ(pin_id(e, "sl_be_old"), be_old, "sl_be_old is the previous sl_be");
	ASSERT_EQ(pin_id(e, "sl_be_st_old"), st_old, "sl_be_st_old is the previous sl_be_st");
	expect_old_pins(e, "sl_be_old sl_be_st_old", "before migrate_finish");
	ASSERT_OK(migrate_finish(e->dir), "migrate_finish");
	expect_old_pins(e, "", "after migrate_finish");
	ASSERT_EQ(pin_id(e, "sl_be"), be.id, "the sl_be pin after migrate_finish");
}

/* The previous build had 65536 backend slots: its sl_be and sl_be_st are
 * pinned at that size, with a backend at its last id. */
static void test_backends_grow(void)
{
	struct lb_state before = {}, after = {};
	struct bpf_map_info info;
	__u32 be_old, st_old;
	struct env e;

	if (env_init(&e) && env_load(&e, CT_SIZE) && lb_populate(&e) && state_read(&e, &before)) {
		ASSERT_EQ(before.backends[0].n, 3, "service 0 has 3 backends");
		ASSERT_EQ(before.backends[1].n, 3, "service 1 has 3 backends (one at HIGH_ID)");
		env_unload(&e);
		be_old = repin(&e, "sl_be", PREV_BACKENDS, 0);
		st_old = repin(&e, "sl_be_st", PREV_BACKENDS, 0);
		pin_info(&e, "sl_be", &info);
		ASSERT_EQ(info.max_entries, PREV_BACKENDS, "the previous build's sl_be is pinned");
		if (be_old && st_old && env_load(&e, CT_SIZE))
			grown_expect(&e, &before, &after, be_old, st_old);
	}
	free(before.be);
	free(after.be);
	env_fini(&e);
}

/* A previous build preallocated sl_svc (no BPF_F_NO_PREALLOC): only the
 * flags differ, and the hash is copied. */
static void test_service_flags_change(void)
{
	struct lb_state before = {}, after = {};
	struct bpf_map_info info = {};
	struct env e;
	__u32 old;

	if (env_init(&e) && env_load(&e, CT_SIZE) && lb_populate(&e) && state_read(&e, &before)) {
		env_unload(&e);
		old = repin(&e, "sl_svc", SL_MAX_SERVICES, 0);
		if (old && env_load(&e, CT_SIZE)) {
			map_info(e.maps.svc, &info);
			ASSERT_EQ(info.map_flags, BPF_F_NO_PREALLOC, "new sl_svc flags");
			ASSERT_NEQ(info.id, old, "sl_svc is a new map");
			ASSERT_EQ(map_count(e.maps.svc), N_SVC, "sl_svc entries");
			if (state_read(&e, &after))
				state_expect(&before, &after, "sl_svc migrated");
			expect_old_pins(&e, "sl_svc_old", "before migrate_finish");
			ASSERT_OK(migrate_finish(e.dir), "migrate_finish");
			expect_old_pins(&e, "", "after migrate_finish");
		}
	}
	free(before.be);
	free(after.be);
	env_fini(&e);
}

/* A previous build had half the service slots: its sl_maglev (a map of
 * maps) is pinned at that size, its tables must stay published. */
static void test_maglev_outer_grows(void)
{
	struct lb_state before = {}, after = {};
	struct bpf_map_info info = {};
	struct env e;
	__u32 old;

	if (env_init(&e) && env_load(&e, CT_SIZE) && lb_populate(&e) && state_read(&e, &before)) {
		env_unload(&e);
		old = repin(&e, "sl_maglev", PREV_SERVICES, 0);
		if (old && env_load(&e, CT_SIZE)) {
			map_info(e.maps.maglev, &info);
			ASSERT_EQ(info.max_entries, SL_MAX_SERVICES, "new sl_maglev entries");
			if (state_read(&e, &after))
				state_expect(&before, &after, "sl_maglev migrated");
			expect_old_pins(&e, "sl_maglev_old", "before migrate_finish");
			ASSERT_OK(migrate_finish(e.dir), "migrate_finish");
			expect_old_pins(&e, "", "after migrate_finish");
		}
	}
	free(before.be);
	free(after.be);
	env_fini(&e);
}

/* ---- cases: conntrack size ---- */

/* The kernel gives an LRU hash with BPF_F_NO_COMMON_LRU a multiple of the
 * possible CPUs as its size (each CPU's list gets the same share). */
static __u32 lru_entries(__u32 n)
{
	return (n + ncpus - 1) / ncpus * ncpus;
}

struct ct4_snap {
	__u32 n;
	struct {
		struct sl_ct4_key key;
		struct sl_ct_entry value;
	} e[SNAP_MAX];
};

static bool ct4_read(int fd, struct ct4_snap *s)
{
	struct sl_ct4_key key, *prev = NULL;
	bool ok = true;

	memset(s, 0, sizeof(*s));
	while (ok && !bpf_map_get_next_key(fd, prev, &key)) {
		ok = ASSERT_TRUE(s->n < SNAP_MAX, "conntrack snapshot room");
		if (!ok || bpf_map_lookup_elem(fd, &key, &s->e[s->n].value))
			continue;
		s->e[s->n].key = key;
		prev = &s->e[s->n++].key;
	}
	return ok;
}

/* Every entry of @got is one of @want's, same value; with @all, each of
 * @want's is in @got. */
static void ct4_expect(const struct ct4_snap *want, const struct ct4_snap *got, bool all,
		       const char *what)
{
	__u32 i, j;

	for (i = 0; i < got->n; i++) {
		for (j = 0; j < want->n; j++) {
			if (!memcmp(&got->e[i].key, &want->e[j].key, sizeof(got->e[i].key)))
				break;
		}
		if (!ASSERT_TRUE(j < want->n, say("%s: entry %u was in the old map", what, i)))
			continue;
		ASSERT_BYTES(&want->e[j].value, sizeof(want->e[j].value), &got->e[i].value,
			     sizeof(got->e[i].value), say("%s: value of entry %u", what, i));
	}
	if (all)
		ASSERT_EQ(got->n, want->n, say("%s: entries", what));
}

/* Both conntrack maps: new maps of @ct_size (as the kernel sizes them). */
static void ct_size_expect(const struct env *e, __u32 ct_size, const char *what)
{
	struct bpf_map_info ct4, ct6;

	map_info(e->maps.ct4, &ct4);
	map_info(e->maps.ct6, &ct6);
	ASSERT_EQ(ct4.max_entries, lru_entries(ct_size), say("%s: sl_ct4 entries", what));
	ASSERT_EQ(ct6.max_entries, lru_entries(ct_size), say("%s: sl_ct6 entries", what));
	ASSERT_EQ(pin_id(e, "sl_ct4"), ct4.id, say("%s: the sl_ct4 pin is the new map", what));
	ASSERT_EQ(pin_id(e, "sl_ct6"), ct6.id, say("%s: the sl_ct6 pin is the new map", what));
	expect_old_pins(e, "sl_ct4_old sl_ct6_old", say("%s, before migrate_finish", what));
	ASSERT_OK(migrate_finish(e->dir), "migrate_finish");
	expect_old_pins(e, "", say("%s, after migrate_finish", what));
}

/* 105 flows into a 16-entry map: what fits is kept, the load succeeds. */
static void ct_shrink(struct env *e, struct ct4_snap *before, struct ct4_snap *after)
{
	if (!ASSERT_OK(ct4_put(e->maps.ct4, 2, 100), "100 more ct4 entries") ||
	    !ct4_read(e->maps.ct4, before) || !ASSERT_EQ(before->n, 105, "ct4 entries"))
		return;
	env_unload(e);
	if (!env_load(e, 16))
		return;
	ASSERT_TRUE(ct4_read(e->maps.ct4, after), "read the shrunk sl_ct4");
	ASSERT_GE(after->n, 1, "entries kept in the shrunk sl_ct4");
	ASSERT_TRUE(after->n <= lru_entries(16),
		    say("%u entries in the shrunk sl_ct4, at most %u", after->n, lru_entries(16)));
	ct4_expect(before, after, false, "shrunk to 16");
	ct_size_expect(e, 16, "shrunk to 16");
}

/* --ct-size 4096, then 8192, then 16. */
static void test_ct_resize(void)
{
	struct ct4_snap *before = calloc(1, sizeof(*before)), *after = calloc(1, sizeof(*after));
	struct env e = {};

	if (ASSERT_TRUE(before && after, "calloc") && env_init(&e) && env_load(&e, CT_SIZE) &&
	    ASSERT_OK(ct4_put(e.maps.ct4, 1, 5), "5 ct4 entries") &&
	    ASSERT_OK(ct6_put(e.maps.ct6, 1, 3), "3 ct6 entries") && ct4_read(e.maps.ct4, before)) {
		env_unload(&e);
		if (env_load(&e, 8192)) {
			ASSERT_TRUE(ct4_read(e.maps.ct4, after), "read the grown sl_ct4");
			ct4_expect(before, after, true, "grown to 8192");
			ASSERT_EQ(map_count(e.maps.ct6), 3, "grown to 8192: sl_ct6 entries");
			ct_size_expect(&e, 8192, "grown to 8192");
			ct_shrink(&e, before, after);
		}
	}
	free(before);
	free(after);
	env_fini(&e);
}

static bool on_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return ASSERT_OK(sched_setaffinity(0, sizeof(set), &set) ? -errno : 0,
			 say("move to CPU %d", cpu));
}

/* The program writes flows on every CPU, each CPU into its own LRU list
 * (BPF_F_NO_COMMON_LRU). A map grown to hold them all must keep them all,
 * whichever CPU the agent copies them from. */
static void test_ct_flows_of_every_cpu(void)
{
	const __u32 per_cpu = 2000; /* each CPU's list holds 2048 before, 3072 after */
	cpu_set_t all;
	__u32 cpus = 0;
	struct env e = {};
	int first = -1;

	if (!ASSERT_OK(sched_getaffinity(0, sizeof(all), &all) ? -errno : 0, "sched_getaffinity"))
		return;
	if (ncpus < 2 || CPU_COUNT(&all) < 2) {
		printf("#   one CPU: every flow is on one list\n");
		return;
	}
	if (env_init(&e) && env_load(&e, 2048 * ncpus)) {
		for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
			if (!CPU_ISSET(cpu, &all) || !on_cpu(cpu))
				continue;
			first = first < 0 ? cpu : first;
			cpus += ASSERT_OK(ct4_put(e.maps.ct4, 10 + cpu, per_cpu),
					  say("flows on CPU %d", cpu));
		}
		sched_setaffinity(0, sizeof(all), &all);
		ASSERT_EQ(map_count(e.maps.ct4), per_cpu * cpus, "flows before the upgrade");
		env_unload(&e);
		if (first >= 0 && on_cpu(first) && env_load(&e, 3072 * ncpus)) {
			ASSERT_EQ(map_count(e.maps.ct4), per_cpu * cpus,
				  say("flows after growing sl_ct4 to %u", 3072 * ncpus));
			ASSERT_OK(migrate_finish(e.dir), "migrate_finish");
		}
		sched_setaffinity(0, sizeof(all), &all);
	}
	env_fini(&e);
}

/* ---- cases: refused changes ---- */

/* An sl_svc whose value is 4 bytes: no converter, refused by name. */
static void test_layout_change_refused(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	struct sl_svc_key key = svc_key(0);
	__u32 value = 0x5eed, got = 0, id = 0;
	char pins[512];
	struct env e;
	int fd = -1;

	if (env_init(&e)) {
		fd = bpf_map_create(BPF_MAP_TYPE_HASH, "sl_svc", sizeof(key), sizeof(value),
				    SL_MAX_SERVICES, &opts);
		if (ASSERT_GE(fd, 0, "create an sl_svc with 4-byte values") &&
		    ASSERT_OK(bpf_map_update_elem(fd, &key, &value, BPF_ANY) ? -errno : 0,
			      "one entry") &&
		    ASSERT_OK(pin_swap(&e, "sl_svc", fd), "pin it"))
			id = fd_id(fd);
	}
	if (id) {
		env_load_fails(&e, MAGLEV_SIZE, CT_SIZE, EPROTO, "sl_svc with 4-byte values");
		ASSERT_EQ(pin_id(&e, "sl_svc"), id, "the sl_svc pin is untouched");
		ASSERT_OK(bpf_map_lookup_elem(fd, &key, &got) ? -errno : 0, "read its entry");
		ASSERT_EQ(got, value, "its entry");
		expect_old_pins(&e, "", "after the refusal");
		ASSERT_EQ(pins_list(&e, NULL, pins, sizeof(pins)), 1,
			  say("nothing else pinned: [%s]", pins));
	}
	if (fd >= 0)
		close(fd);
	env_fini(&e);
}

/* sl_be of another size comes before sl_be_st of another layout in the
 * object: the refusal must not leave sl_be set aside as sl_be_old. */
static void test_layout_change_after_size_change(void)
{
	struct lb_maps maps;
	__u32 be_old, st;
	struct env e;

	if (env_init(&e) && env_load(&e, CT_SIZE) && lb_populate(&e)) {
		env_unload(&e);
		be_old = repin(&e, "sl_be", PREV_BACKENDS, 0);
		st = repin_layout(&e, "sl_be_st", sizeof(struct sl_traffic) - 8);
		if (be_old && st) {
			env_load_fails(&e, MAGLEV_SIZE, CT_SIZE, EPROTO,
				       "sl_be_st with 32-byte values");
			ASSERT_EQ(pin_id(&e, "sl_be"), be_old, "sl_be still pinned as sl_be");
			ASSERT_EQ(pin_id(&e, "sl_be_st"), st, "sl_be_st still pinned as sl_be_st");
			expect_old_pins(&e, "", "after the refusal");
			if (ASSERT_OK(lb_maps_open_pinned(&maps, e.dir),
				      "the CLI still opens the pinned maps"))
				lb_maps_close(&maps);
		}
	}
	env_fini(&e);
}

/* A load that fails after migrate_prepare() (here: a conntrack map the
 * kernel refuses to create, as an --ct-size too big for memory would be)
 * must leave the pins where the running data path and the CLI find them. */
static void test_failed_load_keeps_pins(void)
{
	struct lb_maps maps;
	__u32 ct4, ct6;
	struct env e;

	if (env_init(&e) && env_load(&e, CT_SIZE) &&
	    ASSERT_OK(ct4_put(e.maps.ct4, 1, 5), "5 ct4 entries")) {
		ct4 = pin_id(&e, "sl_ct4");
		ct6 = pin_id(&e, "sl_ct6");
		env_unload(&e);
		env_load_fails(&e, MAGLEV_SIZE, 0x80000001u, E2BIG, "--ct-size 2^31 + 1");
		ASSERT_EQ(pin_id(&e, "sl_ct4"), ct4, "sl_ct4 still pinned as sl_ct4");
		ASSERT_EQ(pin_id(&e, "sl_ct6"), ct6, "sl_ct6 still pinned as sl_ct6");
		expect_old_pins(&e, "", "after the failed load");
		if (ASSERT_OK(lb_maps_open_pinned(&maps, e.dir),
			      "the CLI still opens the pinned maps"))
			lb_maps_close(&maps);
	}
	env_fini(&e);
}

/* Tables of 251 slots pinned, 1021 asked: refused before anything moves. */
static void test_maglev_size_refused(void)
{
	struct sl_config cfg = {};
	__u32 cfg_id, maglev_id, zero = 0;
	struct env e;
	int fd;

	if (env_init(&e) && env_load(&e, CT_SIZE)) {
		cfg_id = pin_id(&e, "sl_cfg");
		maglev_id = pin_id(&e, "sl_maglev");
		env_unload(&e);
		env_load_fails(&e, 1021, CT_SIZE, EEXIST, "Maglev 1021 over tables of 251");
		ASSERT_EQ(pin_id(&e, "sl_cfg"), cfg_id, "sl_cfg pin untouched");
		ASSERT_EQ(pin_id(&e, "sl_maglev"), maglev_id, "sl_maglev pin untouched");
		fd = pin_get(&e, "sl_cfg");
		ASSERT_OK(fd < 0 || bpf_map_lookup_elem(fd, &zero, &cfg) ? -errno : 0,
			  "read sl_cfg");
		ASSERT_EQ(cfg.maglev_size, MAGLEV_SIZE, "sl_cfg keeps Maglev size 251");
		if (fd >= 0)
			close(fd);
		expect_old_pins(&e, "", "after the refusal");
		if (env_load(&e, CT_SIZE))
			expect_old_pins(&e, "", "251 again");
	}
	env_fini(&e);
}

/* ---- cases: nothing to migrate ---- */

/* migrate_prepare() on a skeleton opened and sized as loader_lb_load()
 * does, pinned by name under @e's directory, never loaded. */
static int prepare_direct(const struct env *e, __u32 ct_size)
{
	struct xdp_lb *skel = xdp_lb__open();
	char path[PATH_MAX];
	int err = skel ? 0 : -errno;

	for (size_t i = 0; !err && lb_map_name(i); i++) {
		snprintf(path, sizeof(path), "%s/%s", e->dir, lb_map_name(i));
		err = bpf_map__set_pin_path(bpf_object__find_map_by_name(skel->obj, lb_map_name(i)),
					    path);
	}
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.sl_ct4, ct_size)
			      ?: bpf_map__set_max_entries(skel->maps.sl_ct6, ct_size);
	if (!err)
		err = migrate_prepare(skel->obj);
	xdp_lb__destroy(skel);
	return err;
}

/* The ids of the maps pinned under the library's names. */
static void pinned_ids(const struct env *e, __u32 *ids)
{
	for (size_t i = 0; lb_map_name(i) && i < LB_MAPS_MAX; i++)
		ids[i] = pin_id(e, lb_map_name(i));
}

/* Load, stop, load again with the same options: every map reused, no
 * _old pin, and migrate_prepare() finds nothing to move. */
static void same_options_expect(struct env *e, __u32 ct_size)
{
	__u32 before[LB_MAPS_MAX] = {}, after[LB_MAPS_MAX] = {};

	ASSERT_FALSE(lb_map_name(LB_MAPS_MAX), "LB_MAPS_MAX covers every map");
	expect_old_pins(e, "", "first load");
	pinned_ids(e, before);
	env_unload(e);
	if (env_load(e, ct_size)) {
		expect_old_pins(e, "", "second load, same options");
		pinned_ids(e, after);
		for (size_t i = 0; lb_map_name(i) && i < LB_MAPS_MAX; i++) {
			ASSERT_NEQ(before[i], 0, say("%s pinned", lb_map_name(i)));
			ASSERT_EQ(after[i], before[i], say("%s reused", lb_map_name(i)));
		}
	}
	ASSERT_OK(migrate_finish(e->dir), "migrate_finish");
	env_unload(e);
	ASSERT_EQ(prepare_direct(e, ct_size), 0, "migrate_prepare: maps set aside");
	expect_old_pins(e, "", "after migrate_prepare");
}

static void test_nothing_to_migrate(void)
{
	struct env e;

	if (env_init(&e) && env_load(&e, CT_SIZE))
		same_options_expect(&e, CT_SIZE);
	env_fini(&e);
}

/* The same, with a conntrack size the kernel rounds up to a multiple of
 * the possible CPUs. */
static void test_ct_size_rounded_by_kernel(void)
{
	__u32 ct_size = 1024 * ncpus + 1;
	struct env e;

	if (ncpus < 2) {
		printf("#   one CPU: the kernel rounds nothing\n");
		return;
	}
	if (env_init(&e) && env_load(&e, ct_size))
		same_options_expect(&e, ct_size);
	env_fini(&e);
}

/* ---- cases: other pins in the directory ---- */

/* Restart over a pinned XDP link whose interface name ends in _old.
 *
 *   [ netns of this case ]
 *     wan_old (veth) <-- XDP (generic), link pinned as link_xdp_wan_old
 *        |
 *     wan_peer (veth)
 */
static void link_old_expect(struct env *e)
{
	int ifindex = if_nametoindex("wan_old");
	__u32 prog_id = 0;

	ASSERT_TRUE(pin_exists(e, "link_xdp_wan_old"), "link pinned as link_xdp_wan_old");
	env_unload(e);
	if (env_load(e, CT_SIZE))
		ASSERT_OK(loader_attach_xdp(e->skel, e->dir, "wan_old", true),
			  "replace the program on wan_old");
	ASSERT_OK(migrate_finish(e->dir), "migrate_finish");
	ASSERT_TRUE(pin_exists(e, "link_xdp_wan_old"), "the link pin survives migrate_finish");
	ASSERT_OK(bpf_xdp_query_id(ifindex, XDP_FLAGS_SKB_MODE, &prog_id), "bpf_xdp_query_id");
	ASSERT_NEQ(prog_id, 0, "wan_old still runs the load balancer");
}

static void test_link_pin_named_old(void)
{
	int netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	struct env e = {};

	if (!ASSERT_GE(netns, 0, "open our netns"))
		return;
	if (ASSERT_OK(unshare(CLONE_NEWNET) ? -errno : 0, "unshare(CLONE_NEWNET)") &&
	    ASSERT_OK(system("ip link add wan_old type veth peer name wan_peer && "
			     "ip link set wan_old up && ip link set wan_peer up"),
		      "ip link add wan_old type veth") &&
	    env_init(&e) && env_load(&e, CT_SIZE) &&
	    ASSERT_OK(loader_attach_xdp(e.skel, e.dir, "wan_old", true), "attach to wan_old"))
		link_old_expect(&e);
	env_fini(&e);
	ASSERT_OK(setns(netns, CLONE_NEWNET) ? -errno : 0, "back to our netns");
	close(netns);
}

static const struct test_case cases[] = {
	{ "sl_be, sl_be_st grow: backends and counters kept", test_backends_grow },
	{ "sl_svc flags change: services kept", test_service_flags_change },
	{ "sl_maglev grows: tables kept", test_maglev_outer_grows },
	{ "ct size 4096 -> 8192 -> 16: flows kept, what fits", test_ct_resize },
	{ "ct grows: flows of every CPU kept", test_ct_flows_of_every_cpu },
	{ "layout change: EPROTO, pin untouched", test_layout_change_refused },
	{ "layout change after a size change: nothing renamed",
	  test_layout_change_after_size_change },
	{ "load failing after prepare: pins kept", test_failed_load_keeps_pins },
	{ "Maglev size change: EEXIST, pins untouched", test_maglev_size_refused },
	{ "same options: nothing to migrate", test_nothing_to_migrate },
	{ "same ct size, not a multiple of CPUs: nothing to migrate",
	  test_ct_size_rounded_by_kernel },
	{ "link pin named *_old: restart, link kept", test_link_pin_named_old },
};

int main(int argc, char **argv)
{
	ncpus = libbpf_num_possible_cpus();
	if (ncpus < 1) {
		fprintf(stderr, "setup: libbpf_num_possible_cpus: %s\n", strerror(-ncpus));
		return 1;
	}
	if (geteuid()) {
		fprintf(stderr, "setup: run as root (maps pinned under /sys/fs/bpf)\n");
		return 1;
	}
	log_set_level(LOG_WARN);
	return run_tests(cases, ARRAY_SIZE(cases), argc > 1 ? argv[1] : NULL, "bpf/migrate");
}
