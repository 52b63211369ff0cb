/* Text forms of policy objects (policy.h): labels, selectors, peers, ports,
 * protocols and prefixes, as the CLI and the config write them, and their
 * inverses. Also the two predicates the compiler is built on: selector
 * matching and prefix containment, and pol_fail(), the message helper of
 * the whole library. Parsers fill a local copy and write their output
 * only on success. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"

/* A piece of the input: not NUL-terminated. */
struct span {
	const char *p;
	size_t len;
};

/* Shown in messages: inputs are cut here so a message fits POL_ERR_MAX. */
#define SHOW_MAX 64
#define SHOW(s) (int)((s).len < SHOW_MAX ? (s).len : SHOW_MAX), (s).p

int pol_fail(int ret, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static struct span trim(const char *p, const char *end)
{
	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	return (struct span){ p, end - p };
}

static struct span trim_str(const char *text)
{
	return trim(text, text + strlen(text));
}

static bool span_is(struct span s, const char *word)
{
	return s.len == strlen(word) && !memcmp(s.p, word, s.len);
}

/*
 * next_item() - cut the next comma-separated item from @s into @item,
 * trimmed. Returns where the item after it starts, NULL after the last.
 */
static const char *next_item(const char *s, struct span *item)
{
	const char *comma = strchr(s, ',');

	*item = trim(s, comma ? comma : s + strlen(s));
	return comma ? comma + 1 : NULL;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_value_char(char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

static bool is_key_char(char c)
{
	return is_value_char(c) || c == '/';
}

/*
 * copy_word() - check @s against the key or value syntax and copy it into
 * @dst (@size bytes with the NUL). @what names it in the message.
 */
static int copy_word(struct span s, bool key, const char *what, char *dst, size_t size, char *err,
		     size_t errlen)
{
	size_t i;

	if (key && !s.len)
		return pol_fail(-EINVAL, err, errlen, "%s: empty key", what);
	if (key && !is_alnum(s.p[0]))
		return pol_fail(-EINVAL, err, errlen, "%s \"%.*s\": must start with A-Z a-z 0-9",
				what, SHOW(s));
	if (s.len >= size)
		return pol_fail(-EINVAL, err, errlen, "%s \"%.*s...\": longer than %zu characters",
				what, SHOW(s), size - 1);
	for (i = 0; i < s.len; i++) {
		char c = s.p[i];
		bool ok = key ? is_key_char(c) : is_value_char(c);

		if (ok)
			continue;
		if (isprint((unsigned char)c))
			return pol_fail(-EINVAL, err, errlen, "%s \"%.*s\": invalid character '%c'",
					what, SHOW(s), c);
		return pol_fail(-EINVAL, err, errlen, "%s \"%.*s\": invalid byte 0x%02x", what,
				SHOW(s), (unsigned char)c);
	}
	memcpy(dst, s.p, s.len);
	dst[s.len] = '\0';
	return 0;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pol_label *)a)->key, ((const struct pol_label *)b)->key);
}

static int parse_label(struct span item, struct pol_label *l, char *err, size_t errlen)
{
	const char *eq = memchr(item.p, '=', item.len);
	int ret;

	if (!eq)
		return pol_fail(-EINVAL, err, errlen, "label \"%.*s\": expected key=value",
				SHOW(item));
	ret = copy_word(trim(item.p, eq), true, "label key", l->key, sizeof(l->key), err, errlen);
	if (!ret)
		ret = copy_word(trim(eq + 1, item.p + item.len), false, "label value", l->value,
				sizeof(l->value), err, errlen);
	return ret;
}

int pol_labels_parse(const char *text, struct pol_labels *out, char *err, size_t errlen)
{
	struct pol_labels labels = {};
	const char *s = text;
	struct span item;
	unsigned int i;
	int ret;

	if (!trim_str(text).len)
		s = NULL; /* no labels */
	while (s) {
		s = next_item(s, &item);
		if (!item.len)
			return pol_fail(-EINVAL, err, errlen, "empty label in \"%s\"", text);
		if (labels.n == POL_LABELS_MAX)
			return pol_fail(-EINVAL, err, errlen, "more than %d labels",
					POL_LABELS_MAX);
		ret = parse_label(item, &labels.l[labels.n], err, errlen);
		if (ret)
			return ret;
		labels.n++;
	}
	qsort(labels.l, labels.n, sizeof(labels.l[0]), label_cmp);
	for (i = 1; i < labels.n; i++) {
		if (!strcmp(labels.l[i - 1].key, labels.l[i].key))
			return pol_fail(-EINVAL, err, errlen, "label key \"%s\" given twice",
					labels.l[i].key);
	}
	*out = labels;
	return 0;
}

