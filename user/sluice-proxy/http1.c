/* The HTTP/1.x request and response head parsers declared in http1.h.
 * One pass over the bytes with a character-class table, no allocation,
 * nothing written outside the caller's header array until a head is
 * known good. Everything RFC 9112 lets a recipient refuse and that two
 * parsers could read differently (bare LF, obs-fold, CL+TE, odd codings,
 * duplicate Host) is refused, so what we forward frames the same way for
 * the upstream as it did for us. Chunked bodies: http1_body.c. */
#include <limits.h>
#include <string.h>

#include "http1.h"
#include "http1_internal.h"

#define CL_MAX (1ULL << 62) /* Content-Length above this is refused */

#define T (C_TCHAR | C_VCHAR | C_FIELD) /* token characters */
#define D (C_VCHAR | C_FIELD) /* delimiters */
#define H C_HOST

/* Ranges never overlap: -Woverride-init is part of -Wextra. */
const uint8_t http1_cls[256] = {
	['\t'] = C_FIELD | C_OWS,
	[' '] = C_FIELD | C_OWS,
	['!'] = T | H,
	['"'] = D,
	['#'] = T,
	['$'] = T | H,
	['%'] = T | H,
	['&'] = T | H,
	['\''] = T | H,
	['('] = D | H,
	[')'] = D | H,
	['*'] = T | H,
	['+'] = T | H,
	[','] = D | H,
	['-'] = T | H,
	['.'] = T | H,
	['/'] = D,
	['0' ... '9'] = T | H,
	[':'] = D | H,
	[';'] = D | H,
	['<' ... '>'] = D,
	['?' ... '@'] = D,
	['A' ... 'Z'] = T | H,
	['['] = D | H,
	['\\'] = D,
	[']'] = D | H,
	['^'] = T,
	['_'] = T | H,
	['`'] = T,
	['a' ... 'z'] = T | H,
	['{'] = D,
	['|'] = T,
	['}'] = D,
	['~'] = T | H,
	[0x80 ... 0xff] = C_FIELD,
};

#undef T
#undef D
#undef H

/* The first byte of [p, end) outside @mask, or end. Unrolled: the
 * bounds check per byte costs as much as the class lookup. */
static inline const char *skip(const char *p, const char *end, unsigned int mask)
{
	while (end - p >= 4) {
		if (!is(p[0], mask))
			return p;
		if (!is(p[1], mask))
			return p + 1;
		if (!is(p[2], mask))
			return p + 2;
		if (!is(p[3], mask))
			return p + 3;
		p += 4;
	}
	while (p < end && is(*p, mask))
		p++;
	return p;
}

/* ---- framing headers, gathered while the head is parsed ---- */

struct meta {
	uint64_t content_length;
	const char *host;
	size_t host_len;
	unsigned int n_host;
	unsigned int n_chunked; /* "chunked" codings over all TE fields */
	bool has_cl, has_te;
	bool te_chunked_last; /* the last coding seen is "chunked" */
	bool conn_close, conn_keep_alive;
	bool expect_continue, upgrade;
};

/* One Content-Length field: a list of equal decimal numbers (RFC 9110
 * 8.6 lets a recipient accept "5, 5"), equal to any earlier field too. */
static int note_content_length(struct meta *m, const char *v, size_t n)
{
	const char *p = v, *e;
	size_t len, i;
	uint64_t x;

	while (list_next(&p, v + n, &e, &len)) {
		if (!len)
			return HTTP1_MALFORMED;
		for (x = 0, i = 0; i < len; i++) {
			unsigned int d = (uint8_t)e[i] - '0';

			if (d > 9 || x > (CL_MAX - d) / 10)
				return HTTP1_MALFORMED;
			x = x * 10 + d;
		}
		if (m->has_cl && x != m->content_length)
			return HTTP1_MALFORMED;
		m->has_cl = true;
		m->content_length = x;
	}
	return 0;
}

/* One Transfer-Encoding field. Fields add up to one list (RFC 9110 5.3),
 * so whether "chunked" is last is decided once the head is complete.
 * Empty elements are refused: parsers disagree on "chunked, ". */
