/* BPF_PROG_TEST_RUN cases for the XDP load balancer (bpf/xdp_lb.bpf.c).
 * One table row per packet: its input, the change expected in the output
 * (checked byte for byte against a packet built independently), the
 * verdict, and the side effects (every counter, traffic, conntrack).
 * Runs in a private network namespace so FIB lookups are real and the
 * host is never touched. Usage: test_xdp_lb [name-substring]
 *
 *   client 198.18.0.2, fd00::2                 backends 198.18.1.2-4,
 *   one-arm backend 198.18.0.7                          fd00:0:0:1::2-4
 *            |                                           |
 *         lb_up1 ==== lb_up0  [sl_xdp_lb]  lb_be0 ==== lb_be1
 *             198.18.0.1/24, fd00::1/64   198.18.1.1/24, fd00:0:0:1::1/64
 *
 * The hosts are permanent neighbour entries on lb_up0/lb_be0, so the FIB
 * returns known MACs; packets are run with ingress_ifindex set to the
 * interface facing their source.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "harness.h"
#include "lb_fixture.h"
#include "lb.h"
#include "loader.h"
#include "pkt.h"
#include "sluice/conntrack.h"
#include "sluice/drop_reason.h"
#include "sluice/stats.h"
#include "xdp_lb.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- topology ---- */

#define IF_UP "lb_up0"
#define IF_BE "lb_be0"

#define CLIENT4 "198.18.0.2"
#define CLIENT6 "fd00::2"
#define ONEARM4 "198.18.0.7" /* a backend on the uplink's subnet */
#define BE4_A "198.18.1.2"
#define BE4_B "198.18.1.3"
#define BE4_C "198.18.1.4"
#define BE4_NONEIGH "198.18.1.9" /* routable, but no neighbour entry */
#define BE6_A "fd00:0:0:1::2"
#define BE6_B "fd00:0:0:1::3"
#define BE6_C "fd00:0:0:1::4"

#define VIP4 "198.19.0.10"
#define VIP4_3BE "198.19.0.11"
#define VIP4_AFF "198.19.0.12"
#define VIP4_EMPTY "198.19.0.13"
#define VIP4_ONEARM "198.19.0.14"
#define VIP4_NONEIGH "198.19.0.15"
#define VIP6 "fd00:ff::10"

static const uint8_t mac_up[6] = { 0x02, 0, 0, 0, 0xaa, 0x00 };
static const uint8_t mac_be[6] = { 0x02, 0, 0, 0, 0xbb, 0x00 };
/* Sources with no neighbour entry (other clients) send from this MAC. */
static const uint8_t mac_other[6] = { 0x02, 0, 0, 0, 0x00, 0x99 };

static const struct neighbour {
	const char *ip;
	uint8_t mac[6];
} neighbours[] = {
	{ CLIENT4, { 0x02, 0, 0, 0, 0x00, 0x02 } }, { CLIENT6, { 0x02, 0, 0, 0, 0x00, 0x02 } },
	{ ONEARM4, { 0x02, 0, 0, 0, 0x00, 0x07 } }, { BE4_A, { 0x02, 0, 0, 0, 0x01, 0x02 } },
	{ BE4_B, { 0x02, 0, 0, 0, 0x01, 0x03 } },   { BE4_C, { 0x02, 0, 0, 0, 0x01, 0x04 } },
	{ BE6_A, { 0x02, 0, 0, 0, 0x01, 0x62 } },   { BE6_B, { 0x02, 0, 0, 0, 0x01, 0x63 } },
	{ BE6_C, { 0x02, 0, 0, 0, 0x01, 0x64 } },
};

/* ---- services every case starts from ---- */

enum svc_ix {
	S_TCP4, /* VIP4:80/tcp -> BE4_A:8080 */
	S_UDP4, /* VIP4:53/udp -> BE4_A:5353 */
	S_TCP4_3BE, /* VIP4_3BE:80/tcp -> BE4_A/B/C:8080 */
	S_AFF4, /* VIP4_AFF:80/tcp, client affinity 60 s -> BE4_A/B/C:8081 */
	S_EMPTY4, /* VIP4_EMPTY:80/tcp, no backend */
	S_ONEARM4, /* VIP4_ONEARM:80/tcp -> ONEARM4:8080, behind the uplink */
	S_NONEIGH4, /* VIP4_NONEIGH:80/tcp -> BE4_NONEIGH:8080 */
	S_TCP6, /* [VIP6]:80/tcp -> [BE6_A]:8080 */
	S_UDP6, /* [VIP6]:53/udp -> [BE6_A]:5353 */
	S_N,
};

/* clang-format off */
static const struct fixture_svc {
	const char *vip;
	uint16_t port;
	uint8_t proto;
	uint32_t flags, timeout_s;
	const char *be[3];
	uint16_t be_port;
} fixture[S_N] = {
	[S_TCP4] = { VIP4, 80, IPPROTO_TCP, 0, 0, { BE4_A }, 8080 },
	[S_UDP4] = { VIP4, 53, IPPROTO_UDP, 0, 0, { BE4_A }, 5353 },
	[S_TCP4_3BE] = { VIP4_3BE, 80, IPPROTO_TCP, 0, 0, { BE4_A, BE4_B, BE4_C }, 8080 },
	[S_AFF4] = { VIP4_AFF, 80, IPPROTO_TCP, SL_SVC_AFFINITY, 60, { BE4_A, BE4_B, BE4_C },
		     8081 },
	[S_EMPTY4] = { VIP4_EMPTY, 80, IPPROTO_TCP, 0, 0, { NULL }, 0 },
	[S_ONEARM4] = { VIP4_ONEARM, 80, IPPROTO_TCP, 0, 0, { ONEARM4 }, 8080 },
	[S_NONEIGH4] = { VIP4_NONEIGH, 80, IPPROTO_TCP, 0, 0, { BE4_NONEIGH }, 8080 },
	[S_TCP6] = { VIP6, 80, IPPROTO_TCP, 0, 0, { BE6_A }, 8080 },
	[S_UDP6] = { VIP6, 53, IPPROTO_UDP, 0, 0, { BE6_A }, 5353 },
};
/* clang-format on */

static struct xdp_lb *skel;
static struct lb_maps maps;
static int prog_fd;
static uint32_t ifindex_up, ifindex_be;
static __u32 svc_id[S_N]; /* ids the fixture got, refreshed per case */

/* ---- keys ---- */

static struct sl_svc_key svc_key(enum svc_ix s)
{
	struct sl_svc_key key = { .port = htons(fixture[s].port), .proto = fixture[s].proto };

	addr_words(fixture[s].vip, key.addr);
	key.family = is_v6(fixture[s].vip) ? SL_AF_INET6 : SL_AF_INET;
	return key;
}

/* Hosts on 198.18.1.0/24 and fd00:0:0:1::/64 are behind lb_be0. */
static bool behind_be(const char *ip)
{
	uint8_t a[16];

	if (is_v6(ip))
		return inet_pton(AF_INET6, ip, a) == 1 && a[7] == 1;
	return inet_pton(AF_INET, ip, a) == 1 && a[2] == 1;
}

static const uint8_t *lb_mac_facing(const char *ip)
{
	return behind_be(ip) ? mac_be : mac_up;
}

static const uint8_t *host_mac(const char *ip)
{
	uint8_t want[16], have[16];
	int af = is_v6(ip) ? AF_INET6 : AF_INET;

	inet_pton(af, ip, want);
	for (size_t i = 0; i < ARRAY_SIZE(neighbours); i++) {
		if (is_v6(neighbours[i].ip) == (af == AF_INET6) &&
		    inet_pton(af, neighbours[i].ip, have) == 1 &&
		    !memcmp(want, have, af == AF_INET6 ? 16 : 4))
			return neighbours[i].mac;
	}
	return mac_other;
}

/* ---- packets ---- */

/* One IP packet in an Ethernet frame; zero fields take the defaults. */
struct spec {
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t proto; /* TCP, UDP, ICMP, ICMPv6, or any other: raw payload */
	uint8_t tcp_flags;
	uint8_t ttl; /* IPv4 TTL, IPv6 hop limit; 0: PKT_IP_TTL */
	const uint8_t *ip_opts; /* IPv4 options, ip_opt_len bytes */
	uint8_t ip_opt_len;
	uint16_t frag; /* IPv4 flags + offset; IPv6 (with frag6): offset8 << 3 | M */
	bool frag6; /* IPv6: carry a fragment header */
	uint8_t n_ext; /* IPv6: destination-options headers before L4 */
	uint16_t vlan[2]; /* VLAN tags, outer first; 0: none */
	bool udp_csum0; /* UDP without a checksum */
	uint8_t pad; /* Ethernet padding after the IP packet */
	uint8_t icmp_type, icmp_code;
	uint32_t icmp_rest;
	const struct spec *quote; /* ICMP error: the packet it quotes */
	const char *payload; /* NULL: "payload" */
	size_t payload_len; /* 0: strlen(payload) */
};

/* What the program must change; unset fields stay as in the input. */
struct change {
	const char *src, *dst; /* PICKED: the backend in sl_ct forward entry */
	uint16_t sport, dport;
	const struct spec *quote;
	char picked[INET6_ADDRSTRLEN]; /* the runner's copy of a PICKED address */
};

static const char picked_marker[] = "picked";
#define PICKED picked_marker

static bool later_fragment(const struct spec *s)
{
	if (is_v6(s->src))
		return s->frag6 && s->frag >> 3;
	return s->frag & 0x1fff;
}

static void put_l3(struct pkt *p, const struct spec *s)
{
	uint8_t first = s->n_ext ? 60 : s->frag6 ? 44 : s->proto;

	if (!is_v6(s->src)) {
		pkt_ipv4(p, s->src, s->dst, s->proto, s->ip_opts, s->ip_opt_len, s->frag);
		return;
	}
	pkt_ipv6(p, s->src, s->dst, first);
	for (int i = 0; i < s->n_ext; i++)
		pkt_ipv6_ext(p, 60, i + 1 < s->n_ext ? 60 : s->frag6 ? 44 : s->proto, 0, NULL);
	if (s->frag6)
		pkt_ipv6_frag(p, s->proto, s->frag >> 3, s->frag & 1, 0x1234);
}

static void build_ip(struct pkt *p, const struct spec *s, const struct spec *keep_csum);

/* The quoted packet of an ICMP error: IPv4 header + 8 bytes, as routers
 * send; IPv6 quotes the whole packet. With @keep_csum, the quoted L4
 * checksum is the one of that packet (the program leaves it as is). */
