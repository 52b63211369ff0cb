/* Test packet builders (struct pkt) and independent checksum verifiers.
 *
 * Headers are written byte by byte in network order rather than through
 * libc header structs, so the bytes are exactly what the code says and the
 * verifiers share no parsing state with the builders. Contracts: pkt.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "pkt.h"

#define ETH_HLEN 14
#define VLAN_HLEN 4
#define IPV4_HLEN 20
#define IPV6_HLEN 40
#define TCP_HLEN 20
#define UDP_HLEN 8
#define ICMP_HLEN 8
#define IPV6_FRAG_HLEN 8

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86dd
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88a8

#define PROTO_HOPOPTS 0
#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ROUTING 43
#define PROTO_FRAGMENT 44
#define PROTO_AH 51
#define PROTO_ICMPV6 58
#define PROTO_DSTOPTS 60

#define IPV6_OPT_PADN 1

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
}

static void put32(uint8_t *b, uint32_t v)
{
	put16(b, v >> 16);
	put16(b + 2, v & 0xffff);
}

static uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

/* Record the first error only: later failures are usually fallout. */
static int pkt_fail(struct pkt *p, int err)
{
	if (!p->err)
		p->err = err;
	return -1;
}

void pkt_init(struct pkt *p)
{
	memset(p, 0, sizeof(*p));
	p->l3_off = PKT_NO_OFF;
	p->l4_off = PKT_NO_OFF;
}

/* Append hdr_len zeroed bytes followed by payload (zeros if NULL).
 * Nothing is written unless all of it fits, so a failed builder leaves
 * the frame as it was. Returns the header start or NULL (p->err set).
 */
static uint8_t *pkt_put(struct pkt *p, size_t hdr_len, const void *payload, size_t payload_len)
{
	uint8_t *h;

	if (p->err)
		return NULL;
	if (hdr_len > PKT_MAX - p->len || payload_len > PKT_MAX - p->len - hdr_len) {
		pkt_fail(p, -ENOSPC);
		return NULL;
	}
	h = p->data + p->len;
	memset(h, 0, hdr_len + payload_len);
	if (payload && payload_len)
		memcpy(h + hdr_len, payload, payload_len);
	p->len += hdr_len + payload_len;
	return h;
}

static bool layer_is_ip(enum pkt_layer_kind kind)
{
	return kind == PKT_L_IPV4 || kind == PKT_L_IPV6;
}

/* pkt_put() for a header pkt_finish() must fix up: also records it, and
 * the outermost l3/l4 offsets.
 */
static uint8_t *pkt_put_layer(struct pkt *p, enum pkt_layer_kind kind, size_t hdr_len,
			      const void *payload, size_t payload_len)
{
	size_t off = p->len;
	uint8_t *h;

	if (!p->err && p->n_layers == PKT_MAX_LAYERS)
		pkt_fail(p, -ENOSPC);
	h = pkt_put(p, hdr_len, payload, payload_len);
	if (!h)
		return NULL;
	p->layers[p->n_layers].kind = kind;
	p->layers[p->n_layers].off = off;
	p->layers[p->n_layers].hdr_len = hdr_len;
	p->n_layers++;
	if (layer_is_ip(kind)) {
		if (p->l3_off == PKT_NO_OFF)
			p->l3_off = off;
	} else if (p->l4_off == PKT_NO_OFF) {
		p->l4_off = off;
	}
	return h;
}

int pkt_eth(struct pkt *p, const uint8_t dst[6], const uint8_t src[6], uint16_t ethertype)
{
	uint8_t *h = pkt_put(p, ETH_HLEN, NULL, 0);

	if (!h)
		return -1;
	memcpy(h, dst, 6);
	memcpy(h + 6, src, 6);
	put16(h + 12, ethertype);
	return ETH_HLEN;
}

int pkt_vlan(struct pkt *p, uint16_t tci, uint16_t inner_ethertype)
{
	uint8_t *h = pkt_put(p, VLAN_HLEN, NULL, 0);

	if (!h)
		return -1;
	put16(h, tci);
	put16(h + 2, inner_ethertype);
	return VLAN_HLEN;
}

