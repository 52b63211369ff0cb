/* What http1.c, http1_body.c and http1_names.c share: the character
 * classes of RFC 9110 and the case-insensitive comparisons and list walk
 * built on them. Internal to the parser: http1.h is its contract. */
#ifndef SLUICE_HTTP1_INTERNAL_H
#define SLUICE_HTTP1_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Character classes, one bit each, from RFC 9110 5.6.2 and 5.5. */
enum {
	C_TCHAR = 1 << 0, /* token: method, field name, coding */
	C_VCHAR = 1 << 1, /* request-target: 0x21..0x7e */
	C_FIELD = 1 << 2, /* field value, reason: HTAB SP VCHAR obs-text */
	C_HOST = 1 << 3, /* uri-host [":" port], IP-literal included */
	C_OWS = 1 << 4, /* SP HTAB */
};

/* The classes of each byte (defined in http1.c). */
extern const uint8_t http1_cls[256];

static inline bool is(char c, unsigned int mask)
{
	return http1_cls[(uint8_t)c] & mask;
}

static inline char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c | 0x20 : c;
}

/* @s (any case) equals @lc, @n bytes of lower case. */
static inline bool ieq(const char *s, const char *lc, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower(s[i]) != lc[i])
			return false;
	return true;
}

/* @s of @n bytes equals the NUL-terminated lower-case @lc, ignoring case. */
static inline bool ieq_str(const char *s, size_t n, const char *lc)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!lc[i] || lower(s[i]) != lc[i])
			return false;
	return !lc[n];
}

/* Strip OWS from both ends of [*s, *s + *n). */
static inline void trim(const char **s, size_t *n)
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
static inline bool list_next(const char **pp, const char *end, const char **e, size_t *n)
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

#endif
