/* The name helpers declared in http1.h: header names (find, hop-by-hop,
 * those a Connection header lists), method ids and the standard reason
 * phrases of status codes. */
#include <string.h>

#include "http1.h"
#include "http1_internal.h"

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
