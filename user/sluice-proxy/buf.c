/* The connection buffers of buf.h: own memory only for bytes left over. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"

#define BUF_MIN_CAP 4096

/* Give a borrowed buffer memory of its own holding its bytes. */
static int buf_own(struct buf *b, size_t cap)
{
	size_t len = buf_len(b);
	char *data = malloc(cap);

	if (!data)
		return -ENOMEM;
	if (len)
		memcpy(data, buf_head(b), len); /* not with NULL, even for 0 bytes */
	b->data = data;
	b->start = 0;
	b->end = len;
	b->cap = cap;
	b->borrowed = false;
	return 0;
}

int buf_reserve(struct buf *b, size_t room)
{
	size_t len = buf_len(b), cap;
	char *data;

	if (b->cap - b->end >= room)
		return 0;
	cap = b->cap > BUF_MIN_CAP ? b->cap : BUF_MIN_CAP;
	while (cap < len + room)
		cap *= 2;
	if (b->borrowed || !b->data)
		return buf_own(b, cap);
	if (b->start && b->cap - len >= room) {
		/* Enough room once the consumed front is reused. */
		memmove(b->data, buf_head(b), len);
		b->start = 0;
		b->end = len;
		return 0;
	}
	if (b->start) {
		memmove(b->data, buf_head(b), len);
		b->start = 0;
		b->end = len;
	}
	data = realloc(b->data, cap);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	int err = buf_reserve(b, len);

	if (err)
		return err;
	memcpy(b->data + b->end, data, len);
	b->end += len;
	return 0;
}

ssize_t buf_read(struct buf *b, int fd, char *scratch, size_t scratch_len)
{
	ssize_t n;

	if (!buf_len(b) && !b->data) {
		b->data = scratch;
		b->cap = scratch_len;
		b->start = b->end = 0;
		b->borrowed = true;
	} else if (buf_reserve(b, scratch_len / 4)) {
		return -ENOMEM;
	}
	/* recv(), not read(): sockets only, and no file-position lock. */
	n = recv(fd, b->data + b->end, b->cap - b->end, 0);
	if (n < 0)
		return -errno;
	b->end += n;
	return n;
}

int buf_settle(struct buf *b)
{
	if (!buf_len(b)) {
		buf_free(b);
		return 0;
	}
	if (!b->borrowed)
		return 0;
	return buf_own(b, buf_len(b) > BUF_MIN_CAP ? buf_len(b) : BUF_MIN_CAP);
}

void buf_free(struct buf *b)
{
	if (!b->borrowed)
		free(b->data);
	b->data = NULL;
	b->start = b->end = b->cap = 0;
	b->borrowed = false;
}
