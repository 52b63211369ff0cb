/* http_upstream's request parsing: the request line and the route its
 * path picks, the headers that decide framing and persistence, and the
 * body (Content-Length or chunked), discarded or kept for /echo. What it
 * refuses is answered with a status and c->why by req_reject(). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream.h"

/* ---- request parsing: these return 0, -EAGAIN when more input is
 * needed, -errno on failure, or a status code to reject the request with
 * (c->why says why) ---- */

static int bad(struct conn *c, int code, const char *why)
{
	c->why = why;
	return code;
}

static int parse_num(const char *p, size_t n, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	if (!n || n > 18)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

static bool is_token(const char *p, size_t n)
{
	size_t i;

	if (!n)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = p[i];

		if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
			continue;
		/* ch first: strchr() would find the NUL terminator */
		if (!ch || (!(ch >= '0' && ch <= '9') && !strchr("!#$%&'*+-.^_`|~", ch)))
			return false;
	}
	return true;
}

static bool token_is(const char *p, size_t n, const char *lit)
{
	return n == strlen(lit) && !strncasecmp(p, lit, n);
}

/* Next element of a comma-separated header value, trimmed; false at the end. */
static bool list_next(const char **pos, const char *end, const char **tok, size_t *len)
{
	const char *p = *pos, *e;

	while (p < end && (*p == ',' || *p == ' ' || *p == '\t'))
		p++;
	if (p == end)
		return false;
	e = memchr(p, ',', end - p);
	if (!e)
		e = end;
	*pos = e;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*tok = p;
	*len = e - p;
	return true;
}

#define ROUTE(p, r, lo, hi)                 \
	{                                   \
		p, sizeof(p) - 1, r, lo, hi \
	}
static const struct route_def {
	const char *path;
	size_t len;
	enum route route;
	unsigned long long min, max; /* of the number after path; max 0: none */
} routes[] = {
	ROUTE("/size/", R_SIZE, 0, ARG_SIZE_MAX),
	ROUTE("/status/", R_STATUS, 200, 599),
	ROUTE("/delay/", R_DELAY, 0, ARG_DELAY_MAX),
	ROUTE("/chunked/", R_CHUNKED, 0, ARG_SIZE_MAX),
	ROUTE("/echo", R_ECHO, 0, 0),
	ROUTE("/headers", R_HEADERS, 0, 0),
	ROUTE("/close", R_CLOSE, 0, 0),
	ROUTE("/reset", R_RESET, 0, 0),
	ROUTE("/hang", R_HANG, 0, 0),
	ROUTE("/count", R_COUNT, 0, 0),
};

static int route_parse(struct conn *c, const char *t, size_t n)
{
	const struct route_def *d;
	const char *end = t + n, *p;
	size_t i;

	/* absolute-form (RFC 9112 §3.2.2): route on its path */
	p = n > 3 ? memmem(t, n, "://", 3) : NULL;
	if (p && t[0] != '/') {
		t = memchr(p + 3, '/', end - p - 3);
		n = t ? (size_t)(end - t) : 0;
	}
	for (i = 0; i < n; i++)
		if (t[i] == '?' || t[i] == '#')
			break;
	n = i;
	c->req.route = R_DEFAULT;
	for (d = routes; d < routes + sizeof(routes) / sizeof(routes[0]); d++) {
		if (!d->max) {
			if (n == d->len && !memcmp(t, d->path, n)) {
				c->req.route = d->route;
				break;
			}
		} else if (n >= d->len && !memcmp(t, d->path, d->len)) {
			if (parse_num(t + d->len, n - d->len, &c->req.arg) || c->req.arg < d->min ||
			    c->req.arg > d->max)
				return bad(c, 400, "bad number in path");
			c->req.route = d->route;
			break;
		}
	}
	return 0;
}

