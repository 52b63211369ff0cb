/* HTTP/1.x message heads and body framing, parsed in place without
 * allocating (picohttpparser's contract): a parse returns the bytes the
 * head took, HTTP1_INCOMPLETE when more bytes are needed, or a negative
 * error that names the status the proxy answers with. Names and values
 * point into the caller's buffer, which must stay put while they are used.
 * RFC 9112 framing rules; what is refused is refused to prevent request
 * smuggling (docs/proxy.md). */
#ifndef SLUICE_HTTP1_H
#define SLUICE_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum http1_result {
	HTTP1_INCOMPLETE = -2, /* a valid prefix: read more */
	HTTP1_MALFORMED = -1, /* 400 (request) or 502 (response) */
	HTTP1_URI_TOO_LONG = -3, /* request line past max_request_line: 414 */
	HTTP1_HEAD_TOO_LARGE = -4, /* head past max_head_bytes or max_headers: 431 */
	HTTP1_NOT_IMPLEMENTED = -5, /* a transfer coding other than chunked: 501 */
	HTTP1_BAD_VERSION = -6, /* not HTTP/1.0 or HTTP/1.1: 505 */
};

struct http1_limits {
	size_t max_request_line; /* request line with its CRLF (requests only) */
	size_t max_head_bytes; /* whole head with the final CRLF, leading
				* empty lines included */
	size_t max_headers; /* header fields; at most the caller's array */
};

struct http1_header {
	const char *name; /* as sent (compare case-insensitively) */
	size_t name_len;
	const char *value; /* leading and trailing whitespace trimmed */
	size_t value_len;
};

enum http1_body {
	HTTP1_BODY_NONE, /* no body */
	HTTP1_BODY_LENGTH, /* content_length bytes */
	HTTP1_BODY_CHUNKED, /* chunked coding, ends with the last chunk and trailers */
	HTTP1_BODY_CLOSE, /* responses only: until the upstream closes */
};

/* Methods the proxy knows by name; the bit values match enum
 * cfg_http_method (config_http.h) so a route's mask applies directly. */
enum http1_method {
	HTTP1_GET = 1 << 0,
	HTTP1_HEAD = 1 << 1,
	HTTP1_POST = 1 << 2,
	HTTP1_PUT = 1 << 3,
	HTTP1_DELETE = 1 << 4,
	HTTP1_PATCH = 1 << 5,
	HTTP1_OPTIONS = 1 << 6,
	HTTP1_TRACE = 1 << 7,
	HTTP1_CONNECT = 1 << 8,
	HTTP1_OTHER = 1 << 9,
};

struct http1_request {
	const char *method;
	size_t method_len;
	enum http1_method method_id;
	const char *target; /* request-target as sent */
	size_t target_len;
	const char *path; /* the target's path: origin-form up to '?' (or '#'),
			   * the path of an absolute-form target ("/" if
			   * empty: then a static string, not in the buffer),
			   * "*" for OPTIONS *, the whole target for CONNECT */
	size_t path_len;
	const char *host; /* Host (or the absolute-form authority), NULL if none */
	size_t host_len;
	int minor_version; /* 0 or 1 */
	struct http1_header *headers; /* the caller's array */
	size_t n_headers;
	enum http1_body body; /* NONE, LENGTH or CHUNKED */
	uint64_t content_length; /* HTTP1_BODY_LENGTH */
	bool keep_alive; /* the client may send another request after this one */
	bool expect_continue; /* Expect: 100-continue */
	bool upgrade; /* an Upgrade header (the proxy does not tunnel: dropped) */
};

struct http1_response {
	int minor_version;
	int status; /* 100..999 */
	const char *reason;
	size_t reason_len;
	struct http1_header *headers;
	size_t n_headers;
	enum http1_body body; /* NONE for 1xx, 204, 304 and answers to HEAD */
	uint64_t content_length;
	bool keep_alive; /* the upstream keeps the connection after this response */
};

/*
 * http1_parse_request() - parse the request head at the start of @buf.
 * @headers has room for @lim->max_headers entries. Returns the length of
 * the head (through the blank line), HTTP1_INCOMPLETE, or an error of enum
 * http1_result. Leading empty lines (RFC 9112 2.2) are skipped and
 * counted in the length. Refused: bare LF or CR in the head, whitespace
 * before a colon, obs-fold, control characters, a Content-Length that is
 * not all digits or differs between fields, Transfer-Encoding together
 * with Content-Length, Transfer-Encoding in HTTP/1.0, a coding other than
 * a final "chunked" (HTTP1_NOT_IMPLEMENTED), no Host in HTTP/1.1, two
 * Host fields. Also refused (HTTP1_MALFORMED): "chunked" twice or an
 * empty element in Transfer-Encoding, a Host that is not uri-host
 * [":" port], userinfo or an empty authority in an absolute-form target,
 * "*" with a method other than OPTIONS, a target in neither origin- nor
 * absolute-form with a method other than CONNECT. @req is filled only
 * on success; @headers may be written either way.
 */
int http1_parse_request(const char *buf, size_t len, struct http1_request *req,
			struct http1_header *headers, const struct http1_limits *lim);

/*
 * http1_parse_response() - parse a response head. @head_request: the
 * request was HEAD (no body whatever the headers say). Errors as above
 * (the proxy answers them with 502); max_request_line does not apply and
 * no leading empty line is skipped. Transfer-Encoding together with
 * Content-Length, or from an HTTP/1.0 server, is refused rather than
 * guessed at (RFC 9112 6.1, 6.3).
 */
int http1_parse_response(const char *buf, size_t len, struct http1_response *resp,
			 struct http1_header *headers, const struct http1_limits *lim,
			 bool head_request);

/* A chunked body passed through verbatim: where it ends. Zero it to
 * start. */
struct http1_chunked {
	int state; /* private */
	uint64_t remaining; /* private: bytes left in the current chunk */
	uint64_t payload; /* chunk data bytes seen so far (for body limits) */
	unsigned int ext_len; /* private: bytes of the current size line / trailer line */
};

/*
 * http1_chunked_scan() - feed @len bytes of a chunked body. Returns how
 * many of them belong to the body (all of them, or fewer when the body
 * ended inside @buf), or HTTP1_MALFORMED. *@done becomes true once the
 * last chunk and the trailer section have been seen. Size lines and
 * trailer lines longer than 4096 bytes with their CRLF are malformed; so
 * is a size over 2^60, and whitespace after a size not followed by ';'.
 * Once done it takes nothing more; once malformed it stays so.
 */
ssize_t http1_chunked_scan(struct http1_chunked *c, const char *buf, size_t len, bool *done);

/* A header name equal to @name (lower case), ignoring case. */
bool http1_name_is(const struct http1_header *h, const char *name);
/* The first header called @name (lower case), or NULL. */
const struct http1_header *http1_find(const struct http1_header *headers, size_t n,
				      const char *name);
/* True for headers a proxy must not forward: Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding (the proxy re-adds
 * it), Upgrade, and every name the message's Connection header lists. */
bool http1_hop_by_hop(const struct http1_header *h, const struct http1_header *headers, size_t n);
/* "GET" -> HTTP1_GET; anything unknown -> HTTP1_OTHER. */
enum http1_method http1_method_id(const char *method, size_t len);
/* The standard reason phrase of @status ("Unknown" if none). */
const char *http1_reason(int status);

#endif