int pkt_ipv4(struct pkt *p, const char *src, const char *dst, uint8_t proto, const uint8_t *options,
	     size_t opt_len, uint16_t frag_off)
{
	size_t hlen = IPV4_HLEN + opt_len;
	uint8_t saddr[4], daddr[4];
	uint8_t *h;

	if (p->err)
		return -1;
	if (opt_len % 4 || opt_len > 40 || (opt_len && !options) ||
	    inet_pton(AF_INET, src, saddr) != 1 || inet_pton(AF_INET, dst, daddr) != 1)
		return pkt_fail(p, -EINVAL);
	h = pkt_put_layer(p, PKT_L_IPV4, hlen, NULL, 0);
	if (!h)
		return -1;
	h[0] = 0x40 | hlen / 4;
	put16(h + 4, PKT_IP_ID);
	put16(h + 6, frag_off);
	h[8] = PKT_IP_TTL;
	h[9] = proto;
	memcpy(h + 12, saddr, 4);
	memcpy(h + 16, daddr, 4);
	if (opt_len)
		memcpy(h + IPV4_HLEN, options, opt_len);
	return hlen;
}

int pkt_ipv6(struct pkt *p, const char *src, const char *dst, uint8_t next_hdr)
{
	uint8_t saddr[16], daddr[16];
	uint8_t *h;

	if (p->err)
		return -1;
	if (inet_pton(AF_INET6, src, saddr) != 1 || inet_pton(AF_INET6, dst, daddr) != 1)
		return pkt_fail(p, -EINVAL);
	h = pkt_put_layer(p, PKT_L_IPV6, IPV6_HLEN, NULL, 0);
	if (!h)
		return -1;
	h[0] = 0x60;
	h[6] = next_hdr;
	h[7] = PKT_IP_TTL;
	memcpy(h + 8, saddr, 16);
	memcpy(h + 24, daddr, 16);
	return IPV6_HLEN;
}

int pkt_ipv6_ext(struct pkt *p, uint8_t type, uint8_t next_hdr, uint8_t len8, const void *body)
{
	size_t hlen = 8 * ((size_t)len8 + 1);
	uint8_t *h;

	if (p->err)
		return -1;
	if (type == PROTO_FRAGMENT || type == PROTO_AH)
		return pkt_fail(p, -EINVAL);
	h = pkt_put(p, 2, body, hlen - 2);
	if (!h)
		return -1;
	h[0] = next_hdr;
	h[1] = len8;
	if (!body && (type == PROTO_HOPOPTS || type == PROTO_DSTOPTS)) {
		h[2] = IPV6_OPT_PADN;
		h[3] = hlen - 4;
	}
	return hlen;
}

int pkt_ipv6_frag(struct pkt *p, uint8_t next_hdr, uint16_t offset8, bool more, uint32_t id)
{
	uint8_t *h;

	if (p->err)
		return -1;
	if (offset8 > 0x1fff)
		return pkt_fail(p, -EINVAL);
	h = pkt_put(p, IPV6_FRAG_HLEN, NULL, 0);
	if (!h)
		return -1;
	h[0] = next_hdr;
	put16(h + 2, offset8 << 3 | more);
	put32(h + 4, id);
	return IPV6_FRAG_HLEN;
}

int pkt_tcp(struct pkt *p, uint16_t sport, uint16_t dport, uint8_t flags, const void *payload,
	    size_t len)
{
	uint8_t *h = pkt_put_layer(p, PKT_L_TCP, TCP_HLEN, payload, len);

	if (!h)
		return -1;
	put16(h, sport);
	put16(h + 2, dport);
	h[12] = (TCP_HLEN / 4) << 4;
	h[13] = flags;
	put16(h + 14, PKT_TCP_WINDOW);
	return TCP_HLEN + len;
}

int pkt_udp(struct pkt *p, uint16_t sport, uint16_t dport, const void *payload, size_t len)
{
	uint8_t *h = pkt_put_layer(p, PKT_L_UDP, UDP_HLEN, payload, len);

	if (!h)
		return -1;
	put16(h, sport);
	put16(h + 2, dport);
	return UDP_HLEN + len;
}

static int pkt_icmp(struct pkt *p, enum pkt_layer_kind kind, uint8_t type, uint8_t code,
		    uint32_t rest, const void *payload, size_t len)
{
	uint8_t *h = pkt_put_layer(p, kind, ICMP_HLEN, payload, len);

	if (!h)
		return -1;
	h[0] = type;
	h[1] = code;
	put32(h + 4, rest);
	return ICMP_HLEN + len;
}

int pkt_icmp4(struct pkt *p, uint8_t type, uint8_t code, uint32_t rest, const void *payload,
	      size_t len)
{
	return pkt_icmp(p, PKT_L_ICMP4, type, code, rest, payload, len);
}

int pkt_icmp6(struct pkt *p, uint8_t type, uint8_t code, uint32_t rest, const void *payload,
	      size_t len)
{
	return pkt_icmp(p, PKT_L_ICMP6, type, code, rest, payload, len);
}

int pkt_raw(struct pkt *p, const void *data, size_t len)
{
	if (!pkt_put(p, 0, data, len))
		return -1;
	return len;
}

