/* Unit tests for the HTTP/1.x parser (user/sluice-proxy/http1*.c): tables
 * of requests and responses that parse (with what they parse to) and of
 * heads refused with the exact error, limits on both sides of the
 * boundary, every prefix of a good head being INCOMPLETE, and the chunked
 * scanner fed whole, byte by byte and in random pieces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http1.h"

#define MAX_HEADERS 32
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const struct http1_limits limits = {
	.max_request_line = 8192,
	.max_head_bytes = 16384,
	.max_headers = MAX_HEADERS,
};

/* Inputs are C strings unless .len says otherwise (embedded NULs). */
static size_t in_len(const char *in, size_t len)
{
	return len ? len : strlen(in);
}

/* ---- requests that parse ---- */

struct req_ok {
	const char *name;
	const char *in; /* the head */
	const char *rest; /* bytes after it (body, next request), or NULL */
	enum http1_method method;
	const char *path;
	const char *host; /* NULL: no host */
	int minor;
	enum http1_body body;
	uint64_t content_length;
	bool keep_alive, expect_continue, upgrade;
	size_t n_headers;
};

#define H11 "Host: example.com\r\n"

static const struct req_ok req_ok[] = {
	{ "simple GET", "GET /index.html?x=1&y=2 HTTP/1.1\r\n" H11 "\r\n", NULL, HTTP1_GET,
	  "/index.html", "example.com", 1, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "POST with Content-Length", "POST /api HTTP/1.1\r\n" H11 "Content-Length: 5\r\n\r\n",
	  "hello", HTTP1_POST, "/api", "example.com", 1, HTTP1_BODY_LENGTH, 5, true, false, false,
	  2 },
	{ "Content-Length 0", "PUT /x HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n", NULL,
	  HTTP1_PUT, "/x", "example.com", 1, HTTP1_BODY_LENGTH, 0, true, false, false, 2 },
	{ "Content-Length at 2^62",
	  "POST / HTTP/1.1\r\n" H11 "Content-Length: 4611686018427387904\r\n\r\n", NULL, HTTP1_POST,
	  "/", "example.com", 1, HTTP1_BODY_LENGTH, 1ULL << 62, true, false, false, 2 },
	{ "Content-Length leading zeros", "POST / HTTP/1.1\r\n" H11 "Content-Length: 007\r\n\r\n",
	  NULL, HTTP1_POST, "/", "example.com", 1, HTTP1_BODY_LENGTH, 7, true, false, false, 2 },
	{ "Content-Length list of equal values",
	  "POST / HTTP/1.1\r\n" H11 "Content-Length: 5, 5\r\nContent-Length: 5\r\n\r\n", NULL,
	  HTTP1_POST, "/", "example.com", 1, HTTP1_BODY_LENGTH, 5, true, false, false, 3 },
	{ "chunked", "POST /up HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n", NULL,
	  HTTP1_POST, "/up", "example.com", 1, HTTP1_BODY_CHUNKED, 0, true, false, false, 2 },
	{ "chunked last of a list",
	  "POST / HTTP/1.1\r\n" H11 "transfer-encoding: gzip , Chunked\r\n\r\n", NULL, HTTP1_POST,
	  "/", "example.com", 1, HTTP1_BODY_CHUNKED, 0, true, false, false, 2 },
	{ "chunked last over two fields",
	  "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
	  NULL, HTTP1_POST, "/", "example.com", 1, HTTP1_BODY_CHUNKED, 0, true, false, false, 3 },
	{ "absolute-form", "GET http://api.example:8080/a/b?q=1 HTTP/1.1\r\nHost: other\r\n\r\n",
	  NULL, HTTP1_GET, "/a/b", "api.example:8080", 1, HTTP1_BODY_NONE, 0, true, false, false,
	  1 },
	{ "absolute-form without path", "GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", NULL,
	  HTTP1_GET, "/", "h", 1, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "absolute-form query only", "GET http://h?x=/y HTTP/1.1\r\nHost: h\r\n\r\n", NULL,
	  HTTP1_GET, "/", "h", 1, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", NULL,
	  HTTP1_GET, "/", NULL, 0, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "HTTP/1.0 closes by default", "GET /a HTTP/1.0\r\n\r\n", NULL, HTTP1_GET, "/a", NULL, 0,
	  HTTP1_BODY_NONE, 0, false, false, false, 0 },
	{ "HTTP/1.0 keep-alive and close",
	  "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", NULL, HTTP1_GET, "/", NULL, 0,
	  HTTP1_BODY_NONE, 0, false, false, false, 1 },
	{ "HTTP/1.1 Connection close in a list",
	  "GET / HTTP/1.1\r\n" H11 "Connection: foo, CLOSE\r\n\r\n", NULL, HTTP1_GET, "/",
	  "example.com", 1, HTTP1_BODY_NONE, 0, false, false, false, 2 },
	{ "leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n", NULL, HTTP1_GET, "/",
	  "example.com", 1, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "value trimming", "GET / HTTP/1.1\r\nHost: \t a.b \t \r\nX-Empty:\r\nX-Sp:   \r\n\r\n",
	  NULL, HTTP1_GET, "/", "a.b", 1, HTTP1_BODY_NONE, 0, true, false, false, 3 },
	{ "obs-text in a value", "GET / HTTP/1.1\r\n" H11 "X-Name: caf\xc3\xa9 \xff\r\n\r\n", NULL,
	  HTTP1_GET, "/", "example.com", 1, HTTP1_BODY_NONE, 0, true, false, false, 2 },
	{ "OPTIONS *", "OPTIONS * HTTP/1.1\r\n" H11 "\r\n", NULL, HTTP1_OPTIONS, "*", "example.com",
	  1, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "CONNECT authority-form", "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n", NULL,
	  HTTP1_CONNECT, "db:5432", "db:5432", 1, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "Expect 100-continue",
	  "PUT / HTTP/1.1\r\n" H11 "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\n", NULL,
	  HTTP1_PUT, "/", "example.com", 1, HTTP1_BODY_LENGTH, 1, true, true, false, 3 },
	{ "other Expect", "PUT / HTTP/1.1\r\n" H11 "Expect: 100-continuex\r\n\r\n", NULL, HTTP1_PUT,
	  "/", "example.com", 1, HTTP1_BODY_NONE, 0, true, false, false, 2 },
	{ "Upgrade", "GET /ws HTTP/1.1\r\n" H11 "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	  NULL, HTTP1_GET, "/ws", "example.com", 1, HTTP1_BODY_NONE, 0, true, false, true, 3 },
	{ "extension method", "PROPFIND /d HTTP/1.1\r\n" H11 "\r\n", NULL, HTTP1_OTHER, "/d",
	  "example.com", 1, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "methods are case-sensitive", "get / HTTP/1.1\r\n" H11 "\r\n", NULL, HTTP1_OTHER, "/",
	  "example.com", 1, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "fragment ends the path", "DELETE /a/b#frag HTTP/1.1\r\n" H11 "\r\n", NULL, HTTP1_DELETE,
	  "/a/b", "example.com", 1, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", NULL, HTTP1_GET, "/", "", 1,
	  HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "IPv6 Host", "GET / HTTP/1.1\r\nhOST: [2001:db8::1]:8080\r\n\r\n", NULL, HTTP1_GET, "/",
	  "[2001:db8::1]:8080", 1, HTTP1_BODY_NONE, 0, true, false, false, 1 },
	{ "pipelined: the second request is not consumed", "HEAD /a HTTP/1.1\r\n" H11 "\r\n",
	  "GET /b HTTP/1.1\r\n" H11 "\r\n", HTTP1_HEAD, "/a", "example.com", 1, HTTP1_BODY_NONE, 0,
	  true, false, false, 1 },
	{ "tokens in names", "PATCH / HTTP/1.1\r\n" H11 "X!#$%&'*+-.^_`|~09az: v\r\n\r\n", NULL,
	  HTTP1_PATCH, "/", "example.com", 1, HTTP1_BODY_NONE, 0, true, false, false, 2 },
	{ "every visible byte in the target",
	  "TRACE /!\"$%&'()*+,-./:;<=>@[\\]^_`{|}~?q#f HTTP/1.1\r\n" H11 "\r\n", NULL, HTTP1_TRACE,
	  "/!\"$%&'()*+,-./:;<=>@[\\]^_`{|}~", "example.com", 1, HTTP1_BODY_NONE, 0, true, false,
	  false, 1 },
};

/* @c->in, then @c->rest, in @buf; returns the length. */
static size_t join(char *buf, size_t size, const char *in, const char *rest)
{
	int n = snprintf(buf, size, "%s%s", in, rest ? rest : "");

	assert_true(n > 0 && (size_t)n < size);
	return n;
}

/* Fail naming the table row: cmocka's asserts only give a line. */
static void expect(bool ok, const char *name, const char *what)
{
	if (!ok)
		fail_msg("%s: wrong %s", name, what);
}

static bool str_is(const char *p, size_t n, const char *want)
{
	return p && n == strlen(want) && !memcmp(p, want, n);
}

static void check_req_ok(const struct req_ok *c, const struct http1_request *r, int ret)
{
	if (ret != (int)strlen(c->in))
		fail_msg("%s: returned %d, want %zu", c->name, ret, strlen(c->in));
	expect(r->method_id == c->method, c->name, "method_id");
	expect(str_is(r->path, r->path_len, c->path), c->name, "path");
	expect(c->host ? str_is(r->host, r->host_len, c->host) : !r->host, c->name, "host");
	expect(r->minor_version == c->minor, c->name, "minor_version");
	expect(r->body == c->body, c->name, "body");
	expect(r->content_length == c->content_length, c->name, "content_length");
	expect(r->keep_alive == c->keep_alive, c->name, "keep_alive");
	expect(r->expect_continue == c->expect_continue, c->name, "expect_continue");
	expect(r->upgrade == c->upgrade, c->name, "upgrade");
	expect(r->n_headers == c->n_headers, c->name, "n_headers");
}

static void test_request_ok(void **state)
{
	struct http1_header h[MAX_HEADERS];
	struct http1_request r;
	char buf[512];
	size_t i, len, k;
	int ret;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(req_ok); i++) {
		const struct req_ok *c = &req_ok[i];

		len = join(buf, sizeof(buf), c->in, c->rest);
		ret = http1_parse_request(buf, len, &r, h, &limits);
		check_req_ok(c, &r, ret);
		assert_ptr_equal(r.headers, h);
		assert_true(r.method >= buf && r.target + r.target_len <= buf + ret);
		for (k = 0; k < r.n_headers; k++)
			assert_true(h[k].name > buf && h[k].value + h[k].value_len < buf + ret);
	}
}