/* "k=v", "k!=v", "k" or "!k". */
static int parse_term(struct span item, struct pol_sel_term *t, char *err, size_t errlen)
{
	const char *end = item.p + item.len;
	const char *eq = memchr(item.p, '=', item.len);
	struct span key = item, value = { "", 0 };
	int ret;

	if (item.p[0] == '!' && !eq) {
		t->op = POL_SEL_ABSENT;
		key = trim(item.p + 1, end);
	} else if (eq && eq > item.p && eq[-1] == '!') {
		t->op = POL_SEL_NE;
		key = trim(item.p, eq - 1);
		value = trim(eq + 1, end);
	} else if (eq) {
		t->op = POL_SEL_EQ;
		key = trim(item.p, eq);
		value = trim(eq + 1, end);
	} else {
		t->op = POL_SEL_EXISTS;
	}
	ret = copy_word(key, true, "selector key", t->key, sizeof(t->key), err, errlen);
	if (!ret)
		ret = copy_word(value, false, "selector value", t->value, sizeof(t->value), err,
				errlen);
	return ret;
}

int pol_selector_parse(const char *text, struct pol_selector *out, char *err, size_t errlen)
{
	struct pol_selector sel = {};
	const char *s = text;
	struct span item;
	int ret;

	if (!trim_str(text).len)
		s = NULL; /* every endpoint */
	while (s) {
		s = next_item(s, &item);
		if (!item.len)
			return pol_fail(-EINVAL, err, errlen, "empty selector term in \"%s\"",
					text);
		if (sel.n == POL_LABELS_MAX)
			return pol_fail(-EINVAL, err, errlen, "more than %d selector terms",
					POL_LABELS_MAX);
		ret = parse_term(item, &sel.t[sel.n], err, errlen);
		if (ret)
			return ret;
		sel.n++;
	}
	*out = sel;
	return 0;
}

/* A bare IPv4 or IPv6 address, with its full length. */
static int parse_address(struct span s, struct pol_prefix *p)
{
	char host[INET6_ADDRSTRLEN];

	if (!s.len || s.len >= sizeof(host))
		return -EINVAL;
	memcpy(host, s.p, s.len);
	host[s.len] = '\0';
	if (inet_pton(AF_INET, host, &p->addr[0]) == 1) {
		p->family = SL_AF_INET;
		p->prefixlen = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, host, p->addr) == 1) {
		p->family = SL_AF_INET6;
		p->prefixlen = 128;
		return 0;
	}
	return -EINVAL;
}

/*
 * looks_like_cidr() - "ADDR/LEN" where ADDR has only address characters.
 * Label keys may hold a '/' too ("k8s.io/app"): those are selectors.
 */
static bool looks_like_cidr(struct span s)
{
	const char *slash = memchr(s.p, '/', s.len);
	bool sep = false;
	const char *c;

	if (!slash)
		return false;
	for (c = s.p; c < slash; c++) {
		if (*c == '.' || *c == ':')
			sep = true;
		else if (!isxdigit((unsigned char)*c))
			return false;
	}
	return sep;
}

int pol_peer_parse(const char *text, struct pol_peer *out, char *err, size_t errlen)
{
	struct span s = trim_str(text);
	struct pol_prefix bare;
	struct pol_peer peer = {};
	int ret = 0;

	if (span_is(s, "any") || span_is(s, "*")) {
		peer.kind = POL_PEER_ANY;
	} else if (span_is(s, "world")) {
		peer.kind = POL_PEER_WORLD;
	} else if (span_is(s, "host")) {
		peer.kind = POL_PEER_HOST;
	} else if (looks_like_cidr(s)) {
		peer.kind = POL_PEER_CIDR;
		ret = pol_prefix_parse(text, true, &peer.cidr, err, errlen);
	} else if (!parse_address(s, &bare)) {
		/* It would read as a label key: say what was likely meant. */
		ret = pol_fail(-EINVAL, err, errlen,
			       "\"%.*s\": a CIDR needs a length (\"%.*s/%u\")", SHOW(s), SHOW(s),
			       bare.prefixlen);
	} else {
		peer.kind = POL_PEER_SELECTOR;
		ret = pol_selector_parse(text, &peer.sel, err, errlen);
	}
	if (ret)
		return ret;
	*out = peer;
	return 0;
}