static int request_line(struct conn *c, const char *line, size_t len)
{
	const char *end = line + len, *sp, *t, *v;
	struct req *r = &c->req;

	sp = memchr(line, ' ', len);
	if (!sp || !is_token(line, sp - line))
		return bad(c, 400, "malformed request line");
	r->head_only = sp - line == 4 && !memcmp(line, "HEAD", 4);
	t = sp + 1;
	sp = memchr(t, ' ', end - t);
	if (!sp || sp == t)
		return bad(c, 400, "malformed request line");
	for (v = t; v < sp; v++)
		if ((unsigned char)*v < 0x21 || *v == 0x7f)
			return bad(c, 400, "malformed request target");
	v = sp + 1;
	if (end - v != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[7] < '0' || v[7] > '9')
		return bad(c, 400, "malformed HTTP version");
	if (v[5] != '1')
		return bad(c, 505, "HTTP version not supported");
	r->http10 = v[7] == '0';
	return route_parse(c, t, sp - t);
}

/* What the headers say about framing and the connection. */
struct head_info {
	unsigned long long cl;
	bool has_cl, has_te, chunked, close, keep_alive, expect;
};

static int header_line(struct conn *c, struct head_info *h, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len), *v, *end = line + len, *tok;
	unsigned long long cl;
	size_t n;

	/* also rejects obs-fold and whitespace before the colon (RFC 9112 §5) */
	if (!colon || !is_token(line, colon - line))
		return bad(c, 400, "malformed header line");
	n = colon - line;
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (token_is(line, n, "content-length")) {
		if (parse_num(v, end - v, &cl) || (h->has_cl && cl != h->cl))
			return bad(c, 400, "bad Content-Length");
		h->has_cl = true;
		h->cl = cl;
	} else if (token_is(line, n, "transfer-encoding")) {
		/* only the last coding decides whether the body is chunked */
		h->has_te = true;
		while (list_next(&v, end, &tok, &n))
			h->chunked = token_is(tok, n, "chunked");
	} else if (token_is(line, n, "connection")) {
		while (list_next(&v, end, &tok, &n)) {
			h->close |= token_is(tok, n, "close");
			h->keep_alive |= token_is(tok, n, "keep-alive");
		}
	} else if (token_is(line, n, "expect")) {
		h->expect = token_is(v, end - v, "100-continue");
	}
	return 0;
}

/* Decide framing and persistence from the headers (RFC 9112 §6.3, §9.3). */
static int head_finish(struct conn *c, const struct head_info *h)
{
	struct req *r = &c->req;

	if (h->has_te && h->has_cl)
		return bad(c, 400, "both Content-Length and Transfer-Encoding");
	if (h->has_te && !h->chunked)
		return bad(c, 400, "Transfer-Encoding does not end in chunked");
	r->keep_alive = !h->close && (!r->http10 || h->keep_alive);
	if (h->has_te && r->http10)
		r->keep_alive = false;
	r->expect = h->expect && !r->http10;
	c->parse = P_HEAD;
	if (h->chunked) {
		c->parse = P_CHUNK_SIZE;
	} else if (h->cl) {
		if (r->route == R_ECHO && h->cl > ECHO_MAX)
			return bad(c, 413, "echo body over 64 MiB");
		c->parse = P_LENGTH;
		r->left = h->cl;
	}
	return 0;
}

/* Parse a complete head of hlen bytes (through its blank line) into c->req. */
static int head_parse(struct conn *c, const char *p, size_t hlen)
{
	const char *end = p + hlen, *line, *nl;
	struct head_info h = { 0 };
	size_t len;
	int err;

	c->req = (struct req){ 0 };
	for (line = p;; line = nl + 1) {
		nl = memchr(line, '\n', end - line);
		len = nl - line;
		if (len && line[len - 1] == '\r')
			len--;
		if (!len)
			break;
		if (memchr(line, '\r', len))
			return bad(c, 400, "bare CR in head");
		if (line == p)
			err = request_line(c, line, len);
		else
			err = header_line(c, &h, line, len);
		if (err)
			return err;
	}
	return head_finish(c, &h);
}

/* Length of the head at p through its blank line (LF or CRLF endings), or 0
 * while it is incomplete; *scan remembers how far it was searched. */
static size_t head_end(const char *p, size_t n, size_t *scan)
{
	const char *nl;
	size_t at;

	for (at = *scan; (nl = memchr(p + at, '\n', n - at)); at++) {
		at = nl - p;
		if ((at >= 1 && p[at - 1] == '\n') ||
		    (at >= 2 && p[at - 1] == '\r' && p[at - 2] == '\n'))
			return at + 1;
	}
	*scan = n;
	return 0;
}