static int note_transfer_encoding(struct meta *m, const char *v, size_t n)
{
	const char *p = v, *e;
	size_t len;

	m->has_te = true;
	while (list_next(&p, v + n, &e, &len)) {
		if (!len || !is(*e, C_TCHAR))
			return HTTP1_MALFORMED;
		m->te_chunked_last = ieq_str(e, len, "chunked");
		m->n_chunked += m->te_chunked_last;
	}
	return 0;
}

static void note_connection(struct meta *m, const char *v, size_t n)
{
	const char *p = v, *e;
	size_t len;

	while (list_next(&p, v + n, &e, &len)) {
		if (ieq_str(e, len, "close"))
			m->conn_close = true;
		else if (ieq_str(e, len, "keep-alive"))
			m->conn_keep_alive = true;
	}
}

/* A Host value: uri-host [":" port] (RFC 9110 7.2), possibly empty.
 * Routing keys on it, so nothing else gets through. */
static bool host_ok(const char *v, size_t n)
{
	return skip(v, v + n, C_HOST) == v + n;
}

/* Take in one parsed field; the framing headers are told apart by length
 * first so most fields cost one switch. */
static int note_header(struct meta *m, const struct http1_header *h)
{
	switch (h->name_len) {
	case 4:
		if (!ieq(h->name, "host", 4))
			break;
		if (++m->n_host > 1 || !host_ok(h->value, h->value_len))
			return HTTP1_MALFORMED;
		m->host = h->value;
		m->host_len = h->value_len;
		break;
	case 6:
		if (ieq(h->name, "expect", 6) && ieq_str(h->value, h->value_len, "100-continue"))
			m->expect_continue = true;
		break;
	case 7:
		if (ieq(h->name, "upgrade", 7))
			m->upgrade = true;
		break;
	case 10:
		if (ieq(h->name, "connection", 10))
			note_connection(m, h->value, h->value_len);
		break;
	case 14:
		if (ieq(h->name, "content-length", 14))
			return note_content_length(m, h->value, h->value_len);
		break;
	case 17:
		if (ieq(h->name, "transfer-encoding", 17))
			return note_transfer_encoding(m, h->value, h->value_len);
		break;
	}
	return 0;
}

/* ---- lines ---- */

/* Expect CRLF at @p. Returns 0 (and *@next past it), INCOMPLETE or
 * MALFORMED: a CR without LF, and a bare LF, are both refused. */
static int crlf(const char *p, const char *end, const char **next)
{
	if (p == end)
		return HTTP1_INCOMPLETE;
	if (*p != '\r')
		return HTTP1_MALFORMED;
	if (p + 1 == end)
		return HTTP1_INCOMPLETE;
	if (p[1] != '\n')
		return HTTP1_MALFORMED;
	*next = p + 2;
	return 0;
}

/*
 * parse_version() - "HTTP/" DIGIT "." DIGIT at @p. Returns major * 10 +
 * minor (any digits: the caller decides on HTTP1_BAD_VERSION once the
 * line is known well-formed), INCOMPLETE or MALFORMED.
 */
static int parse_version(const char *p, const char *end)
{
	static const char pat[] = "HTTP/0.0";
	int v = 0, i;

	for (i = 0; i < 8; i++) {
		if (p + i == end)
			return HTTP1_INCOMPLETE;
		if (pat[i] == '0') {
			if (p[i] < '0' || p[i] > '9')
				return HTTP1_MALFORMED;
			v = v * 10 + p[i] - '0';
		} else if (p[i] != pat[i]) {
			return HTTP1_MALFORMED;
		}
	}
	return v;
}

/*
 * parse_header() - one field line at @p, up to @end. Fills @h (value
 * trimmed) and *@next (past the CRLF). Returns 0, INCOMPLETE when @end
 * comes first, or MALFORMED: empty name, whitespace before the colon (a
 * line starting with whitespace, obs-fold, is the same), a CTL in the
 * value, CR or LF anywhere but the line end.
 */