/* A decimal port, 1..65535: digits only, no sign. */
static int parse_port(struct span s, uint16_t *port, char *err, size_t errlen)
{
	unsigned long value = 0;
	size_t i;

	if (!s.len)
		return pol_fail(-EINVAL, err, errlen, "empty port");
	for (i = 0; i < s.len; i++) {
		if (!isdigit((unsigned char)s.p[i]))
			return pol_fail(-EINVAL, err, errlen, "port \"%.*s\": not a number",
					SHOW(s));
		if (value <= 65535)
			value = value * 10 + (unsigned long)(s.p[i] - '0');
	}
	if (value < 1 || value > 65535)
		return pol_fail(-EINVAL, err, errlen, "port \"%.*s\": not in 1-65535", SHOW(s));
	*port = (uint16_t)value;
	return 0;
}

static int parse_range(struct span item, struct pol_port_range *r, char *err, size_t errlen)
{
	const char *dash = memchr(item.p, '-', item.len);
	const char *end = item.p + item.len;
	int ret;

	if (!dash) {
		ret = parse_port(item, &r->first, err, errlen);
		r->last = r->first;
		return ret;
	}
	ret = parse_port(trim(item.p, dash), &r->first, err, errlen);
	if (!ret)
		ret = parse_port(trim(dash + 1, end), &r->last, err, errlen);
	if (!ret && r->first > r->last)
		ret = pol_fail(-EINVAL, err, errlen, "port range \"%.*s\": first above last",
			       SHOW(item));
	return ret;
}

int pol_ports_parse(const char *text, struct pol_port_range *out, unsigned int *n, char *err,
		    size_t errlen)
{
	struct pol_port_range ranges[POL_PORTS_MAX];
	struct span item, all = trim_str(text);
	const char *s = text;
	unsigned int count = 0;
	int ret;

	if (span_is(all, "any")) {
		*n = 0;
		return 0;
	}
	if (!all.len)
		return pol_fail(-EINVAL, err, errlen, "no ports (\"any\" means every port)");
	while (s) {
		s = next_item(s, &item);
		if (!item.len)
			return pol_fail(-EINVAL, err, errlen, "empty port in \"%s\"", text);
		if (count == POL_PORTS_MAX)
			return pol_fail(-EINVAL, err, errlen, "more than %d port ranges",
					POL_PORTS_MAX);
		ret = parse_range(item, &ranges[count], err, errlen);
		if (ret)
			return ret;
		count++;
	}
	memcpy(out, ranges, count * sizeof(ranges[0]));
	*n = count;
	return 0;
}

int pol_protos_parse(const char *text, uint8_t *out, char *err, size_t errlen)
{
	struct span s = trim_str(text);

	if (span_is(s, "tcp"))
		*out = POL_TCP;
	else if (span_is(s, "udp"))
		*out = POL_UDP;
	else if (span_is(s, "any"))
		*out = POL_ANY_PROTO;
	else
		return pol_fail(-EINVAL, err, errlen, "protocol \"%.*s\": expected tcp, udp or any",
				SHOW(s));
	return 0;
}

/* @bits leading bits of @a and @b (map order) agree. */
static bool prefix_bits_equal(const __be32 *a, const __be32 *b, unsigned int bits)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	unsigned int full = bits / 8;
	unsigned char mask;

	if (memcmp(x, y, full))
		return false;
	if (bits % 8 == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - bits % 8));
	return !((x[full] ^ y[full]) & mask);
}

/* No bit of @p past its prefix length is set. */
static bool prefix_host_bits_clear(const struct pol_prefix *p)
{
	const unsigned char *b = (const unsigned char *)p->addr;
	unsigned int max = p->family == SL_AF_INET ? 32 : 128;
	unsigned int i;

	for (i = p->prefixlen; i < max; i++) {
		if (b[i / 8] & (0x80 >> (i % 8)))
			return false;
	}
	return true;
}

