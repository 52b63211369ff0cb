/* The HTTP/1.x head parser and chunked-body scanner declared in http1.h.
 * One pass over the bytes with a character-class table, no allocation,
 * nothing written outside the caller's header array until a head is
 * known good. Everything RFC 9112 lets a recipient refuse and that two
 * parsers could read differently (bare LF, obs-fold, CL+TE, odd codings,
 * duplicate Host) is refused, so what we forward frames the same way for
 * the upstream as it did for us. */
#include <limits.h>
#include <string.h>

#include "http1.h"

#define CL_MAX (1ULL << 62) /* Content-Length above this is refused */
#define CHUNK_SIZE_MAX (1ULL << 60) /* so is a chunk size above this */
#define CHUNK_LINE_MAX 4096 /* size line or trailer line, with its CRLF */

/* Character classes, one bit each, from RFC 9110 5.6.2 and 5.5. */
enum {
	C_TCHAR = 1 << 0, /* token: method, field name, coding */
	C_VCHAR = 1 << 1, /* request-target: 0x21..0x7e */
	C_FIELD = 1 << 2, /* field value, reason: HTAB SP VCHAR obs-text */
	C_HOST = 1 << 3, /* uri-host [":" port], IP-literal included */
	C_OWS = 1 << 4, /* SP HTAB */
};

#define T (C_TCHAR | C_VCHAR | C_FIELD) /* token characters */
#define D (C_VCHAR | C_FIELD) /* delimiters */
#define H C_HOST

/* Ranges never overlap: -Woverride-init is part of -Wextra. */
static const uint8_t cls[256] = {
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

static inline bool is(char c, unsigned int mask)
{
	return cls[(uint8_t)c] & mask;
}

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

static inline char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c | 0x20 : c;
}

/* @s (any case) equals @lc, @n bytes of lower case. */
static bool ieq(const char *s, const char *lc, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower(s[i]) != lc[i])
			return false;
	return true;
}

/* @s of @n bytes equals the NUL-terminated lower-case @lc, ignoring case. */
static bool ieq_str(const char *s, size_t n, const char *lc)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!lc[i] || lower(s[i]) != lc[i])
			return false;
	return !lc[n];
}

/* Strip OWS from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
	const char *b = *s, *e = *s + *n;

	while (b < e && is(*b, C_OWS))
		b++;
	while (e > b && is(e[-1], C_OWS))
		e--;
	*s = b;
	*n = e - b;
}

/*
 * list_next() - the next element of a comma-separated field value.
 * @pp is the cursor (start it at the value, NULL means exhausted), @end
 * the value's end. Sets @e/@n to the element with OWS trimmed (it may be
 * empty: "a,,b"). Returns false once the list is exhausted.
 */