/* Fields are pointers into the buffer, names as sent, values trimmed. */
static void test_request_fields(void **state)
{
	static const char in[] = "GET /p?q HTTP/1.1\r\nHost:  h \r\nX-A:\t1 2\t\r\nx-b:\r\n\r\n";
	struct http1_header h[MAX_HEADERS];
	struct http1_request r;

	(void)state;
	assert_int_equal(http1_parse_request(in, strlen(in), &r, h, &limits), strlen(in));
	assert_ptr_equal(r.method, in);
	assert_int_equal(r.method_len, 3);
	assert_ptr_equal(r.target, in + 4);
	assert_int_equal(r.target_len, 4);
	assert_ptr_equal(r.path, in + 4);
	assert_int_equal(r.path_len, 2);
	assert_int_equal(r.n_headers, 3);
	assert_ptr_equal(h[0].name, in + 19);
	assert_int_equal(h[0].name_len, 4);
	assert_ptr_equal(r.host, h[0].value);
	assert_int_equal(h[1].value_len, 3);
	assert_memory_equal(h[1].value, "1 2", 3);
	assert_int_equal(h[2].name_len, 3);
	assert_memory_equal(h[2].name, "x-b", 3);
	assert_int_equal(h[2].value_len, 0);
	assert_ptr_equal(http1_find(h, r.n_headers, "x-a"), &h[1]);
	assert_ptr_equal(http1_find(h, r.n_headers, "host"), &h[0]);
	assert_null(http1_find(h, r.n_headers, "x-c"));
	assert_null(http1_find(h, r.n_headers, "x-"));
}

