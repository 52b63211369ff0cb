/* libFuzzer target for the HTTP/1.x parser (user/sluice-proxy/http1*.c).
 * Each input is parsed as a request and as a response under tight and
 * loose limits, and scanned as a chunked body whole, split in two at a
 * point taken from the data, and (when short) byte by byte. Any broken
 * invariant aborts: results in range, every pointer inside the input,
 * nothing written on error, prefixes of a good head INCOMPLETE, and the
 * chunked scanner blind to how its input was cut. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define MAX_HEADERS 64
#define BYTEWISE_MAX 1024 /* inputs scanned a byte at a time, beyond whole and split */

static const struct http1_limits tight = {
	.max_request_line = 64,
	.max_head_bytes = 256,
	.max_headers = 4,
};

/* a head limit below the request line's */
static const struct http1_limits inverted = {
	.max_request_line = 512,
	.max_head_bytes = 128,
	.max_headers = 2,
};

static const struct http1_limits loose = {
	.max_request_line = 1 << 20,
	.max_head_bytes = 1 << 20,
	.max_headers = MAX_HEADERS,
};

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_http1: invariant broken: %s\n", what);
		abort();
	}
}

/* [p, p + n) lies within [buf, buf + len). */
static int inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

static int is_error(int ret)
{
	return ret == HTTP1_MALFORMED || ret == HTTP1_URI_TOO_LONG || ret == HTTP1_HEAD_TOO_LARGE ||
	       ret == HTTP1_NOT_IMPLEMENTED || ret == HTTP1_BAD_VERSION;
}

/* A parse that succeeded with @ret: the head ends with the blank line,
 * fits the limits, and its fields point into it. */
static void check_fields(const char *buf, int ret, const struct http1_header *h, size_t n,
			 const struct http1_limits *lim)
{
	size_t i;

	check(ret >= 4 && !memcmp(buf + ret - 4, "\r\n\r\n", 4), "head ends with CRLF CRLF");
	check((size_t)ret <= lim->max_head_bytes, "head within max_head_bytes");
	check(n <= lim->max_headers, "n_headers within max_headers");
	for (i = 0; i < n; i++) {
		check(h[i].name_len > 0, "header name not empty");
		check(inside(h[i].name, h[i].name_len, buf, ret), "header name inside the head");
		check(inside(h[i].value, h[i].value_len, buf, ret), "header value inside the head");
		check(!memchr(h[i].value, '\n', h[i].value_len), "no LF in a value");
		check(!memchr(h[i].value, '\r', h[i].value_len), "no CR in a value");
		check(!memchr(h[i].name, ':', h[i].name_len), "no colon in a name");
		check(http1_find(h, n, "connection") || !http1_name_is(&h[i], "connection"),
		      "find sees every name");
		check(!http1_name_is(&h[i], "upgrade") || http1_hop_by_hop(&h[i], h, n),
		      "Upgrade is hop-by-hop");
		http1_hop_by_hop(&h[i], h, n);
	}
}

static void check_request_ok(const char *buf, int ret, const struct http1_request *r,
			     const struct http1_header *h, const struct http1_limits *lim)
{
	check_fields(buf, ret, r->headers, r->n_headers, lim);
	check(r->headers == h, "headers are the caller's array");
	check(inside(r->method, r->method_len, buf, ret) && r->method_len, "method inside");
	check(inside(r->target, r->target_len, buf, ret) && r->target_len, "target inside");
	check(r->method_id == http1_method_id(r->method, r->method_len), "method_id");
	check(inside(r->path, r->path_len, buf, ret) || (r->path_len == 1 && *r->path == '/'),
	      "path inside or \"/\"");
	check(!r->host || inside(r->host, r->host_len, buf, ret), "host inside");
	check(r->minor_version == 1 ? r->host != NULL : r->minor_version == 0, "version and Host");
	check(r->body == HTTP1_BODY_NONE || r->body == HTTP1_BODY_LENGTH ||
		      r->body == HTTP1_BODY_CHUNKED,
	      "request body framing");
	check(r->content_length <= (1ULL << 62), "content_length bound");
	check(r->body == HTTP1_BODY_LENGTH || r->content_length == 0,
	      "content_length only with LENGTH");
	check(r->target + r->target_len + 11 <= buf + ret, "request line before the fields");
}

/* Parse @buf as a request; then its prefixes, which must agree. Returns
 * the result. */
static int fuzz_request(const char *buf, size_t len, size_t cut, const struct http1_limits *lim)
{
	struct http1_header h[MAX_HEADERS];
	struct http1_request r, before, again;
	int ret, ret2;

	memset(&before, 0xa5, sizeof(before));
	r = before;
	ret = http1_parse_request(buf, len, &r, h, lim);
	check(ret > 0 ? (size_t)ret <= len : ret == HTTP1_INCOMPLETE || is_error(ret),
	      "request result in range");
	if (ret <= 0) {
		check(!memcmp(&r, &before, sizeof(r)), "request untouched on error");
		if (ret == HTTP1_INCOMPLETE && cut < len)
			check(http1_parse_request(buf, cut, &again, h, lim) == HTTP1_INCOMPLETE,
			      "prefix of an incomplete head is incomplete");
		return ret;
	}
	check_request_ok(buf, ret, &r, h, lim);
	/* the same head alone parses the same; any shorter prefix is incomplete */
	ret2 = http1_parse_request(buf, ret, &again, h, lim);
	check(ret2 == ret && again.body == r.body && again.content_length == r.content_length &&
		      again.n_headers == r.n_headers && again.keep_alive == r.keep_alive &&
		      again.host == r.host && again.path_len == r.path_len,
	      "head alone parses the same");
	check(http1_parse_request(buf, cut % ret, &again, h, lim) == HTTP1_INCOMPLETE,
	      "prefix of a good head is incomplete");
	return ret;
}