static bool list_next(const char **pp, const char *end, const char **e, size_t *n)
{
	const char *p = *pp, *comma;

	if (!p)
		return false;
	comma = memchr(p, ',', end - p);
	*e = p;
	*n = (comma ? comma : end) - p;
	trim(e, n);
	*pp = comma ? comma + 1 : NULL;
	return true;
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

/* ---- chunked bodies ---- */

enum chunk_state {
	CH_SIZE0, /* the first hex digit of a size line (zeroed struct) */
	CH_SIZE, /* more hex digits, BWS, ';' or CR */
	CH_SIZE_WS, /* BWS after the size: more of it or ';' */
	CH_EXT, /* chunk extensions, up to CR */
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER0, /* the start of a trailer line, or the final CR */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_END_LF,
	CH_DONE,
	CH_ERROR,
};

static int hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = lower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* One byte of a size line: chunk-size [chunk-ext] CRLF (RFC 9112 7.1).
 * Returns the next state or CH_ERROR. */
static int chunk_size_byte(struct http1_chunked *c, char ch)
{
	int d = hex(ch);

	switch (c->state) {
	case CH_SIZE0:
		if (d < 0)
			return CH_ERROR;
		c->remaining = d;
		return CH_SIZE;
	case CH_SIZE:
		if (d >= 0) {
			if (c->remaining > (CHUNK_SIZE_MAX - d) >> 4)
				return CH_ERROR;
			c->remaining = c->remaining << 4 | d;
			return CH_SIZE;
		}
		if (ch == '\r')
			return CH_SIZE_LF;
		/* BWS or ';', as after BWS */
		__attribute__((__fallthrough__));
	case CH_SIZE_WS:
		if (ch == ';')
			return CH_EXT;
		return is(ch, C_OWS) ? CH_SIZE_WS : CH_ERROR;
	case CH_EXT:
		if (ch == '\r')
			return CH_SIZE_LF;
		return is(ch, C_FIELD) ? CH_EXT : CH_ERROR;
	default: /* CH_SIZE_LF */
		if (ch != '\n')
			return CH_ERROR;
		c->ext_len = 0;
		return c->remaining ? CH_DATA : CH_TRAILER0;
	}
}

/* One byte of the trailer section: field lines, then CRLF. */
static int chunk_trailer_byte(struct http1_chunked *c, char ch)
{
	switch (c->state) {
	case CH_TRAILER0:
		if (ch == '\r')
			return CH_END_LF;
		return is(ch, C_TCHAR) ? CH_TRAILER_NAME : CH_ERROR;
	case CH_TRAILER_NAME:
		if (ch == ':')
			return CH_TRAILER_VALUE;
		return is(ch, C_TCHAR) ? CH_TRAILER_NAME : CH_ERROR;
	case CH_TRAILER_VALUE:
		if (ch == '\r')
			return CH_TRAILER_LF;
		return is(ch, C_FIELD) ? CH_TRAILER_VALUE : CH_ERROR;
	case CH_TRAILER_LF:
		c->ext_len = 0;
		return ch == '\n' ? CH_TRAILER0 : CH_ERROR;
	default: /* CH_END_LF */
		return ch == '\n' ? CH_DONE : CH_ERROR;
	}
}

/* The CRLF after a chunk's data. */
static int chunk_data_end_byte(struct http1_chunked *c, char ch)
{
	if (c->state == CH_DATA_CR)
		return ch == '\r' ? CH_DATA_LF : CH_ERROR;
	c->ext_len = 0;
	return ch == '\n' ? CH_SIZE0 : CH_ERROR;
}

/* Skip chunk data in bulk: the only state that does not go byte by byte. */
static const char *chunk_data(struct http1_chunked *c, const char *p, const char *end)
{
	size_t n = end - p;

	if (n > c->remaining)
		n = c->remaining;
	c->remaining -= n;
	c->payload += n;
	if (!c->remaining)
		c->state = CH_DATA_CR;
	return p + n;
}

/* Every state but data is a line, counted against CHUNK_LINE_MAX (the
 * CRLF after data is not a line of its own and its count is reset). */
static int chunk_byte(struct http1_chunked *c, char ch)
{
	if (++c->ext_len > CHUNK_LINE_MAX)
		return CH_ERROR;
	if (c->state <= CH_SIZE_LF)
		return chunk_size_byte(c, ch);
	if (c->state <= CH_DATA_LF)
		return chunk_data_end_byte(c, ch);
	return chunk_trailer_byte(c, ch);
}

ssize_t http1_chunked_scan(struct http1_chunked *c, const char *buf, size_t len, bool *done)
{
	const char *p = buf, *end = buf + len;

	while (p < end && c->state < CH_DONE) {
		if (c->state == CH_DATA)
			p = chunk_data(c, p, end);
		else
			c->state = chunk_byte(c, *p++);
	}
	*done = c->state == CH_DONE;
	if (c->state == CH_ERROR)
		return HTTP1_MALFORMED;
	return p - buf;
}

/* ---- header helpers ---- */

bool http1_name_is(const struct http1_header *h, const char *name)
{
	return ieq_str(h->name, h->name_len, name);
}

const struct http1_header *http1_find(const struct http1_header *headers, size_t n,
				      const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (http1_name_is(&headers[i], name))
			return &headers[i];
	return NULL;
}

/* @a and @b, both of @n bytes and any case, are equal ignoring case. */
static bool ieq_any(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

/* @h's name is among the tokens of a Connection field value. */
static bool listed_in(const struct http1_header *h, const struct http1_header *conn)
{
	const char *p = conn->value, *e;
	size_t len;

	while (list_next(&p, conn->value + conn->value_len, &e, &len))
		if (len && len == h->name_len && ieq_any(e, h->name, len))
			return true;
	return false;
}

/* The hop-by-hop names of RFC 9110 7.6.1, plus Proxy-Connection, told
 * apart by length first: this runs for every forwarded field. */
static bool hop_by_hop_name(const struct http1_header *h)
{
	switch (h->name_len) {
	case 2:
		return ieq(h->name, "te", 2);
	case 7:
		return ieq(h->name, "upgrade", 7) || ieq(h->name, "trailer", 7);
	case 10:
		return ieq(h->name, "connection", 10) || ieq(h->name, "keep-alive", 10);
	case 16:
		return ieq(h->name, "proxy-connection", 16);
	case 17:
		return ieq(h->name, "transfer-encoding", 17);
	}
	return false;
}

bool http1_hop_by_hop(const struct http1_header *h, const struct http1_header *headers, size_t n)
{
	size_t i;

	if (hop_by_hop_name(h))
		return true;
	for (i = 0; i < n; i++)
		if (headers[i].name_len == 10 && ieq(headers[i].name, "connection", 10) &&
		    listed_in(h, &headers[i]))
			return true;
	return false;
}

enum http1_method http1_method_id(const char *m, size_t len)
{
	switch (len) {
	case 3:
		if (!memcmp(m, "GET", 3))
			return HTTP1_GET;
		if (!memcmp(m, "PUT", 3))
			return HTTP1_PUT;
		break;
	case 4:
		if (!memcmp(m, "POST", 4))
			return HTTP1_POST;
		if (!memcmp(m, "HEAD", 4))
			return HTTP1_HEAD;
		break;
	case 5:
		if (!memcmp(m, "PATCH", 5))
			return HTTP1_PATCH;
		if (!memcmp(m, "TRACE", 5))
			return HTTP1_TRACE;
		break;
	case 6:
		if (!memcmp(m, "DELETE", 6))
			return HTTP1_DELETE;
		break;
	case 7:
		if (!memcmp(m, "OPTIONS", 7))
			return HTTP1_OPTIONS;
		if (!memcmp(m, "CONNECT", 7))
			return HTTP1_CONNECT;
		break;
	}
	return HTTP1_OTHER;
}

/* RFC 9110 15 and the few from other RFCs a proxy meets, indexed by
 * status % 100 within each class. */
static const char *const reasons_1xx[] = { "Continue", "Switching Protocols", NULL, "Early Hints" };
static const char *const reasons_2xx[] = {
	"OK",	      "Created",       "Accepted",	 "Non-Authoritative Information",
	"No Content", "Reset Content", "Partial Content"
};
static const char *const reasons_3xx[] = {
	"Multiple Choices",  "Moved Permanently", "Found", "See Other",
	"Not Modified",	     "Use Proxy",	  NULL,	   "Temporary Redirect",
	"Permanent Redirect"
};
/* Gaps are NULL; four to a line keeps the index countable. */
/* clang-format off */
static const char *const reasons_4xx[] = {
	"Bad Request", "Unauthorized", "Payment Required", "Forbidden",
	"Not Found", "Method Not Allowed", "Not Acceptable", "Proxy Authentication Required",
	"Request Timeout", "Conflict", "Gone", "Length Required",
	"Precondition Failed", "Content Too Large", "URI Too Long", "Unsupported Media Type",
	"Range Not Satisfiable", "Expectation Failed", NULL, NULL,
	NULL, "Misdirected Request", "Unprocessable Content", NULL,
	NULL, "Too Early", "Upgrade Required", NULL,
	"Precondition Required", "Too Many Requests", NULL, "Request Header Fields Too Large",
};
/* clang-format on */
static const char *const reasons_5xx[] = { "Internal Server Error", "Not Implemented",
					   "Bad Gateway",	    "Service Unavailable",
					   "Gateway Timeout",	    "HTTP Version Not Supported" };

static const struct {
	const char *const *reason;
	size_t n;
} reasons[] = {
	{ reasons_1xx, sizeof(reasons_1xx) / sizeof(reasons_1xx[0]) },
	{ reasons_2xx, sizeof(reasons_2xx) / sizeof(reasons_2xx[0]) },
	{ reasons_3xx, sizeof(reasons_3xx) / sizeof(reasons_3xx[0]) },
	{ reasons_4xx, sizeof(reasons_4xx) / sizeof(reasons_4xx[0]) },
	{ reasons_5xx, sizeof(reasons_5xx) / sizeof(reasons_5xx[0]) },
};

const char *http1_reason(int status)
{
	unsigned int class = status / 100 - 1, i = status % 100;

	if (status < 100 || class >= sizeof(reasons) / sizeof(reasons[0]) ||
	    i >= reasons[class].n || !reasons[class].reason[i])
		return "Unknown";
	return reasons[class].reason[i];
}
