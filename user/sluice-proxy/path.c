/* Path normalization (path.h). */
#include <errno.h>
#include <stdbool.h>

#include "path.h"

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Decode unreserved escapes and upper-case the others into @out. Returns
 * the length or -EINVAL. */
static ssize_t decode_escapes(const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (in[i] != '%') {
			out[o++] = in[i];
			continue;
		}
		if (i + 2 >= len)
			return -EINVAL;
		hi = hex_value(in[i + 1]);
		lo = hex_value(in[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -EINVAL;
		if (unreserved(hi << 4 | lo)) {
			out[o++] = hi << 4 | lo;
		} else {
			out[o++] = '%';
			out[o++] = "0123456789ABCDEF"[hi];
			out[o++] = "0123456789ABCDEF"[lo];
		}
		i += 2;
	}
	return o;
}

/* Merge slashes and resolve dot segments of @in (decoded, starts with
 * '/') into @out as "/seg/seg", in place allowed (@out <= @in: nothing
 * written is longer than what was read). Returns the length. */
static size_t resolve_segments(const char *in, size_t len, char *out)
{
	size_t o = 0, i = 0;
	bool dir = false; /* the path ends with a '/' (or a dot segment) */

	while (i < len) {
		size_t start = ++i, seg; /* in[i - 1] is a '/' */

		while (i < len && in[i] != '/')
			i++;
		seg = i - start;
		dir = seg == 0 || (seg == 1 && in[start] == '.') ||
		      (seg == 2 && in[start] == '.' && in[start + 1] == '.');
		if (seg == 2 && dir) {
			while (o && out[--o] != '/') /* "..": drop the last segment */
				;
		} else if (!dir) {
			out[o++] = '/';
			for (size_t k = 0; k < seg; k++)
				out[o++] = in[start + k];
		}
	}
	if (dir || !o)
		out[o++] = '/';
	return o;
}

ssize_t path_normalize(const char *in, size_t len, char *out, size_t cap)
{
	ssize_t n;

	if (!len || in[0] != '/')
		return -EINVAL;
	if (cap < len + 1)
		return -ENOSPC;
	n = decode_escapes(in, len, out);
	if (n < 0)
		return n;
	return resolve_segments(out, n, out);
}