/* Parse "N" into *@len, at most @max. */
static int parse_prefixlen(struct span s, unsigned int max, __u8 *len)
{
	unsigned int value = 0;
	size_t i;

	if (!s.len || s.len > 3)
		return -EINVAL;
	for (i = 0; i < s.len; i++) {
		if (!isdigit((unsigned char)s.p[i]))
			return -EINVAL;
		value = value * 10 + (unsigned int)(s.p[i] - '0');
	}
	if (value > max)
		return -EINVAL;
	*len = (__u8)value;
	return 0;
}

int pol_prefix_parse(const char *text, bool cidr, struct pol_prefix *out, char *err, size_t errlen)
{
	struct span s = trim_str(text);
	const char *slash = memchr(s.p, '/', s.len);
	struct pol_prefix p = {};

	if (!cidr && slash)
		return pol_fail(-EINVAL, err, errlen, "\"%.*s\": expected an address, not a CIDR",
				SHOW(s));
	if (cidr && !slash)
		return pol_fail(-EINVAL, err, errlen, "\"%.*s\": expected a CIDR (ADDRESS/LENGTH)",
				SHOW(s));
	if (parse_address(trim(s.p, slash ? slash : s.p + s.len), &p))
		return pol_fail(-EINVAL, err, errlen, "\"%.*s\": invalid IP address", SHOW(s));
	/* The data path looks ::ffff:a.b.c.d up as a.b.c.d: say so here. */
	if (p.family == SL_AF_INET6 && !p.addr[0] && !p.addr[1] && p.addr[2] == htonl(0xffff))
		return pol_fail(-EINVAL, err, errlen,
				"\"%.*s\": an IPv4-mapped IPv6 address; write the IPv4 address",
				SHOW(s));
	if (slash && parse_prefixlen(trim(slash + 1, s.p + s.len), p.prefixlen, &p.prefixlen))
		return pol_fail(-EINVAL, err, errlen, "CIDR \"%.*s\": invalid prefix length (0-%u)",
				SHOW(s), p.family == SL_AF_INET ? 32 : 128);
	if (!prefix_host_bits_clear(&p))
		return pol_fail(-EINVAL, err, errlen, "CIDR \"%.*s\": host bits set", SHOW(s));
	*out = p;
	return 0;
}

/* An output buffer that truncates and keeps its NUL. */
struct outbuf {
	char *buf;
	size_t len, pos;
};

__attribute__((format(printf, 2, 3))) static void put(struct outbuf *o, const char *fmt, ...)
{
	size_t room;
	va_list ap;
	int n;

	if (o->pos + 1 >= o->len)
		return; /* full, or no buffer at all */
	room = o->len - o->pos;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->pos, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->pos += (size_t)n < room ? (size_t)n : room - 1;
}

static struct outbuf outbuf_init(char *buf, size_t len)
{
	if (len)
		buf[0] = '\0';
	return (struct outbuf){ buf, len, 0 };
}

void pol_labels_format(const struct pol_labels *labels, char *buf, size_t len)
{
	struct outbuf o = outbuf_init(buf, len);
	unsigned int i;

	for (i = 0; i < labels->n && i < POL_LABELS_MAX; i++)
		put(&o, "%s%s=%s", i ? "," : "", labels->l[i].key, labels->l[i].value);
}

void pol_selector_format(const struct pol_selector *sel, char *buf, size_t len)
{
	struct outbuf o = outbuf_init(buf, len);
	unsigned int i;

	for (i = 0; i < sel->n && i < POL_LABELS_MAX; i++) {
		const struct pol_sel_term *t = &sel->t[i];
		const char *sep = i ? "," : "";

		switch (t->op) {
		case POL_SEL_EQ:
			put(&o, "%s%s=%s", sep, t->key, t->value);
			break;
		case POL_SEL_NE:
			put(&o, "%s%s!=%s", sep, t->key, t->value);
			break;
		case POL_SEL_EXISTS:
			put(&o, "%s%s", sep, t->key);
			break;
		case POL_SEL_ABSENT:
			put(&o, "%s!%s", sep, t->key);
			break;
		}
	}
}