static void put_icmp_error(struct pkt *p, const struct spec *s, const struct spec *keep_csum)
{
	struct pkt q, k;
	size_t csum_off, qlen;

	build_ip(&q, s->quote, NULL);
	csum_off = q.l4_off + (s->quote->proto == IPPROTO_TCP ? 16 : 6);
	if (keep_csum) {
		build_ip(&k, keep_csum, NULL);
		memcpy(q.data + csum_off, k.data + csum_off, 2);
	}
	qlen = is_v6(s->src) ? q.len : q.l4_off + 8;
	if (is_v6(s->src))
		pkt_icmp6(p, s->icmp_type, s->icmp_code, s->icmp_rest, q.data, qlen);
	else
		pkt_icmp4(p, s->icmp_type, s->icmp_code, s->icmp_rest, q.data, qlen);
	if (q.err)
		p->err = q.err;
}

static void put_l4(struct pkt *p, const struct spec *s, const struct spec *keep_csum)
{
	const char *payload = s->payload ? s->payload : "payload";
	size_t len = s->payload_len ? s->payload_len : strlen(payload);

	if (later_fragment(s)) {
		pkt_raw(p, payload, len);
		return;
	}
	switch (s->proto) {
	case IPPROTO_TCP:
		pkt_tcp(p, s->sport, s->dport, s->tcp_flags, payload, len);
		break;
	case IPPROTO_UDP:
		pkt_udp(p, s->sport, s->dport, payload, len);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (s->quote)
			put_icmp_error(p, s, keep_csum);
		else if (s->proto == IPPROTO_ICMP)
			pkt_icmp4(p, s->icmp_type, s->icmp_code, s->icmp_rest, payload, len);
		else
			pkt_icmp6(p, s->icmp_type, s->icmp_code, s->icmp_rest, payload, len);
		break;
	default:
		pkt_raw(p, payload, len);
	}
}

/* The IP packet of @s, finished (lengths, checksums). */
static void build_ip(struct pkt *p, const struct spec *s, const struct spec *keep_csum)
{
	pkt_init(p);
	put_l3(p, s);
	if (s->ttl && !p->err)
		p->data[p->l3_off + (is_v6(s->src) ? 7 : 8)] = s->ttl;
	put_l4(p, s, keep_csum);
	pkt_finish(p);
	if (s->udp_csum0 && !p->err)
		memset(p->data + p->l4_off + 6, 0, 2);
}

static void build_frame(struct pkt *p, const struct spec *s, const uint8_t *dmac,
			const uint8_t *smac, const struct spec *keep_csum)
{
	uint16_t l3type = is_v6(s->src) ? 0x86dd : 0x0800;
	struct pkt ip;

	build_ip(&ip, s, keep_csum);
	pkt_init(p);
	if (!s->vlan[0]) {
		pkt_eth(p, dmac, smac, l3type);
	} else if (!s->vlan[1]) {
		pkt_eth(p, dmac, smac, 0x8100);
		pkt_vlan(p, s->vlan[0], l3type);
	} else {
		pkt_eth(p, dmac, smac, 0x88a8);
		pkt_vlan(p, s->vlan[0], 0x8100);
		pkt_vlan(p, s->vlan[1], l3type);
	}
	pkt_raw(p, ip.data, ip.len);
	pkt_raw(p, NULL, s->pad);
	p->err = p->err ? p->err : ip.err;
	/* The offsets of the frame, for the checksum checks. */
	p->l3_off = p->len - ip.len - s->pad;
	p->l4_off = ip.l4_off == PKT_NO_OFF ? PKT_NO_OFF : p->l3_off + ip.l4_off;
}

/* The frame as a host sends it to the LB. */
static void build_input(struct pkt *p, const struct spec *s)
{
	build_frame(p, s, lb_mac_facing(s->src), host_mac(s->src), NULL);
}

/* ---- running the program ---- */

static uint32_t ingress_of(const char *src)
{
	return behind_be(src) ? ifindex_be : ifindex_up;
}

/* Run @in as a frame arriving on @ifindex. */
static int run_prog(const struct pkt *in, uint32_t ifindex, struct pkt *out, uint32_t *verdict)
{
	struct xdp_md ctx = { .data_end = in->len, .ingress_ifindex = ifindex };
	size_t out_len = sizeof(out->data);
	int err;

	pkt_init(out);
	err = prog_run_ctx(prog_fd, in->data, in->len, out->data, &out_len, &ctx, sizeof(ctx),
			   verdict);
	out->len = err ? 0 : out_len;
	return err;
}

/* Run the packet of @s as its source would send it; returns the verdict. */
static uint32_t send_spec(const struct spec *s, struct pkt *out)
{
	struct pkt in, scratch;
	uint32_t verdict = ~0u;

	build_input(&in, s);
	ASSERT_OK(in.err, "build input");
	ASSERT_OK(run_prog(&in, ingress_of(s->src), out ? out : &scratch, &verdict), "prog_run");
	return verdict;
}

/* ---- map helpers ---- */

static void ct_key(const struct spec *s, bool reply_of, const struct change *ch, void *key)
{
	/* reply_of: the backend -> client key of the flow @s (client -> VIP)
	 * after the change @ch (its DNAT). */
	const char *saddr = reply_of ? ch->dst : s->src, *daddr = reply_of ? s->src : s->dst;
	uint16_t sport = reply_of ? ch->dport : s->sport, dport = reply_of ? s->sport : s->dport;
	__be32 a[4], b[4];

	addr_words(saddr, a);
	addr_words(daddr, b);
	if (is_v6(s->src)) {
		struct sl_ct6_key *k = key;

		memset(k, 0, sizeof(*k));
		memcpy(k->saddr, a, 16);
		memcpy(k->daddr, b, 16);
		k->sport = htons(sport);
		k->dport = htons(dport);
		k->proto = s->proto;
		return;
	}
	struct sl_ct4_key *k = key;

	memset(k, 0, sizeof(*k));
	k->saddr = a[0];
	k->daddr = b[0];
	k->sport = htons(sport);
	k->dport = htons(dport);
	k->proto = s->proto;
}

static int ct_fd(const struct spec *s)
{
	return is_v6(s->src) ? maps.ct6 : maps.ct4;
}

/* The conntrack entry keyed by the tuple of @s; false if there is none. */
static bool ct_get(const struct spec *s, struct sl_ct_entry *e)
{
	struct sl_ct6_key key; /* the larger key */

	ct_key(s, false, NULL, &key);
	return !bpf_map_lookup_elem(ct_fd(s), &key, e);
}

/* Backend id of @ip:@port in service @s, or 0. */
static __u32 backend_id(enum svc_ix s, const char *ip, uint16_t port)
{
	struct addr_port ap = ep(ip, port);
	struct sl_backend be;

	for (__u32 id = 1; id < 64; id++) {
		if (bpf_map_lookup_elem(maps.be, &id, &be))
			continue;
		if ((be.flags & SL_BE_IN_USE) && be.svc_id == svc_id[s] && be.port == ap.port &&
		    !memcmp(be.addr, ap.addr, 16))
			return id;
	}
	return 0;
}

static void backend_endpoint(__u32 id, struct addr_port *ap)
{
	struct sl_backend be = {};

	bpf_map_lookup_elem(maps.be, &id, &be);
	*ap = (struct addr_port){ .port = be.port, .family = be.family };
	memcpy(ap->addr, be.addr, 16);
}

/* The forward entry of flow @s must exist; returns its backend id. */
static __u32 ct_backend(const struct spec *s)
{
	struct sl_ct_entry e = {};

	ASSERT_TRUE(ct_get(s, &e), "forward conntrack entry exists");
	return e.backend_id;
}

/* ---- fixture ---- */

/* Set when a case changed the fixture's services or backends. */
static bool fixture_dirty = true;

/* Every case starts from the fixture's services and no flow. Rebuilding
 * the services costs a synchronize_rcu per Maglev swap, so it happens
 * only after a case changed them. */
static void fixture_reset(void)
{
	map_clear(maps.ct4);
	map_clear(maps.ct6);
	map_clear(maps.affinity);
	if (!fixture_dirty)
		return;
	fixture_dirty = false;
	for (int s = 0; s < S_N; s++) {
		struct sl_svc_key key = svc_key(s);
		int err = lb_service_del(&maps, &key);

		if (err != -ENOENT)
			ASSERT_OK(err, "fixture: lb_service_del");
	}
	for (int s = 0; s < S_N; s++) {
		const struct fixture_svc *f = &fixture[s];
		struct sl_svc svc = { .flags = f->flags, .affinity_timeout_s = f->timeout_s };
		struct sl_svc_key key = svc_key(s);

		ASSERT_OK(lb_service_add(&maps, &key, &svc), "fixture: lb_service_add");
		for (int b = 0; b < 3 && f->be[b]; b++) {
			struct addr_port ap = ep(f->be[b], f->be_port);

			ASSERT_OK(lb_backend_add(&maps, &key, &ap, 1), "fixture: lb_backend_add");
		}
		ASSERT_OK(lb_service_get(&maps, &key, &svc), "fixture: lb_service_get");
		svc_id[s] = svc.id;
	}
}

/* ---- counters ---- */

static const char *const lb_names[] = SL_LB_STAT_NAMES;
static const char *const proto_names[] = SL_PROTO_STAT_NAMES;
static const char *const perr_names[] = SL_PARSE_ERR_NAMES;
static const char *const drop_names[] = SL_DROP_REASON_NAMES;

static void counters_zero(int fd, __u32 n)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *zero = calloc(ncpu > 0 ? ncpu : 1, sizeof(*zero));

	for (__u32 i = 0; zero && i < n; i++)
		bpf_map_update_elem(fd, &i, zero, BPF_ANY);
	free(zero);
}

static void expect_counters(int fd, const char *map, const char *const *names, const __u64 *want,
			    __u32 n)
{
	char what[64];
	uint64_t got;

	for (__u32 i = 0; i < n; i++) {
		snprintf(what, sizeof(what), "%s[%s]", map, names[i]);
		if (ASSERT_OK(percpu_sum_u64(fd, i, 1, &got), what))
			ASSERT_EQ(got, want[i], what);
	}
}

static __u64 lb_counter(enum sl_lb_stat i)
{
	uint64_t v = 0;

	percpu_sum_u64(maps.lb_st, i, 1, &v);
	return v;
}

/* Traffic slots of every id the fixture can use. */
#define SNAP_IDS 32

struct traffic_snap {
	struct sl_traffic svc[SNAP_IDS], be[SNAP_IDS];
};

static void traffic_read(struct traffic_snap *t)
{
	for (__u32 id = 0; id < SNAP_IDS; id++) {
		percpu_sum_u64(maps.svc_st, id, 5, (uint64_t *)&t->svc[id]);
		percpu_sum_u64(maps.be_st, id, 5, (uint64_t *)&t->be[id]);
	}
}

enum traffic {
	TR_NONE, /* no service or backend slot moves */
	TR_NEW, /* a new flow: forward packet + new_flows */
	TR_FWD, /* forward packet of an established flow */
	TR_REV, /* reply packet */
};