static int parse_header(const char *p, const char *end, struct http1_header *h, const char **next)
{
	const char *q = skip(p, end, C_TCHAR), *v;

	if (q == end)
		return HTTP1_INCOMPLETE;
	if (q == p || *q != ':')
		return HTTP1_MALFORMED;
	h->name = p;
	h->name_len = q - p;
	q = skip(q + 1, end, C_OWS);
	v = q;
	q = skip(q, end, C_FIELD);
	h->value = v;
	h->value_len = q - v;
	while (h->value_len && is(v[h->value_len - 1], C_OWS))
		h->value_len--;
	return crlf(q, end, next);
}

/*
 * parse_fields() - the header section at @p through its empty line.
 * Stores the fields in @headers (room for @max), gathering framing into
 * @m. Returns the end of the head, or NULL with *@err set to INCOMPLETE
 * (ran into @end), HEAD_TOO_LARGE (more than @max fields) or MALFORMED.
 */
static const char *parse_fields(const char *p, const char *end, struct http1_header *headers,
				size_t max, size_t *n, struct meta *m, int *err)
{
	size_t i = 0;
	int ret;

	for (;;) {
		if (p < end && *p == '\r')
			break;
		if (p < end && i == max) {
			*err = HTTP1_HEAD_TOO_LARGE;
			return NULL;
		}
		ret = parse_header(p, end, &headers[i], &p);
		if (!ret)
			ret = note_header(m, &headers[i]);
		if (ret) {
			*err = ret;
			return NULL;
		}
		i++;
	}
	*n = i;
	*err = crlf(p, end, &p);
	return *err ? NULL : p;
}

/* ---- requests ---- */

/* Where a scan bounded by @limit bytes from @base must stop in a buffer
 * ending at @end, without overflowing on huge limits. */
static const char *window(const char *base, size_t limit, const char *end)
{
	return limit < (size_t)(end - base) ? base + limit : end;
}

/* Skip the empty lines a request may follow (RFC 9112 2.2). Returns
 * the request line's start, or NULL with *@err set. */
static const char *skip_empty_lines(const char *p, const char *end, int *err)
{
	while (p < end && *p == '\r') {
		*err = crlf(p, end, &p);
		if (*err)
			return NULL;
	}
	return p;
}

/*
 * parse_request_line() - method SP request-target SP HTTP-version CRLF
 * at @p, no byte at or past @end. Fills method, target and minor_version
 * of @r and *@next. Returns 0, INCOMPLETE, MALFORMED or BAD_VERSION.
 */
static int parse_request_line(const char *p, const char *end, struct http1_request *r,
			      const char **next)
{
	const char *q = skip(p, end, C_TCHAR);
	int v, ret;

	if (q == end)
		return HTTP1_INCOMPLETE;
	if (q == p || *q != ' ')
		return HTTP1_MALFORMED;
	r->method = p;
	r->method_len = q - p;
	p = q + 1;
	q = skip(p, end, C_VCHAR);
	if (q == end)
		return HTTP1_INCOMPLETE;
	if (q == p || *q != ' ')
		return HTTP1_MALFORMED;
	r->target = p;
	r->target_len = q - p;
	v = parse_version(q + 1, end);
	if (v < 0)
		return v;
	ret = crlf(q + 9, end, next);
	if (ret)
		return ret;
	if (v != 10 && v != 11)
		return HTTP1_BAD_VERSION;
	r->minor_version = v - 10;
	return 0;
}

/* An absolute-form target ("scheme://authority[/path][?query]"): the
 * authority becomes the host, the path is what follows up to '?' or '#'.
 * Returns false if @r->target is not in absolute form. */