int req_head(struct conn *c)
{
	struct req *r = &c->req;
	size_t avail, hlen;
	const char *p;
	int err;

	/* RFC 9112 §2.2: ignore empty lines before a request line */
	while (c->in_rd < c->in_wr && (c->in[c->in_rd] == '\r' || c->in[c->in_rd] == '\n'))
		c->in_rd++;
	p = c->in + c->in_rd;
	avail = c->in_wr - c->in_rd;
	hlen = head_end(p, avail, &c->scan);
	if (!hlen)
		return avail >= IN_MAX ? bad(c, 431, "request head too large") : -EAGAIN;
	c->in_rd += hlen;
	c->scan = 0;
	err = head_parse(c, p, hlen);
	if (err)
		return err;
	if (r->route == R_HEADERS) {
		r->buf = malloc(hlen);
		if (!r->buf)
			return -ENOMEM;
		memcpy(r->buf, p, hlen);
		r->len = r->cap = hlen;
	}
	if (c->parse == P_HEAD)
		return req_done(c);
	if (r->expect)
		return out_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 0;
}

/* Take one line of input, without its LF or CRLF. */
static int in_line(struct conn *c, const char **line, size_t *len)
{
	const char *p = c->in + c->in_rd, *nl;
	size_t avail = c->in_wr - c->in_rd;

	nl = memchr(p, '\n', avail);
	if (!nl)
		return avail > LINE_MAX_LEN ? bad(c, 400, "chunk line too long") : -EAGAIN;
	*line = p;
	*len = nl - p;
	if (*len && p[*len - 1] == '\r')
		(*len)--;
	c->in_rd += nl - p + 1;
	return 0;
}

/* Consume body bytes; /echo keeps them, everything else discards them. */
static int body_data(struct conn *c)
{
	struct req *r = &c->req;
	size_t n = c->in_wr - c->in_rd, cap;
	char *p;

	if (n > r->left)
		n = r->left;
	if (!n)
		return -EAGAIN;
	if (r->route == R_ECHO) {
		if (r->len + n > ECHO_MAX)
			return bad(c, 413, "echo body over 64 MiB");
		if (r->len + n > r->cap) {
			for (cap = r->cap ? r->cap * 2 : 4096; cap < r->len + n; cap *= 2)
				;
			p = realloc(r->buf, cap);
			if (!p)
				return -ENOMEM;
			r->buf = p;
			r->cap = cap;
		}
		memcpy(r->buf + r->len, c->in + c->in_rd, n);
		r->len += n;
	}
	c->in_rd += n;
	r->left -= n;
	return r->left ? -EAGAIN : 0;
}

static int chunk_size(struct conn *c, const char *p, size_t len)
{
	unsigned long long v = 0;
	size_t i;
	int d;

	for (i = 0; i < len; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f')
			d = (p[i] | 0x20) - 'a' + 10;
		else
			break;
		if (v >> 58)
			return bad(c, 400, "chunk size too large");
		v = v << 4 | d;
	}
	/* extensions (";name=value") carry nothing we need */
	if (!i || (i < len && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
		return bad(c, 400, "malformed chunk size");
	c->req.left = v;
	c->parse = v ? P_CHUNK_DATA : P_TRAILER;
	return 0;
}

int req_body(struct conn *c)
{
	const char *line;
	size_t len;
	int err;

	for (;;) {
		if (c->parse == P_LENGTH || c->parse == P_CHUNK_DATA) {
			err = body_data(c);
			if (err)
				return err;
			if (c->parse == P_LENGTH)
				return req_done(c);
			c->parse = P_CHUNK_END;
			continue;
		}
		err = in_line(c, &line, &len);
		if (err)
			return err;
		if (c->parse == P_CHUNK_SIZE) {
			err = chunk_size(c, line, len);
			if (err)
				return err;
		} else if (c->parse == P_CHUNK_END) {
			if (len)
				return bad(c, 400, "chunk longer than its size");
			c->parse = P_CHUNK_SIZE;
		} else if (!len) {
			return req_done(c); /* the blank line after the trailers */
		}
	}
}