/* Every proper prefix of a good head is INCOMPLETE, never an error, and
 * parsing it again whole gives the same answer. */
static void test_request_prefixes(void **state)
{
	struct http1_header h[MAX_HEADERS];
	struct http1_request r;
	size_t i, n, head;
	int ret;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(req_ok); i++) {
		const struct req_ok *c = &req_ok[i];

		head = strlen(c->in);
		for (n = 0; n < head; n++) {
			ret = http1_parse_request(c->in, n, &r, h, &limits);
			if (ret != HTTP1_INCOMPLETE)
				fail_msg("%s: prefix of %zu returned %d", c->name, n, ret);
		}
		ret = http1_parse_request(c->in, head, &r, h, &limits);
		check_req_ok(c, &r, ret);
	}
}

/* ---- requests refused ---- */

struct req_bad {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen */
	int ret;
};

#define BAD HTTP1_MALFORMED
#define BIN(s) s, sizeof(s) - 1 /* a string with NULs in it */

static const struct req_bad req_bad[] = {
	{ "bare LF after the request line", "GET / HTTP/1.1\n" H11 "\r\n", 0, BAD },
	{ "bare LF after a field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 0, BAD },
	{ "bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 0, BAD },
	{ "bare LF before the request", "\nGET / HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "CR alone in a leading line", "\r\rGET / HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "bare CR in a value", "GET / HTTP/1.1\r\n" H11 "X: a\rb\r\n\r\n", 0, BAD },
	{ "bare CR ending the head", "GET / HTTP/1.1\r\n" H11 "\rX", 0, BAD },
	{ "LF in a value", "GET / HTTP/1.1\r\n" H11 "X: a\nb\r\n\r\n", 0, BAD },
	{ "space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 0, BAD },
	{ "tab before the colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 0, BAD },
	{ "obs-fold", "GET / HTTP/1.1\r\n" H11 "X: a\r\n b\r\n\r\n", 0, BAD },
	{ "whitespace before the first field", "GET / HTTP/1.1\r\n " H11 "\r\n", 0, BAD },
	{ "empty name", "GET / HTTP/1.1\r\n" H11 ": a\r\n\r\n", 0, BAD },
	{ "no colon", "GET / HTTP/1.1\r\n" H11 "X-Foo\r\n\r\n", 0, BAD },
	{ "delimiter in a name", "GET / HTTP/1.1\r\n" H11 "X(a): b\r\n\r\n", 0, BAD },
	{ "obs-text in a name", "GET / HTTP/1.1\r\n" H11 "X\xc3\xa9: b\r\n\r\n", 0, BAD },
	{ "CTL in a value", "GET / HTTP/1.1\r\n" H11 "X: a\x01\r\n\r\n", 0, BAD },
	{ "DEL in a value", "GET / HTTP/1.1\r\n" H11 "X: a\x7f\r\n\r\n", 0, BAD },
	{ "NUL in a value", BIN("GET / HTTP/1.1\r\nX: a\0b\r\n" H11 "\r\n"), BAD },
	{ "NUL in the target", BIN("GET /a\0b HTTP/1.1\r\n" H11 "\r\n"), BAD },
	{ "NUL in a name", BIN("GET / HTTP/1.1\r\nX\0: a\r\n" H11 "\r\n"), BAD },
	{ "NUL before the request", BIN("\0GET / HTTP/1.1\r\n" H11 "\r\n"), BAD },
	{ "delimiter in the method", "G(T / HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "empty method", " / HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "two spaces after the method", "GET  / HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "tab after the method", "GET\t/ HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "two spaces after the target", "GET /  HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "obs-text in the target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "CTL in the target", "GET /a\tb HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "no version", "GET /\r\n" H11 "\r\n", 0, BAD },
	{ "lower-case version", "GET / http/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "space after the version", "GET / HTTP/1.1 \r\n" H11 "\r\n", 0, BAD },
	{ "version without minor", "GET / HTTP/1\r\n" H11 "\r\n", 0, BAD },
	{ "version with two digits", "GET / HTTP/1.10\r\n" H11 "\r\n", 0, BAD },
	{ "version major two digits", "GET / HTTP/11.1\r\n" H11 "\r\n", 0, BAD },
	{ "HTTP/2.0", "GET / HTTP/2.0\r\n" H11 "\r\n", 0, HTTP1_BAD_VERSION },
	{ "HTTP/1.2", "GET / HTTP/1.2\r\n" H11 "\r\n", 0, HTTP1_BAD_VERSION },
	{ "HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 0, HTTP1_BAD_VERSION },
	{ "HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 0, BAD },
	{ "absolute-form still needs Host", "GET http://h/ HTTP/1.1\r\n\r\n", 0, BAD },
	{ "two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 0, BAD },
	{ "two Host fields in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 0, BAD },
	{ "space in Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 0, BAD },
	{ "slash in Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 0, BAD },
	{ "userinfo in Host", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 0, BAD },
	{ "Content-Length not a number", "POST / HTTP/1.1\r\n" H11 "Content-Length: 5a\r\n\r\n", 0,
	  BAD },
	{ "Content-Length negative", "POST / HTTP/1.1\r\n" H11 "Content-Length: -1\r\n\r\n", 0,
	  BAD },
	{ "Content-Length with plus", "POST / HTTP/1.1\r\n" H11 "Content-Length: +5\r\n\r\n", 0,
	  BAD },
	{ "Content-Length hex", "POST / HTTP/1.1\r\n" H11 "Content-Length: 0x10\r\n\r\n", 0, BAD },
	{ "Content-Length empty", "POST / HTTP/1.1\r\n" H11 "Content-Length:\r\n\r\n", 0, BAD },
	{ "Content-Length inner space", "POST / HTTP/1.1\r\n" H11 "Content-Length: 1 2\r\n\r\n", 0,
	  BAD },
	{ "Content-Length list differs", "POST / HTTP/1.1\r\n" H11 "Content-Length: 5, 6\r\n\r\n",
	  0, BAD },
	{ "Content-Length fields differ",
	  "POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\nContent-Length: 50\r\n\r\n", 0, BAD },
	{ "Content-Length empty element", "POST / HTTP/1.1\r\n" H11 "Content-Length: 5,,5\r\n\r\n",
	  0, BAD },
	{ "Content-Length trailing comma", "POST / HTTP/1.1\r\n" H11 "Content-Length: 5,\r\n\r\n",
	  0, BAD },
	{ "Content-Length over 2^62",
	  "POST / HTTP/1.1\r\n" H11 "Content-Length: 4611686018427387905\r\n\r\n", 0, BAD },
	{ "Content-Length over 2^64",
	  "POST / HTTP/1.1\r\n" H11 "Content-Length: 18446744073709551617\r\n\r\n", 0, BAD },
	{ "Transfer-Encoding with Content-Length",
	  "POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
	  BAD },
	{ "Content-Length after Transfer-Encoding",
	  "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 0,
	  BAD },
	{ "Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	  0, BAD },
	{ "Transfer-Encoding gzip", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\n\r\n", 0,
	  HTTP1_NOT_IMPLEMENTED },
	{ "Transfer-Encoding identity",
	  "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: identity\r\n\r\n", 0,
	  HTTP1_NOT_IMPLEMENTED },
	{ "chunked not last", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n",
	  0, HTTP1_NOT_IMPLEMENTED },
	{ "chunked not last over two fields",
	  "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
	  0, HTTP1_NOT_IMPLEMENTED },
	{ "chunked with a parameter",
	  "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked;x=1\r\n\r\n", 0,
	  HTTP1_NOT_IMPLEMENTED },
	{ "chunked with obs-text",
	  "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\xff\r\n\r\n", 0,
	  HTTP1_NOT_IMPLEMENTED },
	{ "chunked twice", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n",
	  0, BAD },
	{ "Transfer-Encoding empty", "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding:\r\n\r\n", 0,
	  BAD },
	{ "Transfer-Encoding trailing comma",
	  "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked,\r\n\r\n", 0, BAD },
	{ "Transfer-Encoding quoted",
	  "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: \"chunked\"\r\n\r\n", 0, BAD },
	{ "asterisk-form with GET", "GET * HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "relative target", "GET index.html HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "scheme without //", "GET http:/x HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "userinfo in the target", "GET http://u:p@h/ HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "empty authority", "GET http:///x HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
	{ "bad authority byte", "GET http://h{x}/ HTTP/1.1\r\n" H11 "\r\n", 0, BAD },
};

static void test_request_bad(void **state)
{
	struct http1_header h[MAX_HEADERS];
	struct http1_request r, before;
	size_t i, len;
	int ret;

	(void)state;
	memset(&before, 0xa5, sizeof(before));
	for (i = 0; i < ARRAY_SIZE(req_bad); i++) {
		const struct req_bad *c = &req_bad[i];

		len = in_len(c->in, c->len);
		memcpy(&r, &before, sizeof(r));
		ret = http1_parse_request(c->in, len, &r, h, &limits);
		if (ret != c->ret)
			fail_msg("%s: returned %d, want %d", c->name, ret, c->ret);
		if (memcmp(&r, &before, sizeof(r)))
			fail_msg("%s: the request was written on error", c->name);
	}
}

/* ---- limits ---- */

static int parse_with(const char *in, size_t len, size_t line, size_t head, size_t n)
{
	struct http1_limits lim = { .max_request_line = line,
				    .max_head_bytes = head,
				    .max_headers = n };
	struct http1_header h[MAX_HEADERS];
	struct http1_request r;

	return http1_parse_request(in, len, &r, h, &lim);
}

static void test_limit_request_line(void **state)
{
	static const char in[] = "GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t line = 26, len = strlen(in); /* the request line with its CRLF */

	(void)state;
	assert_int_equal(parse_with(in, len, line, 1000, 4), len);
	assert_int_equal(parse_with(in, len, line - 1, 1000, 4), HTTP1_URI_TOO_LONG);
	assert_int_equal(parse_with(in, len, 1, 1000, 4), HTTP1_URI_TOO_LONG);
	/* unfinished: too long once more than the limit is buffered */
	assert_int_equal(parse_with(in, 10, 9, 1000, 4), HTTP1_URI_TOO_LONG);
	assert_int_equal(parse_with(in, 10, 10, 1000, 4), HTTP1_INCOMPLETE);
	assert_int_equal(parse_with(in, line - 1, line - 1, 1000, 4), HTTP1_INCOMPLETE);
	assert_int_equal(parse_with(in, line, line - 1, 1000, 4), HTTP1_URI_TOO_LONG);
	/* leading empty lines are not part of the request line */
	assert_int_equal(parse_with("\r\n\r\nGET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n", len + 4,
				    line, 1000, 4),
			 len + 4);
	/* an error inside the limit is reported as such */
	assert_int_equal(parse_with("GET /\x01 HTTP/1.1\r\n", 17, 8, 1000, 4), HTTP1_MALFORMED);
}

static void test_limit_head_bytes(void **state)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: 0123456789\r\n\r\n";
	size_t len = strlen(in);

	(void)state;
	assert_int_equal(parse_with(in, len, 1000, len, 4), len);
	assert_int_equal(parse_with(in, len, 1000, len - 1, 4), HTTP1_HEAD_TOO_LARGE);
	assert_int_equal(parse_with(in, len, 1000, len - 2, 4), HTTP1_HEAD_TOO_LARGE);
	assert_int_equal(parse_with(in, len - 1, 1000, len - 1, 4), HTTP1_INCOMPLETE);
	assert_int_equal(parse_with(in, len - 1, 1000, len - 2, 4), HTTP1_HEAD_TOO_LARGE);
	assert_int_equal(parse_with(in, 20, 1000, 19, 4), HTTP1_HEAD_TOO_LARGE);
	/* a request line past the head limit (but not its own) is a large head */
	assert_int_equal(parse_with(in, len, 1000, 10, 4), HTTP1_HEAD_TOO_LARGE);
	assert_int_equal(parse_with(in, len, 10, 10, 4), HTTP1_URI_TOO_LONG);
	/* leading empty lines count: an endless stream of them ends */
	assert_int_equal(parse_with("\r\n\r\n\r\n\r\n", 8, 1000, 7, 4), HTTP1_HEAD_TOO_LARGE);
	assert_int_equal(parse_with("\r\n\r\n\r\n\r\n", 8, 1000, 8, 4), HTTP1_INCOMPLETE);
}

static void test_limit_headers(void **state)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
	size_t len = strlen(in);

	(void)state;
	assert_int_equal(parse_with(in, len, 1000, 1000, 3), len);
	assert_int_equal(parse_with(in, len, 1000, 1000, 2), HTTP1_HEAD_TOO_LARGE);
	assert_int_equal(parse_with(in, len, 1000, 1000, 0), HTTP1_HEAD_TOO_LARGE);
	/* known too many as soon as the fourth line starts */
	assert_int_equal(parse_with(in, 32, 1000, 1000, 2), HTTP1_HEAD_TOO_LARGE);
	assert_int_equal(parse_with(in, 31, 1000, 1000, 2), HTTP1_INCOMPLETE);
	assert_int_equal(parse_with("GET / HTTP/1.0\r\n\r\n", 18, 1000, 1000, 0), 18);
}

/* ---- responses ---- */

struct resp_case {
	const char *name;
	const char *in; /* the head */
	const char *rest; /* bytes after it, or NULL */
	bool head_request;
	int status;
	const char *reason;
	enum http1_body body;
	uint64_t content_length;
	bool keep_alive;
	int minor;
};

#define CLOSE HTTP1_BODY_CLOSE
#define NONE HTTP1_BODY_NONE

static const struct resp_case resp_ok[] = {
	{ "200 with Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "abc", false,
	  200, "OK", HTTP1_BODY_LENGTH, 3, true, 1 },
	{ "204", "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", NULL, false, 204,
	  "No Content", NONE, 0, true, 1 },
	{ "304 with Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", NULL,
	  false, 304, "Not Modified", NONE, 0, true, 1 },
	{ "answer to HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", NULL, true, 200, "OK",
	  NONE, 0, true, 1 },
	{ "answer to HEAD, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", NULL,
	  true, 200, "OK", NONE, 0, true, 1 },
	{ "100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\n", false, 100,
	  "Continue", NONE, 0, true, 1 },
	{ "101 Switching Protocols",
	  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", NULL, false, 101,
	  "Switching Protocols", NONE, 0, true, 1 },
	{ "close-delimited", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", "body...", false, 200, "OK",
	  CLOSE, 0, false, 1 },
	{ "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", NULL, false, 200,
	  "OK", HTTP1_BODY_CHUNKED, 0, true, 1 },
	{ "gzip then close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", NULL, false, 200,
	  "OK", CLOSE, 0, false, 1 },
	{ "chunked not last: close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	  NULL, false, 200, "OK", CLOSE, 0, false, 1 },
	{ "HTTP/1.0 keep-alive",
	  "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", NULL, false,
	  200, "OK", HTTP1_BODY_LENGTH, 0, true, 0 },
	{ "HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", NULL, false, 200, "OK",
	  HTTP1_BODY_LENGTH, 2, false, 0 },
	{ "Connection close", "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 2\r\n\r\n",
	  NULL, false, 200, "OK", HTTP1_BODY_LENGTH, 2, false, 1 },
	{ "no reason, no space", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", NULL, false, 200, "",
	  HTTP1_BODY_LENGTH, 0, true, 1 },
	{ "empty reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", NULL, false, 404, "",
	  HTTP1_BODY_LENGTH, 0, true, 1 },
	{ "reason with spaces and obs-text",
	  "HTTP/1.1 500 Bad  \xff\tthing \r\nContent-Length: 0\r\n\r\n", NULL, false, 500,
	  "Bad  \xff\tthing ", HTTP1_BODY_LENGTH, 0, true, 1 },
	{ "status 999", "HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n", NULL, false, 999, "X",
	  HTTP1_BODY_LENGTH, 0, true, 1 },
};

static void check_resp(const struct resp_case *c, const char *in, size_t len)
{
	struct http1_header h[MAX_HEADERS];
	struct http1_response r;
	int want = strlen(c->in);
	int ret = http1_parse_response(in, len, &r, h, &limits, c->head_request);

	if (ret != want)
		fail_msg("%s: returned %d, want %d", c->name, ret, want);
	expect(r.status == c->status, c->name, "status");
	expect(str_is(r.reason, r.reason_len, c->reason), c->name, "reason");
	expect(r.body == c->body, c->name, "body");
	expect(r.content_length == c->content_length, c->name, "content_length");
	expect(r.keep_alive == c->keep_alive, c->name, "keep_alive");
	expect(r.minor_version == c->minor, c->name, "minor_version");
	expect(r.headers == h, c->name, "headers");
}

static void test_response_ok(void **state)
{
	struct http1_header h[MAX_HEADERS];
	struct http1_response r;
	char buf[512];
	size_t i, n, head;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(resp_ok); i++) {
		const struct resp_case *c = &resp_ok[i];

		check_resp(c, buf, join(buf, sizeof(buf), c->in, c->rest));
		head = strlen(c->in);
		for (n = 0; n < head; n++)
			if (http1_parse_response(c->in, n, &r, h, &limits, c->head_request) !=
			    HTTP1_INCOMPLETE)
				fail_msg("%s: prefix of %zu not INCOMPLETE", c->name, n);
		check_resp(c, c->in, head);
	}
}

static const struct req_bad resp_bad[] = {
	{ "two-digit status", "HTTP/1.1 99 OK\r\n\r\n", 0, BAD },
	{ "status from 0", "HTTP/1.1 099 OK\r\n\r\n", 0, BAD },
	{ "four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", 0, BAD },
	{ "status then tab", "HTTP/1.1 200\tOK\r\n\r\n", 0, BAD },
	{ "two spaces before the status", "HTTP/1.1  200 OK\r\n\r\n", 0, BAD },
	{ "HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", 0, HTTP1_BAD_VERSION },
	{ "garbage", "ICY 200 OK\r\n\r\n", 0, BAD },
	{ "leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", 0, BAD },
	{ "bare LF", "HTTP/1.1 200 OK\n\r\n", 0, BAD },
	{ "CTL in the reason", "HTTP/1.1 200 O\x01K\r\n\r\n", 0, BAD },
	{ "Transfer-Encoding with Content-Length",
	  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 0, BAD },
	{ "Transfer-Encoding from HTTP/1.0",
	  "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, BAD },
	{ "chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 0,
	  BAD },
	{ "Content-Length differs",
	  "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, BAD },
	{ "Content-Length garbage on a 304", "HTTP/1.1 304 OK\r\nContent-Length: x\r\n\r\n", 0,
	  BAD },
	{ "obs-fold", "HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n", 0, BAD },
};

static void test_response_bad(void **state)
{
	struct http1_header h[MAX_HEADERS];
	struct http1_response r, before;
	size_t i;
	int ret;

	(void)state;
	memset(&before, 0x5a, sizeof(before));
	for (i = 0; i < ARRAY_SIZE(resp_bad); i++) {
		const struct req_bad *c = &resp_bad[i];

		memcpy(&r, &before, sizeof(r));
		ret = http1_parse_response(c->in, in_len(c->in, c->len), &r, h, &limits, false);
		if (ret != c->ret)
			fail_msg("%s: returned %d, want %d", c->name, ret, c->ret);
		assert_memory_equal(&r, &before, sizeof(r));
	}
}

static void test_response_limits(void **state)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
	const size_t len = sizeof(in) - 1;
	/* the request line limit does not apply to a status line */
	struct http1_limits lim = { .max_request_line = 1,
				    .max_head_bytes = len,
				    .max_headers = 2 };
	struct http1_header h[MAX_HEADERS];
	struct http1_response r;

	(void)state;
	assert_int_equal(http1_parse_response(in, len, &r, h, &lim, false), len);
	lim.max_head_bytes = len - 1;
	assert_int_equal(http1_parse_response(in, len, &r, h, &lim, false), HTTP1_HEAD_TOO_LARGE);
	assert_int_equal(http1_parse_response(in, len - 1, &r, h, &lim, false), HTTP1_INCOMPLETE);
	assert_int_equal(http1_parse_response(in, 12, &r, h, &lim, false), HTTP1_INCOMPLETE);
	lim.max_head_bytes = 11;
	assert_int_equal(http1_parse_response(in, 12, &r, h, &lim, false), HTTP1_HEAD_TOO_LARGE);
	lim.max_head_bytes = len;
	lim.max_headers = 1;
	assert_int_equal(http1_parse_response(in, len, &r, h, &lim, false), HTTP1_HEAD_TOO_LARGE);
}

/* ---- chunked bodies ---- */

struct chunk_case {
	const char *name;
	const char *in;
	ssize_t ret; /* 0: all of @in */
	bool done;
	uint64_t payload;
};

static const struct chunk_case chunk_cases[] = {
	{ "one chunk", "5\r\nhello\r\n0\r\n\r\n", 0, true, 5 },
	{ "hex sizes", "A\r\n0123456789\r\n1f\r\n0123456789012345678901234567890\r\n0\r\n\r\n", 0,
	  true, 41 },
	{ "extensions", "5;name=val;x=\"q s\"\r\nhello\r\n0;last\r\n\r\n", 0, true, 5 },
	{ "BWS before an extension", "5 \t;a\r\nhello\r\n0\r\n\r\n", 0, true, 5 },
	{ "trailers", "3\r\nabc\r\n0\r\nX-Sum: abc\r\nY:\r\n\r\n", 0, true, 3 },
	{ "leading zeros", "0005\r\nhello\r\n000\r\n\r\n", 0, true, 5 },
	{ "empty body", "0\r\n\r\n", 0, true, 0 },
	{ "pipelined bytes not consumed", "2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", 12, true,
	  2 },
	{ "binary data", "4\r\n\r\n\n\r\r\n0\r\n\r\n", 0, true, 4 },
	{ "unfinished data", "5\r\nhel", 0, false, 3 },
	{ "unfinished trailers", "0\r\nX: y\r\n", 0, false, 0 },
	{ "size at 2^60", "1000000000000000\r\nabc", 0, false, 3 },
	{ "bad hex", "g\r\n", HTTP1_MALFORMED, false, 0 },
	{ "empty size", "\r\nhello\r\n", HTTP1_MALFORMED, false, 0 },
	{ "negative size", "-1\r\n", HTTP1_MALFORMED, false, 0 },
	{ "0x prefix", "0x5\r\nhello\r\n", HTTP1_MALFORMED, false, 0 },
	{ "whitespace before the size", " 5\r\nhello\r\n", HTTP1_MALFORMED, false, 0 },
	{ "whitespace without an extension", "5 \r\nhello\r\n0\r\n\r\n", HTTP1_MALFORMED, false,
	  0 },
	{ "digits after whitespace", "5 5\r\n", HTTP1_MALFORMED, false, 0 },
	{ "CTL in an extension", "5;a\x01\r\nhello\r\n", HTTP1_MALFORMED, false, 0 },
	{ "data too long", "5\r\nhelloX\r\n0\r\n\r\n", HTTP1_MALFORMED, false, 5 },
	{ "data without CRLF", "5\r\nhello0\r\n\r\n", HTTP1_MALFORMED, false, 5 },
	{ "bare LF after the size", "5\nhello\r\n0\r\n\r\n", HTTP1_MALFORMED, false, 0 },
	{ "bare LF after data", "5\r\nhello\n0\r\n\r\n", HTTP1_MALFORMED, false, 5 },
	{ "bare CR after the size", "5\rhello", HTTP1_MALFORMED, false, 0 },
	{ "bare LF at the end", "0\r\n\n", HTTP1_MALFORMED, false, 0 },
	{ "CR without LF at the end", "0\r\n\rX", HTTP1_MALFORMED, false, 0 },
	{ "bare LF after a trailer", "0\r\nX: y\n\r\n", HTTP1_MALFORMED, false, 0 },
	{ "obs-fold in trailers", "0\r\nX: a\r\n b\r\n\r\n", HTTP1_MALFORMED, false, 0 },
	{ "trailer without colon", "0\r\nfoo\r\n\r\n", HTTP1_MALFORMED, false, 0 },
	{ "space before a trailer colon", "0\r\nX : y\r\n\r\n", HTTP1_MALFORMED, false, 0 },
	{ "size over 2^60", "1000000000000001\r\n", HTTP1_MALFORMED, false, 0 },
	{ "size over 2^64", "10000000000000000\r\n", HTTP1_MALFORMED, false, 0 },
};

/* Feed @in in pieces cut by @cut (returns the next piece's length); the
 * total as if fed whole. */
static ssize_t feed(const char *in, size_t len, struct http1_chunked *c, bool *done,
		    size_t (*cut)(size_t left, void *arg), void *arg)
{
	size_t off = 0, n;
	ssize_t ret;

	memset(c, 0, sizeof(*c));
	*done = false;
	while (off < len) {
		n = cut(len - off, arg);
		ret = http1_chunked_scan(c, in + off, n, done);
		if (ret < 0)
			return ret;
		assert_true((size_t)ret <= n);
		off += ret;
		if (*done)
			break;
		assert_int_equal(ret, n);
	}
	return off;
}

static size_t cut_whole(size_t left, void *arg)
{
	(void)arg;
	return left;
}

static size_t cut_bytes(size_t left, void *arg)
{
	(void)arg;
	(void)left;
	return 1;
}

/* xorshift: the same pieces on every run */
static size_t cut_random(size_t left, void *arg)
{
	uint32_t *s = arg;

	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return 1 + *s % (left < 7 ? left : 7);
}

static void check_chunked(const char *name, const char *in, size_t len, ssize_t want,
			  bool want_done, uint64_t want_payload)
{
	size_t (*cuts[])(size_t, void *) = { cut_whole, cut_bytes, cut_random, cut_random,
					     cut_random };
	struct http1_chunked c;
	uint32_t seed = 2463534242u;
	bool done;
	ssize_t ret;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cuts); i++) {
		ret = feed(in, len, &c, &done, cuts[i], &seed);
		if (ret != want || done != want_done || (ret >= 0 && c.payload != want_payload))
			fail_msg("%s (cut %zu): ret %zd done %d payload %llu, want %zd %d %llu",
				 name, i, ret, done, (unsigned long long)c.payload, want, want_done,
				 (unsigned long long)want_payload);
	}
}

static void test_chunked(void **state)
{
	size_t i, len;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(chunk_cases); i++) {
		const struct chunk_case *c = &chunk_cases[i];

		len = strlen(c->in);
		check_chunked(c->name, c->in, len, c->ret ? c->ret : (ssize_t)len, c->done,
			      c->payload);
	}
}

/* A size line or a trailer line of 4096 bytes with its CRLF passes, one
 * more byte does not. */
static void test_chunked_line_limit(void **state)
{
	static char buf[3 * 4096];
	size_t n;

	(void)state;
	/* "1;xxx...\r\n" of 4096 bytes, then "a\r\n0\r\n\r\n" */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "1;", 2);
	memcpy(buf + 4094, "\r\na\r\n0\r\n\r\n", 10);
	check_chunked("size line at the limit", buf, 4104, 4104, true, 1);
	memcpy(buf, "1;x", 3);
	memcpy(buf + 4095, "\r\na\r\n0\r\n\r\n", 10);
	check_chunked("size line over the limit", buf, 4105, HTTP1_MALFORMED, false, 0);
	/* "0\r\n" "X:xxx...\r\n" (4096) "\r\n" */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "0\r\nX:", 5);
	n = 3 + 4096;
	memcpy(buf + n - 2, "\r\n\r\n", 4);
	check_chunked("trailer at the limit", buf, n + 2, n + 2, true, 0);
	memcpy(buf + n - 2, "x\r\n\r\n", 5);
	check_chunked("trailer over the limit", buf, n + 3, HTTP1_MALFORMED, false, 0);
	/* a long body of many chunks is not a long line */
	for (n = 0; n + 6 <= 3 * 4096 - 5; n += 6)
		memcpy(buf + n, "1\r\nz\r\n", 6);
	memcpy(buf + n, "0\r\n\r\n", 5);
	check_chunked("many small chunks", buf, n + 5, n + 5, true, n / 6);
}

/* Done stays done and consumes nothing; an error stays an error. */
static void test_chunked_sticky(void **state)
{
	struct http1_chunked c = { 0 };
	bool done = true;

	(void)state;
	assert_int_equal(http1_chunked_scan(&c, "", 0, &done), 0);
	assert_false(done);
	assert_int_equal(http1_chunked_scan(&c, "0\r\n\r\n", 5, &done), 5);
	assert_true(done);
	done = false;
	assert_int_equal(http1_chunked_scan(&c, "0\r\n\r\n", 5, &done), 0);
	assert_true(done);
	memset(&c, 0, sizeof(c));
	assert_int_equal(http1_chunked_scan(&c, "z", 1, &done), HTTP1_MALFORMED);
	assert_false(done);
	assert_int_equal(http1_chunked_scan(&c, "0\r\n\r\n", 5, &done), HTTP1_MALFORMED);
}

/* ---- helpers ---- */

static struct http1_header hdr(const char *name, const char *value)
{
	return (struct http1_header){ name, strlen(name), value, strlen(value) };
}

static void test_hop_by_hop(void **state)
{
	struct http1_header h[] = {
		hdr("Host", "a"),
		hdr("Connection", "X-Foo, , keep-alive"),
		hdr("X-Foo", "1"),
		hdr("x-foo-bar", "2"),
		hdr("CONNECTION", "x-bar"),
		hdr("X-Bar", "3"),
		hdr("Keep-Alive", "timeout=5"),
		hdr("Proxy-Connection", "close"),
		hdr("TE", "trailers"),
		hdr("Trailer", "X-Sum"),
		hdr("Transfer-Encoding", "chunked"),
		hdr("Upgrade", "h2c"),
		hdr("X-Sum", "9"),
		hdr("Content-Length", "5"),
		hdr("Tee", "x"),
	};
	static const bool want[] = { false, true, true, false, true,  true,  true, true,
				     true,  true, true, true,  false, false, false };
	size_t i, n = ARRAY_SIZE(h);

	(void)state;
	for (i = 0; i < n; i++)
		if (http1_hop_by_hop(&h[i], h, n) != want[i])
			fail_msg("%.*s: hop-by-hop %d", (int)h[i].name_len, h[i].name, !want[i]);
	/* without the Connection fields only the fixed names remain */
	assert_false(http1_hop_by_hop(&h[2], h, 1));
	assert_true(http1_hop_by_hop(&h[6], h, 0));
}

static void test_name_is(void **state)
{
	struct http1_header h = hdr("Content-LENGTH", "1");

	(void)state;
	assert_true(http1_name_is(&h, "content-length"));
	assert_false(http1_name_is(&h, "content-lengt"));
	assert_false(http1_name_is(&h, "content-lengths"));
	assert_false(http1_name_is(&h, "content_length"));
	h = hdr("", "");
	assert_true(http1_name_is(&h, ""));
	assert_false(http1_name_is(&h, "a"));
}

static void test_method_id(void **state)
{
	static const struct {
		const char *m;
		enum http1_method id;
	} cases[] = {
		{ "GET", HTTP1_GET },	      { "HEAD", HTTP1_HEAD },
		{ "POST", HTTP1_POST },	      { "PUT", HTTP1_PUT },
		{ "DELETE", HTTP1_DELETE },   { "PATCH", HTTP1_PATCH },
		{ "OPTIONS", HTTP1_OPTIONS }, { "TRACE", HTTP1_TRACE },
		{ "CONNECT", HTTP1_CONNECT }, { "get", HTTP1_OTHER },
		{ "GETS", HTTP1_OTHER },      { "GE", HTTP1_OTHER },
		{ "", HTTP1_OTHER },	      { "PROPFIND", HTTP1_OTHER },
		{ "Post", HTTP1_OTHER },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		assert_int_equal(http1_method_id(cases[i].m, strlen(cases[i].m)), cases[i].id);
	/* only @len bytes are read */
	assert_int_equal(http1_method_id("GETX", 3), HTTP1_GET);
}

static void test_reason(void **state)
{
	(void)state;
	assert_string_equal(http1_reason(200), "OK");
	assert_string_equal(http1_reason(100), "Continue");
	assert_string_equal(http1_reason(206), "Partial Content");
	assert_string_equal(http1_reason(308), "Permanent Redirect");
	assert_string_equal(http1_reason(400), "Bad Request");
	assert_string_equal(http1_reason(414), "URI Too Long");
	assert_string_equal(http1_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http1_reason(501), "Not Implemented");
	assert_string_equal(http1_reason(502), "Bad Gateway");
	assert_string_equal(http1_reason(505), "HTTP Version Not Supported");
	assert_string_equal(http1_reason(103), "Early Hints");
	assert_string_equal(http1_reason(307), "Temporary Redirect");
	assert_string_equal(http1_reason(417), "Expectation Failed");
	assert_string_equal(http1_reason(421), "Misdirected Request");
	assert_string_equal(http1_reason(422), "Unprocessable Content");
	assert_string_equal(http1_reason(425), "Too Early");
	assert_string_equal(http1_reason(426), "Upgrade Required");
	assert_string_equal(http1_reason(428), "Precondition Required");
	assert_string_equal(http1_reason(429), "Too Many Requests");
	assert_string_equal(http1_reason(500), "Internal Server Error");
	assert_string_equal(http1_reason(504), "Gateway Timeout");
	/* gaps and ends of each class */
	assert_string_equal(http1_reason(102), "Unknown");
	assert_string_equal(http1_reason(207), "Unknown");
	assert_string_equal(http1_reason(299), "Unknown");
	assert_string_equal(http1_reason(306), "Unknown");
	assert_string_equal(http1_reason(418), "Unknown");
	assert_string_equal(http1_reason(432), "Unknown");
	assert_string_equal(http1_reason(506), "Unknown");
	assert_string_equal(http1_reason(600), "Unknown");
	assert_string_equal(http1_reason(99), "Unknown");
	assert_string_equal(http1_reason(0), "Unknown");
	assert_string_equal(http1_reason(-1), "Unknown");
	assert_string_equal(http1_reason(-150), "Unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_ok),
		cmocka_unit_test(test_request_fields),
		cmocka_unit_test(test_request_prefixes),
		cmocka_unit_test(test_request_bad),
		cmocka_unit_test(test_limit_request_line),
		cmocka_unit_test(test_limit_head_bytes),
		cmocka_unit_test(test_limit_headers),
		cmocka_unit_test(test_response_ok),
		cmocka_unit_test(test_response_bad),
		cmocka_unit_test(test_response_limits),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_chunked_line_limit),
		cmocka_unit_test(test_chunked_sticky),
		cmocka_unit_test(test_hop_by_hop),
		cmocka_unit_test(test_name_is),
		cmocka_unit_test(test_method_id),
		cmocka_unit_test(test_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