static bool absolute_form(struct http1_request *r)
{
	const char *t = r->target, *end = t + r->target_len, *p = t, *a;

	while (p < end &&
	       ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		(p > t && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))))
		p++;
	if (p == t || end - p < 3 || memcmp(p, "://", 3))
		return false;
	a = p + 3;
	p = a;
	while (p < end && *p != '/' && *p != '?' && *p != '#')
		p++;
	r->host = a;
	r->host_len = p - a;
	r->path = p;
	while (p < end && *p != '?' && *p != '#')
		p++;
	r->path_len = p - r->path;
	if (!r->path_len || *r->path != '/') {
		r->path = "/";
		r->path_len = 1;
	}
	return true;
}

/*
 * request_target() - sort @r's target into its form (RFC 9112 3.2) and
 * set path, and host for absolute-form. The form must suit the method:
 * "*" only with OPTIONS, authority-form only with CONNECT (its path is
 * the target). Returns 0 or MALFORMED.
 */
static int request_target(struct http1_request *r)
{
	const char *t = r->target, *p;

	if (*t == '/') {
		for (p = t; p < t + r->target_len && *p != '?' && *p != '#'; p++)
			;
		r->path = t;
		r->path_len = p - t;
		return 0;
	}
	if (r->method_id == HTTP1_CONNECT) {
		r->path = t;
		r->path_len = r->target_len;
		return 0;
	}
	if (r->target_len == 1 && *t == '*') {
		if (r->method_id != HTTP1_OPTIONS)
			return HTTP1_MALFORMED;
		r->path = t;
		r->path_len = 1;
		return 0;
	}
	if (!absolute_form(r))
		return HTTP1_MALFORMED;
	/* userinfo hides the real authority (RFC 9110 4.2.4) */
	if (!r->host_len || !host_ok(r->host, r->host_len))
		return HTTP1_MALFORMED;
	return 0;
}

/* Framing and connection handling of a complete request head (RFC 9112
 * 6.1, 6.3, 9.3; RFC 9110 7.2). Returns 0 or an error. */
static int request_finish(struct http1_request *r, const struct meta *m)
{
	if (r->minor_version == 1 && !m->n_host)
		return HTTP1_MALFORMED;
	if (m->has_te) {
		if (r->minor_version == 0 || m->has_cl || m->n_chunked > 1)
			return HTTP1_MALFORMED;
		if (!m->te_chunked_last)
			return HTTP1_NOT_IMPLEMENTED;
		r->body = HTTP1_BODY_CHUNKED;
	} else if (m->has_cl) {
		r->body = HTTP1_BODY_LENGTH;
		r->content_length = m->content_length;
	}
	if (!r->host) {
		r->host = m->host;
		r->host_len = m->host_len;
	}
	r->keep_alive = !m->conn_close && (r->minor_version == 1 || m->conn_keep_alive);
	r->expect_continue = m->expect_continue;
	r->upgrade = m->upgrade;
	return 0;
}

/* The head limit, capped so that a head's length fits the int returned. */
static size_t head_limit(const struct http1_limits *lim)
{
	return lim->max_head_bytes < INT_MAX ? lim->max_head_bytes : INT_MAX;
}

/* A limit error in place of INCOMPLETE when the scan stopped at @win,
 * a limit, rather than at the end of the bytes we have. */
static int limited(int err, const char *win, const char *end, int limit_err)
{
	return err == HTTP1_INCOMPLETE && win < end ? limit_err : err;
}

int http1_parse_request(const char *buf, size_t len, struct http1_request *req,
			struct http1_header *headers, const struct http1_limits *lim)
{
	const char *end = buf + len, *head_end = window(buf, head_limit(lim), end);
	const char *p, *line_lim, *line_end;
	struct http1_request r = { 0 };
	struct meta m = { 0 };
	int err = 0;

	p = skip_empty_lines(buf, head_end, &err);
	if (!p)
		return limited(err, head_end, end, HTTP1_HEAD_TOO_LARGE);
	/* a request line past both limits is too long a URI, not a head */
	line_lim = window(p, lim->max_request_line, end);
	line_end = line_lim < head_end ? line_lim : head_end;
	err = parse_request_line(p, line_end, &r, &p);
	if (err)
		return limited(err, line_end, end,
			       line_lim <= head_end ? HTTP1_URI_TOO_LONG : HTTP1_HEAD_TOO_LARGE);
	r.method_id = http1_method_id(r.method, r.method_len);
	err = request_target(&r);
	if (err)
		return err;
	p = parse_fields(p, head_end, headers, lim->max_headers, &r.n_headers, &m, &err);
	if (!p)
		return limited(err, head_end, end, HTTP1_HEAD_TOO_LARGE);
	r.headers = headers;
	err = request_finish(&r, &m);
	if (err)
		return err;
	*req = r;
	return p - buf;
}