static void expect_traffic_slot(const char *map, __u32 id, const struct sl_traffic *before,
				const struct sl_traffic *after, const struct sl_traffic *delta)
{
	struct sl_traffic want = {
		.fwd_packets = before->fwd_packets + delta->fwd_packets,
		.fwd_bytes = before->fwd_bytes + delta->fwd_bytes,
		.rev_packets = before->rev_packets + delta->rev_packets,
		.rev_bytes = before->rev_bytes + delta->rev_bytes,
		.new_flows = before->new_flows + delta->new_flows,
	};
	char what[64];

	snprintf(what, sizeof(what), "%s[%u] (fwd_pk fwd_by rev_pk rev_by new)", map, id);
	ASSERT_BYTES(&want, sizeof(want), after, sizeof(*after), what);
}

/* The one service and backend @tr names moved by @bytes; nothing else. */
static void expect_traffic(const struct traffic_snap *before, enum traffic tr, __u32 svc, __u32 be,
			   __u64 bytes)
{
	struct sl_traffic delta = {}, none = {};
	struct traffic_snap after;

	if (tr == TR_NEW || tr == TR_FWD) {
		delta.fwd_packets = 1;
		delta.fwd_bytes = bytes;
		delta.new_flows = tr == TR_NEW;
	} else if (tr == TR_REV) {
		delta.rev_packets = 1;
		delta.rev_bytes = bytes;
	}
	traffic_read(&after);
	for (__u32 id = 0; id < SNAP_IDS; id++) {
		bool hit = tr != TR_NONE;

		expect_traffic_slot("sl_svc_st", id, &before->svc[id], &after.svc[id],
				    hit && id == svc ? &delta : &none);
		expect_traffic_slot("sl_be_st", id, &before->be[id], &after.be[id],
				    hit && id == be ? &delta : &none);
	}
}

/* ---- the table ---- */

struct lb_case {
	const char *name;
	void (*prepare)(void); /* state before the packet: earlier packets, weights */
	struct spec in;
	void (*build_in)(struct pkt *p); /* instead of @in: a frame built by hand */
	struct change want; /* nothing: the output equals the input */
	uint32_t verdict;
	__u64 lb[SL_LB_STAT_MAX], proto[SL_PS_MAX], perr[SL_PERR_MAX], drop[SL_DROP_MAX];
	enum svc_ix svc; /* the service whose traffic moves */
	enum traffic traffic;
	bool ct_new; /* a new flow: exactly its two conntrack entries appear */
	bool ct_reused; /* ... but its forward entry replaced an earlier flow's */
	void (*check)(const struct lb_case *c, const struct pkt *out);
};

#define TUPLE(s, sp, d, dp, pr) .src = s, .sport = sp, .dst = d, .dport = dp, .proto = pr
#define ICMP4(s, d, t, c) .src = s, .dst = d, .proto = IPPROTO_ICMP, .icmp_type = t, .icmp_code = c
#define ICMP6(s, d, t, c) \
	.src = s, .dst = d, .proto = IPPROTO_ICMPV6, .icmp_type = t, .icmp_code = c
#define TCP4(sp, vip) .src = CLIENT4, .dst = vip, .sport = sp, .dport = 80, .proto = IPPROTO_TCP
#define UDP4(sp) .src = CLIENT4, .dst = VIP4, .sport = sp, .dport = 53, .proto = IPPROTO_UDP
#define TCP6(sp) .src = CLIENT6, .dst = VIP6, .sport = sp, .dport = 80, .proto = IPPROTO_TCP
#define UDP6(sp) .src = CLIENT6, .dst = VIP6, .sport = sp, .dport = 53, .proto = IPPROTO_UDP
#define SYN .tcp_flags = PKT_TCP_SYN
#define ACK .tcp_flags = PKT_TCP_ACK | PKT_TCP_PSH

/* Counter sets: every index not named must stay 0. */
/* clang-format off */
#define PS_TCP4 { [SL_PS_PACKETS] = 1, [SL_PS_IPV4] = 1, [SL_PS_TCP] = 1 }
#define PS_UDP4 { [SL_PS_PACKETS] = 1, [SL_PS_IPV4] = 1, [SL_PS_UDP] = 1 }
#define PS_ICMP4 { [SL_PS_PACKETS] = 1, [SL_PS_IPV4] = 1, [SL_PS_ICMP] = 1 }
#define PS_TCP6 { [SL_PS_PACKETS] = 1, [SL_PS_IPV6] = 1, [SL_PS_TCP] = 1 }
#define PS_UDP6 { [SL_PS_PACKETS] = 1, [SL_PS_IPV6] = 1, [SL_PS_UDP] = 1 }
#define PS_ICMP6 { [SL_PS_PACKETS] = 1, [SL_PS_IPV6] = 1, [SL_PS_ICMPV6] = 1 }
#define PS_IP4 { [SL_PS_PACKETS] = 1, [SL_PS_IPV4] = 1 }
#define PS_IP6 { [SL_PS_PACKETS] = 1, [SL_PS_IPV6] = 1 }
#define PS_IP6_EXT { [SL_PS_PACKETS] = 1, [SL_PS_IPV6] = 1, [SL_PS_IPV6_EXT] = 1 }
#define PS_TCP4_OPTIONS \
	{ [SL_PS_PACKETS] = 1, [SL_PS_IPV4] = 1, [SL_PS_IPV4_OPTIONS] = 1, [SL_PS_TCP] = 1 }
#define PS_TCP6_EXT { [SL_PS_PACKETS] = 1, [SL_PS_IPV6] = 1, [SL_PS_IPV6_EXT] = 1, [SL_PS_TCP] = 1 }
#define PS_FRAG4 { [SL_PS_PACKETS] = 1, [SL_PS_IPV4] = 1, [SL_PS_FRAGMENT] = 1 }
#define PS_FRAG4_TCP \
	{ [SL_PS_PACKETS] = 1, [SL_PS_IPV4] = 1, [SL_PS_FRAGMENT] = 1, [SL_PS_TCP] = 1 }
#define PS_FRAG6 \
	{ [SL_PS_PACKETS] = 1, [SL_PS_IPV6] = 1, [SL_PS_IPV6_EXT] = 1, [SL_PS_FRAGMENT] = 1 }
#define PS_FRAG6_TCP \
	{ [SL_PS_PACKETS] = 1, [SL_PS_IPV6] = 1, [SL_PS_IPV6_EXT] = 1, [SL_PS_FRAGMENT] = 1, \
	  [SL_PS_TCP] = 1 }
#define PS_VLAN_TCP4 { [SL_PS_PACKETS] = 1, [SL_PS_VLAN] = 1, [SL_PS_IPV4] = 1, [SL_PS_TCP] = 1 }
#define PS_VLAN_TCP6 { [SL_PS_PACKETS] = 1, [SL_PS_VLAN] = 1, [SL_PS_IPV6] = 1, [SL_PS_TCP] = 1 }
#define LB_NEW_REDIRECT { [SL_LB_NEW_FLOW] = 1, [SL_LB_REDIRECT] = 1 }
#define LB_FWD_REDIRECT { [SL_LB_FORWARD] = 1, [SL_LB_REDIRECT] = 1 }
#define LB_REPLY_REDIRECT { [SL_LB_REPLY] = 1, [SL_LB_REDIRECT] = 1 }
#define LB_ICMP_REDIRECT { [SL_LB_ICMP_ERROR] = 1, [SL_LB_REDIRECT] = 1 }
#define LB_NOT_SERVICE { [SL_LB_NOT_SERVICE] = 1 }
#define LB_PARSE_PASS { [SL_LB_PARSE_PASS] = 1 }
#define PERR(e) { [e] = 1 }
/* clang-format on */

/* Earlier packets of the flows the cases continue. */
static __u32 prepared_be; /* backend the prepared flow went to */

static void send_new_flow(const struct spec *s)
{
	ASSERT_EQ(send_spec(s, NULL), XDP_REDIRECT, "prepare: first packet forwarded");
	prepared_be = ct_backend(s);
}

static void prep_tcp4(void)
{
	send_new_flow(&(struct spec){ TCP4(41000, VIP4), SYN });
}

static void prep_tcp4_3be(void)
{
	send_new_flow(&(struct spec){ TCP4(41100, VIP4_3BE), SYN });
}

static void prep_udp4(void)
{
	send_new_flow(&(struct spec){ UDP4(41200) });
}

static void prep_tcp6(void)
{
	send_new_flow(&(struct spec){ TCP6(41300), SYN });
}

static void prep_udp6(void)
{
	send_new_flow(&(struct spec){ UDP6(41400) });
}

static void prep_onearm(void)
{
	ASSERT_EQ(send_spec(&(struct spec){ TCP4(41500, VIP4_ONEARM), SYN }, NULL), XDP_TX,
		  "prepare: first packet sent back out");
}

static void set_weight(enum svc_ix s, __u32 be, __u32 weight)
{
	struct sl_svc_key key = svc_key(s);
	struct addr_port ap;

	backend_endpoint(be, &ap);
	fixture_dirty = true;
	ASSERT_OK(lb_backend_set_weight(&maps, &key, &ap, weight), "lb_backend_set_weight");
}

/* A flow to the 3-backend service, then its backend stops taking new ones. */
static void prep_zero_weight(void)
{
	prep_tcp4_3be();
	set_weight(S_TCP4_3BE, prepared_be, 0);
}

static void del_backend(enum svc_ix s, const char *ip)
{
	struct sl_svc_key key = svc_key(s);
	struct addr_port ap = ep(ip, fixture[s].be_port);

	fixture_dirty = true;
	ASSERT_OK(lb_backend_del(&maps, &key, &ap), "lb_backend_del");
}

static void prep_del_last_backend(void)
{
	del_backend(S_TCP4, BE4_A);
}

/* A Maglev table for the empty service whose every slot names a backend
 * of another service: the datapath must refuse it. */
static void prep_foreign_table(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
	__u32 foreign = backend_id(S_TCP4, BE4_A, fixture[S_TCP4].be_port), *slots;
	size_t bytes = (size_t)maps.maglev_size * sizeof(*slots);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sl_test_tab", 4, 4, maps.maglev_size, &opts);

	fixture_dirty = true;
	if (!ASSERT_GE(fd, 0, "create inner table"))
		return;
	slots = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ASSERT_TRUE(slots != MAP_FAILED, "mmap inner table")) {
		for (__u32 i = 0; i < maps.maglev_size; i++)
			slots[i] = foreign;
		munmap(slots, bytes);
	}
	ASSERT_OK(bpf_map_update_elem(maps.maglev, &svc_id[S_EMPTY4], &fd, BPF_ANY),
		  "publish the table");
	close(fd);
}

static void prep_tcp4_then_del_backend(void)
{
	prep_tcp4();
	del_backend(S_TCP4, BE4_A);
}

static void prep_udp4_zero_weight(void)
{
	prep_udp4();
	set_weight(S_UDP4, prepared_be, 0);
}

static void prep_affinity(void)
{
	send_new_flow(&(struct spec){ TCP4(43000, VIP4_AFF), SYN });
}

static void prep_affinity_zero_weight(void)
{
	prep_affinity();
	set_weight(S_AFF4, prepared_be, 0);
}