static void check_response_ok(const char *buf, int ret, const struct http1_response *r,
			      const struct http1_header *h, const struct http1_limits *lim,
			      bool head_request)
{
	check_fields(buf, ret, r->headers, r->n_headers, lim);
	check(r->headers == h, "headers are the caller's array");
	check(r->status >= 100 && r->status <= 999, "status range");
	check(r->minor_version == 0 || r->minor_version == 1, "response version");
	check(inside(r->reason, r->reason_len, buf, ret), "reason inside");
	check(!head_request || r->body == HTTP1_BODY_NONE, "no body for HEAD");
	check(r->body != HTTP1_BODY_CLOSE || !r->keep_alive, "close-delimited is not kept alive");
	check(r->body == HTTP1_BODY_LENGTH || r->content_length == 0,
	      "content_length only with LENGTH");
}

static int fuzz_response(const char *buf, size_t len, size_t cut, const struct http1_limits *lim,
			 bool head_request)
{
	struct http1_header h[MAX_HEADERS];
	struct http1_response r, before, again;
	int ret;

	memset(&before, 0x5a, sizeof(before));
	r = before;
	ret = http1_parse_response(buf, len, &r, h, lim, head_request);
	check(ret > 0 ? (size_t)ret <= len : ret == HTTP1_INCOMPLETE || is_error(ret),
	      "response result in range");
	if (ret <= 0) {
		check(!memcmp(&r, &before, sizeof(r)), "response untouched on error");
		if (ret == HTTP1_INCOMPLETE && cut < len)
			check(http1_parse_response(buf, cut, &again, h, lim, head_request) ==
				      HTTP1_INCOMPLETE,
			      "prefix of an incomplete response is incomplete");
		return ret;
	}
	check_response_ok(buf, ret, &r, h, lim, head_request);
	check(http1_parse_response(buf, ret, &again, h, lim, head_request) == ret &&
		      again.body == r.body && again.status == r.status,
	      "response head alone parses the same");
	check(http1_parse_response(buf, cut % ret, &again, h, lim, head_request) ==
		      HTTP1_INCOMPLETE,
	      "prefix of a good response is incomplete");
	return ret;
}

struct scan {
	ssize_t ret; /* bytes of the body, or HTTP1_MALFORMED */
	bool done;
	uint64_t payload;
};

/* Scan @buf in pieces of @step bytes (the last one shorter); @first, if
 * non-zero, is the length of the first piece instead. */
static struct scan scan(const char *buf, size_t len, size_t first, size_t step)
{
	struct http1_chunked c = { 0 };
	struct scan s = { 0 };
	size_t off = 0, n;
	ssize_t ret;

	while (off < len && !s.done) {
		n = first ? first : step;
		first = 0;
		if (n > len - off)
			n = len - off;
		ret = http1_chunked_scan(&c, buf + off, n, &s.done);
		check(ret == HTTP1_MALFORMED || (ret >= 0 && (size_t)ret <= n),
		      "scan result in range");
		check(ret == HTTP1_MALFORMED || s.done || (size_t)ret == n, "all taken until done");
		if (ret < 0) {
			check(!s.done, "not done on error");
			s.ret = ret;
			return s;
		}
		off += ret;
	}
	check(c.payload <= off, "payload within what was scanned");
	check(!s.done || (off >= 5 && !memcmp(buf + off - 4, "\r\n\r\n", 4)),
	      "body ends with CRLF CRLF");
	s.ret = off;
	s.payload = c.payload;
	return s;
}

static int same(struct scan a, struct scan b)
{
	return a.ret == b.ret && a.done == b.done && (a.ret < 0 || a.payload == b.payload);
}

static void fuzz_chunked(const char *buf, size_t len, size_t cut)
{
	struct scan whole = scan(buf, len, 0, len ? len : 1);

	check(same(whole, scan(buf, len, cut ? cut : 1, len ? len : 1)), "whole == split in two");
	check(same(whole, scan(buf, len, cut ? cut : 1, 3)), "whole == split in threes");
	if (len <= BYTEWISE_MAX)
		check(same(whole, scan(buf, len, 0, 1)), "whole == byte by byte");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t cut = size ? ((size_t)data[0] * 257 + data[size - 1]) % (size + 1) : 0;
	struct http1_header h[MAX_HEADERS];
	struct http1_request r;
	int ret;

	/* what passes tight limits passes loose ones the same */
	ret = fuzz_request(buf, size, cut, &tight);
	check(fuzz_request(buf, size, cut, &loose) == ret || ret <= 0, "tight ok => loose ok");
	ret = fuzz_response(buf, size, cut, &tight, false);
	check(fuzz_response(buf, size, cut, &loose, false) == ret || ret <= 0,
	      "tight ok => loose ok");
	fuzz_request(buf, size, cut, &inverted);
	fuzz_response(buf, size, cut, &inverted, false);
	fuzz_response(buf, size, cut, &loose, true);
	fuzz_chunked(buf, size, cut);
	/* the body after a request head, as the proxy scans it */
	ret = http1_parse_request(buf, size, &r, h, &loose);
	if (ret > 0 && r.body == HTTP1_BODY_CHUNKED)
		fuzz_chunked(buf + ret, size - ret, cut % (size - ret + 1));
	return 0;
}