/* ---- responses ---- */

/* Byte @i of " SSS" plus the byte after: a space, a status of 100..999,
 * then the space before the reason or, with no reason, the CR. */
static bool status_byte_ok(int i, char ch)
{
	switch (i) {
	case 0:
		return ch == ' ';
	case 1:
		return ch >= '1' && ch <= '9';
	case 4:
		return ch == ' ' || ch == '\r';
	default:
		return ch >= '0' && ch <= '9';
	}
}

/*
 * parse_status_line() - HTTP-version SP 3DIGIT [SP reason] CRLF at @p
 * (RFC 9112 4; the space before an empty reason may be missing). Fills
 * @r and *@next. Returns 0, INCOMPLETE, MALFORMED or BAD_VERSION.
 */
static int parse_status_line(const char *p, const char *end, struct http1_response *r,
			     const char **next)
{
	int v = parse_version(p, end), i;

	if (v < 0)
		return v;
	p += 8;
	for (i = 0; i < 5; i++) {
		if (p + i == end)
			return HTTP1_INCOMPLETE;
		if (!status_byte_ok(i, p[i]))
			return HTTP1_MALFORMED;
	}
	r->status = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
	p += 4;
	if (*p == ' ')
		p++;
	r->reason = p;
	p = skip(p, end, C_FIELD);
	r->reason_len = p - r->reason;
	i = crlf(p, end, next);
	if (i)
		return i;
	if (v != 10 && v != 11)
		return HTTP1_BAD_VERSION;
	r->minor_version = v - 10;
	return 0;
}

/* Body framing of a complete response head (RFC 9112 6.3). Both CL and
 * TE, or TE from an HTTP/1.0 server, are refused rather than guessed at:
 * the proxy re-frames the body and would forward a lie either way. */
static int response_finish(struct http1_response *r, const struct meta *m, bool head_request)
{
	if (m->has_te && (r->minor_version == 0 || m->has_cl || m->n_chunked > 1))
		return HTTP1_MALFORMED;
	if (head_request || r->status < 200 || r->status == 204 || r->status == 304) {
		r->body = HTTP1_BODY_NONE;
	} else if (m->has_te) {
		r->body = m->te_chunked_last ? HTTP1_BODY_CHUNKED : HTTP1_BODY_CLOSE;
	} else if (m->has_cl) {
		r->body = HTTP1_BODY_LENGTH;
		r->content_length = m->content_length;
	} else {
		r->body = HTTP1_BODY_CLOSE;
	}
	r->keep_alive = !m->conn_close && (r->minor_version == 1 || m->conn_keep_alive) &&
			r->body != HTTP1_BODY_CLOSE;
	return 0;
}

int http1_parse_response(const char *buf, size_t len, struct http1_response *resp,
			 struct http1_header *headers, const struct http1_limits *lim,
			 bool head_request)
{
	const char *end = buf + len, *head_end = window(buf, head_limit(lim), end);
	const char *p;
	struct http1_response r = { 0 };
	struct meta m = { 0 };
	int err;

	err = parse_status_line(buf, head_end, &r, &p);
	if (err)
		return limited(err, head_end, end, HTTP1_HEAD_TOO_LARGE);
	p = parse_fields(p, head_end, headers, lim->max_headers, &r.n_headers, &m, &err);
	if (!p)
		return limited(err, head_end, end, HTTP1_HEAD_TOO_LARGE);
	r.headers = headers;
	err = response_finish(&r, &m, head_request);
	if (err)
		return err;
	*resp = r;
	return p - buf;
}