/* Payload of the UDP flow whose DNATed checksum must come out as 0xffff. */
static char csum_ffff_payload[2];

static uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

/* Ones' complement 16-bit addition. */
static uint16_t add1c(uint16_t a, uint16_t b)
{
	uint32_t t = (uint32_t)a + b;

	return (uint16_t)((t & 0xffff) + (t >> 16));
}

/* Choose the payload word w that makes the DNATed packet's checksum sum
 * (S) fold to 0xffff, i.e. a computed checksum of 0, which UDP must send
 * as 0xffff. With w1 = 0x0101 the fresh checksum is ~S1; adding ~S1 to
 * the payload word brings the sum to 0xffff. */
static void prep_udp_csum_ffff(void)
{
	struct spec out = { TUPLE(CLIENT4, 41600, BE4_A, 5353, IPPROTO_UDP), .payload = "\x01\x01",
			    .payload_len = 2 };
	uint16_t c1, s1, w;
	struct pkt p;

	build_ip(&p, &out, NULL);
	c1 = get16(p.data + p.l4_off + 6);
	s1 = c1 == 0xffff ? 0xffff : (uint16_t)~c1; /* 0xffff was sent for 0 */
	w = add1c(0x0101, (uint16_t)~s1);
	csum_ffff_payload[0] = w >> 8;
	csum_ffff_payload[1] = w & 0xff;
	out.payload = csum_ffff_payload;
	build_ip(&p, &out, NULL);
	ASSERT_EQ(get16(p.data + p.l4_off + 6), 0xffff,
		  "prepare: expected output's UDP checksum is the 0xffff edge");
}

/* ---- checks beyond the table ---- */

static bool is_backend_of(enum svc_ix s, __u32 id)
{
	for (int b = 0; b < 3 && fixture[s].be[b]; b++)
		if (id && id == backend_id(s, fixture[s].be[b], fixture[s].be_port))
			return true;
	return false;
}

static void check_same_backend(const struct lb_case *c, const struct pkt *out)
{
	(void)out;
	ASSERT_EQ(ct_backend(&c->in), prepared_be, "backend of the first packet");
}

/* New flows from many source ports: where they go, per backend id. */
static void spread(const char *vip, uint16_t first_sport, int n, __u32 *hits, int *fails)
{
	for (int i = 0; i < n; i++) {
		struct spec s = { TCP4(first_sport + i, vip), SYN };
		__u32 be;

		if (send_spec(&s, NULL) != XDP_REDIRECT) {
			(*fails)++;
			continue;
		}
		be = ct_backend(&s);
		hits[be < 64 ? be : 0]++;
	}
}

static void check_zero_weight(const struct lb_case *c, const struct pkt *out)
{
	struct sl_backend be = {};
	__u32 hits[64] = {};
	int fails = 0, used = 0;

	check_same_backend(c, out);
	spread(VIP4_3BE, 42000, 200, hits, &fails);
	ASSERT_EQ(fails, 0, "new flows forwarded");
	ASSERT_EQ(hits[prepared_be], 0, "new flows that picked the weight-0 backend");
	for (__u32 id = 1; id < 64; id++) {
		if (hits[id])
			used++;
		if (hits[id] && !is_backend_of(S_TCP4_3BE, id))
			ASSERT_EQ(id, 0, "new flow sent to a backend of another service");
	}
	ASSERT_EQ(used, 2, "backends the new flows spread over");
	ASSERT_OK(bpf_map_lookup_elem(maps.be, &prepared_be, &be), "sl_be lookup");
	ASSERT_EQ(be.flags & SL_BE_IN_USE, SL_BE_IN_USE, "weight-0 backend still in sl_be");
	ASSERT_EQ(be.weight, 0, "its weight");
}

static void check_affinity(const struct lb_case *c, const struct pkt *out)
{
	__u32 hits[64] = {}, control[64] = {};
	int fails = 0, used = 0;

	check_same_backend(c, out);
	spread(VIP4_AFF, 43100, 50, hits, &fails);
	ASSERT_EQ(fails, 0, "new flows forwarded");
	ASSERT_EQ(hits[prepared_be], 50, "new flows from the client that kept its backend");
	ASSERT_EQ(lb_counter(SL_LB_AFFINITY_HIT), 51, "sl_lb_st[affinity_hit]");
	/* Control: to a service without affinity the same ports spread out. */
	spread(VIP4_3BE, 43100, 50, control, &fails);
	for (__u32 id = 1; id < 64; id++)
		used += control[id] != 0;
	ASSERT_TRUE(used >= 2, "the same flows without affinity use several backends");
}

static void check_other_backend(const struct lb_case *c, const struct pkt *out)
{
	(void)out;
	ASSERT_NEQ(ct_backend(&c->in), prepared_be, "backend differs from the drained one");
}

static void check_affinity_skips_zero_weight(const struct lb_case *c, const struct pkt *out)
{
	(void)out;
	ASSERT_NEQ(ct_backend(&c->in), prepared_be, "new flow avoids the weight-0 backend");
	ASSERT_TRUE(is_backend_of(S_AFF4, ct_backend(&c->in)), "new flow to a live backend");
}

/* An affinity entry older than the timeout is ignored; a fresh one is
 * followed to whichever backend it names. */
static void check_affinity_expiry(const struct lb_case *c, const struct pkt *out)
{
	struct sl_affinity_key key = { .svc_id = svc_id[S_AFF4] };
	struct timespec now;
	__u64 ns;

	(void)c;
	(void)out;
	clock_gettime(CLOCK_MONOTONIC, &now); /* bpf_ktime_get_ns()'s clock */
	ns = now.tv_sec * 1000000000ull + now.tv_nsec;
	addr_words(CLIENT4, key.client);
	for (int b = 0; b < 3; b++) {
		__u32 id = backend_id(S_AFF4, fixture[S_AFF4].be[b], fixture[S_AFF4].be_port);
		struct sl_affinity stale = { .last_ns = ns - 61 * 1000000000ull, .backend_id = id };
		struct sl_affinity fresh = { .last_ns = ns, .backend_id = id };
		struct spec s = { TCP4(43200 + b, VIP4_AFF), SYN };
		__u64 hits = lb_counter(SL_LB_AFFINITY_HIT);

		ASSERT_OK(bpf_map_update_elem(maps.affinity, &key, &stale, BPF_ANY), "stale entry");
		send_spec(&s, NULL);
		ASSERT_EQ(lb_counter(SL_LB_AFFINITY_HIT), hits, "stale entry is no hit");
		ASSERT_OK(bpf_map_update_elem(maps.affinity, &key, &fresh, BPF_ANY), "fresh entry");
		s.sport += 10;
		send_spec(&s, NULL);
		ASSERT_EQ(lb_counter(SL_LB_AFFINITY_HIT), hits + 1, "fresh entry is a hit");
		ASSERT_EQ(ct_backend(&s), id, "fresh entry's backend");
	}
}

static void check_no_backend_state(const struct lb_case *c, const struct pkt *out)
{
	struct sl_svc_key key = svc_key(S_TCP4);
	struct sl_svc svc = {};
	__u32 inner;

	(void)c;
	(void)out;
	ASSERT_OK(lb_service_get(&maps, &key, &svc), "service still there");
	ASSERT_EQ(svc.backend_count, 0, "backend_count");
	ASSERT_EQ(bpf_map_lookup_elem(maps.maglev, &svc.id, &inner), -ENOENT, "no Maglev table");
}

/* ---- hand-built (malformed) frames ---- */

static void put_eth(struct pkt *p, uint16_t type)
{
	pkt_init(p);
	pkt_eth(p, mac_up, host_mac(CLIENT4), type);
}

static void vlan_short(struct pkt *p)
{
	put_eth(p, 0x8100);
	pkt_raw(p, "\x00\x64", 2);
}

static void vlan_depth3(struct pkt *p)
{
	put_eth(p, 0x88a8);
	pkt_vlan(p, 100, 0x8100);
	pkt_vlan(p, 200, 0x8100);
	pkt_vlan(p, 300, 0x0800);
	pkt_ipv4(p, CLIENT4, VIP4, IPPROTO_TCP, NULL, 0, 0);
	pkt_tcp(p, 44000, 80, PKT_TCP_SYN, NULL, 0);
	pkt_finish(p);
}

static void ipv4_short(struct pkt *p)
{
	put_eth(p, 0x0800);
	pkt_raw(p, "\x45\x00\x00\x28\x00\x01\x00\x00\x40\x06", 10);
}

/* IHL 6 in a packet that ends after 20 bytes of header. */
static void ipv4_options_short(struct pkt *p)
{
	put_eth(p, 0x0800);
	pkt_ipv4(p, CLIENT4, VIP4, IPPROTO_TCP, NULL, 0, 0);
	pkt_finish(p);
	p->data[14] = 0x46;
}

static void tcp4_to_vip(struct pkt *p)
{
	put_eth(p, 0x0800);
	pkt_ipv4(p, CLIENT4, VIP4, IPPROTO_TCP, NULL, 0, 0);
	pkt_tcp(p, 44000, 80, PKT_TCP_SYN, "payload", 7);
	pkt_finish(p);
}

static void ipv4_ihl4(struct pkt *p)
{
	tcp4_to_vip(p);
	p->data[14] = 0x44;
}

static void ipv4_version6(struct pkt *p)
{
	tcp4_to_vip(p);
	p->data[14] = 0x65;
}

static void ipv4_totlen_long(struct pkt *p)
{
	tcp4_to_vip(p);
	p->data[17] += 1; /* total length one byte past the frame */
}

static void ipv4_totlen_short(struct pkt *p)
{
	tcp4_to_vip(p);
	p->data[16] = 0;
	p->data[17] = 19; /* below the header length */
}

/* An L4 header of @proto cut to @len bytes (ports 44000 -> 80 first). */
static void l4_short(struct pkt *p, uint8_t proto, size_t len)
{
	static const uint8_t l4[20] = { 0xab, 0xe0, 0x00, 0x50 };

	put_eth(p, 0x0800);
	pkt_ipv4(p, CLIENT4, VIP4, proto, NULL, 0, 0);
	pkt_raw(p, l4, len);
	pkt_finish(p);
}

static void tcp_short(struct pkt *p)
{
	l4_short(p, IPPROTO_TCP, 19);
}

static void udp_short(struct pkt *p)
{
	l4_short(p, IPPROTO_UDP, 7);
}

static void icmp_short(struct pkt *p)
{
	l4_short(p, IPPROTO_ICMP, 7);
}

static void tcp_doff4(struct pkt *p)
{
	tcp4_to_vip(p);
	p->data[14 + 20 + 12] = 0x40;
}

/* Data offset 15 (60 bytes) in a segment of 27. */
static void tcp_doff_past_end(struct pkt *p)
{
	tcp4_to_vip(p);
	p->data[14 + 20 + 12] = 0xf0;
}

