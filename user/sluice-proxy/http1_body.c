/* The chunked-body scanner declared in http1.h: a byte-at-a-time state
 * machine over size lines, extensions and trailers (RFC 9112 7.1) that
 * skips chunk data in bulk. It only finds where the body ends and checks
 * its framing; the proxy forwards the bytes verbatim. */
#include "http1.h"
#include "http1_internal.h"

#define CHUNK_SIZE_MAX (1ULL << 60) /* a chunk size above this is refused */
#define CHUNK_LINE_MAX 4096 /* size line or trailer line, with its CRLF */

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