uint32_t csum_partial_buf(const void *buf, size_t len, uint32_t seed)
{
	const uint8_t *b = buf;
	uint64_t sum = seed;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += get16(b + i);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	/* 2^32 == 1 mod 0xffff, so end-around carries keep the sum exact */
	while (sum >> 32)
		sum = (sum & 0xffffffff) + (sum >> 32);
	return sum;
}

uint16_t csum_fold_buf(const void *buf, size_t len, uint32_t seed)
{
	uint32_t sum = csum_partial_buf(buf, len, seed);

	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* Pseudo-header sum for an L4 segment of l4_len bytes under ip. */
static uint32_t pseudo_sum(const uint8_t *ip, bool v6, uint8_t proto, uint32_t l4_len)
{
	uint32_t sum;

	if (v6)
		sum = csum_partial_buf(ip + 8, 32, 0);
	else
		sum = csum_partial_buf(ip + 12, 8, 0);
	return sum + proto + (l4_len >> 16) + (l4_len & 0xffff);
}

/* Index of the IP layer nearest before layer i, or -1. */
static int ip_layer_before(const struct pkt *p, size_t i)
{
	while (i-- > 0)
		if (layer_is_ip(p->layers[i].kind))
			return i;
	return -1;
}

/* Fill the length and checksum of L4 layer i (to the end of the frame). */
static int finish_l4(struct pkt *p, size_t i)
{
	const struct pkt_layer *l = &p->layers[i];
	uint8_t *h = p->data + l->off;
	size_t l4_len = p->len - l->off;
	int ip_i = ip_layer_before(p, i);
	const uint8_t *ip;
	bool v6;
	uint16_t csum;

	if (l->kind == PKT_L_ICMP4) {
		put16(h + 2, 0);
		put16(h + 2, csum_fold_buf(h, l4_len, 0));
		return 0;
	}
	if (ip_i < 0)
		return pkt_fail(p, -EINVAL);
	ip = p->data + p->layers[ip_i].off;
	v6 = p->layers[ip_i].kind == PKT_L_IPV6;
	switch (l->kind) {
	case PKT_L_TCP:
		put16(h + 16, 0);
		put16(h + 16, csum_fold_buf(h, l4_len, pseudo_sum(ip, v6, PROTO_TCP, l4_len)));
		break;
	case PKT_L_UDP:
		put16(h + 4, l4_len);
		put16(h + 6, 0);
		csum = csum_fold_buf(h, l4_len, pseudo_sum(ip, v6, PROTO_UDP, l4_len));
		/* 0 means "no checksum" on the wire; send its equal 0xffff */
		put16(h + 6, csum ? csum : 0xffff);
		break;
	case PKT_L_ICMP6:
		put16(h + 2, 0);
		put16(h + 2, csum_fold_buf(h, l4_len, pseudo_sum(ip, v6, PROTO_ICMPV6, l4_len)));
		break;
	default:
		break;
	}
	return 0;
}

static void finish_ip(struct pkt *p, size_t i)
{
	const struct pkt_layer *l = &p->layers[i];
	uint8_t *h = p->data + l->off;

	if (l->kind == PKT_L_IPV6) {
		put16(h + 4, p->len - l->off - IPV6_HLEN);
		return;
	}
	put16(h + 2, p->len - l->off);
	put16(h + 10, 0);
	put16(h + 10, csum_fold_buf(h, l->hdr_len, 0));
}

int pkt_finish(struct pkt *p)
{
	size_t i;

	if (p->err)
		return -1;
	/* innermost first: outer checksums must see finished inner bytes */
	for (i = p->n_layers; i-- > 0;) {
		/* lengths below run to p->len and must not underflow */
		if (p->layers[i].off > p->len || p->layers[i].hdr_len > p->len - p->layers[i].off)
			return pkt_fail(p, -EINVAL);
		if (layer_is_ip(p->layers[i].kind))
			finish_ip(p, i);
		else if (finish_l4(p, i))
			return -1;
	}
	return p->len;
}

void pkt_truncate(struct pkt *p, size_t len)
{
	if (len < p->len)
		p->len = len;
}

bool csum_ipv4_hdr_ok(const uint8_t *ip)
{
	size_t hlen = (ip[0] & 0xf) * 4;

	if (ip[0] >> 4 != 4 || hlen < IPV4_HLEN)
		return false;
	return csum_fold_buf(ip, hlen, 0) == 0;
}

/* Where the L4 segment of an IP packet lies, per its length fields. */
struct l4_loc {
	bool v6;
	uint8_t proto;
	size_t off;
	size_t len;
};

static bool locate_l4_v4(const uint8_t *ip, size_t len, struct l4_loc *loc)
{
	size_t hlen, tot;

	if (len < IPV4_HLEN)
		return false;
	hlen = (ip[0] & 0xf) * 4;
	tot = get16(ip + 2);
	if (hlen < IPV4_HLEN || tot < hlen || tot > len)
		return false;
	/* a non-first fragment has no L4 header to check */
	if (get16(ip + 6) & 0x1fff)
		return false;
	loc->v6 = false;
	loc->proto = ip[9];
	loc->off = hlen;
	loc->len = tot - hlen;
	return true;
}

/* Size of the extension header nh at ip + off (ending at end), 0 when nh
 * is not an extension header, -1 when it is malformed or truncated.
 */
static long ext_hdr_len(const uint8_t *ip, size_t off, size_t end, uint8_t nh)
{
	if (nh != PROTO_HOPOPTS && nh != PROTO_ROUTING && nh != PROTO_DSTOPTS &&
	    nh != PROTO_FRAGMENT && nh != PROTO_AH)
		return 0;
	if (end - off < 8)
		return -1;
	switch (nh) {
	case PROTO_FRAGMENT:
		/* a non-first fragment has no L4 header to check */
		return get16(ip + off + 2) & 0xfff8 ? -1 : IPV6_FRAG_HLEN;
	case PROTO_AH:
		return ((long)ip[off + 1] + 2) * 4;
	default:
		return ((long)ip[off + 1] + 1) * 8;
	}
}

static bool locate_l4_v6(const uint8_t *ip, size_t len, struct l4_loc *loc)
{
	size_t off = IPV6_HLEN, end;
	uint8_t nh;
	long hl;

	if (len < IPV6_HLEN)
		return false;
	end = IPV6_HLEN + get16(ip + 4);
	if (end > len)
		return false;
	nh = ip[6];
	/* each header is >= 8 bytes, so this ends within end / 8 rounds */
	while ((hl = ext_hdr_len(ip, off, end, nh)) != 0) {
		if (hl < 0 || (size_t)hl > end - off)
			return false;
		nh = ip[off];
		off += hl;
	}
	loc->v6 = true;
	loc->proto = nh;
	loc->off = off;
	loc->len = end - off;
	return true;
}

/* Check the located segment's checksum per its protocol's rules. */
static bool l4_csum_ok(const uint8_t *ip, const struct l4_loc *loc)
{
	const uint8_t *h = ip + loc->off;
	size_t len = loc->len;
	uint32_t seed;

	switch (loc->proto) {
	case PROTO_TCP:
		if (len < TCP_HLEN)
			return false;
		break;
	case PROTO_UDP:
		if (len < UDP_HLEN)
			return false;
		/* bytes past the UDP length are IP padding, not covered */
		if (get16(h + 4) < UDP_HLEN || get16(h + 4) > len)
			return false;
		len = get16(h + 4);
		if (!get16(h + 6))
			return !loc->v6;
		break;
	case PROTO_ICMP:
		if (loc->v6 || len < ICMP_HLEN)
			return false;
		return csum_fold_buf(h, len, 0) == 0;
	case PROTO_ICMPV6:
		if (!loc->v6 || len < ICMP_HLEN)
			return false;
		break;
	default:
		return false;
	}
	seed = pseudo_sum(ip, loc->v6, loc->proto, len);
	return csum_fold_buf(h, len, seed) == 0;
}

bool csum_l4_ok_ip(const uint8_t *ip, size_t len)
{
	struct l4_loc loc;

	if (len < 1)
		return false;
	switch (ip[0] >> 4) {
	case 4:
		if (!locate_l4_v4(ip, len, &loc))
			return false;
		break;
	case 6:
		if (!locate_l4_v6(ip, len, &loc))
			return false;
		break;
	default:
		return false;
	}
	return l4_csum_ok(ip, &loc);
}

bool csum_l4_ok(const uint8_t *frame, size_t len)
{
	size_t off = ETH_HLEN;
	uint16_t type;

	if (len < ETH_HLEN)
		return false;
	type = get16(frame + 12);
	while (type == ETH_P_8021Q || type == ETH_P_8021AD) {
		if (len - off < VLAN_HLEN)
			return false;
		type = get16(frame + off + 2);
		off += VLAN_HLEN;
	}
	if (len - off < 1)
		return false;
	/* the ethertype must agree with the version nibble */
	if (!(type == ETH_P_IP && frame[off] >> 4 == 4) &&
	    !(type == ETH_P_IPV6 && frame[off] >> 4 == 6))
		return false;
	return csum_l4_ok_ip(frame + off, len - off);
}