static void ipv6_short(struct pkt *p)
{
	static const uint8_t ip6[39] = { 0x60, 0, 0, 0, 0, 0, IPPROTO_TCP, 64, 0xfd };

	put_eth(p, 0x86dd);
	pkt_raw(p, ip6, sizeof(ip6));
}

static void ipv6_version4(struct pkt *p)
{
	put_eth(p, 0x86dd);
	pkt_ipv6(p, CLIENT6, VIP6, IPPROTO_TCP);
	pkt_tcp(p, 44000, 80, PKT_TCP_SYN, NULL, 0);
	pkt_finish(p);
	p->data[14] = 0x40;
}

/* A hop-by-hop header claiming 16 bytes with 8 present. */
static void ipv6_ext_short(struct pkt *p)
{
	put_eth(p, 0x86dd);
	pkt_ipv6(p, CLIENT6, VIP6, 0);
	pkt_raw(p, "\x06\x01\x01\x04\x00\x00\x00\x00", 8);
	pkt_finish(p);
}

static void ipv6_frag_short(struct pkt *p)
{
	put_eth(p, 0x86dd);
	pkt_ipv6(p, CLIENT6, VIP6, 44);
	pkt_raw(p, "\x06\x00\x00\x01", 4);
	pkt_finish(p);
}

static void ipv6_ext7(struct pkt *p)
{
	put_eth(p, 0x86dd);
	pkt_ipv6(p, CLIENT6, VIP6, 60);
	for (int i = 0; i < 7; i++)
		pkt_ipv6_ext(p, 60, i < 6 ? 60 : IPPROTO_TCP, 0, NULL);
	pkt_tcp(p, 44000, 80, PKT_TCP_SYN, NULL, 0);
	pkt_finish(p);
}

static void arp_request(struct pkt *p)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t arp[28] = { 0,   1,  8, 0, 6, 4, 0, 1, 2, 0, 0,   0,  0, 2,
					 198, 18, 0, 2, 0, 0, 0, 0, 0, 0, 198, 18, 0, 1 };

	pkt_init(p);
	pkt_eth(p, bcast, host_mac(CLIENT4), 0x0806);
	pkt_raw(p, arp, sizeof(arp));
}

/* ---- cases ---- */

#define OPTS4 ((const uint8_t[]){ 0x01, 0x01, 0x01, 0x00 }) /* NOP NOP NOP EOL */
#define OPTS8 ((const uint8_t[]){ 0x07, 0x07, 0x08, 0xc6, 0x12, 0x00, 0x01, 0x00 }) /* RR */

/* Quotes of ICMP errors: the packet the backend (or client) had received. */
#define QUOTE(s, d, sp, dp, pr) \
	(&(const struct spec){  \
		.src = s, .dst = d, .sport = sp, .dport = dp, .proto = pr, .ttl = 63 })
#define Q_UDP4_AT_BE QUOTE(CLIENT4, BE4_A, 41200, 5353, IPPROTO_UDP)
#define Q_UDP4_AT_VIP QUOTE(CLIENT4, VIP4, 41200, 53, IPPROTO_UDP)
#define Q_TCP4_AT_BE QUOTE(CLIENT4, BE4_A, 41000, 8080, IPPROTO_TCP)
#define Q_TCP4_AT_VIP QUOTE(CLIENT4, VIP4, 41000, 80, IPPROTO_TCP)
#define Q_REPLY4_FROM_VIP QUOTE(VIP4, CLIENT4, 53, 41200, IPPROTO_UDP)
#define Q_REPLY4_FROM_BE QUOTE(BE4_A, CLIENT4, 5353, 41200, IPPROTO_UDP)
#define Q_UDP6_AT_BE QUOTE(CLIENT6, BE6_A, 41400, 5353, IPPROTO_UDP)
#define Q_UDP6_AT_VIP QUOTE(CLIENT6, VIP6, 41400, 53, IPPROTO_UDP)
#define Q_UDP4_UNTRACKED QUOTE(CLIENT4, BE4_A, 49999, 5353, IPPROTO_UDP)

