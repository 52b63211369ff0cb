/* Request paths as the proxy matches and forwards them: normalized first
 * (RFC 3986 6.2.2 as Envoy's normalize_path and merge_slashes do), so that
 * "/a/../admin", "//admin" and "/%61dmin" meet the rules for "/admin" and
 * the upstream gets the path the rules saw. */
#ifndef SLUICE_PATH_H
#define SLUICE_PATH_H

#include <stddef.h>
#include <sys/types.h>

/*
 * path_normalize() - write the normal form of the path @in (@len bytes,
 * starting with '/', no query) to @out (@cap bytes; @len + 1 always
 * suffice, the result is never longer). Percent-encoded unreserved
 * characters (A-Z a-z 0-9 - . _ ~) are decoded, other escapes get upper
 * case hex; runs of '/' become one; "." and ".." segments are resolved
 * (".." above the root stays at the root). Returns the length, or -EINVAL
 * for a '%' not followed by two hex digits, an escaped NUL, or a path not
 * starting with '/'; -ENOSPC if @cap is too small.
 */
ssize_t path_normalize(const char *in, size_t len, char *out, size_t cap);

#endif
