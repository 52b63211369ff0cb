/* A byte buffer for one direction of a connection, and the trick that
 * keeps the proxy small: a connection owns memory only while it holds
 * bytes it could not pass on. A read goes into the worker's scratch area
 * (borrowed); whatever is left once the event is handled is copied into
 * memory of the connection's own (buf_settle()).
 *
 * Invariants: start <= end <= cap; data[start, end) are the bytes held;
 * data == NULL iff cap == 0; a borrowed buffer's data is the scratch area
 * and is never freed. */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct buf {
	char *data;
	size_t start, end, cap;
	bool borrowed;
};

static inline size_t buf_len(const struct buf *b)
{
	return b->end - b->start;
}

static inline char *buf_head(const struct buf *b)
{
	return b->data + b->start;
}

/* Drop @n held bytes from the front. */
static inline void buf_consume(struct buf *b, size_t n)
{
	b->start += n;
	if (b->start == b->end)
		b->start = b->end = 0;
}

/* Room for at least @room more bytes at the end (compacting, then
 * growing). 0 or -ENOMEM. */
int buf_reserve(struct buf *b, size_t room);
/* Append @len bytes. 0 or -ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t len);
/* Read once from @fd into the buffer: into @scratch (borrowed) when the
 * buffer is empty, else after what it holds (growing it by up to
 * @scratch_len). Returns the bytes read, 0 at EOF, or -errno (-EAGAIN). */
ssize_t buf_read(struct buf *b, int fd, char *scratch, size_t scratch_len);
/* End of an event: a borrowed buffer's remaining bytes move to memory of
 * its own (0 or -ENOMEM); an empty buffer frees its memory. */
int buf_settle(struct buf *b);
void buf_free(struct buf *b);

#endif