/* One row per case reads better than one field per line. */
/* clang-format off */
static const struct lb_case cases[] = {
	/* -- new flows -- */
	{ .name = "tcp4 new flow: DNAT to the one backend, redirect to the backend link",
	  .in = { TCP4(40000, VIP4), SYN }, .want = { .dst = BE4_A, .dport = 8080 },
	  .verdict = XDP_REDIRECT, .lb = LB_NEW_REDIRECT, .proto = PS_TCP4, .svc = S_TCP4,
	  .traffic = TR_NEW, .ct_new = true },
	{ .name = "tcp4 new flow, 3 backends: DNAT to the one conntrack names",
	  .in = { TCP4(40001, VIP4_3BE), SYN }, .want = { .dst = PICKED }, .verdict = XDP_REDIRECT,
	  .lb = LB_NEW_REDIRECT, .proto = PS_TCP4, .svc = S_TCP4_3BE, .traffic = TR_NEW,
	  .ct_new = true },
	{ .name = "tcp4 new flow, backend behind the ingress link: XDP_TX",
	  .in = { TCP4(40002, VIP4_ONEARM), SYN }, .want = { .dst = ONEARM4, .dport = 8080 },
	  .verdict = XDP_TX, .lb = { [SL_LB_NEW_FLOW] = 1, [SL_LB_TX] = 1 }, .proto = PS_TCP4,
	  .svc = S_ONEARM4, .traffic = TR_NEW, .ct_new = true },
	{ .name = "tcp4 new flow with Ethernet padding: DNAT, padding kept",
	  .in = { TCP4(40003, VIP4), SYN, .payload = "", .pad = 6 },
	  .want = { .dst = BE4_A, .dport = 8080 }, .verdict = XDP_REDIRECT, .lb = LB_NEW_REDIRECT,
	  .proto = PS_TCP4, .svc = S_TCP4, .traffic = TR_NEW, .ct_new = true },
	{ .name = "ipv4 options IHL 6 to the VIP: DNAT, options kept",
	  .in = { TCP4(40004, VIP4), SYN, .ip_opts = OPTS4, .ip_opt_len = 4 },
	  .want = { .dst = BE4_A, .dport = 8080 }, .verdict = XDP_REDIRECT, .lb = LB_NEW_REDIRECT,
	  .proto = PS_TCP4_OPTIONS, .svc = S_TCP4, .traffic = TR_NEW, .ct_new = true },
	{ .name = "ipv4 options IHL 7 to the VIP: DNAT, options kept",
	  .in = { TCP4(40005, VIP4), ACK, .ip_opts = OPTS8, .ip_opt_len = 8 },
	  .want = { .dst = BE4_A, .dport = 8080 }, .verdict = XDP_REDIRECT, .lb = LB_NEW_REDIRECT,
	  .proto = PS_TCP4_OPTIONS, .svc = S_TCP4, .traffic = TR_NEW, .ct_new = true },
	{ .name = "udp4 new flow: DNAT, checksum updated",
	  .in = { UDP4(40006) }, .want = { .dst = BE4_A, .dport = 5353 }, .verdict = XDP_REDIRECT,
	  .lb = LB_NEW_REDIRECT, .proto = PS_UDP4, .svc = S_UDP4, .traffic = TR_NEW,
	  .ct_new = true },
	{ .name = "udp4 new flow without checksum: DNAT, checksum stays 0",
	  .in = { UDP4(40007), .udp_csum0 = true }, .want = { .dst = BE4_A, .dport = 5353 },
	  .verdict = XDP_REDIRECT, .lb = LB_NEW_REDIRECT, .proto = PS_UDP4, .svc = S_UDP4,
	  .traffic = TR_NEW, .ct_new = true },
	{ .name = "udp4 new flow whose new checksum is 0: sent as 0xffff",
	  .prepare = prep_udp_csum_ffff,
	  .in = { UDP4(41600), .payload = csum_ffff_payload, .payload_len = 2 },
	  .want = { .dst = BE4_A, .dport = 5353 }, .verdict = XDP_REDIRECT, .lb = LB_NEW_REDIRECT,
	  .proto = PS_UDP4, .svc = S_UDP4, .traffic = TR_NEW, .ct_new = true },
	{ .name = "tcp6 new flow: DNAT to the v6 backend",
	  .in = { TCP6(40008), SYN }, .want = { .dst = BE6_A, .dport = 8080 },
	  .verdict = XDP_REDIRECT, .lb = LB_NEW_REDIRECT, .proto = PS_TCP6, .svc = S_TCP6,
	  .traffic = TR_NEW, .ct_new = true },
	{ .name = "udp6 new flow: DNAT to the v6 backend",
	  .in = { UDP6(40009) }, .want = { .dst = BE6_A, .dport = 5353 }, .verdict = XDP_REDIRECT,
	  .lb = LB_NEW_REDIRECT, .proto = PS_UDP6, .svc = S_UDP6, .traffic = TR_NEW,
	  .ct_new = true },
	{ .name = "tcp6 with 6 extension headers (the most followed): DNAT, headers kept",
	  .in = { TCP6(40010), SYN, .n_ext = 6 }, .want = { .dst = BE6_A, .dport = 8080 },
	  .verdict = XDP_REDIRECT, .lb = LB_NEW_REDIRECT, .proto = PS_TCP6_EXT, .svc = S_TCP6,
	  .traffic = TR_NEW, .ct_new = true },
	{ .name = "tcp4 TTL 1 to the VIP: passed DNATed to the backend, TTL 1, MACs as received",
	  .in = { TCP4(40011, VIP4), SYN, .ttl = 1 }, .want = { .dst = BE4_A, .dport = 8080 },
	  .verdict = XDP_PASS, .lb = { [SL_LB_NEW_FLOW] = 1, [SL_LB_FIB_PASS] = 1 },
	  .proto = PS_TCP4, .svc = S_TCP4, .traffic = TR_NEW, .ct_new = true },
	{ .name = "tcp6 hop limit 1 to the VIP: DNATed, hop limit 1, passed",
	  .in = { TCP6(40012), SYN, .ttl = 1 }, .want = { .dst = BE6_A, .dport = 8080 },
	  .verdict = XDP_PASS, .lb = { [SL_LB_NEW_FLOW] = 1, [SL_LB_FIB_PASS] = 1 },
	  .proto = PS_TCP6, .svc = S_TCP6, .traffic = TR_NEW, .ct_new = true },
	{ .name = "tcp4 new flow, backend without neighbour entry: passed DNATed, MACs as received",
	  .in = { TCP4(40013, VIP4_NONEIGH), SYN }, .want = { .dst = BE4_NONEIGH, .dport = 8080 },
	  .verdict = XDP_PASS, .lb = { [SL_LB_NEW_FLOW] = 1, [SL_LB_FIB_PASS] = 1 },
	  .proto = PS_TCP4, .svc = S_NONEIGH4, .traffic = TR_NEW, .ct_new = true },

	/* -- established flows and replies -- */
	{ .name = "tcp4 established: same backend, forward counter, no new flow",
	  .prepare = prep_tcp4_3be, .in = { TCP4(41100, VIP4_3BE), ACK }, .want = { .dst = PICKED },
	  .verdict = XDP_REDIRECT, .lb = LB_FWD_REDIRECT, .proto = PS_TCP4, .svc = S_TCP4_3BE,
	  .traffic = TR_FWD, .check = check_same_backend },
	{ .name = "tcp4 SYN again on a live flow (retransmit): same backend, forward",
	  .prepare = prep_tcp4_3be, .in = { TCP4(41100, VIP4_3BE), SYN }, .want = { .dst = PICKED },
	  .verdict = XDP_REDIRECT, .lb = LB_FWD_REDIRECT, .proto = PS_TCP4, .svc = S_TCP4_3BE,
	  .traffic = TR_FWD, .check = check_same_backend },
	{ .name = "tcp4 reply: source back to VIP:80, redirect to the uplink",
	  .prepare = prep_tcp4, .in = { TUPLE(BE4_A, 8080, CLIENT4, 41000, IPPROTO_TCP), SYN },
	  .want = { .src = VIP4, .sport = 80 }, .verdict = XDP_REDIRECT, .lb = LB_REPLY_REDIRECT,
	  .proto = PS_TCP4, .svc = S_TCP4, .traffic = TR_REV },
	{ .name = "tcp4 reply from a backend behind the uplink: XDP_TX",
	  .prepare = prep_onearm, .in = { TUPLE(ONEARM4, 8080, CLIENT4, 41500, IPPROTO_TCP), ACK },
	  .want = { .src = VIP4_ONEARM, .sport = 80 }, .verdict = XDP_TX,
	  .lb = { [SL_LB_REPLY] = 1, [SL_LB_TX] = 1 }, .proto = PS_TCP4, .svc = S_ONEARM4,
	  .traffic = TR_REV },
	{ .name = "udp4 reply: source back to VIP:53",
	  .prepare = prep_udp4, .in = { TUPLE(BE4_A, 5353, CLIENT4, 41200, IPPROTO_UDP) },
	  .want = { .src = VIP4, .sport = 53 }, .verdict = XDP_REDIRECT, .lb = LB_REPLY_REDIRECT,
	  .proto = PS_UDP4, .svc = S_UDP4, .traffic = TR_REV },
	{ .name = "udp4 reply without checksum: checksum stays 0",
	  .prepare = prep_udp4,
	  .in = { TUPLE(BE4_A, 5353, CLIENT4, 41200, IPPROTO_UDP), .udp_csum0 = true },
	  .want = { .src = VIP4, .sport = 53 }, .verdict = XDP_REDIRECT, .lb = LB_REPLY_REDIRECT,
	  .proto = PS_UDP4, .svc = S_UDP4, .traffic = TR_REV },
	{ .name = "tcp6 established: forward",
	  .prepare = prep_tcp6, .in = { TCP6(41300), ACK }, .want = { .dst = BE6_A, .dport = 8080 },
	  .verdict = XDP_REDIRECT, .lb = LB_FWD_REDIRECT, .proto = PS_TCP6, .svc = S_TCP6,
	  .traffic = TR_FWD },
	{ .name = "tcp6 reply: source back to [VIP6]:80",
	  .prepare = prep_tcp6, .in = { TUPLE(BE6_A, 8080, CLIENT6, 41300, IPPROTO_TCP), ACK },
	  .want = { .src = VIP6, .sport = 80 }, .verdict = XDP_REDIRECT, .lb = LB_REPLY_REDIRECT,
	  .proto = PS_TCP6, .svc = S_TCP6, .traffic = TR_REV },
	{ .name = "udp6 reply: source back to [VIP6]:53",
	  .prepare = prep_udp6, .in = { TUPLE(BE6_A, 5353, CLIENT6, 41400, IPPROTO_UDP) },
	  .want = { .src = VIP6, .sport = 53 }, .verdict = XDP_REDIRECT, .lb = LB_REPLY_REDIRECT,
	  .proto = PS_UDP6, .svc = S_UDP6, .traffic = TR_REV },

	/* -- backend set changes -- */
	{ .name = "weight 0: established flow keeps its backend, 200 new flows never pick it",
	  .prepare = prep_zero_weight, .in = { TCP4(41100, VIP4_3BE), ACK },
	  .want = { .dst = PICKED }, .verdict = XDP_REDIRECT, .lb = LB_FWD_REDIRECT,
	  .proto = PS_TCP4, .svc = S_TCP4_3BE, .traffic = TR_FWD, .check = check_zero_weight },
	{ .name = "weight 0: a SYN reusing the flow's port is balanced afresh",
	  .prepare = prep_zero_weight, .in = { TCP4(41100, VIP4_3BE), SYN },
	  .want = { .dst = PICKED }, .verdict = XDP_REDIRECT, .lb = LB_NEW_REDIRECT,
	  .proto = PS_TCP4, .svc = S_TCP4_3BE, .traffic = TR_NEW, .ct_new = true, .ct_reused = true,
	  .check = check_other_backend },
	{ .name = "udp4 flow whose backend got weight 0: still forwarded to it",
	  .prepare = prep_udp4_zero_weight, .in = { UDP4(41200) },
	  .want = { .dst = BE4_A, .dport = 5353 }, .verdict = XDP_REDIRECT, .lb = LB_FWD_REDIRECT,
	  .proto = PS_UDP4, .svc = S_UDP4, .traffic = TR_FWD },
	{ .name = "service without backends: dropped (no_backend), unchanged",
	  .in = { TCP4(40020, VIP4_EMPTY), SYN }, .verdict = XDP_DROP, .proto = PS_TCP4,
	  .drop = { [SL_DROP_NO_BACKEND] = 1 } },
	{ .name = "Maglev slot naming another service's backend: dropped (backend_missing)",
	  .prepare = prep_foreign_table, .in = { TCP4(40022, VIP4_EMPTY), SYN },
	  .verdict = XDP_DROP, .proto = PS_TCP4, .drop = { [SL_DROP_BACKEND_MISSING] = 1 } },
	{ .name = "last backend deleted: new flow dropped (no_backend), unchanged",
	  .prepare = prep_del_last_backend, .in = { TCP4(40021, VIP4), SYN }, .verdict = XDP_DROP,
	  .proto = PS_TCP4, .drop = { [SL_DROP_NO_BACKEND] = 1 }, .check = check_no_backend_state },
	{ .name = "last backend deleted: its established flow still forwarded to it",
	  .prepare = prep_tcp4_then_del_backend, .in = { TCP4(41000, VIP4), ACK },
	  .want = { .dst = BE4_A, .dport = 8080 }, .verdict = XDP_REDIRECT, .lb = LB_FWD_REDIRECT,
	  .proto = PS_TCP4, .svc = S_TCP4, .traffic = TR_FWD },
	{ .name = "last backend deleted: a SYN reusing its flow's port is dropped (no_backend)",
	  .prepare = prep_tcp4_then_del_backend, .in = { TCP4(41000, VIP4), SYN },
	  .verdict = XDP_DROP, .proto = PS_TCP4, .drop = { [SL_DROP_NO_BACKEND] = 1 } },

	/* -- affinity -- */
	{ .name = "affinity: the client's next flows all go to its first backend",
	  .prepare = prep_affinity, .in = { TCP4(43001, VIP4_AFF), SYN }, .want = { .dst = PICKED },
	  .verdict = XDP_REDIRECT,
	  .lb = { [SL_LB_NEW_FLOW] = 1, [SL_LB_AFFINITY_HIT] = 1, [SL_LB_REDIRECT] = 1 },
	  .proto = PS_TCP4, .svc = S_AFF4, .traffic = TR_NEW, .ct_new = true,
	  .check = check_affinity },
	{ .name = "affinity: a weight-0 backend is not reused for new flows",
	  .prepare = prep_affinity_zero_weight, .in = { TCP4(43001, VIP4_AFF), SYN },
	  .want = { .dst = PICKED }, .verdict = XDP_REDIRECT, .lb = LB_NEW_REDIRECT,
	  .proto = PS_TCP4, .svc = S_AFF4, .traffic = TR_NEW, .ct_new = true,
	  .check = check_affinity_skips_zero_weight },
	{ .name = "affinity: entries older than the timeout are ignored",
	  .in = { TCP4(43002, VIP4_AFF), SYN }, .want = { .dst = PICKED }, .verdict = XDP_REDIRECT,
	  .lb = LB_NEW_REDIRECT, .proto = PS_TCP4, .svc = S_AFF4, .traffic = TR_NEW, .ct_new = true,
	  .check = check_affinity_expiry },

	/* -- not for us -- */
	{ .name = "tcp4 to a non-VIP address: passed unchanged",
	  .in = { TCP4(40030, BE4_A), SYN }, .verdict = XDP_PASS, .lb = LB_NOT_SERVICE,
	  .proto = PS_TCP4 },
	{ .name = "tcp4 to the VIP, port without service: passed unchanged",
	  .in = { TUPLE(CLIENT4, 40031, VIP4, 81, IPPROTO_TCP), SYN }, .verdict = XDP_PASS,
	  .lb = LB_NOT_SERVICE, .proto = PS_TCP4 },
	{ .name = "udp4 to a TCP-only VIP:port: passed unchanged",
	  .in = { TUPLE(CLIENT4, 40032, VIP4, 80, IPPROTO_UDP) }, .verdict = XDP_PASS,
	  .lb = LB_NOT_SERVICE, .proto = PS_UDP4 },
	{ .name = "tcp6 to the VIP, port without service: passed unchanged",
	  .in = { TUPLE(CLIENT6, 40033, VIP6, 81, IPPROTO_TCP), SYN }, .verdict = XDP_PASS,
	  .lb = LB_NOT_SERVICE, .proto = PS_TCP6 },
	{ .name = "reply-shaped packet of an untracked flow: passed unchanged",
	  .in = { TUPLE(BE4_A, 8080, CLIENT4, 40034, IPPROTO_TCP), ACK }, .verdict = XDP_PASS,
	  .lb = LB_NOT_SERVICE, .proto = PS_TCP4 },
	{ .name = "GRE to the VIP: passed unchanged, other_l4",
	  .in = { .src = CLIENT4, .dst = VIP4, .proto = 47 }, .verdict = XDP_PASS,
	  .lb = LB_NOT_SERVICE,
	  .proto = { [SL_PS_PACKETS] = 1, [SL_PS_IPV4] = 1, [SL_PS_OTHER_L4] = 1 } },
	{ .name = "ICMP echo to the VIP: passed unchanged",
	  
	  .in = { ICMP4(CLIENT4, VIP4, 8, 0), .icmp_rest = 0x10001 },
	  .verdict = XDP_PASS, .lb = LB_NOT_SERVICE, .proto = PS_ICMP4 },
	{ .name = "ARP: passed unchanged, other_l3",
	  .build_in = arp_request, .verdict = XDP_PASS, .lb = LB_NOT_SERVICE,
	  .proto = { [SL_PS_PACKETS] = 1, [SL_PS_OTHER_L3] = 1 } },

	/* -- fragments and VLANs -- */
	{ .name = "ipv4 first fragment (MF) to the VIP: passed unchanged",
	  .in = { TCP4(40040, VIP4), SYN, .frag = PKT_IP_MF }, .verdict = XDP_PASS,
	  .lb = { [SL_LB_FRAGMENT_PASS] = 1 }, .proto = PS_FRAG4_TCP },
	{ .name = "ipv4 later fragment (offset 8) to the VIP: passed unchanged",
	  .in = { TCP4(40041, VIP4), .frag = 8 }, .verdict = XDP_PASS,
	  .lb = { [SL_LB_FRAGMENT_PASS] = 1 }, .proto = PS_FRAG4 },
	{ .name = "ipv6 first fragment (M) to the VIP: passed unchanged",
	  .in = { TCP6(40042), SYN, .frag6 = true, .frag = 1 }, .verdict = XDP_PASS,
	  .lb = { [SL_LB_FRAGMENT_PASS] = 1 }, .proto = PS_FRAG6_TCP },
	{ .name = "ipv6 later fragment to the VIP: passed unchanged",
	  .in = { TCP6(40043), .frag6 = true, .frag = 100 << 3 }, .verdict = XDP_PASS,
	  .lb = { [SL_LB_FRAGMENT_PASS] = 1 }, .proto = PS_FRAG6 },
	{ .name = "802.1Q-tagged tcp4 to the VIP: passed unchanged",
	  .in = { TCP4(40044, VIP4), SYN, .vlan = { 100 } }, .verdict = XDP_PASS,
	  .lb = { [SL_LB_VLAN_PASS] = 1 }, .proto = PS_VLAN_TCP4 },
	{ .name = "QinQ-tagged tcp6 to the VIP: passed unchanged",
	  .in = { TCP6(40045), SYN, .vlan = { 100, 200 } }, .verdict = XDP_PASS,
	  .lb = { [SL_LB_VLAN_PASS] = 1 }, .proto = PS_VLAN_TCP6 },

	/* -- malformed: passed unchanged, one parse error each. No eth_trunc
	 * case: test_run refuses frames under 14 bytes, even behind XDP
	 * metadata (EINVAL), and no driver delivers one. -- */
	{ .name = "malformed: VLAN tag cut short (vlan_trunc)",
	  .build_in = vlan_short, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_VLAN_TRUNC),
	  .proto = { [SL_PS_PACKETS] = 1, [SL_PS_OTHER_L3] = 1 } },
	{ .name = "malformed: three VLAN tags (vlan_depth)",
	  .build_in = vlan_depth3, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_VLAN_DEPTH),
	  .proto = { [SL_PS_PACKETS] = 1, [SL_PS_VLAN] = 1, [SL_PS_OTHER_L3] = 1 } },
	{ .name = "malformed: IPv4 header cut at 10 bytes (ipv4_trunc)",
	  .build_in = ipv4_short, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV4_TRUNC), .proto = PS_IP4 },
	{ .name = "malformed: IPv4 IHL 6 with 20 header bytes (ipv4_trunc)",
	  .build_in = ipv4_options_short, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV4_TRUNC), .proto = PS_IP4 },
	{ .name = "malformed: IPv4 IHL 4 (ipv4_ihl)",
	  .build_in = ipv4_ihl4, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV4_IHL), .proto = PS_IP4 },
	{ .name = "malformed: version 6 in an IPv4 ethertype (ipv4_ihl)",
	  .build_in = ipv4_version6, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV4_IHL), .proto = PS_IP4 },
	{ .name = "malformed: IPv4 total length past the frame (ipv4_len)",
	  .build_in = ipv4_totlen_long, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV4_LEN), .proto = PS_IP4 },
	{ .name = "malformed: IPv4 total length below IHL (ipv4_len)",
	  .build_in = ipv4_totlen_short, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV4_LEN), .proto = PS_IP4 },
	{ .name = "malformed: TCP header of 19 bytes (tcp_trunc)",
	  .build_in = tcp_short, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_TCP_TRUNC), .proto = PS_IP4 },
	{ .name = "malformed: TCP data offset 4 (tcp_doff)",
	  .build_in = tcp_doff4, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_TCP_DOFF), .proto = PS_IP4 },
	{ .name = "malformed: TCP data offset past the frame (tcp_trunc)",
	  .build_in = tcp_doff_past_end, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_TCP_TRUNC), .proto = PS_IP4 },
	{ .name = "malformed: UDP header of 7 bytes (udp_trunc)",
	  .build_in = udp_short, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_UDP_TRUNC), .proto = PS_IP4 },
	{ .name = "malformed: ICMP header of 7 bytes (icmp_trunc)",
	  .build_in = icmp_short, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_ICMP_TRUNC), .proto = PS_IP4 },
	{ .name = "malformed: IPv6 header of 39 bytes (ipv6_trunc)",
	  .build_in = ipv6_short, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV6_TRUNC), .proto = PS_IP6 },
	{ .name = "malformed: version 4 in an IPv6 ethertype (ipv6_version)",
	  .build_in = ipv6_version4, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV6_VERSION), .proto = PS_IP6 },
	{ .name = "malformed: hop-by-hop header cut short (ipv6_ext_trunc)",
	  .build_in = ipv6_ext_short, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV6_EXT_TRUNC), .proto = PS_IP6_EXT },
	{ .name = "malformed: fragment header cut short (ipv6_ext_trunc)",
	  .build_in = ipv6_frag_short, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV6_EXT_TRUNC), .proto = PS_IP6_EXT },
	{ .name = "malformed: 7 IPv6 extension headers (ipv6_ext_depth)",
	  .build_in = ipv6_ext7, .verdict = XDP_PASS, .lb = LB_PARSE_PASS,
	  .perr = PERR(SL_PERR_IPV6_EXT_DEPTH), .proto = PS_IP6_EXT },

	/* -- ICMP errors -- */
	{ .name = "icmp4 port unreachable from a backend about a udp flow: VIP restored",
	  .prepare = prep_udp4, .in = { ICMP4(BE4_A, CLIENT4, 3, 3), .quote = Q_UDP4_AT_BE },
	  .want = { .src = VIP4, .quote = Q_UDP4_AT_VIP }, .verdict = XDP_REDIRECT,
	  .lb = LB_ICMP_REDIRECT, .proto = PS_ICMP4 },
	{ .name = "icmp4 frag needed from the backend about a tcp flow: VIP restored",
	  .prepare = prep_tcp4,
	  .in = { ICMP4(BE4_A, CLIENT4, 3, 4), .icmp_rest = 1400, .quote = Q_TCP4_AT_BE },
	  .want = { .src = VIP4, .quote = Q_TCP4_AT_VIP }, .verdict = XDP_REDIRECT,
	  .lb = LB_ICMP_REDIRECT, .proto = PS_ICMP4 },
	{ .name = "icmp4 port unreachable from the client about a reply: sent on to the backend",
	  .prepare = prep_udp4, .in = { ICMP4(CLIENT4, VIP4, 3, 3), .quote = Q_REPLY4_FROM_VIP },
	  .want = { .dst = BE4_A, .quote = Q_REPLY4_FROM_BE }, .verdict = XDP_REDIRECT,
	  .lb = LB_ICMP_REDIRECT, .proto = PS_ICMP4 },
	{ .name = "icmp6 port unreachable from the backend about a udp6 flow: VIP restored",
	  .prepare = prep_udp6, .in = { ICMP6(BE6_A, CLIENT6, 1, 4), .quote = Q_UDP6_AT_BE },
	  .want = { .src = VIP6, .quote = Q_UDP6_AT_VIP }, .verdict = XDP_REDIRECT,
	  .lb = LB_ICMP_REDIRECT, .proto = PS_ICMP6 },
	{ .name = "icmp4 error about an untracked flow: passed unchanged",
	  .prepare = prep_udp4, .in = { ICMP4(BE4_A, CLIENT4, 3, 3), .quote = Q_UDP4_UNTRACKED },
	  .verdict = XDP_PASS, .lb = LB_NOT_SERVICE, .proto = PS_ICMP4 },
};
/* clang-format on */