/* A full-length prefix is written as a bare address: the form that
 * pol_prefix_parse(cidr = false) reads back. */
void pol_prefix_format(const struct pol_prefix *p, char *buf, size_t len)
{
	struct outbuf o = outbuf_init(buf, len);
	char host[INET6_ADDRSTRLEN];
	int af = p->family == SL_AF_INET ? AF_INET : AF_INET6;

	if (!inet_ntop(af, p->addr, host, sizeof(host)))
		snprintf(host, sizeof(host), "?");
	if (p->prefixlen == (af == AF_INET ? 32 : 128))
		put(&o, "%s", host);
	else
		put(&o, "%s/%u", host, p->prefixlen);
}

/* A CIDR peer always carries "/LEN": without it, it would not read back as one. */
void pol_peer_format(const struct pol_peer *peer, char *buf, size_t len)
{
	struct outbuf o = outbuf_init(buf, len);
	char host[INET6_ADDRSTRLEN];
	struct pol_prefix full;

	switch (peer->kind) {
	case POL_PEER_ANY:
		put(&o, "any");
		break;
	case POL_PEER_WORLD:
		put(&o, "world");
		break;
	case POL_PEER_HOST:
		put(&o, "host");
		break;
	case POL_PEER_SELECTOR:
		pol_selector_format(&peer->sel, buf, len);
		break;
	case POL_PEER_CIDR:
		full = peer->cidr;
		full.prefixlen = full.family == SL_AF_INET ? 32 : 128;
		pol_prefix_format(&full, host, sizeof(host));
		put(&o, "%s/%u", host, peer->cidr.prefixlen);
		break;
	}
}

void pol_ports_format(const struct pol_port_range *ports, unsigned int n, char *buf, size_t len)
{
	struct outbuf o = outbuf_init(buf, len);
	unsigned int i;

	if (!n)
		put(&o, "any");
	for (i = 0; i < n; i++) {
		const char *sep = i ? "," : "";

		if (ports[i].first == ports[i].last)
			put(&o, "%s%u", sep, ports[i].first);
		else
			put(&o, "%s%u-%u", sep, ports[i].first, ports[i].last);
	}
}

const char *pol_protos_name(uint8_t protos)
{
	switch (protos) {
	case POL_TCP:
		return "tcp";
	case POL_UDP:
		return "udp";
	case POL_ANY_PROTO:
		return "any";
	}
	return "?";
}

const char *pol_action_name(enum pol_action action)
{
	switch (action) {
	case POL_ALLOW:
		return "allow";
	case POL_DENY:
		return "deny";
	}
	return "?";
}

const char *pol_established_name(enum pol_established mode)
{
	switch (mode) {
	case POL_EST_KEEP:
		return "keep";
	case POL_EST_RECHECK:
		return "recheck";
	}
	return "?";
}

/* The value of label @key, NULL when @labels has no such key. */
static const char *label_value(const struct pol_labels *labels, const char *key)
{
	unsigned int i;

	for (i = 0; i < labels->n && i < POL_LABELS_MAX; i++) {
		if (!strcmp(labels->l[i].key, key))
			return labels->l[i].value;
	}
	return NULL;
}

static bool term_match(const struct pol_sel_term *t, const struct pol_labels *labels)
{
	const char *value = label_value(labels, t->key);

	switch (t->op) {
	case POL_SEL_EQ:
		return value && !strcmp(value, t->value);
	case POL_SEL_NE:
		return !value || strcmp(value, t->value);
	case POL_SEL_EXISTS:
		return value;
	case POL_SEL_ABSENT:
		return !value;
	}
	return false;
}

bool pol_selector_match(const struct pol_selector *sel, const struct pol_labels *labels)
{
	unsigned int i;

	for (i = 0; i < sel->n && i < POL_LABELS_MAX; i++) {
		if (!term_match(&sel->t[i], labels))
			return false;
	}
	return true;
}

bool pol_prefix_within(const struct pol_prefix *inner, const struct pol_prefix *outer)
{
	if (inner->family != outer->family || inner->prefixlen < outer->prefixlen ||
	    outer->prefixlen > 128)
		return false;
	return prefix_bits_equal(inner->addr, outer->addr, outer->prefixlen);
}