/* ---- the runner ---- */

/* Check what the row says about the program's output @out. */
static void expect_output(const struct lb_case *c, const struct pkt *in, const struct pkt *out,
			  struct change *ch)
{
	bool forwarded = c->verdict == XDP_TX || c->verdict == XDP_REDIRECT;
	struct spec s = c->in;
	struct pkt want;

	if (c->build_in) {
		ASSERT_BYTES(in->data, in->len, out->data, out->len, "output (unchanged)");
		return;
	}
	if (ch->dst == PICKED) {
		struct sl_ct_entry e = {};

		ASSERT_TRUE(ct_get(&c->in, &e), "forward conntrack entry exists");
		ASSERT_TRUE(is_backend_of(c->svc, e.backend_id),
			    "picked one of the service's backends");
		inet_ntop(is_v6(s.src) ? AF_INET6 : AF_INET, e.nat_addr, ch->picked,
			  sizeof(ch->picked));
		ch->dst = ch->picked;
		ch->dport = ntohs(e.nat_port);
	}
	s.src = ch->src ? ch->src : s.src;
	s.dst = ch->dst ? ch->dst : s.dst;
	s.sport = ch->sport ? ch->sport : s.sport;
	s.dport = ch->dport ? ch->dport : s.dport;
	s.quote = ch->quote ? ch->quote : s.quote;
	s.ttl = (s.ttl ? s.ttl : PKT_IP_TTL) - forwarded;
	if (forwarded)
		build_frame(&want, &s, host_mac(s.dst), lb_mac_facing(s.dst), c->in.quote);
	else
		build_frame(&want, &s, lb_mac_facing(c->in.src), host_mac(c->in.src), c->in.quote);
	ASSERT_OK(want.err, "build expected output");
	ASSERT_BYTES(want.data, want.len, out->data, out->len, "output");
	if (!ch->src && !ch->dst)
		return; /* not rewritten: checksums are the input's */
	/* The output's own checksums, whatever the builder thinks. */
	if (!is_v6(s.src))
		ASSERT_TRUE(csum_ipv4_hdr_ok(out->data + want.l3_off), "IPv4 header checksum");
	ASSERT_TRUE(csum_l4_ok(out->data, out->len), "L4 checksum");
	if (s.quote && !is_v6(s.src))
		ASSERT_TRUE(csum_ipv4_hdr_ok(out->data + want.l4_off + 8),
			    "quoted IPv4 header checksum");
}

/* bpf_ktime_get_coarse_ns() is CLOCK_MONOTONIC_COARSE, in nexthop units. */
static __u32 nexthop_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (__u32)(((__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec) >> SL_NEXTHOP_SHIFT);
}

/* The next hop a forward entry caches: the FIB's answer for @dst, valid
 * for SL_NEXTHOP_TTL from about now. Its expiry is copied from @got once
 * checked, so the byte comparison covers everything else. */
static void expect_nexthop(const char *dst, const struct sl_nexthop *got, struct sl_nexthop *want)
{
	__s32 left = (__s32)(got->expires - nexthop_now());

	want->ifindex = ingress_of(dst);
	memcpy(want->dmac, host_mac(dst), sizeof(want->dmac));
	memcpy(want->smac, lb_mac_facing(dst), sizeof(want->smac));
	ASSERT_TRUE(left > 0 && left <= SL_NEXTHOP_TTL + 1, "next hop cached for ~1 s");
	want->expires = got->expires;
}

static void expect_ct_entry(const struct spec *s, bool reply, const struct change *ch,
			    struct sl_ct_entry *want)
{
	const char *what = reply ? "reply conntrack entry" : "forward conntrack entry";
	struct sl_ct6_key key;
	struct sl_ct_entry got = {};

	ct_key(s, reply, ch, &key);
	if (!ASSERT_OK(bpf_map_lookup_elem(ct_fd(s), &key, &got) ? -errno : 0, what))
		return;
	/* The forward entry learns its next hop when the FIB answers (a
	 * backend without a neighbour entry leaves it empty); the reply
	 * entry learns it from the first reply. */
	if (!reply && got.nh.ifindex)
		expect_nexthop(ch->dst, &got.nh, &want->nh);
	ASSERT_BYTES(want, sizeof(*want), &got, sizeof(got), what);
}

/* A new flow's two entries: client -> VIP says where to DNAT to, backend
 * -> client which VIP to restore. */
static void expect_ct_pair(const struct lb_case *c, const struct change *ch)
{
	__u32 be = backend_id(c->svc, ch->dst, ch->dport);
	struct sl_ct_entry fwd = { .nat_port = htons(ch->dport),
				   .dir = SL_CT_FORWARD,
				   .svc_id = svc_id[c->svc],
				   .backend_id = be };
	struct sl_ct_entry rev = { .nat_port = htons(c->in.dport),
				   .dir = SL_CT_REPLY,
				   .svc_id = svc_id[c->svc],
				   .backend_id = be };

	ASSERT_NEQ(be, 0, "DNAT target is a backend of the service");
	addr_words(ch->dst, fwd.nat_addr);
	addr_words(c->in.dst, rev.nat_addr);
	expect_ct_entry(&c->in, false, ch, &fwd);
	expect_ct_entry(&c->in, true, ch, &rev);
}

static void run_case(const struct lb_case *c)
{
	struct change ch = c->want;
	struct traffic_snap before;
	struct sl_ct_entry e = {};
	__u32 ct4, ct6, verdict = ~0u, added = c->ct_new ? 2 - c->ct_reused : 0;
	bool v6 = !c->build_in && is_v6(c->in.src);
	uint32_t ifindex = c->build_in ? ifindex_up : ingress_of(c->in.src);
	struct pkt in, out;

	fixture_reset();
	if (c->prepare)
		c->prepare();
	counters_zero(maps.proto_st, SL_PS_MAX);
	counters_zero(maps.perr_st, SL_PERR_MAX);
	counters_zero(maps.lb_st, SL_LB_STAT_MAX);
	counters_zero(maps.drop_st, SL_DROP_MAX);
	traffic_read(&before);
	ct4 = map_count(maps.ct4);
	ct6 = map_count(maps.ct6);

	if (c->build_in)
		c->build_in(&in);
	else
		build_input(&in, &c->in);
	if (!ASSERT_OK(in.err, "build input"))
		return;
	if (!ASSERT_OK(run_prog(&in, ifindex, &out, &verdict), "prog_run"))
		return;
	ASSERT_EQ(verdict, c->verdict, "verdict");
	expect_output(c, &in, &out, &ch);

	expect_counters(maps.lb_st, "sl_lb_st", lb_names, c->lb, SL_LB_STAT_MAX);
	expect_counters(maps.proto_st, "sl_proto_st", proto_names, c->proto, SL_PS_MAX);
	expect_counters(maps.perr_st, "sl_perr_st", perr_names, c->perr, SL_PERR_MAX);
	expect_counters(maps.drop_st, "sl_drop_st", drop_names, c->drop, SL_DROP_MAX);
	if (c->traffic != TR_NONE)
		ASSERT_TRUE(ct_get(&c->in, &e), "conntrack entry of the packet's tuple");
	ASSERT_EQ(e.svc_id, c->traffic != TR_NONE ? svc_id[c->svc] : 0, "flow's service");
	expect_traffic(&before, c->traffic, e.svc_id, e.backend_id, in.len);
	if (c->ct_new)
		expect_ct_pair(c, &ch);
	ASSERT_EQ(map_count(maps.ct4), ct4 + (v6 ? 0 : added), "sl_ct4 entries");
	ASSERT_EQ(map_count(maps.ct6), ct6 + (v6 ? added : 0), "sl_ct6 entries");
	if (c->check)
		c->check(c, &out);
}

/* The next-hop cache outside the table: a fresh cached answer is used
 * as is (a marker MAC proves the FIB was not asked), a stale one is
 * replaced by the FIB's, and a reply entry learns its own from the first
 * reply. */
static void test_nexthop_cache(void)
{
	static const uint8_t marker[6] = { 0x02, 0xde, 0xad, 0xbe, 0xef, 0x01 };
	const struct spec fwd = { TCP4(42000, VIP4), ACK };
	const struct spec rev = { TUPLE(BE4_A, 8080, CLIENT4, 42000, IPPROTO_TCP), ACK };
	struct sl_ct6_key key;
	struct sl_ct_entry e;
	struct pkt out;

	fixture_reset();
	send_new_flow(&(struct spec){ TCP4(42000, VIP4), SYN });
	ct_key(&fwd, false, NULL, &key);
	if (!ASSERT_OK(bpf_map_lookup_elem(maps.ct4, &key, &e) ? -errno : 0, "forward entry"))
		return;
	memcpy(e.nh.dmac, marker, sizeof(marker));
	ASSERT_OK(bpf_map_update_elem(maps.ct4, &key, &e, BPF_EXIST) ? -errno : 0, "poison");
	ASSERT_EQ(send_spec(&fwd, &out), XDP_REDIRECT, "fresh cache: verdict");
	ASSERT_BYTES(marker, 6, out.data, 6, "fresh cache: destination MAC is the cached one");

	e.nh.expires = nexthop_now() - 1;
	ASSERT_OK(bpf_map_update_elem(maps.ct4, &key, &e, BPF_EXIST) ? -errno : 0, "expire");
	ASSERT_EQ(send_spec(&fwd, &out), XDP_REDIRECT, "stale cache: verdict");
	ASSERT_BYTES(host_mac(BE4_A), 6, out.data, 6, "stale cache: MAC from the FIB");
	ASSERT_OK(bpf_map_lookup_elem(maps.ct4, &key, &e) ? -errno : 0, "forward entry again");
	ASSERT_BYTES(host_mac(BE4_A), 6, e.nh.dmac, 6, "stale cache: refreshed");
	ASSERT_TRUE((__s32)(e.nh.expires - nexthop_now()) > 0, "stale cache: new lifetime");

	ASSERT_EQ(send_spec(&rev, &out), XDP_REDIRECT, "reply: verdict");
	ct_key(&rev, false, NULL, &key);
	ASSERT_OK(bpf_map_lookup_elem(maps.ct4, &key, &e) ? -errno : 0, "reply entry");
	ASSERT_EQ(e.nh.ifindex, ifindex_up, "reply entry learnt its egress");
	ASSERT_BYTES(host_mac(CLIENT4), 6, e.nh.dmac, 6, "reply entry learnt the client's MAC");
}

/* run_tests() calls the fn of each case whose name contains the filter,
 * in table order and without arguments (harness.h); run_next() walks the
 * table in step with it by the same rule. */
static const char *filter;
static size_t next_case;

static void run_next(void)
{
	while (filter && *filter && !strstr(cases[next_case].name, filter))
		next_case++;
	run_case(&cases[next_case++]);
}

/* ---- setup ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd)) {
		fprintf(stderr, "setup: '%s' failed\n", cmd);
		return -1;
	}
	return 0;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int err = !f || fputs(text, f) < 0;

	if (f && fclose(f))
		err = 1;
	if (err)
		fprintf(stderr, "setup: writing %s: %s\n", path, strerror(errno));
	return err ? -1 : 0;
}

static const char *mac_str(const uint8_t *m, char *buf)
{
	sprintf(buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

/* The topology at the top of this file, in a network namespace of our
 * own: it vanishes with the process. */
static int netns_setup(void)
{
	char mac[18];

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "setup: unshare(CLONE_NEWNET): %s (run as root)\n",
			strerror(errno));
		return -1;
	}
	if (sh("ip link add " IF_UP " address %s type veth peer name lb_up1",
	       mac_str(mac_up, mac)) ||
	    sh("ip link add " IF_BE " address %s type veth peer name lb_be1",
	       mac_str(mac_be, mac)) ||
	    sh("ip link set lb_up1 up && ip link set lb_be1 up") ||
	    sh("ip link set " IF_UP " up && ip link set " IF_BE " up") ||
	    sh("ip addr add 198.18.0.1/24 dev " IF_UP) ||
	    sh("ip addr add fd00::1/64 dev " IF_UP " nodad") ||
	    sh("ip addr add 198.18.1.1/24 dev " IF_BE) ||
	    sh("ip addr add fd00:0:0:1::1/64 dev " IF_BE " nodad"))
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(neighbours); i++) {
		if (sh("ip neigh add %s lladdr %s dev %s nud permanent", neighbours[i].ip,
		       mac_str(neighbours[i].mac, mac),
		       behind_be(neighbours[i].ip) ? IF_BE : IF_UP))
			return -1;
	}
	if (write_file("/proc/sys/net/ipv4/ip_forward", "1") ||
	    write_file("/proc/sys/net/ipv6/conf/all/forwarding", "1"))
		return -1;
	ifindex_up = if_nametoindex(IF_UP);
	ifindex_be = if_nametoindex(IF_BE);
	return ifindex_up && ifindex_be ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct loader_opts opts = { .maglev_size = 65537, .ct_size = 4096, .version = 1 };
	struct test_case tests[ARRAY_SIZE(cases) + 1];
	int ret;

	if (netns_setup())
		return 1;
	skel = loader_lb_load(&opts, &maps);
	if (!skel) {
		fprintf(stderr, "setup: loader_lb_load: %s\n", strerror(errno));
		return 1;
	}
	prog_fd = bpf_program__fd(skel->progs.sl_xdp_lb);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		tests[i] = (struct test_case){ .name = cases[i].name, .fn = run_next };
	tests[ARRAY_SIZE(cases)] = (struct test_case){
		.name = "next-hop cache: fresh used, stale refreshed, reply learns its own",
		.fn = test_nexthop_cache,
	};
	filter = argc > 1 ? argv[1] : NULL;
	ret = run_tests(tests, ARRAY_SIZE(tests), filter, "bpf/xdp_lb");
	xdp_lb__destroy(skel);
	return ret;
}
